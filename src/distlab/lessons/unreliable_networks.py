"""Message-delivery experiments on the simulated network, as lesson 01 runs them.

Each function builds a small ``distlab.sim.netsim.Network``, runs it and returns a report,
so a lesson can show a number and a test can recompute the very same number:

* ``send_stream``: a client fires ``count`` messages at a server, one every
  ``interval`` seconds, and never looks back (loss, delay, duplicates, reordering,
  partitions).
* ``deliver_with_retries``: the client waits ``timeout`` seconds for an
  acknowledgement and tries again, up to ``max_tries`` times (at-least-once delivery);
  the server optionally remembers request ids so a retry is not executed twice.
* ``replicated_register``: a client writes ``x = 1, 2, ...`` to two replicas that apply
  writes in arrival order; reordering and partitions make them disagree.

Every function is seeded: the same arguments give the same report.
Tracing is off (it would double the cost); build a ``Network`` yourself to get a digest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from distlab.sim.netsim import Context, Delay, DelaySpec, Network, NetworkStats, Node

__all__ = [
    "ReplicaReport",
    "RetryReport",
    "StreamReport",
    "deliver_with_retries",
    "replicated_register",
    "send_stream",
]

CLIENT = "client"
SERVER = "server"
REPLICAS = ("a", "b")
# Default delays (module-level: a Delay is immutable, so one instance can be shared).
RETRY_DELAY = Delay.uniform(0.01, 0.05)
REPLICA_DELAY = Delay.uniform(0.005, 0.05)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _window(partition: tuple[float, float] | None) -> tuple[float, float] | None:
    if partition is None:
        return None
    if (
        not isinstance(partition, tuple)
        or len(partition) != 2
        or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in partition)
        or not 0 <= partition[0] < partition[1] < math.inf  # also rejects NaN
    ):
        raise ValueError(
            "partition must be a (start, heal) tuple of seconds with 0 <= start < heal, "
            f"got {partition!r}"
        )
    return partition


@dataclass(frozen=True)
class StreamReport:
    """What ``send_stream`` observed.

    Attributes:
        count: messages the client sent (message ``i`` left at ``i * interval`` s).
        arrivals: message numbers in the order the server got them, copies included.
        stats: the network's counts and latencies.
    """

    count: int
    arrivals: list[int] = field(repr=False)
    stats: NetworkStats = field(repr=False)

    @property
    def distinct(self) -> int:
        """How many different messages arrived at least once."""
        return len(set(self.arrivals))

    @property
    def arrived_fraction(self) -> float:
        """The fraction of messages that arrived at least once."""
        return self.distinct / self.count


def send_stream(
    count: int = 1000,
    *,
    interval: float = 0.01,
    loss: float = 0.0,
    duplicate: float = 0.0,
    delay: DelaySpec = 0.02,
    partition: tuple[float, float] | None = None,
    seed: int = 0,
) -> StreamReport:
    """Send ``count`` numbered messages from a client to a server, one every ``interval`` s.

    Args:
        count: how many messages to send (>= 1).
        interval: seconds between two sends (> 0).
        loss: loss probability of the link, in [0, 1].
        duplicate: duplication probability of the link, in [0, 1].
        delay: the link delay (seconds, a ``Delay`` or ``f(rng)``).
        partition: ``(start, heal)``: client and server are cut apart in that window.
        seed: seeds every random choice.

    Returns:
        The arrivals and the network stats.

    Raises:
        ValueError: when a parameter is out of range (the message names it).
    """
    _positive_int("count", count)
    _positive("interval", interval)
    window = _window(partition)
    net = Network(seed=seed, loss=loss, duplicate=duplicate, delay=delay)
    arrivals: list[int] = []
    net.add_node(CLIENT, _ignore)
    net.add_node(SERVER, lambda ctx, src, msg: arrivals.append(msg))
    if window is not None:
        net.partition(CLIENT, SERVER, start=window[0], heal=window[1])
    for i in range(count):
        net.send(CLIENT, SERVER, i, at=i * interval)
    stats = net.run(max_events=None)
    return StreamReport(count=count, arrivals=arrivals, stats=stats)


def _ignore(ctx: Context, src: str, msg: Any) -> None:
    return None


@dataclass(frozen=True)
class RetryReport:
    """What ``deliver_with_retries`` observed.

    Attributes:
        requests: requests the client wanted done.
        attempts: request messages the client sent, retries included.
        delivered: requests that reached the server at least once.
        executed: times the server executed a request (a payment charged).
        acknowledged: requests the client saw acknowledged.
        stats: the network's counts and latencies.
    """

    requests: int
    attempts: int
    delivered: int
    executed: int
    acknowledged: int
    stats: NetworkStats = field(repr=False)

    @property
    def delivered_fraction(self) -> float:
        """The fraction of requests that reached the server at least once."""
        return self.delivered / self.requests

    @property
    def extra_executions(self) -> int:
        """Executions beyond the first of each request: double charges."""
        return self.executed - self.delivered


class _RetryingClient(Node):
    """Send each request, wait ``timeout`` for its ack, retry up to ``max_tries`` times."""

    def __init__(self, requests: int, interval: float, timeout: float, max_tries: int) -> None:
        self.requests = requests
        self.interval = interval
        self.timeout = timeout
        self.max_tries = max_tries
        self.tries = [0] * requests
        self.acked: set[int] = set()
        self.timers: dict[int, int] = {}

    def on_start(self, ctx: Context) -> None:
        for i in range(self.requests):
            ctx.set_timer(i * self.interval, i)

    def attempt(self, ctx: Context, request: int) -> None:
        self.tries[request] += 1
        ctx.send(SERVER, request)
        self.timers[request] = ctx.set_timer(self.timeout, request)

    def on_timer(self, ctx: Context, request: int) -> None:
        # The same timer starts a request (no try yet) and times out its latest try.
        tries = self.tries[request]
        if tries == 0 or (request not in self.acked and tries < self.max_tries):
            self.attempt(ctx, request)

    def on_message(self, ctx: Context, src: str, ack: int) -> None:
        if ack not in self.acked:
            self.acked.add(ack)
            ctx.cancel_timer(self.timers[ack])


class _PaymentServer(Node):
    """Execute each request it gets (charge a payment) and acknowledge it."""

    def __init__(self, dedup: bool) -> None:
        self.dedup = dedup
        self.seen: set[int] = set()
        self.executed = 0

    def on_message(self, ctx: Context, src: str, request: int) -> None:
        if not (self.dedup and request in self.seen):
            self.executed += 1  # charge the card
        self.seen.add(request)
        ctx.reply(request)  # acknowledge, also a retry that was not executed again


def deliver_with_retries(
    requests: int = 1000,
    *,
    max_tries: int = 3,
    timeout: float = 0.2,
    dedup: bool = False,
    interval: float = 0.01,
    loss: float = 0.1,
    duplicate: float = 0.0,
    delay: DelaySpec = RETRY_DELAY,
    seed: int = 0,
) -> RetryReport:
    """Deliver ``requests`` payments at least once: wait for an ack, retry on timeout.

    Loss and duplication hit requests and acknowledgements alike. Keep ``timeout`` above
    the longest round trip (twice the longest delay) so that every retry answers a real
    loss; a shorter timeout retries messages that were merely slow.

    Args:
        requests: how many payments to make (>= 1); request ``i`` starts at ``i * interval``.
        max_tries: attempts per request, the first one included (>= 1; 1 = no retry).
        timeout: seconds to wait for an acknowledgement before retrying (> 0).
        dedup: the server remembers request ids and does not execute one twice.
        interval: seconds between the first attempts of two requests (> 0).
        loss: loss probability of every link, in [0, 1].
        duplicate: duplication probability of every link, in [0, 1].
        delay: the one-way link delay.
        seed: seeds every random choice.

    Returns:
        Counts of attempts, deliveries, executions and acknowledgements.

    Raises:
        ValueError: when a parameter is out of range (the message names it).
    """
    _positive_int("requests", requests)
    _positive_int("max_tries", max_tries)
    _positive("timeout", timeout)
    _positive("interval", interval)
    net = Network(seed=seed, loss=loss, duplicate=duplicate, delay=delay)
    client = _RetryingClient(requests, interval, timeout, max_tries)
    server = _PaymentServer(dedup)
    net.add_node(CLIENT, client)
    net.add_node(SERVER, server)
    stats = net.run(max_events=None)
    return RetryReport(
        requests=requests,
        attempts=sum(client.tries),
        delivered=len(server.seen),
        executed=server.executed,
        acknowledged=len(client.acked),
        stats=stats,
    )


@dataclass(frozen=True)
class ReplicaReport:
    """What ``replicated_register`` observed.

    Attributes:
        writes: values written, ``1 .. writes``.
        applied: per replica, the values in the order it applied them.
        final: per replica, the value it ends with (0 if it got no write).
    """

    writes: int
    applied: dict[str, list[int]]
    final: dict[str, int]

    @property
    def agree(self) -> bool:
        """Whether both replicas end with the same value."""
        return len(set(self.final.values())) == 1

    def missed(self, replica: str) -> list[int]:
        """Return the writes ``replica`` never applied, in order."""
        got = set(self.applied[replica])
        return [v for v in range(1, self.writes + 1) if v not in got]


def replicated_register(
    writes: int = 20,
    *,
    interval: float = 0.01,
    delay: DelaySpec = REPLICA_DELAY,
    partition: tuple[float, float] | None = None,
    seed: int = 0,
) -> ReplicaReport:
    """Write ``x = 1 .. writes`` to replicas ``a`` and ``b``; each applies in arrival order.

    Write ``v`` leaves the client at ``(v - 1) * interval`` seconds, to both replicas.
    Replicas keep the last write that *arrived* (no version numbers), which is exactly
    what goes wrong when the network reorders.

    Args:
        writes: how many writes (>= 1).
        interval: seconds between two writes (> 0).
        delay: the one-way link delay.
        partition: ``(start, heal)``: replica ``b`` is cut off from the client then.
        seed: seeds every random choice.

    Returns:
        The order each replica applied the writes in, and their final values.

    Raises:
        ValueError: when a parameter is out of range (the message names it).
    """
    _positive_int("writes", writes)
    _positive("interval", interval)
    window = _window(partition)
    net = Network(seed=seed, delay=delay)
    applied: dict[str, list[int]] = {name: [] for name in REPLICAS}
    net.add_node(CLIENT, _ignore)
    for name in REPLICAS:
        net.add_node(name, lambda ctx, src, value: applied[ctx.node].append(value))
    if window is not None:
        net.partition(CLIENT, "b", start=window[0], heal=window[1])
    for v in range(1, writes + 1):
        for name in REPLICAS:
            net.send(CLIENT, name, v, at=(v - 1) * interval)
    net.run(max_events=None)
    final = {name: (values[-1] if values else 0) for name, values in applied.items()}
    return ReplicaReport(writes=writes, applied=applied, final=final)
