"""The experiments of lesson 10 (serverless), so that the tests can rerun them.

Section by section:

1. :func:`example_function`, :func:`reading`: the example CloudEvent function, served by
   functions-framework in this process.
2. :func:`latency_run`, :func:`plot_latencies`, :func:`plot_instances`: a bursty hour of
   requests with and without provisioned concurrency, cold starts, scale to zero.
3. :func:`bursty_day`, :func:`pay_per_use`, :func:`always_on`, :func:`breakeven_rate`,
   :func:`plot_day`, :func:`plot_breakeven`: what a day costs, per invocation or always on.
4. :func:`at_least_once_run`: a function that stores, then loses its ack or dies before it;
   a plain insert against an idempotent one.
5. :func:`poison_run`: a message no retry can fix, retried until dead or dead-lettered at once.

The "Your turn" checkers are :func:`check_instances_needed` and :func:`check_daily_cost`.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import random
import re
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distlab.lessons.checks import checker, expect
from distlab.services.serverless import example
from distlab.services.serverless.events import CloudEvent, encode, make_event
from distlab.services.serverless.faults import FaultyQueue
from distlab.services.serverless.framework import InProcessFunction
from distlab.services.serverless.queue import DurableQueue, SQLiteQueue
from distlab.services.serverless.redis_queue import RedisServer, RedisStreamsQueue
from distlab.services.serverless.runtime import FunctionRuntime, QueueTrigger
from distlab.sim.vtime import run

__all__ = [
    "COLD_START_MEDIAN",
    "DURATION",
    "MEMORY_GB",
    "PRICE_PER_GB_SECOND",
    "PRICE_PER_MILLION_REQUESTS",
    "SERVER_CAPACITY",
    "SERVER_PER_HOUR",
    "DeliveryRun",
    "LatencyRun",
    "PoisonRun",
    "Traffic",
    "always_on",
    "at_least_once_run",
    "breakeven_rate",
    "bursty_day",
    "bursty_hour",
    "check_daily_cost",
    "check_instances_needed",
    "example_function",
    "example_source",
    "latency_run",
    "max_overlap",
    "pay_per_use",
    "plot_breakeven",
    "plot_day",
    "plot_instances",
    "plot_latencies",
    "poison_run",
    "reading",
    "stored_readings",
]

# --- 1. the example function -----------------------------------------------------------


def example_function(database: str | Path) -> InProcessFunction:
    """The example function (sensor readings into SQLite), served in this process.

    Args:
        database: the SQLite file the function writes (``$DISTLAB_DB`` for it).
    """
    os.environ["DISTLAB_DB"] = str(database)
    return InProcessFunction(example.__file__, "store_reading")


def example_source() -> str:
    """The source of the example function's handler and its error handler (the file's end)."""
    text = Path(example.__file__).read_text(encoding="utf-8")
    text = text[text.index("@functions_framework.cloud_event") :].rstrip()
    return re.sub(r"  # type: ignore\[[a-z-]+\]", "", text)  # the type checker's notes


def stored_readings(database: str | Path) -> list[tuple[str, str, float]]:
    """The committed rows of the example function's database, by event id."""
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT event_id, sensor, celsius FROM readings ORDER BY 1").fetchall()
    db.close()
    return [(str(e), str(s), float(c)) for e, s, c in rows]


def reading(event_id: str, celsius: object = 21.5, sensor: str = "greenhouse-3") -> bytes:
    """A sensor-reading CloudEvent, encoded as a queue message or a request body."""
    data = {"sensor": sensor, "celsius": celsius}
    return encode(make_event(data, id=event_id, type=example.READING_TYPE, source="/sensors"))


# --- 2. cold starts, warm starts, provisioned concurrency ----------------------------------
COLD_START_MEDIAN = 0.4
"""Median cold start, seconds: AWS reports cold starts from under 100 ms to over 1 s."""
COLD_START_SIGMA = 0.5
DURATION = 0.08
"""Seconds one invocation of the lesson's function runs (the handler only)."""


def _cold_start(rng: random.Random) -> float:
    return rng.lognormvariate(math.log(COLD_START_MEDIAN), COLD_START_SIGMA)


def bursty_hour(
    rng: random.Random,
    *,
    base_rate: float = 0.2,
    burst_rate: float = 25.0,
    burst_length: float = 30.0,
    burst_every: float = 900.0,
    hour: float = 3600.0,
) -> list[float]:
    """Arrival times (s) of an hour of requests: a Poisson trickle plus regular bursts.

    The trickle has ``base_rate`` requests a second; every ``burst_every`` seconds, from
    t = 300 s, a burst adds ``burst_rate`` requests a second for ``burst_length`` seconds.
    """
    arrivals: list[float] = []
    t = rng.expovariate(base_rate)
    while t < hour:
        arrivals.append(t)
        t += rng.expovariate(base_rate)
    start = 300.0
    while start < hour:
        t = start + rng.expovariate(burst_rate)
        while t < start + burst_length:
            arrivals.append(t)
            t += rng.expovariate(burst_rate)
        start += burst_every
    return sorted(arrivals)


def max_overlap(arrivals: Sequence[float], duration: float) -> int:
    """The most requests in flight at once if each lasts ``duration`` seconds from arrival."""
    starts = sorted(arrivals)
    most = 0
    for i, t in enumerate(starts):
        # requests that started in (t - duration, t] are still running at t
        most = max(most, i + 1 - bisect.bisect_right(starts, t - duration))
    return most


@dataclass
class LatencyRun:
    """One bursty hour on the simulated platform.

    Attributes:
        provisioned: instances kept warm.
        arrivals: when each request arrived (s).
        latencies: seconds from arrival to answer, per request, in arrival order.
        cold: whether each request waited for a cold start.
        timeline: ``(t, instances alive)`` at every change.
        instance_seconds: seconds of instance lifetime over the hour.
        billed_seconds: seconds the function ran (what a per-invocation bill counts).
    """

    provisioned: int
    arrivals: list[float]
    latencies: list[float]
    cold: list[bool]
    timeline: list[tuple[float, int]]
    instance_seconds: float
    billed_seconds: float

    @property
    def requests(self) -> int:
        """How many requests arrived."""
        return len(self.latencies)

    @property
    def cold_starts(self) -> int:
        """How many requests waited for a new instance."""
        return sum(self.cold)

    @property
    def cold_share(self) -> float:
        """The share of requests that were cold."""
        return self.cold_starts / self.requests if self.requests else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency (nearest rank), seconds."""
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def peak_instances(self) -> int:
        """The most instances alive at once."""
        return max(n for _, n in self.timeline)


def latency_run(*, provisioned: int = 0, seed: int = 1, idle_timeout: float = 600.0) -> LatencyRun:
    """Send a bursty hour of requests (:func:`bursty_hour`) to a function and time them.

    Cold starts are lognormal (median 0.4 s); each invocation runs 0.08 s; idle
    instances are shut down after ``idle_timeout`` seconds; ``provisioned`` instances
    are warm from the start.
    """

    async def main() -> LatencyRun:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        arrivals = bursty_hour(random.Random(seed + 1000))
        runtime = FunctionRuntime(
            cold_start=_cold_start,
            duration=DURATION,
            provisioned=provisioned,
            idle_timeout=idle_timeout,
            rng=rng,
        )
        futures: list[asyncio.Future[Any]] = []

        def arrive(future: asyncio.Future[Any]) -> None:
            task = asyncio.ensure_future(runtime.invoke())
            task.add_done_callback(lambda done: future.set_result(done.result()))

        for t in arrivals:  # one timer per request, no task until it arrives
            futures.append(loop.create_future())
            loop.call_at(t, arrive, futures[-1])
        calls = await asyncio.gather(*futures)
        end = max(3600.0, runtime.now)
        return LatencyRun(
            provisioned,
            arrivals,
            [c.latency for c in calls],
            [c.cold for c in calls],
            list(runtime.timeline),
            runtime.instance_seconds(end),
            runtime.billed_seconds,
        )

    return run(main, seed=seed)


def plot_latencies(runs: Sequence[LatencyRun], ax: Any = None) -> Any:
    """Survival curves of the runs' latencies: the share of requests slower than x (log-log)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for one in runs:
        ordered = sorted(ms * 1000 for ms in one.latencies)
        n = len(ordered)
        survival = [(n - i) / n for i in range(n)]
        label = f"provisioned = {one.provisioned}: {one.cold_starts} cold of {n}"
        ax.step(ordered, survival, where="post", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests slower (log scale)")
    ax.set_title("A bursty hour: latency with and without provisioned concurrency")
    ax.legend()
    return ax


def plot_instances(runs: Sequence[LatencyRun], ax: Any = None) -> Any:
    """Instances alive over the hour, one step line per run."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    for one in runs:
        times = [t / 60 for t, _ in one.timeline] + [60.0]
        counts = [n for _, n in one.timeline] + [one.timeline[-1][1]]
        ax.step(times, counts, where="post", label=f"provisioned = {one.provisioned}")
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel("instances alive")
    ax.set_xlim(0, 60)
    ax.set_title("Scale out on each burst, back to zero (or to the provisioned floor)")
    ax.legend()
    return ax


# --- 3. what a day costs ---------------------------------------------------------------
PRICE_PER_MILLION_REQUESTS = 0.20
"""AWS Lambda, USD per million requests (aws.amazon.com/lambda/pricing)."""
PRICE_PER_GB_SECOND = 0.0000166667
"""AWS Lambda on x86 in us-east-1, USD per GB-second of duration (the same page)."""
MEMORY_GB = 0.5
"""Memory given to the lesson's function, GB (duration is billed per GB-second)."""
SERVER_PER_HOUR = 0.0208
"""An always-on server: an EC2 t3.small (2 vCPU, 2 GiB), on demand, us-east-1, USD/hour."""
SERVER_CAPACITY = 30.0
"""Requests a second one such server handles at 0.08 s of CPU each, kept under 60 % busy."""


@dataclass(frozen=True)
class Traffic:
    """Requests a second, minute by minute, over one day (1440 values)."""

    rates: tuple[float, ...]

    @property
    def requests(self) -> float:
        """Requests in the day."""
        return sum(r * 60 for r in self.rates)

    @property
    def peak(self) -> float:
        """The highest rate of the day, requests a second."""
        return max(self.rates)


def bursty_day(
    *,
    night: float = 0.05,
    day: float = 2.0,
    sale: float = 150.0,
    sale_start: int = 12 * 60,
    sale_minutes: int = 20,
) -> Traffic:
    """A shop's day: quiet nights (0-7 h, 23-24 h), a steady day, one 20-minute flash sale."""
    rates = []
    for minute in range(24 * 60):
        rate = day if 7 * 60 <= minute < 23 * 60 else night
        if sale_start <= minute < sale_start + sale_minutes:
            rate = sale
        rates.append(rate)
    return Traffic(tuple(rates))


def pay_per_use(
    requests: float, *, seconds_each: float = DURATION, memory_gb: float = MEMORY_GB
) -> float:
    """USD for ``requests`` invocations: the request charge plus GB-seconds of duration."""
    return (
        requests * PRICE_PER_MILLION_REQUESTS / 1e6
        + requests * seconds_each * memory_gb * PRICE_PER_GB_SECOND
    )


def always_on(traffic: Traffic, *, capacity: float = SERVER_CAPACITY) -> tuple[int, float]:
    """``(servers, USD)`` for servers sized for the day's peak, running all 24 hours."""
    servers = max(1, math.ceil(traffic.peak / capacity))
    return servers, servers * 24 * SERVER_PER_HOUR


def breakeven_rate(*, seconds_each: float = DURATION, memory_gb: float = MEMORY_GB) -> float:
    """The steady rate (requests/s) at which a day of invocations costs one server-day."""
    per_request = pay_per_use(1, seconds_each=seconds_each, memory_gb=memory_gb)
    return 24 * SERVER_PER_HOUR / (per_request * 86400)


def plot_day(traffic: Traffic) -> Any:
    """Two panels: the day's traffic (log scale) and the cumulative cost of both options."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True, layout="constrained")
    hours = [m / 60 for m in range(len(traffic.rates))]
    top.step(hours, traffic.rates, where="post", color="tab:gray")
    top.set_yscale("log")
    top.set_ylabel("requests / s (log)")
    top.set_title("A bursty day: quiet night, steady day, a 20-minute flash sale at noon")
    servers, _ = always_on(traffic)
    spent, serverless = 0.0, []
    for rate in traffic.rates:
        spent += pay_per_use(rate * 60)
        serverless.append(spent)
    server = [servers * SERVER_PER_HOUR * (m + 1) / 60 for m in range(len(traffic.rates))]
    bottom.plot(hours, serverless, label="pay per invocation (Lambda prices)")
    bottom.plot(hours, server, label=f"{servers} always-on servers sized for the peak")
    bottom.set_xlabel("hour of the day")
    bottom.set_ylabel("cost so far (USD)")
    bottom.set_xlim(0, 24)
    bottom.legend()
    return fig


def plot_breakeven(max_rate: float = 60.0, ax: Any = None) -> Any:
    """Cost of a day at a steady rate: invocations (a line) against servers (a staircase)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    rates = [max_rate * i / 600 for i in range(601)]
    ax.plot(rates, [pay_per_use(r * 86400) for r in rates], label="pay per invocation")
    steady = [always_on(Traffic((r,) * 1440))[1] for r in rates]
    ax.step(rates, steady, where="post", label=f"servers of {SERVER_CAPACITY:g} req/s, always on")
    even = breakeven_rate()
    ax.axvline(even, color="black", linestyle=":", label=f"break-even: {even:.1f} req/s")
    ax.set_xlabel("steady traffic (requests / s)")
    ax.set_ylabel("cost of one day (USD)")
    ax.set_title("Serverless wins on idle time and loses on steady load")
    ax.legend()
    return ax


# --- 4. at-least-once delivery ---------------------------------------------------------
def _database(path: Path) -> sqlite3.Connection:
    """A SQLite file in WAL mode: a commit survives a crash of the process, without an fsync."""
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


@dataclass
class DeliveryRun:
    """Messages through a queue that loses acks and kills the consumer once.

    Attributes:
        messages: readings sent, each a distinct event.
        rows: rows in the table at the end.
        distinct: distinct event ids among the rows.
        calls: times the function ran.
        acked: acks that reached the queue.
        lost_acks: acks lost on the way.
        crashes: consumers killed while acknowledging.
        left: messages neither acknowledged nor dead at the end.
    """

    messages: int
    rows: int
    distinct: int
    calls: int
    acked: int
    lost_acks: int
    crashes: int
    left: int


def _store(db: sqlite3.Connection, *, idempotent: bool) -> Callable[[CloudEvent], None]:
    if idempotent:
        db.execute("CREATE TABLE readings (event_id TEXT PRIMARY KEY, sensor TEXT, celsius REAL)")
        sql = "INSERT INTO readings VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING"
    else:
        db.execute("CREATE TABLE readings (event_id TEXT, sensor TEXT, celsius REAL)")
        sql = "INSERT INTO readings VALUES (?, ?, ?)"

    def store(event: CloudEvent) -> None:
        sensor, celsius = example.validate_reading(event)
        with db:
            db.execute(sql, (event["id"], sensor, celsius))

    return store


def at_least_once_run(
    *,
    idempotent: bool,
    messages: int = 100,
    lost_acks: float = 0.2,
    crash_at_ack: int = 37,
    seed: int = 7,
) -> DeliveryRun:
    """Send ``messages`` readings through a faulty queue to a function that stores them.

    The queue (SQLite, visibility timeout 30 s) loses ``lost_acks`` of the acks, and the
    consumer dies while sending ack number ``crash_at_ack``. With ``idempotent`` the
    table's key is the event id and a repeated event changes nothing; without it every
    delivery inserts a row.
    """
    with tempfile.TemporaryDirectory(prefix="distlab-lesson10-") as folder:
        db = _database(Path(folder) / "readings.db")
        store = _store(db, idempotent=idempotent)
        calls = [0]

        def function(event: CloudEvent) -> None:
            calls[0] += 1
            store(event)

        async def main() -> tuple[Any, FaultyQueue]:
            from distlab.sim.vtime import clock, rng

            queue = SQLiteQueue(Path(folder) / "queue.db", clock=clock(), visibility_timeout=30)
            faulty = FaultyQueue(
                queue, lost_acks=lost_acks, crash_at_acks={crash_at_ack}, rng=rng()
            )
            for n in range(messages):
                faulty.send(reading(f"reading-{n:04d}", celsius=15 + n % 10))
            runtime = FunctionRuntime(function, cold_start=_cold_start, duration=0.01)
            report = await QueueTrigger(faulty, runtime, batch_size=10).run()
            return report, faulty

        report, faulty = run(main, seed=seed)
        rows, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM readings"
        ).fetchone()
        left = faulty.inner.counts().live
        faulty.close()
        db.close()
    return DeliveryRun(
        messages, rows, distinct, calls[0], report.acked, faulty.lost, faulty.crashed, left
    )


# --- 5. poison messages ----------------------------------------------------------------
@dataclass
class PoisonRun:
    """One poison message on a queue (visibility timeout 30 s, dead after 5 deliveries).

    Attributes:
        backend: ``"sqlite"`` or ``"redis"``.
        calls: times the function ran on it.
        dead_at: virtual time (s) the trigger found nothing left to do.
        reason: the reason in the dead-letter queue.
        good_rows: rows stored for the good messages sent with it.
    """

    backend: str
    calls: int
    dead_at: float
    reason: str
    good_rows: int = 0
    calls_at: list[float] = field(default_factory=list)


def _naive_store(db: sqlite3.Connection) -> Callable[[CloudEvent], None]:
    """The function as first written: trusts the data (float() of a string raises)."""

    def store(event: CloudEvent) -> None:
        data = event.data
        with db:
            db.execute(
                "INSERT INTO readings VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event["id"], data["sensor"], float(data["celsius"])),
            )

    return store


def poison_run(*, validate: bool, backend: str = "sqlite", seed: int = 3) -> PoisonRun:
    """Send 4 good readings and one with ``"celsius": "hot"``; process until nothing is left.

    Without ``validate`` the function trusts the data: ``float("hot")`` raises
    ``ValueError``, a failure like any other, so the message is retried. With
    ``validate`` it checks the reading first and raises
    :class:`~distlab.errors.InvalidEvent`, which dead-letters the message at once.

    Raises:
        ValueError: for an unknown ``backend``.
    """
    if backend not in ("sqlite", "redis"):
        raise ValueError(f"backend must be 'sqlite' or 'redis', got {backend!r}")
    with tempfile.TemporaryDirectory(prefix="distlab-lesson10-") as folder:
        db = _database(Path(folder) / "readings.db")
        db.execute("CREATE TABLE readings (event_id TEXT PRIMARY KEY, sensor TEXT, celsius REAL)")
        strict = _store_validated(db) if validate else _naive_store(db)
        calls_at: list[float] = []
        server = RedisServer() if backend == "redis" else None
        try:

            def function(event: CloudEvent) -> None:
                if event["id"] == "reading-hot":
                    calls_at.append(asyncio.get_running_loop().time())
                strict(event)

            async def main() -> tuple[float, DurableQueue]:
                from distlab.sim.vtime import clock

                queue: DurableQueue
                if server is not None:
                    queue = RedisStreamsQueue(server.client(), "readings", clock=clock())
                else:
                    queue = SQLiteQueue(Path(folder) / "queue.db", clock=clock())
                for n in range(4):
                    queue.send(reading(f"reading-{n}"))
                queue.send(reading("reading-hot", celsius="hot"))
                runtime = FunctionRuntime(function, cold_start=0.5, duration=0.01)
                report = await QueueTrigger(queue, runtime, batch_size=10).run()
                return report.finished_at, queue

            finished, queue = run(main, seed=seed)
            (letter,) = queue.dead_letters()
            (good,) = db.execute("SELECT COUNT(*) FROM readings").fetchone()
        finally:
            if server is not None:
                server.stop()
            db.close()
    return PoisonRun(backend, len(calls_at), finished, letter.reason, good, calls_at)


def _store_validated(db: sqlite3.Connection) -> Callable[[CloudEvent], None]:
    def store(event: CloudEvent) -> None:
        sensor, celsius = example.validate_reading(event)  # raises InvalidEvent
        with db:
            db.execute(
                "INSERT INTO readings VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event["id"], sensor, celsius),
            )

    return store


# --- Your turn checkers ----------------------------------------------------------------
_INSTANCE_CASES = [
    (25.0, 0.08, 2),
    (100.0, 0.25, 25),
    (10.0, 0.15, 2),
    (0.0, 1.0, 0),
    (3.0, 2.0, 6),
]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@checker("instances_needed")
def check_instances_needed(func: Callable[[float, float], int]) -> str:
    """Check ``instances_needed(rate, duration)``: Little's law, rounded up to whole instances."""
    for rate, duration, expected in _INSTANCE_CASES:
        raw: object = func(rate, duration)
        call = f"instances_needed({rate:g}, {duration:g})"
        got = _number(raw)
        expect(got is not None, f"{call} should return a number of instances, got {raw!r}")
        assert got is not None
        expect(
            not (duration and math.isclose(got, rate / duration) and got != expected),
            f"{call} returned {got:g} = rate / duration: Little's law multiplies, "
            "requests in flight = rate x seconds each one takes",
        )
        expect(
            got.is_integer(),
            f"{call} returned {got:g}: instances come whole, round up (math.ceil)",
        )
        expect(
            not (got == math.floor(rate * duration) and got != expected),
            f"{call} returned {got:g}: {rate * duration:g} requests in flight on average "
            f"need {expected} instances, round up, not down",
        )
        expect(got == expected, f"{call} should be {expected}, got {raw!r}")
    return "25 requests/s of 0.08 s each keep 2 instances busy"


@checker("daily_cost")
def check_daily_cost(func: Callable[[float, float, float], float]) -> str:
    """Check ``daily_cost(requests, seconds_each, memory_gb)`` against Lambda's two charges."""
    cases = [(1_000_000, 0.1, 1.0), (296_400, 0.08, 0.5), (0, 0.2, 1.0), (5_000, 1.5, 2.0)]
    for requests, seconds, memory in cases:
        raw: object = func(requests, seconds, memory)
        call = f"daily_cost({requests}, {seconds}, {memory})"
        got = _number(raw)
        expect(got is not None, f"{call} should return dollars (a number), got {raw!r}")
        assert got is not None
        expected = pay_per_use(requests, seconds_each=seconds, memory_gb=memory)
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12):
            continue
        request_part = requests * PRICE_PER_MILLION_REQUESTS / 1e6
        compute_part = expected - request_part
        hints = [
            (compute_part, "you left out the request charge, $0.20 per million requests"),
            (request_part, "you left out the duration charge: seconds x GB x $0.0000166667"),
            (request_part + compute_part * 1000, "seconds_each is in seconds, not milliseconds"),
            (
                request_part + requests * seconds * PRICE_PER_GB_SECOND,
                "GB-seconds are seconds x memory in GB",
            ),
            (
                request_part * 1e6 + compute_part,
                "the request charge is $0.20 per *million* requests",
            ),
        ]
        for value, hint in hints:
            expect(not math.isclose(got, value, rel_tol=1e-6), f"{call} = {got:.6f}: {hint}")
        expect(False, f"{call} should be {expected:.6f} USD, got {got!r}")
    cost = pay_per_use(1e6, seconds_each=0.1, memory_gb=1)
    return f"a million 0.1 s calls at 1 GB cost ${cost:.2f}"
