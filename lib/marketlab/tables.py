"""Read and write Delta tables by catalog name, remembering which versions a job touched.

All lake I/O goes through :class:`Lake`: transforms never see a path. Every read and
write records ``catalog name -> Delta version`` so the job's MLflow run can log exactly
which data a model or evaluation came from.

Each write is one Delta commit, so a job killed mid-write leaves the table at its
previous version. Writes are idempotent by construction: a full ``overwrite``, an
``overwrite`` restricted by ``replace_where`` (a partition or a batch), or a ``merge`` on
keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from marketlab.config import Settings
from marketlab.errors import MissingTableError

log = logging.getLogger(__name__)

WriteMode = Literal["overwrite", "append"]


class TableNotFoundError(MissingTableError):
    """A catalog table has not been written yet (run the job that produces it)."""


@dataclass
class Lake:
    """The Delta lake of one settings object.

    Attributes:
        spark: Active session.
        settings: Loaded settings (catalog and lake root).
        reads: Catalog name -> Delta version read in this job.
        writes: Catalog name -> Delta version written in this job.
    """

    spark: SparkSession
    settings: Settings
    reads: dict[str, int] = field(default_factory=dict)
    writes: dict[str, int] = field(default_factory=dict)

    # --- metadata --------------------------------------------------------------------
    def path(self, name: str) -> str:
        """Location of catalog table ``name``."""
        return self.settings.table_path(name)

    def exists(self, name: str) -> bool:
        """Whether the table has at least one commit."""
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def version(self, name: str) -> int | None:
        """Latest Delta version of the table, or None if it does not exist yet."""
        if not self.exists(name):
            return None
        row = DeltaTable.forPath(self.spark, self.path(name)).history(1).select("version").first()
        return int(row[0])

    # --- reads -----------------------------------------------------------------------
    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Read a table (optionally time-travel to ``version``) and record the version read.

        Raises:
            TableNotFoundError: The table was never written.
        """
        if not self.exists(name):
            raise TableNotFoundError(f"table '{name}' does not exist at {self.path(name)}: run the job that writes it first")
        current = version if version is not None else self.version(name)
        # Pin the version actually read, so a concurrent writer cannot change what we log.
        df = self.spark.read.format("delta").option("versionAsOf", current).load(self.path(name))
        self.reads[name] = int(current)
        return df

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
        builder.execute()
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
