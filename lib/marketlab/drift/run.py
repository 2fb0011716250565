"""The drift stage: compare each watched table's current version with the last accepted one.

The reference of a table is the version the last *accepted* drift run saw as current, read
back by Delta time travel. A run whose rows hold a ``block`` verdict is recorded with
``accepted = false`` when ``on_block`` is ``fail``, so the next run compares with the same
reference again: a drifted table cannot become its own reference by being run twice. It is
accepted by one run with ``jobs.drift.on_block=warn`` (docs/CONTRACTS.md, ``ops.drift``).

Per table and slice the work is three Spark jobs whatever the number of columns: the
reference's quantiles, the binned counts of both versions in one aggregation, and one
seeded sample of both for the KS test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from marketlab.drift import stats
from marketlab.drift.params import DriftCheck, DriftParams
from marketlab.errors import GateFailedError
from marketlab.tables import Lake

log = logging.getLogger(__name__)

SCHEMA = ("checked_at timestamp, run_id string, table string, column string, slice string, "
          "ref_version long, cur_version long, n_ref long, n_cur long, null_rate_ref double, "
          "null_rate_cur double, psi double, ks_stat double, ks_pvalue double, status string, accepted boolean")
KEYS = ["table", "column", "slice", "ref_version", "cur_version"]
#: Worst first: the run's verdict is the first of these that any row has.
SEVERITY = ("block", "warn", "ok", "unchanged", "baseline")
ALL = "all"  # the slice name of a table compared as a whole
_SIDE = "_drift_side"


class DriftBlockedError(GateFailedError):
    """A watched column drifted past ``block_psi`` and ``on_block`` is ``fail``."""


@dataclass
class DriftResult:
    """What one drift run compared and found.

    Attributes:
        rows: The rows written to ``ops.drift`` (one per table x column x slice).
        version: Version of ``ops.drift`` written.
        missing: Watched tables not in the lake (optional inputs not built yet).
    """

    rows: pd.DataFrame
    version: int
    missing: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The worst verdict of the run (``baseline`` when nothing had a reference)."""
        present = set(self.rows["status"])
        return next((s for s in SEVERITY if s in present), "baseline")

    def worst(self) -> pd.Series | None:
        """The row with the largest PSI, if any row was compared."""
        compared = self.rows.dropna(subset=["psi"])
        return None if compared.empty else compared.loc[compared["psi"].idxmax()]


def _accepted_versions(lake: Lake, table: str) -> dict[str, int]:
    """Watched table -> the current version of its last accepted comparison."""
    if not lake.exists(table):
        return {}
    latest = (lake.read(table).where(F.col("accepted"))
              .groupBy("table").agg(F.max_by("cur_version", "checked_at").alias("v")).collect())
    return {r["table"]: int(r["v"]) for r in latest}


def _slice_name(by: list[str], values: tuple) -> str:
    return ",".join(f"{c}={v}" for c, v in zip(by, values)) if by else ALL


def _slices(ref: DataFrame | None, cur: DataFrame, by: list[str]) -> list[tuple]:
    if not by:
        return [()]
    both = cur.select(*by) if ref is None else cur.select(*by).unionByName(ref.select(*by))
    return sorted(tuple(r) for r in both.distinct().collect())


def _where(df: DataFrame, by: list[str], values: tuple) -> DataFrame:
    cond: Column = F.lit(True)
    for c, v in zip(by, values):
        cond = cond & (F.col(c).isNull() if v is None else (F.col(c) == F.lit(v)))
    return df.where(cond)


def _bucket(col: str, inner: list[float]) -> Column:
    """Bin index of ``col`` over the inner edges: bins are (e[i-1], e[i]]."""
    if not inner:
        return F.lit(0)
    return sum(((F.col(col) > F.lit(e)).cast("int") for e in inner), F.lit(0))


def _compare(ref: DataFrame, cur: DataFrame, columns: list[str], p: DriftParams) -> list[dict]:
    """PSI, KS and null shares of ``columns`` between two frames of the same slice."""
    ref = ref.select(*[F.col(c).cast("double").alias(c) for c in columns])
    cur = cur.select(*[F.col(c).cast("double").alias(c) for c in columns])
    probs = [i / p.bins for i in range(1, p.bins)]
    quantiles = ref.approxQuantile(columns, probs, 1e-3)
    edges = {c: stats.quantile_edges(q)[1:-1] for c, q in zip(columns, quantiles)}

    both = ref.withColumn(_SIDE, F.lit("ref")).unionByName(cur.withColumn(_SIDE, F.lit("cur")))
    aggs = [F.count(F.lit(1)).alias("n")]
    for c in columns:
        aggs.append(F.count(c).alias(f"{c}__nn"))
        b = _bucket(c, edges[c])
        aggs += [F.count(F.when(F.col(c).isNotNull() & (b == i), 1)).alias(f"{c}__b{i}")
                 for i in range(len(edges[c]) + 1)]
    counts = {r[_SIDE]: r.asDict() for r in both.groupBy(_SIDE).agg(*aggs).collect()}
    n = {s: int(counts.get(s, {}).get("n", 0)) for s in ("ref", "cur")}

    fractions = {s: min(1.0, p.ks_sample / n[s]) if n[s] else 0.0 for s in n}
    sample = (both.where(((F.col(_SIDE) == "ref") & (F.rand(p.seed) < fractions["ref"]))
                         | ((F.col(_SIDE) == "cur") & (F.rand(p.seed + 1) < fractions["cur"])))
              .toPandas())
    out = []
    for c in columns:
        nn = {s: int(counts.get(s, {}).get(f"{c}__nn", 0)) for s in n}
        null_rate = {s: (1 - nn[s] / n[s]) if n[s] else float("nan") for s in n}
        hist = {s: [int(counts.get(s, {}).get(f"{c}__b{i}", 0)) for i in range(len(edges[c]) + 1)] for s in n}
        value = stats.psi(hist["ref"], hist["cur"]) if nn["ref"] and nn["cur"] else None
        ks_stat, ks_p = stats.ks(sample.loc[sample[_SIDE] == "ref", c].dropna(),
                                 sample.loc[sample[_SIDE] == "cur", c].dropna())
        null_change = (null_rate["cur"] - null_rate["ref"]) if n["ref"] and n["cur"] else 0.0
        out.append({"column": c, "n_ref": n["ref"], "n_cur": n["cur"], "null_rate_ref": null_rate["ref"],
                    "null_rate_cur": null_rate["cur"], "psi": value, "ks_stat": ks_stat, "ks_pvalue": ks_p,
                    "status": stats.verdict(value, null_change, p.warn_psi, p.block_psi,
                                            p.max_null_rate_change)})
    return out


def _baseline(cur: DataFrame, columns: list[str], status: str) -> list[dict]:
    """Rows of a table with no comparison: its count and null shares (one job)."""
    row = cur.agg(F.count(F.lit(1)).alias("n"), *[F.count(c).alias(c) for c in columns]).first()
    n = int(row["n"])
    return [{"column": c, "n_ref": n if status == "unchanged" else None, "n_cur": n,
             "null_rate_ref": None, "null_rate_cur": (1 - row[c] / n) if n else None,
             "psi": 0.0 if status == "unchanged" else None, "ks_stat": None, "ks_pvalue": None,
             "status": status} for c in columns]


def _check(lake: Lake, check: DriftCheck, ref_version: int | None, p: DriftParams) -> list[dict]:
    cur_version = int(lake.version(check.table))
    if ref_version is not None and ref_version > cur_version:
        log.warning("%s: reference version %d is newer than the table (%d): recreated? baseline again",
                    check.table, ref_version, cur_version)
        ref_version = None
    ref = None
    if ref_version is not None and ref_version != cur_version:
        try:
            ref = lake.read(check.table, version=ref_version)
            ref.schema  # noqa: B018  (resolves the version now: a vacuumed one fails here)
        except Exception as exc:  # noqa: BLE001  (time travel past a VACUUM: no reference left)
            log.warning("%s: reference version %d unreadable (%s): baseline again", check.table, ref_version,
                        str(exc).splitlines()[0][:200])
            ref, ref_version = None, None
    cur = lake.read(check.table)  # read last, so the lineage names the current version
    missing = sorted(set(check.columns + check.by) - set(cur.columns))
    if missing:
        raise GateFailedError(f"drift: {check.table} has no column(s) {missing}; it has {sorted(cur.columns)}")
    rows = []
    for values in _slices(ref, cur, check.by):
        c = _where(cur, check.by, values)
        if ref is None:
            got = _baseline(c, check.columns, "unchanged" if ref_version is not None else "baseline")
        else:
            got = _compare(_where(ref, check.by, values), c, check.columns, p)
        rows += [{"table": check.table, "slice": _slice_name(check.by, values), "ref_version": ref_version,
                  "cur_version": cur_version, **r} for r in got]
    return rows


def run(lake: Lake, params: DriftParams, run_id: str | None = None) -> DriftResult:
    """Compare every watched table with its reference and write the rows to ``ops.drift``.

    Raises:
        DriftBlockedError: A column's PSI reached ``block_psi`` and ``on_block`` is ``fail``
            (raised after the rows are written, so the report shows what blocked).
        GateFailedError: A watched column is not in its table.
    """
    refs = _accepted_versions(lake, params.output_table)
    rows, missing = [], []
    for check in params.checks:
        if not lake.exists(check.table):
            missing.append(check.table)
            continue
        rows += _check(lake, check, refs.get(check.table), params)
    blocked = [r for r in rows if r["status"] == "block"]
    accepted = not (blocked and params.on_block == "fail")
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    frame = pd.DataFrame([{**r, "checked_at": now, "run_id": run_id, "accepted": accepted} for r in rows],
                         columns=[c.split()[0] for c in SCHEMA.split(", ")])
    sdf = lake.spark.createDataFrame(frame.astype(object).where(frame.notna(), None), SCHEMA)
    version = lake.merge(sdf, params.output_table, keys=KEYS)
    res = DriftResult(frame, version, missing)
    if not accepted:
        shown = ", ".join(f"{r['table']}.{r['column']}[{r['slice']}] psi={r['psi']:.3f}" for r in blocked[:5])
        raise DriftBlockedError(
            f"drift past block_psi={params.block_psi}: {shown}{' ...' if len(blocked) > 5 else ''} "
            f"(ops.drift v{version}); accept it with --set jobs.drift.on_block=warn")
    return res
