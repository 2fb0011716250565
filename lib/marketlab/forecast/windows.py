"""Windows of history -> next-``horizon``-day demand, as numpy arrays (runs on workers).

A series arrives as its scaled daily units (``units / scale``, the scale fitted on the
training period only) with dates. Each sample is ``window`` days of per-day features ending
at an origin day and the ``horizon`` scaled units after it.

Per-day features: log1p(scaled units), day-of-week and day-of-year (sin/cos), and two item
features constant over the window: log1p(scale) (how big the item is) and the share of
zero days in training (how intermittent it is).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

N_FEATURES = 7


def calendar_features(dates: np.ndarray) -> np.ndarray:
    """``(n, 4)`` day-of-week and day-of-year as sin/cos pairs for ``datetime64[D]`` dates."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    doy = (dates.astype("datetime64[D]") - dates.astype("datetime64[Y]")).astype(np.int64)
    a, b = 2 * np.pi * dow / 7.0, 2 * np.pi * doy / 365.25
    return np.stack([np.sin(a), np.cos(a), np.sin(b), np.cos(b)], axis=1).astype(np.float32)


def series_features(z: np.ndarray, dates: np.ndarray, scale: float, zero_share: float) -> np.ndarray:
    """``(n, N_FEATURES)`` per-day model inputs of one series."""
    n = len(z)
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    out[:, 0] = np.log1p(np.maximum(z, 0.0))
    out[:, 1:5] = calendar_features(dates)
    out[:, 5] = np.log1p(scale)
    out[:, 6] = zero_share
    return out


def training_windows(
    z: np.ndarray,
    dates: np.ndarray,
    scale: float,
    zero_share: float,
    window: int,
    horizon: int,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """All training samples of one series, newest origin always included.

    Args:
        z: Scaled units, one per day, ending at the training end.
        dates: Their dates.
        scale: Series scale (item feature).
        zero_share: Share of zero days in training (item feature).
        window: Input days.
        horizon: Target days.
        stride: Keep every ``stride``-th origin, counted back from the newest.

    Returns:
        ``X (m, window, N_FEATURES)``, ``Y (m, horizon)`` float32; ``m = 0`` if the series
        is shorter than ``window + horizon``.
    """
    n = len(z)
    last_origin = n - horizon - 1
    if last_origin < window - 1:
        return np.zeros((0, window, N_FEATURES), np.float32), np.zeros((0, horizon), np.float32)
    feats = series_features(z, dates, scale, zero_share)
    origins = np.arange(last_origin, window - 2, -stride)[::-1]
    xi = origins[:, None] + np.arange(-window + 1, 1)[None, :]
    yi = origins[:, None] + np.arange(1, horizon + 1)[None, :]
    return feats[xi], z[yi].astype(np.float32)


def shard_windows(frame: pd.DataFrame, window: int, horizon: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Training samples of every series in a shard frame.

    Args:
        frame: Rows ``series_id, date, z, scale, zero_share`` (any order).

    Returns:
        Stacked ``X, Y`` of all series (series order, then origin order).
    """
    xs, ys = [], []
    frame = frame.sort_values(["series_id", "date"], kind="stable")
    for _, g in frame.groupby("series_id", sort=True):
        x, y = training_windows(
            g["z"].to_numpy(np.float64), g["date"].to_numpy("datetime64[D]"), float(g["scale"].iloc[0]),
            float(g["zero_share"].iloc[0]), window, horizon, stride,
        )
        if len(x):
            xs.append(x)
            ys.append(y)
    if not xs:
        return np.zeros((0, window, N_FEATURES), np.float32), np.zeros((0, horizon), np.float32)
    return np.concatenate(xs), np.concatenate(ys)


def n_windows(n_days: int, window: int, horizon: int, stride: int) -> int:
    """Number of samples :func:`training_windows` yields for a series of ``n_days``."""
    last_origin = n_days - horizon - 1
    if last_origin < window - 1:
        return 0
    return (last_origin - (window - 1)) // stride + 1


def last_window(z: np.ndarray, dates: np.ndarray, scale: float, zero_share: float, window: int) -> np.ndarray:
    """``(window, N_FEATURES)`` input ending at the last given day (forecast origin)."""
    return series_features(z[-window:], dates[-window:], scale, zero_share)
