"""Parameters of the features job (conf: `jobs.features` in conf/base/params/features.yaml)."""

from pydantic import Field

from marketlab.params_base import StrictModel


class FeaturesParams(StrictModel):
    """Parameters of the features job.

    Attributes:
        as_of: Cutoff date (``YYYY-MM-DD``) of ``gold.customer_features``: only rows
            strictly before it are used. None: the day after the last sale (all data).
        windows_days: Look-back windows of the time-window aggregates.
        score_bins: Number of quantile bins of the R, F and M scores (1 = worst).
        sequence_max_baskets: Keep each customer's most recent baskets only.
        demand_exclude_outliers: Leave flagged outlier lines out of demand (default keeps
            them: they are real shipped units; forecasters may clip instead).
        demand_calendar_max_days: Longest zero-filled demand calendar (earliest first sale
            to the last sale, inclusive) the job builds; a longer one stops it with one
            error (:func:`marketlab.features.build.demand_daily`) instead of a table
            thousands of times its size.
        order_lines_table: Silver sales read.
        returns_table: Silver returns read.
        quality_table: Unused, kept for conf compatibility: the lake refuses silver versions
            that have not passed the gate (``jobs.quality.guard_reads``).
        item_features_table: Per-item popularity, prices and return rate written.
        interactions_table: Customer x item strengths written.
        demand_daily_table: Item x warehouse x day demand written.
        demand_weekly_table: Its weekly sums written.
        customer_features_table: RFM and window aggregates per customer and cutoff written.
        customer_sequences_table: Each customer's baskets in time order written.
    """

    as_of: str | None = None
    windows_days: list[int] = Field(default_factory=lambda: [7, 30, 90])
    score_bins: int = Field(5, ge=2, le=10)
    sequence_max_baskets: int = Field(100, ge=1)
    demand_exclude_outliers: bool = False
    demand_calendar_max_days: int = Field(3660, ge=1)
    order_lines_table: str = "silver.order_lines"
    returns_table: str = "silver.returns"
    quality_table: str = "quality.results"
    item_features_table: str = "gold.item_features"
    interactions_table: str = "gold.interactions"
    demand_daily_table: str = "gold.demand_daily"
    demand_weekly_table: str = "gold.demand_weekly"
    customer_features_table: str = "gold.customer_features"
    customer_sequences_table: str = "gold.customer_sequences"
