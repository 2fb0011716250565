"""Parameters of the segments job (conf: `jobs.segments` in conf/base/params/segments.yaml)."""

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class SegmentsParams(StrictModel):
    """Parameters of the segments job.

    Attributes:
        features: Columns of gold.customer_features clustered (after log1p and scaling).
        log_transform: log1p before scaling (RFM values are heavily skewed).
        k_min: Smallest number of clusters tried.
        k_max: Largest number of clusters tried; the k with the best silhouette wins.
        seed: Random seed of k-means.
        max_iter: k-means iterations.
        as_of: Cutoff of customer_features to segment; None: the latest one.
        input_table: Customer features read.
        segments_table: One segment per customer written.
        profiles_table: One profile row per segment written.
        value_table: Customer values (gold.customer_value) whose CLV tiers are attached to
            the segments and summarised in the profiles; None, or a table that does not
            exist (the value stage has not run), leaves the value columns null. The tier
            names, quantiles and at-risk thresholds are the value stage's (``jobs.value``).
    """

    features: list[str] = Field(default_factory=lambda: ["recency_days", "frequency", "monetary"])
    log_transform: bool = True
    k_min: int = Field(3, ge=2)
    k_max: int = Field(8, ge=2)
    seed: int = 42
    max_iter: int = Field(30, ge=1)
    as_of: str | None = None
    input_table: str = "gold.customer_features"
    segments_table: str = "gold.segments"
    profiles_table: str = "gold.segment_profiles"
    value_table: str | None = "gold.customer_value"

    @model_validator(mode="after")
    def _k(self) -> "SegmentsParams":
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        return self
