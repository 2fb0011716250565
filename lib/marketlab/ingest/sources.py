"""Raw-file I/O for ingestion: list source files with checksums, read records with line numbers.

This is the only place that touches raw files; everything works on any Hadoop URI
(local paths, ``file:``, ``hdfs:``, ``s3a:``), so the same code runs on a cluster.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from marketlab import constants as C
from marketlab.errors import BadInputError

_EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class IngestFileError(BadInputError):
    """A whole file cannot be ingested (empty, truncated, not text, wrong header ...)."""


@dataclass(frozen=True)
class SourceFile:
    """One raw file: where it is and what its bytes are.

    Attributes:
        path: Full URI as Spark reports it.
        size: Bytes.
        modified: Modification time.
        sha256: Content checksum (computed on an executor; identical content -> same id).
    """

    path: str
    size: int
    modified: datetime
    sha256: str

    @property
    def batch_id(self) -> str:
        """Deterministic batch id: re-ingesting the same bytes produces identical rows."""
        return self.sha256[:16]


#: Characters Hadoop's glob (and so every Spark file reader, which globs its paths) takes as
#: pattern syntax; a literal path has each escaped with a backslash.
GLOB_CHARS = frozenset("[]{}*?\\")

#: Options of every raw-file read. Hadoop's local file system looks for a ``.<name>.crc``
#: checksum beside each file it opens and builds that name as a URI, which fails on a ':' in
#: the name (``orders_2011-12-09T12:00.csv``: "Relative path in absolute URI"). Raw exports
#: never have a Hadoop checksum file, so not verifying one loses nothing; the read options
#: reach a file system of this read only (the cache is bypassed), so Delta's own reads
#: keep verifying theirs.
RAW_READ_OPTIONS = {"fs.file.checksum.verify": "false", "fs.file.impl.disable.cache": "true"}


def hadoop_literal(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped, so that a reader takes it literally."""
    return "".join("\\" + ch if ch in GLOB_CHARS else ch for ch in path)


def _hadoop_path(spark: SparkSession, path: str):
    """A Hadoop ``Path`` for a literal path or URI string (``Path(String)`` does not glob)."""
    return spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)


def list_files(spark: SparkSession, path: str, pattern: str | None = None) -> list[SourceFile]:
    """The files of a source, sorted by path, with their sha256.

    ``path`` is literal: a file, or a folder whose files are listed (hidden ``_``/``.``
    files skipped). Only ``pattern`` globs, over the names of the folder's files, with
    Hadoop's glob syntax matched name by name (the Hadoop Globber is not used: it fails on
    a ':' in any name of the folder).

    Listing goes through the Hadoop FileSystem (not a file data source) so that empty
    files are listed too and fail with a clear message instead of being skipped silently.

    Args:
        spark: Session.
        path: File or folder (local path or Hadoop URI), taken literally.
        pattern: Glob of file names in the folder ``path``; ``None``: every file.

    Raises:
        IngestFileError: The path does not exist, or nothing matches.
    """
    jvm = spark.sparkContext._jvm
    hpath = _hadoop_path(spark, path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hpath):
        hint = ""
        if pattern is None and GLOB_CHARS & set(path):
            hint = " (a source path is literal: set the source's `pattern` to glob file names in a folder)"
        raise IngestFileError(f"no source file matches {path}: no such file or folder{hint}")
    status = fs.getFileStatus(hpath)
    if pattern is not None and not status.isDirectory():
        raise IngestFileError(f"{path}: `pattern` {pattern!r} needs `path` to be a folder, this is a file")
    children = fs.listStatus(hpath) if status.isDirectory() else [status]
    matches = jvm.org.apache.hadoop.fs.GlobPattern(pattern).matches if pattern is not None else None
    found = []
    for child in children:
        name = child.getPath().getName()
        # Hidden and marker files (_SUCCESS, .crc) are never data.
        if child.isFile() and not name.startswith(("_", ".")) and (matches is None or matches(name)):
            found.append(child)
    if not found:
        raise IngestFileError(f"no source file matches {path}" + (f" / {pattern}" if pattern is not None else ""))
    sizes = {str(st.getPath()): (int(st.getLen()), datetime.fromtimestamp(st.getModificationTime() / 1000))
             for st in found}
    non_empty = [p for p, (size, _) in sizes.items() if size > 0]
    shas = {p: _EMPTY_SHA for p in sizes if p not in non_empty}
    if non_empty:
        try:
            rows = (spark.read.format("binaryFile").options(**RAW_READ_OPTIONS)
                    .load([hadoop_literal(p) for p in non_empty])
                    .select("path", F.sha2("content", 256).alias("sha")).collect())
        except (AnalysisException, Py4JJavaError) as exc:
            raise IngestFileError(f"cannot read {path}: {str(exc).strip().splitlines()[0][:300]}") from None
        shas.update({r.path: r.sha for r in rows})
    unread = sorted(set(sizes) - set(shas))
    if unread:  # a file the reader reports under another name would otherwise get no checksum
        raise IngestFileError(f"{path}: Spark could not read {unread[:3]} under their listed names")
    return sorted((SourceFile(p, size, mtime, shas[p]) for p, (size, mtime) in sizes.items()), key=lambda f: f.path)


# Extensions of the Hadoop codecs that cannot split a file: Spark reads it in one task.
UNSPLITTABLE = (".gz", ".deflate", ".zst", ".lz4", ".snappy")


def read_lines(spark: SparkSession, path: str, content_id: str = "") -> tuple[DataFrame, DataFrame]:
    """Read a text file (optionally gzip/bzip2-compressed) as ``(_line, value)`` rows.

    ``_line`` is the exact 1-based physical line number, also when Spark splits a large
    file across tasks: rows are numbered within each split, and each split is offset by
    the number of lines in the splits that start before it. The result is persisted
    because it is read once to count and once to parse.

    Args:
        spark: Session.
        path: File URI as listed (literal: glob characters are escaped here).
        content_id: The file's checksum. It is part of the cached plan, so a file rewritten
            in place is read again instead of matching the cache of its previous content.

    Returns:
        ``(lines, cached)``: the numbered lines and the persisted frame the caller
        unpersists when done.
    """
    raw = spark.read.options(**RAW_READ_OPTIONS).text(hadoop_literal(path)).select(
        F.col("value"),
        F.lit(content_id).alias("_content"),
        F.col("_metadata.file_block_start").alias("_blk"),
        F.spark_partition_id().alias("_pid"),
        F.monotonically_increasing_id().alias("_mid"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    blocks = raw.groupBy("_blk", "_pid").agg(F.min("_mid").alias("_m0"), F.count(F.lit(1)).alias("_n"))
    before = Window.orderBy("_blk", "_pid").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.withColumn("_off", F.coalesce(F.sum("_n").over(before), F.lit(0)))
    lines = (
        raw.join(F.broadcast(blocks.select("_blk", "_pid", "_m0", "_off")), ["_blk", "_pid"])
        .select((F.col("_off") + F.col("_mid") - F.col("_m0") + 1).alias(C.LINE), "value")
    )
    # A gzip file is one split whatever its size, so parsing (and the bronze files it
    # writes, and every later scan of them) would run in one task: spread its numbered
    # lines over the session's cores first. Online Retail's parse on the 2-core loopback
    # cluster: one 39 s task before, 27 s on both executors after; locally ingest + clean
    # + features went from 152 s to 133 s. Uncompressed files keep Spark's splits (one
    # for a small file, which is right for small data).
    slots = spark.sparkContext.defaultParallelism
    if path.lower().endswith(UNSPLITTABLE) and lines.rdd.getNumPartitions() < slots:
        lines = lines.repartition(slots)
    return lines, raw


def header_tokens(line: str, delimiter: str, quote: str) -> list[str]:
    """Column names of a header line (a UTF-8 byte-order mark is dropped)."""
    tokens = next(csv.reader([line.lstrip("\ufeff")], delimiter=delimiter, quotechar=quote))
    return [t.strip() for t in tokens]


def read_parquet_rows(spark: SparkSession, path: str) -> DataFrame:
    """Read a Parquet file with ``_line`` = row index + 1 (stable across reads)."""
    try:
        df = spark.read.options(**RAW_READ_OPTIONS).parquet(hadoop_literal(path))
    except AnalysisException as exc:
        raise IngestFileError(f"{path}: not a readable Parquet file ({exc})") from None
    return df.select("*", (F.col("_metadata.row_index") + 1).alias(C.LINE))
