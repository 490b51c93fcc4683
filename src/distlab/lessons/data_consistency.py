"""Data-consistency experiments on the simulated network, as lesson 03 runs them.

One replicated register (three replicas unless said otherwise) runs on
``distlab.sim.netsim``; clients read and write it through one of several protocols,
and every operation is recorded in a ``distlab.sim.history.History``:

* ``eventual``: a client writes to and reads from one replica; the replica copies
  each write to the others in the background (asynchronous replication).
* ``primary``: every read and write goes to one primary replica, which copies a
  write to both backups and answers only once they have it (synchronous replication).
* ``quorum(w, r)``: a write is stored by ``w`` replicas and a read asks ``r`` and
  keeps the newest answer (Dynamo-style); with ``write_back=True`` a read first
  makes sure ``w`` replicas hold what it returns (the ABD algorithm).
* ``balanced``: a load balancer sends each request to any replica (eventual), with
  optional sticky sessions or version tokens (session guarantees).

The experiments built on it, one per section of the lesson:

    strong_vs_eventual      stale reads against the time since the write, and latency
    quorum_stale_reads      the stale-read rate of quorum (w, r) against C(n-w, r)/C(n, r)
    quorum_costs            latency and availability of (w, r) with a replica down
    register_history        a concurrent workload's history, for the linearizability check
    convergence             anti-entropy gossip after a partition heals, against n
    conflicting_writes      last-write-wins under clock skew; Lamport clocks; version vectors
    session_guarantees      read-your-writes and monotonic reads behind a load balancer
    cap_experiment          a partition: refuse (consistent) or answer stale (available)

Every function is seeded: the same arguments give the same report; the ``*_theory``
functions give what probability says the report should be close to.
One writer updates the register (versions are the writer's counter), which keeps the
protocols simple; lesson 03 says so where it matters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from distlab.lessons.checks import Wrong, checker, expect
from distlab.sim.history import History, Operation, check, plot_history, violations
from distlab.sim.netsim import Context, Delay, DelaySpec, Network, Node

__all__ = [  # History, check, plot_history and violations: re-exported for the lesson
    "CapReport",
    "ConflictReport",
    "ConvergenceReport",
    "History",
    "LatencyRow",
    "OpRecord",
    "Protocol",
    "QuorumCostRow",
    "SessionReport",
    "Staleness",
    "StoreRun",
    "cap_experiment",
    "check",
    "check_compare_versions",
    "check_newest",
    "check_tricky_history",
    "compare_versions",
    "conflicting_writes",
    "convergence",
    "convergence_theory",
    "eventual",
    "lost_write_theory",
    "max_of_two_round_trips_mean",
    "monotonic_violation_theory",
    "near",
    "newest",
    "plot_convergence",
    "plot_history",
    "plot_staleness",
    "primary",
    "quorum",
    "quorum_costs",
    "quorum_latency_theory",
    "quorum_stale_reads",
    "register_history",
    "run_store",
    "session_guarantees",
    "stale_read_theory",
    "stale_window_theory",
    "strong_vs_eventual",
    "violations",
]

Version = tuple[int, str]
"""A write's version: (the writer's counter, the writer's name); bigger is newer."""

INITIAL: Final[Version] = (0, "")
REPLICAS: Final = ("r1", "r2", "r3")
LOCAL = 0.001  # one-way delay between a client and a replica in its zone, seconds
ZONES = Delay.uniform(0.005, 0.050)  # one-way delay between zones, seconds
TIMEOUT = 0.2  # a coordinator's wait for one replica before trying another, seconds


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
def _int_at_least(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _seconds(name: str, value: float, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def _workload_rng(seed: int) -> random.Random:
    """The generator of a workload's times: seeded apart from the network's draws.

    A workload drawn from ``random.Random(seed)`` would repeat the network's own
    sequence of draws (delays, replica choices) and correlate with it.
    """
    return random.Random(f"workload:{seed}")


def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Protocol:
    """How clients use the replicas; build one with ``eventual``, ``primary`` or ``quorum``.

    Attributes:
        name: a label for tables and plots.
        w: replicas that must store a write before it returns.
        r: replicas a read asks.
        route: ``"random"`` (any replicas), ``"home"`` (the client's own replica),
            ``"primary"`` (replica r1), ``"sticky"`` (one random replica per client, kept).
        propagate: a replica copies each client write to the other replicas at once.
        sync_backups: the primary answers a write only once every backup has it.
        write_back: a quorum read stores what it read at ``w`` replicas before returning.
        token: clients send the newest version they have seen; a replica holds a read
            until it has caught up with it.
    """

    name: str
    w: int = 1
    r: int = 1
    route: Literal["random", "home", "primary", "sticky"] = "random"
    propagate: bool = False
    sync_backups: bool = False
    write_back: bool = False
    token: bool = False


def eventual(
    *, route: Literal["home", "random", "sticky"] = "home", token: bool = False
) -> Protocol:
    """Write to and read from one replica; it copies writes to the others in the background.

    Args:
        route: ``"home"`` (the replica in the client's zone), ``"random"`` (a load
            balancer picks any replica per request) or ``"sticky"`` (the balancer
            keeps each client on one replica).
        token: clients send version tokens (read-your-writes, monotonic reads).
    """
    if route not in ("home", "random", "sticky"):
        raise ValueError(f"route must be 'home', 'random' or 'sticky', got {route!r}")
    label = {"home": "eventual", "random": "load balancer", "sticky": "sticky sessions"}[route]
    if token:
        label = "version tokens"
    return Protocol(label, route=route, propagate=True, token=bool(token))


def primary() -> Protocol:
    """Send every read and write to replica r1, which copies writes to both backups first."""
    return Protocol("primary (strong)", route="primary", sync_backups=True)


def quorum(w: int, r: int, *, n: int = 3, write_back: bool = False) -> Protocol:
    """Store each write at ``w`` random replicas and read ``r``, keeping the newest answer.

    The other ``n - w`` replicas get a write only from anti-entropy, later. With
    ``write_back``, a read first stores what it returns at ``w`` replicas (ABD).

    Raises:
        ValueError: when ``w`` or ``r`` is not in ``1..n``.
    """
    _int_at_least("n", n, 1)
    for name, value in (("w", w), ("r", r)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= n:
            raise ValueError(f"{name} must be an int in 1..n={n}, got {value!r}")
    label = f"quorum w={w} r={r}" + (" + write-back" if write_back else "")
    return Protocol(label, w=w, r=r, write_back=bool(write_back))


# --------------------------------------------------------------------------------------
# The replicas and the clients
# --------------------------------------------------------------------------------------
@dataclass
class OpRecord:
    """One client operation, as the client saw it.

    Attributes:
        client: who ran it.
        kind: ``"read"`` or ``"write"``.
        start: when it was invoked (s).
        end: when it returned or failed (s); None if it never did.
        ok: whether it returned a result (False: it failed, no replica quorum answered).
        version: the version written, or the version read.
        value: the value written or read.
        fresh: for a read, the newest version whose write had returned before the read
            started (reading anything older is a *stale read*).
    """

    client: str
    kind: str
    start: float
    end: float | None = None
    ok: bool = False
    version: Version = INITIAL
    value: Any = None
    fresh: Version = INITIAL

    @property
    def latency(self) -> float:
        """Seconds from invocation to return (inf if it never returned)."""
        return math.inf if self.end is None else self.end - self.start

    @property
    def stale(self) -> bool:
        """A successful read that returned something older than a write that had returned."""
        return self.kind == "read" and self.ok and self.version < self.fresh


class _Replica(Node):
    """Holds one (version, value); answers gets and puts; copies and gossips as told."""

    def __init__(self, run: _Run, name: str) -> None:
        self.run = run
        self.name = name
        self.version: Version = INITIAL
        self.value: Any = None
        self.parked: list[tuple[str, int, Version]] = []  # reads waiting for a version
        self.copies: dict[int, tuple[str, int, int]] = {}  # primary: id -> (client, rid, left)
        self.applied_at: dict[Version, float] = {}

    def on_start(self, ctx: Context) -> None:
        if self.run.anti_entropy is not None:
            ctx.set_timer(self.run.anti_entropy * ctx.rng.random(), "gossip")

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if payload == "gossip":
            peers = [p for p in self.run.replicas if p != self.name]
            ctx.send(ctx.rng.choice(peers), ("push", self.version, self.value))
            assert self.run.anti_entropy is not None
            ctx.set_timer(self.run.anti_entropy, "gossip")
        else:  # ("serve", src, msg): a request whose service time has passed
            _, src, msg = payload
            self.serve(ctx, src, msg)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = msg[0]
        if kind in ("get", "put") and self.run.service > 0:
            ctx.set_timer(ctx.rng.expovariate(1 / self.run.service), ("serve", src, msg))
        elif kind in ("get", "put"):
            self.serve(ctx, src, msg)
        elif kind == "push":  # gossip: adopt a newer version, answer with a newer one
            _, version, value = msg
            if version > self.version:
                self.apply(ctx, version, value)
            elif version < self.version:
                ctx.send(src, ("sync", self.version, self.value))
        elif kind == "sync":
            if msg[1] > self.version:
                self.apply(ctx, msg[1], msg[2])
        elif kind == "copy":  # from the primary
            _, cid, version, value = msg
            if version > self.version:
                self.apply(ctx, version, value)
            ctx.send(src, ("copied", cid))
        elif kind == "copied":
            client, rid, left = self.copies.pop(msg[1])
            if left > 1:
                self.copies[msg[1]] = (client, rid, left - 1)
            else:
                ctx.send(client, ("ack", rid))

    def serve(self, ctx: Context, src: str, msg: Any) -> None:
        if msg[0] == "get":
            _, rid, token = msg
            if token > self.version:
                self.parked.append((src, rid, token))
            else:
                ctx.send(src, ("value", rid, self.version, self.value))
            return
        _, rid, version, value = msg
        if version > self.version:
            self.apply(ctx, version, value)
        protocol = self.run.protocol
        if protocol.propagate:
            for peer in self.run.replicas:
                if peer != self.name:
                    ctx.send(peer, ("sync", version, value))
        if protocol.sync_backups:
            backups = [p for p in self.run.replicas if p != self.name]
            cid = self.run.next_id()
            self.copies[cid] = (src, rid, len(backups))
            for peer in backups:
                ctx.send(peer, ("copy", cid, version, value))
        else:
            ctx.send(src, ("ack", rid))

    def apply(self, ctx: Context, version: Version, value: Any) -> None:
        self.version, self.value = version, value
        self.applied_at.setdefault(version, ctx.now)
        if self.parked:
            waiting, self.parked = self.parked, []
            for client, rid, token in waiting:
                if token > version:
                    self.parked.append((client, rid, token))
                else:
                    ctx.send(client, ("value", rid, version, value))


class _Client(Node):
    """Runs its planned operations one at a time, through the run's protocol."""

    def __init__(self, run: _Run, name: str, home: str, plan: Sequence[tuple[float, str]]):
        self.run = run
        self.name = name
        self.home = home
        self.plan = list(plan)
        self.queue: list[str] = []
        self.busy = False
        self.counter = 0
        self.token: Version = INITIAL
        self.sticky: str | None = None
        self.op: _Op | None = None

    def on_start(self, ctx: Context) -> None:
        for when, kind in self.plan:
            ctx.set_timer(max(0.0, when - ctx.now), ("start", kind))

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if payload[0] == "start":
            self.queue.append(payload[1])
            self.next_op(ctx)
        elif payload[0] == "timeout":
            op = self.op
            if op is not None and op.seq == payload[1] and op.phase == payload[2]:
                op.timed_out(ctx, payload[3])

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        op = self.op
        if op is not None and msg[1] == op.rid:
            op.answer(ctx, src, msg)

    def next_op(self, ctx: Context) -> None:
        if self.busy or not self.queue:
            return
        kind = self.queue.pop(0)
        self.busy = True
        record = OpRecord(self.name, kind, ctx.now)
        self.run.records.append(record)
        if kind == "write":
            self.counter += 1
            record.version = (self.counter, self.name)
            record.value = self.counter
            record_id = self.run.history.invoke(self.name, "write", record.value, at=ctx.now)
        else:
            record.fresh = self.run.latest_returned_write()
            record_id = self.run.history.invoke(self.name, "read", at=ctx.now)
        self.op = _Op(self, record, record_id)
        self.op.begin(ctx)

    def finish(self, ctx: Context, op: _Op, ok: bool) -> None:
        record = op.record
        record.end, record.ok = ctx.now, ok
        if ok:
            if record.kind == "write":
                self.run.history.ok(op.history_id, None, at=ctx.now)
                self.run.newest_returned = max(self.run.newest_returned, record.version)
            else:
                self.run.history.ok(op.history_id, record.value, at=ctx.now)
            self.token = max(self.token, record.version)
        elif record.kind == "read":
            self.run.history.fail(op.history_id, at=ctx.now)  # a failed read had no effect
        # a failed write stays open in the history: some replica may have stored it
        self.op = None
        self.busy = False
        self.next_op(ctx)

    def targets(self, ctx: Context, k: int) -> list[str]:
        route = self.run.protocol.route
        replicas = list(self.run.replicas)
        if route == "home":
            return [self.home]
        if route == "primary":
            return [replicas[0]]
        if route == "sticky":
            if self.sticky is None:
                self.sticky = ctx.rng.choice(replicas)
            return [self.sticky]
        return ctx.rng.sample(replicas, k)


class _Op:
    """One running operation: phases of requests to replicas, a timeout per replica."""

    def __init__(self, client: _Client, record: OpRecord, history_id: int) -> None:
        self.client = client
        self.record = record
        self.history_id = history_id
        self.seq = client.run.next_id()
        self.phase = 0
        self.rid = -1
        self.need = 0
        self.waiting: set[str] = set()
        self.tried: set[str] = set()
        self.answers: list[tuple[Version, Any]] = []
        self.got = 0
        self.request: Callable[[int], Any] = lambda rid: None

    def begin(self, ctx: Context) -> None:
        protocol = self.client.run.protocol
        record = self.record
        if record.kind == "write":
            version, value = record.version, record.value
            self.start_phase(ctx, protocol.w, lambda rid: ("put", rid, version, value))
        else:
            token = self.client.token if protocol.token else INITIAL
            self.start_phase(ctx, protocol.r, lambda rid: ("get", rid, token))

    def start_phase(self, ctx: Context, k: int, request: Callable[[int], Any]) -> None:
        run = self.client.run
        self.phase += 1
        self.rid = run.next_id()
        self.need = k
        self.request = request
        self.answers = []
        self.got = 0
        self.tried = set()
        self.waiting = set()
        for target in self.client.targets(ctx, k):
            self.ask(ctx, target)

    def ask(self, ctx: Context, target: str) -> None:
        self.tried.add(target)
        self.waiting.add(target)
        ctx.send(target, self.request(self.rid))
        timeout = self.client.run.timeout
        ctx.set_timer(timeout, ("timeout", self.seq, self.phase, target))

    def timed_out(self, ctx: Context, target: str) -> None:
        if target not in self.waiting:
            return
        self.waiting.discard(target)
        if self.client.run.protocol.route == "random":
            spare = [r for r in self.client.run.replicas if r not in self.tried]
            if spare:
                self.ask(ctx, ctx.rng.choice(spare))
                return
        self.client.finish(ctx, self, ok=False)

    def answer(self, ctx: Context, src: str, msg: Any) -> None:
        if src not in self.waiting:
            return
        self.waiting.discard(src)
        self.got += 1
        if msg[0] == "value":
            self.answers.append((msg[2], msg[3]))
        if self.got < self.need:
            return
        if self.record.kind == "write" or self.phase > 1:
            self.client.finish(ctx, self, ok=True)
            return
        version, value = self.client.run.resolve(self.answers)
        self.record.version, self.record.value = version, value
        protocol = self.client.run.protocol
        have = sum(1 for v, _ in self.answers if v == version)
        if protocol.write_back and have < protocol.w:
            self.start_phase(ctx, protocol.w, lambda rid: ("put", rid, version, value))
        else:
            self.client.finish(ctx, self, ok=True)


@dataclass
class _Run:
    protocol: Protocol
    replicas: tuple[str, ...]
    service: float
    timeout: float
    anti_entropy: float | None
    resolve: Callable[[list[tuple[Version, Any]]], tuple[Version, Any]]
    history: History = field(default_factory=History)
    records: list[OpRecord] = field(default_factory=list)
    newest_returned: Version = INITIAL
    counter: int = 0

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    def latest_returned_write(self) -> Version:
        return self.newest_returned


def newest(answers: Sequence[tuple[Version, Any]]) -> tuple[Version, Any]:
    """Return the (version, value) answer with the highest version (the reference rule).

    Raises:
        ValueError: when ``answers`` is empty.
    """
    if not answers:
        raise ValueError("answers must hold at least one (version, value) answer")
    return max(answers, key=lambda answer: answer[0])


@dataclass(frozen=True)
class StoreRun:
    """Everything one run of the replicated register produced.

    Attributes:
        protocol: the protocol the clients used.
        records: every operation, in order of invocation.
        history: the same operations as a linearizability ``History``.
        applied_at: per replica, when it first held each version.
        duration: virtual seconds the run took.
    """

    protocol: Protocol
    records: list[OpRecord] = field(repr=False)
    history: History = field(repr=False)
    applied_at: dict[str, dict[Version, float]] = field(repr=False)
    duration: float

    def reads(self) -> list[OpRecord]:
        """Successful reads."""
        return [op for op in self.records if op.kind == "read" and op.ok]

    def ops(self, kind: str) -> list[OpRecord]:
        """Every operation of ``kind`` (``"read"`` or ``"write"``), failed ones included."""
        return [op for op in self.records if op.kind == kind]

    @property
    def stale_fraction(self) -> float:
        """The fraction of successful reads that were stale (0.0 without reads)."""
        reads = self.reads()
        return sum(op.stale for op in reads) / len(reads) if reads else 0.0

    @property
    def available(self) -> float:
        """The fraction of operations that returned (1.0 without operations)."""
        return sum(op.ok for op in self.records) / len(self.records) if self.records else 1.0


def run_store(
    protocol: Protocol,
    plans: Mapping[str, Sequence[tuple[float, str]]],
    *,
    homes: Mapping[str, str] | None = None,
    n: int = 3,
    client_delay: DelaySpec = LOCAL,
    replica_delay: DelaySpec = ZONES,
    remote_delay: DelaySpec | None = None,
    service: float = 0.0,
    timeout: float = TIMEOUT,
    anti_entropy: float | None = None,
    down: Sequence[str] = (),
    partition: tuple[Sequence[str], Sequence[str], float, float] | None = None,
    resolve: Callable[[list[tuple[Version, Any]]], tuple[Version, Any]] = newest,
    seed: int = 0,
) -> StoreRun:
    """Run clients' planned operations against ``n`` replicas through ``protocol``.

    Args:
        protocol: how clients use the replicas (``eventual()``, ``primary()``, ``quorum()``).
        plans: per client, its operations as ``(time, "read" | "write")``; a client runs
            one at a time, so an operation starts at its time or when the previous ends.
        homes: per client, the replica in its zone (default: r1 for every client).
        n: number of replicas, named r1..rn.
        client_delay: one-way delay between a client and its home replica.
        replica_delay: one-way delay between two replicas.
        remote_delay: one-way delay between a client and another zone's replica
            (default: ``client_delay``, as if every replica were local).
        service: mean exponential time a replica takes to serve a get or put (s).
        timeout: how long a client waits for one replica before trying another.
        anti_entropy: every replica pushes its value to a random peer this often (s);
            None: no anti-entropy.
        down: replicas crashed for the whole run.
        partition: ``(side_a, side_b, start, heal)``, nodes cut apart in that window.
        resolve: how a read picks its answer among the replicas' (version, value).
        seed: seeds every random choice.

    Returns:
        The records, the history and when each replica got each version.
    """
    _int_at_least("n", n, 1)
    if protocol.w > n or protocol.r > n:
        raise ValueError(f"the protocol needs w={protocol.w}, r={protocol.r} <= n={n}")
    _seconds("service", service, zero=True)
    _seconds("timeout", timeout)
    if anti_entropy is not None:
        _seconds("anti_entropy", anti_entropy)
    replicas = tuple(f"r{i}" for i in range(1, n + 1))
    homes = dict(homes or {})
    for client, home in homes.items():
        if home not in replicas:
            raise ValueError(f"homes: {client!r} lives next to {home!r}, not a replica {replicas}")
    run = _Run(protocol, replicas, service, timeout, anti_entropy, resolve)
    net = Network(seed=seed, delay=replica_delay)
    nodes: dict[str, _Replica] = {}
    for name in replicas:
        nodes[name] = _Replica(run, name)
        net.add_node(name, nodes[name])
    for client, plan in plans.items():
        home = homes.get(client, replicas[0])
        net.add_node(client, _Client(run, client, home, plan))
        for name in replicas:
            delay = client_delay if name == home or remote_delay is None else remote_delay
            net.set_link(client, name, delay=delay, both_ways=True)
    for name in down:
        if name not in nodes:
            raise ValueError(f"down: {name!r} is not a replica {replicas}")
        net.crash(name, at=0.0)
    if partition is not None:
        side_a, side_b, start, heal = partition
        net.partition(side_a, side_b, start=start, heal=heal)
    last = max((when for plan in plans.values() for when, _ in plan), default=0.0)
    # Anti-entropy never goes quiet: stop a while after the last planned operation.
    until = None if anti_entropy is None else last + 50 * timeout + 10 * anti_entropy
    net.run(until=until, max_events=None)
    return StoreRun(
        protocol=protocol,
        records=run.records,
        history=run.history,
        applied_at={name: dict(node.applied_at) for name, node in nodes.items()},
        duration=net.now,
    )


def near(history: History, op: Operation, *, margin: float = 0.02) -> list[Operation]:
    """Return the operations of ``history`` that overlap ``op`` widened by ``margin`` s.

    Handy to draw the neighbourhood of an offending read with ``plot_history``.
    """
    low, high = op.call - margin, op.ret + margin
    return [other for other in history.operations if other.ret >= low and other.call <= high]


# --------------------------------------------------------------------------------------
# 1. Strong vs eventual
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyRow:
    """Latency and staleness of one protocol in ``strong_vs_eventual``.

    Attributes:
        protocol: the protocol's name.
        stale: the fraction of reads that were stale.
        write_ms: mean write latency in milliseconds.
        read_ms: mean read latency in milliseconds.
    """

    protocol: str
    stale: float
    write_ms: float
    read_ms: float


@dataclass(frozen=True)
class Staleness:
    """Reads of ``strong_vs_eventual``: when each started after the write, and if stale.

    Attributes:
        runs: the run of each protocol, by protocol name.
        rows: one summary row per protocol.
        gaps: per protocol, each read's start in seconds after alice sent her write.
        stale: per protocol, whether each read was stale (same order as ``gaps``).
    """

    runs: dict[str, StoreRun] = field(repr=False)
    rows: list[LatencyRow]
    gaps: dict[str, list[float]] = field(repr=False)
    stale: dict[str, list[bool]] = field(repr=False)


def strong_vs_eventual(
    trials: int = 500, *, max_gap: float = 0.060, spacing: float = 0.5, seed: int = 0
) -> Staleness:
    """Write, then read from the other two zones a random time later; eventual vs strong.

    Three replicas sit in three zones (5-50 ms apart, one way); alice (zone of r1)
    writes, bob (zone of r2) and carol (zone of r3) each read once per write, a time
    drawn uniformly in ``[0, max_gap]`` after alice's write returned. With ``eventual``
    everyone uses the replica in their zone; with ``primary`` everyone uses r1.

    Args:
        trials: writes (each followed by two reads).
        max_gap: the longest wait between the write returning and a read (s).
        spacing: seconds between two writes (long enough for replication to finish).
        seed: seeds every random choice.

    Returns:
        Per protocol: the runs, a summary row, and each read's gap and staleness.
    """
    _int_at_least("trials", trials, 1)
    _seconds("max_gap", max_gap, zero=True)
    _seconds("spacing", spacing)
    if spacing <= max_gap + 0.2:
        raise ValueError(f"spacing must be > max_gap + 0.2 s ({max_gap + 0.2!r}), got {spacing!r}")
    rng = _workload_rng(seed)
    plans: dict[str, list[tuple[float, str]]] = {"alice": [], "bob": [], "carol": []}
    for i in range(trials):
        start = 1.0 + i * spacing
        plans["alice"].append((start, "write"))
        # alice's write returns 2 ms later in eventual mode (a local round trip); the
        # reads are planned from there, and the gaps are measured, not assumed.
        for reader in ("bob", "carol"):
            plans[reader].append((start + 2 * LOCAL + rng.uniform(0, max_gap), "read"))
    homes = {"alice": "r1", "bob": "r2", "carol": "r3"}
    runs: dict[str, StoreRun] = {}
    rows = []
    gaps: dict[str, list[float]] = {}
    stale: dict[str, list[bool]] = {}
    for protocol in (eventual(), primary()):
        run = run_store(protocol, plans, homes=homes, remote_delay=ZONES, seed=seed)
        runs[protocol.name] = run
        reads = run.reads()
        # every read succeeds here, so a reader's i-th read belongs to the i-th write
        gaps[protocol.name] = []
        counts = dict.fromkeys(("bob", "carol"), 0)
        for op in reads:
            gaps[protocol.name].append(op.start - (1.0 + counts[op.client] * spacing))
            counts[op.client] += 1
        stale[protocol.name] = [op.stale for op in reads]
        writes = [op for op in run.ops("write") if op.ok]
        rows.append(
            LatencyRow(
                protocol.name,
                stale=run.stale_fraction,
                write_ms=1000 * sum(op.latency for op in writes) / len(writes),
                read_ms=1000 * sum(op.latency for op in reads) / len(reads),
            )
        )
    return Staleness(runs, rows, gaps, stale)


def stale_window_theory(
    gap: float, *, local: float = LOCAL, low: float = 0.005, high: float = 0.050
) -> float:
    """P(a read in another zone, ``gap`` s after an eventual write returned, is stale).

    The write reached its replica at ``local`` s and returned at ``2 * local``; the copy
    to another zone takes ``D ~ U(low, high)``; the read reaches that zone's replica at
    ``3 * local + gap``. It is stale when ``D > 2 * local + gap``.
    """
    return min(1.0, max(0.0, (high - 2 * local - gap) / (high - low)))


def max_of_two_round_trips_mean(*, low: float = 0.005, high: float = 0.050) -> float:
    """E[max of two round trips], each the sum of two independent U(low, high) delays.

    A round trip is ``2 * low + (high - low) * T`` with T triangular on [0, 2]; the
    mean of the larger of two such T is ``∫ (1 - F(t)^2) dt = 0.95 + 17/60 = 37/30``.
    """
    return 2 * low + (high - low) * 37 / 30


def plot_staleness(report: Staleness, *, bins: int = 12, ax: Any = None) -> Any:
    """Plot the stale-read fraction against the time since alice sent her write.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    top = max(g for gaps in report.gaps.values() for g in gaps)
    width = top / bins
    for (name, gaps), marker in zip(report.gaps.items(), ("o", "s"), strict=False):
        counts = [[0, 0] for _ in range(bins)]
        for gap, stale in zip(gaps, report.stale[name], strict=True):
            cell = counts[min(bins - 1, int(gap / width))]
            cell[0] += stale
            cell[1] += 1
        xs = [(b + 0.5) * width * 1000 for b in range(bins) if counts[b][1]]
        ys = [100 * s / n for s, n in counts if n]
        ax.plot(xs, ys, marker=marker, linestyle="", label=f"{name}: measured")
    grid = [top * i / 200 for i in range(201)]
    ax.plot(
        [g * 1000 for g in grid],
        [100 * stale_window_theory(g - 2 * LOCAL) for g in grid],
        color="black",
        linestyle="--",
        label="eventual: theory",
    )
    ax.set_xlabel("time from alice sending her write to the read (ms)")
    ax.set_ylabel("stale reads (%)")
    ax.set_ylim(-3, 103)
    ax.legend()
    return ax


# --------------------------------------------------------------------------------------
# 2. Quorums
# --------------------------------------------------------------------------------------
def stale_read_theory(n: int, w: int, r: int) -> float:
    """P(r random replicas miss all w replicas holding the write) = C(n-w, r) / C(n, r)."""
    return math.comb(n - w, r) / math.comb(n, r)


def quorum_stale_reads(
    w: int,
    r: int,
    *,
    n: int = 3,
    trials: int = 1000,
    resolve: Callable[[list[tuple[Version, Any]]], tuple[Version, Any]] = newest,
    seed: int = 0,
) -> StoreRun:
    """Write through quorum ``w``, then read through quorum ``r``, ``trials`` times.

    Each write is stored by ``w`` random replicas; nothing else copies it (no
    anti-entropy), so the read 50 ms later is stale exactly when its ``r`` replicas
    all missed the write.

    Returns:
        The run; ``stale_fraction`` is the measured rate.
    """
    _int_at_least("trials", trials, 1)
    protocol = quorum(w, r, n=n)
    plans = {
        "alice": [(0.2 * i, "write") for i in range(trials)],
        "bob": [(0.2 * i + 0.05, "read") for i in range(trials)],
    }
    return run_store(protocol, plans, n=n, resolve=resolve, seed=seed)


@dataclass(frozen=True)
class QuorumCostRow:
    """Latency and availability of one (w, r) configuration, all up and one replica down.

    Attributes:
        w: write quorum.
        r: read quorum.
        write_ms: mean write latency, all replicas up (ms).
        read_ms: mean read latency, all replicas up (ms).
        read_p99_ms: 99th percentile read latency, all replicas up (ms).
        down_available: fraction of operations that succeed with one replica down.
        down_write_ms: mean latency of successful writes with one replica down (ms).
        down_read_ms: mean latency of successful reads with one replica down (ms).
        stale: the fraction of stale reads (all up).
    """

    w: int
    r: int
    write_ms: float
    read_ms: float
    read_p99_ms: float
    down_available: float
    down_write_ms: float
    down_read_ms: float
    stale: float


def _mean_ms(ops: Sequence[OpRecord]) -> float:
    done = [op.latency for op in ops if op.ok]
    return 1000 * sum(done) / len(done) if done else math.nan


def _p99_ms(ops: Sequence[OpRecord]) -> float:
    done = sorted(op.latency for op in ops if op.ok)
    if not done:
        return math.nan
    return 1000 * done[max(0, math.ceil(0.99 * len(done)) - 1)]


def quorum_costs(
    configs: Sequence[tuple[int, int]] = ((1, 1), (1, 3), (2, 2), (3, 1)),
    *,
    n: int = 3,
    trials: int = 1000,
    service: float = 0.010,
    timeout: float = TIMEOUT,
    seed: int = 0,
) -> list[QuorumCostRow]:
    """Measure each (w, r): latency with all replicas up, availability with r3 down.

    Replicas take an exponential time with mean ``service`` to answer (a disk, a
    garbage collector); clients are 1 ms from every replica. A client does not know
    r3 is down: it waits ``timeout`` for it, then asks a replica it has not tried.

    Returns:
        One row per configuration.
    """
    _int_at_least("trials", trials, 1)
    rows = []
    for w, r in configs:
        protocol = quorum(w, r, n=n)
        plans = {
            "alice": [(0.5 * i, "write") for i in range(trials)],
            "bob": [(0.5 * i + 0.25, "read") for i in range(trials)],
        }
        up = run_store(protocol, plans, n=n, service=service, timeout=timeout, seed=seed)
        down = run_store(
            protocol, plans, n=n, service=service, timeout=timeout, down=(f"r{n}",), seed=seed
        )
        rows.append(
            QuorumCostRow(
                w=w,
                r=r,
                write_ms=_mean_ms(up.ops("write")),
                read_ms=_mean_ms(up.ops("read")),
                read_p99_ms=_p99_ms(up.ops("read")),
                down_available=down.available,
                down_write_ms=_mean_ms(down.ops("write")),
                down_read_ms=_mean_ms(down.ops("read")),
                stale=up.stale_fraction,
            )
        )
    return rows


def quorum_latency_theory(
    k: int,
    *,
    n: int = 3,
    service: float = 0.010,
    local: float = LOCAL,
    timeout: float = TIMEOUT,
    down: int = 0,
    quantile: float | None = None,
) -> float:
    """Mean (or quantile) latency of an operation that needs ``k`` replicas, in seconds.

    All up: a round trip plus the largest of ``k`` exponential service times, whose
    mean is ``service * (1 + 1/2 + ... + 1/k)`` and whose q-quantile is
    ``-service * ln(1 - q^(1/k))``. One replica down (mean only): with probability
    ``k / n`` the client picked it, waits ``timeout`` and asks a spare replica, which
    adds a round trip and one service time; with ``k = n`` there is no spare (nan).
    """
    if down not in (0, 1):
        raise ValueError(f"down must be 0 or 1, got {down!r}")
    if quantile is not None:
        if down:
            raise ValueError("quantile is only computed with down=0")
        return 2 * local - service * math.log(1 - quantile ** (1 / k))
    base = 2 * local + service * sum(1 / i for i in range(1, k + 1))
    if not down:
        return base
    if k > n - 1:
        return math.nan
    return (1 - k / n) * base + (k / n) * (timeout + 2 * local + service)


# --------------------------------------------------------------------------------------
# 3. Linearizability
# --------------------------------------------------------------------------------------
def register_history(
    protocol: Protocol,
    *,
    ops: int = 30,
    readers: int = 3,
    rate: float = 40.0,
    seed: int = 0,
) -> StoreRun:
    """A concurrent workload: alice writes, ``readers`` others read, at random times.

    Clients live in the zones of r1, r2, r3 (5-50 ms apart); each starts operations
    as a Poisson process of ``rate`` per second, so reads overlap writes.

    Args:
        protocol: how clients use the replicas.
        ops: operations per client.
        readers: reading clients besides alice (1..5).
        rate: operations per second per client.
        seed: seeds the workload and the network.

    Returns:
        The run; check ``run.history`` with ``distlab.sim.history.check``.
    """
    _int_at_least("ops", ops, 1)
    if isinstance(readers, bool) or not isinstance(readers, int) or not 1 <= readers <= 5:
        raise ValueError(f"readers must be an int in 1..5, got {readers!r}")
    _seconds("rate", rate)
    rng = _workload_rng(seed)
    names = ["alice", "bob", "carol", "dave", "erin", "frank"][: readers + 1]
    plans: dict[str, list[tuple[float, str]]] = {}
    for name in names:
        t = 0.0
        plan = []
        for _ in range(ops):
            t += rng.expovariate(rate)
            plan.append((t, "write" if name == "alice" else "read"))
        plans[name] = plan
    homes = {name: REPLICAS[i % 3] for i, name in enumerate(names)}
    return run_store(protocol, plans, homes=homes, remote_delay=ZONES, seed=seed)


# --------------------------------------------------------------------------------------
# 4. Convergence
# --------------------------------------------------------------------------------------
class _Gossiper(Node):
    """Every ``interval`` s (same instants for all), push-pull with one random peer.

    A pull answer tells what the node had at the start of the round, so a round is
    exactly one synchronous round of the textbook protocol.
    """

    def __init__(self, peers: list[str], interval: float, pull: bool, informed: dict[str, float]):
        self.peers = peers
        self.interval = interval
        self.pull = pull
        self.informed = informed
        self.has = False
        self.had = False  # at the start of the current round

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(self.interval, None)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if len(self.informed) == len(self.peers) + 1:
            return  # everyone knows: stop gossiping, so the run ends
        self.had = self.has
        ctx.send(ctx.rng.choice(self.peers), ("push", self.has))
        ctx.set_timer(self.interval, None)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind, has = msg
        if kind == "push" and self.pull and self.had and not has:
            ctx.send(src, ("pull", True))
        if has and not self.has:
            self.has = True
            self.informed[ctx.node] = ctx.now


@dataclass(frozen=True)
class ConvergenceReport:
    """How long anti-entropy took to spread one write to every replica.

    Attributes:
        n: replicas.
        rounds: per seed, the gossip rounds until every replica had the write.
        pull: whether replicas also pulled (push-pull) or only pushed.
    """

    n: int
    rounds: list[int] = field(repr=False)
    pull: bool

    @property
    def mean_rounds(self) -> float:
        """Mean rounds to converge over the seeds."""
        return sum(self.rounds) / len(self.rounds)


def convergence(
    n: int, *, seeds: int = 50, pull: bool = True, interval: float = 1.0, seed: int = 0
) -> ConvergenceReport:
    """Spread one write from one replica to ``n`` by gossip; count the rounds.

    The write was accepted by one replica during a partition; at t = 0 the partition
    heals and every replica, once per ``interval`` (all on the same beat), contacts
    one random peer: it pushes what it has, and with ``pull`` the peer answers with
    what it has (anti-entropy). Delays are 1-10 ms, well inside a round.

    Returns:
        The rounds each seed needed.
    """
    _int_at_least("n", n, 2)
    _int_at_least("seeds", seeds, 1)
    _seconds("interval", interval)
    rounds = []
    for s in range(seeds):
        net = Network(seed=seed * 10_007 + s, delay=Delay.uniform(0.001, 0.010))
        names = [f"r{i}" for i in range(1, n + 1)]
        informed: dict[str, float] = {names[0]: 0.0}
        for name in names:
            node = _Gossiper([p for p in names if p != name], interval, pull, informed)
            node.has = name == names[0]
            net.add_node(name, node)
        net.run(max_events=None)
        # round k starts at k * interval; its messages arrive within 10 ms
        rounds.append(math.floor(max(informed.values()) / interval))
    return ConvergenceReport(n, rounds, pull)


def convergence_theory(n: int, *, pull: bool = True) -> float:
    """Expected rounds for gossip to bring a write from one replica to all ``n``.

    Exact, by the Markov chain on the number ``I`` of informed replicas: in a round
    each informed replica pushes to one random peer (the uninformed ones hit follow an
    occupancy law), and with ``pull`` each uninformed replica also asks one random
    peer, which answers if it is informed (probability ``I / (n - 1)``). For large
    ``n`` push-pull needs about ``log3 n`` rounds and push alone ``log2 n + ln n``
    (Karp et al., 2000; Pittel, 1987).
    """
    _int_at_least("n", n, 2)
    peers = n - 1
    expected = [0.0] * (n + 1)  # expected[i]: rounds still needed with i informed
    for informed in range(n - 1, 0, -1):
        u = n - informed
        # hits[h]: P(the pushes reach h distinct uninformed replicas)
        hits = [1.0] + [0.0] * u
        for _ in range(informed):
            nxt = [0.0] * (u + 1)
            for h, p in enumerate(hits):
                if p:
                    nxt[h] += p * (peers - (u - h)) / peers
                    if h < u:
                        nxt[h + 1] += p * (u - h) / peers
            hits = nxt
        stay = 1 - informed / peers if pull else 1.0
        # P(k uninformed left) after pulls: Binomial(u - h, stay) of the missed ones
        left = [0.0] * (u + 1)
        for h, p in enumerate(hits):
            if p:
                m = u - h
                for k in range(m + 1):
                    left[k] += p * math.comb(m, k) * stay**k * (1 - stay) ** (m - k)
        # E[i] = 1 + sum P(i -> i') E[i'], with a self-loop when nobody new learns
        rest = sum(left[k] * expected[n - k] for k in range(u))
        expected[informed] = (1 + rest) / (1 - left[u])
    return expected[1]


def plot_convergence(reports: Sequence[ConvergenceReport], *, ax: Any = None) -> Any:
    """Plot mean gossip rounds to converge against the number of replicas, with theory.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for pull, marker in ((True, "o"), (False, "s")):
        chosen = sorted((r for r in reports if r.pull == pull), key=lambda r: r.n)
        if not chosen:
            continue
        label = "push-pull" if pull else "push only"
        ns = [r.n for r in chosen]
        ax.plot(ns, [r.mean_rounds for r in chosen], marker=marker, label=f"{label}: measured")
        ax.plot(
            ns,
            [convergence_theory(k, pull=pull) for k in ns],
            color="black",
            linestyle="--" if pull else ":",
            label=f"{label}: theory",
        )
    ax.set_xscale("log")
    ax.set_xlabel("replicas (log scale)")
    ax.set_ylabel("rounds until every replica has the write (1 round = 1 s)")
    ax.legend()
    return ax


# --------------------------------------------------------------------------------------
# 5. Conflicts: last-write-wins, Lamport clocks, version vectors
# --------------------------------------------------------------------------------------
Clocks = Literal["wall", "lamport", "vector"]


def compare_versions(a: Mapping[str, int], b: Mapping[str, int]) -> str:
    """Compare two version vectors: ``"before"``, ``"after"``, ``"equal"`` or ``"concurrent"``.

    A missing entry counts as 0. ``a`` is before ``b`` when no entry of ``a`` is larger
    and at least one is smaller: every write ``a`` saw, ``b`` saw too.
    """
    keys = set(a) | set(b)
    smaller = any(a.get(k, 0) < b.get(k, 0) for k in keys)
    larger = any(a.get(k, 0) > b.get(k, 0) for k in keys)
    if smaller and larger:
        return "concurrent"
    if smaller:
        return "before"
    if larger:
        return "after"
    return "equal"


class _ConflictReplica(Node):
    """A key-value replica that stamps writes by wall clock, Lamport clock or version vector."""

    def __init__(self, clocks: Clocks, skew: float, peer: str) -> None:
        self.clocks = clocks
        self.skew = skew
        self.peer = peer
        self.lamport = 0
        self.counters: dict[Hashable, int] = {}  # vector: this replica's counter per key
        self.store: dict[Hashable, list[tuple[Any, str]]] = {}  # key -> [(stamp, value)]

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = msg[0]
        if kind == "get":
            _, key = msg
            siblings = self.store.get(key, [])
            ctx.reply(("got", key, [value for _, value in siblings], self.context(siblings)))
        elif kind == "put":
            _, key, value, context = msg
            self.put(ctx, key, value, context)
        elif kind == "sync":  # anti-entropy: send everything to the peer
            for key, siblings in self.store.items():
                ctx.send(self.peer, ("merge", key, list(siblings)))
        elif kind == "merge":
            _, key, siblings = msg
            for stamp, value in siblings:
                if self.clocks == "lamport":
                    self.lamport = max(self.lamport, stamp[0])
                self.keep(key, stamp, value)

    def context(self, siblings: list[tuple[Any, str]]) -> Any:
        if not siblings:
            return None
        if self.clocks == "vector":
            merged: dict[str, int] = {}
            for stamp, _ in siblings:
                for replica, count in stamp.items():
                    merged[replica] = max(merged.get(replica, 0), count)
            return merged
        return max(stamp for stamp, _ in siblings)

    def put(self, ctx: Context, key: Hashable, value: str, context: Any) -> None:
        stamp: Any
        if self.clocks == "wall":
            stamp = (ctx.now - self.skew, ctx.node)  # this replica's clock reads now - skew
        elif self.clocks == "lamport":
            seen = 0 if context is None else context[0]
            self.lamport = max(self.lamport, seen) + 1
            stamp = (self.lamport, ctx.node)
        else:
            stamp = dict(context or {})
            count = max(self.counters.get(key, 0), stamp.get(ctx.node, 0)) + 1
            self.counters[key] = count
            stamp[ctx.node] = count
        self.keep(key, stamp, value)

    def keep(self, key: Hashable, stamp: Any, value: str) -> None:
        siblings = self.store.get(key, [])
        if self.clocks != "vector":
            if not siblings or stamp > siblings[0][0]:
                self.store[key] = [(stamp, value)]
            return
        kept = []
        for old, old_value in siblings:
            order = compare_versions(stamp, old)
            if order in ("before", "equal"):
                return  # nothing new
            if order == "concurrent":
                kept.append((old, old_value))
        self.store[key] = [*kept, (stamp, value)]


class _Writer(Node):
    """alice or bob: follows a script of puts (and bob's get-then-put), per key."""

    def __init__(self, home: str) -> None:
        self.home = home

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg[0] == "got":  # bob read alice's write: now he writes, with what he saw
            _, key, _values, context = msg
            ctx.send(self.home, ("put", key, "bob", context))


@dataclass(frozen=True)
class ConflictReport:
    """What happened to pairs of writes (alice's, then bob's) under one clock scheme.

    Attributes:
        clocks: ``"wall"`` (last write wins by wall clock), ``"lamport"`` or ``"vector"``.
        causal: pairs where bob read alice's value before writing his (he overwrites it).
        concurrent: pairs where bob wrote without having seen alice's value.
        lost_causal: causal pairs that ended with alice's value: bob's later write lost.
        lost_concurrent: concurrent pairs that ended with one value: a write silently lost.
        siblings: pairs that ended with both values kept, for the application to merge.
        final: per pair (key), the values left after anti-entropy.
    """

    clocks: str
    causal: int
    concurrent: int
    lost_causal: int
    lost_concurrent: int
    siblings: int
    final: dict[int, list[str]] = field(repr=False)


def conflicting_writes(
    trials: int = 1000,
    *,
    clocks: Clocks = "wall",
    skew: float = 0.1,
    max_gap: float = 0.5,
    concurrent: float = 0.0,
    seed: int = 0,
) -> ConflictReport:
    """Alice writes a key at replica A; a moment later bob writes it at replica B.

    In a *causal* pair bob first reads alice's value at A (he has seen it) and then
    writes his own: his write should win. In a *concurrent* pair he writes without
    having seen hers: neither should silently win. Replica B's clock is ``skew`` s
    behind A's. Bob acts ``g ~ U(0, max_gap)`` s after alice's write returned; links
    take 1 ms. At the end A and B exchange everything (anti-entropy) and merge.

    Args:
        trials: pairs of writes, one key each.
        clocks: how replicas stamp writes: ``"wall"`` (last write wins), ``"lamport"``
            (Lamport timestamps, last write wins) or ``"vector"`` (version vectors,
            concurrent writes kept as siblings).
        skew: how far B's clock is behind A's, in seconds (wall clocks only).
        max_gap: the longest time between alice's write returning and bob acting.
        concurrent: the fraction of pairs where bob has not seen alice's write.
        seed: seeds every random choice.

    Returns:
        Counts of lost writes and siblings.
    """
    _int_at_least("trials", trials, 1)
    if clocks not in ("wall", "lamport", "vector"):
        raise ValueError(f"clocks must be 'wall', 'lamport' or 'vector', got {clocks!r}")
    _seconds("skew", skew, zero=True)
    _seconds("max_gap", max_gap)
    share = _fraction("concurrent", concurrent)
    rng = _workload_rng(seed)
    net = Network(seed=seed, delay=LOCAL)
    replicas = {"A": _ConflictReplica(clocks, 0.0, "B"), "B": _ConflictReplica(clocks, skew, "A")}
    for name, node in replicas.items():
        net.add_node(name, node)
    net.add_node("alice", _Writer("A"))
    net.add_node("bob", _Writer("B"))
    spacing = max_gap + 0.1
    kinds = []
    for key in range(trials):
        start = key * spacing
        net.send("alice", "A", ("put", key, "alice", None), at=start)
        act = start + 2 * LOCAL + rng.uniform(0, max_gap)
        if rng.random() < share:
            kinds.append("concurrent")
            net.send("bob", "B", ("put", key, "bob", None), at=act)
        else:
            kinds.append("causal")
            net.send("bob", "A", ("get", key), at=act)
    end = trials * spacing + 1.0
    net.send("A", "A", ("sync",), at=end)
    net.send("B", "B", ("sync",), at=end)
    net.run(max_events=None)
    final: dict[int, list[str]] = {}
    for key in range(trials):
        values = sorted(value for _, value in replicas["A"].store.get(key, []))
        assert values == sorted(v for _, v in replicas["B"].store.get(key, [])), key
        final[key] = values
    causal = [k for k in range(trials) if kinds[k] == "causal"]
    pairs = [k for k in range(trials) if kinds[k] == "concurrent"]
    return ConflictReport(
        clocks=clocks,
        causal=len(causal),
        concurrent=len(pairs),
        lost_causal=sum(final[k] != ["bob"] for k in causal),
        lost_concurrent=sum(len(final[k]) == 1 for k in pairs),
        siblings=sum(len(final[k]) == 2 for k in range(trials)),
        final=final,
    )


def lost_write_theory(skew: float, *, max_gap: float = 0.5, local: float = LOCAL) -> float:
    """P(last-write-wins keeps alice's value over bob's causally later write).

    Alice's write is stamped on arrival at A, at ``local``; bob's read reaches A at
    ``3 local + g`` and his write reaches B at ``5 local + g``, stamped ``skew`` early.
    His write loses when ``5 local + g - skew < local``, i.e. ``g < skew - 4 local``.
    """
    return min(1.0, max(0.0, (skew - 4 * local) / max_gap))


# --------------------------------------------------------------------------------------
# 6. Session guarantees
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionReport:
    """Read-your-writes and monotonic reads for one routing of a user's requests.

    Attributes:
        protocol: the routing's name.
        trials: write, read, read sequences.
        read_your_writes: the fraction of first reads that missed the user's own write.
        monotonic: the fraction of second reads older than the first one.
        read_ms: mean read latency in milliseconds.
    """

    protocol: str
    trials: int
    read_your_writes: float
    monotonic: float
    read_ms: float


def session_guarantees(
    protocol: Protocol, *, trials: int = 500, gap: float = 0.010, seed: int = 0
) -> SessionReport:
    """A user writes, reads ``gap`` s after the write returned, then reads again.

    Each request goes through a load balancer (1 ms from every replica) that picks a
    replica per ``protocol.route``; replicas copy writes to each other in 5-50 ms.

    Returns:
        The violation rates of read-your-writes and monotonic reads, and read latency.
    """
    _int_at_least("trials", trials, 1)
    _seconds("gap", gap, zero=True)
    plan = []
    for i in range(trials):
        start = 0.5 * i
        plan += [
            (start, "write"),
            (start + 2 * LOCAL + gap, "read"),
            (start + 2 * LOCAL + gap, "read"),
        ]
    run = run_store(protocol, {"user": plan}, seed=seed)
    ops = run.records
    ryw = mono = 0
    for i in range(trials):
        write, first, second = ops[3 * i : 3 * i + 3]
        ryw += first.version < write.version
        mono += second.version < first.version
    reads = run.reads()
    return SessionReport(
        protocol=protocol.name,
        trials=trials,
        read_your_writes=ryw / trials,
        monotonic=mono / trials,
        read_ms=1000 * sum(op.latency for op in reads) / len(reads),
    )


def monotonic_violation_theory(gap: float, *, n: int = 3, local: float = LOCAL) -> dict[str, float]:
    """Violation rates of ``session_guarantees`` with a load balancer picking at random.

    The write lands on one of ``n`` replicas; a read misses it when it is sent to
    another replica (probability ``(n-1)/n``) which the copy has not reached yet
    (``stale_window_theory``). The second read starts ``2 local`` later; it goes
    backwards when the first read saw the write and the second did not:
    ``(n-1)/n^2 * q2 * (1 + (n-2) * (1 - q1))`` with ``q`` the stale-window probabilities.
    """
    q1 = stale_window_theory(gap, local=local)
    q2 = stale_window_theory(gap + 2 * local, local=local)
    return {
        "read_your_writes": (n - 1) / n * q1,
        "monotonic": (n - 1) / n**2 * q2 * (1 + (n - 2) * (1 - q1)),
    }


# --------------------------------------------------------------------------------------
# 7. CAP in one experiment
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CapReport:
    """A partition cuts r3 and bob off from r1, r2 and alice; what each client got.

    Attributes:
        protocol: the protocol's name.
        partition: (start, heal) in seconds.
        rows: per (client, phase) with phase ``before``, ``during``, ``after``:
            ``(operations, fraction that succeeded, fraction of successful reads that
            were stale)``.
        run: the run itself.
    """

    protocol: str
    partition: tuple[float, float]
    rows: dict[tuple[str, str], tuple[int, float, float]]
    run: StoreRun = field(repr=False)


def cap_experiment(
    protocol: Protocol,
    *,
    partition: tuple[float, float] = (3.0, 7.0),
    duration: float = 10.0,
    anti_entropy: float | None = 0.5,
    seed: int = 0,
) -> CapReport:
    """Alice (zone r1) writes and bob (zone r3) reads every 0.5 s; r3's zone is cut off.

    Returns:
        Per client and phase: operations, availability and stale reads.
    """
    start, heal = partition
    if not 0 < start < heal < duration:
        raise ValueError(
            f"partition must be (start, heal) with 0 < start < heal < duration={duration!r}, "
            f"got {partition!r}"
        )
    plans = {
        "alice": [(0.5 * i + 0.1, "write") for i in range(int(duration / 0.5))],
        "bob": [(0.5 * i + 0.35, "read") for i in range(int(duration / 0.5))],
    }
    run = run_store(
        protocol,
        plans,
        homes={"alice": "r1", "bob": "r3"},
        remote_delay=ZONES,
        anti_entropy=anti_entropy,
        partition=(["r1", "r2", "alice"], ["r3", "bob"], start, heal),
        seed=seed,
    )
    rows: dict[tuple[str, str], tuple[int, float, float]] = {}
    for client in ("alice", "bob"):
        for phase, low, high in (
            ("before", 0, start),
            ("during", start, heal),
            ("after", heal, math.inf),
        ):
            ops = [op for op in run.records if op.client == client and low <= op.start < high]
            reads = [op for op in ops if op.kind == "read" and op.ok]
            rows[(client, phase)] = (
                len(ops),
                sum(op.ok for op in ops) / len(ops) if ops else math.nan,
                sum(op.stale for op in reads) / len(reads) if reads else math.nan,
            )
    return CapReport(protocol.name, (start, heal), rows, run)


# --------------------------------------------------------------------------------------
# "Your turn" checkers
# --------------------------------------------------------------------------------------
@checker("newest()")
def check_newest(func: Callable[[list[tuple[Version, Any]]], tuple[Version, Any]]) -> str:
    """Check a student's ``newest(answers)``: cases first, then 300 quorum reads with it."""
    old, new = ((3, "alice"), "apple"), ((5, "alice"), "pear")
    newest_ant = ((7, "alice"), "ant")
    cases = [
        ([old, new], new),
        ([new, old], new),
        ([newest_ant, ((2, "alice"), "zebra"), ((4, "alice"), "cat")], newest_ant),
        ([old], old),
    ]
    for answers, expected in cases:
        given = list(answers)
        result = func(list(answers))
        expect(
            isinstance(result, tuple) and result in given,
            f"newest({given}) should return one of the answers, a (version, value) pair, "
            f"got {result!r}",
        )
        if result == expected:
            continue
        if result == given[0]:
            raise Wrong(
                f"newest({given}) returned the first answer {result!r}; answers arrive in any "
                f"order, so keep the one with the highest version: {expected!r}"
            )
        if result == given[-1]:
            raise Wrong(
                f"newest({given}) returned the last answer {result!r}; the last to arrive is "
                f"not the newest write: keep the highest version, {expected!r}"
            )
        raise Wrong(
            f"newest({given}) returned {result!r}; compare the versions (the first item), "
            f"not the values: the answer is {expected!r}"
        )
    run = quorum_stale_reads(2, 2, trials=300, resolve=func, seed=7)
    stale = sum(op.stale for op in run.reads())
    expect(
        stale == 0,
        f"with your newest(), {stale} of 300 quorum reads (w=2, r=2) were stale; "
        "with w + r > n a read must see the latest write",
    )
    return "0 stale reads out of 300 quorum reads with w=2, r=2"


@checker("your tricky history")
def check_tricky_history(build: Callable[[], History]) -> str:
    """Check a hand-made history: plausible reads, yet not linearizable."""
    h = build()
    expect(
        isinstance(h, History),
        f"tricky_history() should return the History it built, got {type(h).__name__}",
    )
    ops = h.operations
    expect(len(ops) >= 2, f"a history needs at least a write and a read; yours has {len(ops)}")
    expect(len(ops) <= 8, f"keep it small: at most 8 operations, yours has {len(ops)}")
    kinds = {op.kind for op in ops}
    expect(kinds <= {"read", "write"}, f"use reads and writes only, got {sorted(kinds)}")
    writes: dict[Any, list[Operation]] = {}
    for op in ops:
        if op.kind == "write":
            writes.setdefault(op.value, []).append(op)
    for op in ops:
        if op.kind != "read" or op.pending or op.output is None:
            continue
        expect(
            op.output in writes,
            f"{op} returns {op.output!r}, which no write wrote; every read must return "
            "None (the initial value) or a value some write wrote",
        )
        expect(
            any(w.call <= op.ret for w in writes[op.output]),
            f"{op} returns {op.output!r} before anyone started writing it: a value from the "
            "future is too easy; make every read return a value already being written",
        )
    result = check(h)
    expect(
        not result.linearizable,
        f"this history is linearizable: the order "
        f"{', '.join(o.describe() for o in result.order)} explains every read. Make a read "
        "return an older value after a newer value was read, or after its write returned",
    )
    assert result.stuck is not None
    return f"no order explains {result.stuck.describe()} by {result.stuck.client}"


@checker("compare()")
def check_compare_versions(func: Callable[[dict[str, int], dict[str, int]], str]) -> str:
    """Check a student's version-vector comparison on the cases that go wrong."""
    cases = [
        ({"A": 1}, {"A": 1}, "equal"),
        ({"A": 2}, {"A": 1}, "after"),
        ({"A": 1}, {"A": 2}, "before"),
        ({"A": 2, "B": 1}, {"A": 1, "B": 2}, "concurrent"),
        ({"A": 1}, {"B": 1}, "concurrent"),
        ({"A": 1}, {"A": 1, "B": 2}, "before"),
        ({"A": 1, "B": 2}, {"A": 1}, "after"),
        ({"A": 1, "B": 0}, {"A": 1}, "equal"),
        ({}, {"A": 1}, "before"),
        ({"A": 3, "B": 2, "C": 1}, {"A": 2, "B": 2, "C": 1}, "after"),
    ]
    allowed = ("before", "after", "equal", "concurrent")
    for a, b, expected in cases:
        try:
            result = func(dict(a), dict(b))
        except KeyError as exc:
            raise Wrong(
                f"compare({a}, {b}) raised KeyError {exc}: a replica missing from a vector "
                "has seen 0 writes there (use a.get(replica, 0))"
            ) from None
        expect(
            result in allowed,
            f"compare({a}, {b}) must return one of {', '.join(map(repr, allowed))}; got {result!r}",
        )
        if result == expected:
            continue
        if expected == "concurrent":
            missing = " once a missing entry counts as 0" if set(a) != set(b) else ""
            raise Wrong(
                f"compare({a}, {b}) returned {result!r}, but each vector has an entry larger "
                f"than the other's{missing}: neither write saw the other, so they are "
                "'concurrent'"
            )
        if set(a) != set(b):
            raise Wrong(
                f"compare({a}, {b}) returned {result!r}, expected {expected!r}: look at every "
                "replica in either vector, and count a missing entry as 0"
            )
        raise Wrong(f"compare({a}, {b}) returned {result!r}, expected {expected!r}")
    return f"{len(cases)} cases, missing entries and concurrent writes included"
