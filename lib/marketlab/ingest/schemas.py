"""Canonical bronze schemas: the names and types every export of a kind is mapped onto.

A source in conf maps its own column names onto these (``sources.*.columns``), so a
differently named export of the same kind of data loads by conf alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldType = Literal["string", "int", "long", "double", "boolean", "timestamp", "id"]


@dataclass(frozen=True)
class CanonicalField:
    """One canonical column.

    Attributes:
        name: Canonical column name.
        type: ``id`` is an integral identifier that exports often write as a float
            ("17850.0"); it is stored as long and rejected if not integral.
        required: A null (or empty) value rejects the record.
    """

    name: str
    type: FieldType
    required: bool = False


ORDERS = (
    CanonicalField("invoice_no", "string", required=True),
    CanonicalField("stock_code", "string", required=True),
    CanonicalField("description", "string"),
    CanonicalField("quantity", "int", required=True),
    CanonicalField("invoice_date", "timestamp", required=True),
    CanonicalField("unit_price", "double", required=True),
    CanonicalField("customer_id", "id"),
    CanonicalField("country", "string"),
)

CAMPAIGN = (
    CanonicalField("recency", "int", required=True),
    CanonicalField("history_segment", "string"),
    CanonicalField("history", "double", required=True),
    CanonicalField("mens", "int", required=True),
    CanonicalField("womens", "int", required=True),
    CanonicalField("zip_code", "string"),
    CanonicalField("newbie", "int", required=True),
    CanonicalField("channel", "string"),
    CanonicalField("segment", "string", required=True),
    CanonicalField("visit", "int", required=True),
    CanonicalField("conversion", "int", required=True),
    CanonicalField("spend", "double", required=True),
)

SESSIONS = (
    CanonicalField("administrative", "int"),
    CanonicalField("administrative_duration", "double"),
    CanonicalField("informational", "int"),
    CanonicalField("informational_duration", "double"),
    CanonicalField("product_related", "int"),
    CanonicalField("product_related_duration", "double"),
    CanonicalField("bounce_rates", "double"),
    CanonicalField("exit_rates", "double"),
    CanonicalField("page_values", "double"),
    CanonicalField("special_day", "double"),
    CanonicalField("month", "string"),
    CanonicalField("operating_systems", "int"),
    CanonicalField("browser", "int"),
    CanonicalField("region", "int"),
    CanonicalField("traffic_type", "int"),
    CanonicalField("visitor_type", "string"),
    CanonicalField("weekend", "boolean"),
    CanonicalField("revenue", "boolean", required=True),
)

# The campaign-log contract of the shop's own waves (docs/CAMPAIGN.md): one row per
# customer x wave, as any e-mail platform exports it (mapped by conf).
CAMPAIGN_RESPONSES = (
    CanonicalField("campaign_id", "string", required=True),
    CanonicalField("customer_id", "id", required=True),
    CanonicalField("arm", "string", required=True),
    CanonicalField("holdout", "boolean", required=True),
    CanonicalField("sent_at", "timestamp", required=True),
    CanonicalField("window_end", "timestamp"),
    CanonicalField("featured_items", "string"),
    CanonicalField("coupon_level", "double"),
    CanonicalField("propensity", "double"),
    CanonicalField("sent", "boolean"),
    CanonicalField("opened", "boolean"),
    CanonicalField("clicked", "boolean"),
    CanonicalField("ordered", "boolean", required=True),
    CanonicalField("revenue", "double", required=True),
    CanonicalField("coupon_cost", "double"),
    CanonicalField("contact_cost", "double"),
)

CANONICAL: dict[str, tuple[CanonicalField, ...]] = {
    "orders": ORDERS,
    "campaign": CAMPAIGN,
    "sessions": SESSIONS,
    "campaign_responses": CAMPAIGN_RESPONSES,
}

SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "double": "double",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "id": "bigint",
}
