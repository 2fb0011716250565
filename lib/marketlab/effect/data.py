"""Campaign data for uplift models: input checks, arm indicator, split, feature pipeline."""

from __future__ import annotations

from pyspark.ml.feature import OneHotEncoder, StringIndexer, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError

NUMERIC_FEATURES = ("recency", "history", "history_bin", "mens", "womens", "newbie")
CATEGORICAL_FEATURES = ("zip_code", "channel")
FEATURES_COL = "features"
TREATED_COL = "_treated"


class EffectInputError(BadInputError):
    """The campaign table cannot support an effect estimate (the message says why)."""


def check_campaign(
    df: DataFrame,
    arms: list[str],
    control: str,
    outcomes: list[str],
    treatment_col: str = C.CAMPAIGN_TREATMENT,
    binary_outcomes: tuple[str, ...] = (C.VISIT, C.CONVERSION),
    table: str | None = None,
) -> dict[str, int]:
    """Validate that every arm and the control are present and outcomes are usable.

    Args:
        df: Campaign table (contract: silver.campaign_log).
        arms: Treatment arms to model.
        control: Control arm.
        outcomes: Outcome columns.
        treatment_col: Arm column.
        binary_outcomes: Outcomes that must be 0/1.
        table: Catalog name that error messages start with.

    Returns:
        Rows per arm (control included).

    Raises:
        EffectInputError: Missing column, missing arm, no control, null or non-binary
            outcome, or an outcome with a single class within an arm.
    """
    def fail(msg: str) -> EffectInputError:
        return EffectInputError(f"{table}: {msg}" if table else msg)

    missing = [c for c in [treatment_col, *outcomes] if c not in df.columns]
    if missing:
        raise fail(f"campaign table lacks column(s) {missing}")
    aggs = [F.count(F.lit(1)).alias("n")]
    for y in outcomes:
        aggs += [F.sum(F.col(y).isNull().cast("long")).alias(f"{y}__null"),
                 F.min(y).alias(f"{y}__min"), F.max(y).alias(f"{y}__max")]
    rows = {r[treatment_col]: r.asDict() for r in df.groupBy(treatment_col).agg(*aggs).collect()}
    if control not in rows:
        raise fail(f"no control rows ('{control}') in {treatment_col}: a treatment with no control "
                   f"cannot be evaluated; present: {sorted(map(str, rows))}")
    absent = [a for a in arms if a not in rows]
    if absent:
        raise fail(f"arm(s) {absent} missing from {treatment_col}; present: {sorted(map(str, rows))}")
    for y in outcomes:
        for arm in [*arms, control]:
            r = rows[arm]
            if r[f"{y}__null"]:
                raise fail(f"outcome '{y}' has {r[f'{y}__null']} null value(s) in arm '{arm}'")
            if y in binary_outcomes and (r[f"{y}__min"] < 0 or r[f"{y}__max"] > 1):
                raise fail(f"outcome '{y}' must be 0/1, found range [{r[f'{y}__min']}, {r[f'{y}__max']}]")
            if r[f"{y}__min"] == r[f"{y}__max"]:
                raise fail(f"outcome '{y}' has a single value ({r[f'{y}__min']}) in arm '{arm}': "
                           "no model can learn an effect from it")
    return {str(k): int(v["n"]) for k, v in rows.items()}


def arm_frame(df: DataFrame, arm: str, control: str, treatment_col: str = C.CAMPAIGN_TREATMENT) -> DataFrame:
    """Rows of ``arm`` and ``control`` with a 0/1 column ``_treated``."""
    return (df.where(F.col(treatment_col).isin(arm, control))
              .withColumn(TREATED_COL, (F.col(treatment_col) == arm).cast("int")))


def hash_split(df: DataFrame, fraction: float, seed: int, id_col: str = C.CUSTOMER_ID,
               out_col: str = "is_holdout") -> DataFrame:
    """Flag a deterministic ``fraction`` of customers as held out.

    A hash of (id, seed) rather than ``randomSplit``: the same customer lands on the same
    side on every run and cluster, whatever the partitioning.
    """
    bucket = F.pmod(F.xxhash64(F.col(id_col), F.lit(seed)), F.lit(10_000))
    return df.withColumn(out_col, bucket < F.lit(int(round(fraction * 10_000))))


def feature_stages(numeric: tuple[str, ...] = NUMERIC_FEATURES,
                   categorical: tuple[str, ...] = CATEGORICAL_FEATURES,
                   features_col: str = FEATURES_COL, prefix: str = "") -> list:
    """Spark ML stages that encode the customer features into one vector.

    Unknown categories at scoring time go to an extra bucket (``handleInvalid='keep'``)
    instead of failing the job.
    """
    idx = [f"{prefix}{c}__idx" for c in categorical]
    ohe = [f"{prefix}{c}__ohe" for c in categorical]
    return [
        StringIndexer(inputCols=list(categorical), outputCols=idx, handleInvalid="keep", stringOrderType="alphabetAsc"),
        OneHotEncoder(inputCols=idx, outputCols=ohe, dropLast=False, handleInvalid="keep"),
        VectorAssembler(inputCols=[*numeric, *ohe], outputCol=features_col, handleInvalid="keep"),
    ]
