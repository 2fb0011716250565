"""Parameters of the recommend job (conf: `jobs.recommend` in conf/base/params/recommend.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class AlsParams(StrictModel):
    """Hyper-parameters of implicit-feedback ALS (Hu, Koren, Volinsky 2008).

    Attributes:
        rank: Number of latent factors.
        reg_param: L2 regularisation (Spark scales it by the number of ratings per row).
        alpha: Confidence scale: c = 1 + alpha * strength.
        max_iter: ALS sweeps.
        num_blocks: User and item blocks; 0 lets Spark pick (default parallelism). On one
            machine few blocks avoid shuffling factor copies between many tiny tasks.
        checkpoint_interval: Checkpoint the factor RDDs every N iterations, which cuts the
            lineage that otherwise overflows the stack on long runs.
        log_strength: Use log1p(strength) as the implicit rating; bulk orders of thousands
            of units otherwise dominate the confidence.
        seed: Seed of the factor initialisation.
    """

    rank: int = Field(32, ge=1, le=512)
    reg_param: float = Field(0.1, ge=0.0)
    alpha: float = Field(15.0, gt=0.0)
    max_iter: int = Field(15, ge=1, le=200)
    num_blocks: int = Field(2, ge=0)
    checkpoint_interval: int = Field(5, ge=1)
    log_strength: bool = True
    seed: int = 0


class TuningParams(StrictModel):
    """Optuna search over ALS hyper-parameters on a validation slice of the training time.

    Attributes:
        enabled: Run the search (otherwise the `als` block is used as is).
        n_trials: Optuna trials (TPE sampler, seeded).
        metric: Validation metric to maximise (`map_at_k`, `ndcg_at_k`, `precision_at_k`).
        rank / reg_param / alpha / max_iter: Search ranges ``[low, high]`` (reg and alpha
            are searched on a log scale).
        seed: Sampler seed.
    """

    enabled: bool = False
    n_trials: int = Field(8, ge=1)
    metric: Literal["map_at_k", "ndcg_at_k", "precision_at_k", "recall_at_k"] = "map_at_k"
    rank: tuple[int, int] = (16, 96)
    reg_param: tuple[float, float] = (0.01, 1.0)
    alpha: tuple[float, float] = (1.0, 60.0)
    max_iter: tuple[int, int] = (8, 20)
    seed: int = 0


class RecommendParams(StrictModel):
    """Parameters of the recommend job.

    Attributes:
        interactions_table / item_features_table / segments_table / order_lines_table:
            Catalog names of the inputs (gold interactions and items, segments for cold
            start, silver order lines for the event-level temporal evaluation).
        output_table: Catalog name of the top-k recommendations.
        sequence_scores_table: Catalog name of the sequence stage's rankings (optional
            input: a candidate source when it has a validation slice).
        selection_metric: Validation metric (at ``k``) that chooses the served source
            among ALS, the blend, the baselines and the sequence sources.
        k: Recommendations per customer (and the k of the ranking metrics).
        k_curve: Cut-offs of the logged metric@k curves.
        bought: `exclude` removes items the customer already bought, `downweight`
            multiplies their score by `bought_weight`, `keep` leaves them.
        bought_weight: Multiplier of already-bought items under `downweight`.
        temporal_test_days: Days after the cutoff that form the temporal test window
            (the cutoff is the last event minus this).
        validation_days: Days before the cutoff that form the tuning validation window.
        hide_fraction / hide_seed: Per-user random hide protocol (published comparison).
        hide_min_items: Users with fewer distinct items keep all of them in training.
        content_weight: Weight of the TF-IDF content score in the blend.
        content_neighbours: Warm neighbours whose factors a cold item inherits.
        min_df: Minimum document frequency of a description term.
        vocab_size: Maximum TF-IDF vocabulary.
        cf_neighbours / cf_max_items_per_user: Item-item CF baseline (top neighbours per
            item; at most this many items per user enter the co-occurrence count).
        cf_local_max_pairs: Item-item CF: while the capped baskets have at most this many
            rows and distinct item pairs, co-occurrence is counted on the driver (scipy);
            above it, in Spark (self-join).
        segment_popular: Cold customers get the popular items of their segment.
        checkpoint_subdir: ALS checkpoint folder, relative to the lake root (a temp path,
            never the repository).
        model_name: Registered MLflow model name.
        gate_metric / gate_margin: Metric-gated `champion` alias: a metric the job logs
            (``temporal.<model>.<metric>``, or ``val_<metric>`` when tuning is on) and the
            absolute improvement required over the current champion.
        evaluate_random_hide: Also run the per-user random hide-20 % protocol.
    """

    interactions_table: str = "gold.interactions"
    item_features_table: str = "gold.item_features"
    segments_table: str = "gold.segments"
    order_lines_table: str = "silver.order_lines"
    output_table: str = "gold.recommendations"
    sequence_scores_table: str = "gold.sequence_scores"
    selection_metric: Literal["map_at_k", "ndcg_at_k", "precision_at_k", "recall_at_k"] = "map_at_k"
    k: int = Field(10, ge=1, le=500)
    k_curve: list[int] = Field(default_factory=lambda: [1, 5, 10, 20, 50])
    bought: Literal["exclude", "downweight", "keep"] = "exclude"
    bought_weight: float = Field(0.5, ge=0.0, le=1.0)
    temporal_test_days: int = Field(30, ge=1)
    validation_days: int = Field(30, ge=1)
    hide_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    hide_seed: int = 0
    hide_min_items: int = Field(2, ge=2)
    content_weight: float = Field(0.1, ge=0.0, le=1.0)
    content_neighbours: int = Field(10, ge=1)
    min_df: int = Field(2, ge=1)
    vocab_size: int = Field(4096, ge=16)
    cf_neighbours: int = Field(50, ge=1)
    cf_max_items_per_user: int = Field(300, ge=2)
    cf_local_max_pairs: int = Field(20_000_000, ge=0)
    segment_popular: bool = True
    checkpoint_subdir: str = "_tmp/checkpoints/recommend"
    als: AlsParams = Field(default_factory=AlsParams)
    tuning: TuningParams = Field(default_factory=TuningParams)
    model_name: str = "marketlab-recommender-als"
    gate_metric: str = "temporal.als.map_at_10"
    gate_margin: float = Field(0.002, ge=0.0)
    evaluate_random_hide: bool = True

    @model_validator(mode="after")
    def _check(self) -> "RecommendParams":
        if self.checkpoint_subdir.startswith("/") or ".." in self.checkpoint_subdir.split("/"):
            raise ValueError("checkpoint_subdir must be a relative path inside the lake root")
        if self.k not in self.k_curve:
            raise ValueError(f"k_curve must contain k={self.k}")
        # A gate on a metric the run does not log would compare NaN and always promote.
        if self.gate_metric.startswith("val_") and not self.tuning.enabled:
            raise ValueError(f"gate_metric '{self.gate_metric}' is a validation metric, which only a tuning run "
                             "logs: set tuning.enabled=true or gate on a temporal.* metric")
        return self
