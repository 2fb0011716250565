"""Transitions as data: (state, action, reward, next state, done) rows from the logged waves.

A logged wave is one row per customer x wave: the arm played, whether an e-mail went out,
the coupon level and the responses in the wave's window. :func:`build_transitions` turns
them into one transition per row with a window over each customer's waves, in Spark, so
a log of millions of customers x waves is built where it lies. The state before a wave is
computed only from the customer's history before the first logged wave and from the
earlier logged waves, never from the wave's own outcomes (those are the reward and the
next state).

:class:`marketlab.rl.state.StateTracker` computes the same features online, in numpy, for
rolling a policy forward in the simulator; tests/rl checks the two agree.
"""

from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError

# --- input column defaults (the campaign simulator's response export plus the wave index) --
CUSTOMER = C.CUSTOMER_ID
WAVE = "wave"
SENT_AT = "sent_at"
ARM = "arm"
SENT = "sent"
COUPON_LEVEL = "coupon_level"
ORDERED = "ordered"
REVENUE = C.REVENUE
COUPON_COST = "coupon_cost"
CONTACT_COST = "contact_cost"

# --- history before the first logged wave (one row per customer) -------------------------
RECENCY = "recency_days"  # days from the last order to the first logged wave
FREQUENCY = "frequency"  # orders (invoices) before the first logged wave
MONETARY = "monetary"  # average order value before the first logged wave

# --- the state: output names, in this order -----------------------------------------------
DAYS_SINCE_CONTACT = "days_since_contact"
CONTACTS = "contacts_90d"
COUPONS = "coupons_90d"
ORDERS = "orders_90d"
STATE = [RECENCY, FREQUENCY, MONETARY, DAYS_SINCE_CONTACT, CONTACTS, COUPONS, ORDERS]
NEXT = "next_"  # prefix of the next state's columns
ACTION = "action"
REWARD = "reward"
DONE = "done"

DEFAULT_MARGIN = 0.35  # the simulator's and the campaign's default gross margin
WINDOW_DAYS = 90  # contacts, coupons and orders are counted over this many days before the wave
GAP_DAYS = 30  # days from the last logged wave to the state after it (the wave cadence)
# "Never contacted" is a long time ago, not a missing value: a finite cap keeps the
# feature usable by a linear Q model and orders it after every real gap.
NEVER_DAYS = 365.0
_DAY_S = 86400.0


def state_columns(value_cols: Sequence[str] = ()) -> list[str]:
    """The state's columns: :data:`STATE` then the value columns passed in."""
    return [*STATE, *value_cols]


def build_transitions(waves: DataFrame, history: DataFrame, *, value_cols: Sequence[str] = (),
                      keep: Sequence[str] = (), margin: float = DEFAULT_MARGIN, window_days: int = WINDOW_DAYS,
                      gap_days: int = GAP_DAYS, customer_col: str = CUSTOMER, wave_col: str = WAVE,
                      ts_col: str = SENT_AT, action_col: str = ARM, sent_col: str = SENT,
                      coupon_col: str = COUPON_LEVEL, ordered_col: str = ORDERED, revenue_col: str = REVENUE,
                      coupon_cost_col: str = COUPON_COST, contact_cost_col: str = CONTACT_COST,
                      recency_col: str = RECENCY, frequency_col: str = FREQUENCY,
                      monetary_col: str = MONETARY) -> DataFrame:
    """One transition per logged customer x wave.

    State before wave *t* of a customer (days are measured at the wave's send time):

    - ``recency_days``: days since the last order: the last logged wave with an order
      (dated at that wave's send time: the export has no order date), else the history's
      recency plus the days since the first logged wave.
    - ``frequency`` / ``monetary``: history orders plus logged waves with an order, and the
      average order value over both (a wave's window revenue counts as one order).
    - ``days_since_contact``: days since the last logged wave that sent an e-mail
      (:data:`NEVER_DAYS` if none).
    - ``contacts_90d`` / ``coupons_90d`` / ``orders_90d``: earlier logged waves within
      ``window_days`` that sent an e-mail / a coupon / had an order.
    - each of ``value_cols`` as logged on the wave's row (e.g. a predicted customer value).

    The reward is ``margin * revenue - coupon_cost - contact_cost`` of the wave's window.
    The next state is the state before the customer's next logged wave, or for the last
    one the state ``gap_days`` after it; ``done`` marks the last logged wave (the log ends
    there, the customer does not).

    Args:
        waves: Logged waves, one row per customer x wave.
        history: One row per customer: recency, frequency and monetary before the first
            logged wave; customers missing from it have no history (frequency 0).
        value_cols: Extra state columns of ``waves``.
        keep: Extra columns of ``waves`` carried as they are (e.g. the logged propensity).
        margin: Gross margin on revenue.
        window_days: Window of the recent counts.
        gap_days: Days from the last logged wave to its next state.
        customer_col / wave_col / ts_col / action_col / sent_col / coupon_col / ordered_col /
            revenue_col / coupon_cost_col / contact_cost_col: Column names of ``waves``.
        recency_col / frequency_col / monetary_col: Column names of ``history``.

    Returns:
        ``customer_id``, ``wave``, the state (:func:`state_columns`), ``action``, ``reward``,
        the next state (prefixed ``next_``), ``done`` and ``keep``; keyed by the input's
        customer and wave names.

    Raises:
        BadInputError: Missing columns, a value column clashing with a state name, or a
            customer with two rows in one wave.
    """
    need = [customer_col, wave_col, ts_col, action_col, sent_col, coupon_col, ordered_col, revenue_col,
            coupon_cost_col, contact_cost_col, *value_cols, *keep]
    missing = [c for c in dict.fromkeys(need) if c not in waves.columns]
    hneed = [customer_col, recency_col, frequency_col, monetary_col]
    hmissing = [c for c in hneed if c not in history.columns]
    if missing or hmissing:
        raise BadInputError(f"rl transitions: logged waves lack column(s) {missing}, history lacks {hmissing}")
    clash = sorted(set(value_cols) & set(STATE))
    if clash:
        raise BadInputError(f"rl transitions: value column(s) {clash} clash with the state's names {STATE}")
    dup = waves.groupBy(customer_col, wave_col).count().where(F.col("count") > 1).limit(1).collect()
    if dup:
        raise BadInputError(f"rl transitions: customer {dup[0][0]} has {dup[0][2]} rows in wave {dup[0][1]}; "
                            "one row per customer x wave")

    sec = F.unix_timestamp(F.col(ts_col).cast("timestamp"))  # whole seconds: a range window needs an integral order
    w = waves.select(
        F.col(customer_col).alias("_c"), F.col(wave_col).cast("long").alias("_w"), sec.alias("_ts"),
        F.col(action_col).cast("string").alias(ACTION),
        F.col(sent_col).cast("boolean").cast("double").alias("_s"),
        (F.col(sent_col).cast("boolean") & (F.col(coupon_col).cast("double") > 0)).cast("double").alias("_k"),
        F.col(ordered_col).cast("boolean").cast("double").alias("_o"),
        F.col(revenue_col).cast("double").alias("_r"),
        (F.lit(float(margin)) * F.col(revenue_col) - F.col(coupon_cost_col) - F.col(contact_cost_col))
        .cast("double").alias(REWARD),
        *[F.col(c).cast("double").alias(c) for c in value_cols], *[F.col(c) for c in keep],
        F.lit(False).alias("_phantom"))
    # One phantom row per customer, gap_days after its last wave: its state is the next
    # state of the last logged wave (same window, no action of its own).
    last = w.groupBy("_c").agg(F.max(F.struct("_w", "_ts", *value_cols)).alias("_l"))
    phantom = last.select(
        "_c", (F.col("_l._w") + 1).alias("_w"), (F.col("_l._ts") + F.lit(int(gap_days * _DAY_S))).alias("_ts"),
        F.lit(None).cast("string").alias(ACTION), *[F.lit(0.0).alias(c) for c in ("_s", "_k", "_o", "_r")],
        F.lit(None).cast("double").alias(REWARD), *[F.col(f"_l.{c}").alias(c) for c in value_cols],
        *[F.lit(None).cast(waves.schema[c].dataType).alias(c) for c in keep], F.lit(True).alias("_phantom"))
    h = history.select(F.col(customer_col).alias("_c"), F.col(recency_col).cast("double").alias("_rec0"),
                       F.col(frequency_col).cast("double").alias("_f0"),
                       F.col(monetary_col).cast("double").alias("_m0"))
    rows = w.unionByName(phantom).join(h, "_c", "left")

    by = Window.partitionBy("_c")
    before = by.orderBy("_w").rowsBetween(Window.unboundedPreceding, -1)
    recent = by.orderBy("_ts").rangeBetween(-int(window_days * _DAY_S), -1)
    days = lambda then: (F.col("_ts") - then) / _DAY_S  # noqa: E731
    f0 = F.coalesce("_f0", F.lit(0.0))
    m0 = F.coalesce("_m0", F.lit(0.0))
    n_orders = F.coalesce(F.sum("_o").over(before), F.lit(0.0))
    freq = f0 + n_orders
    spent = f0 * m0 + F.coalesce(F.sum(F.col("_r") * F.col("_o")).over(before), F.lit(0.0))
    last_order = F.max(F.when(F.col("_o") > 0, F.col("_ts"))).over(before)
    last_contact = F.max(F.when(F.col("_s") > 0, F.col("_ts"))).over(before)
    first = F.min("_ts").over(by)
    s = rows.select(
        "*",
        F.when(last_order.isNotNull(), days(last_order))
        .otherwise(F.coalesce("_rec0", F.lit(NEVER_DAYS)) + days(first)).alias(RECENCY),
        freq.alias(FREQUENCY),
        F.when(freq > 0, spent / freq).otherwise(F.lit(0.0)).alias(MONETARY),
        F.coalesce(days(last_contact), F.lit(NEVER_DAYS)).alias(DAYS_SINCE_CONTACT),
        F.coalesce(F.sum("_s").over(recent), F.lit(0.0)).alias(CONTACTS),
        F.coalesce(F.sum("_k").over(recent), F.lit(0.0)).alias(COUPONS),
        F.coalesce(F.sum("_o").over(recent), F.lit(0.0)).alias(ORDERS))
    cols = state_columns(value_cols)
    nxt = by.orderBy("_w")
    t = s.select("*", *[F.lead(c).over(nxt).alias(NEXT + c) for c in cols],
                 F.lead("_phantom").over(nxt).alias(DONE))
    return t.where(~F.col("_phantom")).select(
        F.col("_c").alias(customer_col), F.col("_w").alias(wave_col), *cols, ACTION, REWARD,
        *[NEXT + c for c in cols], DONE, *keep)
