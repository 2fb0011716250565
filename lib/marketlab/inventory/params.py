"""Parameters of the inventory job (conf: `jobs.inventory` in conf/base/params/inventory.yaml).

Every cost is a multiple of the item's unit cost, so one conf serves items priced from
pennies to hundreds of pounds. Capacities and budgets are absolute per warehouse where
conf gives them; otherwise they are derived from the warehouse's own forecast (``*_cover``
= how many periods of mean P50 demand fit / can be bought), which keeps the defaults
sensible for a warehouse of any size. See docs/INVENTORY_LP.md for the model.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class WarehouseOverride(StrictModel):
    """Per-warehouse settings that replace the derived defaults (all optional).

    Attributes:
        capacity: Capacity per period in volume units (``volume_per_unit`` x units).
        budget: Ordering budget per period (currency).
        lead_time_periods: Periods between placing and receiving an order.
        min_fill_rate: Hard lower bound on the planned fill rate.
    """

    capacity: float | None = Field(None, ge=0)
    budget: float | None = Field(None, ge=0)
    lead_time_periods: int | None = Field(None, ge=0)
    min_fill_rate: float | None = Field(None, ge=0, le=1)


class InventoryParams(StrictModel):
    """Parameters of the inventory job.

    Attributes:
        forecast_table: Catalog table with P50/P90 per item x warehouse x day.
        demand_table: Catalog table with daily demand (seasonal-naive fallback, backtest).
        plan_table: Output: order/stock/shortage per item x warehouse x period.
        status_table: Output: solver status per warehouse.
        item_features_table: Catalog table with each item's median price (unit costs).
        forecast_source: ``auto`` uses the forecast table when it exists and is fresh
            (seasonal naive fills the days beyond its horizon), else the seasonal-naive
            fallback; ``forecasts`` requires a usable table; ``seasonal_naive`` always
            uses the fallback.
        period_days: Days per planning period (7 = weekly buckets).
        horizon_periods: Planning periods T.
        season_days: Season of the seasonal-naive fallback (7 = same weekday last week).
        residual_weeks: Seasons of history used to estimate the naive forecast's P90.
        service_level: Cycle service level the safety stock is sized for; the forecast's
            P90 - P50 spread is rescaled by z(service_level) / z(0.9).
        min_fill_rate: Hard constraint: planned shortage over the periods the plan
            controls (after the lead time) <= (1 - min_fill_rate) x P50 demand. A warehouse
            that cannot meet it (budget, capacity) is solved relaxed with slack reported.
        lead_time_periods: Default lead time (periods) of every warehouse.
        initial_cover_periods: Starting on-hand stock per item = this x its mean P50
            demand per period (the lake has no stock snapshot).
        holding_rate_annual: Holding cost per unit-year as a share of unit cost.
        shortage_multiple: Penalty per unit of unmet P50 demand, x unit cost; must exceed
            1 + holding, else buying never pays.
        safety_multiple: Penalty per unit-period below safety stock, x unit cost.
        terminal_value_ratio: Stock left at the end of the horizon is credited at this x
            unit cost (1: it is sold in the next plan; must be <= 1 to keep the LP bounded).
        default_unit_cost: Unit cost when no item price is known.
        cost_ratio: Unit cost = cost_ratio x median selling price (from gold.item_features).
        volume_per_unit: Volume of one unit (capacity is in these units).
        capacity_cover: Default capacity = this x mean per-period P50 volume of the warehouse.
        budget_cover: Default budget per period = this x mean per-period P50 purchase cost.
        relax_penalty: Penalty per unit of violated capacity, budget or fill-rate constraint
            in the relaxed problem (x the largest unit cost of the warehouse).
        min_items_demand: Items whose P50 over the whole horizon is below this and that
            hold no stock are left out of the LP (they would get an all-zero plan).
        warehouses: Per-warehouse overrides.
        arrow_batch_rows: Rows per Arrow batch sent to a map task (many warehouses each).
        partitions: Map tasks for the solve (0 = Spark's default parallelism).
        time_limit_s: HiGHS time limit per LP.
        backtest: Also plan from data before the last ``horizon`` and score the plan
            against the demand that followed (service level achieved, cost).
    """

    forecast_table: str = "gold.forecasts"
    demand_table: str = "gold.demand_daily"
    plan_table: str = "gold.inventory_plan"
    status_table: str = "gold.inventory_status"
    item_features_table: str = "gold.item_features"
    forecast_source: str = Field("auto", pattern="^(auto|forecasts|seasonal_naive)$")
    period_days: int = Field(7, ge=1, le=92)
    horizon_periods: int = Field(8, ge=1, le=104)
    season_days: int = Field(7, ge=1, le=366)
    residual_weeks: int = Field(8, ge=1, le=104)
    service_level: float = Field(0.95, gt=0.5, lt=1.0)
    min_fill_rate: float = Field(0.9, ge=0.0, le=1.0)
    lead_time_periods: int = Field(1, ge=0)
    initial_cover_periods: float = Field(2.0, ge=0.0)
    holding_rate_annual: float = Field(0.25, ge=0.0)
    shortage_multiple: float = Field(2.0, gt=0.0)
    safety_multiple: float = Field(0.3, ge=0.0)
    terminal_value_ratio: float = Field(1.0, ge=0.0, le=1.0)
    default_unit_cost: float = Field(1.0, gt=0.0)
    cost_ratio: float = Field(0.6, gt=0.0, le=1.0)
    volume_per_unit: float = Field(1.0, gt=0.0)
    capacity_cover: float = Field(4.0, gt=0.0)
    budget_cover: float = Field(1.5, gt=0.0)
    relax_penalty: float = Field(1000.0, gt=0.0)
    min_items_demand: float = Field(0.0, ge=0.0)
    warehouses: dict[str, WarehouseOverride] = Field(default_factory=dict)
    arrow_batch_rows: int = Field(20000, ge=100)
    partitions: int = Field(0, ge=0)
    time_limit_s: float = Field(60.0, gt=0.0)
    backtest: bool = True

    @model_validator(mode="after")
    def _check(self) -> "InventoryParams":
        if self.lead_time_periods >= self.horizon_periods:
            raise ValueError(f"lead_time_periods ({self.lead_time_periods}) must be < horizon_periods "
                             f"({self.horizon_periods}): no order placed in the horizon would arrive in it")
        for name, wh in self.warehouses.items():
            if wh.lead_time_periods is not None and wh.lead_time_periods >= self.horizon_periods:
                raise ValueError(f"warehouses.{name}.lead_time_periods must be < horizon_periods")
        holding = self.holding_rate_annual * self.period_days / 365.0
        if self.shortage_multiple <= 1.0 + holding:
            raise ValueError(f"shortage_multiple ({self.shortage_multiple}) must exceed 1 + holding cost per period "
                             f"({1 + holding:.4f}): otherwise leaving demand unmet is cheaper than buying")
        return self

    @property
    def holding_multiple(self) -> float:
        """Holding cost per unit-period as a multiple of unit cost."""
        return self.holding_rate_annual * self.period_days / 365.0
