"""The report's pure computations and sections, on tiny inputs checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketlab.report import calc
from marketlab.report import sections as S
from marketlab.report.model import Unavailable

# Three positives and three negatives in three score bins:
#   bin 2: 2 positives; bin 1: 1 positive, 1 negative; bin 0: 2 negatives.
BINS = pd.DataFrame({"bin": [0, 1, 2], "n": [2, 2, 2], "n_pos": [0, 1, 2], "sum_prob": [0.1, 0.9, 1.7],
                     "p_mid": [0.025, 0.455, 0.855]})


def test_roc_from_bins_by_hand_and_vs_sklearn():
    from sklearn.metrics import roc_auc_score

    curve, auc = calc.roc_from_bins(BINS)
    # thresholds descending: (fpr, tpr) = (0,0), (0,2/3), (1/3,1), (1,1)
    np.testing.assert_allclose(curve["fpr"], [0, 0, 1 / 3, 1])
    np.testing.assert_allclose(curve["tpr"], [0, 2 / 3, 1, 1])
    # Mann-Whitney: 8 wins + 1 tie of 9 pairs = 17/18
    assert auc == pytest.approx(17 / 18)
    y = [0, 0, 0, 1, 1, 1]
    score = [0, 0, 1, 1, 2, 2]
    assert auc == pytest.approx(roc_auc_score(y, score))


def test_pr_from_bins_average_precision():
    from sklearn.metrics import average_precision_score

    curve, ap = calc.pr_from_bins(BINS)
    np.testing.assert_allclose(curve["precision"], [1.0, 0.75, 0.5])
    np.testing.assert_allclose(curve["recall"], [2 / 3, 1.0, 1.0])
    assert ap == pytest.approx(2 / 3 * 1.0 + 1 / 3 * 0.75)
    assert ap == pytest.approx(average_precision_score([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]))


def test_roc_needs_both_classes():
    with pytest.raises(ValueError):
        calc.roc_from_bins(pd.DataFrame({"bin": [1], "n": [3], "n_pos": [3]}))


def test_calibration_groups_fine_bins():
    bins = pd.DataFrame({"p_mid": [0.05, 0.07, 0.95], "n": [10, 10, 5], "n_pos": [1, 0, 4], "sum_prob": [0.5, 0.7, 4.75]})
    cal = calc.calibration_from_bins(bins)
    assert list(cal["group"]) == [0, 9]
    assert list(cal["n"]) == [20, 5]
    np.testing.assert_allclose(cal["mean_predicted"], [1.2 / 20, 0.95])
    np.testing.assert_allclose(cal["observed_rate"], [1 / 20, 0.8])


def test_confusion_matrix_and_rates():
    counts = pd.DataFrame({"label": [0, 0, 1, 1], "prediction": [0, 1, 0, 1], "n": [50, 10, 5, 35]})
    cm, r = calc.confusion(counts)
    assert cm.tolist() == [[50, 10], [5, 35]]
    assert r["accuracy"] == pytest.approx(85 / 100)
    assert r["precision"] == pytest.approx(35 / 45)
    assert r["recall"] == pytest.approx(35 / 40)
    assert r["specificity"] == pytest.approx(50 / 60)


def test_qini_from_buckets_by_hand_and_vs_sklift():
    from sklift.metrics import qini_curve

    b = pd.DataFrame({"bucket": [1, 0], "n_t": [10, 10], "n_c": [10, 10], "y_t": [2, 5], "y_c": [2, 1]})
    q = calc.qini_from_buckets(b)
    # after bucket 0: Y_t - Y_c N_t/N_c = 5 - 1 = 4; uplift (0.5 - 0.1) * 20 = 8
    # after bucket 1: 7 - 3 = 4; uplift (0.35 - 0.15) * 40 = 8
    assert q["n"].tolist() == [0, 20, 40]
    np.testing.assert_allclose(q["qini"], [0, 4, 4])
    np.testing.assert_allclose(q["uplift"], [0, 8, 8])
    np.testing.assert_allclose(q["random"], [0, 2, 4])
    # the same customers one by one: bucket 0 scored 1.0, bucket 1 scored 0.0
    y = [1] * 5 + [0] * 5 + [1] * 1 + [0] * 9 + [1] * 2 + [0] * 8 + [1] * 2 + [0] * 8
    t = [1] * 10 + [0] * 10 + [1] * 10 + [0] * 10
    score = [1.0] * 20 + [0.0] * 20
    x, qq = qini_curve(np.array(y), np.array(score), np.array(t))
    np.testing.assert_allclose(x, q["n"])
    np.testing.assert_allclose(qq, q["qini"])


def test_recommend_metrics_parsing():
    m = {"temporal.als.map_at_10": 0.1, "temporal.popular.ndcg_at_5": 0.2, "hide.als.auc": 0.9,
         "temporal.cold_test_users": 3.0, "val_map_at_10": 0.05}
    d = calc.recommend_metrics(m).sort_values(["protocol", "model", "metric"]).reset_index(drop=True)
    assert d[["protocol", "model", "metric"]].values.tolist() == [
        ["hide", "als", "auc"], ["temporal", "als", "map"], ["temporal", "popular", "ndcg"]]
    assert d["k"].isna().tolist() == [True, False, False]
    assert d.loc[1, "k"] == 10 and d.loc[2, "k"] == 5


def test_ope_and_effect_and_accounting_parsing():
    ope = calc.ope_estimates({"ope.strategy.dr.value": 1.0, "ope.strategy.dr.lo": 0.5, "ope.all_Mens_E_Mail.dr.value": 0.7,
                              "budget.share": 0.4})
    assert set(ope["policy"]) == {"strategy", "all_Mens_E_Mail"}
    assert ope.set_index("policy").loc["strategy", "lo"] == 0.5
    eff = calc.effect_metrics({"mens_e_mail.visit.t_learner.qini_auc": 0.05, "mens_e_mail.visit.t_learner.uplift_at_30": 0.1,
                               "selected": 1.0, "a.unknown_outcome.x.y": 2.0}, ("visit", "spend"))
    assert eff.to_dict("records") == [{"arm": "mens_e_mail", "outcome": "visit", "learner": "t_learner",
                                       "qini_auc": 0.05, "uplift_at_30": 0.1}]
    summary, detail = calc.row_accounting({"orders.bronze_rows": 10, "orders.rows.order_lines": 7, "orders.rows.returns": 1,
                                           "orders.excluded.duplicate": 2, "orders.altered.trim": 4,
                                           "sessions.bronze_rows": 5, "sessions.rows.sessions": 4})
    s = summary.set_index("source")
    assert s.loc["orders"].tolist() == [10, 8, 2, 4, True]
    assert not s.loc["sessions", "balanced"]
    assert len(detail) == 5


@pytest.mark.parametrize("build", [
    lambda u: S.quality_section(u, u, u, u),
    lambda u: S.distributions_section(u, u, u),
    lambda u: S.segments_section(u, u),
    lambda u: S.intent_section(u, u, u, u),
    lambda u: S.recommend_section(u, u),
    lambda u: S.forecast_section(u, u, u, u),
    lambda u: S.inventory_section(u, u, u),
    lambda u: S.uplift_section(u, u),
    lambda u: S.ab_section(u),
    lambda u: S.strategy_section(u, u),
    lambda u: S.campaign_section(u, u, u),
    lambda u: S.importance_section(u, u),
])
def test_every_section_renders_missing_inputs_as_a_note(build):
    sec = build(Unavailable("table gold.x does not exist"))
    html = "".join(sec.blocks)
    assert "not available: table gold.x does not exist" in html
    assert sec.unavailable and "<img" not in html


def test_ab_section_marks_significance_and_lists_overall_rows():
    ev = pd.DataFrame({"campaign": "c", "arm": ["A", "B"], "control_arm": "ctl", "metric": "visit_rate",
                       "segment": "all", "effect": [0.05, 0.0], "ci_low": [0.02, -0.03], "ci_high": [0.08, 0.03],
                       "p_adjusted": [0.001, 0.9], "significant": [True, False], "srm_p_value": 0.5, "srm_mismatch": False})
    sec = S.ab_section(ev)
    html = "".join(sec.blocks)
    assert not sec.unavailable
    assert html.count("<img") == 1 and "0.001" in html and "SRM p-value" in html


def test_tables_escape_html():
    from marketlab.report.html import table

    out = table(pd.DataFrame({"x": ["<script>alert(1)</script>"], "n": [1234567]}))
    assert "<script>" not in out and "&lt;script&gt;" in out and "1,234,567" in out


def test_forecast_section_with_one_backtest_cutoff():
    import datetime as dt

    days = pd.date_range("2011-12-01", periods=9, freq="D")
    history = pd.DataFrame({"warehouse": "UK", "date": days.date, "units": np.arange(9.0)})
    fc = pd.DataFrame({"warehouse": ["UK", "UK", "EU", "EU"], "date": [dt.date(2011, 12, 10), dt.date(2011, 12, 11)] * 2,
                       "p50": [5.0, 6.0, 1.0, 1.0], "p90": [8.0, 9.0, 2.0, 2.0], "items": [2, 2, 1, 1]})
    fc.attrs.update({"meta": {"model_version": "m/3", "made_at": dt.datetime(2011, 12, 10, 6, 0, 0, 123)},
                     "series_per_model": {"lstm": 2, "seasonal_naive": 1}})
    bt = pd.DataFrame({"model": ["lstm", "lstm", "seasonal_naive", "seasonal_naive"],
                       "cutoff": [dt.date(2011, 11, 25), None, dt.date(2011, 11, 25), None],
                       "n_series": 3, "mase": [0.9, 0.9, 1.0, 1.0], "coverage_p90": [0.8, 0.8, 0.9, 0.9]})
    sec = S.forecast_section(history, fc, bt, {"bt.mase_gain_vs_seasonal_naive": 0.1})
    html = "".join(sec.blocks)
    assert not sec.unavailable
    assert html.count("<img") == 2  # actual + forecast panels, and the one-cutoff model comparison
    assert "3 forecasted item x warehouse series (series per model: lstm 2, seasonal_naive 1)" in html
    assert "made at 2011-12-10 06:00" in html and "m/3" in html


# --- customer lifetime value ---------------------------------------------------------------------


def test_value_holdout_metrics_become_one_row_per_window_target_and_predictor():
    m = {"holdout.h90.count.rmse.model": 1.0, "holdout.h90.count.rmse.model_lo": 0.9, "holdout.h90.count.rmse.model_hi": 1.1,
         "holdout.h90.count.rmse.historical": 1.25, "holdout.h90.count.mae.model": 0.5,
         "holdout.h90.count.aggregate_error.population": -0.1, "holdout.h90.count.rmse_gain_vs_historical": 0.2,
         "holdout.h90.count.rmse_gain_vs_historical_lo": 0.1, "holdout.h90.count.rmse_gain_vs_historical_hi": 0.3,
         "holdout.h180.spend.rmse.model": 50.0, "fit.r": 0.2, "holdout.n_customers": 3000.0}
    t = calc.value_holdout(m)
    assert list(t[["holdout_days", "target", "predictor"]].itertuples(index=False, name=None)) == [
        (90, "count", "model"), (90, "count", "historical"), (90, "count", "population"), (180, "spend", "model")]
    model = t.iloc[0]
    assert (model["rmse"], model["rmse_lo"], model["rmse_hi"], model["mae"]) == (1.0, 0.9, 1.1, 0.5)
    assert (model["gain"], model["gain_lo"], model["gain_hi"]) == (0.2, 0.1, 0.3)
    assert np.isnan(t.iloc[1]["gain"]) and t.iloc[2]["aggregate_error"] == -0.1  # the gain is the model's
    assert list(t.columns[:4]) == ["holdout_days", "target", "predictor", "mae"]
    assert calc.value_holdout({"fit.r": 0.2}).empty


def test_value_calibration_and_tier_mix():
    cal = pd.DataFrame({"frequency": [1, 0], "customers": [2, 5], "actual": [0.5, 0.1], "model": [0.4, 0.2]})
    out = calc.value_calibration({"calibration_180d.csv": cal, "calibration_90d.csv": cal, "other.csv": cal})
    assert list(out) == [90, 180] and list(out[90]["frequency"]) == [0, 1]
    with pytest.raises(ValueError, match="no calibration"):
        calc.value_calibration({"x.csv": cal})
    prof = pd.DataFrame({"segment": [0, 1, 2], "value_tier_mix": [{"low": 3, "top": 1}, {"extra": 2}, {}]})
    mix = calc.tier_mix(prof, ("top", "high", "low"))
    assert list(mix.columns) == ["top", "low", "extra"]  # conf order first, unknown tiers after
    assert mix.to_dict("records") == [{"top": 1, "low": 3, "extra": 0}, {"top": 0, "low": 0, "extra": 2},
                                      {"top": 0, "low": 0, "extra": 0}]
    assert calc.tier_mix(prof.assign(value_tier_mix=[{}, {}, {}])).empty and calc.tier_mix(prof[["segment"]]).empty


def test_value_section_without_inputs_says_why():
    s = S.value_section(Unavailable("table gold.customer_value does not exist: run the 'value' stage first"),
                        Unavailable("no finished MLflow run of the value job"), Unavailable("no finished MLflow run"))
    assert s.key == "value" and len(s.unavailable) == 4
    html = "".join(s.blocks)
    assert "customer values: not available: table gold.customer_value does not exist" in html.replace("&#x27;", "'")
    assert "customers at risk: not available" in html and "holdout metrics: not available" in html


def test_segments_section_without_value_tiers_notes_it():
    prof = pd.DataFrame({"segment": [0, 1], "segment_name": ["a", "b"], "n_customers": [3, 4], "share": [3 / 7, 4 / 7],
                         "mean_clv": [None, None], "value_tier_mix": [{}, {}]})
    s = S.segments_section(prof, Unavailable("no run"), tier_order=("top", "low"))
    html = "".join(s.blocks)
    assert "no value tiers on these segments" in html and "value tier mix" not in html
    assert s.unavailable == ["no run"]  # only the silhouette is missing: value tiers are optional
    with_value = prof.assign(mean_clv=[10.0, 20.0], n_valued=[3, 4], value_tier_mix=[{"top": 1, "low": 2}, {"low": 4}])
    html = "".join(S.segments_section(with_value, Unavailable("no run"), tier_order=("top", "low")).blocks)
    assert "value tier mix per segment" in html and "<th>tier top</th><th>tier low</th>" in html


def test_campaign_regret_table_and_production_plans_without_truth():
    plans = pd.DataFrame([
        {"wave": 1, "policy": "strategy", "predicted": 10.0, "predicted_low": 0.0, "predicted_high": 20.0, "roi": 1.5,
         "true": 40.0},
        {"wave": 1, "policy": "oracle", "predicted": np.nan, "predicted_low": np.nan, "predicted_high": np.nan,
         "roi": np.nan, "true": 100.0},
        {"wave": 1, "policy": "all_email", "predicted": 5.0, "predicted_low": 0.0, "predicted_high": 9.0, "roi": 1.0,
         "true": 60.0},
        {"wave": 1, "policy": "all_coupon", "predicted": 5.0, "predicted_low": 0.0, "predicted_high": 9.0, "roi": 1.0,
         "true": -20.0},
    ])
    reg = S._regret_table(plans).iloc[0]
    assert reg["true_best_single"] == 60.0 and reg["regret"] == 60.0
    assert reg["gap_closed"] == pytest.approx((40 - 60) / (100 - 60))
    assert reg["strategy_predicted_low"] == 0.0 and np.isnan(reg["true_random"])
    # Production: no ground truth, so no true curve and no regret plot, only the predictions.
    prod = S.campaign_section(plans.assign(true=np.nan), Unavailable("table gold.campaign_results does not exist"),
                              Unavailable("no waves"))
    html = "".join(prod.blocks)
    assert "no ground truth" in html and html.count("<img") == 1
    assert "measured effects: not available: table gold.campaign_results does not exist" in html
