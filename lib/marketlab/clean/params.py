"""Parameters of the clean job (conf: `jobs.clean` in conf/base/params/clean.yaml).

Every cleaning rule that depends on the data set (spellings, sentinels, code patterns,
outlier thresholds, the country -> warehouse map) lives here, so another export with other
quirks is handled by conf, not code.
"""

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class CampaignRules(StrictModel):
    """Rules for the campaign log (Hillstrom).

    Attributes:
        value_fixes: Column -> {wrong spelling: right spelling}; each fixed row is audited.
        history_bin_pattern: Regex whose group 1 is the bin number in ``history_segment``
            ("2) $100 - $200" -> 2). A value that does not match keeps the row with a null
            bin and an audit row.
        treatments: Allowed arm names; a row with another arm is excluded.
        drop_duplicates: Hillstrom's identical rows are distinct customers (documented in
            the data README), so they are kept by default.
    """

    value_fixes: dict[str, dict[str, str]] = Field(default_factory=lambda: {"zip_code": {"Surburban": "Suburban"}})
    history_bin_pattern: str = r"^\s*(\d+)\)"
    treatments: list[str] = Field(default_factory=lambda: ["Mens E-Mail", "Womens E-Mail", "No E-Mail"])
    drop_duplicates: bool = False


class SessionRules(StrictModel):
    """Rules for the browsing sessions (Online Shoppers).

    Attributes:
        value_fixes: Column -> {wrong spelling: right spelling} ("June" -> "Jun").
        missing_sentinel: Value that means "not recorded" in ``sentinel_columns``.
        sentinel_columns: Columns where the sentinel is replaced by null.
        all_missing_columns: A row with every one of these null is excluded.
        drop_duplicates: Identical sessions are plausible (bounces), kept by default.
    """

    value_fixes: dict[str, dict[str, str]] = Field(default_factory=lambda: {"month": {"June": "Jun"}})
    missing_sentinel: float = -1.0
    sentinel_columns: list[str] = Field(
        default_factory=lambda: ["administrative_duration", "informational_duration", "product_related_duration"])
    all_missing_columns: list[str] = Field(default_factory=lambda: [
        "administrative", "administrative_duration", "informational", "informational_duration",
        "product_related", "product_related_duration", "bounce_rates", "exit_rates"])
    drop_duplicates: bool = False


class OutlierRule(StrictModel):
    """How a sale line is flagged ``is_outlier`` (flagged, never dropped).

    Attributes:
        method: ``iqr``: quantity > Q3 + k * IQR of the item's quantities; ``zscore``:
            (quantity - mean) / std > k.
        k: Threshold multiplier.
        min_lines: Items with fewer sale lines are never flagged (too little data).
        log_scale: Apply the rule to log1p(quantity): order quantities are heavy-tailed
            (1, 12, 24, 144 ...), so a linear IQR flags ordinary case packs.
    """

    method: Literal["iqr", "zscore"] = "iqr"
    k: float = Field(3.0, gt=0)
    min_lines: int = Field(10, ge=2)
    log_scale: bool = True


class OrderRules(StrictModel):
    """Rules for the order lines (Online Retail).

    Attributes:
        product_code_pattern: Stock codes matching this regex are products; the others
            (POST, DOT, M, BANK CHARGES, AMAZONFEE, gift vouchers ...) go to adjustments.
        cancellation_prefix: Invoice prefix of a cancellation (its lines become returns).
        adjustment_prefix: Invoice prefix of a bad-debt adjustment.
        link_window_days: A return is linked to the latest earlier sale of the same
            customer and item within this many days.
        default_warehouse: Warehouse for a country missing from ``warehouses``.
        warehouses: Country -> fulfilment site.
        outliers: The outlier rule.
    """

    product_code_pattern: str = r"^[0-9]{5}"
    cancellation_prefix: str = "C"
    adjustment_prefix: str = "A"
    link_window_days: int = Field(365, ge=1)
    default_warehouse: str = "INTL"
    warehouses: dict[str, str] = Field(default_factory=lambda: {"United Kingdom": "UK"})
    outliers: OutlierRule = Field(default_factory=OutlierRule)


Kind = Literal["orders", "campaign", "sessions"]


class CleanParams(StrictModel):
    """Parameters of the clean job.

    Attributes:
        orders: Rules for ``bronze.orders``.
        campaign: Rules for ``bronze.campaign_log``.
        sessions: Rules for ``bronze.sessions``.
        tables: Which kinds of source to clean (all by default).
        orders_input_table: Bronze order lines read.
        campaign_input_table: Bronze campaign log read.
        sessions_input_table: Bronze sessions read.
        order_lines_table: Silver sales written.
        returns_table: Silver returns written.
        adjustments_table: Silver non-product lines (postage, fees, bad debt) written.
        campaign_table: Silver campaign log written.
        sessions_table: Silver sessions written.
        audit_table: Every excluded or altered bronze row, with its reason.
    """

    orders: OrderRules = Field(default_factory=OrderRules)
    campaign: CampaignRules = Field(default_factory=CampaignRules)
    sessions: SessionRules = Field(default_factory=SessionRules)
    tables: list[Kind] = Field(default_factory=lambda: ["orders", "campaign", "sessions"])
    orders_input_table: str = "bronze.orders"
    campaign_input_table: str = "bronze.campaign_log"
    sessions_input_table: str = "bronze.sessions"
    order_lines_table: str = "silver.order_lines"
    returns_table: str = "silver.returns"
    adjustments_table: str = "silver.adjustments"
    campaign_table: str = "silver.campaign_log"
    sessions_table: str = "silver.sessions"
    audit_table: str = "silver._audit"

    def input_table(self, kind: Kind) -> str:
        """The bronze table of one kind of source."""
        return {"orders": self.orders_input_table, "campaign": self.campaign_input_table,
                "sessions": self.sessions_input_table}[kind]

    def output_tables(self, kind: Kind) -> tuple[str, ...]:
        """The silver tables cleaning one kind of source writes."""
        return {"orders": (self.order_lines_table, self.returns_table, self.adjustments_table),
                "campaign": (self.campaign_table,), "sessions": (self.sessions_table,)}[kind]

    @model_validator(mode="after")
    def _non_empty(self) -> "CleanParams":
        if not self.tables:
            raise ValueError("tables: at least one of orders, campaign, sessions")
        return self
