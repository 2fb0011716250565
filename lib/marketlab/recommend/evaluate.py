"""Evaluate several recommenders on one split through the same scorer, and tune ALS.

Every model sees the same training pairs, is scored on the same held-out users with the
same candidate set and exclusion rule, so the numbers in one run are comparable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import optuna
import scipy.sparse as sp
from pyspark.sql import DataFrame

from marketlab.recommend import metrics as M
from marketlab.recommend.data import USER_IDX
from marketlab.recommend.models import als_side, content_side, fit_als, itemcf_side, item_popularity, popular_side
from marketlab.recommend.params import AlsParams
from marketlab.recommend.score import ItemSide, score_users, user_frame

log = logging.getLogger(__name__)

ALL_MODELS = ("popular", "itemcf", "content", "als", "blend")


@dataclass
class EvalConfig:
    """How to evaluate: cut-offs, bought-item rule, baselines' knobs."""

    k: int = 10
    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 50])
    bought: str = "exclude"
    bought_weight: float = 0.5
    content_weight: float = 0.1
    content_neighbours: int = 10
    cf_neighbours: int = 50
    cf_max_items_per_user: int = 300
    cf_local_max_pairs: int = 20_000_000
    with_auc: bool = True


def evaluate_side(side: ItemSide, users: DataFrame, test: DataFrame, popularity: np.ndarray, n_train_users: int,
                  cfg: EvalConfig) -> dict[str, float]:
    """Metrics of one model on held-out pairs.

    Args:
        side: The model's item side.
        users: Output of :func:`user_frame` for the held-out users (with factors for ALS).
        test: ``user_idx, item_idx`` held-out pairs.
        popularity: Training users per item (novelty).
        n_train_users: Number of training users (novelty).
        cfg: Evaluation settings.
    """
    recs = score_users(users, side, max(cfg.ks), cfg.bought, cfg.bought_weight, with_auc=cfg.with_auc).cache()
    frame = M.ranking_frame(recs, test)
    out = M.ranking_metrics(frame, cfg.ks)
    out["n_users"] = float(frame.count())
    if cfg.with_auc:
        aucs = np.array([r["auc"] for r in recs.select("auc").where("auc is not null").collect()], dtype=np.float64)
        mean, lo, hi = M.mean_ci(aucs)
        out.update({"auc": mean, "auc_ci_low": lo, "auc_ci_high": hi, "auc_users": float(len(aucs))})
    out[f"coverage_at_{cfg.k}"] = M.coverage(recs, side.n_items, cfg.k)
    out[f"novelty_at_{cfg.k}"] = M.novelty(recs, popularity, n_train_users, cfg.k)
    frame.unpersist()
    recs.unpersist()
    return out


def evaluate_models(
    train: DataFrame,
    test: DataFrame,
    n_items: int,
    als_params: AlsParams,
    cfg: EvalConfig,
    tfidf: sp.csr_matrix | None = None,
    checkpoint_dir: str | None = None,
    models: tuple[str, ...] = ALL_MODELS,
) -> dict[str, dict[str, float]]:
    """Fit and evaluate the named models on one split.

    Only held-out users that also appear in training are scored (warm users; cold users
    are the popularity fallback's job and are counted separately by the caller).

    Returns:
        ``{model: {metric: value}}``.
    """
    train = train.cache()
    warm_test = test.join(train.select(USER_IDX).distinct(), USER_IDX, "left_semi").cache()
    popularity = item_popularity(train, n_items)
    n_train_users = train.select(USER_IDX).distinct().count()
    results: dict[str, dict[str, float]] = {}
    base_users = user_frame(train, warm_test).cache()
    model = None
    for name in models:
        if name == "popular":
            side = popular_side(train, n_items)
            users = base_users
        elif name == "itemcf":
            side = itemcf_side(train, n_items, cfg.cf_neighbours, cfg.cf_max_items_per_user, cfg.cf_local_max_pairs)
            users = base_users
        elif name == "content":
            if tfidf is None:
                continue
            side, users = content_side(tfidf), base_users
        else:
            if model is None:
                model = fit_als(train, als_params, checkpoint_dir)
            weight = cfg.content_weight if name == "blend" else 0.0
            if name == "blend" and (tfidf is None or weight == 0):
                continue
            side = als_side(model, n_items, tfidf if name == "blend" else None, weight, cfg.content_neighbours)
            users = user_frame(train, warm_test, model.userFactors)
        results[name] = evaluate_side(side, users, warm_test, popularity, n_train_users, cfg)
        log.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items() if k.endswith(f"_{cfg.k}") or k == "auc"})
    base_users.unpersist()
    warm_test.unpersist()
    train.unpersist()
    return results


def tune_als(
    train: DataFrame,
    validation: DataFrame,
    n_items: int,
    base: AlsParams,
    cfg: EvalConfig,
    n_trials: int,
    metric: str,
    ranges: dict[str, tuple[float, float]],
    seed: int = 0,
    checkpoint_dir: str | None = None,
) -> tuple[AlsParams, float, optuna.Study]:
    """Optuna (TPE, seeded) search of ALS hyper-parameters on a validation slice.

    Args:
        train: Training pairs strictly before the validation slice.
        validation: Held-out pairs of the validation slice (never the test window).
        n_items: Catalogue size.
        base: Starting parameters (also the first trial, so tuning never does worse on
            validation than the configured defaults).
        cfg: Evaluation settings (k).
        n_trials: Trials.
        metric: ``map_at_k`` / ``ndcg_at_k`` / ``precision_at_k`` / ``recall_at_k``.
        ranges: ``rank``, ``reg_param``, ``alpha``, ``max_iter`` -> ``(low, high)``.
        seed: Sampler seed.
        checkpoint_dir: ALS checkpoint folder.

    Returns:
        ``(best params, best validation value, study)``.
    """
    key = metric.replace("_k", f"_{cfg.k}")
    vcfg = EvalConfig(**{**cfg.__dict__, "ks": [cfg.k], "with_auc": False})
    train = train.cache()
    warm_val = validation.join(train.select(USER_IDX).distinct(), USER_IDX, "left_semi").cache()
    popularity = item_popularity(train, n_items)
    n_train_users = train.select(USER_IDX).distinct().count()
    lo_r, hi_r = int(ranges["rank"][0]), int(ranges["rank"][1])
    hi_r = lo_r + (hi_r - lo_r) // 8 * 8  # ranks in steps of 8: the highest one on that grid

    def objective(trial: optuna.Trial) -> float:
        p = base.model_copy(update={
            "rank": trial.suggest_int("rank", lo_r, hi_r, step=8),
            "reg_param": trial.suggest_float("reg_param", *ranges["reg_param"], log=True),
            "alpha": trial.suggest_float("alpha", *ranges["alpha"], log=True),
            "max_iter": trial.suggest_int("max_iter", int(ranges["max_iter"][0]), int(ranges["max_iter"][1])),
        })
        model = fit_als(train, p, checkpoint_dir)
        users = user_frame(train, warm_val, model.userFactors)
        res = evaluate_side(als_side(model, n_items), users, warm_val, popularity, n_train_users, vcfg)
        return res[key]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start_rank = min(max(lo_r + ((base.rank - lo_r) // 8) * 8, lo_r), hi_r)
    study.enqueue_trial({
        "rank": start_rank,
        "reg_param": float(np.clip(base.reg_param, *ranges["reg_param"])),
        "alpha": float(np.clip(base.alpha, *ranges["alpha"])),
        "max_iter": int(np.clip(base.max_iter, *ranges["max_iter"])),
    })
    study.optimize(objective, n_trials=n_trials)
    best = base.model_copy(update=study.best_params)
    train.unpersist()
    warm_val.unpersist()
    return best, float(study.best_value), study
