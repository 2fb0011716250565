"""Uplift meta-learners on Spark ML estimators (one arm against control).

Every learner fits Spark ML ``PipelineModel`` s (feature encoding + estimator) and adds
one column with the predicted conditional average treatment effect (CATE). The campaign
is randomized, so the propensity of the arm is a constant: the arm's share of the
arm + control rows, estimated on the training rows.

* T-learner: one outcome model per group; uplift = mu1(x) - mu0(x).
* X-learner (Kuenzel et al. 2019): imputed effects D1 = Y1 - mu0(X1) on the treated,
  D0 = mu1(X0) - Y0 on the controls, one regression per group, blended with the
  propensity g: tau = g * tau0 + (1 - g) * tau1.
* Class transformation (Jaskowski & Jaroszewicz 2012) for a binary outcome:
  Z = Y*T + (1-Y)*(1-T) and uplift = 2 P(Z=1|x) - 1, valid for a 50/50 split; with an
  unbalanced split, rows are weighted so both groups carry equal weight.
  For a continuous outcome the transformed-outcome regression (Athey & Imbens 2015):
  Y* = Y (T - p) / (p (1 - p)), E[Y*|x] = tau(x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression, ProbabilisticClassificationModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab.effect.data import FEATURES_COL, TREATED_COL, feature_stages

LABEL = "_label"
WEIGHT = "_w"


def make_estimator(kind: str, classifier: bool, max_iter: int, max_depth: int, seed: int, weighted: bool = False):
    """A Spark ML estimator of the configured family reading ``features`` / ``_label``.

    Args:
        kind: ``gbt``, ``rf`` or ``logreg`` (linear regression when not a classifier);
            ``rf`` is always a regression forest (see below).
        classifier: Classifier (probability output) or regressor.
        max_iter: Boosting rounds / trees / solver iterations.
        max_depth: Tree depth.
        seed: Random seed.
        weighted: Read row weights from ``_w``.
    """
    common = dict(featuresCol=FEATURES_COL, labelCol=LABEL)
    if weighted:
        common["weightCol"] = WEIGHT
    if kind == "gbt":
        cls = GBTClassifier if classifier else GBTRegressor
        return cls(maxIter=max_iter, maxDepth=max_depth, stepSize=0.1, subsamplingRate=0.8, seed=seed, **common)
    if kind == "rf":
        # A regression forest on the 0/1 label estimates P(y=1) too. Spark's classification
        # trees merge sibling leaves that predict the same class, so with a rare outcome
        # (visit 15 %, conversion 1 %) every tree collapses to its root and the forest's
        # "probability" is one constant for all rows: no ranking, Qini exactly 0.
        return RandomForestRegressor(numTrees=max_iter, maxDepth=max_depth, minInstancesPerNode=20, seed=seed,
                                     **common)
    if kind == "logreg":
        if classifier:
            return LogisticRegression(maxIter=max_iter, regParam=1e-3, **common)
        return LinearRegression(maxIter=max_iter, regParam=1e-3, **common)
    raise ValueError(f"unknown base model '{kind}'")


def _fit(df: DataFrame, label: str | F.Column, est) -> PipelineModel:
    lab = F.col(label) if isinstance(label, str) else label
    return Pipeline(stages=[*feature_stages(), est]).fit(df.withColumn(LABEL, lab.cast("double")))


def _predict(model: PipelineModel, df: DataFrame, out_col: str, classifier: bool) -> DataFrame:
    """``df`` plus ``out_col``: P(y=1) for a binary outcome, the prediction otherwise.

    A binary outcome may be modelled by a regressor on the 0/1 label (the ``rf`` family),
    whose prediction is then the probability; only a probabilistic classifier has a
    probability column to read.
    """
    est = model.stages[-1]
    pred = model.transform(df)
    probabilistic = classifier and isinstance(est, ProbabilisticClassificationModel)
    value = vector_to_array(F.col(est.getProbabilityCol()))[1] if probabilistic else F.col(est.getPredictionCol())
    return pred.select(*df.columns, value.alias(out_col))


@dataclass
class FittedLearner:
    """A fitted meta-learner for one arm x outcome.

    Attributes:
        name: Learner name.
        binary: Whether the outcome is binary.
        models: Role (``mu0``, ``mu1``, ``tau0``, ``tau1``, ``ct``) -> fitted PipelineModel.
        propensity: Share of treated rows in the training data.
    """

    name: str
    binary: bool
    models: dict[str, PipelineModel] = field(default_factory=dict)
    propensity: float = 0.5

    def predict(self, df: DataFrame, uplift_col: str = "uplift", mu1_col: str | None = None,
                mu0_col: str | None = None) -> DataFrame:
        """Add the predicted uplift (and, where the learner has them, mu1 / mu0).

        Args:
            df: Rows with the feature columns.
            uplift_col: Output column of the CATE.
            mu1_col: Optional output of the treated-outcome model (T- and X-learner).
            mu0_col: Optional output of the control-outcome model (T- and X-learner).
        """
        cols = list(df.columns)
        if self.name == "class_transformation":
            if self.binary:
                out = _predict(self.models["ct"], df, "_pz", classifier=True)
                out = out.withColumn(uplift_col, 2 * F.col("_pz") - 1)
            else:
                out = _predict(self.models["ct"], df, uplift_col, classifier=False)
            extra = [uplift_col]
        else:
            out = _predict(self.models["mu1"], df, "_mu1", self.binary)
            out = _predict(self.models["mu0"], out, "_mu0", self.binary)
            if self.name == "t_learner":
                out = out.withColumn(uplift_col, F.col("_mu1") - F.col("_mu0"))
            else:
                out = _predict(self.models["tau1"], out, "_tau1", classifier=False)
                out = _predict(self.models["tau0"], out, "_tau0", classifier=False)
                g = self.propensity
                out = out.withColumn(uplift_col, F.lit(g) * F.col("_tau0") + F.lit(1 - g) * F.col("_tau1"))
            extra = [uplift_col]
            if mu1_col:
                out = out.withColumn(mu1_col, F.col("_mu1"))
                extra.append(mu1_col)
            if mu0_col:
                out = out.withColumn(mu0_col, F.col("_mu0"))
                extra.append(mu0_col)
        return out.select(*cols, *extra)


def fit_learner(name: str, train: DataFrame, outcome: str, binary: bool, base_model: str = "gbt",
                max_iter: int = 40, max_depth: int = 4, seed: int = 42, treated_col: str = TREATED_COL,
                outcome_models: dict[str, PipelineModel] | None = None) -> FittedLearner:
    """Fit one meta-learner on arm + control rows.

    Args:
        name: ``t_learner``, ``x_learner`` or ``class_transformation``.
        train: Training rows with features, ``outcome`` and the 0/1 ``treated_col``.
        outcome: Outcome column.
        binary: Outcome is 0/1 (classifiers) rather than continuous (regressors).
        base_model: Estimator family (see :func:`make_estimator`).
        max_iter: Boosting rounds / trees.
        max_depth: Tree depth.
        seed: Random seed.
        treated_col: 0/1 arm indicator.
        outcome_models: ``mu1`` / ``mu0`` already fitted on the same ``train`` with the same
            settings (another T- or X-learner's). The T- and X-learner fit the same two
            outcome models, so the second one reuses them instead of fitting them again.

    Returns:
        The fitted learner.
    """
    counts = {r[0]: r[1] for r in train.groupBy(treated_col).count().collect()}
    n1, n0 = counts.get(1, 0), counts.get(0, 0)
    if not n1 or not n0:
        raise ValueError(f"{name}: training rows need both groups, got treated={n1}, control={n0}")
    p = n1 / (n1 + n0)
    fl = FittedLearner(name=name, binary=binary, propensity=p)

    def est(classifier: bool, weighted: bool = False):
        return make_estimator(base_model, classifier, max_iter, max_depth, seed, weighted)

    if name == "class_transformation":
        t = F.col(treated_col)
        if binary:
            z = F.col(outcome) * t + (1 - F.col(outcome)) * (1 - t)
            # Equal total weight per group keeps 2P(Z=1)-1 unbiased when the split is not 50/50.
            w = F.when(t == 1, F.lit(0.5 / p)).otherwise(F.lit(0.5 / (1 - p)))
            data = train.withColumn(WEIGHT, w)
            fl.models["ct"] = _fit(data, z, est(True, weighted=True))
        else:
            ystar = F.col(outcome) * (t - F.lit(p)) / F.lit(p * (1 - p))
            fl.models["ct"] = _fit(train, ystar, est(False))
        return fl

    treated = train.where(F.col(treated_col) == 1)
    control = train.where(F.col(treated_col) == 0)
    if name not in ("t_learner", "x_learner"):
        raise ValueError(f"unknown learner '{name}'")
    if outcome_models:
        fl.models["mu1"], fl.models["mu0"] = outcome_models["mu1"], outcome_models["mu0"]
    else:
        fl.models["mu1"] = _fit(treated, outcome, est(binary))
        fl.models["mu0"] = _fit(control, outcome, est(binary))
    if name == "t_learner":
        return fl
    d1 = _predict(fl.models["mu0"], treated, "_m", binary).withColumn("_d", F.col(outcome) - F.col("_m"))
    d0 = _predict(fl.models["mu1"], control, "_m", binary).withColumn("_d", F.col("_m") - F.col(outcome))
    fl.models["tau1"] = _fit(d1.drop("_m"), "_d", est(False))
    fl.models["tau0"] = _fit(d0.drop("_m"), "_d", est(False))
    return fl
