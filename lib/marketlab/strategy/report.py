"""MLflow reporting of a strategy run ("effect evaluation"): policy values, budget use, plot."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402

from marketlab.strategy.params import StrategyParams  # noqa: E402


def _name(policy: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in policy)


def log_strategy_run(res, params: StrategyParams) -> None:
    """Log OPE estimates (value, CI, paired difference to the best single arm), budget use, plots.

    Artifacts go under ``strategy/`` of the active run: ``ope.csv``, ``summary.csv``,
    ``notes.txt``, ``ope_dr.png``.
    """
    metrics = {}
    for _, r in res.ope.iterrows():
        base = f"ope.{_name(r['policy'])}.{r['estimator']}"
        for col in ("value", "lo", "hi", "diff", "diff_lo", "diff_hi", "diff_se", "mde"):
            if col in r and r[col] == r[col]:
                metrics[f"{base}.{col}"] = float(r[col])
    contacted = (res.strategy["action"] != params.control)
    metrics.update({"budget.contacts": float(contacted.sum()), "budget.share": float(contacted.mean()),
                    "budget.expected_profit": float(res.strategy["expected_profit"].sum()),
                    "budget.objective": res.allocation.objective, "budget.mip_gap": res.allocation.mip_gap})
    mlflow.log_metrics(metrics)
    mlflow.log_param("reference_policy", res.reference)
    mlflow.log_param("binding_constraints", ",".join(res.allocation.binding) or "none")
    mlflow.log_text(res.ope.to_csv(index=False), "strategy/ope.csv")
    mlflow.log_text(res.summary.to_csv(index=False), "strategy/summary.csv")
    mlflow.log_text("\n".join(res.notes) + "\n", "strategy/notes.txt")
    dr = res.ope[res.ope["estimator"] == "dr"].sort_values("value")
    fig, ax = plt.subplots(figsize=(8, 4))
    err = None
    if "lo" in dr:
        err = [(dr["value"] - dr["lo"]).clip(lower=0), (dr["hi"] - dr["value"]).clip(lower=0)]  # a bootstrap CI may miss the point
    ax.barh(dr["policy"], dr["value"], xerr=err, color=["C1" if p == "strategy" else "C0" for p in dr["policy"]])
    ax.set(xlabel=f"DR profit per customer ({params.outcome}, margin {params.margin})", title="off-policy value (95% CI)")
    fig.tight_layout()
    mlflow.log_figure(fig, "strategy/ope_dr.png", save_kwargs={"dpi": 90})
    plt.close(fig)


def ope_line(policy: str, r, reference: str) -> str:
    """One policy's doubly-robust value per customer and its difference to ``reference``, with CIs."""
    return (f"  {policy:<22} DR value/customer {r['value']:+.4f} [{r.get('lo', float('nan')):+.4f}, "
            f"{r.get('hi', float('nan')):+.4f}]  vs {reference}: {r['diff']:+.4f} [{r.get('diff_lo', float('nan')):+.4f}, "
            f"{r.get('diff_hi', float('nan')):+.4f}]  (detectable: {r.get('mde', float('nan')):.4f})")
