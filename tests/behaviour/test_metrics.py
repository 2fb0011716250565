"""The metric suite against scikit-learn on the same predictions."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from marketlab.behaviour import metrics as M
from marketlab.errors import BadInputError


@pytest.fixture(scope="module")
def preds():
    rng = np.random.default_rng(4)
    y = (rng.random(3000) < 0.15).astype(int)
    s = np.clip(0.25 * y + rng.beta(2, 5, 3000) * 0.8, 0, 1).round(3)  # rounded: ties, like real scores
    return pd.DataFrame({"label": y, "probability_1": s})


@pytest.fixture(scope="module")
def preds_df(spark, preds):
    return spark.createDataFrame(preds).cache()


def test_suite_matches_sklearn(preds, preds_df):
    thr = 0.4
    m = M.evaluate_scores(preds_df, thr)
    y, yhat = preds.label.to_numpy(), (preds.probability_1 >= thr).astype(int).to_numpy()
    tn, fp, fn, tp = skm.confusion_matrix(y, yhat).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, yhat), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, yhat), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, yhat), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, yhat), abs=1e-12)
    assert m["npv"] == pytest.approx(skm.precision_score(y, yhat, pos_label=0), abs=1e-12)
    assert m["specificity"] == pytest.approx(skm.recall_score(y, yhat, pos_label=0), abs=1e-12)
    lr_plus, lr_minus = skm.class_likelihood_ratios(y, yhat)
    assert m["lr_plus"] == pytest.approx(lr_plus, rel=1e-12)
    assert m["lr_minus"] == pytest.approx(lr_minus, rel=1e-12)
    assert m["conversion_rate"] == pytest.approx(y.mean())
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, preds.probability_1), abs=1e-9)
    # Spark's PR AUC is the trapezoidal area of the PR curve; sklearn's auc over the same
    # curve agrees closely (it differs only in the interpolation at recall 0).
    prec, rec, _ = skm.precision_recall_curve(y, preds.probability_1)
    assert m["pr_auc"] == pytest.approx(skm.auc(rec, prec), abs=5e-3)


def test_undefined_ratios_are_nan_not_zero():
    m = M.binary_metrics(tp=0, fp=0, tn=90, fn=10)  # a rule that never predicts a purchase
    assert np.isnan(m["precision"]) and m["recall"] == 0.0 and m["npv"] == 0.9 and np.isnan(m["lr_plus"])
    assert m["lr_minus"] == pytest.approx(1.0)


def test_one_class_test_set_is_a_clear_error(spark):
    df = spark.createDataFrame([(0, 0.2), (0, 0.7)], ["label", "probability_1"])
    with pytest.raises(M.DegenerateDataError, match="test set has only one class") as exc:
        M.evaluate_scores(df, 0.5)
    assert isinstance(exc.value, BadInputError)


def test_threshold_sweep_matches_brute_force_and_picks_least_cost(preds, preds_df):
    costs = M.threshold_costs(preds_df, cost_fp=1.0, cost_fn=5.0, grid=19)
    y, s = preds.label.to_numpy(), preds.probability_1.to_numpy()
    for row in costs.itertuples():
        yhat = s >= row.threshold
        assert row.tp == ((yhat == 1) & (y == 1)).sum() and row.fp == ((yhat == 1) & (y == 0)).sum()
    brute = [(((s >= t) & (y == 0)).sum() + 5 * ((s < t) & (y == 1)).sum()) / len(y) for t in costs.threshold]
    np.testing.assert_allclose(costs.cost, brute)
    assert M.choose_threshold(costs) == pytest.approx(costs.threshold[int(np.argmin(brute))])
    # A very expensive miss pushes the threshold down (contact more sessions).
    cheap_miss = M.choose_threshold(M.threshold_costs(preds_df, 1.0, 1.0, grid=19))
    assert M.choose_threshold(M.threshold_costs(preds_df, 1.0, 20.0, grid=19)) < cheap_miss


def test_calibration_table_matches_sklearn(preds, preds_df):
    tab = M.calibration_table(preds_df, n_bins=10)
    prob_true, prob_pred = calibration_curve(preds.label, preds.probability_1, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(tab.fraction_positive, prob_true, rtol=1e-12)
    np.testing.assert_allclose(tab.mean_predicted, prob_pred, rtol=1e-12)
    assert tab["count"].sum() == len(preds)
