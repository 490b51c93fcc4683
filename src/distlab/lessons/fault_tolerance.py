"""Fault-tolerance experiments, as lesson 04 runs them, and the checkers of its "Your turn" cells.

Each function runs one seeded experiment and returns a report, so the notebook shows a
number and ``tests/lessons/test_fault_tolerance.py`` recomputes the same number against theory:

* redundancy: ``simulate_availability`` lets replicas fail and get repaired at random
  (and, optionally, a dependency they all share) and measures how often at least one is up;
* failure detection: ``heartbeat_arrivals`` sends heartbeats over a slow network,
  ``false_suspicions`` counts the timeouts a detector would raise against a node that is
  alive, ``false_suspicion_rate`` is the theory; ``detection_delays`` crashes the node
  and times the detector (a ``HeartbeatDetector`` node with a timer);
* failover: ``failover`` runs a primary, a backup, a client and a storage node, crashes
  the primary or cuts it off from the backup, and counts outage, double-served requests
  and two-primary time, without a guard, with fencing tokens or with a lease;
* retries: ``recovering_server`` sends clients retrying with a backoff strategy against
  a server that is down and then recovers with limited capacity; ``retry_amplification``
  stacks retrying layers above a dead one, with or without a retry budget;
* recovery: ``catch_up`` restarts a crashed replica and lets it catch up from the
  leader's log, or from a snapshot and the log when the log was compacted.

Every experiment is seeded: the same arguments give the same report.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from distlab.lessons.checks import checker, expect
from distlab.patterns.retry import Backoff, RetryBudget
from distlab.sim.netsim import Context, Delay, Network, Node
from distlab.sim.queueing import OK, QueueingServer

__all__ = [
    "SLOW_NETWORK",
    "AmplificationReport",
    "AvailabilityReport",
    "CatchUpReport",
    "FailoverReport",
    "HeartbeatDetector",
    "RecoveryReport",
    "catch_up",
    "catch_up_theory",
    "check_fencing",
    "check_full_jitter",
    "check_replicated_availability",
    "detection_delays",
    "failover",
    "false_suspicion_rate",
    "false_suspicions",
    "heartbeat_arrivals",
    "plot_catch_up",
    "plot_detector_tradeoff",
    "plot_retry_load",
    "recovering_server",
    "retry_amplification",
    "simulate_availability",
]

SLOW_NETWORK = Delay.exponential(0.25, minimum=0.05)
"""A slow, jittery link for section 2: at least 50 ms, 250 ms on average, a long tail."""


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _share(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError(f"{name} must be a probability in (0, 1), got {value!r}")
    return float(value)


# 1. Redundancy --------------------------------------------------------------------------
@dataclass(frozen=True)
class AvailabilityReport:
    """What ``simulate_availability`` measured.

    Attributes:
        replicas: how many replicas serve the same requests.
        replica_availability: the share of time each replica is up, on average.
        shared: the availability of a dependency all replicas share, or None.
        hours: simulated hours.
        availability: measured share of time at least one replica was up (and the
            shared dependency, if any).
        outages: how many times the service went down.
    """

    replicas: int
    replica_availability: float
    shared: float | None
    hours: float
    availability: float
    outages: int

    @property
    def independent_theory(self) -> float:
        """``1 - (1 - a) ** n``: the arithmetic for independent replicas."""
        return 1 - (1 - self.replica_availability) ** self.replicas

    @property
    def theory(self) -> float:
        """The theory for this setup: the independent arithmetic times the shared part."""
        return self.independent_theory * (1.0 if self.shared is None else self.shared)

    @property
    def downtime_hours_per_year(self) -> float:
        """Measured unavailability, as hours down in a year of 8,760 hours."""
        return (1 - self.availability) * 8760


def simulate_availability(
    replicas: int,
    *,
    availability: float = 0.9,
    mttr: float = 1.0,
    hours: float = 100_000,
    shared: float | None = None,
    seed: int = 0,
) -> AvailabilityReport:
    """Let ``replicas`` fail and get repaired independently; measure the service's availability.

    Each replica alternates between up and down for exponentially distributed times:
    down for ``mttr`` hours on average, up for ``mttr * a / (1 - a)`` so that it is up a
    share ``a`` of the time. The service is up while at least one replica is up, and,
    with ``shared``, while a dependency all replicas share (the same power feed, zone or
    configuration push) is up too; that dependency fails and is repaired the same way.

    Args:
        replicas: replicas (>= 1).
        availability: each replica's share of time up, in (0, 1).
        mttr: mean time to repair, in hours (> 0).
        hours: how long to simulate (> 0).
        shared: availability of a shared dependency in (0, 1), or None for none.
        seed: seeds every draw.

    Raises:
        ValueError: when a setting is out of range.
    """
    _count("replicas", replicas)
    a = _share("availability", availability)
    repair = _positive("mttr", mttr)
    horizon = _positive("hours", hours)
    if shared is not None:
        _share("shared", shared)
    rng = random.Random(seed)
    events: list[tuple[float, int, bool]] = []  # (time, +1 down / -1 repaired, is_shared)
    processes = [(a, False)] * replicas + ([(shared, True)] if shared is not None else [])
    for up_share, is_shared in processes:
        up_mean = repair * up_share / (1 - up_share)
        t = 0.0
        while True:
            t += rng.expovariate(1 / up_mean)
            if t >= horizon:
                break
            down = rng.expovariate(1 / repair)
            events.append((t, 1, is_shared))
            events.append((min(horizon, t + down), -1, is_shared))
            t += down
    events.sort()
    replicas_down = shared_down = outages = 0
    last = downtime = 0.0
    was_down = False
    for t, change, is_shared in events:
        if was_down:
            downtime += t - last
        last = t
        if is_shared:
            shared_down += change
        else:
            replicas_down += change
        down_now = replicas_down == replicas or shared_down > 0
        outages += down_now and not was_down
        was_down = down_now
    if was_down:
        downtime += horizon - last
    return AvailabilityReport(
        replicas=replicas,
        replica_availability=a,
        shared=shared,
        hours=horizon,
        availability=1 - downtime / horizon,
        outages=outages,
    )


@checker("replicated_availability")
def check_replicated_availability(replicated_availability: Callable[[float, int], float]) -> str:
    """Check ``replicated_availability(a, n)``: the service is down only if all n are down."""
    got = replicated_availability(0.9, 3)
    expect(
        isinstance(got, int | float) and not isinstance(got, bool),
        f"replicated_availability should return a number, got {got!r}",
    )
    expect(
        not math.isclose(got, 0.9**3),
        "0.9 ** 3 is the chance that all three are up: what a chain of services needs; "
        "replicas need just one of them up",
    )
    expect(
        not math.isclose(got, 0.1**3),
        "0.1 ** 3 is the chance that all three are down: the service's unavailability; "
        "its availability is one minus that",
    )
    expect(
        not math.isclose(got, 1 - 0.9**3),
        "1 - 0.9 ** 3 is the chance that at least one is down; the service is down only "
        "when every replica is",
    )
    expect(got <= 1, f"an availability is at most 1 (100 %), got {got!r}")
    for a, n in [(0.9, 3), (0.99, 2), (0.5, 1), (0.95, 4)]:
        got = replicated_availability(a, n)
        want = 1 - (1 - a) ** n
        expect(
            math.isclose(got, want, rel_tol=1e-9),
            f"replicated_availability({a}, {n}) should be {want:.6g}, got {got!r}",
        )
    return "checked on four cases, from one replica to four"


# 2. Failure detection ------------------------------------------------------------------------
class HeartbeatDetector(Node):
    """Suspect a node when no heartbeat has arrived for ``timeout`` seconds.

    Every heartbeat re-arms a timer; when it fires, the detector suspects the node
    (appends the time to ``suspicions``) until the next heartbeat arrives.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = _positive("timeout", timeout)
        self.suspicions: list[float] = []
        self.arrivals: list[float] = []
        self._timer: int | None = None

    def on_start(self, ctx: Context) -> None:
        """Start waiting for the first heartbeat."""
        self._timer = ctx.set_timer(self.timeout)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        """A heartbeat: trust the node again and wait another ``timeout``."""
        self.arrivals.append(ctx.now)
        if self._timer is not None:
            ctx.cancel_timer(self._timer)
        self._timer = ctx.set_timer(self.timeout)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        """No heartbeat for ``timeout`` seconds: suspect."""
        self.suspicions.append(ctx.now)
        self._timer = None


def heartbeat_arrivals(
    *,
    count: int = 20_000,
    interval: float = 1.0,
    delay: Delay = SLOW_NETWORK,
    seed: int = 0,
) -> list[float]:
    """Send ``count`` heartbeats, one every ``interval`` s, and return their arrival times.

    The node never fails: every suspicion a detector raises on these arrivals is false.

    Raises:
        ValueError: when ``count`` or ``interval`` is out of range.
    """
    _count("count", count)
    gap = _positive("interval", interval)
    net = Network(seed=seed, delay=delay)
    arrivals: list[float] = []
    net.add_node("worker", lambda ctx, src, msg: None)
    net.add_node("monitor", lambda ctx, src, msg: arrivals.append(ctx.now))
    for i in range(count):
        net.send("worker", "monitor", i, at=i * gap)
    net.run(max_events=None)
    return arrivals


def false_suspicions(arrivals: Sequence[float], timeout: float) -> int:
    """Count the suspicions a detector with ``timeout`` raises on these heartbeat arrivals.

    A detector re-arms its timer at every arrival, so it fires once for every gap between
    consecutive arrivals longer than ``timeout`` (what ``HeartbeatDetector`` does, without
    rerunning the network for every timeout).
    """
    ordered = sorted(arrivals)
    return sum(b - a > timeout for a, b in itertools.pairwise(ordered))


def false_suspicion_rate(
    timeout: float, *, interval: float = 1.0, delay: Delay = SLOW_NETWORK, steps: int = 400
) -> float:
    """Return the theoretical number of false suspicions per heartbeat.

    Heartbeat ``k`` arrives at ``k * interval + D_k`` with independent delays ``D``. The
    detector fires after it iff no other heartbeat arrives in the next ``timeout``
    seconds, so the rate is ``E[prod_m (1 - P(0 < m * interval + D_m - D_k <= timeout))]``
    over the delay ``D_k``: a numerical integral over ``delay.cdf`` in ``steps`` slices.
    """
    limit = _positive("timeout", timeout)
    gap = _positive("interval", interval)
    low, top = delay.quantile(1e-12), delay.quantile(1 - 1e-12)
    cdf = delay.cdf
    total = 0.0
    for i in range(steps):
        lo = low + (top - low) * i / steps
        hi = low + (top - low) * (i + 1) / steps
        weight = cdf(hi) - cdf(lo)
        if weight <= 0:
            continue
        d = (lo + hi) / 2
        quiet = 1.0
        # Only heartbeats k + m whose delay could land them in (d, d + timeout] matter:
        # m * interval + D_m - d in (0, timeout] with low <= D_m <= top.
        for m in range(math.floor((d - top) / gap), math.ceil((d + limit - low) / gap) + 1):
            if m:
                quiet *= 1 - (cdf(d + limit - m * gap) - cdf(d - m * gap))
        total += weight * quiet
    return total


def detection_delays(
    timeout: float,
    *,
    trials: int = 200,
    interval: float = 1.0,
    delay: Delay = SLOW_NETWORK,
    seed: int = 0,
) -> list[float]:
    """Crash a heartbeating node ``trials`` times; return how long the detector took each time.

    Each trial runs a worker that heartbeats every ``interval`` s and a
    ``HeartbeatDetector``; the worker crashes at a random moment after 10 s, and the
    delay is the time from the crash to the detector's last suspicion (the one no
    heartbeat follows).

    Raises:
        ValueError: when a setting is out of range.
    """
    _count("trials", trials)
    gap = _positive("interval", interval)
    rng = random.Random(seed)
    delays = []
    for trial in range(trials):
        net = Network(seed=rng.randrange(2**32), delay=delay)
        detector = HeartbeatDetector(timeout)
        crash = 10.0 + rng.uniform(0.0, gap)
        net.add_node("worker", lambda ctx, src, msg: None)
        net.add_node("monitor", detector)
        for i in range(math.ceil(crash / gap) + 1):
            if i * gap < crash:
                net.send("worker", "monitor", trial, at=i * gap)
        net.crash("worker", at=crash)
        net.run(max_events=None)
        delays.append(detector.suspicions[-1] - crash)
    return delays


def plot_detector_tradeoff(
    timeouts: Sequence[float],
    measured_per_hour: Sequence[float],
    detection: Sequence[tuple[float, float]],
    *,
    interval: float = 1.0,
    delay: Delay = SLOW_NETWORK,
    ax: Any = None,
) -> Any:
    """Draw false suspicions per hour (log scale) and detection time against the timeout.

    Args:
        timeouts: the timeouts measured, in seconds.
        measured_per_hour: false suspicions per hour measured at each timeout.
        detection: ``(timeout, mean detection time)`` pairs measured, in seconds.
        interval: the heartbeat interval (for the theory curves).
        delay: the network delay (for the theory curves).
        ax: a matplotlib ``Axes``; a new figure when None.

    Returns:
        The left ``Axes`` (false suspicions); its twin holds the detection times.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    lo = min(min(timeouts), *(t for t, _ in detection))
    hi = max(max(timeouts), *(t for t, _ in detection))
    grid = [lo + i * (hi - lo) / 15 for i in range(16)]
    per_hour = 3600 / interval
    ax.plot(
        grid,
        [per_hour * false_suspicion_rate(t, interval=interval, delay=delay) for t in grid],
        color="tab:red",
        label="false suspicions per hour, theory",
    )
    shown = [(t, m) for t, m in zip(timeouts, measured_per_hour, strict=True) if m > 0]
    ax.scatter(
        [t for t, _ in shown],
        [m for _, m in shown],
        color="tab:red",
        zorder=3,
        label="false suspicions per hour, measured",
    )
    ax.set_yscale("log")
    ax.set_xlabel("detector timeout (s)")
    ax.set_ylabel("false suspicions per hour", color="tab:red")
    right = ax.twinx()
    mean_delay = delay.mean or 0.0
    right.plot(
        grid,
        [t + mean_delay - interval / 2 for t in grid],
        color="tab:blue",
        linestyle="--",
        label="detection time, theory",
    )
    right.scatter(
        [t for t, _ in detection],
        [d for _, d in detection],
        color="tab:blue",
        marker="s",
        zorder=3,
        label="detection time, measured",
    )
    right.set_ylabel("time to detect a crash (s)", color="tab:blue")
    right.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.figure.legend(
        handles[0] + more[0], handles[1] + more[1], loc="outside lower center", ncols=2
    )
    ax.set_title("A timeout trades false suspicions for slow detection")
    return ax


# 3. Failover -----------------------------------------------------------------------------------
Guard = Literal["none", "fencing", "lease"]
Fault = Literal["crash", "partition"]


@dataclass(frozen=True)
class FailoverReport:
    """What ``failover`` observed.

    Attributes:
        fault: ``"crash"`` (the primary dies) or ``"partition"`` (it is cut off from the
            backup, but still reaches clients and storage).
        guard: ``"none"``, ``"fencing"`` or ``"lease"``.
        fault_at: when the fault began, in seconds.
        writes: the writes the storage accepted: ``(time, node, epoch, request)``.
        rejected: writes the storage refused (stale epoch): ``(time, node, epoch, request)``.
        primaries: ``(time, node, epoch)`` each time a node became primary.
    """

    fault: str
    guard: str
    fault_at: float
    writes: list[tuple[float, str, int, int]] = field(repr=False)
    rejected: list[tuple[float, str, int, int]] = field(repr=False)
    primaries: list[tuple[float, str, int]]

    @property
    def outage(self) -> float:
        """Longest time without an accepted write after the fault, in seconds."""
        times = [self.fault_at] + [t for t, *_ in self.writes if t >= self.fault_at]
        return max((b - a for a, b in itertools.pairwise(times)), default=math.inf)

    @property
    def stale_writes(self) -> int:
        """Accepted writes from an older epoch than one already written: the split brain's damage.

        Each is a write by a deposed primary landing after its successor's, the corruption
        a fencing token exists to stop.
        """
        highest = stale = 0
        for _, _, epoch, _ in self.writes:
            stale += epoch < highest
            highest = max(highest, epoch)
        return stale

    @property
    def split_brain(self) -> float:
        """Seconds from the first stale write to the last one (0 when there is none)."""
        highest = 0
        stale = []
        for t, _, epoch, _ in self.writes:
            if epoch < highest:
                stale.append(t)
            highest = max(highest, epoch)
        return stale[-1] - stale[0] if stale else 0.0

    @property
    def promotions(self) -> int:
        """How many times a node became primary after the start (failovers, and flapping)."""
        return len(self.primaries) - 1

    def served_by(self, node: str) -> int:
        """Accepted writes made by ``node``."""
        return sum(n == node for _, n, _, _ in self.writes)


class _Storage(Node):
    """Accept writes (with the fencing rule when fencing) and grant leases."""

    def __init__(self, guard: str, accept: Callable[[int, int], bool], lease: float) -> None:
        self.guard = guard
        self.accept = accept
        self.lease = lease
        self.highest = 0
        self.writes: list[tuple[float, str, int, int]] = []
        self.rejected: list[tuple[float, str, int, int]] = []
        self.holder: str | None = None
        self.expires = 0.0
        self.epoch = 1

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = msg[0]
        if kind == "write":
            _, epoch, request = msg
            if self.guard == "fencing" and not self.accept(epoch, self.highest):
                self.rejected.append((ctx.now, src, epoch, request))
                ctx.send(src, ("fenced", self.highest))
                return
            self.highest = max(self.highest, epoch)
            self.writes.append((ctx.now, src, epoch, request))
        elif kind == "lease" and (self.holder == src or ctx.now >= self.expires):
            # ("lease", sent_at): grant or renew; a new holder gets a new epoch
            if self.holder not in (None, src):
                self.epoch += 1
            self.holder = src
            self.expires = ctx.now + self.lease
            ctx.send(src, ("granted", msg[1], self.epoch))


class _Replica(Node):
    """A primary or a backup: heartbeats, failure detection, promotion, serving."""

    def __init__(
        self,
        name: str,
        peer: str,
        *,
        primary: bool,
        guard: str,
        timeout: float,
        heartbeat: float,
        lease: float,
        log: list[tuple[float, str, int]],
    ) -> None:
        self.name = name
        self.peer = peer
        self.primary = primary
        self.guard = guard
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.lease = lease
        self.log = log
        self.epoch = 1
        self.lease_until = 0.0
        self.deadline: int | None = None

    def on_start(self, ctx: Context) -> None:
        if self.primary:
            self.log.append((ctx.now, self.name, self.epoch))
            if self.guard == "lease":
                ctx.send("storage", ("lease", ctx.now))
        ctx.set_timer(self.heartbeat, "tick")
        if not self.primary:
            self.deadline = ctx.set_timer(self.timeout, "suspect")

    def serving(self, now: float) -> bool:
        return self.primary and (self.guard != "lease" or now < self.lease_until)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if payload == "tick":
            if self.primary:
                ctx.send(self.peer, ("heartbeat", self.epoch))
                if self.guard == "lease":
                    ctx.send("storage", ("lease", ctx.now))
            ctx.set_timer(self.heartbeat, "tick")
        elif payload == "suspect" and not self.primary:
            if self.guard == "lease":  # ask the storage for the lease; it decides
                ctx.send("storage", ("lease", ctx.now))
                self.deadline = ctx.set_timer(self.heartbeat, "suspect")
            else:
                self.promote(ctx, self.epoch + 1)

    def promote(self, ctx: Context, epoch: int) -> None:
        self.primary = True
        self.epoch = epoch
        self.log.append((ctx.now, self.name, epoch))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = msg[0]
        if kind == "request":
            if self.serving(ctx.now):
                ctx.send("storage", ("write", self.epoch, msg[1]))
        elif kind == "heartbeat":
            if msg[1] > self.epoch or not self.primary:
                if self.primary:  # a newer primary exists: step down
                    self.primary = False
                self.epoch = max(self.epoch, msg[1])
                if self.deadline is not None:
                    ctx.cancel_timer(self.deadline)
                self.deadline = ctx.set_timer(self.timeout, "suspect")
        elif kind == "fenced":
            self.primary = False
            self.epoch = max(self.epoch, msg[1])
            self.deadline = ctx.set_timer(self.timeout, "suspect")
        elif kind == "granted":
            _, sent_at, epoch = msg
            # The lease runs from when the request left: a safe lower bound.
            self.lease_until = sent_at + self.lease
            if not self.primary:
                if self.deadline is not None:
                    ctx.cancel_timer(self.deadline)
                self.promote(ctx, epoch)
            self.epoch = epoch


def _fence(token: int, highest: int) -> bool:
    return token >= highest


def failover(
    *,
    fault: Fault = "crash",
    guard: Guard = "none",
    timeout: float = 1.0,
    heartbeat: float = 0.1,
    lease: float = 1.0,
    fault_at: float = 5.0,
    heal_at: float = 10.0,
    duration: float = 15.0,
    accept: Callable[[int, int], bool] | None = None,
    seed: int = 0,
) -> FailoverReport:
    """Run a primary ``a`` and a backup ``b`` behind one client and one storage; inject a fault.

    The client sends request ``i`` at ``0.1 * i`` s to both nodes (a load balancer that
    does not know who is primary); a node serves it only while it believes it is primary,
    by writing it to the storage. The primary heartbeats the backup every ``heartbeat``
    s; the backup promotes itself after ``timeout`` s without one (a new epoch). A node
    that hears a heartbeat from a newer epoch steps down.

    Guards:
        ``"fencing"``: each write carries the writer's epoch; the storage refuses one
        below the highest it has seen (``accept(token, highest)``) and the refused node
        steps down. ``"lease"``: the storage grants a lease of ``lease`` s to one node at
        a time; a node serves only while its lease runs (counted from when it asked), and
        the backup becomes primary only by getting the lease.

    Args:
        fault: ``"crash"``: ``a`` dies at ``fault_at``; ``"partition"``: ``a`` and ``b``
            cannot reach each other from ``fault_at`` to ``heal_at`` (both still reach
            the client and the storage).
        guard: ``"none"``, ``"fencing"`` or ``"lease"``.
        timeout: the backup's failure-detection timeout, in seconds.
        heartbeat: seconds between heartbeats (and lease renewals).
        lease: the lease length, in seconds.
        fault_at: when the fault begins.
        heal_at: when a partition heals.
        duration: how long to run.
        accept: the storage's fencing rule ``accept(token, highest_seen)``.
        seed: seeds the network's delays.

    Raises:
        ValueError: when ``fault`` or ``guard`` is unknown or a time is out of order.
    """
    if fault not in ("crash", "partition"):
        raise ValueError(f"fault must be 'crash' or 'partition', got {fault!r}")
    if guard not in ("none", "fencing", "lease"):
        raise ValueError(f"guard must be 'none', 'fencing' or 'lease', got {guard!r}")
    for name, value in (("timeout", timeout), ("heartbeat", heartbeat), ("lease", lease)):
        _positive(name, value)
    if not 0 < fault_at < heal_at <= duration:
        raise ValueError(
            f"times must satisfy 0 < fault_at < heal_at <= duration, got {fault_at!r}, "
            f"{heal_at!r}, {duration!r}"
        )
    net = Network(seed=seed, delay=Delay.uniform(0.001, 0.005))
    log: list[tuple[float, str, int]] = []
    options = {
        "guard": guard,
        "timeout": timeout,
        "heartbeat": heartbeat,
        "lease": lease,
        "log": log,
    }
    storage = _Storage(guard, accept or _fence, lease)
    net.add_node("storage", storage)
    net.add_node("a", _Replica("a", "b", primary=True, **options))  # type: ignore[arg-type]
    net.add_node("b", _Replica("b", "a", primary=False, **options))  # type: ignore[arg-type]
    net.add_node("client", lambda ctx, src, msg: None)
    for i in range(int(duration / 0.1)):
        for node in ("a", "b"):
            net.send("client", node, ("request", i), at=0.1 * i + 0.05)
    if fault == "crash":
        net.crash("a", at=fault_at)
    else:
        net.partition("a", "b", start=fault_at, heal=heal_at)
    net.run(until=duration, max_events=None)
    return FailoverReport(
        fault=fault,
        guard=guard,
        fault_at=fault_at,
        writes=storage.writes,
        rejected=storage.rejected,
        primaries=log,
    )


@checker("accept_write")
def check_fencing(accept_write: Callable[[int, int], bool]) -> str:
    """Check a storage's fencing rule on the split brain of section 3, and on plain writes."""
    got = accept_write(1, 1)
    expect(isinstance(got, bool), f"accept_write should return True or False, got {got!r}")
    expect(
        got,
        "the current primary writes many times with the same token: accept_write(1, 1) "
        "must be True, or every write after the first is refused",
    )
    expect(
        accept_write(2, 1),
        "a new primary's first write carries a token above the highest seen: "
        "accept_write(2, 1) must be True, or failover can never succeed",
    )
    expect(
        not accept_write(1, 2),
        "a write with token 1 after one with token 2 comes from a deposed primary: "
        "accept_write(1, 2) must be False",
    )
    report = failover(fault="partition", guard="fencing", accept=accept_write, seed=3)
    expect(
        report.stale_writes == 0,
        f"in the split brain the storage accepted {report.stale_writes} writes from the "
        "deposed primary after its successor's",
    )
    crash = failover(fault="crash", guard="fencing", accept=accept_write, seed=3)
    expect(crash.served_by("b") > 0, "after a crash the backup's writes must be accepted")
    return (
        f"in the split brain the deposed primary's {len(report.rejected)} late writes are "
        "refused, and nothing stale is written"
    )


# 4. Retries -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecoveryReport:
    """What ``recovering_server`` measured for one backoff strategy.

    Attributes:
        backoff: the strategy, as text.
        clients: clients that each needed one request served.
        outage: the server was down from 0 to ``outage`` seconds.
        arrivals: the time of every request that reached the server.
        finished: the time each client's request was finally served.
    """

    backoff: str
    clients: int
    outage: float
    arrivals: list[float] = field(repr=False)
    finished: list[float] = field(repr=False)

    @property
    def calls(self) -> int:
        """Requests the server received, retries included."""
        return len(self.arrivals)

    @property
    def calls_during_outage(self) -> int:
        """Requests that arrived while the server was down."""
        return sum(t < self.outage for t in self.arrivals)

    @property
    def done_at(self) -> float:
        """When the last client was served, in seconds (inf if one never was)."""
        return max(self.finished) if len(self.finished) == self.clients else math.inf

    def peak(self, window: float = 1.0) -> int:
        """The most requests in any ``window`` seconds after recovery (bins from ``outage``)."""
        bins: dict[int, int] = {}
        for t in self.arrivals:
            if t >= self.outage:
                key = int((t - self.outage) / window)
                bins[key] = bins.get(key, 0) + 1
        return max(bins.values(), default=0)


class _RetryingClient(Node):
    """Send one request; on an error reply wait the backoff's next delay and resend."""

    def __init__(self, start: float, backoff: Backoff, finished: list[float]) -> None:
        self.start = start
        self.backoff = backoff
        self.finished = finished
        self.waits: Iterator[float] = iter(())

    def on_start(self, ctx: Context) -> None:
        self.waits = self.backoff.delays(ctx.rng)
        ctx.set_timer(self.start)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        ctx.send("server", ctx.node)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg[0] == OK:
            self.finished.append(ctx.now)
        else:
            ctx.set_timer(next(self.waits))


def recovering_server(
    backoff: Backoff,
    *,
    clients: int = 100,
    outage: float = 10.0,
    workers: int = 4,
    service: float = 0.1,
    spread: float = 0.1,
    seed: int = 0,
) -> RecoveryReport:
    """Send retrying clients at a server that is down, then recovers with limited capacity.

    Each client sends one request at a random moment in the first ``spread`` seconds and
    retries after every error reply, waiting what ``backoff`` says, until it is served.
    The server answers ``unavailable`` until ``outage`` s; then it serves ``workers``
    requests at a time, ``service`` s each, and refuses (``overloaded``) whatever finds
    every worker busy: ``workers / service`` requests per second at most.

    Raises:
        ValueError: when a setting is out of range.
    """
    _count("clients", clients)
    _count("workers", workers)
    down = _positive("outage", outage)
    _positive("service", service)
    _positive("spread", spread)
    net = Network(seed=seed, delay=Delay.uniform(0.005, 0.015))
    server = QueueingServer(service=service, workers=workers, queue_limit=0, outages=[(0.0, down)])
    net.add_node("server", server)
    finished: list[float] = []
    starts = random.Random(seed)
    for i in range(clients):
        net.add_node(f"client{i}", _RetryingClient(starts.uniform(0, spread), backoff, finished))
    net.run(max_events=None)
    return RecoveryReport(
        backoff=str(backoff),
        clients=clients,
        outage=down,
        arrivals=server.arrivals,
        finished=finished,
    )


def plot_retry_load(reports: Sequence[RecoveryReport], *, window: float = 0.1) -> Any:
    """Draw the requests the server receives per ``window`` seconds, one panel per strategy.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(reports), 1, figsize=(8, 1.6 * len(reports) + 0.6), sharex=True, layout="constrained"
    )
    axes = list(axes) if len(reports) > 1 else [axes]
    end = max(min(r.done_at, 120.0) for r in reports) + 1
    edges = [i * window for i in range(int(end / window) + 2)]
    for ax, report in zip(axes, reports, strict=True):
        counts = [0] * (len(edges) - 1)
        for t in report.arrivals:
            if t < edges[-1]:
                counts[int(t / window)] += 1
        ax.stairs(counts, edges, fill=True)  # one artist: thousands of bins draw fast
        ax.axvline(report.outage, color="grey", linestyle=":", linewidth=1)
        ax.set_ylabel(f"per {window:g} s")
        ax.set_title(f"{report.backoff}: {report.calls:,} requests", fontsize="small", loc="left")
    axes[-1].set_xlabel("time (s); the server recovers at the dotted line")
    fig.suptitle("Requests reaching the server")
    return fig


@dataclass(frozen=True)
class AmplificationReport:
    """What ``retry_amplification`` counted.

    Attributes:
        requests: user requests sent to the top layer.
        calls: calls received by each layer below the client, top first; the last one
            is the dead dependency.
    """

    requests: int
    calls: list[int]

    @property
    def bottom_load(self) -> float:
        """Calls the dead dependency received per user request."""
        return self.calls[-1] / self.requests


class _Layer(Node):
    """A service that calls the next layer and retries failed calls ``tries`` times in all."""

    def __init__(self, below: str, tries: int, budget: RetryBudget | None) -> None:
        self.below = below
        self.tries = tries
        self.budget = budget
        self.calls = 0
        self.pending: dict[Any, tuple[str, Any, int]] = {}  # my id -> (caller, their id, tries)
        self.next_id = 0

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind, request = msg
        if kind == "call":
            self.calls += 1
            self.next_id += 1
            self.pending[self.next_id] = (src, request, 1)
            if self.budget is not None:
                self.budget.record_request()
            ctx.send(self.below, ("call", self.next_id))
            return
        caller, theirs, tries = self.pending.pop(request)
        retry = kind == "error" and tries < self.tries
        if retry and self.budget is not None:
            retry = self.budget.try_retry()
        if retry:
            self.next_id += 1
            self.pending[self.next_id] = (caller, theirs, tries + 1)
            ctx.send(self.below, ("call", self.next_id))
        else:
            ctx.send(caller, (kind, theirs))


def retry_amplification(
    *,
    layers: int = 3,
    tries: int = 3,
    retry_layers: Sequence[int] | None = None,
    budget: float | None = None,
    requests: int = 100,
    seed: int = 0,
) -> AmplificationReport:
    """Stack ``layers`` services above a dead dependency; count the calls each one receives.

    Requests leave the client one every 10 ms. Each layer calls the one below it and, when
    the answer is an error, tries again, up to ``tries`` attempts in all; the dead
    dependency answers every call with an error at once.

    Args:
        layers: retrying services between the client and the dependency (>= 1).
        tries: attempts per call at a retrying layer, the first included (>= 1).
        retry_layers: which layers retry (0 is the top); all when None.
        budget: a retry budget ratio per layer (``RetryBudget(ratio=budget)``), or None.
        requests: user requests (>= 1).
        seed: seeds the network's delays.

    Raises:
        ValueError: when a setting is out of range.
    """
    _count("layers", layers)
    _count("tries", tries)
    _count("requests", requests)
    retrying = set(range(layers) if retry_layers is None else retry_layers)
    net = Network(seed=seed, delay=Delay.uniform(0.0005, 0.0015))
    names = [f"layer{i + 1}" for i in range(layers)] + ["dependency"]
    services = []
    for i in range(layers):
        ratio_budget = (
            RetryBudget(ratio=budget, window=None) if budget is not None and i in retrying else None
        )
        layer = _Layer(names[i + 1], tries if i in retrying else 1, ratio_budget)
        services.append(layer)
        net.add_node(names[i], layer)
    dead = {"calls": 0}

    def dependency(ctx: Context, src: str, msg: Any) -> None:
        dead["calls"] += 1
        ctx.reply(("error", msg[1]))

    net.add_node("dependency", dependency)
    net.add_node("client", lambda ctx, src, msg: None)
    for i in range(requests):
        net.send("client", names[0], ("call", i), at=0.01 * i)
    net.run(max_events=None)
    return AmplificationReport(
        requests=requests, calls=[s.calls for s in services] + [dead["calls"]]
    )


@checker("full_jitter_delay")
def check_full_jitter(
    full_jitter_delay: Callable[[int, float, float, random.Random], float],
) -> str:
    """Check ``full_jitter_delay(attempt, base, cap, rng)`` over many draws."""
    rng = random.Random(7)
    got = full_jitter_delay(0, 0.1, 10.0, rng)
    expect(
        isinstance(got, int | float) and not isinstance(got, bool),
        f"full_jitter_delay should return seconds, got {got!r}",
    )
    for attempt, ceiling in [(0, 0.1), (3, 0.8), (10, 10.0)]:
        draws = [full_jitter_delay(attempt, 0.1, 10.0, rng) for _ in range(2000)]
        expect(
            len(set(draws)) > 1,
            f"attempt {attempt} always waits {draws[0]!r}: without randomness every client "
            "retries at the same moment; draw the wait with rng.uniform",
        )
        expect(
            max(draws) <= ceiling + 1e-12,
            f"attempt {attempt} waited up to {max(draws):.3g} s; the most it may wait is "
            f"min(cap, base * 2 ** attempt) = {ceiling:g} s"
            + (" (did you forget the cap?)" if attempt == 10 else ""),
        )
        expect(
            min(draws) >= 0,
            f"attempt {attempt} drew a negative wait, {min(draws):.3g} s",
        )
        expect(
            min(draws) < 0.2 * ceiling,
            f"attempt {attempt} never waited less than {min(draws):.3g} s: full jitter draws "
            f"from 0 up to {ceiling:g} s (drawing from half the ceiling up is equal jitter)",
        )
        mean = math.fsum(draws) / len(draws)
        expect(
            abs(mean - ceiling / 2) <= 5 * ceiling / math.sqrt(12 * len(draws)),
            f"attempt {attempt} waited {mean:.3g} s on average; a uniform draw up to "
            f"{ceiling:g} s averages {ceiling / 2:g} s",
        )
    return "waits are uniform between 0 and min(cap, base * 2 ** attempt)"


# 5. Recovery ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatchUpReport:
    """What ``catch_up`` measured.

    Attributes:
        downtime: how long the follower was down, in seconds.
        missing: log entries the follower lacked when it came back.
        snapshot: whether the leader had to send a snapshot (the entries were compacted).
        caught_up_after: seconds from the restart until the follower had every entry.
        entries_sent: log entries the leader sent during the catch-up.
    """

    downtime: float
    missing: int
    snapshot: bool
    caught_up_after: float
    entries_sent: int


class _Leader(Node):
    """Append ``rate`` entries per second, ship each to the follower, answer its fetches."""

    def __init__(self, rate: float, retained: int | None, batch: int) -> None:
        self.rate = rate
        self.retained = retained
        self.batch = batch
        self.length = 0  # entries 1 .. length exist
        self.sent = 0

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(1 / self.rate)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        self.length += 1
        ctx.send("follower", ("append", self.length))
        ctx.set_timer(1 / self.rate)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        wanted = msg[1]  # ("fetch", first index wanted)
        first_kept = 1 if self.retained is None else max(1, self.length - self.retained + 1)
        if wanted < first_kept:  # compacted away: send the state as of now instead
            ctx.send(src, ("snapshot", self.length))
            return
        last = min(self.length, wanted + self.batch - 1)
        self.sent += max(0, last - wanted + 1)
        ctx.send(src, ("entries", wanted, last))


class _Follower(Node):
    """Apply entries in order; after a restart (its log kept on disk) fetch what it missed."""

    def __init__(self, apply_rate: float, state_size: int, install_rate: float) -> None:
        self.apply_rate = apply_rate
        self.state_size = state_size
        self.install_rate = install_rate
        self.applied = 0
        self.catching_up = False
        self.restarted_at: float | None = None
        self.caught_up_at: float | None = None
        self.snapshot = False

    def on_restart(self, ctx: Context) -> None:
        self.catching_up = True
        self.restarted_at = ctx.now
        ctx.send("leader", ("fetch", self.applied + 1))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = msg[0]
        if kind == "append":
            if not self.catching_up and msg[1] == self.applied + 1:
                self.applied = msg[1]
        elif kind == "entries":
            _, first, last = msg
            if last < first:  # nothing left to fetch: in sync with the live stream again
                self.catching_up = False
                self.caught_up_at = ctx.now
            else:
                ctx.set_timer((last - first + 1) / self.apply_rate, last)
        else:  # ("snapshot", index)
            self.snapshot = True
            ctx.set_timer(self.state_size / self.install_rate, msg[1])

    def on_timer(self, ctx: Context, last: int) -> None:
        self.applied = last
        ctx.send("leader", ("fetch", last + 1))


def catch_up(
    downtime: float,
    *,
    write_rate: float = 100.0,
    apply_rate: float = 1000.0,
    batch: int = 100,
    retained: int | None = 5000,
    state_size: int = 50_000,
    install_rate: float = 5000.0,
    crash_at: float = 10.0,
) -> CatchUpReport:
    """Crash a follower for ``downtime`` seconds while the leader keeps writing; time its catch-up.

    The leader appends ``write_rate`` entries per second and ships each to the follower.
    The follower keeps its log on disk, so after the restart it asks for the entries
    after the last one it applied, ``batch`` at a time, applying ``apply_rate`` per
    second, until it has them all. The leader keeps only the last ``retained`` entries
    (the rest is compacted into a snapshot): a follower that missed more must first
    install a snapshot of ``state_size`` keys at ``install_rate`` keys per second, then
    fetch the entries written since. Links take 1 ms each way.

    Raises:
        ValueError: when a setting is out of range, or the follower could never catch up
            (``apply_rate`` not above ``write_rate``).
    """
    down = _positive("downtime", downtime)
    rate = _positive("write_rate", write_rate)
    apply = _positive("apply_rate", apply_rate)
    _count("batch", batch)
    if retained is not None:
        _count("retained", retained)
    _count("state_size", state_size)
    install = _positive("install_rate", install_rate)
    start = _positive("crash_at", crash_at)
    if batch / (0.002 + batch / apply) <= rate:
        raise ValueError(
            f"apply_rate ({apply!r}/s, {batch} per round trip) must outpace write_rate "
            f"({rate!r}/s), or the follower never catches up"
        )
    net = Network(delay=0.001)
    leader = _Leader(rate, retained, batch)
    follower = _Follower(apply, state_size, install)
    net.add_node("leader", leader)
    net.add_node("follower", follower)
    net.crash("follower", at=start, restart_at=start + down)
    while follower.caught_up_at is None:
        net.run(until=net.now + 10.0, max_events=None)
        if net.now > start + down + 100 * (down + state_size / install + 10):
            raise AssertionError("the follower never caught up")  # pragma: no cover
    assert follower.restarted_at is not None
    # The leader appends entry k at k / write_rate: what existed at the restart, minus
    # what the follower had applied before the crash.
    missing = math.floor((start + down) * rate + 1e-9) - math.floor(start * rate + 1e-9)
    return CatchUpReport(
        downtime=down,
        missing=missing,
        snapshot=follower.snapshot,
        caught_up_after=follower.caught_up_at - follower.restarted_at,
        entries_sent=leader.sent,
    )


def catch_up_theory(
    missing: int,
    *,
    write_rate: float = 100.0,
    apply_rate: float = 1000.0,
    batch: int = 100,
    round_trip: float = 0.002,
    snapshot_seconds: float = 0.0,
) -> float:
    """Return the expected catch-up time in seconds.

    Fetching ``batch`` entries costs a round trip plus applying them, so the follower
    gains ``r = batch / (round_trip + batch / apply_rate)`` entries per second while the
    leader adds ``write_rate``: it closes a gap of ``missing`` entries in
    ``missing / (r - write_rate)`` seconds. A snapshot first costs ``snapshot_seconds``
    (plus a round trip), during which the leader writes ``write_rate * snapshot_seconds``
    entries more, and the follower starts from the snapshot's index instead.
    """
    gain = batch / (round_trip + batch / apply_rate)
    if snapshot_seconds:
        lag = write_rate * (snapshot_seconds + round_trip)
        return round_trip + snapshot_seconds + lag / (gain - write_rate)
    return missing / (gain - write_rate)


def plot_catch_up(
    reports: Sequence[CatchUpReport],
    *,
    write_rate: float = 100.0,
    retained: int = 5000,
    snapshot_seconds: float = 10.0,
    ax: Any = None,
) -> Any:
    """Draw catch-up time against downtime: measured points, theory for log and snapshot.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    longest = max(r.downtime for r in reports) * 1.1
    edge = retained / write_rate  # longer downtimes miss compacted entries
    grid = [edge * i / 50 for i in range(51)]
    ax.plot(
        grid,
        [catch_up_theory(round(d * write_rate), write_rate=write_rate) for d in grid],
        color="tab:blue",
        label="theory: replay the log",
    )
    ax.plot(
        [edge, longest],
        [catch_up_theory(0, write_rate=write_rate, snapshot_seconds=snapshot_seconds)] * 2,
        color="tab:orange",
        label="theory: snapshot, then the log",
    )
    ax.scatter(
        [r.downtime for r in reports],
        [r.caught_up_after for r in reports],
        color="black",
        zorder=3,
        label="measured",
    )
    ax.axvline(edge, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("follower downtime (s)")
    ax.set_ylabel("time to catch up (s)")
    ax.set_title(
        f"Catching up: the log while it holds the gap ({retained:,} entries), then a snapshot"
    )
    ax.legend()
    return ax
