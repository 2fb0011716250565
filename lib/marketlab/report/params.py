"""Parameters of the report job (conf: `jobs.report` in conf/base/params/report.yaml)."""

from __future__ import annotations

from pydantic import Field

from marketlab.params_base import StrictModel


class ReportTables(StrictModel):
    """Catalog names of the tables the report reads (each a section's input)."""

    ingest_log: str = "ops.ingest_log"
    quality_results: str = "quality.results"
    audit: str = "silver._audit"
    order_lines: str = "silver.order_lines"
    customer_features: str = "gold.customer_features"
    segment_profiles: str = "gold.segment_profiles"
    purchase_intent: str = "gold.purchase_intent"
    recommendations: str = "gold.recommendations"
    demand_daily: str = "gold.demand_daily"
    forecasts: str = "gold.forecasts"
    forecast_backtest: str = "gold.forecast_backtest"
    inventory_plan: str = "gold.inventory_plan"
    inventory_status: str = "gold.inventory_status"
    uplift_scores: str = "gold.uplift_scores"
    campaign_evaluations: str = "gold.campaign_evaluations"
    strategy_summary: str = "gold.strategy_summary"
    customer_value: str = "gold.customer_value"
    campaign_plans: str = "gold.campaign_plans"
    campaign_results: str = "gold.campaign_results"
    campaign_waves: str = "gold.campaign_waves"
    segments: str = "gold.segments"
    item_features: str = "gold.item_features"
    drift: str = "ops.drift"


class ReportParams(StrictModel):
    """Parameters of the run report (one self-contained HTML file per run).

    Attributes:
        reports_dir: Folder the reports go to; None: ``<lake_root>/../reports``.
        title: Heading of the report.
        history_days: Days of actual demand shown before the forecast horizon.
        histogram_bins: Bins of the distribution plots.
        max_table_rows: Rows shown per HTML table (the rest is summarised in a note).
        top_features: Features shown per feature-importance plot.
        qini_points: Points per Qini curve (customers are bucketed by predicted uplift).
        featured_per_segment: Most featured products shown per segment (campaign section).
        keep: Timestamped reports kept in ``reports_dir`` (older ones are deleted; 0 keeps all).
        threads: Driver threads submitting the report's independent Spark aggregations at once.
        tables: The tables read (the campaign log is the effect stage's ``input_table``).
    """

    reports_dir: str | None = None
    title: str = "MarketLab run report"
    history_days: int = Field(120, ge=7)
    histogram_bins: int = Field(40, ge=5, le=200)
    max_table_rows: int = Field(40, ge=5)
    top_features: int = Field(15, ge=3)
    qini_points: int = Field(50, ge=5, le=1000)
    featured_per_segment: int = Field(3, ge=1, le=20)
    keep: int = Field(0, ge=0)
    threads: int = Field(4, ge=1, le=32)
    tables: ReportTables = Field(default_factory=ReportTables)
