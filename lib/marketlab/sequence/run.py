"""The sequence workflow: split, stage, train data-parallel, evaluate against baselines, score.

``run(lake, params, launcher, work_uri) -> SequenceResult``. Everything chosen from data
(early stopping, the served source) is chosen on the validation window; the test window
after the cutoff is used once, for the reported figures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C
from marketlab.errors import BadInputError
from marketlab.sequence import baselines as B
from marketlab.sequence import data, encode
from marketlab.sequence import evaluate as E
from marketlab.sequence.params import SequenceParams
from marketlab.sequence.score import Served, score_all
from marketlab.sequence.train import SequenceTrainSpec
from marketlab.tables import Lake
from marketlab.training.launch import Launcher, get_launcher
from marketlab.training.worker import WorkerResult

log = logging.getLogger(__name__)


@dataclass
class TrainedSequenceModel:
    """Rank 0's best weights plus what every worker reported."""

    kind: str
    config: dict[str, Any]
    results: list[WorkerResult]
    steps_per_epoch: int
    examples_per_shard: list[int]
    launch_seconds: float = float("nan")

    @property
    def weights(self) -> list[np.ndarray]:
        return self.results[0].weights

    @property
    def replicas_identical(self) -> bool:
        return len({r.digest for r in self.results}) == 1

    @property
    def samples_per_second(self) -> float:
        """Aggregate training throughput (all workers, whole ``fit``)."""
        return sum(r.samples_trained for r in self.results) / max(r.train_seconds for r in self.results)

    @property
    def best_epoch(self) -> int:
        return int(self.results[0].extra.get("best_epoch", -1))


@dataclass
class SequenceResult:
    """What a run produced (the job logs it; :meth:`output` is the output table).

    ``scores`` is the served ranking at the end of the data (every customer);
    ``model_scores`` every trained model's own ranking at the validation cutoff and at the
    end of the data (customers the model knows), for consumers that choose among the
    models on a split of their own (the recommender, docs/RECOMMENDER.md).
    """

    split: data.Split
    vocabulary: encode.Vocabulary
    models: dict[str, TrainedSequenceModel]
    validation: pd.DataFrame
    test: pd.DataFrame
    gains: dict[str, tuple[float, float, float]]
    propensity: dict[str, E.PropensityMetrics]
    served: str
    best_baseline: str
    scores: DataFrame
    n_customers: int
    seconds: dict[str, float] = field(default_factory=dict)
    model_scores: DataFrame | None = None

    def output(self) -> DataFrame:
        """The rows of ``gold.sequence_scores``: the served ranking plus every model's (:func:`model_rankings`)."""
        return self.scores if self.model_scores is None else self.scores.unionByName(self.model_scores)

    def metric(self, table: str, model: str, name: str) -> float:
        frame = self.validation if table == "val" else self.test
        row = frame[frame["model"] == model]
        return float(row[name].iloc[0]) if len(row) else float("nan")

    def flat_metrics(self) -> dict[str, float]:
        """``val.<model>.<metric>``, ``test.<model>.<metric>`` (+ ``.ci_low/.ci_high``), gains, propensity, training."""
        out: dict[str, float] = {}
        for prefix, frame in (("val", self.validation), ("test", self.test)):
            for row in frame.to_dict("records"):
                m = row["model"]
                out[f"{prefix}.{m}.coverage"] = row["coverage"]
                for name in E.RANK_METRICS:
                    out[f"{prefix}.{m}.{name}"] = row[name]
                    out[f"{prefix}.{m}.{name}.ci_low"], out[f"{prefix}.{m}.{name}.ci_high"] = row[f"{name}_lo"], row[f"{name}_hi"]
        for name, (g, lo, hi) in self.gains.items():
            out.update({f"test.gain.{name}": g, f"test.gain.{name}.ci_low": lo, f"test.gain.{name}.ci_high": hi})
        for name, pm in self.propensity.items():
            out.update(pm.flat(f"test.propensity.{name}"))
        for name, m in self.models.items():
            out.update({f"train.{name}.samples_per_s": m.samples_per_second, f"train.{name}.epochs": float(len(m.results[0].loss)),
                        f"train.{name}.best_epoch": float(m.best_epoch), f"train.{name}.launch_seconds": m.launch_seconds,
                        f"train.{name}.replicas_identical": float(m.replicas_identical)})
        out["n_items"] = float(len(self.vocabulary.items))
        out["n_customers"] = float(self.n_customers)
        return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(v)}


def model_config(kind: str, params: SequenceParams, n_items: int) -> dict[str, Any]:
    """Builder arguments of a model kind (see :func:`marketlab.sequence.models.build`)."""
    seed = params.train.seed
    if kind == "vae":
        v = params.vae
        return dict(n_items=n_items, hidden=v.hidden, latent=v.latent, dropout=v.dropout, beta=v.beta, seed=seed)
    t = params.transformer
    return dict(n_items=n_items, max_len=t.max_len, dim=t.dim, heads=t.heads, blocks=t.blocks, dropout=t.dropout, seed=seed)


def popularity(hist: DataFrame, vocab: encode.Vocabulary, before_day: int) -> np.ndarray:
    """Distinct customers per vocabulary index, over every customer's history before ``before_day``."""
    index = vocab.index()
    rows = (data.cut(hist, end=before_day).select(C.CUSTOMER_KEY, F.explode(F.array_distinct(data.ITEMS)).alias("i"))
            .groupBy("i").count().collect())
    pop = np.zeros(vocab.size, np.float64)
    for r in rows:
        if r["i"] in index:
            pop[index[r["i"]]] = r["count"]
    return pop


def train_models(spark, launcher: Launcher, params: SequenceParams, split: data.Split, vocab: encode.Vocabulary,
                 staged: DataFrame, stage_uri: str, checkpoint_dir: str) -> dict[str, TrainedSequenceModel]:
    """Train every configured model (and the shuffle test's Transformer) in one ``run_many``.

    Raises:
        BadInputError: A shard without examples (too few customers for the workers).
    """
    tp, w = params.train, params.train.num_workers
    plan = [(k, False) for k in params.models]
    if params.shuffle_test and "transformer" in params.models:
        plan.append(("transformer", True))
    specs, meta = [], []
    counts = data.examples_per_shard(staged, split, w)
    for kind, shuffle in plan:
        per_shard = counts[kind]
        if min(per_shard) == 0:
            raise BadInputError(f"sequence: a training shard has no {kind} example ({per_shard} per shard for {w} workers); "
                                "too few customers with history before the validation cutoff")
        steps = max(1, min(per_shard) // tp.batch_size)
        steps = min(steps, tp.max_steps_per_epoch) if tp.max_steps_per_epoch else steps
        config = model_config(kind, params, vocab.size)
        specs.append(SequenceTrainSpec(
            kind=kind, stage_uri=stage_uri, vocabulary=vocab.items, config=config, val_cutoff=split.val_cutoff,
            cutoff=split.cutoff, horizon_days=split.horizon, epochs=tp.epochs, patience=tp.patience, steps_per_epoch=steps,
            batch_size=tp.batch_size, learning_rate=tp.learning_rate, buy_weight=params.transformer.buy_weight,
            max_val_customers=params.max_val_customers, shuffle_history=shuffle, checkpoint_dir=checkpoint_dir,
            seed=tp.seed, use_gpu=tp.use_gpu, threads=tp.threads_per_worker))
        meta.append((kind + ("_shuffled" if shuffle else ""), config, steps, per_shard))
    t0 = time.perf_counter()
    results = launcher.run_many(spark, specs, w)
    launch_s = time.perf_counter() - t0
    return {name: TrainedSequenceModel(name.split("_")[0], config, res, steps, per_shard, launch_s)
            for (name, config, steps, per_shard), res in zip(meta, results)}


def _collect_eval(hist: DataFrame, split: data.Split, cap: int) -> pd.DataFrame:
    # The evaluated customers: those with history before the test cutoff, the smallest
    # key hashes up to the cap (a fixed sample, the same in every run).
    cand = data.cut(hist, end=split.end).where(F.array_min(data.DAYS) < F.lit(split.cutoff))
    return cand.orderBy(F.crc32(C.CUSTOMER_KEY), C.CUSTOMER_KEY).limit(cap).toPandas()


def _model_scores(models: dict[str, TrainedSequenceModel], hs, as_of: int, n_items: int, max_len: int):
    from marketlab.sequence.models import build, predict

    out, buy = {}, None
    for name, m in models.items():
        model = build(m.kind, m.config)
        model.set_weights(m.weights)
        x = encode.multi_hot(hs, n_items) if m.kind == "vae" else encode.sequence_inputs(hs, max_len, as_of)
        if name == "transformer_shuffled":
            rng = np.random.default_rng(0)
            x = encode.sequence_inputs([encode.shuffled(i, d, rng) for i, d in hs], max_len, as_of)
        out[name], p = predict(model, m.kind, x)
        if name == "transformer":
            buy = p
    return out, buy


def _evaluate_at(frame, vocab, models, pop, sim, as_of: int, end: int, params: SequenceParams):
    """Rank metrics of every model and baseline for the customers with targets in ``[as_of, end)``."""
    index = vocab.index()
    full = [encode.to_indices(list(i), list(d), index) for i, d in zip(frame[data.ITEMS], frame[data.DAYS])]
    raw = list(zip(frame[data.ITEMS], frame[data.DAYS]))
    # Distinct items bought in the window, the vocabulary's or not: unknown ones are misses.
    n_targets = np.array([len({it for it, d in zip(i, ds) if as_of <= d < end}) for i, ds in raw])
    had_history = np.array([bool(np.any(np.asarray(ds) < as_of)) for _, ds in raw])
    inputs = [encode.before(i, d, as_of) for i, d in full]
    targets = [encode.window(i, d, as_of, end) for i, d in full]
    keep = [r for r in range(len(full)) if n_targets[r] > 0 and had_history[r]]
    inputs_k = [inputs[r] for r in keep]
    scores, _ = _model_scores(models, inputs_k, as_of, vocab.size, params.transformer.max_len)
    scores.update({"popular": B.popular_scores(len(keep), pop), "repeat": B.repeat_scores(inputs_k, pop),
                   "itemcf": B.itemcf_scores(inputs_k, sim, pop)})
    per = {name: E.ranking_metrics(s, [targets[r] for r in keep], n_targets[keep], k=params.top_k) for name, s in scores.items()}
    cover = {name: E.coverage(s, params.top_k) for name, s in scores.items()}
    return per, cover


def model_rankings(hist: DataFrame, models: dict[str, TrainedSequenceModel], vocab: encode.Vocabulary,
                   split: data.Split, served: str, top_k: int, max_len: int) -> DataFrame | None:
    """Each trained model's top-k at the validation cutoff and at the end of the data.

    At the validation cutoff the histories are cut before it, and the weights were fitted
    on baskets before it, so a consumer may evaluate these rows on any window that starts
    at or after ``as_of`` without look-ahead. Customers a model cannot score (nothing in
    the vocabulary) are left out (``source`` is always the model); the served ranking at
    the end of the data is already in ``scores`` and is not repeated.
    """
    out = None
    for kind in (k for k in models if not k.endswith("_shuffled")):
        m = models[kind]
        for day in (split.val_cutoff, split.last_day + 1):
            if day == split.last_day + 1 and kind == served:
                continue
            serve = Served(source=kind, vocabulary=vocab.items, popularity=popularity(hist, vocab, day),
                           models={kind: (m.config, m.weights)}, max_len=max_len)
            rows = score_all(data.cut(hist, end=day), serve, day, top_k, split.horizon).where(F.col("source") == kind)
            out = rows if out is None else out.unionByName(rows)
    return out


def run(lake: Lake, params: SequenceParams, launcher: Launcher | None = None, work_uri: str | None = None,
        checkpoint_path: str | None = None) -> SequenceResult:
    """Train, evaluate and score the sequence models.

    Args:
        lake: The lake (reads ``params.input_table``).
        params: Job parameters.
        launcher: Training launcher (default: the one of ``params.train.backend``).
        work_uri: Folder for the staged histories and checkpoints of this run (default:
            ``<lake_root>/<staging_dir>/run``); the caller removes it.
        checkpoint_path: Local or mounted folder for the best weights of each model
            (default: ``<lake_root>/<checkpoint_dir>``).

    Returns:
        Evaluation tables, the trained models, and the output rows (not yet written).

    Raises:
        BadInputError: No baskets, an empty training window, a vocabulary over the
            softmax limit, or too few customers for the workers.
    """
    spark = lake.spark
    tp = params.train
    launcher = launcher or get_launcher(tp.backend, tp.start_timeout_s)
    root = lake.settings.resolve(lake.settings.lake_root).rstrip("/")
    work = work_uri or f"{root}/{params.staging_dir}/run"
    t = {}
    t0 = time.perf_counter()
    hist = data.histories(lake.read(params.input_table)).cache()
    split = data.plan_split(hist, params.horizon_days, params.cutoff)
    vocab = data.vocabulary(hist, split.val_cutoff, params.min_item_count, params.max_items)
    staged = data.stage(hist, split, tp.num_workers, f"{work}/histories")
    t["prep"] = time.perf_counter() - t0
    log.info("sequence: split %s, %d items", split.describe(), len(vocab.items))

    t0 = time.perf_counter()
    # Rank 0 writes the best weights there with numpy (a local or mounted path).
    ckpt = (checkpoint_path or f"{root}/{params.checkpoint_dir}").replace("file://", "").replace("file:", "")
    models = train_models(spark, launcher, params, split, vocab, staged, f"{work}/histories", ckpt)
    t["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    frame = _collect_eval(hist, split, params.max_eval_customers)
    h = split.horizon
    pop_val, pop_test = popularity(hist, vocab, split.val_cutoff), popularity(hist, vocab, split.cutoff)
    sim_val = B.item_similarity_matrix(hist, vocab, split.val_cutoff, params.item_cf_neighbours)
    sim_test = B.item_similarity_matrix(hist, vocab, split.cutoff, params.item_cf_neighbours)
    val_per, val_cov = _evaluate_at(frame, vocab, models, pop_val, sim_val, split.val_cutoff, split.cutoff, params)
    test_per, test_cov = _evaluate_at(frame, vocab, models, pop_test, sim_test, split.cutoff, split.end, params)
    n_boot, lvl = params.bootstrap, params.ci_level
    validation = E.summarize(val_per, val_cov, n_boot, lvl)
    test = E.summarize(test_per, test_cov, n_boot, lvl)
    g = params.gate_metric
    base_val = validation[validation["model"].isin(B.BASELINES)]
    best_baseline = str(base_val.sort_values(g, ascending=False)["model"].iloc[0])
    servable = validation[~validation["model"].str.endswith("_shuffled")]
    served = str(servable.sort_values(g, ascending=False)["model"].iloc[0])
    gains = {}
    for name in models:
        if name in test_per and not name.endswith("_shuffled"):
            gains[f"{name}_vs_{best_baseline}"] = E.relative_gain(test_per[name][g].to_numpy(),
                                                                  test_per[best_baseline][g].to_numpy(), n_boot, lvl)
    if "transformer" in test_per and "transformer_shuffled" in test_per:
        gains["transformer_vs_shuffled"] = E.relative_gain(test_per["transformer"][g].to_numpy(),
                                                           test_per["transformer_shuffled"][g].to_numpy(), n_boot, lvl)

    # Propensity at the test cutoff: every evaluated customer, bought in [cutoff, end) or not.
    index = vocab.index()
    full = [(np.asarray([index.get(i, 0) for i in it], np.int32), np.asarray(d, np.int32))
            for it, d in zip(frame[data.ITEMS], frame[data.DAYS])]
    y = B.bought_in(full, split.cutoff, split.end)
    propensity = {}
    if "transformer" in models:
        inputs = [encode.before(i[i > 0], d[i > 0], split.cutoff) for i, d in full]
        _, p = _model_scores({"transformer": models["transformer"]}, inputs, split.cutoff, vocab.size,
                             params.transformer.max_len)
        propensity["transformer"] = E.propensity_metrics(y, p, n_boot, lvl)
    lr = B.fit_rfm_propensity(full, split.val_cutoff - h, h)
    if lr is not None:
        propensity["rfm_logreg"] = E.propensity_metrics(y, lr.predict_proba(B.rfm_features(full, split.cutoff))[:, 1],
                                                        n_boot, lvl)
    t["evaluate"] = time.perf_counter() - t0

    served_models = {k: (m.config, m.weights) for k, m in models.items() if k in ("transformer", served)}
    as_of = split.last_day + 1
    serve = Served(source=served, vocabulary=vocab.items, popularity=popularity(hist, vocab, as_of), models=served_models,
                   similarity=B.item_similarity_matrix(hist, vocab, as_of, params.item_cf_neighbours) if served == "itemcf" else None,
                   max_len=params.transformer.max_len)
    scores = score_all(hist, serve, as_of, params.top_k, h)
    extra = model_rankings(hist, models, vocab, split, served, params.top_k, params.transformer.max_len)
    return SequenceResult(split=split, vocabulary=vocab, models=models, validation=validation, test=test, gains=gains,
                          propensity=propensity, served=served, best_baseline=best_baseline, scores=scores,
                          n_customers=int(frame.shape[0]), seconds=t, model_scores=extra)
