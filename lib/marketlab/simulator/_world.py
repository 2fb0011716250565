"""The simulated shop's customers: history features and the real purchases after the wave date.

Private to the simulator: the purchases after the wave date are ground truth (they decide
which featured items are relevant), so nothing here is exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketlab import constants as C
from marketlab.errors import BadInputError

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class World:
    """Customers (index ``0..n-1``) with history features and sparse item / category sets.

    Sparse sets are sorted int64 keys ``customer * n_items + item`` (``n_categories`` for
    categories), so membership of a (customer, item) pair is one ``searchsorted``.

    Attributes:
        customer_ids: The shop's ids, as strings.
        wave_date: Histories end before it; relevance starts at it.
        frequency / recency_days / tenure_days / aov / mean_price: History per customer.
        items: Stock codes; ``item_category`` their category index into ``categories``.
        hist_item_keys / hist_item_qty: Items bought before the wave date and units.
        hist_category_keys: Categories bought before the wave date.
        future_item_keys: Items really bought in the relevance window after the wave date.
        ordered_in_window: Whether the customer really ordered in the response window
            (``None`` for a synthetic world); the baseline is fitted to it.
    """

    customer_ids: np.ndarray
    wave_date: pd.Timestamp
    frequency: np.ndarray
    recency_days: np.ndarray
    tenure_days: np.ndarray
    aov: np.ndarray
    mean_price: np.ndarray
    items: pd.Index
    item_category: np.ndarray
    categories: pd.Index
    hist_item_keys: np.ndarray
    hist_item_qty: np.ndarray
    hist_category_keys: np.ndarray
    future_item_keys: np.ndarray
    ordered_in_window: np.ndarray | None

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    def item_index(self, codes: pd.Series) -> np.ndarray:
        """Item index of each stock code (-1 when the shop never sold it)."""
        return self.items.get_indexer(codes)

    def category_of(self, codes: pd.Series, digits: int) -> np.ndarray:
        """Category index of each stock code by its leading characters (-1 if unknown)."""
        return self.categories.get_indexer(codes.str[:digits])


def normalise_ids(s: pd.Series) -> pd.Series:
    """Customer ids as strings; ``17850.0`` (ids read as floats) becomes ``17850``."""
    out = s.astype(str).str.strip()
    if out.str.contains(".", regex=False).any():
        out = out.str.replace(r"\.0+$", "", regex=True)
    return out


def member(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Whether each query key is in the sorted key array."""
    if len(keys) == 0:
        return np.zeros(len(query), bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] == query


def build_world(
    lines: pd.DataFrame,
    wave_date: pd.Timestamp,
    *,
    response_window_days: int,
    relevance_days: int,
    category_digits: int,
    customer_col: str = C.CUSTOMER_ID,
    invoice_col: str = C.INVOICE_NO,
    ts_col: str = C.INVOICE_TS,
    item_col: str = C.STOCK_CODE,
    quantity_col: str = C.QUANTITY,
    price_col: str = C.UNIT_PRICE,
) -> World:
    """Builds the world from real order lines.

    Sale lines only count (identified customer, positive quantity and price, not a
    cancellation ``C...`` invoice, a product code starting with a digit), so the silver
    table and the raw export give the same world.

    Raises:
        BadInputError: A column is missing or no customer has history before the wave date.
    """
    need = [customer_col, invoice_col, ts_col, item_col, quantity_col, price_col]
    missing = [c for c in need if c not in lines.columns]
    if missing:
        raise BadInputError(f"simulator: order lines lack column(s) {missing}; have {sorted(lines.columns)}")
    d = lines[need].copy()
    d.columns = ["c", "inv", "ts", "item", "q", "p"]
    d = d[d["c"].notna()]
    d["inv"] = d["inv"].astype(str)
    d["item"] = d["item"].astype(str).str.strip().str.upper()
    d = d[(d["q"] > 0) & (d["p"] > 0) & ~d["inv"].str.startswith("C") & d["item"].str.match(r"^\d")]
    d["c"] = normalise_ids(d["c"])
    d["ts"] = pd.to_datetime(d["ts"])
    d["v"] = d["q"] * d["p"]
    hist = d[d["ts"] < wave_date]
    if hist.empty:
        raise BadInputError(f"simulator: no order line before the wave date {wave_date.date()}")
    inv = hist.groupby(["c", "inv"], sort=False).agg(ts=("ts", "min"), v=("v", "sum"))
    per = inv.groupby(level="c").agg(f=("v", "size"), first=("ts", "min"), last=("ts", "max"), total=("v", "sum"))
    per = per.sort_index()
    ids = per.index.to_numpy(dtype=object)
    cidx = pd.Index(ids)
    price = hist.groupby("c")[["v", "q"]].sum()
    price = (price["v"] / price["q"]).reindex(cidx).to_numpy(float)

    items = pd.Index(np.sort(d["item"].unique()))
    categories = pd.Index(np.sort(items.str[:category_digits].unique()))
    item_category = categories.get_indexer(items.str[:category_digits])
    n_items, n_cat = len(items), len(categories)

    hc = cidx.get_indexer(hist["c"])
    hi = items.get_indexer(hist["item"])
    hk = pd.Series(hist["q"].to_numpy(float)).groupby(hc.astype(np.int64) * n_items + hi).sum()
    hist_cat = np.unique(hc.astype(np.int64) * n_cat + item_category[hi])

    fut = d[(d["ts"] >= wave_date) & (d["ts"] < wave_date + relevance_days * DAY)]
    fc = cidx.get_indexer(fut["c"])
    keep = fc >= 0
    fut_keys = np.unique(fc[keep].astype(np.int64) * n_items + items.get_indexer(fut["item"])[keep])
    win = d[(d["ts"] >= wave_date) & (d["ts"] < wave_date + response_window_days * DAY)]
    ordered = cidx.isin(win["c"].unique()).astype(float) if not win.empty else np.zeros(len(ids))
    days = lambda td: td / DAY  # noqa: E731

    return World(
        customer_ids=ids,
        wave_date=wave_date,
        frequency=per["f"].to_numpy(float),
        recency_days=days(wave_date - per["last"]).to_numpy(float),
        tenure_days=days(wave_date - per["first"]).to_numpy(float),
        aov=(per["total"] / per["f"]).to_numpy(float),
        mean_price=price,
        items=items,
        item_category=item_category,
        categories=categories,
        hist_item_keys=hk.index.to_numpy(np.int64),
        hist_item_qty=hk.to_numpy(float),
        hist_category_keys=hist_cat,
        future_item_keys=fut_keys,
        ordered_in_window=ordered,
    )


def synthetic_world(n: int, rng: np.random.Generator, *, wave_date: pd.Timestamp, category_digits: int,
                    n_items: int = 3000) -> World:
    """A synthetic shop of ``n`` customers with Online-Retail-like histories (benchmarks).

    Items and categories follow Zipf-like popularity; a customer's future purchases repeat
    half of their own past items (wholesale customers re-order), the rest by popularity.
    """
    if n < 1:
        raise BadInputError(f"simulator: a synthetic world needs at least one customer, got {n}")
    tenure = rng.uniform(1, 365, n)
    frequency = 1 + rng.negative_binomial(1, 0.2, n).astype(float)
    rate = frequency / np.maximum(tenure, 30)
    recency = np.minimum(tenure, rng.exponential(1 / rate + 20))
    aov = np.exp(rng.normal(5.65, 0.7, n))
    mean_price = np.exp(rng.normal(1.0, 0.6, n))
    items = pd.Index([f"{10000 + i:05d}" for i in range(n_items)])
    categories = pd.Index(np.sort(items.str[:category_digits].unique()))
    item_category = categories.get_indexer(items.str[:category_digits])
    n_categories = len(categories)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop = rng.permutation(pop / pop.sum())
    m_hist = 1 + rng.poisson(np.minimum(3 * frequency, 30))
    cust = np.repeat(np.arange(n, dtype=np.int64), m_hist)
    hist_items = rng.choice(n_items, size=len(cust), p=pop)
    hk, hq = np.unique(cust * n_items + hist_items, return_counts=True)
    hist_cat = np.unique(cust * n_categories + item_category[hist_items])
    buys = rng.random(n) < np.clip(1 - np.exp(-rate * 30 * np.exp(-recency / 180)), 0, 0.9)
    m_fut = np.where(buys, 1 + rng.poisson(4, n), 0)
    fcust = np.repeat(np.arange(n, dtype=np.int64), m_fut)
    # half the future lines re-order one of the customer's past items
    starts = np.concatenate([[0], np.cumsum(m_hist)[:-1]])
    pick = starts[fcust] + (rng.random(len(fcust)) * m_hist[fcust]).astype(np.int64)
    repeat = rng.random(len(fcust)) < 0.5
    fitems = np.where(repeat, hist_items[pick], rng.choice(n_items, size=len(fcust), p=pop))
    return World(
        customer_ids=np.array([f"S{i:07d}" for i in range(n)], dtype=object),
        wave_date=wave_date,
        frequency=frequency,
        recency_days=recency,
        tenure_days=tenure,
        aov=aov,
        mean_price=mean_price,
        items=items,
        item_category=item_category,
        categories=categories,
        hist_item_keys=hk.astype(np.int64),
        hist_item_qty=hq.astype(float),
        hist_category_keys=hist_cat,
        future_item_keys=np.unique(fcust * n_items + fitems),
        ordered_in_window=None,
    )
