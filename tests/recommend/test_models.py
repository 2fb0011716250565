"""Item-item CF similarity against a pandas self-join of the same capped baskets (both paths)."""

import numpy as np
import pandas as pd
import pytest

from marketlab.recommend.data import ITEM_IDX, STRENGTH, USER_IDX
from marketlab.recommend.models import item_similarity


def _pandas_similarity(pairs: pd.DataFrame, n_items: int, neighbours: int, cap: int) -> np.ndarray:
    ranked = pairs.sort_values([USER_IDX, STRENGTH, ITEM_IDX], ascending=[True, False, True])
    capped = ranked.groupby(USER_IDX).head(cap)[[USER_IDX, ITEM_IDX]]
    n = capped.groupby(ITEM_IDX).size()
    co = capped.merge(capped, on=USER_IDX, suffixes=("_a", "_b"))
    co = co[co[f"{ITEM_IDX}_a"] != co[f"{ITEM_IDX}_b"]].groupby([f"{ITEM_IDX}_a", f"{ITEM_IDX}_b"]).size()
    co = co.rename("co").reset_index().rename(columns={f"{ITEM_IDX}_a": "i", f"{ITEM_IDX}_b": "j"})
    co["sim"] = co["co"] / np.sqrt((n.loc[co["i"]].to_numpy() * n.loc[co["j"]].to_numpy()).astype(np.float64))
    top = co.sort_values(["i", "sim", "j"], ascending=[True, False, True]).groupby("i").head(neighbours)
    out = np.zeros((n_items, n_items))
    out[top["j"], top["i"]] = top["sim"]  # row j = the items similar to j, as the scorer reads it
    return out


@pytest.mark.parametrize("local_max_pairs", [10**9, 0], ids=["driver", "spark"])
def test_similarity_equals_a_pandas_self_join_of_the_capped_baskets(spark, local_max_pairs):
    rng = np.random.default_rng(5)
    n_users, n_items = 120, 40
    rows = []
    for u in range(n_users):
        k = 60 if u % 17 == 0 else rng.integers(1, 9)  # a few wholesale baskets above the cap
        for i in rng.choice(n_items, size=min(k, n_items), replace=False):
            rows.append((u, int(i), float(rng.integers(1, 5))))  # ties in strength: the item index decides
    pairs = pd.DataFrame(rows, columns=[USER_IDX, ITEM_IDX, STRENGTH])
    train = spark.createDataFrame(pairs).repartition(3)
    got = item_similarity(train, n_items, neighbours=5, max_items_per_user=12, local_max_pairs=local_max_pairs)
    want = _pandas_similarity(pairs, n_items, neighbours=5, cap=12)
    assert got.shape == (n_items, n_items) and got.nnz == np.count_nonzero(want)
    np.testing.assert_array_equal(got.toarray(), want)
    assert (np.count_nonzero(want, axis=0) <= 5).all()  # at most `neighbours` per item
