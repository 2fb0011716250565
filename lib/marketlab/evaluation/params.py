"""Parameters of the evaluation job (conf: `jobs.evaluation` in conf/base/params/evaluation.yaml)
and of the export job (`jobs.export` in conf/base/params/export.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class ExportParams(StrictModel):
    """The campaign export (audience list with arm and holdout for an e-mail tool).

    The arm names (control arm, treatment column) are the evaluated campaign's, in
    ``jobs.evaluation``.

    Attributes:
        input_table: The evaluated campaign's log (the repeat-test audience).
        output_table: Gold campaign export (one replaceWhere slice per campaign).
        source_table: Audience with the chosen action per customer (the strategy's
            output). When it does not exist yet, the audience is the evaluated campaign's
            customers, re-randomized over the campaign's arms (a repeat of the test).
        key_column: Customer key column of ``source_table``.
        arm_column: Chosen-action column of ``source_table``.
        campaign: Name of the campaign being exported (the next wave).
        holdout_fraction: Share of the audience held out as random control (no e-mail).
        seed: Salt of the hash that draws the holdout; same seed -> same assignment.
        csv: Also write a single-file CSV next to the table (``<table path>_csv/``).
    """

    input_table: str = "silver.campaign_log"
    output_table: str = "gold.campaign_export"
    source_table: str = "gold.strategy"
    key_column: str = "customer_key"
    arm_column: str = "action"
    campaign: str = Field("hillstrom_next_wave", pattern=r"^[A-Za-z0-9_.\-]+$")
    holdout_fraction: float = Field(0.10, gt=0.0, lt=1.0)
    seed: int = 20240601
    csv: bool = True


class EvaluationParams(StrictModel):
    """Parameters of the evaluation job (A/B analysis, ROI, closed-loop history).

    Attributes:
        input_table: Campaign log with arm and outcomes (``silver.campaign_log`` contract).
        output_table: Gold evaluation history (one row per campaign x arm x metric x segment).
        campaign: Name under which this campaign's evaluation is stored; a rerun replaces
            exactly this campaign's rows (other campaigns' history stays). Letters,
            digits, ``_.-`` only (it is used in the replaceWhere predicate).
        treatment_column: Arm column of the campaign log.
        control_arm: Arm value of the control group.
        arms: Treatment arms to evaluate; empty -> every arm other than the control.
        expected_allocation: Planned share per arm (control included) for the sample-ratio
            check; empty -> equal shares over the arms present.
        srm_alpha: p-value below which the allocation is flagged as a sample-ratio mismatch.
        fail_on_srm: Stop with an error on SRM instead of flagging every row.
        alpha: Two-sided level of the tests; intervals are (1 - alpha).
        correction: ``statsmodels.stats.multitest.multipletests`` method applied across
            arms x metrics (overall family) and separately across the per-segment family.
        spend_test: ``welch`` (from sufficient statistics, scales to any size) or
            ``bootstrap`` (percentile-BCa via SciPy on the collected spend values).
        bootstrap_resamples: Resamples of the bootstrap.
        seed: Seed of the bootstrap.
        segment_columns: Columns whose values define per-segment effects.
        min_segment_size: Segments with fewer customers in an arm or the control are skipped
            (reported in the run as ``segments_skipped``).
        cost_per_contact: Cost of one contact per arm (currency of spend); arms not listed
            use ``default_cost_per_contact``.
        default_cost_per_contact: Cost per contact of an unlisted arm.
        margin_rate: Gross margin as a share of spend (incremental margin = rate x spend).
    """

    input_table: str = "silver.campaign_log"
    output_table: str = "gold.campaign_evaluations"
    campaign: str = Field("hillstrom_2008", pattern=r"^[A-Za-z0-9_.\-]+$")
    treatment_column: str = "treatment"
    control_arm: str = "No E-Mail"
    arms: list[str] = Field(default_factory=list)
    expected_allocation: dict[str, float] = Field(default_factory=dict)
    srm_alpha: float = Field(0.001, gt=0.0, lt=1.0)
    fail_on_srm: bool = False
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    correction: Literal["holm", "bonferroni", "fdr_bh", "fdr_by", "sidak", "holm-sidak", "hommel"] = "holm"
    spend_test: Literal["welch", "bootstrap"] = "welch"
    bootstrap_resamples: int = Field(2000, ge=100)
    seed: int = 7
    segment_columns: list[str] = Field(default_factory=lambda: ["channel", "zip_code", "newbie", "history_bin"])
    min_segment_size: int = Field(200, ge=2)
    cost_per_contact: dict[str, float] = Field(default_factory=dict)
    default_cost_per_contact: float = Field(0.10, ge=0.0)
    margin_rate: float = Field(0.30, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_allocation(self) -> "EvaluationParams":
        if self.expected_allocation:
            if any(v <= 0 for v in self.expected_allocation.values()):
                raise ValueError("expected_allocation: every share must be > 0")
        return self

    def cost_of(self, arm: str) -> float:
        """Cost per contact of ``arm`` (the control costs nothing)."""
        if arm == self.control_arm:
            return 0.0
        return float(self.cost_per_contact.get(arm, self.default_cost_per_contact))
