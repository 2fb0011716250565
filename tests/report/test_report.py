"""The run report end to end: built from a small lake, opened in headless Chromium, logged by its job."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from marketlab.config import load_settings
from marketlab.report import sections as S
from marketlab.report.build import LATEST
from marketlab.report.run import run as make_report
from marketlab.report.collect import histogram
from marketlab.report.model import Unavailable
from marketlab.tables import Lake
from report.small_lake import SECRET

ROOT = Path(__file__).resolve().parents[2]
# Anything that would make the browser fetch something: src/href/url() with a scheme other than data:.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?!data:|#)[a-z][a-z0-9+.-]*:|url\(\s*["']?(?!data:)[a-z]+:|@import""",
                      re.IGNORECASE)


def _settings(small_lake, tmp: Path, *extra: str):
    return load_settings(ROOT / "conf" / "test.yaml", [*small_lake.overrides, f"jobs.report.reports_dir={tmp}", *extra])


@pytest.fixture(scope="module")
def report(spark, small_lake, tmp_path_factory):
    """The report of the full small lake (built once for the module)."""
    out = tmp_path_factory.mktemp("reports")
    st = _settings(small_lake, out)
    t0 = time.perf_counter()
    res = make_report(Lake(spark, st), st, SECRET, run_id="0123456789abcdef")
    res.seconds = time.perf_counter() - t0
    return res


def _section_html(html: str, key: str) -> str:
    m = re.search(rf'<section id="{key}">(.*?)</section>', html, re.S)
    assert m, f"no section {key}"
    return m.group(1)


def test_report_has_every_section_and_nothing_missing(report):
    html = report.path.read_text()
    assert report.path.name.startswith("report-") and report.path.name.endswith("-0123456789ab.html")
    assert (report.path.parent / LATEST).read_text() == html
    for key, title in S.TITLES.items():
        assert f'<section id="{key}">' in html and f"<h2>{title}</h2>" in html
    # the small lake has every input: no section may fall back to a note
    assert report.partial == [], [(s.title, s.unavailable) for s in report.sections if s.unavailable]
    assert "not available" not in html
    assert html.count("<img") >= 18


def test_report_is_self_contained(report):
    html = report.path.read_text()
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_report_numbers_match_the_lake(report):
    html = report.path.read_text()
    quality = _section_html(html, "quality")
    # 9 passing + 1 failing expectation on the latest versions; the failed v0 row is not shown
    assert '<td class="txt">expectations checked</td><td class="num">10</td>' in quality
    assert '<td class="txt">failed (warning)</td><td class="num">1</td>' in quality
    assert "latest date 2011-12-09" in quality and "0 rows" not in quality
    segments = _section_html(html, "segments")
    assert "top_value_frequent" in segments
    lineage = _section_html(html, "lineage")
    assert "gold.uplift_scores" in lineage and "gold.forecasts" in lineage


def test_value_section_numbers_match_the_lake(report, spark, small_lake):
    """CLV tiers and the at-risk list recomputed with pandas from the small lake's latest value slice."""
    from report.small_lake import AS_OF, VALUE_CUSTOMERS

    html = report.path.read_text()
    sec = _section_html(html, "value")
    v = Lake(spark, small_lake.settings).read("gold.customer_value").toPandas()
    v = v[v["as_of"] == AS_OF]  # the latest of its two slices
    assert len(v) == VALUE_CUSTOMERS
    vp = small_lake.settings.jobs.value
    cuts = np.quantile(v["clv"], vp.tier_quantiles, method="inverted_cdf")  # = Spark's approxQuantile here
    tier = np.full(len(v), vp.tiers[-1], dtype=object)
    for name, cut in reversed(list(zip(vp.tiers[:-1], cuts))):
        tier = np.where(v["clv"] >= cut, name, tier)
    risky = v[(v["clv"] >= np.quantile(v["clv"], vp.at_risk_min_clv_quantile, method="inverted_cdf"))
              & (v["p_alive"] <= vp.at_risk_max_p_alive)].sort_values("clv", ascending=False)
    assert 0 < len(risky) < 40
    assert f'<td class="txt">customers scored</td><td class="num">{VALUE_CUSTOMERS}</td>' in sec
    assert f'<td class="txt">customers at risk</td><td class="num">{len(risky)}</td>' in sec
    for name in vp.tiers:  # tier table: name, customers, ...
        assert f'<td class="txt">{name}</td><td class="num">{int((tier == name).sum())}</td>' in sec, name
    assert "stale" not in sec  # the table's own tier column is recomputed with the conf, not shown as written
    # at-risk list: exactly the at-risk customers, highest CLV first, pseudonymous keys only
    listed = re.findall(r'<tr><td class="txt">(c\d{4})</td>', sec.split("Top-value customers at risk")[1])
    assert listed == list(risky["customer_key"])
    assert "customer_id" not in sec
    # holdout calibration from the value run: metrics table and the calibration by frequency
    assert "holdout error per customer" in sec and "calibration by frequency" in sec
    assert sec.count("<img") == 2  # CLV / P(alive) histograms, calibration plot
    assert "mean holdout purchases by calibration frequency" in sec
    # the segments show their tier mix and CLV
    seg = _section_html(html, "segments")
    assert "Value tiers per segment" in seg and "value tier mix per segment" in seg
    assert "(value as of 2011-12-10)" in seg


def test_campaign_section_numbers_match_the_lake(report, spark, small_lake):
    """Regret per wave from the plans' true profits; coverage of the results; featured products per segment by pandas."""
    from report.small_lake import CAMPAIGN_TRUE

    sec = _section_html(report.path.read_text(), "campaign")
    assert sec.count("<img") == 2  # profit per wave + regret curve, predicted vs measured per cell
    for w in (1, 2):  # regret = oracle - strategy, true
        assert f'<td class="num">{CAMPAIGN_TRUE["oracle"][w - 1] - CAMPAIGN_TRUE["strategy"][w - 1]:g}</td>' in sec
    lake = Lake(spark, small_lake.settings)
    res = lake.read("gold.campaign_results").toPandas()
    pred = res[res["predicted"].notna()]
    assert f"{int(pred['covered'].sum())} of {len(pred)} predicted intervals cover the measured effect" in sec
    waves = lake.read("gold.campaign_waves").toPandas()
    last = waves[(waves.wave == waves.wave.max()) & ~waves.holdout & (waves.featured_items != "")]
    seg = lake.read("gold.segments").toPandas().set_index("customer_key")["segment_name"]
    items = last.assign(item_id=last.featured_items.str.split(";")).explode("item_id")
    items["segment_name"] = items["customer_key"].map(seg)
    counts = items.groupby(["segment_name", "item_id"]).size().rename("emails").reset_index()
    top = counts.sort_values(["segment_name", "emails", "item_id"], ascending=[True, False, True]) \
        .groupby("segment_name").head(small_lake.settings.jobs.report.featured_per_segment)
    shown = re.findall(r'<tr><td class="txt">([a-z_]+)</td><td class="num">(\d+)</td><td class="txt">(2\d{4})</td>'
                       r'<td class="txt">THING NUMBER \d+</td><td class="num">(\d+)</td>', sec)
    assert [(s, i, int(n)) for s, _, i, n in shown] == list(top.itertuples(index=False, name=None))
    assert "in wave 2" in sec


def test_histogram_bins_integers_exactly(spark):
    df = spark.createDataFrame([(v,) for v in [1, 1, 2, 3, 3, 3, 10]], "q int")
    h = histogram(df, "q", bins=40, label="q")
    assert h.bins["count"].sum() == 7
    # every bin edge is a half-integer and each value sits in its own bin
    assert all((e * 2) % 2 == 1 for e in [*h.bins["lo"], h.bins["hi"].iloc[-1]])
    counts = {int(lo + 0.5): c for lo, c in zip(h.bins["lo"], h.bins["count"]) if c}
    assert counts == {1: 2, 2: 1, 3: 3, 10: 1}
    assert h.stats["rows"] == 7 and h.stats["max"] == 10
    logged = histogram(spark.createDataFrame([(-1.0,), (0.0,), (1.0,), (100.0,)], "v double"), "v", 10, "v", log_scale=True)
    assert logged.stats["non_positive"] == 2 and logged.bins["count"].sum() == 2


def test_missing_tables_and_store_give_notes(spark, small_lake, tmp_path):
    """A lake without gold.forecasts / gold.uplift_scores and no MLflow store: notes, not a crash."""
    lake_copy = tmp_path / "lake"
    for table in ("gold/forecast_backtest", "gold/inventory_plan", "gold/inventory_status", "silver/campaign_log"):
        shutil.copytree(small_lake.lake_root / table, lake_copy / table)
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={lake_copy}", f"jobs.report.reports_dir={tmp_path / 'r'}",
                                                    f"mlflow.tracking_uri=sqlite:///{tmp_path / 'none' / 'mlflow.db'}"])
    res = make_report(Lake(spark, st), st, SECRET)
    html = res.path.read_text()
    assert not (tmp_path / "none").exists()  # reading the report never creates a store
    forecast = _section_html(html, "forecast")
    assert "not available: table gold.forecasts does not exist: run the &#x27;forecast&#x27; stage first" in forecast
    assert "<img" in forecast  # the backtest is still there
    assert "not available: table gold.uplift_scores does not exist" in _section_html(html, "uplift")
    assert f"not available: no MLflow store at sqlite:///{tmp_path / 'none' / 'mlflow.db'}" in _section_html(html, "recommend")
    inventory = _section_html(html, "inventory")
    assert "gold.inventory_status" in inventory and "<img" in inventory
    for title in ("Demand forecast", "Uplift (Qini)", "Recommender"):
        assert title in res.partial


def test_report_of_an_empty_lake_renders(spark, tmp_path):
    st = load_settings(ROOT / "conf" / "test.yaml", [f"lake_root={tmp_path / 'empty'}",
                                                    f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                                                    f"jobs.report.reports_dir={tmp_path / 'r'}"])
    res = make_report(Lake(spark, st), st, SECRET)
    html = res.path.read_text()
    assert len(res.partial) == len(S.TITLES)
    assert "not available: table quality.results does not exist: run the &#x27;clean&#x27; stage first" in html


def test_broken_section_input_is_contained():
    from marketlab.report.build import render_sections
    from marketlab.report.collect import ReportInputs

    inp = ReportInputs()
    inp.segment_profiles = "not a frame"  # a bug in collection must not lose the other sections
    secs = {s.key: s for s in render_sections(inp)}
    assert any("rendering failed" in u for u in secs["segments"].unavailable)
    assert isinstance(ReportInputs().metrics("clean"), Unavailable)


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_report_in_headless_chromium(report, browser, tmp_path_factory):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(report.path.resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) >= 18
    broken = [alt for alt, complete, w, h in images if not (complete and w > 0 and h > 0)]
    assert not broken, f"broken images: {broken}"
    headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    for title in S.TITLES.values():
        assert title in headings
    # nothing was fetched from outside the file
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [r for r in resources if not r.startswith("data:")], resources
    # a screenshot of the whole page, not blank
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 120, 16000))
    out = tmp_path_factory.mktemp("screens") / "report.png"
    assert browser.save_screenshot(str(out))
    px = _pixels(out)
    assert px.shape[0] > 2000 and px.shape[1] >= 1000
    assert px.std() > 20, "screenshot is (nearly) blank"
    colours = np.unique(px[::7, ::7].reshape(-1, 3), axis=0)
    assert len(colours) > 50
    # the plots are drawn: the middle band of the first figure is not all white
    first = browser.find_element(By.CSS_SELECTOR, "figure img")
    assert first.size["width"] > 200 and first.size["height"] > 100
    browser.set_window_size(1400, 1000)


def test_report_job_logs_the_html_to_mlflow(small_lake, tmp_path, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    from marketlab.privacy import SECRET_ENV
    from marketlab.runtime import run_job_file

    monkeypatch.setenv(SECRET_ENV, SECRET)  # the job resolves the secret the small lake was keyed with

    reports = tmp_path / "reports"
    overrides = (*small_lake.overrides, f"jobs.report.reports_dir={reports}")
    rc = run_job_file(str(ROOT / "conf" / "test.yaml"), "report", overrides)
    assert rc == 0
    out = capsys.readouterr().out
    printed = Path(re.search(r"report: (\S+\.html)", out).group(1))
    assert printed.is_file() and printed.parent == reports and (reports / LATEST).is_file()
    client = MlflowClient(tracking_uri=small_lake.settings.tracking_uri())
    exp = client.get_experiment_by_name(small_lake.settings.mlflow.experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`marketlab.job` = 'report'", order_by=["attributes.start_time DESC"])
    assert runs and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert run.info.run_id[:12] in printed.name
    arts = [a.path for a in client.list_artifacts(run.info.run_id, "report")]
    assert arts == [f"report/{printed.name}"]
    local = client.download_artifacts(run.info.run_id, arts[0], str(tmp_path / "dl"))
    assert Path(local).read_bytes() == printed.read_bytes()
    assert run.data.metrics["sections"] == len(S.TITLES) and run.data.metrics["sections_partial"] == 0
    assert run.data.params.get("read.gold.strategy_summary") is not None  # lineage of what it read


def test_drift_section_shows_the_latest_run_worst_first(report):
    sec = _section_html(report.path.read_text(), "drift")
    assert "<img" in sec
    # block before the warnings, the stable column last; the figures as written
    order = [sec.index(s) for s in ("monetary", "uplift", "probability", "recency_days")]
    assert order == sorted(order), order
    assert "0.41" in sec and "block" in sec and "action=Mens E-Mail,outcome=spend" in sec
