"""Ingest: the stage's entry point :func:`run` — every file of the configured sources, parsed,
accounted for, written to bronze and logged.

Per file, in this order (each write one Delta commit):

1. parse every record (persisted) and count valid / rejected per reason;
   ``records read == bronze rows + rejected rows`` is asserted before anything is written;
2. bronze table: overwrite the rows of *this file* (``replaceWhere _source_file = ...``);
3. rejects table: the same for this file's quarantined records;
4. ingest log: one row for the file (checksum, counts, versions).

A file whose checksum is already in the log as ``ok`` is skipped, so re-running adds
nothing. A job killed between steps re-does the file on the next run and, because steps 2
and 3 replace the file's rows, ends with the same tables. A corrupt file (empty,
truncated, not text, wrong header, too many rejects) fails alone with a message; no table
is touched for it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.storagelevel import StorageLevel

from marketlab import constants as C
from marketlab.config import SourceSpec
from marketlab.errors import BadInputError, ConfError
from marketlab.ingest.params import IngestParams
from marketlab.ingest.parse import bound_timestamps, parse_delimited, parse_json_lines, parse_table, split_valid
from marketlab.ingest.schemas import CANONICAL
from marketlab.ingest.sources import (
    IngestFileError,
    SourceFile,
    header_tokens,
    list_files,
    read_lines,
    read_parquet_rows,
    read_records,
)
from marketlab.tables import Lake

log = logging.getLogger(__name__)

LINEAGE = [C.SOURCE, C.SOURCE_FILE, C.LINE, C.BATCH_ID, C.INGESTED_AT]

LOG_SCHEMA = T.StructType([
    T.StructField("source", T.StringType()),
    T.StructField("file", T.StringType()),
    T.StructField("sha256", T.StringType()),
    T.StructField("size_bytes", T.LongType()),
    T.StructField("modified", T.TimestampType()),
    T.StructField("batch_id", T.StringType()),
    T.StructField("status", T.StringType()),
    T.StructField("records", T.LongType()),
    T.StructField("bronze_rows", T.LongType()),
    T.StructField("rejected_rows", T.LongType()),
    T.StructField("rejected_by_reason", T.MapType(T.StringType(), T.LongType())),
    T.StructField("table", T.StringType()),
    T.StructField("table_version", T.LongType()),
    T.StructField("message", T.StringType()),
    T.StructField("ingested_at", T.TimestampType()),
])


@dataclass
class FileResult:
    """Outcome of one file."""

    source: str
    file: str
    status: str  # ok | skipped | failed
    records: int = 0
    bronze_rows: int = 0
    rejected_rows: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    message: str = ""


@dataclass
class IngestResult:
    """Outcome of one ingest run.

    Attributes:
        sources: Source names ingested, in order.
        files: One result per file (and per source whose path matched nothing).
        versions: Catalog name -> Delta version written.
    """

    sources: list[str] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def count(self, status: str) -> int:
        """Files with ``status`` (ok | skipped | failed)."""
        return sum(f.status == status for f in self.files)

    def totals(self, source: str | None = None) -> dict[str, int]:
        """records / bronze_rows / rejected_rows over ok files (of one source)."""
        ok = [f for f in self.files if f.status == "ok" and (source is None or f.source == source)]
        return {
            "records": sum(f.records for f in ok),
            "bronze_rows": sum(f.bronze_rows for f in ok),
            "rejected_rows": sum(f.rejected_rows for f in ok),
        }

    def rejected_by_reason(self) -> dict[str, int]:
        total: Counter = Counter()
        for f in self.files:
            if f.status == "ok":
                total.update(f.rejected_by_reason)
        return dict(total)

    def metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: totals per source, rejects per reason, files per status."""
        out: dict[str, float] = {f"{name}.{k}": v for name in self.sources for k, v in self.totals(name).items()}
        out.update({f"rejected.{k}": v for k, v in self.rejected_by_reason().items()})
        out.update({f"files_{s}": self.count(s) for s in ("ok", "skipped", "failed")})
        return out

    def raise_if_failed(self) -> None:
        """Raise when a file could not be ingested (the others were written and logged).

        Raises:
            BadInputError: One or more files failed; the message joins their reasons.
        """
        if self.failed:
            raise BadInputError("; ".join(f.message for f in self.failed))


def _explain(exc: BaseException) -> str:
    """The root cause of a Spark/Java failure in one line (no JVM stack)."""
    text = str(exc)
    for marker in ("EOFException", "ZipException", "MalformedInputException", "CharacterCodingException",
                   "FileNotFoundException", "IOException"):
        if marker in text:
            tail = text.split(marker, 1)[1].split("\n", 1)[0].lstrip(": ")
            hint = " (truncated or corrupt compressed file?)" if marker in ("EOFException", "ZipException") else ""
            return f"{marker}: {tail}{hint}"
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def _parse_file(lake: Lake, spec: SourceSpec, file: SourceFile) -> tuple[DataFrame, DataFrame | None]:
    """Parsed records of one file (every record, with reasons) and a frame to unpersist after."""
    fields = CANONICAL[spec.kind]
    spark = lake.spark
    if spec.format == "parquet":
        rows = read_parquet_rows(spark, file.path)
        missing = sorted(set(spec.columns.values()) - set(rows.columns))
        if missing:
            raise IngestFileError(f"{file.path}: column(s) {missing} not in the file; found {sorted(rows.columns)}")
        parsed = parse_table(rows, spec.columns, fields, spec.timestamp_format)
        return parsed, None
    if spec.format == "json":
        lines, cached = read_lines(spark, file.path, file.sha256)
        parsed = parse_json_lines(lines, spec.columns, fields, spec.timestamp_format)
        return parsed, cached
    lines, cached = read_records(spark, file, spec.delimiter, spec.quote, spec.escape)
    if spec.header:
        first = lines.where(F.col(C.LINE) == 1).select("value").first()
        if first is None:
            cached.unpersist()
            raise IngestFileError(f"{file.path}: no header line (file has no lines)")
        names = header_tokens(first.value, spec.delimiter, spec.quote)
        missing = [src for src in spec.columns.values() if src not in names]
        if missing:
            cached.unpersist()
            shown = [n[:40] for n in names[:20]]
            raise IngestFileError(
                f"{file.path}: header does not match source mapping: missing column(s) {missing}; "
                f"found {shown} (wrong file, wrong delimiter '{spec.delimiter}', or not a text file?)"
            )
        positions = {canon: names.index(src) for canon, src in spec.columns.items()}
        n_columns = len(names)
        data = lines.where(F.col(C.LINE) > 1)
    else:
        positions = {canon: int(pos) for canon, pos in spec.columns.items()}
        n_columns = max(positions.values()) + 1
        data = lines
    parsed = parse_delimited(data, n_columns, positions, fields, spec.delimiter, spec.quote, spec.escape,
                             spec.timestamp_format)
    return parsed, cached


def _already_ingested(lake: Lake, log_table: str, source: str) -> dict[str, str]:
    """file -> sha256 of the content whose rows bronze holds for that file of ``source`` now.

    One rule, the same within a run and across runs: a file is up to date when bronze holds
    *this path's* rows from *these bytes*, i.e. its latest ok ingest had the same sha256.
    A file rewritten with other bytes and then back with its first content loads again (its
    rows were replaced in between); two files with identical bytes are two files, each
    loaded once (bronze keeps both, each with its ``_source_file``; deduplication is the
    clean stage's rule, not ingest's).
    """
    if not lake.exists(log_table):
        return {}
    ok = lake.read(log_table).where((F.col("source") == source) & (F.col("status") == "ok"))
    latest = ok.groupBy("file").agg(F.max_by("sha256", "ingested_at").alias("sha256"))
    return {r.file: r.sha256 for r in latest.collect()}


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ingest_file(lake: Lake, params: IngestParams, source: str, spec: SourceSpec, file: SourceFile,
                ingested_at: datetime) -> FileResult:
    """Ingest one file of ``source``; see the module docstring for the write order.

    Raises:
        IngestFileError: The file cannot be ingested (nothing was written).
    """
    if file.size == 0:
        raise IngestFileError(f"{file.path}: empty file (0 bytes)")
    cached = None
    try:
        parsed, cached = _parse_file(lake, spec, file)
        parsed = bound_timestamps(parsed, CANONICAL[spec.kind], params.timestamp_bounds.window(ingested_at))
        parsed = parsed.select(
            "*", F.lit(source).alias(C.SOURCE), F.lit(file.path).alias(C.SOURCE_FILE),
            F.lit(file.batch_id).alias(C.BATCH_ID), F.lit(ingested_at).cast("timestamp").alias(C.INGESTED_AT),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        # Physical lines per record too: one unterminated quote can hold the rest of the file
        # in a single rejected record, which the record share alone would not notice.
        body = F.regexp_replace(F.coalesce(F.col(C.RAW), F.lit("")), r"(\r\n|\r|\n)$", "")
        lines = F.size(F.split(body, r"\r\n|\r|\n"))
        counts = parsed.groupBy(C.REASON).agg(F.count(F.lit(1)).alias("count"), F.sum(lines).alias("lines")).collect()
    except IngestFileError:
        raise
    except (Py4JJavaError, PySparkException) as exc:
        raise IngestFileError(f"{file.path}: could not be read: {_explain(exc)}") from None
    finally:
        if cached is not None:
            cached.unpersist()
    by_reason = {r[C.REASON]: int(r["count"]) for r in counts if r[C.REASON] is not None}
    valid = sum(int(r["count"]) for r in counts if r[C.REASON] is None)
    rejected = sum(by_reason.values())
    records = valid + rejected
    total_lines = sum(int(r["lines"] or 0) for r in counts)
    rejected_lines = sum(int(r["lines"] or 0) for r in counts if r[C.REASON] is not None)
    try:
        top = ", ".join(f"{k}={v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1])[:3])
        if records and rejected / records > spec.max_reject_fraction:
            raise IngestFileError(
                f"{file.path}: {rejected} of {records} records rejected ({rejected / records:.1%} > "
                f"max_reject_fraction {spec.max_reject_fraction:.1%}; top reasons: {top}); file not ingested"
            )
        if total_lines and rejected_lines / total_lines > spec.max_reject_fraction:
            raise IngestFileError(
                f"{file.path}: rejected records hold {rejected_lines} of {total_lines} physical lines "
                f"({rejected_lines / total_lines:.1%} > max_reject_fraction {spec.max_reject_fraction:.1%}; "
                f"top reasons: {top}; an unterminated quote holds every line after it); file not ingested"
            )
        good, bad = split_valid(parsed)
        canon = [f.name for f in CANONICAL[spec.kind]]
        where = f"{C.SOURCE_FILE} = {_sql_str(file.path)}"
        lake.write(good.select(*canon, *LINEAGE), spec.table, mode="overwrite", replace_where=where)
        lake.write(
            bad.select(C.SOURCE, C.SOURCE_FILE, C.LINE, C.RAW, C.REASONS, C.REASON, C.BATCH_ID, C.INGESTED_AT),
            params.rejects_table, mode="overwrite", replace_where=where,
        )
        # Accounting from the tables themselves, not from the counts above.
        in_bronze = lake.read(spec.table).where(F.col(C.SOURCE_FILE) == file.path).count()
        in_rejects = lake.read(params.rejects_table).where(F.col(C.SOURCE_FILE) == file.path).count()
    finally:
        parsed.unpersist()
    if in_bronze + in_rejects != records or in_bronze != valid:
        raise AssertionError(
            f"row accounting broken for {file.path}: read {records}, bronze {in_bronze}, rejected {in_rejects}"
        )
    return FileResult(source, file.path, "ok", records, in_bronze, in_rejects, by_reason)


def _log_rows(lake: Lake, params: IngestParams, sources: dict[str, SourceSpec],
              results: list[tuple[FileResult, SourceFile]], at: datetime) -> None:
    rows = []
    for res, file in results:
        if res.status == "skipped":
            continue
        spec = sources[res.source]
        rows.append((res.source, res.file, file.sha256, file.size, file.modified, file.batch_id, res.status,
                     res.records, res.bronze_rows, res.rejected_rows, res.rejected_by_reason, spec.table,
                     lake.writes.get(spec.table), res.message or None, at))
    if rows:
        lake.write(lake.spark.createDataFrame(rows, LOG_SCHEMA), params.log_table, mode="append")


def run(lake: Lake, params: IngestParams) -> IngestResult:
    """Ingest every file of ``params.sources`` (empty: every source of the conf).

    The source specs (path, format, target table) are the lake settings' ``sources``, as
    table locations are its catalog. A file that cannot be ingested is a ``failed`` result,
    not an exception: the other files are still written (see
    :meth:`IngestResult.raise_if_failed`).

    Args:
        lake: Target lake.
        params: Ingest params (sources, rejects and log tables).

    Returns:
        Per-file results and the final version of each table written.

    Raises:
        ConfError: A source name is not configured.
    """
    specs = lake.settings.sources
    names = params.sources or list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ConfError(f"unknown source(s) {unknown}; configured: {sorted(specs)}")
    at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    result = IngestResult(sources=list(names))
    done: list[tuple[FileResult, SourceFile]] = []
    for name in names:
        spec = specs[name]
        seen = _already_ingested(lake, params.log_table, name)
        try:
            files = list_files(lake.spark, lake.settings.source_path(spec), spec.pattern)
        except IngestFileError as exc:
            if spec.optional and "no source file matches" in str(exc):
                result.files.append(FileResult(name, spec.path, "skipped", message="optional source: no file yet"))
                continue
            result.files.append(FileResult(name, spec.path, "failed", message=str(exc)))
            log.error("%s", exc)
            continue
        for file in files:
            if seen.get(file.path) == file.sha256:
                res = FileResult(name, file.path, "skipped", message="already ingested (same content)")
            else:
                try:
                    res = ingest_file(lake, params, name, spec, file, at)
                    log.info("%s: %s -> %d bronze, %d rejected", name, file.path, res.bronze_rows, res.rejected_rows)
                except IngestFileError as exc:
                    res = FileResult(name, file.path, "failed", message=str(exc))
                    log.error("%s", exc)
            result.files.append(res)
            done.append((res, file))
    _log_rows(lake, params, specs, done, at)
    result.versions = dict(lake.writes)
    return result
