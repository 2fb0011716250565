"""Orchestration of the features stage over a lake (used by jobs/features.py, the ``gold``
fixture and the benchmark): refuse silver versions the gate has not passed, build every
gold feature table, write each in one commit.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from marketlab.features import build
from marketlab.features.params import FeaturesParams
from marketlab.quality.run import require_passed
from marketlab.tables import Lake

INPUTS = ("silver.order_lines", "silver.returns")
OUTPUTS = ("gold.item_features", "gold.interactions", "gold.demand_daily", "gold.demand_weekly",
           "gold.customer_features", "gold.customer_sequences")


def build_features(lake: Lake, params: FeaturesParams, results_table: str = "quality.results") -> dict:
    """Build and write the gold feature tables.

    ``gold.customer_features`` is merged on (customer_key, as_of) and replaced for that
    cutoff only, so several cutoffs can live side by side; the other tables are full
    overwrites. Each table gets a ``_built_from`` column naming the silver versions.

    Returns:
        ``{"as_of": date, "rows": {table: rows}, "versions": {table: version}}``.

    Raises:
        marketlab.runtime.JobError: A silver version did not pass the quality gate, or
            ``as_of`` is not a date.
    """
    from marketlab.runtime import JobError

    require_passed(lake, list(INPUTS), results_table)
    sales, returns = lake.read("silver.order_lines").cache(), lake.read("silver.returns").cache()
    built_from = ",".join(f"{t}@v{lake.reads[t]}" for t in INPUTS)
    salt = build.resolve_salt(params.salt_env, params.default_salt)
    if params.as_of:
        try:
            as_of = dt.date.fromisoformat(params.as_of)
        except ValueError:
            raise JobError(f"jobs.features.as_of must be YYYY-MM-DD, got '{params.as_of}'") from None
    else:
        as_of = build.default_as_of(sales)
    end = sales.agg(F.max("date")).first()[0]
    daily = build.demand_daily(sales, returns, end_date=end, exclude_outliers=params.demand_exclude_outliers)
    tables = {
        "gold.item_features": build.item_features(sales, returns),
        "gold.interactions": build.interactions(sales, returns, salt),
        "gold.demand_daily": daily,
        "gold.demand_weekly": build.demand_weekly(daily),
        "gold.customer_sequences": build.customer_sequences(sales, salt, params.sequence_max_baskets),
    }
    rows, versions = {}, {}
    for name, df in tables.items():
        versions[name] = lake.write(df.withColumn("_built_from", F.lit(built_from)), name)
    cf = build.customer_features(sales, returns, as_of, salt, params.windows_days, params.score_bins)
    cf = cf.withColumn("_built_from", F.lit(built_from))
    if lake.exists("gold.customer_features"):
        versions["gold.customer_features"] = lake.write(cf, "gold.customer_features", replace_where=f"as_of = DATE'{as_of}'")
    else:
        versions["gold.customer_features"] = lake.write(cf, "gold.customer_features")
    for name in OUTPUTS:
        df = lake.read(name)
        rows[name] = (df.where(F.col("as_of") == F.lit(as_of)) if name == "gold.customer_features" else df).count()
    sales.unpersist()
    returns.unpersist()
    return {"as_of": as_of, "rows": rows, "versions": versions}
