"""The features stage's entry point (used by jobs/features.py, the ``gold`` fixture and the
benchmarks): build every gold feature table, write each in one commit. The lake refuses
silver versions the gate has not passed (:meth:`marketlab.tables.Lake.read`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import ConfError
from marketlab.features import build
from marketlab.features.params import FeaturesParams
from marketlab.tables import Lake


@dataclass
class FeaturesResult:
    """What the features stage wrote.

    Attributes:
        as_of: Cutoff of the customer features.
        rows: Catalog name -> rows (customer features: rows of this cutoff).
        versions: Catalog name -> Delta version written.
    """

    as_of: dt.date
    rows: dict[str, int]
    versions: dict[str, int]

    def metrics(self) -> dict[str, float]:
        """Rows per table, e.g. ``rows.customer_features``."""
        return {f"rows.{t.split('.')[-1]}": n for t, n in self.rows.items()}


def run(lake: Lake, params: FeaturesParams, secret: str) -> FeaturesResult:
    """Build and write the gold feature tables.

    The customer features are replaced for their cutoff only (``replaceWhere`` on
    ``as_of``), so several cutoffs can live side by side; the other tables are full
    overwrites. Each table gets a ``_built_from`` column naming the silver versions.

    Args:
        lake: The lake.
        params: Features params (cutoff, windows, table names).
        secret: Pseudonymisation secret of ``customer_key`` (:func:`marketlab.privacy.resolve_secret`).

    Raises:
        GateFailedError: A silver version did not pass the quality gate (raised by the lake's read).
        ConfError: ``as_of`` is not a date.
    """
    inputs = (params.order_lines_table, params.returns_table)
    sales, returns = lake.read(params.order_lines_table).cache(), lake.read(params.returns_table).cache()
    built_from = ",".join(f"{t}@v{lake.reads[t]}" for t in inputs)
    if params.as_of:
        try:
            as_of = dt.date.fromisoformat(params.as_of)
        except ValueError:
            raise ConfError(f"jobs.features.as_of must be YYYY-MM-DD, got '{params.as_of}'") from None
    else:
        as_of = build.default_as_of(sales)
    end = sales.agg(F.max(C.DATE)).first()[0]
    daily = build.demand_daily(sales, returns, end_date=end, exclude_outliers=params.demand_exclude_outliers,
                               max_calendar_days=params.demand_calendar_max_days)
    tables = {
        params.item_features_table: build.item_features(sales, returns),
        params.interactions_table: build.interactions(sales, returns, secret),
        params.demand_daily_table: daily,
        params.demand_weekly_table: build.demand_weekly(daily),
        params.customer_sequences_table: build.customer_sequences(sales, secret, params.sequence_max_baskets),
    }
    versions = {name: lake.write(df.withColumn("_built_from", F.lit(built_from)), name) for name, df in tables.items()}
    cf_table = params.customer_features_table
    cf = build.customer_features(sales, returns, as_of, secret, params.windows_days, params.score_bins)
    cf = cf.withColumn("_built_from", F.lit(built_from))
    cutoff = f"{C.AS_OF} = DATE'{as_of}'" if lake.exists(cf_table) else None
    versions[cf_table] = lake.write(cf, cf_table, replace_where=cutoff)
    rows = {}
    for name in (*tables, cf_table):
        df = lake.read(name)
        rows[name] = (df.where(F.col(C.AS_OF) == F.lit(as_of)) if name == cf_table else df).count()
    sales.unpersist()
    returns.unpersist()
    return FeaturesResult(as_of, rows, versions)
