"""The forecast workflow: rolling-origin backtest, final training, forecast table rows.

:func:`run` is the stage's one entry point; it reads and writes through
:class:`~marketlab.tables.Lake` with the table names of
:class:`~marketlab.forecast.params.ForecastParams`.

Backtest design: the LSTM is trained once, on history up to the FIRST cutoff only (scaling
included), and evaluated at every cutoff from the history available there, so no cutoff
ever sees a model fitted on its future. Baselines are refitted at each cutoff (they are
cheap), which only favours them. The production model is then retrained on all history.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from marketlab.constants import DATE, ITEM_ID, WAREHOUSE
from marketlab.errors import BadInputError
from marketlab.forecast import prep
from marketlab.forecast.backtest import METRICS, mase_gain_ci, per_series_errors, summarize
from marketlab.training.launch import Launcher
from marketlab.forecast.model import model_config
from marketlab.forecast.params import ForecastParams
from marketlab.forecast.predict import baseline_forecasts, lstm_forecasts
from marketlab.forecast.series import ALL_ZERO, FLAGS, NOT_SELECTED, OK, SERIES_ID, STATUS, TOO_SHORT, complete_calendar, series_profile
from marketlab.forecast.train import TrainSpec
from marketlab.training.worker import WorkerResult
from marketlab.forecast.windows import N_FEATURES
from marketlab.tables import Lake

log = logging.getLogger(__name__)


class ForecastInputError(BadInputError):
    """The demand data cannot support the configured backtest (message says why)."""


@dataclass
class TrainedModel:
    """Weights of rank 0 plus what every worker reported.

    ``seconds`` is the slowest worker's ``fit``; ``launch_seconds`` the wall time of the
    launch it was trained in (worker start-up plus every model trained in that launch).
    """

    config: dict[str, Any]
    weights: list[np.ndarray]
    digest: str
    results: list[WorkerResult]
    cutoff: dt.date
    n_series: int
    steps_per_epoch: int
    windows_per_shard: list[int]
    seconds: float
    launch_seconds: float = float("nan")

    @property
    def replicas_identical(self) -> bool:
        return len({r.digest for r in self.results}) == 1

    @property
    def max_divergence(self) -> float:
        """Largest absolute weight difference between any replica and rank 0."""
        ref = self.results[0].weights
        return max((float(np.max(np.abs(a - b))) for r in self.results[1:] for a, b in zip(r.weights, ref)), default=0.0)

    @property
    def loss(self) -> list[float]:
        return self.results[0].loss

    @property
    def samples_per_second(self) -> float:
        """Aggregate training throughput (all workers)."""
        return sum(r.samples_trained for r in self.results) / max(r.train_seconds for r in self.results)


@dataclass
class BacktestResult:
    """Backtest outputs."""

    cutoffs: list[dt.date]
    summary: pd.DataFrame
    errors: pd.DataFrame
    model: TrainedModel
    gains: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    forecasts: DataFrame | None = None
    fallback: pd.DataFrame | None = None

    def metric(self, model: str, name: str) -> float:
        row = self.summary[(self.summary["model"] == model) & self.summary["cutoff"].isna()]
        return float(row[name].iloc[0]) if len(row) else float("nan")


def backtest_cutoffs(end: dt.date, params: ForecastParams) -> list[dt.date]:
    """Rolling origins, oldest first; the newest leaves ``horizon`` days of actuals."""
    last = end - dt.timedelta(days=params.horizon)
    return [last - dt.timedelta(days=params.cutoff_step * k) for k in range(params.n_cutoffs - 1, -1, -1)]


@dataclass
class StagedTraining:
    """One model's training input, staged as shards and ready to launch."""

    cutoff: dt.date
    spec: TrainSpec
    n_series: int
    steps_per_epoch: int
    windows_per_shard: list[int]


def stage_training(series: DataFrame, profile: DataFrame, cutoff: dt.date, params: ForecastParams,
                   stage_uri: str) -> StagedTraining:
    """Stage the shards of the ``ok`` series of ``profile`` (history up to ``cutoff``).

    Raises:
        ForecastInputError: Too little data for the configured workers and batch.
    """
    tp = params.train
    shards = prep.assign_shards(profile, tp.num_workers, params.window, params.horizon, tp.origin_stride).cache()
    try:
        try:
            steps, per_shard = prep.steps_per_epoch(shards, tp.num_workers, tp.batch_size, tp.steps_per_epoch)
        except ValueError as exc:
            raise ForecastInputError(str(exc)) from None
        n_series = shards.count()
        prep.stage(prep.training_frame(series, profile, shards, cutoff), stage_uri)
    finally:
        shards.unpersist()
    spec = TrainSpec(shard_uri=stage_uri, window=params.window, horizon=params.horizon, stride=tp.origin_stride,
                     epochs=tp.epochs, steps_per_epoch=steps, batch_size=tp.batch_size, learning_rate=tp.learning_rate,
                     lstm_units=tp.lstm_units, dense_units=tp.dense_units, seed=tp.seed, use_gpu=tp.use_gpu,
                     threads=tp.threads_per_worker)
    return StagedTraining(cutoff, spec, n_series, steps, per_shard)


def train_staged(spark: SparkSession, staged: Sequence[StagedTraining], params: ForecastParams,
                 launcher: Launcher) -> list[TrainedModel]:
    """Train every staged model across the workers in one launch, in order."""
    tp = params.train
    t0 = time.perf_counter()
    runs = launcher.run_many(spark, [s.spec for s in staged], tp.num_workers)
    launch_s = time.perf_counter() - t0
    cfg = model_config(params.window, N_FEATURES, params.horizon, tp.lstm_units, tp.dense_units, tp.seed)
    models = []
    for s, results in zip(staged, runs):
        fit_s = max(r.train_seconds for r in results)
        log.info("trained on %d series up to %s: %d steps/epoch, loss %s, fit %.1fs (launch of %d model(s) %.1fs)",
                 s.n_series, s.cutoff, s.steps_per_epoch, results[0].loss, fit_s, len(staged), launch_s)
        models.append(TrainedModel(cfg, results[0].weights, results[0].digest, results, s.cutoff, s.n_series,
                                   s.steps_per_epoch, s.windows_per_shard, fit_s, launch_s))
    return models


def train_at(spark: SparkSession, series: DataFrame, profile: DataFrame, cutoff: dt.date, params: ForecastParams,
             launcher: Launcher, stage_uri: str) -> TrainedModel:
    """Stage the shards of the ``ok`` series (history up to ``cutoff``) and train across workers.

    Raises:
        ForecastInputError: Too little data for the configured workers and batch.
    """
    return train_staged(spark, [stage_training(series, profile, cutoff, params, stage_uri)], params, launcher)[0]


def backtest_profile(series: DataFrame, cutoffs: Sequence[dt.date], params: ForecastParams) -> tuple[DataFrame, int]:
    """Series profile at the first backtest cutoff (cached) and its number of ``ok`` series.

    Raises:
        ForecastInputError: No series has enough history at the first cutoff.
    """
    profile = series_profile(series, cutoffs[0], params.history_needed, params.max_series).cache()
    n_ok = profile.where(F.col(STATUS) == OK).count()
    if n_ok == 0:
        profile.unpersist()
        raise ForecastInputError(
            f"no series has {params.history_needed} days of history with sales by the first backtest cutoff {cutoffs[0]}; "
            "lower jobs.forecast.n_cutoffs/cutoff_step/window or provide longer history")
    return profile, n_ok


@dataclass
class ForecastRun:
    """Outputs of :func:`backtest_and_forecast`."""

    backtest: BacktestResult
    forecasts: DataFrame
    final: TrainedModel | None
    profile: DataFrame


def backtest_and_forecast(spark: SparkSession, series: DataFrame, params: ForecastParams, launcher: Launcher,
                          stage_uri: str, end: dt.date) -> ForecastRun:
    """The backtest and the final forecasts, with both LSTMs trained in one launch.

    Both training sets are staged first (the backtest's up to the first cutoff, the final
    one on all history), so the workers start once for both models.

    Raises:
        ForecastInputError: No series has enough history at the first cutoff, or too little
            data for the configured workers and batch.
    """
    cutoffs = backtest_cutoffs(end, params)
    bt_profile, bt_ok = backtest_profile(series, cutoffs, params)
    final_profile = series_profile(series, end, params.history_needed, params.max_series).cache()
    final_ok = final_profile.where(F.col(STATUS) == OK).count()
    staged = [stage_training(series, bt_profile, cutoffs[0], params, stage_uri + "/backtest")]
    if final_ok:
        staged.append(stage_training(series, final_profile, end, params, stage_uri + "/final"))
    models = train_staged(spark, staged, params, launcher)
    bt = run_backtest(spark, series, params, launcher, stage_uri + "/backtest", end, trained=(bt_profile, bt_ok, models[0]))
    final = models[1] if final_ok else None
    fc = final_forecasts(series, params, end, final_profile, final_ok, final)
    return ForecastRun(bt, fc, final, final_profile)


def run_backtest(spark: SparkSession, series: DataFrame, params: ForecastParams, launcher: Launcher, stage_uri: str,
                 end: dt.date, trained: tuple[DataFrame, int, TrainedModel] | None = None) -> BacktestResult:
    """Rolling-origin backtest of the LSTM against the baselines on the same series.

    Args:
        spark: Session.
        series: :func:`~marketlab.forecast.series.complete_calendar` output (cache it).
        params: Job parameters.
        launcher: Training backend.
        stage_uri: Scratch folder for the training shards.
        end: Last day with actuals.
        trained: ``(profile, n_ok, model)`` when the model at the first cutoff is already
            trained (:func:`backtest_and_forecast`); the profile is unpersisted here.

    Raises:
        ForecastInputError: No series has enough history at the first cutoff.
    """
    cutoffs = backtest_cutoffs(end, params)
    if trained is None:
        profile, n_ok = backtest_profile(series, cutoffs, params)
        model = train_at(spark, series, profile, cutoffs[0], params, launcher, stage_uri)
    else:
        profile, n_ok, model = trained
    ok = profile.where(F.col(STATUS) == OK)
    lstm = lstm_forecasts(series, ok, cutoffs, model.config, model.weights, model.digest, params.season, n_ok)
    base = baseline_forecasts(series, ok, cutoffs, params.baselines, params.horizon, params.season, n_ok,
                              params.ets_model)
    forecasts = lstm.unionByName(base)
    errors = per_series_errors(forecasts, series).cache()
    summary = summarize(errors).toPandas().sort_values(["model", "cutoff"], na_position="last").reset_index(drop=True)
    err_pd = errors.select("model", "cutoff", SERIES_ID, "mase").toPandas()
    errors.unpersist()
    fallback = fallback_backtest(series, profile, cutoffs[-1], params)
    profile.unpersist()
    gains = {b: mase_gain_ci(err_pd, "lstm", b, seed=params.train.seed) for b in params.baselines}
    return BacktestResult(cutoffs, summary, err_pd, model, gains, forecasts, fallback)


def fallback_backtest(series: DataFrame, profile: DataFrame, cutoff: dt.date, params: ForecastParams) -> pd.DataFrame | None:
    """Backtest of ``fallback_model`` against seasonal naive on the ``not_selected`` series.

    Those series never reach the LSTM, so this is the only evidence for the model that
    forecasts them; one cutoff (the last) keeps it cheap.

    Returns:
        The :func:`summarize` rows of both models (overall rows only), or None when no
        series is ``not_selected``.
    """
    ids = profile.where(F.col(STATUS) == NOT_SELECTED).select(SERIES_ID).cache()
    n = ids.count()
    if n == 0:
        ids.unpersist()
        return None
    models = list(dict.fromkeys(["seasonal_naive", params.fallback_model]))
    fc = baseline_forecasts(series, ids, [cutoff], models, params.horizon, params.season, n,
                            params.ets_model)
    out = summarize(per_series_errors(fc, series)).where(F.col("cutoff").isNull()).toPandas()
    ids.unpersist()
    return out.sort_values("model").reset_index(drop=True)


def final_forecasts(series: DataFrame, params: ForecastParams, end: dt.date, profile: DataFrame, n_ok: int,
                    model: TrainedModel | None) -> DataFrame:
    """Forecast ``horizon`` days after ``end`` for every series with the model trained on all history.

    Series the LSTM cannot serve get a fallback and keep the reason in ``flags``:
    ``too_short`` -> seasonal naive (mean when shorter than a season), ``all_zero`` ->
    zeros, ``not_selected`` -> ``fallback_model``.

    Args:
        series: :func:`~marketlab.forecast.series.complete_calendar` output (cache it).
        params: Job parameters.
        end: Last day with actuals.
        profile: Series profile at ``end`` (cached).
        n_ok: Its number of ``ok`` series.
        model: The LSTM trained up to ``end`` (None when ``n_ok`` is 0).

    Returns:
        Forecast rows ``item_id, warehouse, series_id, date, p50, p90, model, flags``.
    """
    ok = profile.where(F.col(STATUS) == OK)
    parts = []
    if n_ok:
        parts.append(lstm_forecasts(series, ok, [end], model.config, model.weights, model.digest, params.season, n_ok))
    fallback_kind = F.when(F.col(STATUS) == NOT_SELECTED, F.lit(params.fallback_model)).otherwise(F.lit("seasonal_naive"))
    others = profile.where(F.col(STATUS) != OK).select(SERIES_ID, fallback_kind.alias("_kind"))
    # Buckets by the number of series each fallback forecasts (thousands where max_series
    # is small), not by the LSTM's: one bucket would put them all in one task on one core.
    n_other = others.groupBy("_kind").count().collect()
    n_other = {r["_kind"]: int(r["count"]) for r in n_other}
    for kind in dict.fromkeys(("seasonal_naive", params.fallback_model)):
        ids = others.where(F.col("_kind") == kind)
        parts.append(baseline_forecasts(series, ids, [end], [kind], params.horizon, params.season,
                                        max(n_other.get(kind, 0), 1), params.ets_model))
    fc = parts[0]
    for p in parts[1:]:
        fc = fc.unionByName(p)
    return (fc.join(profile.select(SERIES_ID, ITEM_ID, WAREHOUSE, FLAGS), SERIES_ID)
            .select(ITEM_ID, WAREHOUSE, SERIES_ID, DATE, "p50", "p90", F.col("model_used").alias("model"), FLAGS))


def status_counts(profile: DataFrame) -> dict[str, int]:
    """Series per status (``ok``, ``too_short``, ``all_zero``, ``not_selected``)."""
    counts = {r[STATUS]: int(r["n"]) for r in profile.groupBy(STATUS).agg(F.count("*").alias("n")).collect()}
    return {s: counts.get(s, 0) for s in (OK, TOO_SHORT, ALL_ZERO, NOT_SELECTED)}


def forecast_table(forecasts: DataFrame, model_version: str, made_at: dt.datetime) -> DataFrame:
    """Rows of ``gold.forecasts`` (contract columns first, then ``flags``)."""
    return forecasts.select(
        ITEM_ID, WAREHOUSE, DATE, "p50", "p90", "model",
        F.lit(model_version).alias("model_version"), F.lit(made_at).cast("timestamp").alias("made_at"), FLAGS,
    )


def backtest_table(spark: SparkSession, bt: BacktestResult, made_at: dt.datetime) -> DataFrame:
    """Rows of ``gold.forecast_backtest``: one per model x cutoff (cutoff null = all cutoffs)."""
    cols = ["model", "cutoff", "n_series", "n_series_mase", *METRICS]
    schema = ("model string, cutoff date, n_series long, n_series_mase long, "
              + ", ".join(f"{m} double" for m in METRICS))
    rows = [tuple(None if pd.isna(v) else v for v in r) for r in bt.summary[cols].itertuples(index=False, name=None)]
    rows = [(m, c, int(n), int(nm), *[None if v is None else float(v) for v in rest]) for m, c, n, nm, *rest in rows]
    return (spark.createDataFrame(rows, schema)
            .withColumn("first_cutoff", F.lit(bt.cutoffs[0])).withColumn("made_at", F.lit(made_at).cast("timestamp")))


def prepare(demand: DataFrame, item_col: str = ITEM_ID, warehouse_col: str = WAREHOUSE, date_col: str = DATE,
            units_col: str = "units") -> tuple[DataFrame, dt.date]:
    """Complete calendars of the demand table and its last day.

    Raises:
        ForecastInputError: The table has no usable row.
    """
    end = demand.agg(F.max(F.col(date_col).cast("date"))).first()[0]
    if end is None:
        raise ForecastInputError("the demand table has no row with a date")
    return complete_calendar(demand, end, item_col, warehouse_col, date_col, units_col), end


@dataclass
class ForecastResult:
    """What one forecast stage run trained, registered and wrote.

    Attributes:
        end: Last day of demand (the forecasts start the day after).
        backtest: The rolling-origin backtest.
        final: The LSTM trained on all history (None when no series qualifies).
        series: Series per status (:func:`status_counts`).
        model_version: Registered model version the forecast rows carry.
        versions: Catalog name -> Delta version written.
    """

    end: dt.date
    backtest: BacktestResult
    final: TrainedModel | None
    series: dict[str, int]
    model_version: str
    versions: dict[str, int]


def run(lake: Lake, params: ForecastParams, launcher: Launcher, stage_uri: str,
        register: Callable[[ForecastRun], str]) -> ForecastResult:
    """The forecast stage's entry point: backtest, final training, ``gold.forecasts`` and its backtest table.

    Args:
        lake: The lake (reads ``params.input_table``).
        params: Forecast parameters.
        launcher: Distributed-training launcher.
        stage_uri: Folder where the training sets are staged for the workers.
        register: Called with the trained run before anything is written; logs and
            registers the model and returns its version, which the forecast rows carry.

    Raises:
        ForecastInputError: The demand cannot support the configured backtest.
    """
    series, end = prepare(lake.read(params.input_table))
    series = series.cache()
    try:
        out = backtest_and_forecast(lake.spark, series, params, launcher, stage_uri, end)
        counts = status_counts(out.profile)
        version = register(out)
        made_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        versions = {
            params.output_table: lake.write(forecast_table(out.forecasts, f"{params.model_name}/{version}", made_at),
                                            params.output_table),
            params.backtest_table: lake.write(backtest_table(lake.spark, out.backtest, made_at), params.backtest_table),
        }
    finally:
        series.unpersist()
    return ForecastResult(end, out.backtest, out.final, counts, version, versions)
