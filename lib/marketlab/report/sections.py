"""The report's sections: pure functions from pandas frames / metric dicts to HTML.

No Spark and no MLflow here. Every input may be :class:`~marketlab.report.model.Unavailable`
(or None / empty): the part it feeds then shows ``not available: <reason>`` and the rest
of the section still renders.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from marketlab.report import calc  # noqa: E402
from marketlab.report.html import figure, fmt_number, heading, kv_table, note, row, table  # noqa: E402
from marketlab.report.model import Section, Unavailable, missing, reason_of  # noqa: E402

# Section keys and titles, in report order (tests check that every heading is there).
TITLES = {
    "quality": "Data quality",
    "distributions": "Distributions",
    "segments": "Customer segments",
    "value": "Customer lifetime value",
    "intent": "Purchase intent",
    "recommend": "Recommender",
    "forecast": "Demand forecast",
    "inventory": "Inventory plan",
    "uplift": "Uplift (Qini)",
    "ab": "A/B tests",
    "strategy": "Strategy",
    "campaign": "Shop campaign waves",
    "drift": "Drift since the last accepted run",
    "importance": "Feature importance",
    "lineage": "Inputs and lineage",
}

COLORS = ["#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#c92a2a", "#5c7cfa", "#868e96"]


def _fig(w: float = 7.5, h: float = 3.6, ncols: int = 1, nrows: int = 1):
    fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False)
    for ax in axes.flat:
        ax.grid(True, alpha=0.25, lw=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _bars(mid: pd.Series, low: pd.Series, high: pd.Series) -> list[pd.Series]:
    """Error-bar lengths below and above ``mid``, clipped at zero (a percentile interval may
    not contain its point estimate, and matplotlib refuses negative lengths)."""
    return [(mid - low).clip(lower=0), (high - mid).clip(lower=0)]


def _metrics(value: Any, job: str) -> Mapping[str, float] | None:
    return None if missing(value) else value


def _table_or_na(s, df, table_name: str, what: str, max_rows: int, caption: str) -> None:
    """A table of ``df``, or the reason it is missing."""
    if missing(df):
        s.na(reason_of(df, table_name), what)
    else:
        s.add(table(df, max_rows, caption=caption))


# --- 1. data quality ---------------------------------------------------------------------------


def quality_section(results: Any, clean_metrics: Any, audit_counts: Any, ingest_log: Any,
                    max_rows: int = 40) -> Section:
    """Expectation outcomes, exact row accounting of cleaning, ingested files."""
    s = Section("quality", TITLES["quality"])
    s.add(heading("Expectations (latest checked version of each table)"))
    if missing(results):
        s.na(reason_of(results, "quality.results"), "expectations")
    else:
        r = results.copy()
        failed = r[~r["passed"].astype(bool)]
        blocking = failed[failed["severity"] == "blocking"]
        s.add(kv_table([("expectations checked", len(r)), ("tables", r["table"].nunique()),
                        ("failed (blocking)", len(blocking)), ("failed (warning)", len(failed) - len(blocking))]))
        by_table = r.assign(ok=r["passed"].astype(bool)).groupby("table").agg(
            passed=("ok", "sum"), failed=("ok", lambda x: int((~x).sum())))
        fig, axes = _fig(7.5, 0.45 * len(by_table) + 1.2)
        ax = axes[0, 0]
        y = np.arange(len(by_table))
        ax.barh(y, by_table["passed"], color="#2f9e44", label="passed")
        ax.barh(y, by_table["failed"], left=by_table["passed"], color="#c92a2a", label="failed")
        ax.set_yticks(y, by_table.index)
        ax.invert_yaxis()
        ax.set_xlabel("expectations")
        ax.legend(loc="lower right", fontsize=8)
        s.add(figure(fig, "expectations passed / failed per table"))
        cols = ["table", "version", "expectation", "kind", "severity", "passed", "offending", "rows", "detail"]
        if len(failed):
            s.add(table(failed[[c for c in cols if c in failed]], max_rows, caption="failed expectations"))
        s.add(table(r[[c for c in cols if c in r]], max_rows, caption="all expectations (failed first)"))

    s.add(heading("Row accounting of cleaning (bronze = silver + excluded)"))
    summary = detail = None
    if not missing(clean_metrics):
        summary, detail = calc.row_accounting(clean_metrics)
    if summary is not None and not summary.empty:
        s.add(table(summary, max_rows, caption="per source table (clean run metrics)"))
        if not summary["balanced"].all():
            s.add('<p class="bad">row accounting does not balance for: '
                  + ", ".join(summary.loc[~summary["balanced"], "source"]) + "</p>")
        s.add(table(detail, max_rows, caption="rows per silver table, exclusion and alteration rule"))
    elif not missing(audit_counts):
        s.add(note("clean run metrics not available; counts from silver._audit (excluded and altered rows)"))
        s.add(table(audit_counts, max_rows, caption="silver._audit rows per rule"))
    else:
        s.na(f"{reason_of(clean_metrics, 'clean run metrics')}; {reason_of(audit_counts, 'silver._audit')}",
             "row accounting")
    if summary is not None and not summary.empty and not missing(audit_counts):
        excl = audit_counts[audit_counts["action"] == "excluded"].groupby("reason")["rows"].sum()
        fig, axes = _fig(7.5, 0.35 * max(len(excl), 1) + 1.2)
        ax = axes[0, 0]
        if len(excl):
            excl = excl.sort_values()
            ax.barh(excl.index, excl.values, color="#e8590c")
            for y, v in enumerate(excl.values):
                ax.text(v, y, f" {int(v):,}", va="center", fontsize=8)
            ax.set_xlim(0, excl.max() * 1.15)
            ax.set_xlabel("rows excluded (silver._audit)")
            s.add(figure(fig, "rows excluded by cleaning, per rule"))
        else:
            plt.close(fig)
    s.add(heading("Ingested files"))
    _table_or_na(s, ingest_log, "ops.ingest_log", "ingest log", max_rows, "ops.ingest_log (newest first)")
    return s


# --- 2. distributions ------------------------------------------------------------------------------


def _hist_ax(ax, h) -> None:
    b = h.bins
    widths = b["hi"] - b["lo"]
    ax.bar(b["lo"], b["count"], width=widths, align="edge", color="#1f6feb", alpha=0.85, edgecolor="white", lw=0.3)
    if h.log:
        ax.set_xscale("log")
    for q, ls in (("p50", "-"), ("p90", "--")):
        v = h.stats.get(q)
        if v is not None and calc.finite(v):
            ax.axvline(v, color="#c92a2a", ls=ls, lw=1, label=f"{q} {fmt_number(v, 3)}")
    ax.set_xlabel(h.label + (" (log scale)" if h.log else ""))
    ax.set_ylabel("count")
    ax.legend(fontsize=7)


def _hist_stats(hists: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for name, h in hists.items():
        if missing(h):
            continue
        st = h.stats
        rows.append({"variable": name, "rows": st["rows"], "mean": st["mean"], "median": st["p50"], "p90": st["p90"],
                     "p99": st["p99"], "min": st["min"], "max": st["max"],
                     "left out (<= 0)": st.get("non_positive", 0)})
    return pd.DataFrame(rows)


def distributions_section(order_values: Any, quantities: Any, rfm: Any) -> Section:
    """Order values, quantities per line and the RFM features of the latest cutoff."""
    s = Section("distributions", TITLES["distributions"])
    s.add(note("Histograms computed in Spark; bins span the 0.1-99.9 % quantiles (values beyond are counted in "
               "the end bins). Log-scaled variables leave out values <= 0 (counted in the table)."))
    s.add(heading("Orders (silver.order_lines)"))
    parts = []
    for h, what in ((order_values, "order values"), (quantities, "quantities")):
        if missing(h):
            parts.append(None)
            s.na(reason_of(h, what), what)
        else:
            parts.append(h)
    present = [h for h in parts if h is not None]
    if present:
        fig, axes = _fig(5.2 * len(present), 3.4, ncols=len(present))
        for ax, h in zip(axes.flat, present):
            _hist_ax(ax, h)
        s.add(figure(fig, "distribution of order values and units per order line"))
        s.add(table(_hist_stats({"order value": order_values, "units per line": quantities}), 10))
    s.add(heading("RFM features (gold.customer_features, latest cutoff)"))
    if missing(rfm):
        s.na(reason_of(rfm, "RFM features"), "RFM")
        return s
    ok = {k: h for k, h in rfm.items() if not missing(h)}
    for k, h in rfm.items():
        if missing(h):
            s.na(reason_of(h, k), k)
    if ok:
        fig, axes = _fig(4.2 * len(ok), 3.3, ncols=len(ok))
        for ax, h in zip(axes.flat, ok.values()):
            _hist_ax(ax, h)
        s.add(figure(fig, "recency, frequency and monetary value per customer"))
        s.add(table(_hist_stats(ok), 10))
    return s


# --- 3. segments ---------------------------------------------------------------------------------------


def segments_section(profiles: Any, metrics: Any, max_rows: int = 40, tier_order: tuple[str, ...] = ()) -> Section:
    """Segment profiles (size, RFM means, revenue share), their value tiers and the silhouette per k.

    Args:
        profiles: gold.segment_profiles of the latest as_of.
        metrics: The segments run's metrics.
        max_rows: Rows per table.
        tier_order: Value tier names, highest first (``jobs.value.tiers``), for the tier mix.
    """
    s = Section("segments", TITLES["segments"])
    if missing(profiles):
        s.na(reason_of(profiles, "gold.segment_profiles"), "segment profiles")
    else:
        p = profiles.copy()
        name = p["segment_name"].astype(str) if "segment_name" in p else p["segment"].astype(str)
        labels = [f"{sg}: {nm}" for sg, nm in zip(p["segment"], name)]
        info = []
        for c in ("as_of", "k", "silhouette"):
            if c in p and p[c].notna().any():
                info.append((c, p[c].iloc[0]))
        if info:
            s.add(kv_table(info))
        total_rev = p["total_monetary"].sum() if "total_monetary" in p else float("nan")
        fig, axes = _fig(11, 0.5 * len(p) + 1.6, ncols=2)
        share = p["share"] if "share" in p else p["n_customers"] / p["n_customers"].sum()
        axes[0, 0].barh(labels, share * 100, color=COLORS[: len(p)])
        axes[0, 0].set_xlabel("% of customers")
        axes[0, 0].invert_yaxis()
        if "total_monetary" in p and total_rev:
            axes[0, 1].barh(labels, p["total_monetary"] / total_rev * 100, color=COLORS[: len(p)])
            axes[0, 1].set_xlabel("% of revenue")
            axes[0, 1].invert_yaxis()
            axes[0, 1].set_yticklabels([])
        else:
            axes[0, 1].set_visible(False)
        s.add(figure(fig, "segment size and revenue share"))
        cols = ["segment", "segment_name", "n_customers", "share", "mean_recency_days", "mean_frequency",
                "mean_monetary", "median_monetary", "total_monetary", "mean_return_rate"]
        s.add(table(p[[c for c in cols if c in p]], max_rows, caption="gold.segment_profiles"))
        _segment_value(s, p, labels, max_rows, tuple(tier_order))
    m = _metrics(metrics, "segments")
    sil = {int(k.split(".k", 1)[1]): v for k, v in (m or {}).items() if k.startswith("silhouette.k")}
    if sil:
        ks = sorted(sil)
        fig, axes = _fig(5.5, 3.0)
        ax = axes[0, 0]
        ax.plot(ks, [sil[k] for k in ks], "o-", color="#1f6feb")
        if m.get("k") in sil:
            ax.plot([m["k"]], [sil[m["k"]]], "o", ms=12, mfc="none", mec="#c92a2a", label=f"chosen k={int(m['k'])}")
            ax.legend(fontsize=8)
        ax.set(xlabel="k (clusters)", ylabel="silhouette")
        s.add(figure(fig, "silhouette per number of clusters (segments run)"))
    else:
        s.na(reason_of(metrics, "segments run metrics") if missing(metrics) else "the segments run logged no silhouette.k*",
             "silhouette per k")
    return s


def _segment_value(s: Section, p: pd.DataFrame, labels: list[str], max_rows: int, tier_order: tuple = ()) -> None:
    """Tier mix and mean CLV per segment (profile columns of the segments stage with value tiers)."""
    s.add(heading("Value tiers per segment (gold.customer_value)"))
    if "mean_clv" not in p or not p["mean_clv"].notna().any():
        s.add(note("no value tiers on these segments: gold.customer_value did not exist (or had no slice on or "
                   "before the segments' as_of) when the segments stage ran"))
        return
    mix = calc.tier_mix(p, tier_order)
    if not mix.empty:
        fig, axes = _fig(8, 0.45 * len(mix) + 1.4)
        ax = axes[0, 0]
        totals = mix.sum(axis=1)
        shares = mix.div(totals.where(totals > 0), axis=0).fillna(0.0) * 100
        left = np.zeros(len(shares))
        for i, tier in enumerate(shares.columns):
            ax.barh(labels, shares[tier], left=left, color=COLORS[i % len(COLORS)], label=str(tier))
            left += shares[tier].to_numpy()
        ax.invert_yaxis()
        ax.set_xlabel("% of the segment's customers with a value")
        ax.legend(fontsize=8, ncol=len(shares.columns), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        s.add(figure(fig, "value tier mix per segment"))
    cols = ["segment", "segment_name", "n_customers", "n_valued", "mean_clv", "median_clv", "total_clv",
            "mean_p_alive", "n_at_risk"]
    t = p[[c for c in cols if c in p]].reset_index(drop=True)
    if not mix.empty:
        t = t.join(mix.add_prefix("tier "))
    when = p["value_as_of"].dropna() if "value_as_of" in p else pd.Series(dtype=object)
    caption = "CLV and value tiers per segment" + (f" (value as of {fmt_number(when.iloc[0])})" if len(when) else "")
    s.add(table(t, max_rows, caption=caption))


# --- 3b. customer lifetime value ---------------------------------------------------------------------

VALUE_METRICS = ("mae", "rmse", "aggregate_error")


def value_section(value: Any, calibration: Any, metrics: Any, max_rows: int = 40) -> Section:
    """CLV distribution and tiers, holdout calibration by frequency, top-value customers at risk."""
    s = Section("value", TITLES["value"])
    if missing(value):
        s.na(reason_of(value, "gold.customer_value"), "customer values")
    else:
        tot = value.totals
        s.add(kv_table([("as of", value.as_of), ("customers scored", value.customers), ("total CLV", tot.get("clv")),
                        ("expected spend over the horizon", tot.get("expected_spend")),
                        ("mean P(alive)", tot.get("mean_p_alive")), ("customers at risk", int(tot.get("at_risk", 0))),
                        ("CLV at risk", tot.get("clv_at_risk"))], caption="gold.customer_value (latest as_of)"))
        hists = [h for h in (value.clv, value.p_alive) if not missing(h)]
        for h, what in ((value.clv, "CLV histogram"), (value.p_alive, "P(alive) histogram")):
            if missing(h):
                s.na(reason_of(h, what), what)
        if hists:
            fig, axes = _fig(5.2 * len(hists), 3.4, ncols=len(hists))
            for ax, h in zip(axes.flat, hists):
                _hist_ax(ax, h)
            s.add(figure(fig, "distribution of CLV and of P(alive) per customer"))
        r = value.rule
        s.add(table(value.tiers, max_rows, caption=f"value tiers: {', '.join(r['tiers'])} split at the CLV quantiles "
                                                   f"{', '.join(str(q) for q in r['tier_quantiles'])}"))
    s.add(heading("Holdout calibration (value run)"))
    m = _metrics(metrics, "value")
    if m is None:
        s.na(reason_of(metrics, "value run metrics"), "holdout metrics")
    else:
        t = calc.value_holdout(m, VALUE_METRICS)
        if t.empty:
            s.na("the value run logged no holdout.h<days>.<target>.<metric>.<predictor>", "holdout metrics")
        else:
            s.add(table(t, max_rows, caption="holdout error per customer: BG/NBD (+ Gamma-Gamma for spend) vs the "
                                             "historical-rate and population-mean baselines; gain = 1 - RMSE / RMSE "
                                             "historical, 95 % bootstrap CI"))
    if missing(calibration):
        s.na(reason_of(calibration, "value calibration tables"), "calibration by frequency")
    else:
        cals = calc.value_calibration(calibration)
        fig, axes = _fig(5.0 * len(cals), 3.4, ncols=len(cals))
        for ax, (h, cal) in zip(axes.flat, cals.items()):
            ax.plot(cal["frequency"], cal["actual"], "o-", color="#343a40", label="actual")
            ax.plot(cal["frequency"], cal["model"], "s-", color="#1f6feb", label="BG/NBD")
            if "historical" in cal:
                ax.plot(cal["frequency"], cal["historical"], "^--", color="#e8590c", label="historical rate")
            ax.set(xlabel="repeat purchases before the cutoff (last = that or more)",
                   ylabel=f"mean purchases in {h} d", title=f"holdout {h} days")
            ax.legend(fontsize=7)
        fig.tight_layout()
        s.add(figure(fig, "mean holdout purchases by calibration frequency: actual vs predicted"))
        long = pd.concat([c.assign(holdout_days=h) for h, c in cals.items()], ignore_index=True)
        s.add(table(long[["holdout_days", *[c for c in long if c != "holdout_days"]]], max_rows,
                    caption="calibration by frequency (value run artifacts value/calibration_<days>d.csv)"))
    s.add(heading("Top-value customers at risk"))
    if missing(value):
        s.na(reason_of(value, "gold.customer_value"), "customers at risk")
    else:
        r = value.rule
        s.add(note(f"At risk: CLV at or above its {r['at_risk_min_clv_quantile']} quantile and P(alive) at or below "
                   f"{r['at_risk_max_p_alive']}; {int(value.totals.get('at_risk', 0)):,} customers, highest CLV first. "
                   "Pseudonymous customer_key only."))
        if value.at_risk.empty:
            s.add(note("no customer is at risk by this rule"))
        else:
            s.add(table(value.at_risk, max_rows, caption="at-risk customers (gold.customer_value)"))
    return s


# --- 4. purchase intent --------------------------------------------------------------------------------

INTENT_COLUMNS = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "specificity", "threshold",
                  "expected_cost", "targeted_rate"]


def intent_section(bins: Any, confusion_counts: Any, info: Any, metrics: Any, max_rows: int = 40) -> Section:
    """ROC / precision-recall, confusion matrix and calibration of the purchase-intent scores."""
    s = Section("intent", TITLES["intent"])
    info = info if isinstance(info, dict) else {}
    m = _metrics(metrics, "behaviour")
    model = info.get("model", "model")
    if missing(bins):
        s.na(reason_of(bins, "gold.purchase_intent"), "ROC / precision-recall / calibration")
    else:
        try:
            roc, auc = calc.roc_from_bins(bins)
            pr, ap = calc.pr_from_bins(bins)
        except ValueError as exc:
            s.na(f"{exc} in gold.purchase_intent ({info.get('split', '')})", "ROC")
        else:
            base_rate = bins["n_pos"].sum() / bins["n"].sum()
            s.add(note(f"gold.purchase_intent, {info.get('split', 'all sessions')}: {int(bins['n'].sum()):,} sessions, "
                       f"purchase rate {base_rate:.3f}; model {model}"
                       + (f", threshold {float(info['threshold']):.3f}" if calc.finite(info.get("threshold")) else "")
                       + f". Curves from {len(bins)} score bins (AUC {auc:.3f}, average precision {ap:.3f})."))
            fig, axes = _fig(11, 4.2, ncols=2)
            a, b = axes[0, 0], axes[0, 1]
            a.plot(roc["fpr"], roc["tpr"], color="#1f6feb", lw=2, label=f"{model} (AUC {auc:.3f})")
            a.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="random")
            a.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
            a.legend(fontsize=8, loc="lower right")
            b.plot(pr["recall"], pr["precision"], color="#1f6feb", lw=2, label=f"{model} (AP {ap:.3f})")
            b.axhline(base_rate, ls="--", color="grey", lw=1, label=f"base rate {base_rate:.3f}")
            b.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
            b.legend(fontsize=8)
            s.add(figure(fig, "ROC and precision-recall curves on the test split"))
        cal = calc.calibration_from_bins(bins)
        fig, axes = _fig(5.2, 4.2)
        ax = axes[0, 0]
        ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect")
        ax.plot(cal["mean_predicted"], cal["observed_rate"], "o-", color="#e8590c", label=model)
        ax.set(xlabel="mean predicted probability", ylabel="observed purchase rate", title="calibration",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=8)
        cal_fig = figure(fig, "calibration (reliability) in 10 probability bins")
        cm_fig = None
        if not missing(confusion_counts):
            cm, rates = calc.confusion(confusion_counts)
            fig, axes = _fig(4.6, 4.2)
            ax = axes[0, 0]
            ax.grid(False)
            ax.imshow(cm, cmap="Blues")
            for i in range(2):
                for j in range(2):
                    ax.text(j, i, f"{cm[i, j]:,}", ha="center", va="center",
                            color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=12)
            ax.set_xticks([0, 1], ["no purchase", "purchase"])
            ax.set_yticks([0, 1], ["no purchase", "purchase"])
            ax.set(xlabel="predicted", ylabel="actual", title="confusion matrix")
            cm_fig = figure(fig, f"confusion matrix at the chosen threshold (accuracy {rates['accuracy']:.3f}, "
                                 f"precision {rates['precision']:.3f}, recall {rates['recall']:.3f})")
        else:
            s.na(reason_of(confusion_counts, "confusion counts"), "confusion matrix")
        s.add(row(*(x for x in (cm_fig, cal_fig) if x)))
    s.add(heading("Test metrics: selected model vs baselines (behaviour run)"))
    if m is None:
        s.na(reason_of(metrics, "behaviour run metrics"), "test metrics")
    else:
        t = calc.model_metric_table(m, "test", INTENT_COLUMNS)
        if t.empty:
            s.na("the behaviour run logged no test.<model>.<metric>", "test metrics")
        else:
            t = t[["model", *[c for c in INTENT_COLUMNS if c in t]]].sort_values(
                "pr_auc" if "pr_auc" in t else "model", ascending=False)
            s.add(table(t, max_rows))
    return s


# --- 5. recommender ---------------------------------------------------------------------------------

MODELS_OF_RECORD = ("als", "blend")  # the recommender's own models; the rest are baselines


def recommend_section(metrics: Any, recs: Any, k: int = 10, max_rows: int = 40) -> Section:
    """Ranking metrics@k of ALS and the blend against popularity / item-CF baselines."""
    s = Section("recommend", TITLES["recommend"])
    m = _metrics(metrics, "recommend")
    long = calc.recommend_metrics(m) if m is not None else pd.DataFrame()
    if m is None:
        s.na(reason_of(metrics, "recommend run metrics"), "metrics@k")
    elif long.empty:
        s.na("the recommend run logged no temporal.* / hide.* metrics", "metrics@k")
    else:
        for protocol, desc in (("temporal", "time split: train before the cutoff, test on the next days"),
                               ("hide", "per-user random hide of interactions")):
            d = long[long["protocol"] == protocol]
            if d.empty:
                if protocol == "hide":  # optional protocol (jobs.recommend.evaluate_random_hide)
                    s.add(note("per-user random hide protocol: not run (jobs.recommend.evaluate_random_hide is off)"))
                else:
                    s.na(f"the recommend run logged no {protocol}.* metrics", f"{protocol} protocol")
                continue
            s.add(heading(f"{protocol} protocol ({desc})"))
            at_k = d[d["k"] == k]
            main = ("map", "ndcg", "precision", "recall")
            if not at_k.empty:
                wide = at_k.pivot_table(index="model", columns="metric", values="value", aggfunc="first")
                order = [c for c in main if c in wide] + [c for c in wide if c not in main]
                wide = wide[order]
                wide.columns = [f"{c}@{k}" for c in wide.columns]
                other = d[d["k"].isna()].pivot_table(index="model", columns="metric", values="value", aggfunc="first")
                if not other.empty:
                    first = [c for c in ("auc", "auc_ci_low", "auc_ci_high") if c in other]
                    other = other[first + [c for c in other if c not in first]]
                    wide = wide.join(other, how="left")
                wide = wide.sort_values(wide.columns[0], ascending=False).reset_index()
                s.add(table(wide, max_rows, caption=f"metrics at k={k} (best first by the first column)"))
            bars = [x for x in (*main, "auc") if x in set(at_k["metric"]) or (x == "auc" and x in set(d["metric"]))]
            if bars:
                fig, axes = _fig(3.0 * len(bars), 0.32 * d["model"].nunique() + 1.4, ncols=len(bars))
                for ax, metric in zip(axes.flat, bars):
                    sub = (d[(d["metric"] == metric) & d["k"].isna()] if metric == "auc" else
                           at_k[at_k["metric"] == metric]).sort_values("value")
                    ax.barh(sub["model"], sub["value"],
                            color=["#e8590c" if mdl in MODELS_OF_RECORD else "#1f6feb" for mdl in sub["model"]])
                    ax.set_title(metric if metric == "auc" else f"{metric}@{k}", fontsize=10)
                    ax.tick_params(axis="y", labelsize=8)
                fig.tight_layout()
                s.add(figure(fig, f"{protocol} protocol at k={k}: ALS and the blend (orange) vs baselines (blue)"))
            curve = d[d["k"].notna() & d["metric"].isin(main)]
            metrics_present = [x for x in main if x in set(curve["metric"])]
            if metrics_present and curve["k"].nunique() > 2:
                fig, axes = _fig(3.2 * len(metrics_present), 3.2, ncols=len(metrics_present))
                for ax, metric in zip(axes.flat, metrics_present):
                    for i, (model, g) in enumerate(curve[curve["metric"] == metric].groupby("model")):
                        g = g.sort_values("k")
                        ax.plot(g["k"], g["value"], "o-", ms=3, color=COLORS[i % len(COLORS)], label=model,
                                lw=2 if model in MODELS_OF_RECORD else 1)
                    ax.set(xlabel="k", title=f"{metric}@k", xscale="log")
                axes.flat[0].legend(fontsize=7)
                s.add(figure(fig, f"{protocol} protocol: metrics at k per model"))
        extra = {k2: v for k2, v in m.items() if k2.startswith(("val_", "tuning.")) or k2 == "temporal.cold_test_users"}
        if extra:
            s.add(kv_table(sorted(extra.items()), caption="tuning and evaluation"))
    s.add(heading("Recommendations written (gold.recommendations)"))
    _table_or_na(s, recs, "gold.recommendations", "recommendations", max_rows, "rows per source")
    return s


# --- 6. forecast ----------------------------------------------------------------------------------------


def forecast_section(history: Any, forecasts: Any, backtest: Any, metrics: Any, max_rows: int = 40) -> Section:
    """Actual demand before the horizon, P50 forecast with the P90 band, backtest accuracy vs baselines."""
    s = Section("forecast", TITLES["forecast"])
    if missing(forecasts):
        s.na(reason_of(forecasts, "gold.forecasts"), "forecast")
    else:
        fc = forecasts.copy()
        fc["date"] = pd.to_datetime(fc["date"])
        meta = getattr(forecasts, "attrs", {}).get("meta", {})
        hist = None
        if missing(history):
            s.na(reason_of(history, "gold.demand_daily"), "actual demand before the forecast")
        else:
            hist = history.copy()
            hist["date"] = pd.to_datetime(hist["date"])
        whs = sorted(fc["warehouse"].unique())
        panels = ["all warehouses", *whs] if len(whs) > 1 else whs
        ncols = 2 if len(panels) > 1 else 1
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = _fig(6.2 * ncols, 3.0 * nrows, ncols=ncols, nrows=nrows)
        for ax, name in zip(axes.flat, panels):
            f = fc if name == "all warehouses" else fc[fc["warehouse"] == name]
            f = f.groupby("date", as_index=False)[["p50", "p90"]].sum()
            if hist is not None:
                h = hist if name == "all warehouses" else hist[hist["warehouse"] == name]
                h = h.groupby("date", as_index=False)["units"].sum()
                ax.plot(h["date"], h["units"], color="#343a40", lw=1, label="actual")
            ax.plot(f["date"], f["p50"], color="#1f6feb", lw=1.6, label="forecast P50")
            ax.fill_between(f["date"], f["p50"], f["p90"], color="#1f6feb", alpha=0.2, label="P50-P90")
            ax.set_title(name, fontsize=10)
            ax.tick_params(axis="x", labelsize=7, rotation=30)
            ax.set_ylabel("units / day")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        s.add(figure(fig, "actual daily units (forecasted series) and the forecast with its P50-P90 interval"))
        per_model = getattr(forecasts, "attrs", {}).get("series_per_model") or {}
        n_series = sum(per_model.values()) if per_model else int(fc.groupby("warehouse")["items"].max().sum())
        models = ", ".join(f"{m} {n:,}" for m, n in sorted(per_model.items(), key=lambda x: -x[1]))
        s.add(note(f"Totals over the {n_series:,} forecasted item x warehouse series"
                   + (f" (series per model: {models})" if models else "")
                   + f"; the band sums the series' P90s, an upper envelope rather than the P90 of the total. "
                   f"Model version {meta.get('model_version', '?')}, made at {fmt_number(meta.get('made_at'))}; "
                   f"horizon {fc['date'].min():%Y-%m-%d} to {fc['date'].max():%Y-%m-%d}."))
    s.add(heading("Backtest (rolling origin): LSTM vs baselines"))
    if missing(backtest):
        s.na(reason_of(backtest, "gold.forecast_backtest"), "backtest")
    else:
        bt = backtest.copy()
        overall = bt[bt["cutoff"].isna()] if "cutoff" in bt else bt
        per_cut = bt[bt["cutoff"].notna()] if "cutoff" in bt else bt.iloc[0:0]
        cols = ["model", "n_series", "mase", "wape", "bias", "pinball_p50", "pinball_p90", "coverage_p90"]
        if not overall.empty:
            s.add(table(overall.sort_values("mase")[[c for c in cols if c in overall]], max_rows,
                        caption="all cutoffs (lower MASE / WAPE / pinball is better; P90 coverage should be near 0.9)"))
        if per_cut["cutoff"].nunique() < 2 and not overall.empty:  # one cutoff: compare the models directly
            o = overall.sort_values("mase")
            fig, axes = _fig(11, 0.45 * len(o) + 1.5, ncols=2)
            colours = ["#e8590c" if m == "lstm" else "#1f6feb" for m in o["model"]]
            axes[0, 0].barh(o["model"], o["mase"], color=colours)
            axes[0, 0].set(title="MASE (lower is better)")
            if "coverage_p90" in o:
                axes[0, 1].barh(o["model"], o["coverage_p90"], color=colours)
                axes[0, 1].axvline(0.9, ls="--", color="grey", lw=1)
                axes[0, 1].set(title="P90 coverage (target 0.9)", xlim=(0, 1))
            fig.tight_layout()
            s.add(figure(fig, "backtest: LSTM (orange) vs baselines (blue)"))
        if per_cut["cutoff"].nunique() >= 2:
            fig, axes = _fig(11, 3.4, ncols=2)
            for i, (model, g) in enumerate(per_cut.groupby("model")):
                g = g.sort_values("cutoff")
                c = COLORS[i % len(COLORS)]
                axes[0, 0].plot(pd.to_datetime(g["cutoff"]), g["mase"], "o-", color=c, label=model,
                                lw=2 if model == "lstm" else 1)
                if "coverage_p90" in g:
                    axes[0, 1].plot(pd.to_datetime(g["cutoff"]), g["coverage_p90"], "o-", color=c, label=model,
                                    lw=2 if model == "lstm" else 1)
            axes[0, 0].set(title="MASE per cutoff", ylabel="MASE")
            axes[0, 1].axhline(0.9, ls="--", color="grey", lw=1)
            axes[0, 1].set(title="P90 coverage per cutoff (target 0.9)", ylabel="share of actuals <= P90")
            for ax in axes.flat:
                ax.tick_params(axis="x", labelsize=7, rotation=30)
            axes[0, 0].legend(fontsize=7)
            s.add(figure(fig, "backtest accuracy and interval coverage per cutoff"))
            s.add(table(per_cut[[c for c in ["cutoff", *cols] if c in per_cut]], max_rows, caption="per cutoff"))
    m = _metrics(metrics, "forecast")
    if m is not None:
        gains = [(k2, v) for k2, v in sorted(m.items()) if k2.startswith("bt.mase_gain_vs_")]
        if gains:
            s.add(kv_table(gains, caption="MASE gain of the LSTM vs each baseline (with bootstrap CI)"))
    return s


# --- 7. inventory ---------------------------------------------------------------------------------------


def inventory_section(status: Any, plan: Any, metrics: Any, max_rows: int = 40) -> Section:
    """LP status and costs per warehouse, planned orders / stock / shortage per period."""
    s = Section("inventory", TITLES["inventory"])
    m = _metrics(metrics, "inventory")
    if m:
        keys = ["total_cost", "planned_fill_rate", "realized_fill_rate", "backtest_total_cost", "backtest_realized_fill_rate",
                "backtest_realized_cycle_service", "n_warehouses", "status_optimal", "status_infeasible_relaxed",
                "status_error", "solve_seconds"]
        s.add(kv_table([(k2, m[k2]) for k2 in keys if k2 in m], caption="inventory run"))
    if missing(status):
        s.na(reason_of(status, "gold.inventory_status"), "solver status and costs")
    else:
        st = status.copy()
        cost_cols = [c for c in ("cost_ordering", "cost_holding", "cost_shortage", "cost_safety") if c in st]
        if cost_cols:
            fig, axes = _fig(7.5, 0.5 * len(st) + 1.4)
            ax = axes[0, 0]
            labels = [f"{w} ({sc})" for w, sc in zip(st["warehouse"], st.get("scenario", [""] * len(st)))]
            left = np.zeros(len(st))
            for i, c in enumerate(cost_cols):
                v = st[c].fillna(0.0).to_numpy()
                ax.barh(labels, v, left=left, color=COLORS[i], label=c.replace("cost_", ""))
                left += v
            ax.invert_yaxis()
            ax.set_xlabel("cost (currency units)")
            ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
            s.add(figure(fig, "planned cost per warehouse and scenario, by component"))
        cols = ["scenario", "warehouse", "status", "forecast_source", "n_items", "objective", *cost_cols,
                "planned_fill_rate", "realized_fill_rate", "realized_cycle_service", "realized_cost", "slack_capacity",
                "slack_budget", "slack_fill_rate", "solve_seconds", "message"]
        s.add(table(st[[c for c in cols if c in st]], max_rows, caption="gold.inventory_status"))
    if missing(plan):
        s.na(reason_of(plan, "gold.inventory_plan"), "plan per period")
    else:
        pl = plan.copy()
        scen = pl[pl["scenario"] == "plan"] if "scenario" in pl and (pl["scenario"] == "plan").any() else pl
        whs = sorted(scen["warehouse"].unique())[:6]
        ncols = 2 if len(whs) > 1 else 1
        nrows = math.ceil(len(whs) / ncols)
        fig, axes = _fig(6.2 * ncols, 3.0 * nrows, ncols=ncols, nrows=nrows)
        for ax, w in zip(axes.flat, whs):
            g = scen[scen["warehouse"] == w].sort_values("period")
            x = g["period"].to_numpy()
            ax.bar(x - 0.2, g["order_qty"], width=0.4, color="#1f6feb", label="order qty")
            if "shortage" in g:
                ax.bar(x + 0.2, g["shortage"], width=0.4, color="#c92a2a", label="shortage")
            ax.plot(x, g["inventory_end"], "o-", color="#2f9e44", label="stock at end")
            if "demand_p50" in g:
                ax.plot(x, g["demand_p50"], "s--", color="#343a40", ms=3, lw=1, label="demand P50")
            ax.set(title=w, xlabel="period", ylabel="units")
            ax.set_xticks(x)
        for ax in list(axes.flat)[len(whs):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, 1.04), frameon=False)
        fig.tight_layout()
        s.add(figure(fig, "planned orders, stock and shortage per period (plan scenario, summed over items)"))
        if "scenario" in pl and (pl["scenario"] == "backtest").any() and "actual_demand" in pl:
            bt = pl[pl["scenario"] == "backtest"].groupby("warehouse")[["demand_p50", "actual_demand", "shortage",
                                                                         "realized_shortage"]].sum().reset_index()
            bt["realized_fill_rate"] = 1 - bt["realized_shortage"] / bt["actual_demand"].where(bt["actual_demand"] > 0)
            s.add(table(bt, max_rows, caption="backtest scenario: planned on a seasonal-naive forecast, met by actual demand"))
    return s


# --- 8. uplift ---------------------------------------------------------------------------------------------


EFFECT_COLUMNS = ["selection_qini_auc", "selection_uplift_auc", "qini_auc", "qini_auc_lo", "qini_auc_hi", "uplift_auc", "uplift_at_10", "uplift_at_20", "uplift_at_30"]


def uplift_section(buckets: Any, metrics: Any, params: Any = None, outcomes: tuple[str, ...] = ("visit", "conversion", "spend"),
                   max_rows: int = 40) -> Section:
    """Qini curves of the written uplift scores on held-out customers, and validation metrics per learner."""
    s = Section("uplift", TITLES["uplift"])
    if missing(buckets):
        s.na(reason_of(buckets, "gold.uplift_scores"), "Qini curves")
    else:
        groups = list(buckets.groupby(["action", "outcome"], sort=True))
        ncols = min(3, len(groups))
        nrows = math.ceil(len(groups) / ncols)
        fig, axes = _fig(4.4 * ncols, 3.3 * nrows, ncols=ncols, nrows=nrows)
        summary = []
        for ax, ((action, outcome), g) in zip(axes.flat, groups):
            q = calc.qini_from_buckets(g)
            ax.plot(q["share"] * 100, q["qini"], color="#1f6feb", lw=2, label="model")
            ax.plot(q["share"] * 100, q["random"], "--", color="grey", lw=1, label="random")
            ax.set(title=f"{action}: {outcome}", xlabel="% targeted (by predicted uplift)", ylabel="incremental")
            ax.title.set_fontsize(9)
            area = float(np.trapz(q["qini"] - q["random"], q["share"]))
            top = q.iloc[(q["share"] - 0.3).abs().argmin()]
            summary.append({"action": action, "outcome": outcome, "customers": int(g["n_t"].sum() + g["n_c"].sum()),
                            "incremental (all)": q["qini"].iloc[-1], "incremental at ~30%": top["qini"],
                            "area vs random": area})
        for ax in list(axes.flat)[len(groups):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7)
        fig.tight_layout()
        held = getattr(buckets, "attrs", {}).get("holdout_only", False)
        s.add(figure(fig, "Qini curves of gold.uplift_scores on " + ("held-out" if held else "all") + " customers"))
        s.add(note("Customers sorted by predicted uplift and bucketed; Qini = Y_t - Y_c N_t / N_c per prefix. "
                   "'area vs random' is the area between the curve and the random line per customer share."))
        s.add(table(pd.DataFrame(summary), max_rows))
    s.add(heading("Validation metrics per learner (effect run)"))
    m = _metrics(metrics, "effect")
    if m is None:
        s.na(reason_of(metrics, "effect run metrics"), "learner metrics")
    else:
        t = calc.effect_metrics(m, outcomes)
        if t.empty:
            s.na("the effect run logged no <arm>.<outcome>.<learner>.<metric>", "learner metrics")
        else:
            sel = dict(params or {})
            t["selected"] = [sel.get(f"selected.{a}.{o}") == lr for a, o, lr in zip(t["arm"], t["outcome"], t["learner"])]
            cols = ["arm", "outcome", "learner", "selected", *[c for c in EFFECT_COLUMNS if c in t]]
            s.add(table(t[cols], max_rows, caption="Qini AUC on the selection rows (which chose the learner) and on the held-out rows "
                                                "with bootstrap CI, uplift@k (selected learner marked)"))
    return s


# --- 9. A/B tests ------------------------------------------------------------------------------------------


def ab_section(evaluations: Any, max_rows: int = 40) -> Section:
    """Measured campaign effects per arm x metric with CIs and adjusted p-values."""
    s = Section("ab", TITLES["ab"])
    if missing(evaluations):
        s.na(reason_of(evaluations, "gold.campaign_evaluations"), "A/B results")
        return s
    ev = evaluations.copy()
    first = ev.iloc[0]
    srm = [("campaign", first.get("campaign")), ("control arm", first.get("control_arm")),
           ("SRM p-value", first.get("srm_p_value")), ("sample-ratio mismatch", first.get("srm_mismatch")),
           ("correction", first.get("correction")), ("alpha", first.get("alpha")),
           ("segment rows (not shown)", getattr(evaluations, "attrs", {}).get("segment_rows"))]
    s.add(kv_table([(k, v) for k, v in srm if v is not None]))
    metrics = list(dict.fromkeys(ev["metric"]))
    nrows = math.ceil(len(metrics) / 3)
    fig, axes = _fig(4.0 * min(len(metrics), 3), nrows * (0.4 * ev["arm"].nunique() + 1.3), ncols=min(len(metrics), 3),
                     nrows=nrows)
    for ax, metric in zip(axes.flat, metrics):
        g = ev[ev["metric"] == metric].reset_index(drop=True)
        y = np.arange(len(g))
        sig = g["significant"].astype(bool) if "significant" in g else pd.Series(False, index=g.index)
        ax.errorbar(g["effect"], y, xerr=_bars(g["effect"], g["ci_low"], g["ci_high"]), fmt="none",
                    ecolor="#343a40", capsize=3)
        ax.scatter(g["effect"], y, c=np.where(sig, "#2f9e44", "#868e96"), zorder=3)
        ax.axvline(0, color="#c92a2a", lw=1)
        ax.set_yticks(y, g["arm"])
        ax.set_ylim(-0.6, len(g) - 0.4)
        ax.set_title(metric, fontsize=9)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    s.add(figure(fig, "effect vs control with confidence intervals (green: significant after correction)"))
    cols = ["arm", "metric", "effect", "ci_low", "ci_high", "relative_lift", "p_value", "p_adjusted", "significant",
            "value_treated", "value_control", "n_treated", "n_control", "test"]
    s.add(table(ev[[c for c in cols if c in ev]], max_rows, caption="overall rows (segment = all)"))
    return s


# --- 10. strategy ----------------------------------------------------------------------------------------


def strategy_section(summary: Any, metrics: Any, max_rows: int = 40, params: Any = None) -> Section:
    """Off-policy value of the strategy vs baselines (CIs), budget use, actions per segment."""
    s = Section("strategy", TITLES["strategy"])
    m = _metrics(metrics, "strategy")
    if m is None:
        s.na(reason_of(metrics, "strategy run metrics"), "policy values")
    else:
        ope = calc.ope_estimates(m)
        if ope.empty:
            s.na("the strategy run logged no ope.* metrics", "policy values")
        else:
            est = "dr" if (ope["estimator"] == "dr").any() else ope["estimator"].iloc[0]
            d = ope[ope["estimator"] == est].sort_values("value")
            fig, axes = _fig(8, 0.45 * len(d) + 1.4)
            ax = axes[0, 0]
            y = np.arange(len(d))
            has_ci = d["lo"].notna() & d["hi"].notna()
            xerr = np.vstack([(d["value"] - d["lo"]).where(has_ci, 0), (d["hi"] - d["value"]).where(has_ci, 0)]).clip(min=0)
            ax.barh(y, d["value"], xerr=xerr, capsize=3,
                    color=["#e8590c" if p == "strategy" else "#1f6feb" for p in d["policy"]])
            ax.set_yticks(y, d["policy"])
            ax.axvline(0, color="#343a40", lw=0.8)
            ax.set_xlabel(f"estimated value per customer ({est.upper()}, 95% CI)")
            s.add(figure(fig, f"policy value: strategy vs baselines ({est} estimator)"))
            ref = dict(params or {}).get("reference_policy")
            main = ope[ope["estimator"] == est].sort_values("value", ascending=False)
            s.add(table(main, max_rows, caption=f"{est} estimates; diff = value minus the reference policy"
                                                + (f" ({ref})" if ref else "") + " with a paired CI; mde = the smallest"
                                                " difference this sample detects (95 %, power 0.8)"))
            if ope["estimator"].nunique() > 1:
                wide = ope.pivot_table(index="policy", columns="estimator", values="value", aggfunc="first")
                wide = wide.sort_values(est, ascending=False).reset_index()
                wide.columns.name = None
                s.add(table(wide, max_rows, caption="value per customer by estimator"))
        budget = [(k2, v) for k2, v in sorted(m.items()) if k2.startswith("budget.")]
        if budget:
            s.add(kv_table(budget, caption="budget use"))
    if missing(summary):
        s.na(reason_of(summary, "gold.strategy_summary"), "actions per segment")
    else:
        sm = summary.copy()
        pv = sm.pivot_table(index="segment", columns="action", values="customers", aggfunc="sum", fill_value=0)
        fig, axes = _fig(8, 0.45 * len(pv) + 1.4)
        ax = axes[0, 0]
        left = np.zeros(len(pv))
        for i, a in enumerate(pv.columns):
            ax.barh(pv.index.astype(str), pv[a], left=left, color=COLORS[i % len(COLORS)], label=str(a))
            left += pv[a].to_numpy()
        ax.invert_yaxis()
        ax.set_xlabel("customers")
        ax.legend(fontsize=8, ncol=len(pv.columns), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        s.add(figure(fig, "chosen action per segment (gold.strategy_summary)"))
        s.add(table(sm, max_rows, caption="gold.strategy_summary"))
    return s


# --- 10b. the shop's campaign waves ------------------------------------------------------------


def _regret_table(plans: pd.DataFrame) -> pd.DataFrame:
    """One row per wave: the strategy predicted (interval) and, where known, true; the oracle and the regret."""
    pv = plans.pivot_table(index="wave", columns="policy", values="true", aggfunc="first")
    strat = plans[plans["policy"] == "strategy"].set_index("wave")
    out = pd.DataFrame(index=sorted(plans["wave"].unique()))
    out.index.name = "wave"
    for c in ("predicted", "predicted_low", "predicted_high", "roi"):
        out[f"strategy_{c}"] = strat[c] if c in strat else math.nan
    singles = [c for c in pv.columns if str(c).startswith("all_")]
    for c in ("strategy", "oracle", "random"):
        out[f"true_{c}"] = pv[c] if c in pv else math.nan
    out["true_best_single"] = pv[singles].max(axis=1) if singles else math.nan
    out["regret"] = out["true_oracle"] - out["true_strategy"]
    span = out["true_oracle"] - out["true_best_single"]
    out["gap_closed"] = ((out["true_strategy"] - out["true_best_single"]) / span).where(span > 0)
    return out.reset_index()


def campaign_section(plans: Any, results: Any, featured: Any, max_rows: int = 40) -> Section:
    """The shop's waves: predicted vs (simulated) true profit and regret per wave, predicted vs measured per arm, featured products."""
    s = Section("campaign", TITLES["campaign"])
    if missing(plans):
        s.na(reason_of(plans, "gold.campaign_plans"), "plans per wave")
    else:
        reg = _regret_table(plans)
        simulated = reg["true_strategy"].notna().any()
        fig, axes = _fig(8, 3.4, ncols=2)
        ax = axes[0, 0]
        has = reg["strategy_predicted"].notna()
        r = reg[has]
        ax.errorbar(r["wave"], r["strategy_predicted"],
                    yerr=_bars(r["strategy_predicted"], r["strategy_predicted_low"], r["strategy_predicted_high"]),
                    fmt="o", color="#e8590c", capsize=3, label="strategy, predicted")
        if simulated:
            for i, (c, lab) in enumerate((("true_strategy", "strategy"), ("true_best_single", "best single action"),
                                          ("true_random", "random"), ("true_oracle", "oracle"))):
                ax.plot(reg["wave"], reg[c], marker=".", color=COLORS[i], label=f"{lab}, true")
        ax.axhline(0, color="#343a40", lw=0.8)
        ax.set_xlabel("wave")
        ax.set_ylabel("incremental profit of the wave")
        ax.legend(fontsize=7, frameon=False)
        ax2 = axes[0, 1]
        if simulated:
            ax2.plot(reg["wave"], reg["regret"], marker="o", color="#c92a2a")
            ax2.set_ylabel("regret (oracle - strategy, true)")
        else:
            ax2.set_visible(False)
        ax2.set_xlabel("wave")
        fig.tight_layout()
        truth = (" true = the campaign simulator's ground truth (docs/SIMULATOR.md), which no model saw"
                 if simulated else " no ground truth: measured effects are below")
        s.add(figure(fig, "predicted profit per wave with its interval, and the regret curve;" + truth))
        s.add(table(reg, max_rows, caption="per wave: the strategy's predicted profit (interval), true profits of "
                                           "the strategy and the baselines, regret and the share of the gap between "
                                           "the best single action and the oracle that the strategy closed"))
    if missing(results):
        s.na(reason_of(results, "gold.campaign_results"), "measured effects")
    else:
        res = results.copy()
        ok = res[(res["status"] == "ok") & res["measured"].notna()] if "status" in res else res
        pred = ok[ok["predicted"].notna()] if "predicted" in ok else ok.iloc[0:0]
        if len(ok):
            fig, axes = _fig(7.5, 0.35 * len(ok) + 1.5)
            ax = axes[0, 0]
            y = np.arange(len(ok))
            labels = [f"w{int(w)} {a}" for w, a in zip(ok["wave"], ok["arm"])]
            ax.errorbar(ok["measured"], y - 0.12, xerr=_bars(ok["measured"], ok["measured_low"], ok["measured_high"]),
                        fmt="o", color="#1f6feb", capsize=3, label="measured (A/B vs holdout)")
            if len(pred):
                yp = y[ok.index.get_indexer(pred.index)]
                ax.errorbar(pred["predicted"], yp + 0.12,
                            xerr=_bars(pred["predicted"], pred["predicted_low"], pred["predicted_high"]),
                            fmt="s", color="#e8590c", capsize=3, label="predicted")
            ax.axvline(0, color="#343a40", lw=0.8)
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
            ax.set_xlabel("incremental profit per customer")
            ax.legend(fontsize=7, frameon=False)
            fig.tight_layout()
            covered = int(pred["covered"].astype(bool).sum()) if len(pred) and "covered" in pred else 0
            s.add(figure(fig, f"predicted vs measured per wave x arm; {covered} of {len(pred)} predicted intervals "
                              "cover the measured effect"))
        else:
            s.add(note("no wave x arm cell has a measured effect yet"))
        cols = ["wave", "arm", "design", "n_treated", "n_control", "measured", "measured_low", "measured_high",
                "p_value", "predicted", "predicted_low", "predicted_high", "covered", "order_lift", "status"]
        s.add(table(res[[c for c in cols if c in res]], max_rows, caption="gold.campaign_results"))
    if missing(featured):
        s.na(reason_of(featured, "featured products"), "featured products per segment")
    else:
        wave = getattr(featured, "attrs", {}).get("wave")
        cols = [c for c in ("segment_name", "rank", "item_id", "description", "emails") if c in featured]
        s.add(table(featured[cols], max_rows, caption="products featured most often per segment in the e-mails sent"
                                                      + (f" in wave {wave}" if wave is not None else "")
                                                      + " (recommender candidates after the inventory veto)"))
    return s


# --- 11. feature importance --------------------------------------------------------------------------


def drift_section(rows: Any, max_rows: int = 40) -> Section:
    """The latest drift run (ops.drift): PSI per watched column x slice against the warn and block lines."""
    s = Section("drift", TITLES["drift"])
    if missing(rows):
        s.na(reason_of(rows, "ops.drift"), "drift checks")
        return s
    first = rows.iloc[0]
    counts = rows["status"].value_counts()
    s.add(kv_table([("checked at", first["checked_at"]), ("accepted", bool(rows["accepted"].all())),
                    *[(f"{k} columns", int(v)) for k, v in counts.items()]]))
    compared = rows.dropna(subset=["psi"]).head(max_rows)
    if not compared.empty:
        labels = [f"{r.table}.{r.column}" + ("" if r.slice == "all" else f" [{r.slice}]") for r in compared.itertuples()]
        colour = {"block": "#c92a2a", "warn": "#f08c00"}
        fig, axes = _fig(7.5, 0.3 * len(compared) + 1.2)
        ax = axes[0, 0]
        y = np.arange(len(compared))
        ax.barh(y, compared["psi"], color=[colour.get(st, "#1f6feb") for st in compared["status"]])
        for limit, name in ((rows.attrs.get("warn_psi", 0.1), "warn"), (rows.attrs.get("block_psi", 0.25), "block")):
            ax.axvline(limit, color=colour[name], lw=1, ls="--")
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("population stability index vs the reference version")
        fig.tight_layout()
        s.add(figure(fig, "PSI per watched column (dashed: the warn and block lines of jobs.drift)"))
    cols = ["table", "column", "slice", "status", "psi", "ks_stat", "ks_pvalue", "null_rate_ref", "null_rate_cur",
            "n_ref", "n_cur", "ref_version", "cur_version"]
    s.add(table(rows[[c for c in cols if c in rows]], max_rows, caption="one row per watched column x slice"))
    return s


def importance_section(behaviour: Any, effect: Any, effect_params: Any = None, top: int = 15) -> Section:
    """Feature importance of the purchase-intent model and of the selected uplift learners."""
    s = Section("importance", TITLES["importance"])
    s.add(heading("Purchase intent (behaviour run, selected model)"))
    if missing(behaviour):
        s.na(reason_of(behaviour, "behaviour feature importance"), "purchase-intent importance")
    else:
        imp = behaviour.sort_values("importance", ascending=False).head(top).iloc[::-1]
        fig, axes = _fig(7, 0.3 * len(imp) + 1.2)
        axes[0, 0].barh(imp["feature"].astype(str), imp["importance"], color="#1f6feb")
        axes[0, 0].set_xlabel("importance")
        s.add(figure(fig, f"top {len(imp)} features of the purchase-intent model"))
    s.add(heading("Uplift models (effect run, selected learner per arm x outcome)"))
    if missing(effect):
        s.na(reason_of(effect, "effect feature importance"), "uplift importance")
        return s
    sel = dict(effect_params or {})
    cols = {}
    for name, df in sorted(effect.items()):
        key = name.removeprefix("importance_").removesuffix(".csv")
        if df.empty or not {"feature", "importance"} <= set(df.columns):
            continue
        learner = sel.get(f"selected.{key}")
        d = df[df["learner"] == learner] if learner and "learner" in df and (df["learner"] == learner).any() else df
        v = d.groupby("feature")["importance"].mean()
        cols[f"{key} ({learner or 'all learners'})"] = v / v.sum() if v.sum() else v
    if not cols:
        s.na("no importance_*.csv with feature / importance columns", "uplift importance")
        return s
    heat = pd.DataFrame(cols).fillna(0.0)
    heat = heat.loc[heat.mean(axis=1).sort_values(ascending=False).index].head(top)
    fig, axes = _fig(1.1 * heat.shape[1] + 3.5, 0.35 * len(heat) + 2.2)
    ax = axes[0, 0]
    ax.grid(False)
    im = ax.imshow(heat.to_numpy(), cmap="Blues", aspect="auto")
    ax.set_yticks(range(len(heat)), heat.index)
    ax.set_xticks(range(heat.shape[1]), [c.replace(" (", "\n(") for c in heat.columns], rotation=45, ha="right",
                  fontsize=7)
    for i in range(heat.shape[0]):
        for j in range(heat.shape[1]):
            ax.text(j, i, f"{heat.iat[i, j]:.2f}", ha="center", va="center", fontsize=8 if heat.shape[1] <= 8 else 6,
                    color="white" if heat.iat[i, j] > heat.to_numpy().max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.03)
    s.add(figure(fig, "normalised importance per arm x outcome (mean over the learner's models)"))
    return s


# --- 12. lineage ----------------------------------------------------------------------------------------


def lineage_section(versions: Mapping[str, int], runs: Mapping[str, Any], settings_info: Mapping[str, Any]) -> Section:
    """Which table versions and which MLflow runs the report was built from."""
    s = Section("lineage", TITLES["lineage"])
    s.add(kv_table([(k, v) for k, v in settings_info.items() if k in ("lake_root", "tracking_uri", "experiment", "env")]))
    if versions:
        s.add(table(pd.DataFrame(sorted(versions.items()), columns=["table", "delta version read"]), 100))
    else:
        s.na("no lake table could be read", "tables")
    rows = []
    for job, run in runs.items():
        if isinstance(run, Unavailable) or run is None:
            rows.append({"job": job, "run_id": "", "started (UTC)": "", "metrics": "", "note": reason_of(run, "run")})
        else:
            rows.append({"job": job, "run_id": run.run_id, "started (UTC)": fmt_number(run.start_time),
                         "metrics": len(run.metrics), "note": ""})
    s.add(table(pd.DataFrame(rows, columns=["job", "run_id", "started (UTC)", "metrics", "note"]), 100,
                caption="latest finished MLflow run per job"))
    return s
