"""A server with workers and a waiting line, as a node of the network simulator.

Most of the latency of a busy service is waiting: a request that finds every worker
busy waits its turn. ``QueueingServer`` is that server on ``distlab.sim.netsim``:
``workers`` requests are served at once, in arrival order, each for a time drawn from
``service``; the others wait in a queue, up to ``queue_limit`` of them, and the rest are
refused at once. During an outage window it answers every request at once without
serving it, as a load balancer answers 503 for a dead backend.

Typical use, a single server 90 % busy (the M/M/1 queue of textbooks)::

    from distlab.sim.netsim import Delay, Network
    from distlab.sim.queueing import QueueingServer, poisson_arrivals

    net = Network(seed=1)
    server = QueueingServer(service=Delay.exponential(0.010), reply=False)
    net.add_node("server", server)
    net.add_node("client", lambda ctx, src, msg: None)
    poisson_arrivals(net, "client", "server", rate=90.0, count=50_000)
    net.run(max_events=None)
    server.mean_time_in_system()                  # about 1 / (100 - 90) = 0.1 s

Replies are ``(status, request)`` tuples sent back to the request's sender:

    ok           served; sent when the service ends
    overloaded   every worker busy and the queue full; sent at once
    unavailable  the request arrived during an outage window; sent at once

A crash (``Network.crash``) loses the queue and the requests in service, as a real
process loses its memory; the server starts empty when it restarts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from distlab.sim.netsim import Context, DelaySpec, Network, Node, _as_delay

__all__ = [
    "OK",
    "OVERLOADED",
    "UNAVAILABLE",
    "Completion",
    "QueueingServer",
    "mm1_mean_time_in_system",
    "poisson_arrivals",
]

OK: Final = "ok"
OVERLOADED: Final = "overloaded"
UNAVAILABLE: Final = "unavailable"


@dataclass(frozen=True, slots=True)
class Completion:
    """One request the server finished.

    Attributes:
        src: the node that sent it.
        request: the message as it arrived.
        arrived: virtual time it arrived, in seconds.
        started: virtual time a worker took it.
        finished: virtual time its service ended (the reply left then).
    """

    src: str
    request: Any
    arrived: float
    started: float
    finished: float

    @property
    def waited(self) -> float:
        """Seconds spent in the queue."""
        return self.started - self.arrived

    @property
    def time_in_system(self) -> float:
        """Seconds from arrival to the end of service (waiting plus service)."""
        return self.finished - self.arrived


def _windows(outages: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    checked = []
    for window in outages:
        if (
            not isinstance(window, tuple)
            or len(window) != 2
            or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in window)
            or not 0 <= window[0] < window[1]  # also rejects NaN
        ):
            raise ValueError(
                f"outages must be (start, end) tuples of seconds with 0 <= start < end, "
                f"got {window!r}"
            )
        checked.append((float(window[0]), float(window[1])))
    return tuple(sorted(checked))


class QueueingServer(Node):
    """A server node with ``workers`` parallel workers and a first-come, first-served queue.

    Args:
        service: how long one request takes a worker (seconds, a ``Delay`` or ``f(rng)``),
            drawn from the network's generator when the service starts.
        workers: requests served at the same time (>= 1).
        queue_limit: requests that may wait (>= 0); None for no limit. With 0, a request
            that finds every worker busy is refused at once.
        outages: ``(start, end)`` windows of virtual time during which every arriving
            request is answered ``unavailable`` at once.
        reply: send a reply for every request; turn it off to measure the server alone
            (half the events).

    Attributes:
        completed: every finished request, in the order they finished.
        arrivals: the arrival time of every request, refused ones included (the load).
        overloaded: requests refused because the queue was full.
        unavailable: requests answered during an outage.

    Raises:
        ValueError: when ``workers`` or ``queue_limit`` is out of range or an outage
            window is not ``(start, end)`` with ``0 <= start < end``.
    """

    def __init__(
        self,
        *,
        service: DelaySpec,
        workers: int = 1,
        queue_limit: int | None = None,
        outages: Sequence[tuple[float, float]] = (),
        reply: bool = True,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        if queue_limit is not None and (
            isinstance(queue_limit, bool) or not isinstance(queue_limit, int) or queue_limit < 0
        ):
            raise ValueError(f"queue_limit must be an int >= 0 or None, got {queue_limit!r}")
        self.service = _as_delay(service)
        self.workers = workers
        self.queue_limit = queue_limit
        self.outages = _windows(outages)
        self.reply = reply
        self.completed: list[Completion] = []
        self.arrivals: list[float] = []
        self.overloaded = 0
        self.unavailable = 0
        self._sample: Callable[..., float] = self.service.sample
        self._queue: deque[tuple[str, Any, float]] = deque()
        self._busy = 0

    # Node hooks -----------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        """Serve, queue or refuse an arriving request."""
        now = ctx.now
        self.arrivals.append(now)
        if self.outages and self.in_outage(now):
            self.unavailable += 1
            if self.reply:
                ctx.send(src, (UNAVAILABLE, msg))
        elif self._busy < self.workers:
            self._start(ctx, src, msg, now)
        elif self.queue_limit is None or len(self._queue) < self.queue_limit:
            self._queue.append((src, msg, now))
        else:
            self.overloaded += 1
            if self.reply:
                ctx.send(src, (OVERLOADED, msg))

    def on_timer(self, ctx: Context, payload: Any) -> None:
        """End one service: record it, reply, and take the next request in line."""
        src, msg, arrived, started = payload
        self.completed.append(Completion(src, msg, arrived, started, ctx.now))
        if self.reply:
            ctx.send(src, (OK, msg))
        self._busy -= 1
        if self._queue:
            self._start(ctx, *self._queue.popleft())

    def on_restart(self, ctx: Context) -> None:
        """Start empty: the crash lost the queue and the requests in service."""
        self._queue.clear()
        self._busy = 0

    # Reading results ------------------------------------------------------------------
    def in_outage(self, time: float) -> bool:
        """Return whether ``time`` falls in one of the outage windows."""
        return any(start <= time < end for start, end in self.outages)

    @property
    def queued(self) -> int:
        """Requests waiting now."""
        return len(self._queue)

    @property
    def busy(self) -> int:
        """Workers serving a request now."""
        return self._busy

    def times_in_system(self) -> list[float]:
        """Seconds from arrival to end of service of each completed request."""
        return [c.finished - c.arrived for c in self.completed]

    def mean_time_in_system(self) -> float:
        """The mean time in system of the completed requests, in seconds (nan if none)."""
        if not self.completed:
            return math.nan
        return math.fsum(c.finished - c.arrived for c in self.completed) / len(self.completed)

    # Internals ------------------------------------------------------------------------
    def _start(self, ctx: Context, src: str, msg: Any, arrived: float) -> None:
        self._busy += 1
        ctx.set_timer(self._sample(ctx.rng), (src, msg, arrived, ctx.now))


def poisson_arrivals(
    net: Network,
    src: str,
    dst: str,
    *,
    rate: float,
    count: int,
    start: float = 0.0,
    message: Callable[[int], Any] = int,
) -> float:
    """Schedule ``count`` requests from ``src`` to ``dst`` as a Poisson stream of ``rate`` per s.

    The gaps between requests are exponential with mean ``1 / rate`` (independent users
    arriving at random), drawn from the network's generator now, so the run stays seeded.

    Args:
        net: the network (not yet run past ``start``).
        src: the sending node.
        dst: the receiving node.
        rate: requests per second (> 0).
        count: how many requests (>= 1).
        start: virtual time the stream starts, in seconds.
        message: builds request ``i`` (default: the number ``i`` itself).

    Returns:
        The time of the last request, in seconds.

    Raises:
        ValueError: when ``rate`` or ``count`` is out of range.
    """
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise ValueError(f"rate must be a finite number of requests per second > 0, got {rate!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    draw = net.rng.expovariate
    t = float(start)
    for i in range(count):
        t += draw(rate)
        net.send(src, dst, message(i), at=t)
    return t


def mm1_mean_time_in_system(arrival_rate: float, service_rate: float) -> float:
    """Return the M/M/1 queue's mean time in system, ``1 / (service_rate - arrival_rate)``.

    One server, Poisson arrivals, exponential service times; the mean time from arrival
    to the end of service grows without bound as the server approaches 100 % busy.

    Raises:
        ValueError: when a rate is not > 0, or ``arrival_rate >= service_rate`` (the queue
            grows forever: there is no steady state).
    """
    for name, value in (("arrival_rate", arrival_rate), ("service_rate", service_rate)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < math.inf
        ):
            raise ValueError(f"{name} must be a finite number per second > 0, got {value!r}")
    if arrival_rate >= service_rate:
        raise ValueError(
            f"arrival_rate ({arrival_rate!r}/s) must be below service_rate ({service_rate!r}/s): "
            "a server that is 100 % busy or more has a queue that grows forever"
        )
    return 1.0 / (service_rate - arrival_rate)
