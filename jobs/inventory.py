"""Inventory plan: one SciPy/HiGHS LP per warehouse, solved in Spark map tasks.

gold.forecasts (or a seasonal-naive forecast from gold.demand_daily) -> gold.inventory_plan
(order/stock/shortage per item x warehouse x period) + gold.inventory_status (solver
status, objective, slack, backtest service level per warehouse). Both tables hold the
``plan`` scenario and, with ``backtest: true``, the ``backtest`` scenario.
"""

from __future__ import annotations

import mlflow

from marketlab.inventory.run import run
from marketlab.runtime import JobContext, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    p = ctx.settings.jobs.inventory
    with job_run(ctx.settings, "inventory", ctx.lake, params=p.model_dump()) as mlrun:
        res = run(ctx.lake, p)
        mlflow.set_tags({"inventory.forecast_source": res.forecast_source, "inventory.fallback_reason": res.fallback_reason})
        mlflow.log_metrics({k: v for k, v in res.metrics.items() if v == v})
        mlflow.log_text(res.status.to_csv(index=False), "inventory_status.csv")
    m = res.metrics
    print(f"inventory: {int(m['n_warehouses'])} warehouses ({int(m['status_optimal'])} optimal, "
          f"{int(m['status_infeasible_relaxed'])} relaxed, {int(m['status_error'])} error), "
          f"forecast={res.forecast_source}, cost={m['total_cost']:.0f}, planned fill rate="
          f"{m.get('planned_fill_rate', float('nan')):.3f}, backtest fill rate="
          f"{m.get('backtest_realized_fill_rate', float('nan')):.3f}")
    return {"run_id": mlrun.info.run_id, "forecast_source": res.forecast_source, **m}


if __name__ == "__main__":
    main_guard("inventory", main)
