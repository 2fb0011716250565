"""The stage graph: which job reads and writes which catalog tables, in what order.

The CLI runs this graph (``marketlab pipeline``) instead of a hand-written script; the
deployment descriptors (Airflow DAG, Spark Operator manifests) are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes:
        name: Stage name (also the job file ``jobs/<job>.py`` unless ``job`` says otherwise).
        inputs: Catalog tables it reads.
        outputs: Catalog tables it writes.
        job: Job file stem, defaults to ``name``.
        expected_s: Seconds of the full-conf reference run on the real data (local[2],
            docs/BENCHMARKS.md): the scheduler's estimate until the stage has a run of its
            own in ``ops.pipeline_runs``.
        params: The conf sections ``settings.jobs.<section>`` its outputs depend on: every
            section the job reads. The stage's fingerprint covers exactly these, so a change
            in one of them re-runs this stage (and, through the input versions, everything
            downstream), and a change elsewhere does not. Default: the job's own section.
        optional: Those of ``inputs`` the job reads only when they exist (it runs without
            them, e.g. segments without gold.customer_value): the runner does not refuse the
            stage when one is missing. They are still inputs: graph order, fingerprint, lineage.
    """

    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    job: str = ""
    description: str = ""
    expected_s: float = 60.0
    params: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.params:
            object.__setattr__(self, "params", (self.job_name,))
        if not set(self.optional) <= set(self.inputs):
            raise ValueError(f"stage {self.name}: optional inputs {sorted(set(self.optional) - set(self.inputs))} "
                             "are not among its inputs")

    @property
    def job_name(self) -> str:
        return self.job or self.name


STAGES: tuple[Stage, ...] = (
    Stage("ingest", (), ("bronze.orders", "bronze.campaign_log", "bronze.sessions", "bronze._rejects", "ops.ingest_log"),
          expected_s=55, description="raw files -> bronze Delta tables, rejects with reasons"),
    Stage("clean", ("bronze.orders", "bronze.campaign_log", "bronze.sessions"),
          ("silver.order_lines", "silver.returns", "silver.adjustments", "silver.campaign_log", "silver.sessions",
           "silver._audit", "quality.results"),
          expected_s=40, description="bronze -> silver + data-quality gate",
          params=("clean", "quality", "ingest")),
    Stage("features", ("silver.order_lines", "silver.returns", "quality.results"),
          ("gold.customer_features", "gold.item_features", "gold.interactions", "gold.demand_daily",
           "gold.demand_weekly", "gold.customer_sequences"),
          expected_s=45, description="silver -> gold features (point-in-time)", params=("features", "quality")),
    Stage("value", ("silver.order_lines", "quality.results"), ("gold.customer_value",),
          expected_s=30, description="BG/NBD + Gamma-Gamma customer lifetime value, holdout-evaluated"),
    Stage("segments", ("gold.customer_features", "gold.customer_value"), ("gold.segments", "gold.segment_profiles"),
          expected_s=20, description="RFM k-means segments with CLV tiers", params=("segments", "value"),
          optional=("gold.customer_value",)),
    Stage("behaviour", ("silver.sessions",), ("gold.purchase_intent",), expected_s=65, description="purchase-intent classifier"),
    Stage("sequence", ("gold.customer_sequences",), ("gold.sequence_scores",),
          expected_s=120, description="sequence Transformer + Mult-VAE (Horovod) vs baselines, next items + P(buy)"),
    Stage("recommend", ("gold.interactions", "gold.item_features", "gold.segments", "silver.order_lines",
                        "gold.sequence_scores"),
          ("gold.recommendations",),
          expected_s=100, description="served source chosen on validation: ALS, sequence model or baseline; cold start",
          optional=("gold.sequence_scores",)),
    Stage("forecast", ("gold.demand_daily",), ("gold.forecasts", "gold.forecast_backtest"),
          expected_s=180, description="distributed LSTM demand forecast + backtest"),
    Stage("inventory", ("gold.forecasts", "gold.demand_daily", "gold.item_features"), ("gold.inventory_plan", "gold.inventory_status"),
          expected_s=40, description="one SciPy LP per warehouse in map tasks"),
    Stage("effect", ("silver.campaign_log",), ("gold.uplift_scores",), expected_s=145, description="uplift models"),
    Stage("evaluation", ("silver.campaign_log",), ("gold.campaign_evaluations",), expected_s=5, description="A/B tests and ROI"),
    Stage("strategy", ("gold.uplift_scores", "gold.campaign_evaluations", "silver.campaign_log"), ("gold.strategy", "gold.strategy_summary"),
          expected_s=20, description="budgeted action per customer + off-policy evaluation",
          params=("strategy", "evaluation")),
    Stage("drift", ("gold.customer_features", "gold.customer_value", "gold.purchase_intent", "gold.uplift_scores",
                    "gold.sequence_scores"), ("ops.drift",),
          expected_s=15, description="PSI/KS drift of key features and scores vs the last accepted run",
          optional=("gold.customer_value", "gold.purchase_intent", "gold.uplift_scores", "gold.sequence_scores")),
    # A blocking drift fails its stage, so the next wave is not exported on drifted scores.
    Stage("export", ("gold.strategy", "silver.campaign_log", "ops.drift"), ("gold.campaign_export",),
          expected_s=5, description="next campaign wave: chosen actions + random holdout", params=("export", "evaluation"),
          optional=("ops.drift",)),
    Stage("campaign", ("silver.order_lines", "silver.returns", "gold.item_features", "gold.inventory_plan"),
          ("gold.campaign_waves", "bronze.campaign_responses", "bronze._campaign_rejects", "ops.campaign_ingest_log",
           "silver.campaign_responses", "silver.campaign_response_rejects", "gold.campaign_results",
           "gold.campaign_plans"),
          expected_s=240, description="the shop's campaign waves: plan, send, ingest responses, measure vs predicted",
          params=("campaign", "recommend", "simulator", "value"), optional=("gold.inventory_plan",)),
    Stage("report", ("ops.ingest_log", "quality.results", "silver._audit", "silver.order_lines", "silver.campaign_log",
                     "gold.customer_features",
                     "gold.segment_profiles", "gold.purchase_intent", "gold.recommendations", "gold.demand_daily",
                     "gold.forecasts", "gold.forecast_backtest", "gold.inventory_plan", "gold.inventory_status",
                     "gold.uplift_scores", "gold.campaign_evaluations", "gold.strategy_summary",
                     "gold.customer_value", "gold.campaign_results", "gold.campaign_plans", "gold.campaign_waves",
                     "gold.segments", "gold.item_features", "ops.drift"), (),
          expected_s=20, description="self-contained HTML report", params=("report", "effect", "recommend", "value"),
          optional=("gold.campaign_results", "gold.campaign_plans", "gold.campaign_waves", "ops.drift")),
)


def stage(name: str) -> Stage:
    """Look a stage up by name.

    Raises:
        KeyError: Unknown stage (message lists the known ones).
    """
    for st in STAGES:
        if st.name == name:
            return st
    raise KeyError(f"unknown stage '{name}'; stages: {[s.name for s in STAGES]}")


class UnknownStageError(KeyError, ValueError):
    """A stage name that is not in :data:`STAGES` (a KeyError for lookups, a ValueError for arguments)."""


def select_stages(only: Sequence[str] = (), from_stage: str | None = None) -> list[Stage]:
    """Stages in pipeline order, limited to ``only`` and/or starting at ``from_stage``.

    Raises:
        UnknownStageError: An unknown stage name (message lists the known ones).
    """
    names = [s.name for s in STAGES]
    unknown = sorted(set(only) - set(names)) + ([from_stage] if from_stage and from_stage not in names else [])
    if unknown:
        raise UnknownStageError(f"unknown stage(s) {unknown}; stages: {names}")
    start = names.index(from_stage) if from_stage else 0
    return [s for s in STAGES[start:] if not only or s.name in only]


def dependencies(stages: Sequence[Stage]) -> dict[str, set[str]]:
    """For each of ``stages``, the others among them that write a table it reads."""
    writer = {t: st.name for st in stages for t in st.outputs}
    return {st.name: {writer[t] for t in st.inputs if t in writer and writer[t] != st.name} for st in stages}


def remaining_path(stages: Sequence[Stage], seconds: Mapping[str, float]) -> dict[str, float]:
    """Seconds from the start of each stage to the end of the graph along its slowest chain of dependents.

    The scheduler starts the ready stage with the longest remaining path first, so the
    critical path (ingest -> ... -> forecast -> inventory -> report) never waits behind a
    stage that has slack.

    Args:
        stages: Stages in graph order (every stage after the ones it reads from).
        seconds: Expected seconds per stage (the last run's); others get their ``expected_s``.
    """
    deps = dependencies(stages)
    out: dict[str, float] = {}
    for st in reversed(stages):
        after = [out[d.name] for d in stages if st.name in deps[d.name]]
        out[st.name] = float(seconds.get(st.name, st.expected_s)) + max(after, default=0.0)
    return out
