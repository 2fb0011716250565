"""The state of :mod:`marketlab.rl.transitions`, computed online in numpy.

Rolling a policy forward in the simulator needs the state before every wave for every
customer, wave after wave: a Spark job per wave would cost more than the whole rollout.
:class:`StateTracker` keeps the logged waves of a population in memory and gives exactly
the features :func:`~marketlab.rl.transitions.build_transitions` computes (tests/rl
compares them); :func:`local_transitions` replays a logged-waves frame through it, the
Spark-free path for small logs and tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from marketlab.errors import BadInputError
from marketlab.rl import transitions as T


def to_days(ts) -> float:
    """A timestamp as days since the epoch, at whole seconds like the Spark job."""
    return float(pd.Timestamp(ts).value // 10**9) / 86400.0


class StateTracker:
    """Per-customer state of a fixed population over waves.

    Args:
        recency / frequency / monetary: History before the first wave, one entry per
            customer (NaN: no history).
        window_days: Window of the recent counts.
    """

    def __init__(self, recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray, *,
                 window_days: int = T.WINDOW_DAYS):
        self._rec0 = np.where(np.isnan(recency), T.NEVER_DAYS, recency).astype(float)
        self._f0 = np.nan_to_num(np.asarray(frequency, float))
        self._m0 = np.nan_to_num(np.asarray(monetary, float))
        self.n = len(self._rec0)
        self._window = float(window_days)
        self._first: float | None = None
        self._ts: list[float] = []
        self._sent: list[np.ndarray] = []
        self._coupon: list[np.ndarray] = []
        self._ordered: list[np.ndarray] = []
        self._n_orders = np.zeros(self.n)
        self._spent = self._f0 * self._m0
        self._last_order = np.full(self.n, np.nan)
        self._last_contact = np.full(self.n, np.nan)

    def features(self, ts: float) -> np.ndarray:
        """The state before a wave sent at ``ts`` (days): ``(n, len(STATE))`` in :data:`STATE` order."""
        first = self._first if self._first is not None else ts
        freq = self._f0 + self._n_orders
        rec = np.where(np.isnan(self._last_order), self._rec0 + (ts - first), ts - self._last_order)
        mon = np.divide(self._spent, freq, out=np.zeros(self.n), where=freq > 0)
        dsc = np.where(np.isnan(self._last_contact), T.NEVER_DAYS, ts - self._last_contact)
        counts = np.zeros((3, self.n))
        for t, s, k, o in zip(self._ts, self._sent, self._coupon, self._ordered):
            # Whole seconds, as the Spark range window sees them.
            if 0 < round((ts - t) * 86400) <= self._window * 86400:
                counts += np.stack([s, k, o])
        return np.column_stack([rec, freq, mon, dsc, *counts])

    def record(self, ts: float, sent: np.ndarray, coupon: np.ndarray, ordered: np.ndarray,
               revenue: np.ndarray) -> None:
        """Adds a wave sent at ``ts`` (days): per customer sent, coupon sent, ordered, window revenue."""
        if self._first is None:
            self._first = ts
        s, k, o = (np.asarray(x, bool).astype(float) for x in (sent, coupon, ordered))
        self._ts.append(ts)
        self._sent.append(s)
        self._coupon.append(k * s)
        self._ordered.append(o)
        self._n_orders = self._n_orders + o
        self._spent = self._spent + o * np.asarray(revenue, float)
        self._last_order = np.where(o > 0, ts, self._last_order)
        self._last_contact = np.where(s > 0, ts, self._last_contact)


def local_transitions(waves: pd.DataFrame, history: pd.DataFrame, *, value_cols: Sequence[str] = (),
                      margin: float = T.DEFAULT_MARGIN, window_days: int = T.WINDOW_DAYS,
                      gap_days: int = T.GAP_DAYS) -> pd.DataFrame:
    """The transitions of :func:`~marketlab.rl.transitions.build_transitions`, in numpy.

    For logs where every customer is in every wave (what :mod:`marketlab.rl.evaluate`
    collects) and default column names; the Spark job is the general path.

    Raises:
        BadInputError: Missing columns or a customer missing from a wave.
    """
    need = [T.CUSTOMER, T.WAVE, T.SENT_AT, T.ARM, T.SENT, T.COUPON_LEVEL, T.ORDERED, T.REVENUE, T.COUPON_COST,
            T.CONTACT_COST, *value_cols]
    missing = [c for c in need if c not in waves.columns]
    if missing:
        raise BadInputError(f"rl transitions: logged waves lack column(s) {missing}")
    ids = pd.Index(pd.unique(waves[T.CUSTOMER]))
    h = history.set_index(T.CUSTOMER).reindex(ids)
    tr = StateTracker(h[T.RECENCY].to_numpy(float), h[T.FREQUENCY].to_numpy(float), h[T.MONETARY].to_numpy(float),
                      window_days=window_days)
    per_wave = []
    for wv, g in waves.groupby(T.WAVE, sort=True):
        if len(g) != len(ids) or not g[T.CUSTOMER].is_unique:
            raise BadInputError(f"rl transitions: wave {wv} has {len(g)} rows for {len(ids)} customers; "
                                "the local path needs every customer once in every wave")
        g = g.set_index(T.CUSTOMER).reindex(ids)
        ts = to_days(g[T.SENT_AT].iloc[0])
        st = tr.features(ts)
        sent = g[T.SENT].astype(bool).to_numpy()
        tr.record(ts, sent, sent & (g[T.COUPON_LEVEL].to_numpy(float) > 0), g[T.ORDERED].to_numpy(bool),
                  g[T.REVENUE].to_numpy(float))
        f = pd.DataFrame(st, columns=T.STATE)
        for c in value_cols:
            f[c] = g[c].to_numpy(float)
        f.insert(0, T.WAVE, int(wv))
        f.insert(0, T.CUSTOMER, ids.to_numpy())
        f[T.ACTION] = g[T.ARM].astype(str).to_numpy()
        f[T.REWARD] = (margin * g[T.REVENUE] - g[T.COUPON_COST] - g[T.CONTACT_COST]).to_numpy(float)
        per_wave.append((ts, f))
    cols = T.state_columns(value_cols)
    out = []
    for i, (ts, f) in enumerate(per_wave):
        if i + 1 < len(per_wave):
            nxt = per_wave[i + 1][1][cols].to_numpy()
        else:
            nxt = np.column_stack([tr.features(ts + gap_days), f[list(value_cols)].to_numpy()]) if value_cols \
                else tr.features(ts + gap_days)
        for j, c in enumerate(cols):
            f[T.NEXT + c] = nxt[:, j]
        f[T.DONE] = i + 1 == len(per_wave)
        out.append(f)
    return pd.concat(out, ignore_index=True)
