"""Value job: BG/NBD + Gamma-Gamma customer lifetime value -> gold.customer_value (docs/VALUE.md).

    spark-submit jobs/value.py --conf conf/local.yaml
"""

from __future__ import annotations

import mlflow

from marketlab import value
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run
from marketlab.value.registry import gate, log_and_register


def main(ctx: JobContext) -> dict:
    """Evaluate on a holdout, score as of a date, log metrics and the calibration plot, register behind the gate."""
    params = ctx.settings.jobs.value
    with job_run(ctx.settings, "value", ctx.lake, params={"value": params.model_dump()}):
        res = value.run(ctx.lake, params)
        ev = res.evaluation
        for name, model in (("bgnbd", res.fit.bgnbd), ("gamma_gamma", res.fit.gamma_gamma)):
            mlflow.log_metrics({(f"fit.{name}.{k}" if k in ("log_likelihood", "n_customers") else f"fit.{k}"): v
                                for k, v in model.as_dict().items()})
        mlflow.log_metrics({f"holdout.{k}": v for k, v in ev.metrics.items()})
        mlflow.log_metrics({"n_customers": res.n_customers, "holdout.n_customers": ev.n_customers,
                            **{f"dropped_lines.{k}": v for k, v in res.dropped.items()},
                            **{f"total.{k}": v for k, v in res.totals.items()}})
        mlflow.log_figure(res.figure, "value/calibration.png")
        for h, cal in ev.calibration.items():
            mlflow.log_text(cal.to_csv(index=False), f"value/calibration_{h}d.csv")
        h = params.gate_horizon_days
        outcome = "not registered"
        if params.register_model:
            clv = {"horizon_days": params.horizon_days, "period_days": params.period_days,
                   "discount_per_period": params.discount_per_period, "margin": params.margin}
            version = log_and_register(res.fit.bgnbd, res.fit.gamma_gamma, clv, params.model_name)
            outcome = gate(params.model_name, version, ev.metrics[f"h{h}.count.rmse.model"], ev.gain(h) > 0,
                           params.promote_margin)
            outcome = f"{params.model_name} v{version} {outcome}"
    print(f"value: {res.n_customers} customers as of {res.as_of} -> {params.output_table} v{res.version}; "
          f"holdout {h} d count RMSE {ev.metrics[f'h{h}.count.rmse.model']:.3f} vs historical "
          f"{ev.metrics[f'h{h}.count.rmse.historical']:.3f} (gain {ev.gain(h):+.1%}); {outcome}")
    return {"as_of": str(res.as_of), "version": res.version, "gain": ev.gain(h)}


if __name__ == "__main__":
    main_guard("value", main)
