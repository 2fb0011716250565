"""The segments stage's result: its metrics and the silhouette figure the job logs."""

from __future__ import annotations

import matplotlib.pyplot as plt

from marketlab.segments.params import SegmentsParams
from marketlab.segments.run import SegmentsResult
from marketlab.segments.tracking import silhouette_figure


def test_table_names_are_catalog_names(settings):
    p = SegmentsParams()
    assert [t for t in (p.input_table, p.segments_table, p.profiles_table) if t not in settings.catalog] == []


def test_metrics_and_figure():
    res = SegmentsResult("2011-12-10", 4, {3: 0.41, 4: 0.52, 5: 0.47}, [], {})
    assert res.metrics() == {"silhouette.k3": 0.41, "silhouette.k4": 0.52, "silhouette.k5": 0.47, "k": 4,
                             "silhouette": 0.52}
    fig = silhouette_figure(res)
    ax = fig.axes[0]
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [3, 4, 5] and list(ys) == [0.41, 0.52, 0.47]
    assert list(ax.lines[1].get_xdata()) == [4, 4]  # the chosen k marked
    assert "2011-12-10" in ax.get_title()
    plt.close(fig)
