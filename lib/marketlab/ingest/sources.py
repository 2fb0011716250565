"""Raw-file I/O for ingestion: list source files with checksums, read records with line numbers.

Delimited files are split into RFC-4180 *records*, not physical lines: a quoted field may
hold line breaks (LF, CRLF or CR, kept as they are), so one record can span several lines.

This is the only place that touches raw files; everything works on any Hadoop URI
(local paths, ``file:``, ``hdfs:``, ``s3a:``), so the same code runs on a cluster.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import pandas as pd
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
    """Read a line-oriented text file (JSON Lines; optionally gzip/bzip2) as ``(_line, value)`` rows.

    Delimited files are read as records by :func:`read_records` instead (a quoted field
    may span lines).

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
    # A gzip file is one split: spread its lines over the cores (see read_records).
    slots = spark.sparkContext.defaultParallelism
    if path.lower().endswith(UNSPLITTABLE) and lines.rdd.getNumPartitions() < slots:
        lines = lines.repartition(slots)
    return lines, raw


#: Records per Arrow batch the splitter hands back to Spark: bounds the Python worker's
#: memory beyond the file itself.
SPLIT_BATCH = 65_536


def record_pattern(delimiter: str = ",", quote: str = '"', escape: str = '"') -> re.Pattern[bytes]:
    """The regular expression of one delimited record and its line break, over bytes.

    The grammar is that of Python's :mod:`csv` reader (``strict=False``), which the tests
    use as the oracle: a quote opens a quoted field only at the start of a field; inside
    one, ``escape == quote`` (RFC 4180) makes a doubled quote one literal quote, another
    ``escape`` character makes the character after it literal (inside quotes only, where
    the csv reader also honours it outside); after the closing quote,
    text up to the next delimiter belongs to the same field, and a quote in an unquoted
    field is a literal character. A quote that is never closed runs to the end of the file
    (RFC 4180 has no way back): groups 1 and 2 are set then. Group 3 is the line break
    (empty at the end of the file). Every byte of the delimiter, quote and escape must be
    ASCII (the conf checks it), so the expression can work on undecoded UTF-8.
    """
    d, q = re.escape(delimiter.encode()), re.escape(quote.encode())
    if escape == quote:
        # `"a""b"` is two closed sections back to back: the doubled quote keeps the field open.
        quoted = rb"(?:" + q + rb"[^" + q + rb"]*" + q + rb")*"
    else:
        e = re.escape(escape.encode())
        quoted = rb"(?:" + q + rb"(?:[^" + q + e + rb"]|" + e + rb"(?s:.))*" + q + rb"[^" + d + rb"\r\n]*)?"
    unquoted = rb"[^" + q + d + rb"\r\n][^" + d + rb"\r\n]*"
    field = quoted + rb"(?:(" + q + rb"(?s:.*))|" + unquoted + rb")?"
    return re.compile(field + rb"(?:" + d + field + rb")*(\r\n|\n|\r|\Z)")


def split_records(data: bytes, delimiter: str = ",", quote: str = '"',
                  escape: str = '"') -> Iterator[tuple[int, bytes, bool]]:
    """Split a delimited file's bytes into records.

    Neither Spark's ``multiLine`` CSV reader nor Python's :mod:`csv` reader returns a
    record's line number and raw text, which the quarantine needs; one regular
    expression (:func:`record_pattern`, run by the C regex engine) does, and the tests
    check it against the csv reader.

    Args:
        data: The whole (decompressed) file, undecoded.
        delimiter: Field separator.
        quote: Quote character.
        escape: Escape character inside quoted fields (``quote``: RFC 4180 doubled quotes).

    Yields:
        ``(line, text, unterminated)`` per record: the 1-based physical line the record
        starts on, its bytes without the line break that ends it (line breaks inside
        quotes kept), and whether a quote in it was still open at the end of the file.
        Blank lines are records too (empty text), so every physical line is in exactly
        one record.
    """
    pattern = record_pattern(delimiter, quote, escape)
    pos, line, end = 0, 1, len(data)
    while pos < end:
        m = pattern.match(data, pos)  # always matches: every alternative stops at a break
        text = m.group(0)[: m.start(3) - pos]
        yield line, text, m.group(1) is not None or m.group(2) is not None
        line += text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n") + (m.end(3) > m.start(3))
        pos = m.end()


def _split_partition(delimiter: str, quote: str, escape: str):
    """``mapInPandas`` function: whole files (``content`` bytes) -> record batches."""

    def split(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for data in batch["content"]:
                rows = []
                for rec in split_records(bytes(data), delimiter, quote, escape):
                    rows.append(rec)
                    if len(rows) == SPLIT_BATCH:
                        yield pd.DataFrame(rows, columns=[C.LINE, "value", "_unterminated"])
                        rows = []
                if rows:
                    yield pd.DataFrame(rows, columns=[C.LINE, "value", "_unterminated"])

    return split


def read_records(spark: SparkSession, file: SourceFile, delimiter: str = ",", quote: str = '"',
                 escape: str = '"') -> tuple[DataFrame, DataFrame]:
    """Read a delimited file (optionally compressed) as ``(_line, value, _unterminated)`` records.

    The file is read whole by one task (Spark's ``wholetext``, which also decompresses
    gzip/bzip2) and split by :func:`split_records` in a Python worker: a record may span
    physical lines, so a file cannot be cut at arbitrary byte offsets without reading it
    from the start. That task holds the decompressed file about three times (JVM row,
    Arrow buffer, Python bytes) plus one batch of records; a file must stay under 2 GB
    decompressed (one JVM array). ``_line`` is the record's first physical line;
    ``value`` its text as read (bytes kept undecoded, so invalid UTF-8 stays detectable).

    Args:
        spark: Session.
        file: The listed file (its path is literal: glob characters are escaped here;
            its checksum is part of the cached plan, so a file rewritten in place is
            read again instead of matching the cache of its previous content).
        delimiter: Field separator.
        quote: Quote character.
        escape: Escape character inside quoted fields.

    Returns:
        ``(records, cached)``: the records, spread over the session's cores when the
        file is large or compressed, and the persisted frame the caller unpersists.
    """
    whole = spark.read.options(**RAW_READ_OPTIONS).text(hadoop_literal(file.path), wholetext=True).select(
        F.col("value").cast("binary").alias("content"), F.lit(file.sha256).alias("_content"))
    split = whole.mapInPandas(_split_partition(delimiter, quote, escape),
                              f"{C.LINE} long, value binary, _unterminated boolean")
    cached = split.select(C.LINE, F.col("value").cast("string").alias("value"), "_unterminated").persist(
        StorageLevel.MEMORY_AND_DISK)
    # One task split the file, so parsing (and the bronze files it writes, and every later
    # scan of them) would run in one task too: spread the records over the session's cores
    # when the file is compressed (Online Retail's parse on the 2-core loopback cluster:
    # one 39 s task before, 27 s on both executors after) or larger than one Spark split.
    # A small file stays one partition, which is right for small data.
    slots = spark.sparkContext.defaultParallelism
    split_bytes = spark._jsparkSession.sessionState().conf().filesMaxPartitionBytes()
    parts = slots if file.path.lower().endswith(UNSPLITTABLE) else min(slots, math.ceil(file.size / split_bytes))
    records = cached.repartition(parts) if parts > 1 else cached
    return records, cached


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
