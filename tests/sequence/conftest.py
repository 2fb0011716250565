"""Synthetic basket histories in the shape of gold.customer_sequences (small, seeded).

Each customer walks a cycle of the catalogue: basket t holds item ``(start + t) mod n``
(plus, with ``noise``, a random second item), one basket every ``gap`` days or so. The
next item follows from the last one, so order carries signal a sequence model can learn
and popularity (uniform) cannot.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

START = dt.datetime(2011, 1, 3, 10, 0)


def synthetic_sequences(n_customers: int = 120, n_items: int = 30, n_days: int = 240, gap: int = 6, noise: float = 0.2,
                        seed: int = 0, one_basket: int = 0) -> pd.DataFrame:
    """Rows ``customer_key, baskets[{ts, invoice_no, items}], item_sequence, n_baskets``.

    ``one_basket`` extra customers buy once, in the first week.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        start, day, t, baskets = int(rng.integers(n_items)), int(rng.integers(gap)), 0, []
        while day < n_days:
            items = {f"I{(start + t) % n_items:03d}"}
            if rng.random() < noise:
                items.add(f"I{int(rng.integers(n_items)):03d}")
            baskets.append({"ts": START + dt.timedelta(days=day), "invoice_no": f"{c}-{t}", "items": sorted(items)})
            day += int(rng.integers(gap - 2, gap + 3))
            t += 1
        rows.append(baskets)
    for c in range(one_basket):
        rows.append([{"ts": START + dt.timedelta(days=int(rng.integers(7))), "invoice_no": f"one-{c}", "items": ["I000"]}])
    return pd.DataFrame({
        "customer_key": [f"k{c:05d}" for c in range(len(rows))],
        "baskets": rows,
        "item_sequence": [[i for b in bs for i in b["items"]] for bs in rows],
        "n_baskets": [len(bs) for bs in rows],
    })


SCHEMA = ("customer_key string, baskets array<struct<ts:timestamp,invoice_no:string,items:array<string>>>, "
          "item_sequence array<string>, n_baskets int")


def to_spark(spark, frame: pd.DataFrame):
    return spark.createDataFrame(frame, SCHEMA)


@pytest.fixture(scope="module")
def sequences(spark):
    return to_spark(spark, synthetic_sequences(one_basket=5))
