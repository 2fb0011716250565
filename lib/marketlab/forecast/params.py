"""Parameters of the forecast job (conf: `jobs.forecast` in conf/base/params/forecast.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from marketlab.params_base import StrictModel


BaselineName = Literal["seasonal_naive", "ets", "auto_ets", "theta", "auto_theta", "seasonal_es"]


class TrainParams(StrictModel):
    """How the LSTM is trained across the cluster.

    Attributes:
        backend: Launcher: ``horovod`` (``horovod.spark.run``, gloo on CPU / NCCL on GPU)
            or ``tf-distribute`` (``MultiWorkerMirroredStrategy`` in Spark barrier tasks).
        num_workers: Training processes, one Spark task (and one GPU, where present) each.
        use_gpu: Use a GPU per worker when the worker sees one (NCCL all-reduce); CPU
            processes otherwise.
        epochs: Passes over the smallest worker shard.
        batch_size: Samples per worker and step (global batch = batch_size x workers).
        learning_rate: Adam step size for ONE worker; scaled linearly with the workers.
        steps_per_epoch: Cap on steps per epoch (None: the smallest shard once).
        origin_stride: Use every n-th forecast origin of a series as a training sample.
        lstm_units: Hidden units of the LSTM layer.
        dense_units: Units of the dense layer between the LSTM and the quantile head.
        seed: Seed of weights initialisation and shuffling (same on every worker).
        threads_per_worker: TensorFlow intra-op threads per worker; 0 = TensorFlow's
            default (every core of the node in every worker). Set it to ``spark.task.cpus``
            where an executor runs several training tasks on big nodes; on 2 local cores
            the default trained the real data 1.5x faster than 1 thread per worker
            (docs/benchmarks/forecast.md).
        start_timeout_s: Seconds to wait for all workers to start.
    """

    backend: Literal["horovod", "tf-distribute"] = "horovod"
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = True
    epochs: int = Field(4, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    steps_per_epoch: int | None = Field(None, ge=1)
    origin_stride: int = Field(3, ge=1)
    lstm_units: int = Field(32, ge=1)
    dense_units: int = Field(32, ge=1)
    seed: int = 7
    threads_per_worker: int = Field(0, ge=0)
    start_timeout_s: int = Field(300, ge=10)


class ForecastParams(StrictModel):
    """Parameters of the forecast job.

    Attributes:
        input_table: Daily demand (item x warehouse x day).
        output_table: Forecasts (item x warehouse x day x P50/P90).
        backtest_table: Backtest metric per model x cutoff.
        horizon: Days forecast from each origin.
        window: Days of history the LSTM sees.
        season: Seasonal period in days (seasonal naive, MASE scaling).
        n_cutoffs: Rolling-origin backtest cutoffs.
        cutoff_step: Days between cutoffs (the last cutoff is ``horizon`` days before the end).
        min_history: Days of history a series needs for the LSTM; shorter ones get a
            fallback model and are flagged.
        baselines: Baselines computed in the same run (seasonal naive is always included):
            ``seasonal_naive``, ``ets`` (ETS of ``ets_model``), ``auto_ets``, ``theta``,
            ``auto_theta``, ``seasonal_es`` (see :mod:`marketlab.forecast.baselines`).
        ets_model: ETS specification of the ``ets`` baseline in statsforecast notation
            (error, trend, season; ``Z`` = chosen per series, ``ZZZ`` = ``auto_ets``).
        fallback_model: Model of the ``not_selected`` series (beyond ``max_series``); it is
            backtested on them at the last cutoff against seasonal naive.
        quantiles: Quantile levels produced (P50, P90).
        max_series: Keep only the highest-volume series for the LSTM (None: all); the
            others get ``fallback_model`` and are flagged ``not_selected``.
        model_name: Registered MLflow model name.
        gate_metric: Backtest metric of the LSTM that gates the ``champion`` alias (lower is better).
        gate_margin: Required improvement over the current champion.
        require_beats_baseline: Refuse promotion when the LSTM does not beat seasonal naive on MASE.
        staging_dir: Folder (under the lake root when relative) where training shards are staged.
        train: Distributed training settings.
    """

    input_table: str = "gold.demand_daily"
    output_table: str = "gold.forecasts"
    backtest_table: str = "gold.forecast_backtest"
    horizon: int = Field(14, ge=1)
    window: int = Field(56, ge=2)
    season: int = Field(7, ge=1)
    n_cutoffs: int = Field(3, ge=1)
    cutoff_step: int = Field(14, ge=1)
    min_history: int | None = Field(None, ge=2)
    baselines: list[BaselineName] = Field(default_factory=lambda: ["seasonal_naive", "ets", "theta"])
    ets_model: str = Field("ANA", pattern="^[AMZ][NAMZ][NAMZ]$")
    fallback_model: BaselineName = "seasonal_es"
    quantiles: tuple[float, float] = (0.5, 0.9)
    max_series: int | None = Field(None, ge=1)
    model_name: str = "marketlab-demand-lstm"
    gate_metric: Literal["mase", "wape", "pinball"] = "mase"
    gate_margin: float = Field(0.0, ge=0)
    require_beats_baseline: bool = True
    staging_dir: str = "_staging/forecast"
    train: TrainParams = Field(default_factory=TrainParams)

    @field_validator("baselines")
    @classmethod
    def _naive_first(cls, v: list[str]) -> list[str]:
        # Seasonal naive is the reference of MASE ratios and the fallback: always computed.
        return ["seasonal_naive", *[b for b in dict.fromkeys(v) if b != "seasonal_naive"]]

    @model_validator(mode="after")
    def _check(self) -> "ForecastParams":
        if tuple(self.quantiles) != (0.5, 0.9):
            raise ValueError("quantiles: only (0.5, 0.9) is supported (columns p50, p90 of gold.forecasts)")
        return self

    @property
    def history_needed(self) -> int:
        """Days of history a series needs before a cutoff to get the LSTM."""
        return self.min_history or (self.window + 2 * self.horizon)
