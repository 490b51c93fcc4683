"""Tests for distlab.sim.netsim: the seeded discrete-event network simulator."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from distlab.errors import SimulationError
from distlab.sim.netsim import (
    Context,
    Delay,
    LatencySummary,
    Network,
    Node,
    canonical,
    canonical_digest,
)
from tests import REPO
from tests.theory import binomial_bounds, fraction_bounds


def sink(ctx: Context, src: str, msg: Any) -> None:
    """Accept and ignore a message."""


def pair(**options: Any) -> Network:
    """Return a network with nodes a and b that ignore what they get."""
    net = Network(**options)
    net.add_node("a", sink)
    net.add_node("b", sink)
    return net


@dataclass(frozen=True)
class Update:
    key: str
    tags: frozenset[str]


class Replica(Node):
    """A node that applies updates, retries on a timer and forgets timers on crash."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(0.5, "tick")

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.seen.append(msg)
        if isinstance(msg, Update):
            ctx.reply({"ack": msg.key, "from": ctx.node, "tags": set(msg.tags)})

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if ctx.now < 20:
            ctx.send("client", {"tick", ctx.node, payload})
            ctx.set_timer(ctx.rng.uniform(0.5, 1.5), payload)

    def on_restart(self, ctx: Context) -> None:
        ctx.set_timer(0.1, "after-restart")


def scenario_digest(seed: int) -> str:
    """Run a run with every feature switched on and return its digest."""
    net = Network(
        seed=seed, loss=0.1, duplicate=0.1, delay=Delay.exponential(0.05, minimum=0.01), trace=True
    )
    for name in ("r1", "r2", "r3"):
        net.add_node(name, Replica())
    net.add_node("client", sink)
    net.set_link("client", "r3", delay=Delay.uniform(0.0, 0.2), loss=0.3)
    net.partition("r1", ["r2", "r3"], start=3.0, heal=6.0)
    net.crash("r2", at=8.0, restart_at=12.0)
    for i in range(200):
        tags = frozenset({f"t{i % 7}", f"u{i % 5}", "x"})
        net.send("client", f"r{1 + i % 3}", Update(f"k{i}", tags), at=i * 0.1)
    net.run()
    return net.digest()


# Determinism --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 7, 2026])
def test_same_seed_same_digest(seed: int) -> None:
    """Two runs with the same seed produce the same trace digest."""
    assert scenario_digest(seed) == scenario_digest(seed)


def test_digest_is_stable_across_processes() -> None:
    """A fresh interpreter with another hash seed computes the same digest."""
    code = "from tests.sim.test_netsim import scenario_digest; print(scenario_digest(7))"
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == scenario_digest(7)


def test_different_seeds_differ() -> None:
    """Different seeds give different runs."""
    digests = {scenario_digest(seed) for seed in range(5)}
    assert len(digests) == 5


def test_digest_is_sha256_hex() -> None:
    """The digest is 64 lowercase hex characters."""
    digest = scenario_digest(1)
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


def test_digest_needs_trace() -> None:
    """Asking for a digest without tracing says how to switch it on."""
    net = pair()
    with pytest.raises(SimulationError, match="trace=True"):
        net.digest()


def test_simultaneous_events_run_in_scheduling_order() -> None:
    """Messages due at the same instant are delivered in the order they were sent."""
    got: list[int] = []
    net = Network(delay=0.5)
    net.add_node("a", sink)
    net.add_node("b", lambda ctx, src, msg: got.append(msg))
    for i in range(50):
        net.send("a", "b", i)
    net.run()
    assert got == list(range(50))


# Loss, duplication, reordering --------------------------------------------------------
@pytest.mark.parametrize("loss", [0.05, 0.3, 0.5])
def test_loss_rate_within_binomial_bounds(loss: float) -> None:
    """The number of lost messages is within 5 sigma of n * loss."""
    n = 20_000
    net = pair(seed=3, loss=loss)
    for i in range(n):
        net.send("a", "b", i)
    stats = net.run()
    low, high = binomial_bounds(n, loss)
    assert low <= stats.dropped["loss"] <= high
    assert stats.delivered + stats.dropped["loss"] == n


@pytest.mark.parametrize(("loss", "expected"), [(0.0, 0), (1.0, 500)])
def test_loss_extremes(loss: float, expected: int) -> None:
    """Loss 0 loses nothing and loss 1 loses everything."""
    net = pair(loss=loss)
    for i in range(500):
        net.send("a", "b", i)
    assert net.run().dropped["loss"] == expected


@pytest.mark.parametrize("duplicate", [0.02, 0.25])
def test_duplication_rate_within_binomial_bounds(duplicate: float) -> None:
    """Duplicates are within 5 sigma of n * p and each one is delivered."""
    n = 20_000
    net = pair(seed=5, duplicate=duplicate, delay=Delay.uniform(0.0, 0.01))
    for i in range(n):
        net.send("a", "b", i)
    stats = net.run()
    low, high = binomial_bounds(n, duplicate)
    assert low <= stats.duplicated <= high
    assert stats.delivered == n + stats.duplicated
    assert stats.sent == n


def test_constant_delay_never_reorders() -> None:
    """With a constant delay and no duplicates every link stays in order."""
    net = pair(delay=0.02)
    for i in range(1000):
        net.send("a", "b", i, at=i * 0.001)
    assert net.run().reordered == 0


def test_overtaken_message_counts_as_reordered() -> None:
    """A message overtaken by a later one on the same link counts once."""
    delays = iter([0.5, 0.1, 0.6])
    net = Network(delay=Delay.custom(lambda rng: next(delays)))
    got: list[str] = []
    net.add_node("a", sink)
    net.add_node("b", lambda ctx, src, msg: got.append(msg))
    for msg in ("first", "second", "third"):
        net.send("a", "b", msg)
    stats = net.run()
    assert got == ["second", "first", "third"]
    assert stats.reordered == 1


def test_reordering_is_per_link() -> None:
    """Interleaved links do not count each other's messages as reordered."""
    delays = iter([0.5, 0.1])
    net = Network(delay=Delay.custom(lambda rng: next(delays)))
    for name in ("a", "b", "c"):
        net.add_node(name, sink)
    net.send("a", "c", "slow")
    net.send("b", "c", "fast")
    assert net.run().reordered == 0


def overtaken_probability(gap: float, width: float, points: int = 10_000) -> float:
    """Return P(a message is overtaken) for sends ``gap`` s apart and delays U(0, width).

    Message i with delay d is overtaken unless every later message i + k (sent k * gap
    later) takes at least d - k * gap: P(not overtaken | d) = prod_k (1 - (d - k gap) / w)
    over the k with k * gap < d. Averaged over d (midpoint rule).
    """
    total = 0.0
    for step in range(points):
        d = (step + 0.5) / points * width
        survive = 1.0
        k = 1
        while k * gap < d:
            survive *= 1 - (d - k * gap) / width
            k += 1
        total += 1 - survive
    return total / points


def test_random_delays_reorder_the_share_theory_predicts() -> None:
    """Uniform 0-100 ms delays, sends 10 ms apart: about 58.7 % are overtaken."""
    n = 1000
    net = pair(seed=1, delay=Delay.uniform(0.0, 0.1))
    for i in range(n):
        net.send("a", "b", i, at=i * 0.01)
    stats = net.run()
    p = overtaken_probability(0.01, 0.1)
    assert round(p, 3) == 0.587
    # Neighbours share delays, so the indicators are dependent; across 30 seeds the
    # count spreads less than a binomial's (sd 9 against 16), so these bounds are safe.
    low, high = binomial_bounds(n, p)
    assert low <= stats.reordered <= high


# Delays -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("delay", "mean", "sd", "low", "high"),
    [
        (Delay.uniform(0.010, 0.050), 0.030, 0.040 / math.sqrt(12), 0.010, 0.050),
        (Delay.exponential(0.020), 0.020, 0.020, 0.0, math.inf),
        (Delay.exponential(0.030, minimum=0.010), 0.030, 0.020, 0.010, math.inf),
        (Delay.custom(lambda rng: rng.gauss(1.0, 0.1) ** 2), 1.01, 0.2, 0.0, math.inf),
    ],
    ids=["uniform", "exponential", "shifted-exponential", "custom"],
)
def test_delays_follow_their_distribution(
    delay: Delay, mean: float, sd: float, low: float, high: float
) -> None:
    """Mean latency is within 5 standard errors of the distribution mean, inside its range."""
    n = 10_000
    net = pair(seed=11, delay=delay)
    for i in range(n):
        net.send("a", "b", i)
    latencies = net.run().latencies
    assert len(latencies) == n
    assert abs(sum(latencies) / n - mean) <= 5 * sd / math.sqrt(n)
    assert low <= min(latencies)
    assert max(latencies) <= high


def test_constant_delay_is_exact() -> None:
    """A number as delay means exactly that many seconds."""
    net = pair(delay=0.25)
    net.send("a", "b", "x", at=1.0)
    stats = net.run()
    assert stats.latencies == [0.25]
    assert net.now == 1.25


def test_plain_callable_delay_gets_the_rng() -> None:
    """A plain callable delay is called with the simulator's random generator."""
    seen: list[random.Random] = []

    def delay(rng: random.Random) -> float:
        seen.append(rng)
        return 0.1

    net = pair(delay=delay)
    net.send("a", "b", "x")
    net.run()
    assert seen == [net.rng]


def test_per_link_settings_override_global() -> None:
    """set_link changes one direction only, and both_ways both."""
    net = Network(delay=0.1)
    for name in ("a", "b", "c"):
        net.add_node(name, sink)
    net.set_link("a", "b", delay=0.7)
    net.set_link("a", "c", loss=1.0, both_ways=True)
    net.send("a", "b", 1)
    net.send("b", "a", 2)
    net.send("a", "c", 3)
    net.send("c", "a", 4)
    stats = net.run()
    assert sorted(stats.latencies) == [0.1, 0.7]
    assert stats.dropped["loss"] == 2


def test_latency_summary_uses_nearest_rank() -> None:
    """p50 and p99 follow the nearest-rank definition."""
    summary = LatencySummary.of([float(i) for i in range(1, 101)])
    assert (summary.count, summary.mean, summary.p50, summary.p99, summary.max) == (
        100,
        50.5,
        50.0,
        99.0,
        100.0,
    )
    assert LatencySummary.of([]).count == 0


# Partitions ---------------------------------------------------------------------------
def test_partition_blocks_exactly_its_window() -> None:
    """Messages sent in [start, heal) across the cut are dropped, the rest delivered."""
    got: list[tuple[str, str, float]] = []
    net = Network(delay=1.0)
    for name in ("a", "b", "c"):
        net.add_node(name, lambda ctx, src, msg: got.append((src, ctx.node, msg)))
    net.partition("a", ["b"], start=10.0, heal=20.0)
    times = [9.999, 10.0, 15.0, 19.999, 20.0]
    for t in times:
        net.send("a", "b", t, at=t)
        net.send("b", "a", t, at=t)
        net.send("a", "c", t, at=t)
    stats = net.run()
    assert [m for s, d, m in got if (s, d) == ("a", "b")] == [9.999, 20.0]
    assert [m for s, d, m in got if (s, d) == ("b", "a")] == [9.999, 20.0]
    assert [m for s, d, m in got if (s, d) == ("a", "c")] == times
    assert stats.dropped["partition"] == 6


def test_message_in_flight_when_partition_starts_is_delivered() -> None:
    """A partition drops what is sent during it, not what is already travelling."""
    net = pair(delay=5.0)
    net.partition("a", "b", start=1.0, heal=2.0)
    net.send("a", "b", "early")
    stats = net.run()
    assert stats.delivered == 1
    assert stats.dropped["partition"] == 0


def test_partition_without_heal_lasts_forever() -> None:
    """A partition with no heal time never ends."""
    net = pair()
    net.partition("a", "b", start=0.0)
    net.send("a", "b", "x", at=1e9)
    assert net.run().dropped["partition"] == 1


# Crashes ------------------------------------------------------------------------------
class Recorder(Node):
    """A node that records messages and timers and re-arms a timer on restart."""

    def __init__(self) -> None:
        self.log: list[tuple[float, str, Any]] = []

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(7.0, "due-while-down")
        ctx.set_timer(12.0, "due-after-restart")  # lost with the crash all the same

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append((ctx.now, "msg", msg))

    def on_timer(self, ctx: Context, payload: Any) -> None:
        self.log.append((ctx.now, "timer", payload))

    def on_restart(self, ctx: Context) -> None:
        self.log.append((ctx.now, "restart", None))
        ctx.set_timer(1.0, "set-after-restart")


def test_crashed_node_drops_messages_and_timers() -> None:
    """While crashed a node gets nothing; its old timers are gone; on_restart runs."""
    node = Recorder()
    net = Network(delay=0.5)
    net.add_node("a", sink)
    net.add_node("b", node)
    net.crash("b", at=5.0, restart_at=10.0)
    for t in (4.0, 6.0, 9.0, 10.0, 11.0):
        net.send("a", "b", t, at=t)
    stats = net.run()
    assert node.log == [
        (4.5, "msg", 4.0),
        (10.0, "restart", None),
        (10.5, "msg", 10.0),
        (11.0, "timer", "set-after-restart"),
        (11.5, "msg", 11.0),
    ]
    assert stats.dropped["crashed"] == 2
    assert stats.timers_fired == 1


def test_crashed_node_sends_nothing() -> None:
    """A send from a crashed node is dropped as crashed."""
    net = pair()
    net.crash("a", at=1.0)
    net.send("a", "b", "x", at=2.0)
    stats = net.run()
    assert not net.is_up("a")
    assert stats.dropped["crashed"] == 1
    assert stats.delivered == 0


def test_crash_without_restart_is_permanent() -> None:
    """A node crashed with no restart_at stays down."""
    net = pair()
    net.crash("b", at=1.0)
    net.send("a", "b", "x", at=100.0)
    assert net.run().dropped["crashed"] == 1
    assert not net.is_up("b")


def test_restart_hook_for_callable_handler() -> None:
    """on_restart= is called for a plain callable handler."""
    restarts: list[float] = []
    net = Network()
    net.add_node("a", sink, on_restart=lambda ctx: restarts.append(ctx.now))
    net.crash("a", at=1.0, restart_at=3.0)
    net.run()
    assert restarts == [3.0]
    assert net.is_up("a")


# Timers and handlers ------------------------------------------------------------------
def test_timers_fire_in_time_order_and_cancel() -> None:
    """Timers fire at now + delay, same-time timers in set order; cancelled ones not at all."""
    fired: list[tuple[float, Any]] = []

    def start(ctx: Context) -> None:
        ctx.set_timer(2.0, "late")
        ctx.set_timer(1.0, "first")
        ctx.set_timer(1.0, "second")
        doomed = ctx.set_timer(1.5, "cancelled")
        assert ctx.cancel_timer(doomed) is True
        assert ctx.cancel_timer(doomed) is False

    net = Network()
    net.add_node("a", sink, on_start=start, on_timer=lambda ctx, p: fired.append((ctx.now, p)))
    stats = net.run()
    assert fired == [(1.0, "first"), (1.0, "second"), (2.0, "late")]
    assert stats.timers_fired == 3


def test_timer_without_handler_names_the_node() -> None:
    """A timer on a node with no timer handler raises, naming the node."""
    net = Network()
    net.add_node("lonely", sink, on_start=lambda ctx: ctx.set_timer(1.0))
    with pytest.raises(SimulationError, match="lonely"):
        net.run()


class PingPong(Node):
    """Answer each ping with a pong through ctx.reply, counting down."""

    def __init__(self, peer: str | None) -> None:
        self.peer = peer
        self.received: list[int] = []

    def on_start(self, ctx: Context) -> None:
        if self.peer is not None:
            ctx.send(self.peer, 5)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.received.append(msg)
        if msg > 0:
            ctx.reply(msg - 1)


def test_node_subclass_ping_pong_with_reply() -> None:
    """Node subclasses exchange replies until the count reaches zero."""
    left, right = PingPong("right"), PingPong(None)
    net = Network(delay=0.1)
    net.add_node("left", left)
    net.add_node("right", right)
    stats = net.run()
    assert right.received == [5, 3, 1]
    assert left.received == [4, 2, 0]
    assert stats.sent == stats.delivered == 6
    assert net.now == pytest.approx(0.6)


def test_reply_outside_message_handler_raises() -> None:
    """reply() in a timer has no sender and says to use send()."""
    net = Network()
    ctx = net.add_node("a", sink)
    with pytest.raises(SimulationError, match="reply"):
        ctx.reply("x")


# Running ------------------------------------------------------------------------------
def test_run_until_stops_at_the_given_time() -> None:
    """run(until=t) processes events due at t, leaves later ones, and sets now to t."""
    got: list[float] = []
    net = Network(delay=1.0)
    net.add_node("a", sink)
    net.add_node("b", lambda ctx, src, msg: got.append(ctx.now))
    for t in (0.0, 1.0, 2.0):
        net.send("a", "b", t, at=t)
    stats = net.run(until=2.0)
    assert got == [1.0, 2.0]
    assert net.now == 2.0
    assert stats.in_flight == 1
    net.run(until=2.5)
    assert net.now == 2.5
    final = net.run()
    assert got == [1.0, 2.0, 3.0]
    assert final.in_flight == 0


def test_run_that_never_goes_quiet_hits_max_events() -> None:
    """A timer that always re-arms stops at max_events with an explanation."""
    net = Network()
    net.add_node(
        "a",
        sink,
        on_start=lambda ctx: ctx.set_timer(1.0),
        on_timer=lambda ctx, p: ctx.set_timer(1.0),
    )
    with pytest.raises(SimulationError, match="max_events"):
        net.run(max_events=100)
    # 100 events ran: the start and 99 timers (t = 1 .. 99); t = 100 .. 500 fire now.
    assert net.run(until=500.0, max_events=None).timers_fired == 500
    assert net.now == 500.0


def test_stats_as_dict_has_every_count() -> None:
    """as_dict lists the counts a lesson shows."""
    net = pair(loss=0.5, seed=2, delay=0.01)
    for i in range(100):
        net.send("a", "b", i)
    stats = net.run()
    row = stats.as_dict()
    assert row["sent"] == 100
    assert row["dropped_loss"] + row["delivered"] == 100
    assert row["latency_p99"] == pytest.approx(0.01)
    assert stats.dropped_total == row["dropped_loss"]


def test_trace_records_events_in_order() -> None:
    """The trace lists send, duplicate, drop and deliver events with their times."""
    net = Network(trace=True, delay=0.5, duplicate=1.0)
    net.add_node("a", sink)
    net.add_node("b", sink)
    net.send("a", "b", "hi")
    net.run()
    assert [(e.time, e.kind, e.src, e.dst, e.msg) for e in net.trace] == [
        (0.0, "start", "a", None, None),
        (0.0, "start", "b", None, None),
        (0.0, "send", "a", "b", "hi"),
        (0.0, "duplicate", "a", "b", "hi"),
        (0.5, "deliver", "a", "b", "hi"),
        (0.5, "deliver", "a", "b", "hi"),
    ]


# Canonical form -----------------------------------------------------------------------
def test_canonical_sorts_sets_and_dict_keys() -> None:
    """Sets and dicts serialise the same whatever their iteration order."""
    assert canonical({"b": 1, "a": {3, 1, 2}}) == canonical({"a": {2, 3, 1}, "b": 1})
    assert canonical(Update("k", frozenset({"y", "x"}))) == "Update(key='k',tags=set{'x','y'})"


def test_canonical_digest_is_order_insensitive_inside_sets_only() -> None:
    """canonical_digest: same items, same digest; another order of the items differs."""
    assert canonical_digest([(1.5, {"b", "a"})]) == canonical_digest([(1.5, {"a", "b"})])
    assert canonical_digest([1, 2]) != canonical_digest([2, 1])
    assert len(canonical_digest([])) == 64


def test_canonical_rejects_address_reprs() -> None:
    """An object whose repr shows a memory address cannot be digested."""
    with pytest.raises(SimulationError, match="stable representation"):
        canonical(object())


# Validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"loss": -0.1}, "loss"),
        ({"loss": 1.5}, "loss"),
        ({"loss": math.nan}, "loss"),
        ({"duplicate": 2.0}, "duplicate"),
        ({"delay": -1.0}, "delay"),
        ({"delay": math.inf}, "delay"),
    ],
)
def test_bad_network_options_name_the_parameter(options: dict[str, Any], name: str) -> None:
    """Out-of-range options raise ValueError naming the option."""
    with pytest.raises(ValueError, match=name):
        Network(**options)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Delay.uniform(-1.0, 1.0), "low"),
        (lambda: Delay.uniform(0.5, 0.1), "high"),
        (lambda: Delay.exponential(0.01, minimum=0.02), "mean"),
        (lambda: Delay.exponential(0.01, minimum=-1.0), "minimum"),
        (lambda: Delay.constant(-0.001), "delay"),
    ],
)
def test_bad_delay_parameters_are_named(make: Any, name: str) -> None:
    """Bad delay parameters raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("bad", ["fast", True, None])
def test_delay_of_wrong_type_is_rejected(bad: Any) -> None:
    """A delay that is not a number, Delay or callable raises TypeError."""
    with pytest.raises(TypeError, match="delay"):
        Network(delay=bad)


@pytest.mark.parametrize("drawn", [-0.5, math.nan, math.inf])
def test_bad_custom_delay_raises_when_drawn(drawn: float) -> None:
    """A custom delay that draws below zero, NaN or infinity names the link."""
    net = pair(delay=lambda rng: drawn)
    net.send("a", "b", "x")
    with pytest.raises(ValueError, match="'a' -> 'b'"):
        net.run()


def test_handler_exception_does_not_leave_a_stale_sender() -> None:
    """After a handler raises, reply() outside a handler still refuses (no stale sender)."""

    def fragile(ctx: Context, src: str, msg: Any) -> None:
        raise RuntimeError("handler bug")

    net = Network()
    net.add_node("a", sink)
    ctx = net.add_node("b", fragile)
    net.send("a", "b", "x")
    with pytest.raises(RuntimeError, match="handler bug"):
        net.run()
    assert ctx.sender is None
    with pytest.raises(SimulationError, match="reply"):
        ctx.reply("late")


def test_refused_crash_schedules_nothing() -> None:
    """A crash refused for a bad restart_at leaves the node up for the whole run."""
    net = pair()
    with pytest.raises(ValueError, match="restart_at"):
        net.crash("a", at=2.0, restart_at=1.0)
    net.send("a", "b", "x", at=5.0)
    stats = net.run()
    assert net.is_up("a")
    assert (stats.delivered, stats.dropped["crashed"]) == (1, 0)


@pytest.mark.parametrize(
    "action",
    [
        lambda net: net.send("a", "ghost", 1),
        lambda net: net.send("ghost", "a", 1),
        lambda net: net.send("a", "ghost", 1, at=1.0),
        lambda net: net.set_link("a", "ghost", loss=0.1),
        lambda net: net.partition("a", ["b", "ghost"], start=1.0),
        lambda net: net.crash("ghost", at=1.0),
        lambda net: net.is_up("ghost"),
    ],
)
def test_unknown_node_is_named(action: Any) -> None:
    """Using a node that does not exist raises SimulationError naming it."""
    net = pair()
    with pytest.raises(SimulationError, match="ghost"):
        action(net)


def test_duplicate_node_name_is_rejected() -> None:
    """Two nodes cannot share a name."""
    net = pair()
    with pytest.raises(SimulationError, match="'a' exists already"):
        net.add_node("a", sink)


@pytest.mark.parametrize(
    ("action", "name"),
    [
        (lambda net: net.run(until=-1.0), "until"),
        (lambda net: net.run(until=math.nan), "until"),
        (lambda net: net.run(until=math.inf), "until"),
        (lambda net: net.run(max_events=0), "max_events"),
        (lambda net: net.crash("a", at=2.0, restart_at=1.0), "restart_at"),
        (lambda net: net.crash("a", at=-2.0), "at"),
        (lambda net: net.partition("a", "b", start=5.0, heal=5.0), "heal"),
        (lambda net: net.partition("a", "a", start=0.0), "overlap"),
        (lambda net: net.partition("a", [], start=0.0), "side_b"),
        (lambda net: net.set_link("a", "b", duplicate=-0.5), "duplicate"),
        (lambda net: net.send("a", "b", 1, at=-1.0), "at"),
    ],
)
def test_bad_arguments_name_the_parameter(action: Any, name: str) -> None:
    """Bad run, crash, partition, link and send arguments raise ValueError naming them."""
    net = pair()
    with pytest.raises(ValueError, match=name):
        action(net)


def test_past_times_are_rejected_after_running() -> None:
    """Scheduling before now raises ValueError naming now."""
    net = pair()
    net.run(until=10.0)
    with pytest.raises(ValueError, match=r"now is 10\.0"):
        net.crash("a", at=5.0)
    with pytest.raises(ValueError, match="until"):
        net.run(until=9.0)


def test_node_instance_with_hooks_is_rejected() -> None:
    """Hooks are for callable handlers; a Node overrides methods instead."""
    with pytest.raises(TypeError, match="override"):
        Network().add_node("a", Recorder(), on_restart=lambda ctx: None)


# Heavy-tailed delays and distribution functions -----------------------------------------
FAST = Delay.lognormal(0.010, 0.25)
SLOW = Delay.pareto(1.0, 1.5)
LEAF = Delay.mixture((0.99, FAST), (0.01, SLOW))


@pytest.mark.parametrize(
    "delay",
    [
        Delay.constant(0.2),
        Delay.uniform(0.010, 0.050),
        Delay.exponential(0.030, minimum=0.010),
        Delay.lognormal(0.020, 0.5, minimum=0.005),
        SLOW,
        LEAF,
        Delay.mixture((0.5, Delay.constant(0.1)), (0.3, FAST), (0.2, Delay.uniform(0.2, 0.4))),
    ],
    ids=["constant", "uniform", "exponential", "lognormal", "pareto", "mixture", "mixture3"],
)
def test_samples_follow_the_distribution_function(delay: Delay) -> None:
    """At each decile of cdf(), the share of 20,000 draws below it is within 5-sigma bounds."""
    n = 20_000
    rng = random.Random(3)
    draws = [delay.sample(rng) for _ in range(n)]
    for p in (0.1, 0.5, 0.9, 0.99):
        x = delay.quantile(p)
        share = sum(d <= x for d in draws) / n
        if delay.fixed is not None:
            assert share == 1.0
            continue
        low, high = fraction_bounds(n, delay.cdf(x))
        assert low <= share <= high, (p, x, share)


@pytest.mark.parametrize(
    ("delay", "p", "expected"),
    [
        (Delay.uniform(0.010, 0.050), 0.25, 0.020),
        (Delay.exponential(0.030, minimum=0.010), 0.5, 0.010 + 0.020 * math.log(2)),
        (Delay.lognormal(0.020, 0.5, minimum=0.005), 0.5, 0.020),
        (SLOW, 0.99, 100 ** (1 / 1.5)),
        (LEAF, 0.99, None),  # exactly at the jump from fast to slow: any x in the gap
        (Delay.constant(0.2), 0.999, 0.2),
    ],
)
def test_quantile_inverts_the_closed_forms(delay: Delay, p: float, expected: float | None) -> None:
    """quantile() matches the textbook inverse, and cdf(quantile(p)) >= p."""
    x = delay.quantile(p)
    assert delay.cdf(x) >= p - 1e-12
    if expected is not None:
        assert x == pytest.approx(expected, rel=1e-9)


def test_a_mixture_weights_means_and_distribution_functions() -> None:
    """Mean and cdf of a mixture are the weighted sums of its components'."""
    assert LEAF.mean == pytest.approx(0.99 * FAST.mean + 0.01 * 3.0)  # type: ignore[operator]
    assert LEAF.cdf(1.0) == pytest.approx(0.99)  # the fast part never reaches a second
    assert LEAF.cdf(2.0) == pytest.approx(0.99 + 0.01 * (1 - 0.5**1.5))
    assert FAST.mean == pytest.approx(0.010 * math.exp(0.25**2 / 2))
    assert Delay.pareto(1.0, 1.0).mean == math.inf


def test_a_custom_delay_has_no_distribution_function() -> None:
    """cdf and quantile of a custom delay say why they cannot answer; a mixture with one too."""
    custom = Delay.custom(lambda rng: 0.1)
    with pytest.raises(SimulationError, match="no known distribution"):
        custom.cdf(0.1)
    mixed = Delay.mixture((0.5, custom), (0.5, FAST))
    assert mixed.mean is None
    with pytest.raises(SimulationError, match="no known distribution"):
        mixed.quantile(0.5)


def test_heavy_tailed_delays_run_on_the_network_and_replay() -> None:
    """A mixture is a link delay like any other: same seed, same latencies."""

    def latencies(seed: int) -> list[float]:
        net = pair(seed=seed, delay=LEAF)
        for i in range(500):
            net.send("a", "b", i)
        return net.run().latencies

    assert latencies(4) == latencies(4) != latencies(5)
    assert max(latencies(4)) > 1.0  # 500 draws: the slow 1 % shows up


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: Delay.lognormal(0.01, 0.0), "sigma"),
        (lambda: Delay.lognormal(0.01, 0.5, minimum=0.02), "median"),
        (lambda: Delay.pareto(0.0, 1.5), "minimum"),
        (lambda: Delay.pareto(1.0, 0), "alpha"),
        (lambda: Delay.mixture(), "at least one"),
        (lambda: Delay.mixture((0.5, FAST), (0.4, SLOW)), "sum to 1"),
        (lambda: Delay.mixture((1.0, FAST), (0.0, SLOW)), "weight"),
        (lambda: Delay.mixture((1.5, FAST)), "weight"),
        (lambda: FAST.quantile(1.0), "p must be"),
        (lambda: FAST.quantile(0), "p must be"),
    ],
)
def test_bad_heavy_tail_parameters_name_the_parameter(build: Any, name: str) -> None:
    """Bad parameters raise ValueError whose message names the parameter."""
    with pytest.raises(ValueError, match=name):
        build()


def test_a_mixture_component_must_be_a_weight_and_a_delay() -> None:
    """A bare number where a (weight, Delay) pair belongs is a TypeError."""
    with pytest.raises(TypeError, match=r"\(weight, Delay\) pair"):
        Delay.mixture((1.0, 0.5))  # type: ignore[arg-type]
