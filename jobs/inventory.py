"""Inventory plan: one SciPy/HiGHS LP per warehouse, solved in Spark map tasks.

gold.forecasts (or a seasonal-naive forecast from gold.demand_daily) -> gold.inventory_plan
(order/stock/shortage per item x warehouse x period) + gold.inventory_status (solver
status, objective, slack, backtest service level per warehouse). Both tables hold the
``plan`` scenario and, with ``backtest: true``, the ``backtest`` scenario.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from marketlab.inventory.batch import split_results
from marketlab.inventory.plan import ForecastUnavailable, backtest_problems, choose_forecast, solve_scenario
from marketlab.inventory.prepare import build_problems
from marketlab.inventory.report import realized_cycle_service, summarize_status
from marketlab.runtime import JobContext, JobError, main_guard
from marketlab.tracking import job_run


def main(ctx: JobContext) -> dict:
    p = ctx.settings.jobs.inventory
    lake = ctx.lake
    ctx.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(p.arrow_batch_rows))
    with job_run(ctx.settings, "inventory", lake, params=p.model_dump()) as run:
        import mlflow

        demand = lake.read(p.demand_table)
        forecasts = lake.read(p.forecast_table) if lake.exists(p.forecast_table) else None
        costs = None
        if lake.exists("gold.item_features"):
            costs = lake.read("gold.item_features").select(
                "item_id", (F.col("price_median") * p.cost_ratio).alias("unit_cost"))
        try:
            choice = choose_forecast(demand, forecasts, p)
        except ForecastUnavailable as exc:
            raise JobError(f"inventory: forecast_source=forecasts but {exc}") from None
        mlflow.set_tags({"inventory.forecast_source": choice.source, "inventory.fallback_reason": choice.reason})
        parts = [solve_scenario(build_problems(choice.forecast, p, choice.start, costs), p, "plan", choice.start)]
        if p.backtest:
            bt, bt_start = backtest_problems(demand, p, costs)
            parts.append(solve_scenario(bt, p, "backtest", bt_start))
        results = parts[0].unionByName(parts[-1]) if len(parts) > 1 else parts[0]
        results = results.persist()  # solved once, split into two tables
        plan, status = split_results(results, extra=("scenario",))
        source = F.when(F.col("scenario") == "backtest", "seasonal_naive").otherwise(choice.source)
        lake.write(plan.withColumn("forecast_source", source), p.plan_table)
        lake.write(status.withColumn("forecast_source", source), p.status_table)
        st = lake.read(p.status_table).toPandas()
        metrics = summarize_status(st[st.scenario == "plan"])
        if p.backtest:
            metrics.update(summarize_status(st[st.scenario == "backtest"], "backtest_"))
            bt_plan = lake.read(p.plan_table).filter("scenario = 'backtest'") \
                .select("actual_demand", "realized_shortage").toPandas()
            metrics["backtest_realized_cycle_service"] = realized_cycle_service(bt_plan)
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.log_text(st.to_csv(index=False), "inventory_status.csv")
        results.unpersist()
    summary = {"run_id": run.info.run_id, "forecast_source": choice.source, **metrics}
    print(f"inventory: {int(metrics['n_warehouses'])} warehouses ({int(metrics['status_optimal'])} optimal, "
          f"{int(metrics['status_infeasible_relaxed'])} relaxed, {int(metrics['status_error'])} error), "
          f"forecast={choice.source}, cost={metrics['total_cost']:.0f}, planned fill rate="
          f"{metrics.get('planned_fill_rate', float('nan')):.3f}, backtest fill rate="
          f"{metrics.get('backtest_realized_fill_rate', float('nan')):.3f}")
    return summary


if __name__ == "__main__":
    main_guard("inventory", main)
