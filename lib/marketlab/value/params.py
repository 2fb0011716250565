"""Parameters of the value stage (conf: `jobs.value` in conf/base/params/value.yaml)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator, model_validator

from marketlab.params_base import StrictModel


class ValueParams(StrictModel):
    """Customer lifetime value: BG/NBD + Gamma-Gamma, holdout evaluation, gold.customer_value.

    Attributes:
        input_table: Sale lines (one row per product line, amount > 0).
        results_table: Unused, kept for conf compatibility: the lake refuses an input
            version that has not passed the gate (``jobs.quality.guard_reads``).
        output_table: Where the scored customers go (one slice per ``as_of``).
        as_of: Scoring date (the day after the last history used); None: the day after the
            last sale in ``input_table``.
        exclude_outliers: Leave out sale lines flagged ``is_outlier`` by clean (one
            80,995-unit line would otherwise be a customer's "typical" order value).
        horizon_days: Horizon of the expected purchases and spend and of the CLV.
        period_days: Length of one discounting period of the CLV.
        annual_discount_rate: Yearly discount rate; converted to a rate per period.
        margin: Share of revenue that is profit (CLV = margin x discounted expected revenue).
        penalizer: L2 penalty on the log-parameters of both fits (0: plain maximum likelihood).
        min_customers: Fewer customers with history than this is an error, not a model.
        eval_cutoff: Calibration/holdout split date; None: the last sale day + 1 minus the
            longest of ``holdout_days``.
        holdout_days: Holdout windows after the cutoff that are evaluated.
        bootstrap: Bootstrap resamples over customers for the metrics' 95 % intervals.
        eval_max_customers: The evaluation (not the scoring) collects per-customer errors to
            the driver; above this many customers a seeded random sample of them is used.
        calibration_max_frequency: Frequencies at or above this are pooled in the
            calibration plot and table.
        gate_horizon_days: Holdout window whose purchase-count RMSE gates the model.
        register_model: Log the fitted parameters as a pyfunc model and register it.
        model_name: Registered model name.
        promote_margin: RMSE improvement over the champion needed to move the alias.
        tiers: Names of the value tiers (highest first) that :func:`value_tiers` assigns.
        tier_quantiles: Upper CLV quantiles separating the tiers (one fewer than ``tiers``).
        at_risk_min_clv_quantile: "High value": CLV at or above this quantile.
        at_risk_max_p_alive: "At risk": P(alive) at or below this.
        seed: Seed of the sample and the bootstrap.
    """

    input_table: str = "silver.order_lines"
    results_table: str | None = "quality.results"
    output_table: str = "gold.customer_value"
    as_of: str | None = None
    exclude_outliers: bool = True
    horizon_days: int = Field(365, ge=1)
    period_days: int = Field(30, ge=1)
    annual_discount_rate: float = Field(0.10, ge=0.0, lt=1.0)
    margin: float = Field(0.3, gt=0.0, le=1.0)
    penalizer: float = Field(0.0, ge=0.0)
    min_customers: int = Field(20, ge=2)
    eval_cutoff: str | None = None
    holdout_days: list[int] = Field(default_factory=lambda: [90, 180])
    bootstrap: int = Field(200, ge=0)
    eval_max_customers: int = Field(200_000, ge=100)
    calibration_max_frequency: int = Field(7, ge=1)
    gate_horizon_days: int = 90
    register_model: bool = True
    model_name: str = "marketlab-customer-value"
    promote_margin: float = Field(0.0, ge=0.0)
    tiers: list[str] = Field(default_factory=lambda: ["top", "high", "medium", "low"])
    tier_quantiles: list[float] = Field(default_factory=lambda: [0.95, 0.8, 0.5])
    at_risk_min_clv_quantile: float = Field(0.8, ge=0.0, le=1.0)
    at_risk_max_p_alive: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 7

    @field_validator("as_of", "eval_cutoff")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"must be a YYYY-MM-DD date, got '{v}'") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "ValueParams":
        if not self.holdout_days or any(h < 1 for h in self.holdout_days):
            raise ValueError("holdout_days: at least one window of >= 1 day")
        if self.gate_horizon_days not in self.holdout_days:
            raise ValueError(f"gate_horizon_days ({self.gate_horizon_days}) must be one of holdout_days {self.holdout_days}")
        if len(self.tier_quantiles) != len(self.tiers) - 1:
            raise ValueError(f"tier_quantiles needs {len(self.tiers) - 1} values for {len(self.tiers)} tiers")
        if any(not 0 < q < 1 for q in self.tier_quantiles) or self.tier_quantiles != sorted(self.tier_quantiles, reverse=True):
            raise ValueError("tier_quantiles: strictly between 0 and 1, highest first")
        return self

    @property
    def discount_per_period(self) -> float:
        """The annual rate as a compound rate per ``period_days``."""
        return (1.0 + self.annual_discount_rate) ** (self.period_days / 365.0) - 1.0
