"""Value tiers and at-risk customers on a scored table (for segments, strategy and the report).

Both take a Spark frame with a CLV column (and P(alive)), e.g. one ``as_of`` slice of
gold.customer_value, and add columns; thresholds are CLV quantiles of that frame
(``approxQuantile``, relative error ``rel_error``), so no customer rows are collected.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab.errors import BadInputError
from marketlab.value.summary import CLV, P_ALIVE

TIER = "value_tier"
AT_RISK = "at_risk"


def _quantiles(df: DataFrame, col: str, qs: list[float], rel_error: float) -> list[float]:
    values = df.approxQuantile(col, qs, rel_error)
    if len(values) != len(qs):
        raise BadInputError(f"cannot compute {col} quantiles: no rows with a {col}")
    return values


def value_tiers(df: DataFrame, tiers: list[str], quantiles: list[float], clv_col: str = CLV,
                tier_col: str = TIER, rel_error: float = 1e-4) -> DataFrame:
    """``df`` with ``tier_col``: ``tiers[0]`` for CLV >= the ``quantiles[0]`` quantile, and so on down.

    Args:
        df: Scored customers.
        tiers: Tier names, highest value first.
        quantiles: CLV quantiles separating them, highest first (``len(tiers) - 1`` values).
        clv_col: CLV column.
        tier_col: Output column.
        rel_error: Relative error of ``approxQuantile`` (0: exact, slower).

    Raises:
        BadInputError: Mismatched tiers/quantiles, or no rows.
    """
    if len(quantiles) != len(tiers) - 1:
        raise BadInputError(f"{len(tiers)} tiers need {len(tiers) - 1} quantiles, got {len(quantiles)}")
    cuts = _quantiles(df, clv_col, quantiles, rel_error)
    expr = F.lit(tiers[-1])
    for name, cut in reversed(list(zip(tiers[:-1], cuts))):
        expr = F.when(F.col(clv_col) >= F.lit(cut), F.lit(name)).otherwise(expr)
    return df.withColumn(tier_col, expr)


def at_risk(df: DataFrame, min_clv_quantile: float = 0.8, max_p_alive: float = 0.5, clv_col: str = CLV,
            p_alive_col: str = P_ALIVE, flag_col: str = AT_RISK, rel_error: float = 1e-4) -> DataFrame:
    """``df`` with ``flag_col``: high value (CLV at or above its ``min_clv_quantile`` quantile) and
    P(alive) at or below ``max_p_alive`` -- the customers worth a win-back before they are gone.
    """
    (cut,) = _quantiles(df, clv_col, [min_clv_quantile], rel_error)
    return df.withColumn(flag_col, (F.col(clv_col) >= F.lit(cut)) & (F.col(p_alive_col) <= F.lit(max_p_alive)))
