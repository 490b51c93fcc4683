"""Latency experiments, as lesson 02 runs them, and the checkers of its "Your turn" cells.

Each function runs one seeded experiment and returns a report, so the notebook shows a
number and ``tests/lessons/test_latency.py`` recomputes the very same number against theory:

* where latency comes from: ``great_circle_km``, ``propagation_delay``,
  ``transmission_delay``; ``call_graph`` runs a chain and a fan-out of services on the
  network simulator (a chain adds latencies, a fan-out waits for the slowest);
* queueing: ``queue_latency`` loads one server to a given utilisation on the simulator
  (``distlab.sim.queueing``) and measures the time a request spends there, beside the
  M/M/1 theory; ``plot_hockey_stick`` draws it;
* the tail at scale: ``fan_out`` sends one user request to ``fanout`` leaves whose
  latency follows ``LEAF_LATENCY`` (usually about 10 ms, one time in a hundred a second
  or more, a power-law tail) and waits for all of them; ``hedge_after`` sends a second
  copy of a leaf request that has not answered by then; ``fan_out_quantile`` and
  ``slow_share_theory`` give the theory; ``plot_fan_out`` and ``plot_survival`` draw it;
* fixes: ``false_timeout_share`` measures how often a timeout fires on a leaf that was
  merely slow; ``check_timeout_for`` and ``check_hedged_latency`` check the students' code.

Every experiment is seeded: the same arguments give the same report.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from distlab.lessons.checks import checker, expect
from distlab.sim.netsim import Context, Delay, DelaySpec, Network, Node
from distlab.sim.queueing import QueueingServer, mm1_mean_time_in_system, poisson_arrivals

__all__ = [
    "FIBRE_KM_PER_S",
    "LEAF_LATENCY",
    "SLOW",
    "SPEED_OF_LIGHT_KM_PER_S",
    "CallGraphReport",
    "FanOutReport",
    "QueueReport",
    "call_graph",
    "check_hedged_latency",
    "check_timeout_for",
    "false_timeout_share",
    "fan_out",
    "fan_out_quantile",
    "great_circle_km",
    "percentile",
    "plot_fan_out",
    "plot_hockey_stick",
    "plot_survival",
    "propagation_delay",
    "queue_latency",
    "slow_share_theory",
    "transmission_delay",
]

SPEED_OF_LIGHT_KM_PER_S = 299_792.458
"""The speed of light in vacuum, exactly (km/s)."""
FIBRE_INDEX = 1.47
"""Group index of the silica of optical fibre: light in it is 1.47 times slower than in vacuum."""
FIBRE_KM_PER_S = SPEED_OF_LIGHT_KM_PER_S / FIBRE_INDEX
"""The speed of light in fibre, about 204,000 km/s (two thirds of c)."""
EARTH_RADIUS_KM = 6371.0
"""The Earth's mean radius (km)."""

LEAF_LATENCY = Delay.mixture(
    (0.99, Delay.lognormal(0.010, 0.25)),
    (0.01, Delay.pareto(1.0, 1.5)),
)
"""A leaf server's answer time: "typically 10 ms, p99 one second" (Dean and Barroso).

99 % of requests take a log-normal time around 10 ms; 1 % hit a hiccup (a garbage
collection, a disk flush, a noisy neighbour) and take at least a second, with a
power-law tail: ``P(> x s) = x ** -1.5`` among those.
"""
SLOW = 1.0
"""What this lesson calls a slow request: one second or more."""
SERVICE_TIME = Delay.exponential(0.010)
"""The work of one service in section 1: exponential, mean 10 ms."""


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def percentile(values: Sequence[float], p: float) -> float:
    """Return the nearest-rank ``p``-th percentile of ``values`` (``p`` in (0, 100]).

    The smallest value such that at least ``p`` % of the values are at or below it: the
    p99 of 1,000 latencies is the 990th smallest.

    Raises:
        ValueError: when ``values`` is empty or ``p`` is out of range.
    """
    if not values:
        raise ValueError("values must not be empty")
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 100:
        raise ValueError(f"p must be a percentage in (0, 100], got {p!r}")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered) - 1e-9))
    return ordered[rank - 1]


# 1. Where latency comes from ------------------------------------------------------------
def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the shortest distance over the Earth's surface between two points, in km.

    Args:
        lat1: latitude of the first point, degrees north.
        lon1: longitude of the first point, degrees east.
        lat2: latitude of the second point, degrees north.
        lon2: longitude of the second point, degrees east.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlam = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def propagation_delay(distance_km: float, *, speed_km_per_s: float = FIBRE_KM_PER_S) -> float:
    """Return the seconds a signal needs to travel ``distance_km`` (one way), in fibre by default.

    Raises:
        ValueError: when the distance is negative or the speed not > 0.
    """
    distance = _non_negative("distance_km", distance_km)
    if not _non_negative("speed_km_per_s", speed_km_per_s) > 0:
        raise ValueError("speed_km_per_s must be > 0")
    return distance / speed_km_per_s


def transmission_delay(size_bytes: float, bandwidth_bits_per_s: float) -> float:
    """Return the seconds needed to push ``size_bytes`` onto a link of the given bandwidth.

    Raises:
        ValueError: when the size is negative or the bandwidth not > 0.
    """
    size = _non_negative("size_bytes", size_bytes)
    if not _non_negative("bandwidth_bits_per_s", bandwidth_bits_per_s) > 0:
        raise ValueError("bandwidth_bits_per_s must be > 0")
    return size * 8 / bandwidth_bits_per_s


@dataclass(frozen=True)
class CallGraphReport:
    """What ``call_graph`` measured.

    Attributes:
        shape: ``"chain"`` (one service after the other) or ``"fanout"`` (all at once).
        services: how many services one request calls.
        latencies: end-to-end seconds of each request, in order.
    """

    shape: str
    services: int
    latencies: list[float] = field(repr=False)

    @property
    def mean(self) -> float:
        """Mean end-to-end latency, in seconds."""
        return math.fsum(self.latencies) / len(self.latencies)


class _Gateway(Node):
    """Call ``services`` in a chain or all at once for each request; record the latency."""

    def __init__(self, shape: str, services: list[str]) -> None:
        self.shape = shape
        self.services = services
        self.started: dict[int, float] = {}
        self.waiting: dict[int, int] = {}
        self.latencies: list[float] = []

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if src == "client":  # a new request
            self.started[msg] = ctx.now
            if self.shape == "chain":
                self.waiting[msg] = 0
                ctx.send(self.services[0], msg)
            else:
                self.waiting[msg] = len(self.services)
                for service in self.services:
                    ctx.send(service, msg)
            return
        _, request = msg  # a service's ("ok", request)
        if self.shape == "chain":
            step = self.waiting[request] + 1
            if step < len(self.services):
                self.waiting[request] = step
                ctx.send(self.services[step], request)
                return
        else:
            self.waiting[request] -= 1
            if self.waiting[request]:
                return
        self.latencies.append(ctx.now - self.started.pop(request))


def call_graph(
    shape: Literal["chain", "fanout"],
    *,
    services: int = 3,
    requests: int = 2000,
    service_time: DelaySpec = SERVICE_TIME,
    network: DelaySpec = 0.001,
    seed: int = 0,
) -> CallGraphReport:
    """Send ``requests`` through a gateway that calls ``services`` in a chain or in parallel.

    Requests are one second apart, so no service ever has a queue: the latency is the
    network (``network`` each way) plus the services' own work.

    Args:
        shape: ``"chain"`` (call service 1, then 2, ...) or ``"fanout"`` (all at once,
            answer when the last one answers).
        services: services per request (>= 1).
        requests: requests to send (>= 1).
        service_time: how long a service works on a request.
        network: the one-way delay of every link.
        seed: seeds every random choice.

    Raises:
        ValueError: when ``shape`` is unknown or a count is below 1.
    """
    if shape not in ("chain", "fanout"):
        raise ValueError(f"shape must be 'chain' or 'fanout', got {shape!r}")
    _count("services", services)
    _count("requests", requests)
    net = Network(seed=seed, delay=network)
    names = [f"service{i + 1}" for i in range(services)]
    gateway = _Gateway(shape, names)
    net.add_node("client", lambda ctx, src, msg: None)
    net.add_node("gateway", gateway)
    for name in names:
        net.add_node(name, QueueingServer(service=service_time))
    for i in range(requests):
        net.send("client", "gateway", i, at=float(i))
    net.run(max_events=None)
    return CallGraphReport(shape=shape, services=services, latencies=gateway.latencies)


# 2. Queueing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueReport:
    """What ``queue_latency`` measured at one utilisation.

    Attributes:
        utilisation: the share of time the server is busy (arrival rate / service rate).
        service_mean: the mean work per request, in seconds.
        times: each request's time in system (waiting + service), in seconds.
    """

    utilisation: float
    service_mean: float
    times: list[float] = field(repr=False)

    @property
    def mean(self) -> float:
        """Measured mean time in system, in seconds."""
        return math.fsum(self.times) / len(self.times)

    @property
    def p99(self) -> float:
        """Measured 99th percentile of the time in system, in seconds."""
        return percentile(self.times, 99)

    @property
    def theory_mean(self) -> float:
        """M/M/1 mean time in system, ``1 / (mu - lambda)``, in seconds."""
        mu = 1 / self.service_mean
        return mm1_mean_time_in_system(self.utilisation * mu, mu)

    @property
    def theory_p99(self) -> float:
        """M/M/1 p99 of the time in system (it is exponential): ``ln(100) / (mu - lambda)``."""
        return math.log(100) * self.theory_mean


def queue_latency(
    utilisation: float, *, requests: int = 20_000, service_mean: float = 0.010, seed: int = 0
) -> QueueReport:
    """Load one server to ``utilisation`` with Poisson arrivals; measure the time in system.

    The server works on one request at a time, in arrival order; each takes an
    exponential time with mean ``service_mean`` (the M/M/1 queue).

    Args:
        utilisation: arrival rate / service rate, in (0, 1).
        requests: requests to send (>= 1); near 100 % busy, more requests give a
            steadier mean (the queue remembers its past for a long time).
        service_mean: mean seconds of work per request (> 0).
        seed: seeds every random choice.

    Raises:
        ValueError: when ``utilisation`` is not in (0, 1) or another value is out of range.
    """
    if (
        isinstance(utilisation, bool)
        or not isinstance(utilisation, int | float)
        or not 0 < utilisation < 1
    ):
        raise ValueError(
            f"utilisation must be in (0, 1), got {utilisation!r}; at 1 or more the queue "
            "grows forever"
        )
    _count("requests", requests)
    if not _non_negative("service_mean", service_mean) > 0:
        raise ValueError("service_mean must be > 0")
    net = Network(seed=seed)
    server = QueueingServer(service=Delay.exponential(service_mean), reply=False)
    net.add_node("client", lambda ctx, src, msg: None)
    net.add_node("server", server)
    poisson_arrivals(net, "client", "server", rate=utilisation / service_mean, count=requests)
    net.run(max_events=None)
    return QueueReport(
        utilisation=float(utilisation), service_mean=service_mean, times=server.times_in_system()
    )


def plot_hockey_stick(reports: Sequence[QueueReport], *, ax: Any = None) -> Any:
    """Draw mean and p99 time in system against utilisation: measured points, theory lines.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    service = reports[0].service_mean
    grid = [i / 100 for i in range(1, 97)]
    mean_line = [1000 * service / (1 - u) for u in grid]
    ax.plot([100 * u for u in grid], mean_line, color="tab:blue", label="mean, M/M/1 theory")
    ax.plot(
        [100 * u for u in grid],
        [math.log(100) * m for m in mean_line],
        color="tab:red",
        linestyle="--",
        label="p99, M/M/1 theory",
    )
    xs = [100 * r.utilisation for r in reports]
    ax.scatter(
        xs, [1000 * r.mean for r in reports], color="tab:blue", zorder=3, label="mean, measured"
    )
    ax.scatter(
        xs,
        [1000 * r.p99 for r in reports],
        color="tab:red",
        marker="s",
        zorder=3,
        label="p99, measured",
    )
    ax.axhline(1000 * service, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("utilisation: share of time the server is busy (%)")
    ax.set_ylabel("time in system (ms)")
    top = max(max(r.p99 for r in reports), max(r.theory_p99 for r in reports))
    ax.set_ylim(0, 1000 * top * 1.25)
    ax.set_xlim(0, 100)
    ax.set_title(
        f"One server, {1000 * service:g} ms of work per request: waiting explodes near 100 %"
    )
    ax.legend()
    return ax


# 3. The tail at scale ----------------------------------------------------------------------
@dataclass(frozen=True)
class FanOutReport:
    """What ``fan_out`` measured.

    Attributes:
        fanout: leaves one user request waits for.
        latencies: each user request's latency (the slowest of its leaves), in seconds.
        leaf_requests: first requests sent to leaves (``fanout`` per user request).
        hedges: second copies sent because a leaf had not answered by ``hedge_after``.
        hedge_after: the hedging delay in seconds, or None (no hedging).
    """

    fanout: int
    latencies: list[float] = field(repr=False)
    leaf_requests: int
    hedges: int
    hedge_after: float | None

    @property
    def p50(self) -> float:
        """Median user latency, in seconds."""
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        """99th percentile of the user latency, in seconds."""
        return percentile(self.latencies, 99)

    @property
    def slow_share(self) -> float:
        """Share of user requests that took ``SLOW`` (1 s) or more."""
        return sum(x >= SLOW for x in self.latencies) / len(self.latencies)

    @property
    def extra_load(self) -> float:
        """Hedges as a share of the leaf requests: the extra work hedging costs the leaves."""
        return self.hedges / self.leaf_requests


def fan_out(
    fanout: int,
    *,
    requests: int = 2000,
    hedge_after: float | None = None,
    leaf: Delay = LEAF_LATENCY,
    seed: int = 0,
) -> FanOutReport:
    """Send each of ``requests`` user requests to ``fanout`` leaves and wait for all of them.

    Each leaf answers after a time drawn from ``leaf``. With ``hedge_after``, a leaf
    request still unanswered after that many seconds is sent again to another replica
    (independent latency); the leaf's answer is whichever copy answers first.

    Args:
        fanout: leaves per user request (>= 1).
        requests: user requests (>= 1).
        hedge_after: seconds before a hedge is sent (>= 0), or None for no hedging.
        leaf: the leaves' latency distribution.
        seed: seeds every draw.

    Raises:
        ValueError: when a count is below 1 or ``hedge_after`` is negative.
    """
    _count("fanout", fanout)
    _count("requests", requests)
    delay = None if hedge_after is None else _non_negative("hedge_after", hedge_after)
    rng = random.Random(seed)
    draw = leaf._sample
    latencies: list[float] = []
    hedges = 0
    for _ in range(requests):
        slowest = 0.0
        for _ in range(fanout):
            x = draw(rng)
            if delay is not None and x > delay:
                hedges += 1
                x = min(x, delay + draw(rng))
            if x > slowest:
                slowest = x
        latencies.append(slowest)
    return FanOutReport(
        fanout=fanout,
        latencies=latencies,
        leaf_requests=requests * fanout,
        hedges=hedges,
        hedge_after=delay,
    )


def _leaf_cdf(x: float, hedge_after: float | None, leaf: Delay) -> float:
    if hedge_after is None or x <= hedge_after:
        return leaf.cdf(x)
    # Slower than x only if the first copy and the hedge (sent at hedge_after) both are.
    return 1.0 - (1.0 - leaf.cdf(x)) * (1.0 - leaf.cdf(x - hedge_after))


def slow_share_theory(
    fanout: int,
    *,
    threshold: float = SLOW,
    hedge_after: float | None = None,
    leaf: Delay = LEAF_LATENCY,
) -> float:
    """Return the theoretical share of user requests slower than ``threshold``.

    A user request is fast only if all ``fanout`` leaves are: ``1 - F(threshold) ** fanout``,
    with ``F`` the leaf's distribution (hedged, when ``hedge_after`` is given).
    """
    return 1.0 - _leaf_cdf(threshold, hedge_after, leaf) ** fanout


def fan_out_quantile(
    fanout: int, p: float, *, hedge_after: float | None = None, leaf: Delay = LEAF_LATENCY
) -> float:
    """Return the theoretical ``p``-quantile of the user latency, in seconds.

    The user latency is the largest of ``fanout`` independent leaf latencies, so its
    distribution is ``F(x) ** fanout``; the quantile solves ``F(x) = p ** (1 / fanout)``.

    Raises:
        ValueError: when ``p`` is not in (0, 1).
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    target = p ** (1 / fanout)
    low, high = 0.0, 1.0
    while _leaf_cdf(high, hedge_after, leaf) < target:
        low, high = high, high * 2
    for _ in range(64):  # 2**-64 of the bracket: far below a microsecond
        middle = (low + high) / 2
        if _leaf_cdf(middle, hedge_after, leaf) >= target:
            high = middle
        else:
            low = middle
    return high


def plot_fan_out(reports: Sequence[FanOutReport], *, ax: Any = None) -> Any:
    """Draw the p50 and p99 user latency against the fan-out, log scales, with theory.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    fanouts = [r.fanout for r in reports]
    # From the smallest fan-out measured: for a single leaf the p99 sits exactly on the
    # jump from fast to slow answers, where no quantile is well defined.
    grid = sorted({*fanouts, *range(min(fanouts), max(fanouts) + 1)})
    for p, colour, marker, label in ((0.5, "tab:blue", "o", "p50"), (0.99, "tab:red", "s", "p99")):
        ax.plot(
            grid,
            [1000 * fan_out_quantile(n, p) for n in grid],
            color=colour,
            linewidth=1,
            label=f"{label}, theory",
        )
        measured = [1000 * (r.p50 if p == 0.5 else r.p99) for r in reports]
        ax.scatter(
            fanouts, measured, color=colour, marker=marker, zorder=3, label=f"{label}, measured"
        )
    ax.axhline(1000 * SLOW, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fan-out: leaves each user request waits for")
    ax.set_ylabel("user request latency (ms)")
    ax.set_title("The slowest of n leaves: the median crosses 1 s near a fan-out of 70")
    ax.legend()
    return ax


def plot_survival(
    samples: Mapping[str, Sequence[float]], *, ax: Any = None, title: str | None = None
) -> Any:
    """Draw survival curves, ``P(latency > x)`` against ``x``, on log-log axes.

    A survival curve shows the tail that a histogram hides: the share of requests
    slower than each latency, down to one in ten thousand.

    Args:
        samples: a label for each list of latencies in seconds.
        ax: a matplotlib ``Axes`` to draw on; a new figure when None.
        title: the plot title.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for label, values in samples.items():
        ordered = sorted(values)
        n = len(ordered)
        # Every point of the tail (the slowest 1,000), a thousand evenly spaced ones below:
        # the curve looks the same and draws fast.
        step = max(1, (n - 1000) // 1000)
        keep = [*range(0, max(0, n - 1000), step), *range(max(0, n - 1000), n)]
        ax.step(
            [1000 * ordered[i] for i in keep],
            [(n - i - 1) / n if i < n - 1 else 0.5 / n for i in keep],
            where="post",
            label=label,
        )
    ax.axhline(0.01, color="grey", linestyle="--", linewidth=0.8, label="1 % (the p99)")
    ax.axvline(1000 * SLOW, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency x (ms)")
    ax.set_ylabel("share of requests slower than x")
    ax.set_title(title or "Survival curves: the tail, one request in ten thousand included")
    ax.legend()
    return ax


# 4. Fixes: timeouts and hedges ---------------------------------------------------------------
def false_timeout_share(
    timeout: float, *, requests: int = 100_000, leaf: Delay = LEAF_LATENCY, seed: int = 0
) -> float:
    """Return the share of ``requests`` fresh leaf requests that would time out after ``timeout`` s.

    Every leaf here is alive: each timeout is a false one, a slow answer given up on.

    Raises:
        ValueError: when ``timeout`` is negative or ``requests`` below 1.
    """
    limit = _non_negative("timeout", timeout)
    _count("requests", requests)
    rng = random.Random(seed)
    draw = leaf._sample
    return sum(draw(rng) > limit for _ in range(requests)) / requests


def _reference_timeout(latencies: Sequence[float], false_timeout_rate: float) -> float:
    return percentile(latencies, 100 * (1 - false_timeout_rate))


@checker("timeout_for")
def check_timeout_for(timeout_for: Callable[[list[float], float], float]) -> str:
    """Check ``timeout_for(latencies, false_timeout_rate)``: the percentile that gives that rate.

    Accepts the nearest-rank percentile and the interpolated ones of
    ``statistics.quantiles`` or numpy (one rank either side).
    """
    small = [0.012, 0.030, 0.011, 0.250, 0.010, 0.014, 0.013, 0.016, 0.015, 0.018]
    got = timeout_for(list(small), 0.1)
    expect(
        isinstance(got, int | float) and not isinstance(got, bool),
        f"timeout_for should return a number of seconds, got {got!r}",
    )
    expect(
        got != math.fsum(small) / len(small),
        f"{got!r} is the mean latency; a timeout comes from a percentile, not the mean",
    )
    expect(
        got != small[8],
        "the latencies arrive in any order: sort them before picking the percentile",
    )
    rng = random.Random(2)
    measured = [LEAF_LATENCY.sample(rng) for _ in range(10_000)]
    expect(
        timeout_for(list(measured), 0.1) != _reference_timeout(measured, 0.1 / 100),
        "false_timeout_rate is a fraction: 0.001 means 0.1 %, not 0.001 %",
    )
    ordered = sorted(measured)
    rank = ordered.index(_reference_timeout(measured, 0.001))  # the p99.9, 0-based
    got = timeout_for(list(measured), 0.001)
    expect(
        isinstance(got, int | float) and not isinstance(got, bool),
        f"timeout_for should return a number of seconds, got {got!r}",
    )
    above = sum(x > got for x in measured) / len(measured)
    expect(
        got != ordered[-1],
        "the slowest latency ever seen makes no request time out, and a dead leaf holds "
        "the caller that long; a 0.1 % rate lets ten of these 10,000 latencies be above it",
    )
    expect(
        got >= ordered[rank - 1],
        f"with 10,000 leaf latencies and a 0.1 % false-timeout rate your timeout is "
        f"{got * 1000:.1f} ms, and {above:.2%} of the latencies are above it: more than "
        "the 0.1 % you accept",
    )
    expect(
        got <= ordered[rank + 1],
        f"your timeout of {got * 1000:.0f} ms is longer than needed: only {above:.3%} "
        "of the latencies are above it; the 0.1 % cut is lower",
    )
    return f"with 10,000 leaf latencies and a 0.1 % false-timeout rate it gives {got:.2f} s"


@checker("hedged_latency")
def check_hedged_latency(hedged_latency: Callable[[float, float, float], float]) -> str:
    """Check ``hedged_latency(first, second, hedge_after)`` on the cases that trip students."""
    cases = [
        # (first, second, hedge_after, expected, what goes wrong when it fails)
        (0.010, 0.500, 0.015, 0.010, "the first answer came before hedge_after: no hedge was sent"),
        (2.000, 0.010, 0.015, 0.025, "the hedge leaves at hedge_after: it answers then + second"),
        (0.020, 0.010, 0.015, 0.020, "the first copy still runs after the hedge leaves: the "
         "earlier answer wins"),
        (0.016, 1.000, 0.015, 0.016, "the hedge was sent but the first copy answered first"),
    ]  # fmt: skip
    for first, second, after, expected, why in cases:
        got = hedged_latency(first, second, after)
        expect(
            isinstance(got, int | float) and not isinstance(got, bool),
            f"hedged_latency should return seconds, got {got!r}",
        )
        expect(
            math.isclose(got, expected, abs_tol=1e-9),
            f"hedged_latency({first}, {second}, {after}) should be {expected}, got {got!r}: {why}",
        )
    return "checked with no hedge, a winning hedge, and a first copy that still wins"
