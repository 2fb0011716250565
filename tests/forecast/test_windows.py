import numpy as np
import pytest

from marketlab.forecast.windows import N_FEATURES, calendar_features, n_windows, shard_windows, training_windows


def _dates(n, start="2011-01-03"):  # a Monday
    return np.datetime64(start, "D") + np.arange(n).astype("timedelta64[D]")


def test_training_windows_align_history_and_targets():
    z = np.arange(20, dtype=float)
    x, y = training_windows(z, _dates(20), scale=2.0, zero_share=0.25, window=5, horizon=3, stride=1)
    # origins 4..16: 13 samples; the newest target ends on the last day
    assert x.shape == (13, 5, N_FEATURES) and y.shape == (13, 3)
    np.testing.assert_allclose(np.expm1(x[0, :, 0]), [0, 1, 2, 3, 4], rtol=1e-6)
    np.testing.assert_allclose(y[0], [5, 6, 7])
    np.testing.assert_allclose(y[-1], [17, 18, 19])
    np.testing.assert_allclose(x[..., 5], np.log1p(2.0), rtol=1e-6)
    np.testing.assert_allclose(x[..., 6], 0.25)


@pytest.mark.parametrize("n,stride", [(20, 1), (20, 3), (8, 1), (7, 1), (100, 7)])
def test_n_windows_matches_training_windows(n, stride):
    x, _ = training_windows(np.ones(n), _dates(n), 1.0, 0.0, window=5, horizon=3, stride=stride)
    assert len(x) == n_windows(n, 5, 3, stride)


def test_stride_keeps_newest_origin():
    z = np.arange(30, dtype=float)
    _, y = training_windows(z, _dates(30), 1.0, 0.0, window=5, horizon=3, stride=4)
    np.testing.assert_allclose(y[-1], [27, 28, 29])
    np.testing.assert_allclose(np.diff(y[:, 0]), 4)


def test_calendar_features_monday_and_new_year():
    f = calendar_features(np.array(["2011-01-03", "2011-01-01"], dtype="datetime64[D]"))
    np.testing.assert_allclose(f[0, :2], [0.0, 1.0], atol=1e-6)  # Monday: angle 0
    np.testing.assert_allclose(f[1, 2:], [0.0, 1.0], atol=1e-6)  # 1 January: day of year 0


def test_shard_windows_keeps_series_apart():
    import pandas as pd

    frames = []
    for sid, base in ((1, 0.0), (2, 100.0)):
        frames.append(pd.DataFrame({"series_id": sid, "date": _dates(10), "z": base + np.arange(10), "scale": 1.0,
                                    "zero_share": 0.0}))
    x, y = shard_windows(pd.concat(frames).sample(frac=1, random_state=0), window=4, horizon=2, stride=1)
    assert len(x) == 2 * 5
    # no window mixes the two series
    assert ((y < 50).all(axis=1) | (y >= 100).all(axis=1)).all()
