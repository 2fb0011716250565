"""Parameters of the sequence job (conf: `jobs.sequence` in conf/base/params/sequence.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class SequenceTrainParams(StrictModel):
    """How both sequence models are trained across the cluster (the shared launcher).

    Attributes:
        backend: ``horovod`` (``horovod.spark.run``, gloo on CPU) or ``tf-distribute``
            (``MultiWorkerMirroredStrategy`` in a Spark barrier stage).
        num_workers: Training processes, one Spark task each.
        use_gpu: One GPU per worker where the worker sees one.
        epochs: Most epochs (early stopping usually ends sooner).
        patience: Epochs without a better validation loss before stopping.
        batch_size: Examples per worker and step.
        learning_rate: Adam step for ONE worker; scaled linearly with the workers.
        max_steps_per_epoch: Cap on steps per epoch (None: the smallest shard once).
        threads_per_worker: TensorFlow intra-op threads per worker (0: TensorFlow's default).
        start_timeout_s: Seconds to wait for all workers to start.
        seed: Seed of initialisation and shuffling (same on every worker).
    """

    backend: Literal["horovod", "tf-distribute"] = "horovod"
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    epochs: int = Field(30, ge=1)
    patience: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    max_steps_per_epoch: int | None = Field(None, ge=1)
    threads_per_worker: int = Field(1, ge=0)
    start_timeout_s: int = Field(300, ge=10)
    seed: int = 7


class TransformerParams(StrictModel):
    """SASRec-style Transformer (see :func:`marketlab.sequence.models.build_transformer`)."""

    max_len: int = Field(50, ge=2)
    dim: int = Field(64, ge=2)
    heads: int = Field(2, ge=1)
    blocks: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    buy_weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> "TransformerParams":
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        return self


class VaeParams(StrictModel):
    """Mult-VAE (see :func:`marketlab.sequence.models.build_vae`)."""

    hidden: int = Field(200, ge=1)
    latent: int = Field(64, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    beta: float = Field(0.2, ge=0)


class SequenceParams(StrictModel):
    """Parameters of the sequence job.

    Attributes:
        input_table: Baskets per customer in time order.
        output_table: Top-k next items and the purchase propensity per customer.
        horizon_days: Length of the test window after the cutoff, of the validation
            window before it, and of "buys within" for the propensity.
        cutoff: First day of the test window; None = the last ``horizon_days`` of the data.
        min_item_count: Items bought fewer times before the validation cutoff are left
            out of the vocabulary (their purchases are dropped from inputs).
        max_items: Softmax limit: a larger vocabulary is a clear error, not a slow run
            (raise it, or raise ``min_item_count``).
        models: Models to train (the shuffle test trains one more Transformer).
        shuffle_test: Also train the Transformer on shuffled histories.
        top_k: Items per customer in the output table (and the ranking metrics' k).
        max_eval_customers: Cap of the customers evaluated (smallest key hashes).
        max_val_customers: Cap of the validation slice scored after every epoch.
        bootstrap: Bootstrap replicates over customers for the CIs.
        ci_level: Confidence level of the CIs.
        item_cf_neighbours: Neighbours per item of the item-item CF baseline.
        model_name: Registered name of the Transformer.
        vae_model_name: Registered name of the Mult-VAE.
        gate_metric: Validation metric that gates the ``champion`` alias.
        gate_margin: Required improvement over the champion.
        staging_dir: Folder (under the lake root) for the staged histories of a run.
        checkpoint_dir: Folder (under the lake root) for the best weights of a run.
    """

    input_table: str = "gold.customer_sequences"
    output_table: str = "gold.sequence_scores"
    horizon_days: int = Field(30, ge=1)
    cutoff: dt.date | None = None
    min_item_count: int = Field(1, ge=1)
    max_items: int = Field(5000, ge=2)
    models: list[Literal["transformer", "vae"]] = Field(default_factory=lambda: ["transformer", "vae"])
    shuffle_test: bool = True
    top_k: int = Field(10, ge=1)
    max_eval_customers: int = Field(5000, ge=10)
    max_val_customers: int = Field(2000, ge=10)
    bootstrap: int = Field(500, ge=10)
    ci_level: float = Field(0.95, gt=0, lt=1)
    item_cf_neighbours: int = Field(50, ge=1)
    model_name: str = "marketlab-sequence-transformer"
    vae_model_name: str = "marketlab-sequence-vae"
    gate_metric: Literal["ndcg_at_10", "hr_at_10", "map_at_10", "recall_at_20"] = "ndcg_at_10"
    gate_margin: float = 0.0
    staging_dir: str = "_staging/sequence"
    checkpoint_dir: str = "_checkpoints/sequence"
    train: SequenceTrainParams = Field(default_factory=SequenceTrainParams)
    transformer: TransformerParams = Field(default_factory=TransformerParams)
    vae: VaeParams = Field(default_factory=VaeParams)
