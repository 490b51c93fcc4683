"""Plots the lessons draw, with labelled axes and units.

plot_latency_histogram  how long messages took, with the mean and percentiles marked
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plot_latency_histogram"]

_MARK_STYLES = ("-", "--", ":", "-.")


def plot_latency_histogram(
    latencies: Sequence[float],
    *,
    marks: Mapping[str, float] | None = None,
    ax: Any = None,
    title: str | None = None,
    bins: int = 100,
) -> Any:
    """Draw a histogram of one-way latencies in milliseconds, with marked values.

    Args:
        latencies: latencies in seconds, e.g. ``NetworkStats.latencies``.
        marks: named values in seconds to draw as vertical lines, e.g.
            ``{"mean": s.mean, "p50": s.p50, "p99": s.p99}`` of a ``LatencySummary``.
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.
        title: the plot title; a count of the messages when None.
        bins: number of histogram bins.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    ax.hist([s * 1000 for s in latencies], bins=bins, color="tab:blue", alpha=0.7)
    for index, (name, value) in enumerate((marks or {}).items()):
        style = _MARK_STYLES[index % len(_MARK_STYLES)]
        ms = value * 1000
        ax.axvline(ms, color="black", linestyle=style, label=f"{name} = {ms:.0f} ms")
    ax.set_xlabel("one-way latency (ms)")
    ax.set_ylabel("messages")
    ax.set_title(f"Latency of {len(latencies):,} messages" if title is None else title)
    if marks:
        ax.legend()
    return ax
