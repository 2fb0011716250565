"""Parameters of the strategy job (conf: `jobs.strategy` in conf/base/params/strategy.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class StrategyParams(StrictModel):
    """Parameters of the strategy job.

    Attributes:
        scores_table: Predicted uplift per customer x action (effect job).
        log_table: The logged campaign (actions actually sent and outcomes) used for
            off-policy evaluation.
        evaluations_table: Measured effects from campaign evaluation; optional (closed
            loop: used when it exists).
        strategy_table / summary_table: Outputs.
        control: The "do nothing" action.
        outcome: Outcome whose uplift drives profit (incremental spend).
        margin: Gross margin on incremental spend (profit per currency unit).
        contact_cost: Cost of one contact per action (currency); actions missing here
            cost ``default_contact_cost``.
        default_contact_cost: Fallback contact cost.
        max_contacts_fraction: Contact budget as a share of scored customers (None = no
            limit).
        max_contacts: Contact budget as a number of contacts (None = no limit); the
            smaller of the two budgets binds.
        max_cost: Budget on total contact cost (None = no limit).
        segment_col: Column that defines marketer segments (caps, summary, evaluations).
        segment_caps: Segment value -> maximum share of that segment's customers contacted.
        evaluation_weight: Weight in [0, 1] of a measured segment effect against the
            model's mean prediction for that segment (0 = ignore evaluations).
        softmax_temperature: Temperature of the softmax bandit policy (in profit units).
        bootstrap: Poisson-bootstrap replicates of the off-policy estimates.
        seed: Seed of the bootstrap and the random baseline.
        time_limit_s: Solver time limit.
    """

    scores_table: str = "gold.uplift_scores"
    log_table: str = "silver.campaign_log"
    evaluations_table: str = "gold.campaign_evaluations"
    strategy_table: str = "gold.strategy"
    summary_table: str = "gold.strategy_summary"
    control: str = "No E-Mail"
    outcome: Literal["visit", "conversion", "spend"] = "spend"
    margin: float = Field(0.3, gt=0.0)
    contact_cost: dict[str, float] = Field(default_factory=lambda: {"Mens E-Mail": 0.1, "Womens E-Mail": 0.1})
    default_contact_cost: float = Field(0.1, ge=0.0)
    max_contacts_fraction: float | None = Field(0.5, ge=0.0, le=1.0)
    max_contacts: int | None = Field(None, ge=0)
    max_cost: float | None = Field(None, ge=0.0)
    segment_col: str = "channel"
    segment_caps: dict[str, float] = Field(default_factory=dict)
    evaluation_weight: float = Field(0.5, ge=0.0, le=1.0)
    softmax_temperature: float = Field(0.05, gt=0.0)
    bootstrap: int = Field(200, ge=0)
    seed: int = 42
    time_limit_s: float = Field(60.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> "StrategyParams":
        bad = {k: v for k, v in self.segment_caps.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"segment_caps: shares must be in [0, 1], got {bad}")
        neg = {k: v for k, v in self.contact_cost.items() if v < 0}
        if neg:
            raise ValueError(f"contact_cost: costs must be >= 0, got {neg}")
        return self
