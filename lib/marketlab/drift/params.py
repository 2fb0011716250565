"""Parameters of the drift stage (conf: ``jobs.drift`` in conf/base/params/drift.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class DriftCheck(StrictModel):
    """One watched table: its numeric columns, optionally per slice.

    Attributes:
        table: Catalog name of the table.
        columns: Numeric columns whose distribution is compared.
        by: Columns that split the table into slices compared separately (a long-format
            score table holds one distribution per action x outcome, not one mixture).
    """

    table: str
    columns: list[str] = Field(min_length=1)
    by: list[str] = Field(default_factory=list)


class DriftParams(StrictModel):
    """Drift of the watched tables between the reference (the last accepted run) and now.

    Attributes:
        output_table: One row per table x column x slice x compared version pair.
        checks: The watched tables.
        bins: Quantile bins of the reference for the population stability index.
        warn_psi: PSI at or above which a column is flagged ``warn``.
        block_psi: PSI at or above which a column is flagged ``block``.
        max_null_rate_change: Absolute change of the null share that flags ``warn``.
        ks_sample: Values per side drawn (seeded) for the two-sample Kolmogorov-Smirnov test.
        on_block: ``fail``: a ``block`` row stops the stage (and the export that reads
            ``ops.drift``) until the drift is accepted by a run with ``on_block: warn``;
            ``warn``: logged and accepted.
        seed: Seed of the KS samples.
    """

    output_table: str = "ops.drift"
    checks: list[DriftCheck] = Field(default_factory=list)
    bins: int = Field(10, ge=2, le=100)
    warn_psi: float = Field(0.1, gt=0)
    block_psi: float = Field(0.25, gt=0)
    max_null_rate_change: float = Field(0.05, gt=0, le=1)
    ks_sample: int = Field(20000, ge=100)
    on_block: Literal["fail", "warn"] = "fail"
    seed: int = 11

    @model_validator(mode="after")
    def _ordered(self) -> "DriftParams":
        if self.block_psi < self.warn_psi:
            raise ValueError(f"block_psi ({self.block_psi}) must be >= warn_psi ({self.warn_psi})")
        return self
