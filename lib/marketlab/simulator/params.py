"""Parameters of the campaign simulator (conf: `jobs.simulator` in conf/base/params/simulator.yaml).

The simulator plays the e-mail platform and the shop's customers (issue 22, section 3);
its ground truth is described in docs/SIMULATOR.md. Every figure of the truth that is a
choice rather than a measurement lives here, so a benchmark can vary it from conf.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class SimAction(StrictModel):
    """One action a wave may assign.

    Attributes:
        name: Arm name as it appears in the wave export.
        email: Whether an e-mail is sent (False: no contact).
        coupon: Coupon level (share of the order value given back), 0 for none.
    """

    name: str = Field(min_length=1)
    email: bool = True
    coupon: float = Field(0.0, ge=0.0, lt=1.0)


def default_actions() -> list[SimAction]:
    """The default action list: no contact, e-mail, e-mail with a 5 % and a 10 % coupon."""
    return [SimAction(name="no_contact", email=False), SimAction(name="email"),
            SimAction(name="email_coupon_5", coupon=0.05), SimAction(name="email_coupon_10", coupon=0.10)]


def check_actions(actions: list[SimAction], margin: float) -> None:
    """The rules every action list obeys (the simulator's and the campaign stage's, which is the same list).

    Raises:
        ValueError: Duplicate names, not exactly one no-contact action, a coupon without an
            e-mail, or a coupon level at or above the margin.
    """
    names = [a.name for a in actions]
    if len(set(names)) != len(names):
        raise ValueError(f"actions: names must be unique, got {names}")
    if sum(not a.email for a in actions) != 1:
        raise ValueError("actions: exactly one action must be no contact (email: false)")
    if any(not a.email and a.coupon > 0 for a in actions):
        raise ValueError("actions: a coupon needs an e-mail")
    levels = sorted({a.coupon for a in actions if a.coupon > 0})
    if any(c >= margin for c in levels):
        raise ValueError(f"actions: coupon levels {levels} must be below the margin {margin}")


class Dynamics(StrictModel):
    """Wave-to-wave dynamics (issue 26); all off by default so issue 22's figures hold.

    Attributes:
        fatigue: E-mail effects (purchase lift and clicks) fall with recent contacts.
        fatigue_rate: Effect multiplier ``exp(-fatigue_rate * recent_contacts)``.
        anticipation: Recent coupons lower the full-price (no-coupon) purchase probability.
        anticipation_rate: Baseline multiplier ``exp(-anticipation_rate * recent_coupons)``
            in a wave without a coupon.
        carryover: The baseline purchase probability of the next wave moves towards this
            wave's realised order (a customer won back keeps buying for a while).
        carryover_weight: Weight ``rho`` of the last order: next baseline
            ``(1 - rho) * own_baseline + rho * ordered``.
        memory_days: Half-life in days of the recent-contact and recent-coupon counts.
        gap_days: Days between two waves.
    """

    fatigue: bool = False
    fatigue_rate: float = Field(0.35, ge=0.0)
    anticipation: bool = False
    anticipation_rate: float = Field(0.25, ge=0.0)
    carryover: bool = False
    carryover_weight: float = Field(0.3, ge=0.0, le=1.0)
    memory_days: float = Field(60.0, gt=0.0)
    gap_days: int = Field(30, ge=1)


class SimulatorParams(StrictModel):
    """Parameters of the campaign simulator.

    Attributes:
        seed: Seed of the simulator's own randomness (truth noise and response sampling).
        wave_date: Default wave date; order lines before it are the customers' history,
            those after it the real purchases that decide relevance.
        response_window_days: Days after the send in which an order counts as a response.
        relevance_days: Days after the wave date whose real purchases make a featured
            item relevant to a customer.
        category_digits: Leading characters of a stock code that form its category.
        featured_k: Featured items per e-mail the relevance share is taken over.
        actions: The action list (the first with ``email: false`` is no contact).
        hillstrom_visit_control / hillstrom_visit_lift: Hillstrom "No E-Mail" visit rate and the
            Mens E-Mail minus No E-Mail difference (measured, see the tests).
        hillstrom_conversion_control / hillstrom_conversion_lift: The same for conversion.
        hillstrom_spend_lift: The same for spend per customer (dollars).
        click_to_open: Share of opened e-mails that are clicked (platform convention).
        coupon_lift: Coupon level -> population-average extra purchase probability (points
            as a fraction) on top of the e-mail's.
        relevance_boost: Extra purchase lift, relative, when all ``featured_k`` featured items
            are ones the customer really buys in the relevance window.
        affinity_boost: Extra lift, relative, when all featured items are in categories the
            customer bought before.
        effect_noise: Log-sd of the customer-level noise of the effects (not explained by
            the features).
        spend_cv: Coefficient of variation of the realised window revenue of a buyer.
        margin: Gross margin on revenue.
        contact_cost: Cost of one e-mail.
        max_baseline: Cap of the baseline purchase probability.
        dynamics: Wave-to-wave dynamics (issue 26).
    """

    seed: int = 7
    wave_date: date = date(2011, 11, 1)
    response_window_days: int = Field(30, ge=1)
    relevance_days: int = Field(28, ge=1)
    category_digits: int = Field(3, ge=1, le=5)
    featured_k: int = Field(3, ge=1, le=20)
    actions: list[SimAction] = Field(default_factory=lambda: default_actions())
    hillstrom_visit_control: float = Field(0.1062, gt=0.0, lt=1.0)
    hillstrom_visit_lift: float = Field(0.0766, ge=0.0, lt=1.0)
    hillstrom_conversion_control: float = Field(0.0057, gt=0.0, lt=1.0)
    hillstrom_conversion_lift: float = Field(0.0068, ge=0.0, lt=1.0)
    hillstrom_spend_lift: float = Field(0.77, ge=0.0)
    click_to_open: float = Field(0.3, gt=0.0, le=1.0)
    coupon_lift: dict[float, float] = Field(default_factory=lambda: {0.05: 0.02, 0.10: 0.04})
    relevance_boost: float = Field(4.0, ge=0.0)
    affinity_boost: float = Field(0.5, ge=0.0)
    effect_noise: float = Field(0.5, ge=0.0)
    spend_cv: float = Field(1.0, gt=0.0)
    margin: float = Field(0.35, gt=0.0, le=1.0)
    contact_cost: float = Field(0.10, ge=0.0)
    max_baseline: float = Field(0.9, gt=0.0, lt=1.0)
    dynamics: Dynamics = Field(default_factory=Dynamics)

    @model_validator(mode="after")
    def _check(self) -> "SimulatorParams":
        check_actions(self.actions, self.margin)
        missing = sorted(set(self.coupon_levels) - set(self.coupon_lift))
        if missing:
            raise ValueError(f"coupon_lift: no lift for coupon level(s) {missing}")
        return self

    @property
    def coupon_levels(self) -> list[float]:
        """Coupon levels of the action list (without 0)."""
        return sorted({a.coupon for a in self.actions if a.coupon > 0})

    @property
    def no_contact(self) -> str:
        """Name of the no-contact action."""
        return next(a.name for a in self.actions if not a.email)
