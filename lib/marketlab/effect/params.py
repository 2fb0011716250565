"""Parameters of the effect job (conf: `jobs.effect` in conf/base/params/effect.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from marketlab.params_base import StrictModel

Learner = Literal["t_learner", "x_learner", "class_transformation"]
BaseModel = Literal["gbt", "rf", "logreg"]


class EffectParams(StrictModel):
    """Parameters of the effect job.

    Attributes:
        input_table: Cleaned campaign log (contract: silver.campaign_log).
        output_table: Per customer x action x outcome predicted uplift.
        control: Treatment value of the control arm.
        arms: Treatment arms modelled against ``control`` (each must be present).
        outcomes: Outcome columns; binary ones (visit, conversion) also get the
            class-transformation learner, continuous ones (spend) its transformed-outcome
            regression variant.
        learners: Meta-learners fitted per arm x outcome.
        base_model: Spark ML estimator family used inside every learner.
        max_iter: Boosting rounds (gbt) / trees (rf) / iterations (logreg).
        max_depth: Tree depth (gbt, rf).
        validation_fraction: Share of customers held out (hash split on the id, so a
            customer is always on the same side across runs).
        seed: Seed of the split, the models and the bootstrap.
        bootstrap: Poisson-bootstrap replicates for metric CIs (0 = no CIs).
        ks: Fractions for uplift@k.
        calibration_bins: Bins (by predicted uplift) of the calibration table.
        selection_metric: Metric that picks the learner written to gold (on the
            selection rows) and gates the registered model (on the held-out rows).
        selection_fraction: Share of the training customers kept out of the fits to
            choose the learner (hash split with its own salt); the held-out rows only
            report.
        register_models: Register the selected model per arm x outcome in MLflow.
        promote_margin: Required Qini improvement over the champion to move the alias.
        parallelism: Arm x outcome pairs fitted at the same time (driver threads). The
            campaign is small, so one fit's Spark jobs are a task or two each and leave
            cores idle; concurrent fits fill them. Results do not depend on it.
    """

    input_table: str = "silver.campaign_log"
    output_table: str = "gold.uplift_scores"
    control: str = "No E-Mail"
    arms: list[str] = Field(default_factory=lambda: ["Mens E-Mail", "Womens E-Mail"], min_length=1)
    outcomes: list[Literal["visit", "conversion", "spend"]] = Field(
        default_factory=lambda: ["visit", "conversion", "spend"], min_length=1)
    learners: list[Learner] = Field(default_factory=lambda: ["t_learner", "x_learner", "class_transformation"],
                                    min_length=1)
    base_model: BaseModel = "rf"
    max_iter: int = Field(40, ge=1)
    max_depth: int = Field(4, ge=1, le=30)
    validation_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    seed: int = 42
    bootstrap: int = Field(100, ge=0)
    ks: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3])
    calibration_bins: int = Field(10, ge=2)
    selection_metric: Literal["qini_auc", "uplift_auc"] = "qini_auc"
    selection_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    register_models: bool = True
    promote_margin: float = 0.0
    parallelism: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "EffectParams":
        if self.control in self.arms:
            raise ValueError(f"arms: the control arm '{self.control}' cannot also be a treatment arm")
        bad = [k for k in self.ks if not 0.0 < k < 1.0]
        if bad:
            raise ValueError(f"ks: every k must be in (0, 1), got {bad}")
        return self
