"""Pure transforms: raw records -> typed canonical columns + a list of reasons per record.

Nothing here opens a file. The input is a DataFrame of raw records with the physical line
they start on (see :mod:`marketlab.ingest.sources`); the output keeps *every* record, each
with an array of the rules it broke, so the caller can split it into bronze rows and
quarantine rows without losing one.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from marketlab import constants as C
from marketlab.ingest.schemas import SPARK_TYPES, CanonicalField

CORRUPT = "_corrupt"
REPLACEMENT_CHAR = "\ufffd"  # what the UTF-8 decoder leaves where bytes were invalid

# Reason codes (stable strings: dashboards and tests group by them).
BAD_ENCODING = "bad_encoding"
BLANK_LINE = "blank_line"
WRONG_COLUMN_COUNT = "wrong_column_count"
UNTERMINATED_QUOTE = "unterminated_quote"
MALFORMED_JSON = "malformed_json"


def _raw_and_encoding() -> list[Column]:
    """``raw`` (the record, invalid bytes replaced so the quarantine stays readable) and a
    ``_bad_utf8`` flag: the readers keep undecodable bytes as they are, and a record
    that was already decoded lossily upstream carries U+FFFD instead."""
    value = F.col("value")
    bad = ~F.is_valid_utf8(value) | value.contains(REPLACEMENT_CHAR)
    return [F.make_valid_utf8(value).alias(C.RAW), bad.alias("_bad_utf8")]


def _typed(raw: Column, ftype: str, timestamp_format: str) -> Column:
    """Parse a raw string column into ``ftype``; null where it does not parse."""
    text = F.trim(raw)
    if ftype == "string":
        return raw
    if ftype == "timestamp":
        return F.try_to_timestamp(text, F.lit(timestamp_format))
    if ftype == "id":
        # Exports write integral ids as floats ("17850.0"): accept those, reject 17850.5.
        num = text.try_cast("double")
        return F.when(num == F.floor(num), num.cast("bigint"))
    typed = text.try_cast(SPARK_TYPES[ftype])
    if ftype == "double":
        # NaN/Infinity parse as doubles but are never valid quantities or prices.
        typed = F.when(~F.isnan(typed) & (F.abs(typed) != F.lit(float("inf"))), typed)
    return typed


def type_columns(
    df: DataFrame,
    raw_columns: Mapping[str, Column],
    fields: Iterable[CanonicalField],
    timestamp_format: str,
    structural_reasons: list[Column],
    keep: Iterable[str] = (C.LINE, C.RAW),
) -> DataFrame:
    """Type raw columns into canonical ones and collect every broken rule per record.

    Args:
        df: Raw records.
        raw_columns: Canonical name -> column expression holding the raw value (string for
            text formats, any type for Parquet). Unmapped optional fields are omitted.
        fields: The canonical schema.
        timestamp_format: Spark datetime pattern for string timestamps.
        structural_reasons: Record-level reason expressions (null when the rule holds),
            checked before the field rules.
        keep: Input columns carried through.

    Returns:
        ``keep`` columns + one typed column per canonical field + ``reasons``
        (array<string>, empty for a valid record) + ``reason`` (first reason or null).
    """
    typed_cols = []
    field_reasons = []
    structural_ok = F.size(F.array_compact(F.array(*structural_reasons))) == 0 if structural_reasons else F.lit(True)
    for field in fields:
        spark_type = SPARK_TYPES[field.type]
        raw = raw_columns.get(field.name)
        if raw is None:
            typed_cols.append(F.lit(None).cast(spark_type).alias(field.name))
            continue
        if isinstance(df.select(raw).schema[0].dataType, StringType):
            typed = _typed(raw, field.type, timestamp_format)
        elif field.type == "id":
            typed = _typed(raw.cast("string"), "id", timestamp_format)
        else:
            typed = raw.try_cast(spark_type)
        typed_cols.append(typed.alias(field.name))
        present = raw.isNotNull() & (F.trim(raw.cast("string")) != "")
        if field.required:
            field_reasons.append(F.when(structural_ok & ~present, F.lit(f"missing:{field.name}")))
        field_reasons.append(F.when(present & typed.isNull(), F.lit(f"unparseable_{field.type}:{field.name}")))
    reasons = F.array_compact(F.array(*structural_reasons, *field_reasons))
    out = df.select(*[F.col(k) for k in keep], *typed_cols, reasons.alias(C.REASONS))
    return out.withColumn(C.REASON, F.try_element_at(C.REASONS, F.lit(1)))


def parse_delimited(
    lines: DataFrame,
    n_columns: int,
    positions: Mapping[str, int],
    fields: Iterable[CanonicalField],
    delimiter: str = ",",
    quote: str = '"',
    escape: str = '"',
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss",
) -> DataFrame:
    """Parse delimited text records (a record may span lines) into typed canonical columns.

    Args:
        lines: ``_line`` (long), ``value`` (string) and ``_unterminated`` (boolean: a quote
            still open at the end of the file) per data record, header excluded; see
            :func:`marketlab.ingest.sources.read_records`.
        n_columns: Number of columns a record must have (from the header).
        positions: Canonical name -> 0-based column position in this export.
        fields: Canonical schema of the source kind.
        delimiter: Field separator.
        quote: Quote character.
        escape: Escape character inside quotes (the quote itself: RFC 4180 doubled quotes).
        timestamp_format: Pattern of timestamp fields.

    Returns:
        See :func:`type_columns`; ``raw`` is the record as read.
    """
    ddl = ", ".join([f"c{i} STRING" for i in range(n_columns)] + [f"{CORRUPT} STRING"])
    options = {"sep": delimiter, "quote": quote, "escape": escape, "mode": "PERMISSIVE",
               "columnNameOfCorruptRecord": CORRUPT, "ignoreLeadingWhiteSpace": "false"}
    parsed = lines.select(F.col(C.LINE), *_raw_and_encoding(), F.col("_unterminated"),
                          F.from_csv("value", ddl, options).alias("r"))
    blank = F.trim(F.col(C.RAW)) == ""
    structural = [
        F.when(F.col("_bad_utf8"), F.lit(BAD_ENCODING)),
        F.when(blank, F.lit(BLANK_LINE)),
        # The open quote ran to the end of the file: its column count says nothing more.
        F.when(F.col("_unterminated"), F.lit(UNTERMINATED_QUOTE)),
        F.when(~blank & ~F.col("_unterminated") & F.col(f"r.{CORRUPT}").isNotNull(), F.lit(WRONG_COLUMN_COUNT)),
    ]
    raw_cols = {name: F.col(f"r.c{pos}") for name, pos in positions.items()}
    return type_columns(parsed, raw_cols, fields, timestamp_format, structural)


def parse_json_lines(
    lines: DataFrame,
    keys: Mapping[str, str],
    fields: Iterable[CanonicalField],
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss",
) -> DataFrame:
    """Parse JSON Lines records into typed canonical columns.

    Args:
        lines: ``_line`` and ``value`` per record.
        keys: Canonical name -> JSON key in this export.
        fields: Canonical schema.
        timestamp_format: Pattern of string timestamps.

    Returns:
        See :func:`type_columns`.
    """
    names = sorted(set(keys.values()))
    ddl = ", ".join([f"`{k}` STRING" for k in names] + [f"{CORRUPT} STRING"])
    parsed = lines.select(
        F.col(C.LINE), *_raw_and_encoding(),
        F.from_json("value", ddl, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}).alias("r"),
    )
    blank = F.trim(F.col(C.RAW)) == ""
    structural = [
        F.when(F.col("_bad_utf8"), F.lit(BAD_ENCODING)),
        F.when(blank, F.lit(BLANK_LINE)),
        F.when(~blank & (F.col("r").isNull() | F.col(f"r.{CORRUPT}").isNotNull()), F.lit(MALFORMED_JSON)),
    ]
    raw_cols = {name: F.col("r").getField(key) for name, key in keys.items()}
    return type_columns(parsed, raw_cols, fields, timestamp_format, structural)


def parse_table(
    rows: DataFrame,
    columns: Mapping[str, str],
    fields: Iterable[CanonicalField],
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss",
) -> DataFrame:
    """Type the columns of an already-structured source (Parquet) into canonical ones.

    Args:
        rows: Source rows with a ``_line`` column (row index + 1).
        columns: Canonical name -> source column name.
        fields: Canonical schema.
        timestamp_format: Pattern for timestamps stored as strings.

    Returns:
        See :func:`type_columns`; ``raw`` is the source row as JSON.
    """
    source_cols = [c for c in rows.columns if c != C.LINE]
    with_raw = rows.withColumn(C.RAW, F.to_json(F.struct(*[F.col(f"`{c}`") for c in source_cols])))
    raw_cols = {name: F.col(f"`{src}`") for name, src in columns.items()}
    return type_columns(with_raw, raw_cols, fields, timestamp_format, [])


def split_valid(parsed: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split parsed records into (valid, rejected) by whether ``reasons`` is empty."""
    ok = F.size(C.REASONS) == 0
    return parsed.where(ok), parsed.where(~ok)
