"""The whole workflow on synthetic walks: 2 Horovod workers, evaluation, scoring for every customer."""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.sequence import data, encode
from marketlab.sequence.models import build, predict
from marketlab.sequence.params import SequenceParams
from marketlab.sequence.run import run
from marketlab.tables import Lake
from sequence.conftest import synthetic_sequences, to_spark

TINY = {"transformer": {"max_len": 12, "dim": 16, "heads": 2, "blocks": 1, "dropout": 0.0},
        "models": ["transformer"],  # the VAE trains in test_train_local and through tf-distribute in tests/training
        "train": {"epochs": 6, "patience": 2, "batch_size": 32, "learning_rate": 0.005, "max_steps_per_epoch": 6,
                  "start_timeout_s": 240},
        "bootstrap": 100, "item_cf_neighbours": 10}


@pytest.fixture(scope="module")
def result(spark, tmp_path_factory):
    from conftest import make_settings

    tmp = tmp_path_factory.mktemp("seqrun")
    lake = Lake(spark, make_settings(tmp))
    lake.write(to_spark(spark, synthetic_sequences(n_customers=160, one_basket=4)), "gold.customer_sequences")
    params = SequenceParams.model_validate(TINY)
    res = run(lake, params, work_uri=str(tmp / "work"), checkpoint_path=str(tmp / "ckpt"))
    scores = res.scores.toPandas()
    return res, scores, lake, params, tmp


def test_every_model_trained_in_sync_and_stopped_on_validation(result):
    res, *_ = result
    assert set(res.models) == {"transformer", "transformer_shuffled"}
    for m in res.models.values():
        assert [r.rank for r in m.results] == [0, 1] and m.replicas_identical
        assert len({r.extra["pid"] for r in m.results}) == 2
        val = m.results[0].extra["val_score"]
        assert m.best_epoch == int(np.argmin(val)) and len(val) == len(m.results[0].loss)
    assert (result[4] / "ckpt" / "transformer.npz").exists()


def test_evaluation_has_every_model_with_cis_and_order_matters(result):
    res, *_ = result
    models = {"transformer", "transformer_shuffled", "popular", "repeat", "itemcf"}
    assert set(res.test["model"]) == models == set(res.validation["model"])
    for row in res.test.to_dict("records"):
        assert row["ndcg_at_10_lo"] <= row["ndcg_at_10"] <= row["ndcg_at_10_hi"]
        assert 0 < row["coverage"] <= 1 and row["n_customers"] == res.test["n_customers"].iloc[0]
    ndcg = res.test.set_index("model")["ndcg_at_10"]
    # the walks are predictable from order only: the Transformer beats popularity and its shuffled twin
    assert ndcg["transformer"] > 1.5 * ndcg["popular"]
    assert ndcg["transformer"] > ndcg["transformer_shuffled"]
    g, lo, hi = res.gains["transformer_vs_shuffled"]
    assert lo > 0 and lo <= g <= hi
    assert res.served == res.validation.sort_values("ndcg_at_10", ascending=False)["model"].iloc[0]
    assert set(res.propensity) == {"transformer", "rfm_logreg"}
    assert 0 <= res.propensity["transformer"].auc[0] <= 1
    flat = res.flat_metrics()
    assert "test.transformer.ndcg_at_10.ci_low" in flat and "test.propensity.rfm_logreg.auc" in flat


def test_scores_cover_every_customer_and_match_a_local_prediction(result):
    res, scores, lake, params, _ = result
    assert scores["customer_key"].nunique() == 164 and (scores.groupby("customer_key").size() == params.top_k).all()
    assert scores["p_buy"].between(0, 1).all() and (scores["as_of"] == data.from_day(res.split.last_day + 1)).all()
    # one customer recomputed on the driver with the served model
    hist = data.histories(lake.read("gold.customer_sequences")).where("customer_key = 'k00003'").first()
    hs = [encode.to_indices(hist["items"], hist["days"], res.vocabulary.index())]
    kind = res.served if res.served in ("transformer", "vae") else None
    mine = scores[scores["customer_key"] == "k00003"].sort_values("rank")
    assert set(mine["source"]) == {res.served}
    if kind:
        m = build(kind, res.models[kind].config)
        m.set_weights(res.models[kind].weights)
        x = encode.multi_hot(hs, res.vocabulary.size) if kind == "vae" else encode.sequence_inputs(
            hs, params.transformer.max_len, res.split.last_day + 1)
        s, _ = predict(m, kind, x)
        want = [res.vocabulary.items[i - 1] for i in np.argsort(-s[0], kind="stable")[:params.top_k]]
        assert mine["stock_code"].tolist() == want


def test_model_rankings_at_the_validation_cutoff_read_only_history_before_it(result):
    res, scores, lake, params, _ = result
    out = res.output().toPandas()
    extra = res.model_scores.toPandas()
    val_day, end_day = data.from_day(res.split.val_cutoff), data.from_day(res.split.last_day + 1)
    # the served ranking plus the Transformer's at the validation cutoff (and at the end unless it is served)
    assert set(extra["source"]) == {"transformer"}
    assert set(extra["as_of"]) == ({val_day} if res.served == "transformer" else {val_day, end_day})
    assert len(out) == len(scores) + len(extra)
    assert not out.duplicated(["as_of", "source", "customer_key", "rank"]).any()
    # one customer at the validation cutoff, recomputed on the driver from the history before it
    hist = data.histories(lake.read("gold.customer_sequences")).where("customer_key = 'k00003'").first()
    items, days = encode.to_indices(hist["items"], hist["days"], res.vocabulary.index())
    before = encode.before(items, days, res.split.val_cutoff)
    assert len(before[0]) and len(before[0]) < len(items)  # the cut removes baskets: the check has teeth
    m = build("transformer", res.models["transformer"].config)
    m.set_weights(res.models["transformer"].weights)
    s, _ = predict(m, "transformer", encode.sequence_inputs([before], params.transformer.max_len, res.split.val_cutoff))
    want = [res.vocabulary.items[i - 1] for i in np.argsort(-s[0], kind="stable")[:params.top_k]]
    mine = extra[(extra["customer_key"] == "k00003") & (extra["as_of"] == val_day)].sort_values("rank")
    assert mine["stock_code"].tolist() == want
