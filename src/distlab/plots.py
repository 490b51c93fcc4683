"""Plots the lessons draw, with labelled axes and units.

plot_latency_histogram  how long messages took, with the mean and percentiles marked
plot_state_timeline     a circuit breaker's states and its calls through an outage
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distlab.scenarios import Timeline

__all__ = ["STATE_COLORS", "plot_latency_histogram", "plot_state_timeline"]

_MARK_STYLES = ("-", "--", ":", "-.")

STATE_COLORS = {"closed": "tab:green", "half_open": "tab:orange", "open": "tab:red"}
_OUTCOME_STYLE = {
    # outcome: (row, marker, colour)
    "success": (2, "o", "tab:green"),
    "failure": (1, "x", "tab:red"),
    "rejected": (0, "|", "tab:gray"),
}
_STATE_ROW = 3


def plot_state_timeline(timeline: Timeline, *, ax: Any = None, title: str | None = None) -> Any:
    """Draw a breaker's states and every call of ``timeline`` against virtual time.

    The top row shows the breaker state as coloured bars (closed, half-open, open); the
    rows below mark each call at the time it was made: success, failure (it reached
    the failing backend) or rejected (the breaker refused it). The outage is shaded.

    Args:
        timeline: a ``distlab.scenarios.Timeline``, e.g. from ``outage_timeline()``.
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.
        title: the plot title; a summary of the counts when None.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2), layout="constrained")
    start, end = timeline.outage
    ax.axvspan(start, end, color="0.85", zorder=0)

    states = list(timeline.states)
    for (t0, state), (t1, _) in zip(
        states, [*states[1:], (timeline.duration, "closed")], strict=True
    ):
        if t1 > t0:
            ax.broken_barh([(t0, t1 - t0)], (_STATE_ROW - 0.35, 0.7), color=STATE_COLORS[state])

    for outcome, (row, marker, colour) in _OUTCOME_STYLE.items():
        times = [c.time for c in timeline.calls if c.outcome == outcome]
        ax.scatter(times, [row] * len(times), marker=marker, color=colour, s=25, zorder=3)

    ax.set_yticks([0, 1, 2, _STATE_ROW])
    ax.set_yticklabels(["rejected", "failure", "success", "breaker state"])
    ax.set_ylim(-0.7, _STATE_ROW + 0.7)
    ax.set_xlim(0, timeline.duration)
    ax.set_xlabel("virtual time (s)")
    handles = [Patch(color=c, label=s.replace("_", "-")) for s, c in STATE_COLORS.items()]
    handles.append(Patch(color="0.85", label="backend down"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4)
    if title is None:
        title = (
            f"{timeline.count('success')} successes, {timeline.count('failure')} failures, "
            f"{timeline.count('rejected')} rejected; "
            f"{timeline.reached_during_outage} requests reached the backend while it was down"
        )
    ax.set_title(title)
    return ax


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
