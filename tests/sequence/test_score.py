"""Scoring one partition: fallbacks for customers the models know nothing of, long and short histories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketlab.sequence.models import build_transformer
from marketlab.sequence.score import Served, score_partition

VOCAB = ("A", "B", "C", "D")
POP = np.array([0, 1, 2, 5, 3], np.float64)  # C, D, B, A by popularity (index 0 = padding)


def _frame():
    return pd.DataFrame({"customer_key": ["one", "unseen", "long"],
                         "items": [["B"], ["NEW1", "NEW2"], ["A", "B", "C", "D"] * 10],
                         "days": [[100], [101, 102], list(range(60, 100))]})


def test_repeat_source_with_popular_fallback_for_unseen_items():
    served = Served("repeat", VOCAB, POP)
    out = pd.concat(score_partition(iter([_frame()]), served, as_of=110, top_k=3, horizon=30))
    one = out[out.customer_key == "one"].sort_values("rank")
    # a customer with one purchase: their item first, then the popular ones
    assert one.stock_code.tolist() == ["B", "C", "D"] and set(one.source) == {"repeat"}
    unseen = out[out.customer_key == "unseen"].sort_values("rank")
    # only items first sold after training: the documented fallback is popularity
    assert unseen.stock_code.tolist() == ["C", "D", "B"] and set(unseen.source) == {"popular"}
    assert out.p_buy.isna().all() and (out.horizon_days == 30).all() and len(out) == 9


def test_transformer_source_scores_long_histories_and_gives_a_probability():
    model = build_transformer(len(VOCAB) + 1, max_len=5, dim=8, heads=2, blocks=1, dropout=0.0, seed=1)
    served = Served("transformer", VOCAB, POP, {"transformer": (
        dict(n_items=5, max_len=5, dim=8, heads=2, blocks=1, dropout=0.0, seed=1), model.get_weights())}, max_len=5)
    out = pd.concat(score_partition(iter([_frame()]), served, as_of=110, top_k=4, horizon=30))
    assert set(out[out.customer_key == "long"].source) == {"transformer"}
    assert set(out[out.customer_key == "unseen"].source) == {"popular"}
    assert out.groupby("customer_key").stock_code.apply(lambda s: sorted(s) == sorted(VOCAB)).all()  # all 4, no padding
    assert out.p_buy.between(0, 1).all()
    assert (out.groupby("customer_key").p_buy.nunique() == 1).all()
