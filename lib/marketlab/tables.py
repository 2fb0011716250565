"""Read and write Delta tables by catalog name, remembering which versions a job touched.

All lake I/O goes through :class:`Lake`: transforms never see a path. Every read and
write records ``catalog name -> Delta version`` so the job's MLflow run can log exactly
which data a model or evaluation came from.

Each write is one Delta commit, so a job killed mid-write leaves the table at its
previous version. Writes are idempotent by construction: a full ``overwrite``, an
``overwrite`` restricted by ``replace_where`` (a partition or a batch), or a ``merge`` on
keys.

Every read of a *gated* table (:func:`gated_tables`: the tables the quality gate has
expectations for in ``jobs.quality.expectations``) is checked against the gate's results
first: a version whose blocking expectations failed, or that the gate never evaluated, is
refused with :class:`~marketlab.errors.GateFailedError`, whoever reads it. The gate itself
evaluates a fresh version with :meth:`Lake.read_ungated`; ``jobs.quality.guard_reads: false``
turns the check off for forensics (the read is logged as a warning).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from marketlab.config import Settings
from marketlab.errors import GateFailedError, LakeBusyError, MissingTableError

log = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]


class TableNotFoundError(MissingTableError):
    """A catalog table has not been written yet (run the job that produces it)."""


class UnknownTableError(MissingTableError):
    """A name that is not in the catalog (conf/base/catalog.yaml)."""


def catalog_name(settings: Settings, name: str) -> str:
    """``name`` if the catalog has it.

    Raises:
        UnknownTableError: Not in the catalog; the message suggests close names.
    """
    if name in settings.catalog:
        return name
    close = difflib.get_close_matches(name, list(settings.catalog), n=3, cutoff=0.5)
    close += [n for n in settings.catalog if n.split(".")[-1] == name and n not in close]
    hint = f"; did you mean {', '.join(close)}?" if close else " (see conf/base/catalog.yaml)"
    raise UnknownTableError(f"no table '{name}' in the catalog{hint}")


def local_lake_root(settings: Settings) -> Path | None:
    """The lake root as a local folder (a plain path or a ``file:`` URI); None for a Hadoop URI."""
    root = settings.resolve(settings.lake_root)
    if "://" in root and not root.startswith("file:"):
        return None
    return Path(root[len("file:"):] if root.startswith("file:") else root)


def check_writable(settings: Settings) -> None:
    """Fail before any work when a local lake root cannot hold tables (a Hadoop URI is not checked).

    Creates the folder if need be and writes (then removes) a probe file in it.

    Raises:
        ConfError: The root, or a folder above it, is a regular file, or it is not writable.
    """
    import os
    import tempfile

    from marketlab.errors import ConfError

    path = local_lake_root(settings)
    if path is None:
        return
    above = next((p for p in (path, *path.parents) if p.exists()), None)
    if above is not None and not above.is_dir():
        raise ConfError(f"lake_root {path} cannot be a folder: {above} is a regular file")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)  # raw ids: owner-only (docs/CONTRACTS.md)
        fd, probe = tempfile.mkstemp(prefix=".marketlab-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfError(f"lake_root {path} is not writable: {exc.strerror or exc}") from None


#: The file a pipeline run locks in a local lake root (:func:`lock_lake`).
LOCK_FILE = "_pipeline.lock"


class LakeLock:
    """A held lake lock (:func:`lock_lake`); :meth:`release` or leaving the ``with`` block frees it."""

    def __init__(self, fd: int | None):
        self._fd = fd

    def release(self) -> None:
        import os

        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "LakeLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_lake(settings: Settings) -> LakeLock:
    """Take the lake for one pipeline run; a second run on the same lake refuses at once.

    An advisory ``flock`` on ``<lake_root>/_pipeline.lock`` (owner-only), released by
    :meth:`LakeLock.release` or when the process dies (a killed run leaves no stale lock).
    The file names the holder's pid for the message. A Hadoop URI lake (``s3a://``,
    ``hdfs://``) gets no cross-process lock here: the orchestrator serialises its runs
    (the generated Airflow DAG has ``max_active_runs=1``).

    Raises:
        LakeBusyError: Another process holds the lock.
        ConfError: The lake root cannot hold files (:func:`check_writable`).
    """
    import fcntl
    import os

    root = local_lake_root(settings)
    if root is None:
        return LakeLock(None)
    check_writable(settings)
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise LakeBusyError(f"another pipeline run ({holder}) holds the lake {root}; "
                            "wait for it to end (one run per lake at a time)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
    return LakeLock(fd)


#: Delta's session key for the commit's user metadata; merges (no writer option) set it under
#: this lock, since stages write from several threads of one session.
_COMMIT_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
_COMMIT_METADATA_LOCK = threading.Lock()


@dataclass(frozen=True)
class Commit:
    """One version in a table's Delta history (:meth:`Lake.history`).

    Attributes:
        version: Delta version.
        timestamp: Commit time (UTC).
        operation: Delta operation (``WRITE``, ``MERGE``, ``CREATE OR REPLACE TABLE``...).
        rows_written: ``numOutputRows`` of the commit (None when Delta did not record it).
        job: The MarketLab job that committed it (None: not written inside a job run).
        run_id: Its MLflow run id.
        mode: Save mode or predicate as Delta recorded it (``Overwrite``, ``Append``...).
    """

    version: int
    timestamp: dt.datetime
    operation: str
    rows_written: int | None
    job: str | None
    run_id: str | None
    mode: str | None = None


#: How an operator reads a refused version anyway (docs/DATA_QUALITY.md, "Guarded reads").
GATE_OVERRIDE = "--set jobs.quality.guard_reads=false"


def gated_tables(settings: Settings) -> frozenset[str]:
    """The tables every read of which is checked against the gate: those with expectations
    in ``jobs.quality.expectations`` (conf/base/params/quality.yaml), the one list."""
    return frozenset(name for name, exps in settings.jobs.quality.expectations.items() if exps)


@dataclass
class Lake:
    """The Delta lake of one settings object.

    Attributes:
        spark: Active session.
        settings: Loaded settings (catalog and lake root).
        reads: Catalog name -> Delta version read in this job.
        writes: Catalog name -> Delta version written in this job.
        commit_info: Recorded in the user metadata of every commit (JSON), e.g. the job and
            its MLflow run id (set by :func:`marketlab.tracking.job_run`); shown by
            :meth:`history`.
    """

    spark: SparkSession
    settings: Settings
    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)
    commit_info: dict[str, str] = field(default_factory=dict)
    _gate_passed: set[tuple[str, int]] = field(default_factory=set, repr=False)

    # --- metadata --------------------------------------------------------------------
    def path(self, name: str) -> str:
        """Location of catalog table ``name``."""
        return self.settings.table_path(name)

    def exists(self, name: str) -> bool:
        """Whether the table has at least one commit."""
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise TableNotFoundError(f"table '{name}' does not exist at {self.path(name)}: run the job that writes it first")

    def version(self, name: str) -> int | None:
        """Latest Delta version of the table, or None if it does not exist yet."""
        if not self.exists(name):
            return None
        row = DeltaTable.forPath(self.spark, self.path(name)).history(1).select("version").first()
        return int(row[0])

    def history(self, name: str, limit: int | None = 20) -> list[Commit]:
        """The Delta history of catalog table ``name``, newest first.

        Args:
            name: Catalog name.
            limit: At most this many versions (None: all).

        Raises:
            UnknownTableError: ``name`` is not in the catalog.
            TableNotFoundError: The table was never written.
        """
        self._require(catalog_name(self.settings, name))
        table = DeltaTable.forPath(self.spark, self.path(name))
        rows = (table.history(limit) if limit else table.history()).select(
            "version", "timestamp", "operation", "operationParameters", "operationMetrics", "userMetadata").collect()
        out = []
        for r in rows:
            meta: dict = {}
            if r["userMetadata"]:
                try:
                    meta = json.loads(r["userMetadata"])
                except ValueError:
                    meta = {"job": r["userMetadata"]}
            metrics, op_params = r["operationMetrics"] or {}, r["operationParameters"] or {}
            written = metrics.get("numOutputRows")
            out.append(Commit(int(r["version"]), r["timestamp"], r["operation"],
                              int(written) if written is not None else None, meta.get("job"), meta.get("mlflow_run_id"),
                              op_params.get("mode")))
        return out

    # --- reads -----------------------------------------------------------------------
    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Read a table (optionally time-travel to ``version``) and record the version read.

        A gated table (:func:`gated_tables`) is read only in a version that passed the
        quality gate (see :meth:`gate_problem`).

        Raises:
            TableNotFoundError: The table was never written.
            GateFailedError: A gated table's version failed the gate or has no gate result
                (and ``jobs.quality.guard_reads`` is on).
        """
        self._require(name)
        current = version if version is not None else self.version(name)
        self._check_gate(name, int(current))
        return self._load(name, int(current))

    def read_ungated(self, name: str, version: int | None = None) -> DataFrame:
        """Read a table without the gate check: only for the quality gate itself, which must
        read a version before it has a result (and its foreign-key and previous versions).

        Raises:
            TableNotFoundError: The table was never written.
        """
        self._require(name)
        return self._load(name, int(version if version is not None else self.version(name)))

    def _load(self, name: str, version: int) -> DataFrame:
        # Pin the version actually read, so a concurrent writer cannot change what we log.
        df = self.spark.read.format("delta").option("versionAsOf", version).load(self.path(name))
        self.reads[name] = version
        return df

    def _commit_metadata(self) -> str:
        return json.dumps(self.commit_info, sort_keys=True) if self.commit_info else ""

    # --- the quality gate's guard --------------------------------------------------------
    def gate_problem(self, name: str, version: int | None = None) -> str | None:
        """Why the gate refuses ``version`` (default: current) of ``name``; None when it passed
        or the table is not gated.

        The message is the gate's own: each failed blocking expectation with its offending
        rows and detail as recorded in the results table (``jobs.quality.results_table``).
        """
        if name not in gated_tables(self.settings):
            return None
        version = int(version if version is not None else self.version(name))
        results_table = self.settings.jobs.quality.results_table
        hint = f" (to read it anyway for forensics: {GATE_OVERRIDE})"
        if not self.exists(results_table):
            return (f"{name} version {version} has no data-quality result ({results_table} does not exist): "
                    f"run the clean job (gate) first{hint}")
        from pyspark.sql import functions as F

        # Not recorded as a read: the check is about the gated version, which is recorded
        # (and whose new version is what moves a result), not data the job consumes.
        res = self.spark.read.format("delta").load(self.path(results_table))
        rows = res.where((F.col("table") == name) & (F.col("version") == version)).select(
            "expectation", "severity", "passed", "offending", "rows", "detail").collect()
        if not rows:
            return (f"{name} version {version} has no data-quality result: run the clean job (gate) on it first"
                    f"{hint}")
        bad = sorted((r for r in rows if r["severity"] == "blocking" and not r["passed"]), key=lambda r: r["expectation"])
        if not bad:
            return None
        return (f"{name} version {version} failed the data-quality gate: "
                + "; ".join(f"{r['expectation']} ({r['offending']} offending rows) - {r['detail']}" for r in bad)
                + hint)

    def _check_gate(self, name: str, version: int) -> None:
        if (name, version) in self._gate_passed or name not in gated_tables(self.settings):
            return
        problem = self.gate_problem(name, version)
        if problem is None:
            self._gate_passed.add((name, version))
            return
        if not self.settings.jobs.quality.guard_reads:
            log.warning("jobs.quality.guard_reads is false: reading %s v%d anyway: %s", name, version, problem)
            return
        raise GateFailedError(problem)

    # --- writes ----------------------------------------------------------------------
    def write(
        self,
        df: DataFrame,
        name: str,
        mode: WriteMode = "overwrite",
        replace_where: str | None = None,
        overwrite_schema: bool = True,
    ) -> int:
        """Write ``df`` to catalog table ``name`` in one Delta commit.

        Args:
            df: Data to write.
            name: Catalog name.
            mode: ``overwrite`` (default; idempotent) or ``append``.
            replace_where: With overwrite, replace only rows matching this predicate
                (a partition, a batch id, a source file); other rows stay.
            overwrite_schema: Allow the schema to change on a full overwrite.

        Returns:
            The new Delta version.
        """
        spec = self.settings.catalog[name]
        writer = df.write.format("delta").mode(mode)
        if spec.partition_by:
            writer = writer.partitionBy(*spec.partition_by)
        if replace_where is not None and self.exists(name):
            writer = writer.option("replaceWhere", replace_where)
        elif mode == "overwrite" and overwrite_schema:
            writer = writer.option("overwriteSchema", "true")
        if mode == "append" or replace_where is not None:
            writer = writer.option("mergeSchema", "true")
        # Always set (empty without a job), so a concurrent merge's session value never applies here.
        writer = writer.option("userMetadata", self._commit_metadata())
        writer.save(self.path(name))
        version = self.version(name)
        assert version is not None
        self.writes[name] = version
        log.info("wrote %s (version %d)", name, version)
        return version

    def merge(self, df: DataFrame, name: str, keys: list[str], delete_missing_in: str | None = None) -> int:
        """Upsert ``df`` into ``name`` on ``keys`` (creates the table on first use).

        Args:
            df: New rows; must have unique ``keys``.
            name: Catalog name.
            keys: Columns identifying a row.
            delete_missing_in: Optional predicate on the target: target rows matching it
                that are absent from ``df`` are deleted (replace a slice by merge).

        Returns:
            The new Delta version.
        """
        if not self.exists(name):
            return self.write(df, name)
        target = DeltaTable.forPath(self.spark, self.path(name))
        cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        builder = target.alias("t").merge(df.alias("s"), cond).whenMatchedUpdateAll().whenNotMatchedInsertAll()
        if delete_missing_in:
            builder = builder.whenNotMatchedBySourceDelete(condition=delete_missing_in)
        with _COMMIT_METADATA_LOCK:
            self.spark.conf.set(_COMMIT_METADATA_CONF, self._commit_metadata())
            try:
                builder.execute()
            finally:
                self.spark.conf.unset(_COMMIT_METADATA_CONF)
        version = self.version(name)
        assert version is not None
        self.writes[name] = version
        return version

    # --- exports: files that leave the lake ----------------------------------------------
    def export_csv(self, df: DataFrame, name: str, part: str) -> str:
        """Write ``df`` as one headed CSV file for a tool outside the lake (a send list).

        The file sits in a Spark-style folder ``<path of name>_csv/<part>``, replaced as a whole.

        Returns:
            The folder written.
        """
        target = f"{self.path(name)}_csv/{part}"
        df.coalesce(1).write.mode("overwrite").option("header", True).csv(target)
        log.info("exported %s to %s", name, target)
        return target
