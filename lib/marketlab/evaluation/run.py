"""The evaluation and export stages' entry points: the two ends of the closed loop.

:func:`run` evaluates the campaign log into the evaluation history; :func:`export_wave`
writes the next wave's audience and its send-list file. Both read and write only through
:class:`~marketlab.tables.Lake`, with the table names of
:class:`~marketlab.evaluation.params.EvaluationParams`.
"""

from __future__ import annotations

from dataclasses import dataclass

from marketlab.errors import BadInputError
from marketlab.evaluation.ab import CampaignEvaluation, evaluate_campaign
from marketlab.evaluation.export import next_wave_export
from marketlab.evaluation.params import EvaluationParams, ExportParams
from marketlab.tables import Lake


class SampleRatioMismatchError(BadInputError):
    """The arms' sizes do not match the planned allocation and ``fail_on_srm`` is set."""


@dataclass
class EvaluationResult:
    """One campaign's evaluation and the history version it was written to."""

    evaluation: CampaignEvaluation
    version: int


def run(lake: Lake, params: EvaluationParams, run_id: str | None = None) -> EvaluationResult:
    """Evaluate ``params.campaign`` and replace exactly its rows of ``params.output_table``.

    Args:
        lake: The lake.
        params: Evaluation parameters.
        run_id: MLflow run id stored on the rows.

    Raises:
        marketlab.evaluation.ab.CampaignDataError: The log cannot be evaluated.
        SampleRatioMismatchError: A sample-ratio mismatch with ``fail_on_srm`` (nothing
            is written).
    """
    res = evaluate_campaign(lake.read(params.input_table), params, run_id=run_id)
    if res.srm.mismatch and params.fail_on_srm:
        raise SampleRatioMismatchError(
            f"sample-ratio mismatch (p={res.srm.p_value:.2e}): observed {res.srm.observed}, "
            f"expected {res.srm.expected}; set jobs.evaluation.fail_on_srm=false to only flag it")
    version = lake.write(res.to_spark(lake.spark), params.output_table,
                         replace_where=f"campaign = '{params.campaign}'")
    return EvaluationResult(res, version)


@dataclass
class ExportResult:
    """The exported wave.

    Attributes:
        rows: Customers in the wave.
        held_out: Of them, held out as random control.
        origin: Where the audience came from (``strategy`` or a re-randomized campaign).
        version: Delta version of the export table written.
        file: Folder of the send-list CSV (None when ``csv`` is off).
    """

    rows: int
    held_out: int
    origin: str
    version: int
    file: str | None


def export_wave(lake: Lake, export: ExportParams, evaluation: EvaluationParams, secret: str) -> ExportResult:
    """Write this wave's rows of ``export.output_table`` (replacing only this campaign) and its send list.

    Args:
        lake: The lake.
        export: The wave (``jobs.export``).
        evaluation: The evaluated campaign's settings (its control arm and treatment column).
        secret: Pseudonymisation secret of ``customer_key`` (the re-randomized path keys
            the campaign log's customers with it).
    """
    e = export
    strategy = lake.read(e.source_table) if lake.exists(e.source_table) else None
    rows, origin = next_wave_export(lake.read(e.input_table), strategy, export=e, control_arm=evaluation.control_arm,
                                    treatment_col=evaluation.treatment_column, secret=secret)
    version = lake.write(rows, e.output_table, replace_where=f"campaign = '{e.campaign}'")
    wave = lake.read(e.output_table).where(f"campaign = '{e.campaign}'")
    # The send list leaves the lake for the e-mail tool: one CSV file per wave.
    file = lake.export_csv(wave, e.output_table, e.campaign) if e.csv else None
    return ExportResult(wave.count(), wave.where("is_holdout").count(), origin, version, file)
