"""Parameters of the quality gate (conf: `jobs.quality` in conf/base/params/quality.yaml)."""

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel

Kind = Literal["schema", "not_null", "range", "isin", "null_rate", "unique", "foreign_key", "row_count_drift",
               "freshness", "min_rows", "timestamp_bounds"]


class Expectation(StrictModel):
    """One declarative expectation on a table.

    Attributes:
        name: Unique name within the table (appears in results and gate errors).
        kind: ``schema`` (columns/types, ``columns`` = {name: spark type}), ``not_null``,
            ``range`` (``min``/``max`` inclusive), ``isin`` (``values``), ``null_rate``
            (share of nulls <= ``max_fraction``), ``unique`` (``columns_list`` jointly),
            ``foreign_key`` (``column`` values present in ``ref_table.ref_column``),
            ``row_count_drift`` (|n / n_previous_version - 1| <= ``max_fraction``),
            ``freshness`` (max of ``column`` no older than ``max_age_days`` before
            ``reference_date``, default today), ``min_rows`` (at least ``min`` rows),
            ``timestamp_bounds`` (``column``, a date or timestamp, within
            ``jobs.ingest.timestamp_bounds`` at the time of the check: the range ingest
            admits, stated once there).
        severity: ``blocking`` stops downstream jobs; ``warning`` is reported only.
    """

    name: str
    kind: Kind
    severity: Literal["blocking", "warning"] = "blocking"
    column: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    columns_list: list[str] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    values: list[str | int | float | bool] = Field(default_factory=list)
    max_fraction: float | None = Field(None, ge=0)
    ref_table: str | None = None
    ref_column: str | None = None
    max_age_days: int | None = Field(None, ge=0)
    reference_date: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> "Expectation":
        need = {"not_null": ["column"], "range": ["column"], "isin": ["column", "values"], "null_rate": ["column", "max_fraction"],
                "unique": ["columns_list"], "foreign_key": ["column", "ref_table", "ref_column"],
                "row_count_drift": ["max_fraction"], "freshness": ["column", "max_age_days"], "schema": ["columns"],
                "min_rows": ["min"], "timestamp_bounds": ["column"]}[self.kind]
        missing = [k for k in need if getattr(self, k) in (None, [], {})]
        if missing:
            raise ValueError(f"expectation '{self.name}' ({self.kind}) needs {missing}")
        if self.kind == "range" and self.min is None and self.max is None:
            raise ValueError(f"expectation '{self.name}' (range) needs min and/or max")
        return self


class QualityParams(StrictModel):
    """Parameters of the quality gate.

    Attributes:
        results_table: Catalog name of the results table.
        expectations: Catalog table name -> its expectations. These tables are the *gated*
            ones: every read of one (:meth:`marketlab.tables.Lake.read`) is refused unless
            its version passed the gate.
        guard_reads: Refuse reads of gated table versions that failed the gate or were
            never evaluated (default). ``false`` is for forensics only: such reads go
            ahead with a warning (``--set jobs.quality.guard_reads=false``).
    """

    results_table: str = "quality.results"
    guard_reads: bool = True
    expectations: dict[str, list[Expectation]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> "QualityParams":
        for table, exps in self.expectations.items():
            names = [e.name for e in exps]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"expectations.{table}: duplicate names {dup}")
        return self
