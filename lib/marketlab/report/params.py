"""Parameters of the report job (conf: `jobs.report` in conf/base/params/report.yaml)."""

from __future__ import annotations

from pydantic import Field

from marketlab.params_base import StrictModel


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
        pseudonym_salt_env: Environment variable with the salt of ``customer_key`` (joins
            gold.uplift_scores to the campaign outcomes for the Qini curves).
        keep: Timestamped reports kept in ``reports_dir`` (older ones are deleted; 0 keeps all).
        threads: Driver threads submitting the report's independent Spark aggregations at once.
    """

    reports_dir: str | None = None
    title: str = "MarketLab run report"
    history_days: int = Field(120, ge=7)
    histogram_bins: int = Field(40, ge=5, le=200)
    max_table_rows: int = Field(40, ge=5)
    top_features: int = Field(15, ge=3)
    qini_points: int = Field(50, ge=5, le=1000)
    pseudonym_salt_env: str = "MARKETLAB_PSEUDONYM_SALT"
    keep: int = Field(0, ge=0)
    threads: int = Field(4, ge=1, le=32)
