"""Parameters of the campaign stage (conf: ``jobs.campaign`` in conf/base/params/campaign.yaml).

The campaign stage plans e-mail waves for the shop's own customers, sends them (to the
campaign simulator in the demo, to the e-mail platform in production), ingests the
responses and measures each wave against its random holdout (docs/CAMPAIGN.md).
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel
from marketlab.simulator.params import SimAction, check_actions, default_actions


class CampaignParams(StrictModel):
    """Parameters of the campaign stage.

    Attributes:
        order_lines_table / returns_table: Silver sales and returns (the customers' history).
        item_features_table: Item descriptions (the recommender's content side).
        inventory_plan_table: Planned stock per item x warehouse x period (the veto).
        waves_table: One row per customer x wave as planned (pseudonymous keys).
        responses_table: Silver responses that passed the checks.
        rejects_table: Responses that did not, with a reason.
        results_table: Predicted vs measured effect per wave x arm.
        plans_table: Per wave: the plan and its baselines, predicted (and true in simulation).
        responses_source: Source name (conf ``sources``) of the e-mail platform's response
            export; the stage ingests it into that source's bronze table.
        ingest_log_table / ingest_rejects_table: The stage's own ingest log and parse quarantine.
        name: Campaign name; wave ``t`` is campaign ``<name>_w<t>``.
        simulate: Play the waves against the campaign simulator (demo, tests, benchmarks);
            False: production — measure the waves whose responses were ingested, then plan
            and export the next one.
        waves: Waves to play when simulating (wave 0 randomized, then targeted).
        wave_date: Send date of wave 0 (history before it is what the models see);
            null: the simulator's ``wave_date``.
        gap_days: Days between two waves.
        actions: Actions of a wave; the one without e-mail is no contact.
        margin: Gross margin on revenue (profit = margin x revenue - coupon - contact cost).
        contact_cost: Cost of one e-mail.
        featured_k: Products featured per e-mail.
        candidates: Recommendations per customer considered (the veto may skip some).
        featured_bought: How the recommender treats items the customer bought before
            (``keep``: repeat purchases may be featured; see docs/CAMPAIGN.md).
        featured_source: Ranking the featured products come from, as of the wave date:
            ``als`` (the recommend capability's tuned ALS) or ``repeat`` (the customer's own
            most-bought items first, that ALS after them; docs/CAMPAIGN.md).
        holdout_fraction: Random share of each targeted wave that is not sent (the control).
        explore: Share of a targeted wave's decisions drawn uniformly from the actions (logged
            propensity), so later models can learn every arm.
        max_contacts_fraction: Contact budget as a share of the active customers.
        max_cost: Budget of contact plus expected coupon cost per wave (null: none).
        clv_weight: Weight of the change in customer lifetime value in the objective: an
            incremental order is worth its margin in the wave plus ``clv_weight`` x the
            ΔCLV one more purchase adds (BG/NBD + Gamma-Gamma fitted on the history before
            the wave date, ``jobs.value`` horizon and discounting, this margin; see
            docs/CAMPAIGN.md). 0: one wave's profit only. The wave's A/B test measures the
            wave's profit either way.
        ridge: L2 penalty of the response models' inputs (per standardised feature).
        ridge_effect: Grid of L2 penalties of the action x input interactions (the
            heterogeneity of the effects; a wave of a few thousand customers supports little
            of it), chosen by 5-fold cross-validation on the logged responses. Both penalties
            count in rows: the training weights are scaled to mean 1.
        max_weight: Truncation of the inverse-propensity weights.
        bags: Bootstrap replicates of the models (the intervals).
        interval: Coverage of the predicted intervals.
        unplanned_items: ``allow`` featuring items the inventory plan does not cover, or ``veto``.
        lift_units: Units per incremental order of a featured item (the veto's extra demand).
        seed: Seed of the wave randomisation (assignment, holdout, bootstrap).
    """

    order_lines_table: str = "silver.order_lines"
    returns_table: str = "silver.returns"
    item_features_table: str = "gold.item_features"
    inventory_plan_table: str = "gold.inventory_plan"
    waves_table: str = "gold.campaign_waves"
    responses_table: str = "silver.campaign_responses"
    rejects_table: str = "silver.campaign_response_rejects"
    results_table: str = "gold.campaign_results"
    plans_table: str = "gold.campaign_plans"
    responses_source: str = "shop_campaign"
    ingest_log_table: str = "ops.campaign_ingest_log"
    ingest_rejects_table: str = "bronze._campaign_rejects"
    name: str = Field("shop", pattern=r"^[A-Za-z0-9_-]+$")
    simulate: bool = True
    waves: int = Field(6, ge=1, le=52)
    wave_date: date | None = None
    gap_days: int = Field(30, ge=1)
    actions: list[SimAction] = Field(default_factory=default_actions)
    margin: float = Field(0.35, gt=0.0, le=1.0)
    contact_cost: float = Field(0.10, ge=0.0)
    featured_k: int = Field(3, ge=1, le=20)
    candidates: int = Field(10, ge=1, le=100)
    featured_bought: str = Field("keep", pattern="^(keep|exclude|downweight)$")
    featured_source: str = Field("repeat", pattern="^(als|repeat)$")
    holdout_fraction: float = Field(0.10, gt=0.0, lt=1.0)
    explore: float = Field(0.10, ge=0.0, le=1.0)
    max_contacts_fraction: float = Field(1.0, gt=0.0, le=1.0)
    max_cost: float | None = Field(None, gt=0.0)
    clv_weight: float = Field(0.0, ge=0.0, le=10.0)
    ridge: float = Field(10.0, ge=0.0)
    ridge_effect: list[float] = Field(default_factory=lambda: [100.0, 1000.0, 10000.0, 1e6], min_length=1)
    max_weight: float = Field(20.0, ge=1.0)
    bags: int = Field(30, ge=2, le=500)
    interval: float = Field(0.90, gt=0.5, lt=1.0)
    unplanned_items: str = Field("allow", pattern="^(allow|veto)$")
    lift_units: float = Field(10.0, ge=0.0)
    seed: int = 2024

    @model_validator(mode="after")
    def _check(self) -> "CampaignParams":
        check_actions(self.actions, self.margin)
        if self.candidates < self.featured_k:
            raise ValueError(f"candidates ({self.candidates}) must be >= featured_k ({self.featured_k})")
        return self

    @property
    def no_contact(self) -> str:
        """Name of the no-contact action."""
        return next(a.name for a in self.actions if not a.email)

    @property
    def coupon_of(self) -> dict[str, float]:
        """Action name -> coupon level."""
        return {a.name: float(a.coupon) for a in self.actions}

    @property
    def email_actions(self) -> list[str]:
        """Names of the actions that send an e-mail."""
        return [a.name for a in self.actions if a.email]

    def campaign_id(self, wave: int) -> str:
        """Campaign id of wave ``wave``."""
        return f"{self.name}_w{wave}"
