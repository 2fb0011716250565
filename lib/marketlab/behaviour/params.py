"""Parameters of the behaviour job (conf: `jobs.behaviour` in conf/base/params/behaviour.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel


class GridParams(StrictModel):
    """Tuning grid of the two learners (every combination is cross-validated).

    Attributes:
        lr_reg_param: Logistic regression ``regParam`` values.
        lr_elastic_net: Logistic regression ``elasticNetParam`` values.
        gbt_max_depth: GBT ``maxDepth`` values.
        gbt_max_iter: GBT ``maxIter`` values.
        gbt_step_size: GBT learning rate values.
    """

    lr_reg_param: list[float] = Field(default_factory=lambda: [0.001, 0.01, 0.1], min_length=1)
    lr_elastic_net: list[float] = Field(default_factory=lambda: [0.0, 0.5], min_length=1)
    gbt_max_depth: list[int] = Field(default_factory=lambda: [3, 5], min_length=1)
    gbt_max_iter: list[int] = Field(default_factory=lambda: [50], min_length=1)
    gbt_step_size: list[float] = Field(default_factory=lambda: [0.1], min_length=1)


class BehaviourParams(StrictModel):
    """Parameters of the purchase-intent classifier (Online Shoppers sessions).

    Attributes:
        input_table: Sessions (``silver.sessions`` contract).
        output_table: Scored sessions (``gold.purchase_intent``).
        models: Learners to tune and compare (``lr`` logistic regression, ``gbt``
            gradient-boosted trees).
        train_fraction: Share of sessions to fit and cross-validate on.
        valid_fraction: Share used only to choose the decision threshold; the rest is the
            test set every reported metric comes from.
        seed: Seed of the split (hash of the session id), the folds and the learners.
        num_folds: k of the k-fold cross-validation.
        parallelism: Fits run at once: the learners are tuned side by side, and each
            CrossValidator fits its grid points in parallel.
        tuning_metric: ``areaUnderPR`` (suits a 15% positive class) or ``areaUnderROC``.
        class_weight: ``balanced`` weights each class by n / (2 n_class); ``none`` no weights.
        cost_false_positive: Business cost of acting on a session that would not buy (e.g.
            the discount given away).
        cost_false_negative: Business cost of missing a session that would buy (e.g. the
            margin of a lost conversion).
        threshold_grid: Number of candidate thresholds in (0, 1).
        calibration_bins: Equal-width bins of the calibration curve.
        page_values_threshold: The PageValues-only baseline predicts purchase when
            ``page_values`` > this value.
        register_model: Register the selected model in MLflow and gate the champion alias.
        model_name: Registered model name.
        promote_margin: Required test PR-AUC gain over the champion to move the alias.
    """

    input_table: str = "silver.sessions"
    output_table: str = "gold.purchase_intent"
    models: list[Literal["lr", "gbt"]] = Field(default_factory=lambda: ["lr", "gbt"], min_length=1)
    train_fraction: float = Field(0.6, gt=0.0, lt=1.0)
    valid_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 42
    num_folds: int = Field(3, ge=2)
    parallelism: int = Field(2, ge=1)
    tuning_metric: Literal["areaUnderPR", "areaUnderROC"] = "areaUnderPR"
    class_weight: Literal["balanced", "none"] = "balanced"
    cost_false_positive: float = Field(1.0, ge=0.0)
    cost_false_negative: float = Field(5.0, ge=0.0)
    threshold_grid: int = Field(99, ge=9)
    calibration_bins: int = Field(10, ge=2)
    page_values_threshold: float = 0.0
    grid: GridParams = Field(default_factory=GridParams)
    register_model: bool = True
    model_name: str = "marketlab-purchase-intent"
    promote_margin: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> "BehaviourParams":
        if self.train_fraction + self.valid_fraction >= 1.0:
            raise ValueError("train_fraction + valid_fraction must leave a test share (< 1)")
        if self.cost_false_positive + self.cost_false_negative <= 0:
            raise ValueError("cost_false_positive and cost_false_negative cannot both be 0")
        return self
