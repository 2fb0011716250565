"""Purchase-intent classifier on browsing sessions: split, features, tuned Spark ML models.

Every model is one ``Pipeline`` (cast -> impute -> index/one-hot -> assemble -> [scale]
-> classifier), so cross-validation refits the preprocessing inside each fold (no
leakage of fold statistics) and the saved model scores raw silver rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StandardScaler, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import CrossValidator, ParamGridBuilder
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from marketlab import constants as C

NUMERIC = ["administrative", "administrative_duration", "informational", "informational_duration",
           "product_related", "product_related_duration", "bounce_rates", "exit_rates", "page_values", "special_day"]
CATEGORICAL = ["month", "visitor_type", "operating_systems", "browser", "region", "traffic_type"]
BOOLEAN = ["weekend"]
WEIGHT = "class_weight"
SCORE = "probability_1"


def split_sessions(df: DataFrame, train_fraction: float, valid_fraction: float, seed: int,
                   id_col: str = C.SESSION_ID) -> DataFrame:
    """Add ``split`` in {train, valid, test} by a seeded hash of the session id.

    The hash makes the split independent of partitioning and row order, so a rerun puts
    every session on the same side. Online Shoppers has no year, so a time split is not
    possible; sessions are exchangeable, and a randomized split is the proper one.
    """
    u = F.pmod(F.xxhash64(F.lit(seed), F.col(id_col)), F.lit(1_000_000)).cast("double") / 1_000_000
    return df.withColumn("split", F.when(u < train_fraction, "train")
                         .when(u < train_fraction + valid_fraction, "valid").otherwise("test"))


def add_class_weights(df: DataFrame, counts: dict[int, int], mode: str = "balanced", label_col: str = C.LABEL) -> DataFrame:
    """Add ``class_weight``: n / (2 n_class) per row for ``balanced`` (sklearn's rule), else 1.

    Args:
        df: Rows with a 0/1 label.
        counts: Class counts of the training data (weights come from training only).
        mode: ``balanced`` or ``none``.
        label_col: Label column.
    """
    if mode == "none":
        return df.withColumn(WEIGHT, F.lit(1.0))
    n = counts[0] + counts[1]
    w0, w1 = n / (2.0 * counts[0]), n / (2.0 * counts[1])
    return df.withColumn(WEIGHT, F.when(F.col(label_col) == 1, F.lit(w1)).otherwise(F.lit(w0)))


def feature_stages(numeric: list[str] = NUMERIC, categorical: list[str] = CATEGORICAL, boolean: list[str] = BOOLEAN,
                   scale: bool = False) -> list:
    """Preprocessing stages ending in a ``features`` vector.

    Null numerics (the -1 durations set to null by cleaning) get the training median;
    categorical values unseen in training go to an extra "unknown" slot.
    """
    # Working columns get a "__" prefix so the model's output keeps the input columns intact.
    prep = SQLTransformer(statement="SELECT *, " + ", ".join(
        [f"CAST({c} AS DOUBLE) AS __num_{c}" for c in numeric + boolean]
        + [f"COALESCE(CAST({c} AS STRING), '__null__') AS __cat_{c}" for c in categorical]) + " FROM __THIS__")
    num_in = [f"__num_{c}" for c in numeric + boolean]
    imputer = Imputer(inputCols=num_in, outputCols=[f"__imp_{c}" for c in numeric + boolean], strategy="median")
    idx = StringIndexer(inputCols=[f"__cat_{c}" for c in categorical], outputCols=[f"__idx_{c}" for c in categorical],
                        handleInvalid="keep", stringOrderType="frequencyDesc")
    ohe = OneHotEncoder(inputCols=[f"__idx_{c}" for c in categorical], outputCols=[f"__ohe_{c}" for c in categorical],
                        handleInvalid="keep", dropLast=True)
    assembler = VectorAssembler(inputCols=[f"__imp_{c}" for c in numeric + boolean] + [f"__ohe_{c}" for c in categorical],
                                outputCol="features_raw" if scale else "features")
    stages = [prep, imputer, idx, ohe, assembler]
    if scale:
        stages.append(StandardScaler(inputCol="features_raw", outputCol="features", withMean=False, withStd=True))
    return stages


@dataclass
class TunedModel:
    """A cross-validated learner.

    Attributes:
        kind: ``lr`` or ``gbt``.
        model: Best pipeline refitted on the whole training set.
        cv_metric: Mean k-fold metric of the best parameters.
        cv_table: Every grid point with its mean and std fold metric.
        best_params: Parameters of the best grid point.
    """

    kind: str
    model: PipelineModel
    cv_metric: float
    cv_table: pd.DataFrame
    best_params: dict[str, float]


def tune(train: DataFrame, kind: str, grid: dict[str, list], num_folds: int = 3, metric: str = "areaUnderPR",
         seed: int = 42, parallelism: int = 2, label_col: str = C.LABEL) -> TunedModel:
    """k-fold cross-validated grid search of one learner on weighted training rows.

    Args:
        train: Training rows with the label and ``class_weight``.
        kind: ``lr`` (logistic regression on standardized features) or ``gbt``.
        grid: ``{"reg_param", "elastic_net"}`` for lr, ``{"max_depth", "max_iter", "step_size"}`` for gbt.
        num_folds: k.
        metric: ``areaUnderPR`` or ``areaUnderROC`` (weighted by nothing: the evaluator
            scores the folds as they are).
        seed: Fold and learner seed.
        parallelism: Models fitted in parallel.
        label_col: Label column.

    Returns:
        The tuned model.
    """
    if kind == "lr":
        clf = LogisticRegression(labelCol=label_col, featuresCol="features", weightCol=WEIGHT, maxIter=100)
        pg = ParamGridBuilder().addGrid(clf.regParam, grid["reg_param"]).addGrid(clf.elasticNetParam, grid["elastic_net"])
        stages = feature_stages(scale=True) + [clf]
    elif kind == "gbt":
        clf = GBTClassifier(labelCol=label_col, featuresCol="features", weightCol=WEIGHT, seed=seed)
        pg = (ParamGridBuilder().addGrid(clf.maxDepth, grid["max_depth"]).addGrid(clf.maxIter, grid["max_iter"])
              .addGrid(clf.stepSize, grid["step_size"]))
        stages = feature_stages(scale=False) + [clf]
    else:
        raise ValueError(f"unknown model kind '{kind}' (lr, gbt)")
    maps = pg.build()
    evaluator = BinaryClassificationEvaluator(labelCol=label_col, rawPredictionCol="rawPrediction", metricName=metric)
    cv = CrossValidator(estimator=Pipeline(stages=stages), estimatorParamMaps=maps, evaluator=evaluator,
                        numFolds=num_folds, seed=seed, parallelism=parallelism)
    fitted = cv.fit(train)
    rows = []
    for pm, mean, std in zip(maps, fitted.avgMetrics, fitted.stdMetrics):
        rows.append({**{p.name: v for p, v in pm.items()}, "cv_mean": mean, "cv_std": std})
    table = pd.DataFrame(rows)
    best = int(table["cv_mean"].idxmax())
    best_params = {k: v for k, v in table.iloc[best].items() if k not in ("cv_mean", "cv_std")}
    return TunedModel(kind, fitted.bestModel, float(table["cv_mean"].iloc[best]), table, best_params)


def score(model: PipelineModel, df: DataFrame) -> DataFrame:
    """``df`` with ``probability_1`` (probability of a purchase) added; no helper columns."""
    out = model.transform(df).withColumn(SCORE, vector_to_array(F.col("probability"))[1])
    return out.select(*df.columns, SCORE)


def _pretty(slot: str) -> str:
    # "__imp_page_values" -> "page_values"; "__ohe_month_Nov" -> "month=Nov".
    if slot.startswith("__imp_"):
        return slot[len("__imp_"):]
    if slot.startswith("__ohe_"):
        rest = slot[len("__ohe_"):]
        for c in sorted(CATEGORICAL, key=len, reverse=True):
            if rest.startswith(c + "_"):
                return f"{c}={rest[len(c) + 1:]}"
        return rest
    return slot


def feature_importance(model: PipelineModel, sample: DataFrame) -> pd.DataFrame:
    """Importance per input feature: GBT split gains, or |coefficient| of the standardized LR.

    Args:
        model: A fitted pipeline from :func:`tune`.
        sample: A few rows to read the assembled vector's slot names from.

    Returns:
        pandas ``feature, importance`` (sorted, descending); one-hot slots are named
        ``column=value``.
    """
    clf = model.stages[-1]
    assembler = next(s for s in model.stages if isinstance(s, VectorAssembler))
    prefix = model.transform(sample.limit(1))
    attrs = prefix.schema[assembler.getOutputCol()].metadata["ml_attr"]["attrs"]
    names = {}
    for group in attrs.values():
        for a in group:
            names[a["idx"]] = a["name"]
    if hasattr(clf, "featureImportances"):
        values = clf.featureImportances.toArray()
    else:
        values = abs(clf.coefficients.toArray())
    out = pd.DataFrame({"feature": [_pretty(names.get(i, f"f{i}")) for i in range(len(values))], "importance": values})
    return out.sort_values("importance", ascending=False).reset_index(drop=True)
