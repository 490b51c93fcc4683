"""distlab.lessons.plots: the shared lesson plots label their axes and marks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from distlab.lessons.plots import plot_latency_histogram


def test_latency_histogram_is_in_milliseconds_with_labelled_marks() -> None:
    """Seconds in, milliseconds on the axis; each mark is a labelled vertical line."""
    ax = plot_latency_histogram([0.010, 0.020, 0.030], marks={"p50": 0.020, "p99": 0.030})
    try:
        assert ax.get_xlabel() == "one-way latency (ms)"
        assert ax.get_ylabel()
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["p50 = 20 ms", "p99 = 30 ms"]
        assert [line.get_xdata()[0] for line in ax.get_lines()] == [20.0, 30.0]
    finally:
        plt.close(ax.figure)
