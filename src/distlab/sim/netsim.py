"""A seeded, replayable network simulator for lessons on unreliable networks.

Nodes exchange messages over links that can lose, duplicate, delay and reorder them;
partitions cut groups of nodes apart for a window of virtual time; nodes crash and
restart on schedule. Everything random is drawn from one ``random.Random(seed)`` and
events due at the same instant run in the order they were scheduled, so the same seed
replays the same run, in any process (in the spirit of MIT 6.5840's ``labrpc`` and
Jepsen's Maelstrom).

It is a plain discrete-event simulator: a heap of ``(time, sequence, event)`` tuples and
a loop that pops them. It does not use asyncio and never reads a real clock, which keeps
it fast (hundreds of thousands of messages per second; see ``benchmarks/bench_netsim.py``).

Typical use::

    from distlab.sim.netsim import Delay, Network

    def echo(ctx, src, msg):
        ctx.reply(("echo", msg))             # answer whoever sent it

    net = Network(seed=7, loss=0.1, delay=Delay.uniform(0.010, 0.050), trace=True)
    net.add_node("server", echo)
    net.add_node("client", lambda ctx, src, msg: None)
    for i in range(100):
        net.send("client", "server", i)
    stats = net.run()                        # until nothing is left to happen
    stats.sent                               # 100 requests + a reply per arrival: ~190
    stats.dropped["loss"]                    # ~10 % of those: ~19
    net.digest()                             # the same hex string for seed 7, every time

Semantics, in one place:

* A **partition** acts when a message is sent: a message sent while ``start <= now <
  heal`` between the two sides is dropped (reason ``"partition"``); messages already in
  flight are not affected.
* A **crash** acts when a message arrives: a crashed node drops what arrives (reason
  ``"crashed"``), its timers never fire (also after a restart: a crash loses them) and
  it sends nothing. On restart its ``on_restart`` hook runs; resetting in-memory state
  there is up to the node.
* **Loss** is drawn once per send; a message that survives is **duplicated** with the
  duplication probability (one extra copy with its own delay). ``sent`` counts calls to
  ``send``; ``delivered`` counts copies handed to a handler.
* A delivery counts as **reordered** when a message sent later on the same link
  (``src -> dst``) was delivered before it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from heapq import heappop as _heappop
from heapq import heappush as _heappush
from typing import Any, Final, TypeAlias

from distlab.errors import SimulationError

__all__ = [
    "DROP_REASONS",
    "Context",
    "Delay",
    "DelaySpec",
    "Hook",
    "LatencySummary",
    "MessageHandler",
    "Network",
    "NetworkStats",
    "Node",
    "TimerHandler",
    "TraceEvent",
    "canonical",
    "canonical_digest",
]

# Event kinds, stored as small ints in the heap tuples (fast to compare and dispatch).
_DELIVER: Final = 0
_TIMER: Final = 1
_SEND: Final = 2
_START: Final = 3
_CRASH: Final = 4
_RESTART: Final = 5

_INF: Final = math.inf

DROP_REASONS: Final = ("loss", "partition", "crashed")
"""The reasons a message is dropped, as keys of ``NetworkStats.dropped``."""


# --------------------------------------------------------------------------------------
# Delay distributions
# --------------------------------------------------------------------------------------
class Delay:
    """A one-way link delay distribution, in seconds.

    Build one with ``Delay.constant``, ``Delay.uniform``, ``Delay.exponential``,
    the heavy-tailed ``Delay.lognormal`` and ``Delay.pareto``, ``Delay.mixture`` of
    those, or ``Delay.custom``. Anywhere a delay is accepted, a plain number means
    ``Delay.constant(number)`` and a callable taking the simulator's ``random.Random``
    means ``Delay.custom(callable)``.

    Every delay but a custom one knows its distribution function, so a lesson can set
    a measured percentile beside the theoretical one: ``cdf(x)`` and ``quantile(p)``.

    Attributes:
        name: a short canonical description such as ``"uniform(0.01, 0.05)"``.
        mean: the distribution's mean in seconds; None when unknown (custom) and
            ``math.inf`` when it does not exist (a Pareto tail with ``alpha <= 1``).
        fixed: the value of a constant delay, else None (lets the simulator skip a draw).
    """

    __slots__ = ("_cdf", "_sample", "fixed", "mean", "name")

    def __init__(
        self,
        sample: Callable[[random.Random], float],
        *,
        name: str,
        mean: float | None,
        fixed: float | None = None,
        cdf: Callable[[float], float] | None = None,
    ) -> None:
        self._sample = sample
        self.name = name
        self.mean = mean
        self.fixed = fixed
        self._cdf = cdf

    @classmethod
    def constant(cls, seconds: float) -> Delay:
        """Return a delay that is always ``seconds``.

        Raises:
            ValueError: when ``seconds`` is negative or not finite.
        """
        value = _non_negative("delay", seconds)
        return cls(
            lambda _rng: value,
            name=f"constant({value!r})",
            mean=value,
            fixed=value,
            cdf=lambda x: 1.0 if x >= value else 0.0,
        )

    @classmethod
    def uniform(cls, low: float, high: float) -> Delay:
        """Return a delay drawn uniformly from ``[low, high]`` seconds.

        Raises:
            ValueError: when ``low`` is negative or ``high`` is below ``low``.
        """
        lo = _non_negative("low", low)
        hi = _non_negative("high", high)
        if hi < lo:
            raise ValueError(f"high must be >= low ({lo!r} s), got {hi!r}")
        span = hi - lo

        def cdf(x: float) -> float:
            if x >= hi:
                return 1.0
            return 0.0 if x <= lo else (x - lo) / span

        return cls(
            lambda rng: lo + span * rng.random(),
            name=f"uniform({lo!r}, {hi!r})",
            mean=(lo + hi) / 2,
            cdf=cdf,
        )

    @classmethod
    def exponential(cls, mean: float, *, minimum: float = 0.0) -> Delay:
        """Return ``minimum`` plus an exponentially distributed wait, with overall ``mean``.

        The long right tail is what real networks look like: most messages are quick,
        a few are very late.

        Args:
            mean: the mean delay in seconds (> ``minimum``).
            minimum: the shortest possible delay in seconds (>= 0), e.g. the speed of light.

        Raises:
            ValueError: when ``minimum`` is negative or ``mean`` is not above it.
        """
        low = _non_negative("minimum", minimum)
        avg = _non_negative("mean", mean)
        if avg <= low:
            raise ValueError(f"mean must be > minimum ({low!r} s), got {avg!r}")
        rate = 1.0 / (avg - low)
        return cls(
            lambda rng: low + rng.expovariate(rate),
            name=f"exponential(mean={avg!r}, minimum={low!r})",
            mean=avg,
            cdf=lambda x: 0.0 if x <= low else -math.expm1(-rate * (x - low)),
        )

    @classmethod
    def lognormal(cls, median: float, sigma: float, *, minimum: float = 0.0) -> Delay:
        """Return ``minimum`` plus a log-normal wait with the given ``median`` and ``sigma``.

        The log-normal is the usual model of a service's processing time: a bump around
        the median and a long right tail whose weight grows quickly with ``sigma``.

        Args:
            median: the median delay in seconds (> ``minimum``).
            sigma: the standard deviation of ``log(delay - minimum)`` (> 0).
            minimum: the shortest possible delay in seconds (>= 0).

        Raises:
            ValueError: when ``median`` is not above ``minimum`` or ``sigma`` is not > 0.
        """
        low = _non_negative("minimum", minimum)
        mid = _non_negative("median", median)
        if mid <= low:
            raise ValueError(f"median must be > minimum ({low!r} s), got {mid!r}")
        spread = _non_negative("sigma", sigma)
        if spread == 0:
            raise ValueError("sigma must be > 0, got 0.0; use Delay.constant for a fixed delay")
        mu = math.log(mid - low)

        def cdf(x: float) -> float:
            if x <= low:
                return 0.0
            return 0.5 * math.erfc(-(math.log(x - low) - mu) / (spread * math.sqrt(2.0)))

        exp = math.exp
        # gauss (Box-Muller, a pair per two calls) is about three times faster than
        # lognormvariate's rejection loop, and just as exact.
        return cls(
            lambda rng: low + exp(mu + spread * rng.gauss()),
            name=f"lognormal(median={mid!r}, sigma={spread!r}, minimum={low!r})",
            mean=low + math.exp(mu + spread * spread / 2),
            cdf=cdf,
        )

    @classmethod
    def pareto(cls, minimum: float, alpha: float) -> Delay:
        """Return a Pareto delay: at least ``minimum``, ``P(delay > x) = (minimum / x) ** alpha``.

        A power-law tail, the heaviest of the course's delays: each doubling of ``x``
        divides the chance of waiting longer by only ``2 ** alpha``. The mean is
        ``alpha * minimum / (alpha - 1)``, infinite when ``alpha <= 1``.

        Args:
            minimum: the shortest delay in seconds (> 0).
            alpha: the tail index (> 0); smaller is heavier.

        Raises:
            ValueError: when ``minimum`` or ``alpha`` is not > 0.
        """
        low = _non_negative("minimum", minimum)
        if low == 0:
            raise ValueError("minimum must be > 0 for a Pareto delay, got 0.0")
        index = _non_negative("alpha", alpha)
        if index == 0:
            raise ValueError("alpha must be > 0, got 0.0")
        return cls(
            lambda rng: low * rng.paretovariate(index),
            name=f"pareto(minimum={low!r}, alpha={index!r})",
            mean=index * low / (index - 1) if index > 1 else math.inf,
            cdf=lambda x: 0.0 if x <= low else 1.0 - (low / x) ** index,
        )

    @classmethod
    def mixture(cls, *components: tuple[float, Delay]) -> Delay:
        """Return a delay drawn from one of ``components``, picked with its weight.

        ``Delay.mixture((0.99, fast), (0.01, slow))`` models a service that is usually
        fast and, one request in a hundred, hits a garbage-collection pause or a disk flush.

        Args:
            components: ``(weight, delay)`` pairs; weights are > 0 and sum to 1.

        Raises:
            ValueError: when there is no component, a weight is not > 0 or the weights do
                not sum to 1 (within 1e-9).
            TypeError: when a component is not a ``(weight, Delay)`` pair.
        """
        if not components:
            raise ValueError("mixture needs at least one (weight, Delay) component")
        weights: list[float] = []
        delays: list[Delay] = []
        for component in components:
            if (
                not isinstance(component, tuple)
                or len(component) != 2
                or not isinstance(component[1], Delay)
            ):
                raise TypeError(f"each component must be a (weight, Delay) pair, got {component!r}")
            weight = _probability("weight", component[0])
            if weight == 0:
                raise ValueError("every weight must be > 0, got 0.0")
            weights.append(weight)
            delays.append(component[1])
        if abs(math.fsum(weights) - 1.0) > 1e-9:
            raise ValueError(f"the weights must sum to 1, got {math.fsum(weights)!r}")
        bounds = list(itertools.accumulate(weights))
        bounds[-1] = 1.0
        samplers = [delay._sample for delay in delays]
        if len(samplers) == 1:
            sample = samplers[0]
        elif len(samplers) == 2:  # the common case (fast, slow), without a loop
            split, (draw_a, draw_b) = bounds[0], samplers

            def sample(rng: random.Random) -> float:
                return draw_a(rng) if rng.random() < split else draw_b(rng)

        else:
            table = tuple(zip(bounds, samplers, strict=True))

            def sample(rng: random.Random) -> float:
                u = rng.random()
                for bound, draw in table:
                    if u < bound:
                        return draw(rng)
                return table[-1][1](rng)  # pragma: no cover - u < 1.0 == bounds[-1]

        pairs = list(zip(weights, delays, strict=True))
        known_means = [d.mean for d in delays if d.mean is not None]
        mean = (
            math.fsum(w * m for w, m in zip(weights, known_means, strict=True))
            if len(known_means) == len(delays)
            else None
        )
        known_cdfs = [d._cdf for d in delays if d._cdf is not None]

        def cdf(x: float) -> float:
            return math.fsum(w * f(x) for w, f in zip(weights, known_cdfs, strict=True))

        return cls(
            sample,
            name="mixture(" + ", ".join(f"{w!r}: {d.name}" for w, d in pairs) + ")",
            mean=mean,
            cdf=cdf if len(known_cdfs) == len(delays) else None,
        )

    @classmethod
    def custom(cls, sample: Callable[[random.Random], float], *, name: str = "custom") -> Delay:
        """Return a delay drawn by ``sample(rng)``; draw only from the ``rng`` it gets.

        A sample below zero, infinite or NaN raises ``ValueError`` when it is drawn.

        Raises:
            TypeError: when ``sample`` is not callable.
        """
        if not callable(sample):
            raise TypeError(f"sample must be callable as sample(rng), got {type(sample).__name__}")
        return cls(sample, name=name, mean=None)

    def sample(self, rng: random.Random) -> float:
        """Draw one delay in seconds from ``rng``."""
        return self._sample(rng)

    def cdf(self, seconds: float) -> float:
        """Return ``P(delay <= seconds)``.

        Raises:
            SimulationError: for a custom delay, whose distribution is unknown.
        """
        if self._cdf is None:
            raise SimulationError(
                f"Delay.{self.name} has no known distribution function; only custom delays lack one"
            )
        return self._cdf(seconds)

    def quantile(self, p: float) -> float:
        """Return the smallest delay ``x`` with ``cdf(x) >= p``, in seconds (to 1e-12 s).

        ``quantile(0.99)`` is the theoretical p99 that a measured one is compared with.

        Raises:
            ValueError: when ``p`` is not in (0, 1).
            SimulationError: for a custom delay, whose distribution is unknown.
        """
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 < p < 1.0:
            raise ValueError(f"p must be a probability in (0, 1), got {p!r}")
        if self.fixed is not None:
            return self.fixed
        low, high = 0.0, 1.0
        while self.cdf(high) < p:
            low, high = high, high * 2
        while high - low > 1e-12 * max(1.0, high):
            middle = (low + high) / 2
            if self.cdf(middle) >= p:
                high = middle
            else:
                low = middle
        return high

    def __repr__(self) -> str:
        return f"Delay.{self.name}"


DelaySpec: TypeAlias = Delay | float | int | Callable[[random.Random], float]
"""What a ``delay=`` option accepts: a Delay, a number of seconds, or ``f(rng) -> s``."""


def _as_delay(spec: DelaySpec) -> Delay:
    if isinstance(spec, Delay):
        return spec
    if isinstance(spec, bool):
        raise TypeError("delay must be a number of seconds, a Delay or a callable, got bool")
    if isinstance(spec, int | float):
        return Delay.constant(spec)
    if callable(spec):
        return Delay.custom(spec, name=getattr(spec, "__name__", "custom"))
    raise TypeError(
        f"delay must be a number of seconds, a Delay or a callable f(rng), got "
        f"{type(spec).__name__}"
    )


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return value


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a probability (a number in [0, 1]), got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


class _LinkConfig:
    """Resolved settings of one link (or the global default)."""

    __slots__ = ("delay", "duplicate", "fixed", "loss", "sample")

    def __init__(self, loss: float, duplicate: float, delay: Delay) -> None:
        self.loss = loss
        self.duplicate = duplicate
        self.delay = delay
        self.fixed = delay.fixed
        self.sample = delay._sample  # skip the method wrapper: one call less per send


class _Link:
    """One direction between two nodes: its settings, and its send/delivery counters.

    The simulator keeps one per (src, dst) pair in use, reached from the sender's state
    by the destination's name, so the hot path does one str-keyed dict lookup per send
    and none per delivery.
    """

    __slots__ = (
        "config",
        "dst",
        "duplicate",
        "fixed",
        "high",
        "loss",
        "next_seq",
        "sample",
        "src",
        "target",
    )

    def __init__(self, src: str, target: _NodeState, config: _LinkConfig) -> None:
        self.src = src
        self.dst = target.name
        self.target = target
        self.next_seq = 0  # sequence number of the next message sent on this link
        self.high = -1  # highest sequence number delivered so far
        self.configure(config)

    def configure(self, config: _LinkConfig) -> None:
        self.config = config
        self.loss = config.loss
        self.duplicate = config.duplicate
        self.fixed = config.fixed
        self.sample = config.sample


# --------------------------------------------------------------------------------------
# Nodes and their context
# --------------------------------------------------------------------------------------
class Context:
    """What a node's handlers use to act: send, reply, set and cancel timers, read time.

    One context exists per node; the simulator passes it to every handler call.

    Attributes:
        node: the name of the node this context belongs to.
        sender: the sender of the message being handled (None inside timers and hooks).
        rng: the simulator's seeded generator; draw randomness only from it.
        send: ``send(dst, msg)`` sends ``msg`` from this node to ``dst`` over the
            (unreliable) network; raises ``SimulationError`` when ``dst`` is unknown.
    """

    __slots__ = ("_net", "_state", "node", "rng", "send", "sender")

    def __init__(self, net: Network, state: _NodeState) -> None:
        self._net = net
        self._state = state
        self.node = state.name
        self.sender: str | None = None
        self.rng = net.rng
        # An attribute rather than a method: the partial (written in C) saves one Python
        # call on every message, which is most of what the simulator does.
        self.send: Callable[[str, Any], None] = functools.partial(net._send, state)

    @property
    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._net._now

    def reply(self, msg: Any) -> None:
        """Send ``msg`` back to the sender of the message being handled.

        Raises:
            SimulationError: when called outside a message handler.
        """
        if self.sender is None:
            raise SimulationError(
                f"node {self.node!r} called reply() outside a message handler; "
                "use send(dst, msg) in timers and hooks"
            )
        self._net._send(self._state, self.sender, msg)

    def set_timer(self, delay: float, payload: Any = None) -> int:
        """Fire this node's timer handler with ``payload`` after ``delay`` seconds.

        Returns:
            The timer id, for ``cancel_timer``.

        Raises:
            ValueError: when ``delay`` is negative or not finite.
        """
        return self._net._set_timer(self.node, delay, payload)

    def cancel_timer(self, timer_id: int) -> bool:
        """Cancel a timer; return True if it was still pending."""
        return self._net._cancel_timer(timer_id)


MessageHandler: TypeAlias = Callable[[Context, str, Any], None]
"""``handler(ctx, src, msg)``: called for each message delivered to a node."""
TimerHandler: TypeAlias = Callable[[Context, Any], None]
"""``on_timer(ctx, payload)``: called when a timer set with ``ctx.set_timer`` fires."""
Hook: TypeAlias = Callable[[Context], None]
"""``hook(ctx)``: ``on_start`` (when the node joins a run) or ``on_restart``."""


class Node:
    """Base class for nodes written as classes; override the handlers you need.

    Pass an instance to ``Network.add_node``. State kept on ``self`` survives a crash
    (as if it were on disk); reset what a real crash would lose in ``on_restart``.
    """

    def on_start(self, ctx: Context) -> None:
        """Run once when the node joins the network (at the time it was added)."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        """Handle ``msg`` delivered from ``src``."""

    def on_timer(self, ctx: Context, payload: Any) -> None:
        """Handle a timer set with ``ctx.set_timer(delay, payload)``."""

    def on_restart(self, ctx: Context) -> None:
        """Run when the node restarts after a crash."""


def _missing_timer_handler(ctx: Context, payload: Any) -> None:
    raise SimulationError(
        f"node {ctx.node!r} set a timer but has no timer handler; "
        "pass on_timer= to add_node or override Node.on_timer"
    )


def _no_hook(ctx: Context) -> None:
    return None


class _NodeState:
    __slots__ = (
        "ctx",
        "epoch",
        "name",
        "on_message",
        "on_restart",
        "on_start",
        "on_timer",
        "out",
        "up",
    )

    def __init__(
        self,
        net: Network,
        name: str,
        on_message: MessageHandler,
        on_timer: TimerHandler,
        on_start: Hook,
        on_restart: Hook,
    ) -> None:
        self.name = name
        self.out: dict[str, _Link] = {}  # outgoing links in use, by destination name
        self.ctx = Context(net, self)
        self.on_message = on_message
        self.on_timer = on_timer
        self.on_start = on_start
        self.on_restart = on_restart
        self.up = True
        self.epoch = 0


# --------------------------------------------------------------------------------------
# Results: statistics and trace
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencySummary:
    """Summary of one-way delivery latencies, in seconds.

    Percentiles use the nearest-rank method; every figure is 0.0 when ``count`` is 0.
    """

    count: int
    mean: float
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> LatencySummary:
        """Summarise ``latencies`` (seconds)."""
        n = len(latencies)
        if n == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(latencies)
        return cls(
            count=n,
            mean=math.fsum(ordered) / n,
            p50=_nearest_rank(ordered, 50),
            p99=_nearest_rank(ordered, 99),
            max=ordered[-1],
        )


def _nearest_rank(ordered: Sequence[float], percent: float) -> float:
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class NetworkStats:
    """Counts a lesson can show after (or during) a run.

    Attributes:
        sent: calls to ``send`` (duplicates not included).
        delivered: message copies handed to a handler (duplicates included).
        dropped: drops by reason: ``"loss"``, ``"partition"``, ``"crashed"``.
        duplicated: extra copies the network made.
        reordered: deliveries overtaken by a later message on the same link.
        in_flight: copies still travelling when the stats were taken.
        timers_fired: timer handler calls.
        latencies: one-way latency of each delivered copy, in delivery order (seconds).
    """

    sent: int
    delivered: int
    dropped: dict[str, int]
    duplicated: int
    reordered: int
    in_flight: int
    timers_fired: int
    latencies: list[float] = field(repr=False)

    @property
    def dropped_total(self) -> int:
        """Drops for every reason together."""
        return sum(self.dropped.values())

    def latency(self) -> LatencySummary:
        """Return mean, p50, p99 and max of the delivery latencies."""
        return LatencySummary.of(self.latencies)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts and the latency summary as a flat dict (no latency list)."""
        summary = self.latency()
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            **{f"dropped_{reason}": count for reason, count in self.dropped.items()},
            "duplicated": self.duplicated,
            "reordered": self.reordered,
            "in_flight": self.in_flight,
            "timers_fired": self.timers_fired,
            "latency_mean": summary.mean,
            "latency_p50": summary.p50,
            "latency_p99": summary.p99,
        }


@dataclass(frozen=True)
class TraceEvent:
    """One line of a run's trace.

    Attributes:
        time: virtual time in seconds.
        kind: ``send``, ``deliver``, ``drop``, ``duplicate``, ``timer``, ``start``,
            ``crash`` or ``restart``.
        src: the sending node (or the node concerned, for node events).
        dst: the receiving node, or None for node events.
        msg: the message or timer payload, or None.
        detail: the drop reason, or None.
    """

    time: float
    kind: str
    src: str
    dst: str | None
    msg: Any
    detail: str | None

    def canonical(self) -> str:
        """Return the line as hashed by ``Network.digest`` (stable across processes)."""
        return "|".join(
            (
                repr(float(self.time)),
                self.kind,
                self.src,
                "" if self.dst is None else self.dst,
                canonical(self.msg),
                "" if self.detail is None else self.detail,
            )
        )


def canonical(obj: Any) -> str:
    """Serialise plain data the same way in every process (for trace digests).

    Handles None, bool, int, float, str, bytes, enums, tuples, lists, dicts and sets
    (sorted, so ``hash()`` randomisation cannot change the result) and dataclasses.

    Raises:
        SimulationError: for an object whose repr shows a memory address.
    """
    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return repr(obj)
    if isinstance(obj, enum.Enum):
        return f"{type(obj).__name__}.{obj.name}"
    if isinstance(obj, tuple):
        return "(" + ",".join(canonical(x) for x in obj) + ")"
    if isinstance(obj, list):
        return "[" + ",".join(canonical(x) for x in obj) + "]"
    if isinstance(obj, dict):
        items = sorted((canonical(k), canonical(v)) for k, v in obj.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(obj, set | frozenset):
        return "set{" + ",".join(sorted(canonical(x) for x in obj)) + "}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        inner = ",".join(
            f"{f.name}={canonical(getattr(obj, f.name))}" for f in dataclasses.fields(obj)
        )
        return f"{type(obj).__name__}({inner})"
    text = repr(obj)
    if " at 0x" in text:
        raise SimulationError(
            f"a message of type {type(obj).__name__} has no stable representation (its repr "
            "shows a memory address), so the trace digest could not be replayed; send plain "
            "data (str, numbers, tuples, dicts) or a dataclass"
        )
    return text


def canonical_digest(items: Iterable[Any]) -> str:
    """Return the sha256 hex digest of ``items`` in ``canonical`` form, one per line.

    Equal digests mean equal items, in any process: the fingerprint every seeded
    experiment of the course prints (a fault log, a run's events).

    Raises:
        SimulationError: for an item ``canonical`` cannot serialise stably.
    """
    return _sha256_lines(canonical(item) for item in items)


def _sha256_lines(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------
class Network:
    """A simulated network of nodes; every setting is keyword-only and validated here.

    Args:
        seed: seeds the one ``random.Random`` that drives every random choice.
        loss: probability that a message is lost, in [0, 1].
        duplicate: probability that a delivered message arrives twice, in [0, 1].
        delay: one-way delay: a ``Delay``, a number of seconds, or ``f(rng) -> seconds``.
        trace: record every event, for ``trace`` and ``digest()`` (slower).

    Raises:
        ValueError: when a probability is outside [0, 1] or a delay is negative.
        TypeError: when an option has the wrong type.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        loss: float = 0.0,
        duplicate: float = 0.0,
        delay: DelaySpec = 0.0,
        trace: bool = False,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = seed
        self.rng = random.Random(seed)
        self._default = _LinkConfig(
            _probability("loss", loss), _probability("duplicate", duplicate), _as_delay(delay)
        )
        self._link_configs: dict[tuple[str, str], _LinkConfig] = {}
        self._nodes: dict[str, _NodeState] = {}
        # (start, heal, side_a, side_b)
        self._partitions: list[tuple[float, float, frozenset[str], frozenset[str]]] = []
        self._heap: list[tuple[Any, ...]] = []
        self._seq = itertools.count()
        self._now = 0.0
        self._timer_ids = itertools.count(1)
        self._live_timers: set[int] = set()
        self._trace: list[tuple[float, str, str, str | None, Any, str | None]] | None = (
            [] if trace else None
        )
        self._sent = 0
        self._delivered = 0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._duplicated = 0
        self._reordered = 0
        self._in_flight = 0
        self._timers_fired = 0
        self._latencies: list[float] = []

    # Building the network ---------------------------------------------------------------
    def add_node(
        self,
        name: str,
        handler: Node | MessageHandler,
        *,
        on_timer: TimerHandler | None = None,
        on_start: Hook | None = None,
        on_restart: Hook | None = None,
    ) -> Context:
        """Add a node; its ``on_start`` runs at the current virtual time once ``run`` starts.

        Args:
            name: a unique node name.
            handler: a ``Node`` instance, or a callable ``handler(ctx, src, msg)``.
            on_timer: ``on_timer(ctx, payload)`` for a callable handler.
            on_start: ``on_start(ctx)`` for a callable handler.
            on_restart: ``on_restart(ctx)`` for a callable handler, run after a crash.

        Returns:
            The node's context (handy to start timers or sends from outside a handler).

        Raises:
            SimulationError: when a node with this name exists already.
            TypeError: when ``name`` is not a non-empty str, ``handler`` is neither a
                Node nor callable, or hooks are passed alongside a Node instance.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        if name in self._nodes:
            raise SimulationError(f"node {name!r} exists already; node names must be unique")
        if isinstance(handler, Node):
            if on_timer or on_start or on_restart:
                raise TypeError(
                    f"node {name!r}: pass on_timer/on_start/on_restart only with a callable "
                    "handler; a Node overrides its methods instead"
                )
            state = _NodeState(
                self, name, handler.on_message, handler.on_timer, handler.on_start,
                handler.on_restart,
            )  # fmt: skip
        elif callable(handler):
            state = _NodeState(
                self, name, handler, on_timer or _missing_timer_handler, on_start or _no_hook,
                on_restart or _no_hook,
            )  # fmt: skip
        else:
            raise TypeError(
                f"handler for node {name!r} must be a Node or a callable "
                f"handler(ctx, src, msg), got {type(handler).__name__}"
            )
        self._nodes[name] = state
        heapq.heappush(self._heap, (self._now, next(self._seq), _START, name, None, None, None))
        return state.ctx

    def set_link(
        self,
        src: str,
        dst: str,
        *,
        loss: float | None = None,
        duplicate: float | None = None,
        delay: DelaySpec | None = None,
        both_ways: bool = False,
    ) -> None:
        """Give the link ``src -> dst`` its own settings; omitted ones keep the global value.

        Args:
            src: sending node.
            dst: receiving node.
            loss: loss probability on this link, in [0, 1].
            duplicate: duplication probability on this link, in [0, 1].
            delay: delay on this link (see ``Delay``).
            both_ways: apply the same settings to ``dst -> src`` too.

        Raises:
            SimulationError: when either node is unknown.
            ValueError: when a probability is outside [0, 1] or a delay is negative.
        """
        self._check_node(src, "src")
        self._check_node(dst, "dst")
        base = self._default
        config = _LinkConfig(
            base.loss if loss is None else _probability("loss", loss),
            base.duplicate if duplicate is None else _probability("duplicate", duplicate),
            base.delay if delay is None else _as_delay(delay),
        )
        self._configure(src, dst, config)
        if both_ways:
            self._configure(dst, src, config)

    def partition(
        self,
        side_a: str | Iterable[str],
        side_b: str | Iterable[str],
        *,
        start: float,
        heal: float = math.inf,
    ) -> None:
        """Cut every link between ``side_a`` and ``side_b`` (both ways) from ``start`` to ``heal``.

        A message sent at a time ``t`` with ``start <= t < heal`` across the cut is
        dropped (reason ``"partition"``); one sent at ``heal`` gets through.

        Args:
            side_a: a node name or several.
            side_b: a node name or several (disjoint from ``side_a``).
            start: virtual time the cut begins, in seconds.
            heal: virtual time the cut heals, in seconds (default: never).

        Raises:
            SimulationError: when a node is unknown.
            ValueError: when the sides overlap or are empty, or ``heal <= start``.
        """
        a = self._side("side_a", side_a)
        b = self._side("side_b", side_b)
        if a & b:
            raise ValueError(f"side_a and side_b must not overlap; both contain {sorted(a & b)}")
        begin = _non_negative("start", start)
        if isinstance(heal, bool) or not isinstance(heal, int | float) or not heal > begin:
            raise ValueError(f"heal must be a time after start ({begin!r} s), got {heal!r}")
        self._partitions.append((begin, float(heal), a, b))

    def crash(self, node: str, *, at: float, restart_at: float | None = None) -> None:
        """Crash ``node`` at virtual time ``at``; restart it at ``restart_at`` if given.

        Raises:
            SimulationError: when ``node`` is unknown.
            ValueError: when ``at`` is in the past or ``restart_at`` is not after ``at``.
        """
        self._check_node(node, "node")
        when = _non_negative("at", at)
        if when < self._now:
            raise ValueError(f"at must not be in the past (now is {self._now!r} s), got {when!r}")
        back = None if restart_at is None else _non_negative("restart_at", restart_at)
        if back is not None and back <= when:
            raise ValueError(f"restart_at must be after at ({when!r} s), got {back!r}")
        # Schedule only once both times are valid: a refused call changes nothing.
        heapq.heappush(self._heap, (when, next(self._seq), _CRASH, node, None, None, None))
        if back is not None:
            heapq.heappush(self._heap, (back, next(self._seq), _RESTART, node, None, None, None))

    # Acting from outside ----------------------------------------------------------------
    def send(self, src: str, dst: str, msg: Any, *, at: float | None = None) -> None:
        """Send ``msg`` from ``src`` to ``dst`` at virtual time ``at`` (default: now).

        The send happens inside ``run``, in time order with everything else, so a node's
        ``on_start`` runs before a message sent to it at the same instant.

        Raises:
            SimulationError: when ``src`` or ``dst`` is unknown.
            ValueError: when ``at`` is in the past.
        """
        self._check_node(src, "src")
        self._check_node(dst, "dst")
        when = self._now if at is None else _non_negative("at", at)
        if when < self._now:
            raise ValueError(f"at must not be in the past (now is {self._now!r} s), got {when!r}")
        heapq.heappush(self._heap, (when, next(self._seq), _SEND, src, dst, msg, None))

    # Reading state ----------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    @property
    def nodes(self) -> tuple[str, ...]:
        """Node names, in the order they were added."""
        return tuple(self._nodes)

    def is_up(self, node: str) -> bool:
        """Return whether ``node`` is running (not crashed).

        Raises:
            SimulationError: when ``node`` is unknown.
        """
        self._check_node(node, "node")
        return self._nodes[node].up

    @property
    def stats(self) -> NetworkStats:
        """A snapshot of the counts so far."""
        return NetworkStats(
            sent=self._sent,
            delivered=self._delivered,
            dropped=dict(self._dropped),
            duplicated=self._duplicated,
            reordered=self._reordered,
            in_flight=self._in_flight,
            timers_fired=self._timers_fired,
            latencies=list(self._latencies),
        )

    @property
    def trace(self) -> list[TraceEvent]:
        """Every event so far, in order.

        Raises:
            SimulationError: when the network was built without ``trace=True``.
        """
        return [TraceEvent(*entry) for entry in self._trace_entries()]

    def digest(self) -> str:
        """Return the sha256 hex digest of the trace; equal digests mean identical runs.

        Raises:
            SimulationError: when the network was built without ``trace=True``.
        """
        return _sha256_lines(TraceEvent(*entry).canonical() for entry in self._trace_entries())

    def _trace_entries(self) -> list[tuple[float, str, str, str | None, Any, str | None]]:
        if self._trace is None:
            raise SimulationError(
                "this network keeps no trace; build it with Network(..., trace=True)"
            )
        return self._trace

    # Running ----------------------------------------------------------------------------
    def run(
        self, until: float | None = None, *, max_events: int | None = 1_000_000
    ) -> NetworkStats:
        """Process events until virtual time ``until``, or until nothing is left to happen.

        Events due exactly at ``until`` are processed; afterwards ``now == until``.

        Args:
            until: stop time in seconds; None runs until no event is pending.
            max_events: safety net against runs that never go quiet (a timer that
                always re-arms); None removes it.

        Returns:
            The stats so far (as ``stats``).

        Raises:
            ValueError: when ``until`` is before ``now`` or not finite, or ``max_events``
                is below 1.
            SimulationError: when ``max_events`` events ran and more are pending.
        """
        if until is not None:
            if (
                isinstance(until, bool)
                or not isinstance(until, int | float)
                or not self._now <= until < math.inf  # also rejects NaN
            ):
                raise ValueError(
                    f"until must be a finite time >= now ({self._now!r} s), got {until!r}; "
                    "pass until=None to run until nothing is left to happen"
                )
            limit = float(until)
        else:
            limit = math.inf
        if max_events is not None and max_events < 1:
            raise ValueError(f"max_events must be >= 1 or None, got {max_events!r}")
        budget = math.inf if max_events is None else max_events

        heap = self._heap
        pop = _heappop
        nodes = self._nodes
        latencies = self._latencies
        live = self._live_timers
        trace = self._trace
        done = 0
        while heap and heap[0][0] <= limit:
            if done >= budget:
                raise SimulationError(
                    f"run stopped after max_events={max_events} events at t={self._now!r} s "
                    "with events still pending (a timer that always re-arms?); "
                    "pass until= or a larger max_events"
                )
            done += 1
            now, _, kind, a, b, c, d = pop(heap)
            self._now = now
            if kind == _DELIVER:
                # a = _Link, b = msg, c = send time, d = sequence number on the link
                self._in_flight -= 1
                state = a.target
                if not state.up:
                    self._dropped["crashed"] += 1
                    if trace is not None:
                        trace.append((now, "drop", a.src, a.dst, b, "crashed"))
                    continue
                self._delivered += 1
                latencies.append(now - c)
                if d < a.high:
                    self._reordered += 1
                else:
                    a.high = d
                if trace is not None:
                    trace.append((now, "deliver", a.src, a.dst, b, None))
                ctx = state.ctx
                src = ctx.sender = a.src
                try:
                    state.on_message(ctx, src, b)
                finally:
                    # Also when the handler raises: a later timer or hook must not
                    # reply() to this message's sender.
                    ctx.sender = None
            elif kind == _TIMER:
                # a = node, b = timer id, c = payload, d = node epoch when set
                if b not in live:
                    continue
                live.discard(b)
                state = nodes[a]
                if not state.up or state.epoch != d:
                    continue
                self._timers_fired += 1
                if trace is not None:
                    trace.append((now, "timer", a, None, c, None))
                state.on_timer(state.ctx, c)
            elif kind == _SEND:
                self._send(nodes[a], b, c)
            elif kind == _START:
                if trace is not None:
                    trace.append((now, "start", a, None, None, None))
                state = nodes[a]
                state.on_start(state.ctx)
            elif kind == _CRASH:
                state = nodes[a]
                if state.up:
                    state.up = False
                    state.epoch += 1
                    if trace is not None:
                        trace.append((now, "crash", a, None, None, None))
            else:  # _RESTART
                state = nodes[a]
                if not state.up:
                    state.up = True
                    if trace is not None:
                        trace.append((now, "restart", a, None, None, None))
                    state.on_restart(state.ctx)
        if until is not None:
            self._now = max(self._now, limit)
        return self.stats

    # Internals --------------------------------------------------------------------------
    def _send(self, state: _NodeState, dst: str, msg: Any) -> None:
        # The hot path: keep attribute lookups few and the common case branch-free.
        link = state.out.get(dst)
        if link is None:
            link = self._open_link(state, dst)
        now = self._now
        self._sent += 1
        trace = self._trace
        if trace is not None:
            trace.append((now, "send", link.src, dst, msg, None))
        if not state.up:
            self._drop(now, link, msg, "crashed")
            return
        if self._partitions and self._cut(link.src, dst, now):
            self._drop(now, link, msg, "partition")
            return
        rng = self.rng
        loss = link.loss
        if loss and rng.random() < loss:
            self._drop(now, link, msg, "loss")
            return
        seq = link.next_seq
        link.next_seq = seq + 1
        fixed = link.fixed
        delay = fixed if fixed is not None else link.sample(rng)
        if not 0.0 <= delay < _INF:  # a NaN would corrupt the heap's order silently
            self._bad_delay(link, delay)
        _heappush(self._heap, (now + delay, next(self._seq), _DELIVER, link, msg, now, seq))
        self._in_flight += 1
        duplicate = link.duplicate
        if duplicate and rng.random() < duplicate:
            self._duplicated += 1
            if trace is not None:
                trace.append((now, "duplicate", link.src, dst, msg, None))
            delay = fixed if fixed is not None else link.sample(rng)
            if not 0.0 <= delay < _INF:
                self._bad_delay(link, delay)
            _heappush(self._heap, (now + delay, next(self._seq), _DELIVER, link, msg, now, seq))
            self._in_flight += 1

    def _open_link(self, state: _NodeState, dst: str) -> _Link:
        target = self._nodes.get(dst)
        if target is None:
            raise SimulationError(
                f"cannot send to node {dst!r}: no such node (known: {sorted(self._nodes)})"
            )
        config = self._link_configs.get((state.name, dst), self._default)
        link = state.out[dst] = _Link(state.name, target, config)
        return link

    def _configure(self, src: str, dst: str, config: _LinkConfig) -> None:
        self._link_configs[(src, dst)] = config
        link = self._nodes[src].out.get(dst)
        if link is not None:
            link.configure(config)

    @staticmethod
    def _bad_delay(link: _Link, delay: float) -> None:
        raise ValueError(
            f"delay {link.config.delay.name} for link {link.src!r} -> {link.dst!r} drew "
            f"{delay!r}; delays must be finite numbers of seconds >= 0"
        )

    def _drop(self, now: float, link: _Link, msg: Any, reason: str) -> None:
        self._dropped[reason] += 1
        if self._trace is not None:
            self._trace.append((now, "drop", link.src, link.dst, msg, reason))

    def _cut(self, src: str, dst: str, now: float) -> bool:
        for start, heal, a, b in self._partitions:
            if start <= now < heal and ((src in a and dst in b) or (src in b and dst in a)):
                return True
        return False

    def _set_timer(self, node: str, delay: float, payload: Any) -> int:
        wait = _non_negative("delay", delay)
        timer_id = next(self._timer_ids)
        self._live_timers.add(timer_id)
        state = self._nodes[node]
        heapq.heappush(
            self._heap,
            (self._now + wait, next(self._seq), _TIMER, node, timer_id, payload, state.epoch),
        )
        return timer_id

    def _cancel_timer(self, timer_id: int) -> bool:
        if timer_id in self._live_timers:
            self._live_timers.discard(timer_id)
            return True
        return False

    def _check_node(self, name: str, what: str) -> None:
        if name not in self._nodes:
            raise SimulationError(
                f"{what} {name!r} is not a node of this network (known: {sorted(self._nodes)})"
            )

    def _side(self, what: str, side: str | Iterable[str]) -> frozenset[str]:
        names = frozenset([side] if isinstance(side, str) else side)
        if not names:
            raise ValueError(f"{what} must name at least one node")
        for name in sorted(names):
            self._check_node(name, what)
        return names

    def __repr__(self) -> str:
        return (
            f"Network(seed={self.seed!r}, nodes={len(self._nodes)}, now={self._now!r}, "
            f"pending={len(self._heap)})"
        )
