"""Message-delivery experiments on the simulated network, as lesson 01 runs them.

Each function builds a small ``distlab.sim.netsim.Network``, runs it and returns a report,
so a lesson can show a number and a test can recompute the very same number:

* ``send_stream``: a client fires ``count`` messages at a server, one every
  ``interval`` seconds, and never looks back (loss, delay, duplicates, reordering,
  partitions).
* ``deliver_with_retries``: the client waits ``timeout`` seconds for an
  acknowledgement and tries again, up to ``max_tries`` times (at-least-once delivery);
  the server optionally remembers request ids so a retry is not executed twice (its own
  rule, or the student's ``execute_once``); a partition can cut client and server apart.
* ``replicated_register``: a client writes ``x = 1, 2, ...`` to two replicas that apply
  writes in arrival order, or with a merge rule; reordering and partitions make them
  disagree.

Plots: ``plot_latency_survival`` (tails on log-log axes) and ``plot_arrivals`` (send
order against arrival order, duplicates marked). Checkers of the lesson's "Your turn"
cells: ``check_execute_once`` and ``check_merge``.

Every function is seeded: the same arguments give the same report.
Tracing is off (it would double the cost); build a ``Network`` yourself to get a digest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from distlab.lessons.checks import Wrong, checker, expect
from distlab.sim.netsim import Context, Delay, DelaySpec, Network, NetworkStats, Node

__all__ = [
    "ExecuteOnce",
    "Merge",
    "ReplicaReport",
    "RetryReport",
    "StreamReport",
    "check_execute_once",
    "check_merge",
    "deliver_with_retries",
    "plot_arrivals",
    "plot_latency_survival",
    "replicated_register",
    "send_stream",
]

ExecuteOnce = Callable[[int, Callable[[], Any], dict[int, Any]], Any]
"""``execute_once(request_id, execute, done)``: run ``execute()`` unless ``request_id`` was done."""

Merge = Callable[[tuple[int, Any] | None, tuple[int, Any]], tuple[int, Any]]
"""``merge(current, write)``: what a replica keeps when a ``(seq, value)`` write arrives."""

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
        delivered_requests: the ids of the requests that reached the server (request
            ``i`` started at ``i * interval`` s).
        interval: seconds between the first attempts of two requests.
    """

    requests: int
    attempts: int
    delivered: int
    executed: int
    acknowledged: int
    stats: NetworkStats = field(repr=False)
    delivered_requests: frozenset[int] = field(default=frozenset(), repr=False)
    interval: float = field(default=0.01, repr=False)

    def delivered_share(self, start: float, end: float) -> float:
        """Return the share of requests that started in ``[start, end)`` and reached the server.

        Raises:
            ValueError: when no request started in that window.
        """
        ids = [i for i in range(self.requests) if start <= i * self.interval < end]
        if not ids:
            raise ValueError(f"no request started in [{start}, {end})")
        return sum(i in self.delivered_requests for i in ids) / len(ids)

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

    def __init__(self, dedup: bool, execute_once: ExecuteOnce | None = None) -> None:
        self.dedup = dedup
        self.execute_once = execute_once
        self.done: dict[int, Any] = {}
        self.seen: set[int] = set()
        self.executed = 0

    def charge(self, request: int) -> str:
        self.executed += 1  # charge the card
        return f"receipt {request}"

    def on_message(self, ctx: Context, src: str, request: int) -> None:
        if self.execute_once is not None:
            self.execute_once(request, lambda: self.charge(request), self.done)
        elif not (self.dedup and request in self.seen):
            self.charge(request)
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
    partition: tuple[float, float] | None = None,
    execute_once: ExecuteOnce | None = None,
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
        partition: ``(start, heal)``: client and server are cut apart in that window.
        execute_once: the server's deduplication rule, ``execute_once(request_id,
            execute, done)``, instead of ``dedup`` (the lesson's "Your turn").
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
    window = _window(partition)
    net = Network(seed=seed, loss=loss, duplicate=duplicate, delay=delay)
    client = _RetryingClient(requests, interval, timeout, max_tries)
    server = _PaymentServer(dedup, execute_once)
    net.add_node(CLIENT, client)
    net.add_node(SERVER, server)
    if window is not None:
        net.partition(CLIENT, SERVER, start=window[0], heal=window[1])
    stats = net.run(max_events=None)
    return RetryReport(
        requests=requests,
        attempts=sum(client.tries),
        delivered=len(server.seen),
        executed=server.executed,
        acknowledged=len(client.acked),
        stats=stats,
        delivered_requests=frozenset(server.seen),
        interval=interval,
    )


@dataclass(frozen=True)
class ReplicaReport:
    """What ``replicated_register`` observed.

    Attributes:
        writes: values written, ``1 .. writes``.
        applied: per replica, the writes (by sequence number) in the order they arrived.
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
    merge: Merge | None = None,
    seed: int = 0,
) -> ReplicaReport:
    """Write ``x = 1 .. writes`` to replicas ``a`` and ``b``; each applies in arrival order.

    Write ``v`` leaves the client at ``(v - 1) * interval`` seconds, to both replicas,
    as the pair ``(v, v)``: the writer's sequence number and the value. Without ``merge``
    replicas keep the last write that *arrived* (no version numbers), which is exactly
    what goes wrong when the network reorders; with it each replica keeps
    ``merge(current, write)``.

    Args:
        writes: how many writes (>= 1).
        interval: seconds between two writes (> 0).
        delay: the one-way link delay.
        partition: ``(start, heal)``: replica ``b`` is cut off from the client then.
        merge: the replicas' rule, ``merge(current, write)`` on ``(seq, value)`` pairs
            (``current`` is None before the first write); default: keep the latest arrival.
        seed: seeds every random choice.

    Returns:
        The order each replica received the writes in, and their final values.

    Raises:
        ValueError: when a parameter is out of range (the message names it).
    """
    _positive_int("writes", writes)
    _positive("interval", interval)
    window = _window(partition)
    net = Network(seed=seed, delay=delay)
    applied: dict[str, list[int]] = {name: [] for name in REPLICAS}
    held: dict[str, tuple[int, Any] | None] = dict.fromkeys(REPLICAS)

    def replica(ctx: Context, src: str, write: tuple[int, Any]) -> None:
        applied[ctx.node].append(write[0])
        held[ctx.node] = write if merge is None else merge(held[ctx.node], write)

    net.add_node(CLIENT, _ignore)
    for name in REPLICAS:
        net.add_node(name, replica)
    if window is not None:
        net.partition(CLIENT, "b", start=window[0], heal=window[1])
    for v in range(1, writes + 1):
        for name in REPLICAS:
            net.send(CLIENT, name, (v, v), at=(v - 1) * interval)
    net.run(max_events=None)
    final = {name: (kept[1] if kept is not None else 0) for name, kept in held.items()}
    return ReplicaReport(writes=writes, applied=applied, final=final)


# Plots ---------------------------------------------------------------------------------------
def plot_latency_survival(
    samples: Mapping[str, Sequence[float]],
    *,
    marks: Mapping[str, float] | None = None,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Draw survival curves, ``P(latency > x)`` against ``x``, on log-log axes.

    A histogram hides the tail in a few invisible bars; a survival curve on log axes
    shows it: reading across at 1 % gives the p99 of each distribution.

    Args:
        samples: latencies in seconds, by label (one curve each).
        marks: named latencies in seconds to draw as vertical lines (e.g. each p99).
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.
        title: the plot title.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    for label, latencies in samples.items():
        ordered = sorted(latencies)
        n = len(ordered)
        # P(slower than the i-th fastest) = (n - 1 - i) / n; the last is 0, off a log axis.
        # Every point of the last 1 % (the tail), a few hundred of the body: same curve.
        stride = max(1, n // 300)
        body = range(0, n - 1 - n // 100, stride)
        chosen = [*body, *range(max(0, n - 1 - n // 100), n - 1)]
        ax.plot([ordered[i] * 1000 for i in chosen], [(n - 1 - i) / n for i in chosen], label=label)
    for index, (name, value) in enumerate((marks or {}).items()):
        style = ("--", ":", "-.", "-")[index % 4]
        ax.axvline(value * 1000, color="black", linestyle=style, linewidth=1, label=name)
    ax.axhline(0.01, color="0.6", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("one-way latency (ms, log scale)")
    ax.set_ylabel("share of messages slower (log scale)")
    ax.set_title(title or "Survival curves: how many messages are slower than x")
    ax.legend(fontsize="small")
    return ax


def plot_arrivals(stream: StreamReport, *, first: int = 60, ax: Any = None) -> Any:
    """Draw which message arrived at each position: in order, overtaken, or a duplicate.

    A message is *overtaken* when a message sent after it arrived before it; a
    *duplicate* is the second copy of a message. The dashed line y = x is where the
    points would lie with neither.

    Args:
        stream: a ``send_stream`` report.
        first: how many arrivals to draw.
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    arrivals = stream.arrivals[:first]
    kinds: dict[str, list[tuple[int, int]]] = {"in order": [], "overtaken": [], "duplicate": []}
    seen: set[int] = set()
    highest = -1
    for position, message in enumerate(arrivals):
        kind = "duplicate" if message in seen else "overtaken" if message < highest else "in order"
        kinds[kind].append((position, message))
        seen.add(message)
        highest = max(highest, message)
    top = max(arrivals, default=0)
    ax.plot([0, top], [0, top], color="black", linestyle="--", linewidth=1, label="y = x")
    ax.plot(range(len(arrivals)), arrivals, color="0.8", linewidth=1, zorder=1)
    styles = {
        "in order": ("o", 14, "tab:blue"),
        "overtaken": ("v", 30, "tab:orange"),
        "duplicate": ("x", 60, "tab:red"),
    }
    for kind, points in kinds.items():
        if points:
            marker, size, colour = styles[kind]
            xs, ys = zip(*points, strict=True)
            ax.scatter(xs, ys, marker=marker, s=size, color=colour, label=kind, zorder=2)
    ax.set_xlabel("arrival position at the server")
    ax.set_ylabel("message number (send order)")
    ax.set_title(f"The first {len(arrivals)} arrivals: messages overtaken and duplicated")
    ax.legend(fontsize="small", loc="upper left")
    return ax


# "Your turn" checkers -------------------------------------------------------------------------
@checker("your execute_once")
def check_execute_once(execute_once: ExecuteOnce) -> str:
    """Check a student's ``execute_once(request_id, execute, done)``.

    It calls ``execute()`` for a request id it has not done yet, remembers the result in
    the dict ``done`` (the server's memory), and returns it; for a repeated id it returns
    the remembered result without calling ``execute()`` again.
    """
    charges: list[int] = []

    def payment(request_id: int) -> Callable[[], str]:
        def execute() -> str:
            charges.append(request_id)
            return f"receipt {request_id}-{len(charges)}"

        return execute

    done: dict[int, Any] = {}
    first = execute_once(7, payment(7), done)
    expect(
        charges == [7], f"the first request 7 should be executed once, it ran {len(charges)} times"
    )
    expect(
        first == "receipt 7-1",
        f"return what execute() returned (the receipt), got {first!r}",
    )
    retry = execute_once(7, payment(7), done)
    expect(
        charges == [7],
        "the retry of request 7 was executed again: the customer is charged twice. Remember "
        "the ids already done in `done` and skip them",
    )
    expect(
        retry == first,
        f"the retry of request 7 should get the first answer again ({first!r}), got {retry!r}: "
        "the client retried because it lost that answer, so keep it in `done`",
    )
    execute_once(8, payment(8), done)
    expect(charges == [7, 8], "a new request id (8) must be executed")
    other_server: dict[int, Any] = {}
    execute_once(7, payment(7), other_server)
    expect(
        charges == [7, 8, 7],
        "another server, with its own empty `done`, must execute request 7: keep what was "
        "done in `done`, not in a global variable",
    )
    report = deliver_with_retries(2000, max_tries=3, seed=4, execute_once=execute_once)
    expect(
        report.extra_executions == 0,
        f"with your rule the lesson's 2000 payments were charged {report.extra_executions} "
        "extra times",
    )
    return (
        f"{report.delivered} of 2000 payments delivered, {report.executed} charged, 0 charged twice"
    )


@checker("your merge")
def check_merge(merge: Merge) -> str:
    """Check a student's ``merge(current, write)`` for one writer's sequence numbers.

    ``current`` is the ``(seq, value)`` a replica holds, or None before its first write;
    ``write`` is the ``(seq, value)`` that arrived. The replica must keep the pair with
    the higher sequence number, whatever order the writes arrive in.
    """
    try:
        first = merge(None, (1, "blue"))
    except (TypeError, AttributeError) as exc:
        raise Wrong(
            "the first write arrives when the replica holds nothing yet (current is None): "
            f"keep the write then (your code raised {type(exc).__name__}: {exc})"
        ) from None
    expect(first == (1, "blue"), f"merge(None, (1, 'blue')) should keep (1, 'blue'), got {first!r}")
    newer = merge((1, "blue"), (2, "red"))
    expect(
        newer == (2, "red"),
        f"a write with a higher sequence number replaces the current one: expected (2, 'red'), "
        f"got {newer!r}",
    )
    late = merge((3, "teal"), (2, "red"))
    expect(
        late == (3, "teal"),
        f"write 2 arrived after write 3 (the network reordered them): keep (3, 'teal'), the "
        f"higher sequence number, got {late!r}",
    )
    by_value = merge((3, "apple"), (2, "zebra"))
    expect(
        by_value == (3, "apple"),
        f"compare the sequence numbers, not the values: expected (3, 'apple'), got {by_value!r}",
    )
    again = merge((3, "teal"), (3, "teal"))
    expect(again == (3, "teal"), "a write delivered twice should change nothing")
    replicas = replicated_register(20, seed=1, merge=merge)
    expect(
        replicas.agree and replicas.final["a"] == 20,
        f"with your rule the lesson's replicas end with {replicas.final}: both should hold 20",
    )
    disagreed = sum(not replicated_register(20, seed=s).agree for s in range(20))
    fixed = sum(replicated_register(20, seed=s, merge=merge).agree for s in range(20))
    return (
        f"both replicas end with x = 20 for all {fixed} of 20 seeds "
        f"(without the rule {disagreed} of them disagreed)"
    )
