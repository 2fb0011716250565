"""Customer histories as model inputs (numpy only: run on the workers and in inference tasks).

A history is two aligned lists: the item codes of a customer's baskets in time order
(within a basket in the order ``gold.customer_sequences`` keeps) and each item's basket
day (days since 1970-01-01). Item codes map to indices ``1..V`` of the training
vocabulary; 0 pads. Items outside the vocabulary (first seen after the training window)
are dropped from inputs: the models cannot represent them, and the rest of the history
still carries signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

PAD = 0


@dataclass(frozen=True)
class Vocabulary:
    """Item codes of the training window, most bought first; index = position + 1."""

    items: tuple[str, ...]

    @property
    def size(self) -> int:
        """Items plus the padding index (the width of a score row)."""
        return len(self.items) + 1

    def index(self) -> dict[str, int]:
        return {code: i + 1 for i, code in enumerate(self.items)}


def to_indices(items: Sequence[str], days: Sequence[int], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Known items of a history as indices with their days (unknown ones dropped)."""
    idx = np.fromiter((index.get(i, PAD) for i in items), dtype=np.int32, count=len(items))
    d = np.asarray(days, dtype=np.int32)
    keep = idx != PAD
    return idx[keep], d[keep]


def before(idx: np.ndarray, days: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of a history strictly before ``day``."""
    keep = days < day
    return idx[keep], days[keep]


def window(idx: np.ndarray, days: np.ndarray, start: int, end: int) -> np.ndarray:
    """Distinct items bought in ``[start, end)`` (the target set of a customer)."""
    return np.unique(idx[(days >= start) & (days < end)])


def gap_feature(days: np.ndarray) -> np.ndarray:
    """log1p of the days since the previous item's basket (0 inside a basket and first)."""
    if len(days) == 0:
        return np.zeros(0, np.float32)
    return np.log1p(np.diff(days, prepend=days[0]).astype(np.float32))


def pad_left(x: np.ndarray, n: int, value=0) -> np.ndarray:
    """The last ``n`` entries of ``x``, left-padded to length ``n``."""
    x = x[-n:]
    out = np.full(n, value, dtype=x.dtype)
    if len(x):
        out[n - len(x):] = x
    return out


def sequence_inputs(histories: Iterable[tuple[np.ndarray, np.ndarray]], max_len: int, as_of: Sequence[int] | int,
                    ) -> dict[str, np.ndarray]:
    """Transformer inputs for scoring at ``as_of``: the last ``max_len`` items of each history.

    Longer histories keep their most recent ``max_len`` items (the Transformer's window).

    Args:
        histories: ``(indices, days)`` per customer, already cut before ``as_of``.
        max_len: N.
        as_of: Day the scores are for (one per customer, or one for all).

    Returns:
        ``items (n, N)`` int32, ``gaps (n, N)`` float32, ``recency (n, 1)`` float32
        (log1p of the days from the last basket to ``as_of``; log1p(3650) with no history).
    """
    hs = list(histories)
    as_of = np.broadcast_to(np.asarray(as_of, dtype=np.int64), (len(hs),))
    items = np.zeros((len(hs), max_len), np.int32)
    gaps = np.zeros((len(hs), max_len), np.float32)
    recency = np.full((len(hs), 1), np.log1p(3650.0), np.float32)
    for r, (idx, days) in enumerate(hs):
        if len(idx) == 0:
            continue
        items[r] = pad_left(idx, max_len)
        gaps[r] = pad_left(gap_feature(days), max_len)
        recency[r, 0] = np.log1p(max(float(as_of[r] - days[-1]), 0.0))
    return {"items": items, "gaps": gaps, "recency": recency}


def multi_hot(histories: Iterable[tuple[np.ndarray, np.ndarray]], n_cols: int) -> np.ndarray:
    """Customer x item matrix of the Mult-VAE: 1 where the customer bought the item."""
    hs = list(histories)
    out = np.zeros((len(hs), n_cols), np.float32)
    for r, (idx, _) in enumerate(hs):
        out[r, idx] = 1.0
    out[:, PAD] = 0.0
    return out


def shuffled(idx: np.ndarray, days: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The shuffle test's history: the same items in a random order over the same basket days."""
    return idx[rng.permutation(len(idx))], days
