"""Responses of the shop's waves: bronze rows checked against the planned waves -> silver + rejects.

Every bronze row ends in exactly one of the two tables (asserted): a response for an
unknown campaign, for a customer who was not in that wave's export, a second response
for the same customer and wave, negative money, a coupon level or arm not in conf, an arm
other than the planned one, or revenue without an order is quarantined with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.campaign.params import CampaignParams
from marketlab.errors import BadInputError
from marketlab.privacy import customer_key

REASONS = ["unknown_campaign", "not_in_export", "duplicate_response", "negative_money", "coupon_not_in_conf",
           "unknown_arm", "arm_not_planned", "revenue_without_order"]


class ResponseAccountingError(BadInputError):
    """Rows were lost between bronze and silver + rejects (a bug, never bad input)."""


@dataclass
class CheckedResponses:
    """Outcome of checking the responses.

    Attributes:
        valid: silver rows.
        rejects: quarantined rows with ``reason``.
        counts: ``bronze``, ``silver``, ``rejected`` and one count per reason.
    """

    valid: DataFrame
    rejects: DataFrame
    counts: dict[str, int]


def check(bronze: DataFrame, waves: DataFrame, p: CampaignParams, secret: str) -> CheckedResponses:
    """Check responses against the planned waves and derive treatment, profit and propensity.

    Args:
        bronze: bronze.campaign_responses (the campaign-log contract + lineage columns).
        waves: gold.campaign_waves (``campaign_id``, ``wave``, ``customer_key``, ``arm``,
            ``holdout``, ``propensity``, ``p_none``, ``holdout_fraction``).
        p: Campaign parameters (actions, coupon levels, costs).
        secret: Pseudonymisation secret (the responses carry the shop's ids).

    Raises:
        ResponseAccountingError: bronze rows != silver + rejected rows.
    """
    nc = p.no_contact
    levels = sorted({a.coupon for a in p.actions if a.coupon > 0})
    arms = [a.name for a in p.actions]
    coupon_of = F.create_map(*[x for a in p.actions for x in (F.lit(a.name), F.lit(float(a.coupon)))])
    b = bronze.withColumn(C.CUSTOMER_KEY, customer_key(C.CUSTOMER_ID, secret))
    # Exports write a 5 % coupon as 5 or as 0.05.
    b = b.withColumn("coupon_level", F.when(F.col("coupon_level") > 1, F.col("coupon_level") / 100)
                     .otherwise(F.col("coupon_level")))
    known = waves.select("campaign_id").distinct().withColumn("_known", F.lit(True))
    planned = waves.select("campaign_id", C.CUSTOMER_KEY, "wave", F.col("arm").alias("_planned"),
                           F.col("holdout").alias("_planned_holdout"), "propensity", "p_none", "holdout_fraction",
                           "design")
    dup = Window.partitionBy("campaign_id", C.CUSTOMER_KEY).orderBy(C.SOURCE_FILE, C.LINE)
    j = (b.drop("propensity").join(F.broadcast(known), "campaign_id", "left")
         .join(planned, ["campaign_id", C.CUSTOMER_KEY], "left")
         .withColumn("_n", F.row_number().over(dup)))
    in_levels = F.lit(False)
    for lv in levels:
        in_levels = in_levels | (F.abs(F.col("coupon_level") - F.lit(lv)) < 1e-9)
    money = [F.col(c) < 0 for c in ("revenue", "coupon_cost", "contact_cost")]
    reason = (F.when(F.col("_known").isNull(), "unknown_campaign")
              .when(F.col("_planned").isNull(), "not_in_export")
              .when(F.col("_n") > 1, "duplicate_response")
              .when(money[0] | F.coalesce(money[1], F.lit(False)) | F.coalesce(money[2], F.lit(False)), "negative_money")
              .when(F.col("coupon_level").isNotNull() & (F.col("coupon_level") > 0) & ~in_levels, "coupon_not_in_conf")
              .when(~F.col("arm").isin(arms), "unknown_arm")
              .when(F.col("arm") != F.col("_planned"), "arm_not_planned")
              .when(~F.col("ordered") & (F.col("revenue") > 0), "revenue_without_order"))
    j = j.withColumn(C.REASON, reason).cache()
    rejects = j.where(F.col(C.REASON).isNotNull()).select(*bronze.columns, C.REASON)
    ok = j.where(F.col(C.REASON).isNull())
    sent = F.coalesce(F.col("sent"), (F.col("arm") != nc) & ~F.col("holdout")) & (F.col("arm") != nc)
    coupon = F.when(sent, coupon_of[F.col("arm")]).otherwise(F.lit(0.0))
    coupon_cost = F.coalesce(F.col("coupon_cost"), F.col("revenue") * coupon)
    contact_cost = F.coalesce(F.col("contact_cost"), F.when(sent, F.lit(p.contact_cost)).otherwise(F.lit(0.0)))
    h = F.col("holdout_fraction")
    # Probability of the treatment the customer really got: no contact comes from the
    # policy's no-contact share or from the holdout draw; an e-mail from the policy and not
    # being held out.
    p_real = F.when(sent, F.col("propensity") * (1 - h)).otherwise(F.col("p_none") + (1 - F.col("p_none")) * h)
    valid = ok.select(
        "campaign_id", "wave", C.CUSTOMER_KEY, "arm", "holdout", "design", "sent_at",
        sent.alias("sent"), F.when(sent, F.col("arm")).otherwise(F.lit(nc)).alias("treatment"),
        coupon.alias("coupon_level"), F.col("featured_items"), F.col("ordered"), F.col("revenue"),
        coupon_cost.alias("coupon_cost"), contact_cost.alias("contact_cost"),
        (F.lit(p.margin) * F.col("revenue") - coupon_cost - contact_cost).alias("profit"),
        p_real.alias("p_realised"), C.SOURCE_FILE, C.LINE)
    by = {r[C.REASON]: int(r["count"]) for r in j.groupBy(C.REASON).count().collect()}
    n_ok = by.pop(None, 0)
    n_bronze = sum(by.values()) + n_ok
    n_in = bronze.count()
    if n_in != n_bronze:
        raise ResponseAccountingError(f"campaign responses: read {n_in} bronze rows, accounted {n_bronze}")
    counts = {"bronze": n_in, "silver": n_ok, "rejected": n_bronze - n_ok, **{f"rejected.{k}": by.get(k, 0) for k in REASONS}}
    return CheckedResponses(valid, rejects, counts)
