"""Lesson 07, the bulkhead: the scenarios the lesson runs, so that tests can rerun them.

    shop                 one service, two dependencies, a shared pool or a bulkhead each
    ChapterBulkhead      the chapter's JavaScript bulkhead, translated line by line
    burst                a burst of calls against a bulkhead without and with a queue
    fairness             waiting by polling (the obvious port) against FIFO hand-over
    cancellation_leak    a port without ``finally`` loses a slot to every cancellation
    hung_threads         a thread-pool bulkhead: a timeout frees the caller, not the thread
    concurrency_in_flight, erlang_b, rejection_by_slots
                         Little's law and the Erlang loss formula against the simulation
    check_fallback, check_slots_needed
                         the checkers of the lesson's "Your turn" cells

Everything asynchronous runs on virtual time (``distlab.run``) and is seeded where
random; only ``hung_threads`` uses real threads (and waits a few milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from distlab.errors import BulkheadFullError, BulkheadTimeoutError
from distlab.lessons.checks import checker, expect
from distlab.patterns.bulkhead import Bulkhead, BulkheadMetrics, ThreadPoolBulkhead
from distlab.sim.vtime import now, rng, run

__all__ = [
    "BurstResult",
    "ChapterBulkhead",
    "FairnessResult",
    "HungThreadsResult",
    "LeakResult",
    "LittleResult",
    "NaiveBulkhead",
    "PollingBulkhead",
    "ShopRequest",
    "ShopRun",
    "burst",
    "cancellation_leak",
    "check_fallback",
    "check_slots_needed",
    "concurrency_in_flight",
    "erlang_b",
    "erlang_c",
    "fairness",
    "fifo_wait_beyond",
    "hung_threads",
    "plot_rejections",
    "plot_shop",
    "plot_waits",
    "rejection_by_slots",
    "shop",
]

Endpoint = Literal["stock", "reviews"]
Outcome = Literal["ok", "pool_timeout", "rejected"]
Isolation = Literal["shared", "bulkheads", "chapter"]


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _count(name: str, value: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


# 0. The chapter's bulkhead, and two ports students write -------------------------------
class ChapterBulkhead:
    """The chapter's JavaScript ``Bulkhead`` class, translated line by line into asyncio.

    JavaScript's ``throw new Error("Bulkhead limit reached")`` becomes
    ``raise Exception("Bulkhead limit reached")``; ``try``/``finally`` stays.
    """

    def __init__(self, max_concurrent_requests: int) -> None:
        self.max_concurrent_requests = max_concurrent_requests
        self.current_requests = 0

    async def execute(self, task: Callable[[], Awaitable[Any]]) -> Any:
        if self.current_requests >= self.max_concurrent_requests:
            raise Exception("Bulkhead limit reached")
        self.current_requests += 1
        try:
            return await task()
        finally:
            self.current_requests -= 1


class NaiveBulkhead(ChapterBulkhead):
    """A port of the chapter's bulkhead that dropped ``finally`` (seen in many ports)."""

    async def execute(self, task: Callable[[], Awaitable[Any]]) -> Any:
        if self.current_requests >= self.max_concurrent_requests:
            raise Exception("Bulkhead limit reached")
        self.current_requests += 1
        result = await task()
        self.current_requests -= 1
        return result


class PollingBulkhead(ChapterBulkhead):
    """The chapter's bulkhead plus the obvious way to wait: look again every ``poll`` seconds.

    Args:
        max_concurrent_requests: the limit.
        max_wait: seconds a caller keeps looking before it gives up.
        poll: seconds between two looks.

    Attributes:
        wakeups: how many times a waiting caller woke up to look.
    """

    def __init__(
        self, max_concurrent_requests: int, *, max_wait: float, poll: float = 0.01
    ) -> None:
        super().__init__(max_concurrent_requests)
        self.max_wait = max_wait
        self.poll = poll
        self.wakeups = 0

    async def execute(self, task: Callable[[], Awaitable[Any]]) -> Any:
        deadline = now() + self.max_wait
        while self.current_requests >= self.max_concurrent_requests:
            if now() >= deadline:
                raise Exception("Bulkhead limit reached")
            await asyncio.sleep(self.poll)
            self.wakeups += 1
        return await super().execute(task)


class _Executes(Protocol):
    async def execute(self, task: Callable[[], Awaitable[Any]]) -> Any: ...


def _is_refusal(exc: BaseException) -> bool:
    """A bulkhead's refusal: the course's BulkheadFullError or the chapter's message."""
    return isinstance(exc, BulkheadFullError) or (
        type(exc) is Exception and str(exc) == "Bulkhead limit reached"
    )


# 1. The shop: a shared pool against a bulkhead per dependency ----------------------------
@dataclass(frozen=True)
class ShopRequest:
    """One request to the shop's frontend.

    Attributes:
        endpoint: ``"stock"`` (calls the inventory service) or ``"reviews"`` (calls the
            reviews service).
        arrived: virtual time of arrival, seconds.
        finished: virtual time of the answer, seconds.
        outcome: ``"ok"``; ``"pool_timeout"`` (no worker came free within the pool wait:
            a 503 after waiting); ``"rejected"`` (the dependency's bulkhead was full: a
            fallback answer at once, e.g. the page without reviews).
    """

    endpoint: Endpoint
    arrived: float
    finished: float
    outcome: Outcome

    @property
    def latency(self) -> float:
        """Seconds from arrival to answer."""
        return self.finished - self.arrived


@dataclass(frozen=True)
class ShopRun:
    """Every request of one ``shop`` run.

    Attributes:
        requests: every request, in arrival order.
        isolation: ``"shared"``, ``"bulkheads"`` or ``"chapter"``.
        slowdown: ``(start, end)``: reviews calls started then are slow.
        duration: seconds of arrivals.
        metrics: the bulkheads' metrics at the end (``"bulkheads"`` only).
    """

    requests: tuple[ShopRequest, ...]
    isolation: Isolation
    slowdown: tuple[float, float]
    duration: float
    metrics: dict[str, BulkheadMetrics] = field(default_factory=dict)

    def select(
        self, endpoint: Endpoint, start: float = 0.0, end: float = math.inf
    ) -> list[ShopRequest]:
        """The requests to ``endpoint`` that arrived in ``[start, end)``."""
        return [r for r in self.requests if r.endpoint == endpoint and start <= r.arrived < end]

    def share(
        self,
        endpoint: Endpoint,
        outcome: Outcome = "ok",
        start: float = 0.0,
        end: float = math.inf,
    ) -> float:
        """The share of requests arriving in ``[start, end)`` whose outcome is ``outcome``."""
        chosen = self.select(endpoint, start, end)
        if not chosen:
            raise ValueError(f"no {endpoint} request arrived in [{start}, {end})")
        return sum(r.outcome == outcome for r in chosen) / len(chosen)

    def median_latency(
        self, endpoint: Endpoint, start: float = 0.0, end: float = math.inf
    ) -> float:
        """The median time to an answer of any kind (seconds) for requests in the window."""
        chosen = self.select(endpoint, start, end)
        if not chosen:
            raise ValueError(f"no {endpoint} request arrived in [{start}, {end})")
        return statistics.median(r.latency for r in chosen)

    def during(self, endpoint: Endpoint, outcome: Outcome = "ok") -> float:
        """The share with ``outcome`` among requests arriving during the slowdown."""
        return self.share(endpoint, outcome, *self.slowdown)

    def by_second(self, endpoint: Endpoint) -> tuple[list[int], list[float], list[float]]:
        """Per second of arrival: (second, % answered ok, median latency in ms)."""
        groups: dict[int, list[ShopRequest]] = {}
        for r in self.select(endpoint):
            groups.setdefault(int(r.arrived), []).append(r)
        seconds = sorted(groups)
        ok = [100 * sum(r.outcome == "ok" for r in groups[s]) / len(groups[s]) for s in seconds]
        waits = [1000 * statistics.median(r.latency for r in groups[s]) for s in seconds]
        return seconds, ok, waits


def shop(
    *,
    isolation: Isolation = "shared",
    workers: int = 10,
    inventory_slots: int = 6,
    reviews_slots: int = 4,
    duration: float = 100.0,
    slowdown: tuple[float, float] = (20.0, 80.0),
    stock_every: float = 0.05,
    reviews_every: float = 0.2,
    stock_time: float = 0.02,
    reviews_time: float = 0.05,
    slow_reviews_time: float = 3.0,
    pool_wait: float = 1.0,
) -> ShopRun:
    """Run a product-page frontend whose reviews dependency turns slow for a minute.

    Users ask ``GET /stock`` every ``stock_every`` s (the frontend calls the inventory
    service, which answers in ``stock_time`` s) and ``GET /reviews`` every
    ``reviews_every`` s (it calls the reviews service: ``reviews_time`` s, or
    ``slow_reviews_time`` s for calls started during ``slowdown``).

    - ``"shared"``: every call needs one of ``workers`` workers (threads, connections);
      a request that gets none within ``pool_wait`` s is answered 503.
    - ``"bulkheads"``: the same ``workers`` are split, ``inventory_slots`` for the
      inventory and ``reviews_slots`` for the reviews (``distlab.patterns.bulkhead.Bulkhead``,
      no queue); a call that finds its bulkhead full gets a fallback answer at once.
    - ``"chapter"``: the same split with the chapter's ``ChapterBulkhead``.

    Returns:
        A ``ShopRun`` with every request.

    Raises:
        ValueError: for a setting out of range (the message names it).
    """
    if isolation not in ("shared", "bulkheads", "chapter"):
        raise ValueError(f"isolation must be 'shared', 'bulkheads' or 'chapter', got {isolation!r}")
    for name, count in [("workers", workers), ("inventory_slots", inventory_slots)]:
        _count(name, count)
    _count("reviews_slots", reviews_slots)
    for name, value in [
        ("duration", duration),
        ("stock_every", stock_every),
        ("reviews_every", reviews_every),
        ("stock_time", stock_time),
        ("reviews_time", reviews_time),
        ("slow_reviews_time", slow_reviews_time),
        ("pool_wait", pool_wait),
    ]:
        _positive(name, value)
    start, end = slowdown
    if not 0 <= start < end:
        raise ValueError(f"slowdown must be (start, end) with 0 <= start < end, got {slowdown!r}")

    async def main() -> ShopRun:
        records: list[ShopRequest] = []
        pool = asyncio.Semaphore(workers)
        guards: dict[Endpoint, _Executes] = {}
        if isolation == "bulkheads":
            guards = {
                "stock": Bulkhead(inventory_slots, name="inventory"),
                "reviews": Bulkhead(reviews_slots, name="reviews"),
            }
        elif isolation == "chapter":
            guards = {
                "stock": ChapterBulkhead(inventory_slots),
                "reviews": ChapterBulkhead(reviews_slots),
            }

        async def call(endpoint: Endpoint) -> None:
            if endpoint == "stock":
                await asyncio.sleep(stock_time)
            else:
                slow = start <= now() < end
                await asyncio.sleep(slow_reviews_time if slow else reviews_time)

        async def handle(endpoint: Endpoint) -> None:
            arrived = now()
            outcome: Outcome = "ok"
            if isolation == "shared":
                try:
                    await asyncio.wait_for(pool.acquire(), pool_wait)
                except TimeoutError:
                    outcome = "pool_timeout"
                else:
                    try:
                        await call(endpoint)
                    finally:
                        pool.release()
            else:
                try:
                    await guards[endpoint].execute(lambda: call(endpoint))
                except Exception as exc:
                    if not _is_refusal(exc):
                        raise
                    outcome = "rejected"
            records.append(ShopRequest(endpoint, arrived, now(), outcome))

        async def users(endpoint: Endpoint, every: float) -> list[asyncio.Task[None]]:
            tasks = []
            number = 0
            while (t := number * every) < duration:
                await asyncio.sleep(t - now())
                tasks.append(asyncio.create_task(handle(endpoint)))
                number += 1
            return tasks

        batches = await asyncio.gather(users("stock", stock_every), users("reviews", reviews_every))
        await asyncio.gather(*(task for batch in batches for task in batch))
        metrics = {
            name: guard.metrics()
            for name, guard in (
                ("inventory", guards.get("stock")),
                ("reviews", guards.get("reviews")),
            )
            if isinstance(guard, Bulkhead)
        }
        ordered = sorted(records, key=lambda r: (r.arrived, r.endpoint))
        return ShopRun(tuple(ordered), isolation, (start, end), duration, metrics)

    result: ShopRun = run(main)
    return result


def plot_shop(shared: ShopRun, isolated: ShopRun, *, axes: Any = None) -> Any:
    """Draw both endpoints' answered share and median latency over time, side by side.

    Two columns (the shared pool, the bulkheads) and two rows (% answered ok by second
    of arrival; median time to any answer, log scale). The slowdown is shaded.

    Returns:
        The 2 x 2 array of matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(
            2, 2, figsize=(11, 5.5), sharex=True, sharey="row", layout="constrained"
        )
    styles: dict[Endpoint, tuple[str, str]] = {
        "stock": ("tab:blue", "/stock (calls the healthy inventory)"),
        "reviews": ("tab:orange", "/reviews (calls the slow reviews service)"),
    }
    for column, (result, name) in enumerate(
        [(shared, "one shared pool"), (isolated, "a bulkhead per dependency")]
    ):
        share_ax, wait_ax = axes[0][column], axes[1][column]
        for endpoint, (colour, label) in styles.items():
            seconds, ok, waits = result.by_second(endpoint)
            share_ax.plot(seconds, ok, color=colour, label=label)
            wait_ax.plot(seconds, waits, color=colour, label=label)
        for ax in (share_ax, wait_ax):
            ax.axvspan(*result.slowdown, color="0.88", zorder=0)
        share_ax.set_title(f"{name}: reviews slow in the shaded minute")
        wait_ax.set_xlabel("virtual time of arrival (s)")
    axes[0][0].set_ylabel("requests answered (%)")
    axes[0][0].set_ylim(-5, 105)
    axes[1][0].set_ylabel("median time to an answer (ms)")
    axes[1][0].set_yscale("log")
    axes[0][0].legend(loc="lower left", fontsize="small")
    return axes


# 2. What the chapter's bulkhead lacks ------------------------------------------------------
@dataclass(frozen=True)
class BurstResult:
    """Calls that arrive together.

    Attributes:
        calls: calls in the burst.
        served: calls that ran.
        refused: calls refused.
        longest_wait: the longest a served call waited for its slot, seconds.
    """

    calls: int
    served: int
    refused: int
    longest_wait: float


def burst(bulkhead: _Executes, *, calls: int = 10, service_time: float = 0.05) -> BurstResult:
    """Send ``calls`` calls at the same instant through ``bulkhead``; each runs ``service_time`` s.

    Raises:
        ValueError: for ``calls < 1`` or ``service_time <= 0``.
    """
    _count("calls", calls)
    _positive("service_time", service_time)

    async def main() -> BurstResult:
        waits: list[float] = []
        refused = 0

        async def one() -> None:
            nonlocal refused
            asked = now()

            async def work() -> None:
                waits.append(now() - asked)
                await asyncio.sleep(service_time)

            try:
                await bulkhead.execute(work)
            except Exception as exc:
                if not _is_refusal(exc):
                    raise
                refused += 1

        await asyncio.gather(*(one() for _ in range(calls)))
        return BurstResult(calls, len(waits), refused, max(waits, default=0.0))

    result: BurstResult = run(main)
    return result


@dataclass(frozen=True)
class FairnessResult:
    """Callers queueing for a busy bulkhead.

    Attributes:
        kind: ``"polling"`` or ``"fifo"``.
        waits: how long each served caller waited for its slot, in arrival order (s).
        refused: callers that gave up after ``max_wait``.
        overtaken: served callers that got their slot after a caller who arrived later.
        wakeups: times a waiting caller woke up just to look (0 for FIFO hand-over).
    """

    kind: str
    waits: tuple[float, ...]
    refused: int
    overtaken: int
    wakeups: int

    def percentile(self, q: float) -> float:
        """The ``q``-quantile (0..1) of the waits, seconds."""
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fairness(
    kind: Literal["polling", "fifo"],
    *,
    slots: int = 4,
    rate: float = 36.0,
    mean_service: float = 0.1,
    duration: float = 60.0,
    max_wait: float = 5.0,
    poll: float = 0.02,
    seed: int = 7,
) -> FairnessResult:
    """Poisson callers (``rate`` per s) against ``slots`` slots, 90 % busy by default.

    ``"polling"`` uses ``PollingBulkhead`` (look again every ``poll`` s);
    ``"fifo"`` uses the course's ``Bulkhead`` with a queue, which hands a freed slot to
    the caller that has waited longest. Service times are exponential (seeded).
    """
    if kind not in ("polling", "fifo"):
        raise ValueError(f"kind must be 'polling' or 'fifo', got {kind!r}")
    _count("slots", slots)
    for name, value in [
        ("rate", rate),
        ("mean_service", mean_service),
        ("duration", duration),
        ("max_wait", max_wait),
        ("poll", poll),
    ]:
        _positive(name, value)

    async def main() -> FairnessResult:
        random = rng()
        guard: Any
        if kind == "polling":
            guard = PollingBulkhead(slots, max_wait=max_wait, poll=poll)
        else:
            guard = Bulkhead(slots, max_queue=10**9, max_wait=max_wait)
        waits: dict[int, float] = {}
        started: list[int] = []
        refused = 0

        async def caller(i: int, service: float) -> None:
            nonlocal refused
            asked = now()

            async def work() -> None:
                waits[i] = now() - asked
                started.append(i)
                await asyncio.sleep(service)

            try:
                await guard.execute(work)
            except Exception as exc:
                if not _is_refusal(exc):
                    raise
                refused += 1

        tasks = []
        i = 0
        while True:
            await asyncio.sleep(random.expovariate(rate))
            if now() >= duration:
                break
            tasks.append(asyncio.create_task(caller(i, random.expovariate(1 / mean_service))))
            i += 1
        await asyncio.gather(*tasks)
        overtaken = 0
        latest = -1
        for j in started:  # j was overtaken if someone who arrived after j started before j
            if j < latest:
                overtaken += 1
            latest = max(latest, j)
        wakeups = guard.wakeups if isinstance(guard, PollingBulkhead) else 0
        ordered_waits = tuple(waits[j] for j in sorted(waits))
        return FairnessResult(kind, ordered_waits, refused, overtaken, wakeups)

    result: FairnessResult = run(main, seed=seed)
    return result


def plot_waits(
    *results: FairnessResult,
    theory: tuple[int, float, float] | None = None,
    ax: Any = None,
) -> Any:
    """Draw the survival curve of the waits: the share of callers that waited longer than t.

    Args:
        results: the runs to draw.
        theory: ``(slots, rate, mean_service)`` to draw the M/M/c FIFO curve as well.
        ax: a matplotlib ``Axes``; a new figure is made when None.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    longest = 0.0
    for result in results:
        ordered = sorted(result.waits)
        n = len(ordered)
        longest = max(longest, ordered[-1])
        xs = [w * 1000 for w in ordered]
        ys = [100 * (n - k) / n for k in range(n)]
        p99 = result.percentile(0.99) * 1000
        ax.step(xs, ys, where="post", label=f"{result.kind}: p99 {p99:.0f} ms")
    if theory is not None:
        slots, rate, mean_service = theory
        ts = [longest * k / 200 for k in range(201)]
        ys = [
            100 * fifo_wait_beyond(t, slots=slots, rate=rate, mean_service=mean_service) for t in ts
        ]
        ax.plot([t * 1000 for t in ts], ys, "k--", label="FIFO theory (M/M/c)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=100 / max(len(r.waits) for r in results))
    ax.set_xlabel("time waited for a slot (ms)")
    ax.set_ylabel("callers who waited longer (%)")
    ax.set_title("Waiting for a busy bulkhead: polling against FIFO hand-over")
    ax.legend()
    return ax


@dataclass(frozen=True)
class LeakResult:
    """Callers with a timeout through a bulkhead.

    Attributes:
        calls: calls made.
        served: calls that finished in time.
        timed_out: calls cut short by their caller's timeout.
        refused: calls the bulkhead refused.
        slots_lost: slots counted as taken when nothing runs any more.
        refusing_from: time from which every call was refused (None if never).
    """

    calls: int
    served: int
    timed_out: int
    refused: int
    slots_lost: int
    refusing_from: float | None


def cancellation_leak(
    bulkhead: ChapterBulkhead,
    *,
    calls: int = 200,
    every: float = 0.5,
    timeout: float = 1.0,
    slow_every: int = 5,
    fast_time: float = 0.1,
    slow_time: float = 2.0,
) -> LeakResult:
    """Call through ``bulkhead`` every ``every`` s, each call under ``asyncio.timeout(timeout)``.

    Every ``slow_every``-th call takes ``slow_time`` s (longer than the timeout, so its
    caller cancels it mid-call); the others take ``fast_time`` s.
    """
    _count("calls", calls)
    _count("slow_every", slow_every)
    for name, value in [
        ("every", every),
        ("timeout", timeout),
        ("fast_time", fast_time),
        ("slow_time", slow_time),
    ]:
        _positive(name, value)

    async def main() -> LeakResult:
        outcomes: list[tuple[float, str]] = []

        async def caller(i: int) -> None:
            asked = now()
            seconds = slow_time if i % slow_every == 0 else fast_time
            try:
                async with asyncio.timeout(timeout):
                    await bulkhead.execute(lambda: asyncio.sleep(seconds))
            except TimeoutError:
                outcomes.append((asked, "timed_out"))
            except Exception as exc:
                if not _is_refusal(exc):
                    raise
                outcomes.append((asked, "refused"))
            else:
                outcomes.append((asked, "served"))

        tasks = []
        for i in range(calls):
            await asyncio.sleep(i * every - now())
            tasks.append(asyncio.create_task(caller(i)))
        await asyncio.gather(*tasks)
        outcomes.sort()
        refusing_from = None
        for asked, outcome in reversed(outcomes):
            if outcome != "refused":
                break
            refusing_from = asked
        counts = {k: sum(o == k for _, o in outcomes) for k in ("served", "timed_out", "refused")}
        return LeakResult(
            calls,
            counts["served"],
            counts["timed_out"],
            counts["refused"],
            bulkhead.current_requests,
            refusing_from,
        )

    result: LeakResult = run(main)
    return result


# 3. Thread-pool isolation --------------------------------------------------------------
@dataclass(frozen=True)
class HungThreadsResult:
    """What a thread-pool bulkhead does with calls that hang.

    Attributes:
        threads: threads of the bulkhead.
        timed_out: callers that got BulkheadTimeoutError.
        busy_after_timeouts: threads still running the abandoned calls.
        refused_meanwhile: calls refused while those threads were stuck.
        busy_after_release: threads still busy once the hung calls returned.
    """

    threads: int
    timed_out: int
    busy_after_timeouts: int
    refused_meanwhile: int
    busy_after_release: int


def hung_threads(*, threads: int = 2, timeout: float = 0.02) -> HungThreadsResult:
    """Hang ``threads`` calls in a ``ThreadPoolBulkhead``, time them out, then try one more.

    Real threads and real time: each timed-out call costs its caller ``timeout`` seconds.
    """
    _count("threads", threads)
    _positive("timeout", timeout)
    release = threading.Event()
    stuck = threading.Semaphore(0)

    def legacy_lookup() -> str:
        """A blocking client call that hangs until released (a lost TCP connection, a lock)."""
        stuck.release()
        release.wait(30)
        return "finally answered"

    timed_out = refused = 0
    with ThreadPoolBulkhead(threads, timeout=timeout, name="legacy") as bulkhead:
        for _ in range(threads):
            try:
                bulkhead.call(legacy_lookup)
            except BulkheadTimeoutError:
                timed_out += 1
        for _ in range(threads):
            stuck.acquire(timeout=30)
        busy = bulkhead.active
        try:
            bulkhead.call(legacy_lookup)
        except BulkheadFullError:
            refused += 1
        release.set()
        deadline = time.monotonic() + 30
        while bulkhead.active and time.monotonic() < deadline:
            time.sleep(0.001)
        after = bulkhead.active
    return HungThreadsResult(threads, timed_out, busy, refused, after)


# 4. Sizing: Little's law and the Erlang loss formula ---------------------------------------
@dataclass(frozen=True)
class LittleResult:
    """Calls in flight, measured.

    Attributes:
        rate: arrivals per second offered.
        arrivals: calls that arrived.
        mean_latency: their measured mean time in flight, seconds.
        mean_in_flight: the time-average number of calls in flight.
        duration: seconds measured.
    """

    rate: float
    arrivals: int
    mean_latency: float
    mean_in_flight: float
    duration: float

    @property
    def littles_law(self) -> float:
        """Arrival rate (measured) × mean time in flight (measured): Little's L = λW."""
        return self.arrivals / self.duration * self.mean_latency


def concurrency_in_flight(
    *, rate: float = 20.0, mean_latency: float = 0.25, duration: float = 300.0, seed: int = 1
) -> LittleResult:
    """Poisson calls, exponential latencies, no limit: measure how many are in flight on average.

    Only calls that start and end within ``duration`` are counted, and the in-flight
    count is integrated over ``[0, duration]``.
    """
    for name, value in [("rate", rate), ("mean_latency", mean_latency), ("duration", duration)]:
        _positive(name, value)

    async def main() -> LittleResult:
        random = rng()
        in_flight = 0
        area = 0.0
        last = 0.0
        latencies: list[float] = []

        def change(delta: int) -> None:
            nonlocal in_flight, area, last
            t = min(now(), duration)
            area += in_flight * (t - last)
            last = t
            in_flight += delta

        async def one(latency: float) -> None:
            change(+1)
            await asyncio.sleep(latency)
            change(-1)
            latencies.append(latency)

        tasks = []
        while True:
            await asyncio.sleep(random.expovariate(rate))
            if now() >= duration:
                break
            tasks.append(asyncio.create_task(one(random.expovariate(1 / mean_latency))))
        await asyncio.gather(*tasks)
        change(0)
        return LittleResult(
            rate, len(latencies), statistics.fmean(latencies), area / duration, duration
        )

    result: LittleResult = run(main, seed=seed)
    return result


def erlang_b(slots: int, offered: float) -> float:
    """Return the share of calls refused by ``slots`` slots offered ``offered`` erlangs.

    The Erlang loss formula: a bulkhead without a queue, Poisson arrivals, any
    distribution of call times with mean W, offered load A = λW (Little's law).

    Raises:
        ValueError: for ``slots < 0`` or ``offered < 0``.
    """
    _count("slots", slots, 0)
    if not 0 <= offered < math.inf:
        raise ValueError(f"offered must be a finite load in erlangs >= 0, got {offered!r}")
    b = 1.0
    for k in range(1, slots + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(slots: int, offered: float) -> float:
    """Return the probability that a caller has to wait, for ``slots`` slots and a FIFO queue.

    The Erlang C formula (the M/M/c queue): Poisson arrivals, exponential call times,
    offered load A = λW < ``slots``.

    Raises:
        ValueError: unless ``0 <= offered < slots``.
    """
    _count("slots", slots)
    if not 0 <= offered < slots:
        raise ValueError(f"offered must be in [0, slots) for a queue to be stable, got {offered!r}")
    b = erlang_b(slots, offered)
    return slots * b / (slots - offered * (1 - b))


def fifo_wait_beyond(t: float, *, slots: int, rate: float, mean_service: float) -> float:
    """Return P(wait > t) for FIFO callers of an M/M/c queue: C(c, A) · exp(-(c/W - λ) t)."""
    offered = rate * mean_service
    return erlang_c(slots, offered) * math.exp(-(slots / mean_service - rate) * t)


def rejection_by_slots(
    *,
    rate: float = 16.0,
    mean_latency: float = 0.25,
    slots: Sequence[int] = (2, 4, 6, 8),
    calls: int = 2000,
    seed: int = 3,
) -> list[tuple[int, float, int]]:
    """Measure the refused share of a ``Bulkhead(n)`` (no queue) for each ``n`` in ``slots``.

    Returns:
        ``(slots, refused share, calls)`` per bulkhead size, each from its own seeded run.
    """
    for name, value in [("rate", rate), ("mean_latency", mean_latency)]:
        _positive(name, value)
    _count("calls", calls)
    out = []
    for offset, size in enumerate(slots):
        _count("slots", size)

        async def main(size: int = size) -> float:
            random = rng()
            guard = Bulkhead(size)

            async def one(latency: float) -> None:
                with contextlib.suppress(BulkheadFullError):
                    await guard.execute(lambda: asyncio.sleep(latency))

            tasks = []
            for _ in range(calls):
                await asyncio.sleep(random.expovariate(rate))
                tasks.append(asyncio.create_task(one(random.expovariate(1 / mean_latency))))
            await asyncio.gather(*tasks)
            return guard.rejected / calls

        out.append((size, run(main, seed=seed + offset), calls))
    return out


def plot_rejections(
    measured: Sequence[tuple[int, float, int]], offered: float, *, ax: Any = None
) -> Any:
    """Draw the measured refused share per bulkhead size against the Erlang loss formula.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    top = max(size for size, _, _ in measured) + 1
    sizes = list(range(1, top + 1))
    ax.plot(
        sizes,
        [100 * erlang_b(n, offered) for n in sizes],
        color="black",
        label=f"Erlang loss formula, A = {offered:g}",
    )
    ax.plot(
        [size for size, _, _ in measured],
        [100 * share for _, share, _ in measured],
        "o",
        color="tab:red",
        label="measured (course Bulkhead, virtual time)",
    )
    ax.axvline(
        offered, color="0.6", linestyle="--", label=f"Little's law: {offered:g} busy on average"
    )
    ax.set_xlabel("bulkhead size (slots)")
    ax.set_ylabel("calls refused (%)")
    ax.set_title("Sizing a bulkhead: the average is not enough")
    ax.legend()
    return ax


# 5. The "Your turn" checkers ---------------------------------------------------------------
class _Reviews:
    """What ``fetch_reviews()`` returns: an awaitable that takes 50 ms.

    Not a coroutine, so a student's code that calls ``fetch_reviews()`` and never awaits
    it leaves no "coroutine was never awaited" warning behind.
    """

    def __await__(self) -> Any:
        yield from asyncio.sleep(0.05).__await__()
        return ["great product", "arrived late"]


class _ReviewsDown(Exception):
    """The reviews service's own error (it must not be mistaken for a full bulkhead)."""


@checker("the fallback")
def check_fallback(reviews_or_fallback: Callable[..., Awaitable[Any]]) -> str:
    """Check ``reviews_or_fallback(bulkhead, fetch_reviews)`` in four situations."""

    async def scenario() -> list[Any]:
        seen: list[Any] = []
        calls: list[str] = []

        def fetch() -> _Reviews:
            calls.append("fetch")
            return _Reviews()

        free = Bulkhead(1, name="reviews")
        seen.append(await reviews_or_fallback(free, fetch))
        seen.append((free.metrics().admitted, len(calls)))
        full = Bulkhead(1, name="reviews")
        gate = asyncio.Event()
        holder = asyncio.create_task(full.execute(gate.wait))
        await asyncio.sleep(0)
        began = now()
        calls.clear()
        seen.append(await reviews_or_fallback(full, fetch))
        seen.append((now() - began, len(calls)))
        gate.set()
        await holder

        async def broken() -> list[str]:
            raise _ReviewsDown("reviews service answered 500")

        try:
            await reviews_or_fallback(Bulkhead(1), broken)
        except _ReviewsDown:
            seen.append("raised")
        else:
            seen.append("swallowed")
        return seen

    got, admitted, fallback, (waited, fetches), errors = run(scenario)
    expect(
        got == ["great product", "arrived late"],
        f"with a free slot it should return what fetch_reviews() returns, got {got!r}",
    )
    expect(
        admitted == (1, 1),
        "call fetch_reviews through the bulkhead, once (bulkhead.execute(fetch_reviews)); "
        f"the bulkhead admitted {admitted[0]} call(s) and fetch_reviews ran {admitted[1]} time(s)",
    )
    expect(
        fallback == [],
        f"when the bulkhead is full it should return the fallback [], got {fallback!r}",
    )
    expect(fetches == 0, "a full bulkhead must not let fetch_reviews run at all")
    expect(waited == 0, f"the fallback should come at once; it took {waited:g} s")
    expect(
        errors == "raised",
        "catch BulkheadFullError only: an error of the reviews service itself must still "
        "propagate (the fallback hides a full bulkhead, not a broken service)",
    )
    return "full bulkhead -> [] at once; a free slot -> the reviews; the service's errors propagate"


@checker("the sizing rule")
def check_slots_needed(slots_needed: Callable[..., Any]) -> str:
    """Check ``slots_needed(rate, latency, headroom)`` = ceil(rate × latency × headroom)."""
    cases = [
        ((5.0, 3.0, 1.0), 15),
        ((20.0, 0.02, 1.0), 1),
        ((40.0, 0.25, 1.5), 15),
        ((12.0, 0.3, 2.0), 8),
        ((0.5, 0.1, 1.0), 1),
    ]
    for (rate, latency, headroom), expected in cases:
        got = slots_needed(rate, latency, headroom)
        expect(
            isinstance(got, int) and not isinstance(got, bool),
            f"return a whole number of slots (an int), got {got!r} for rate={rate}, "
            f"latency={latency}, headroom={headroom}",
        )
        if got == expected:
            continue
        exact = rate * latency * headroom
        if got in (math.floor(exact), round(exact)):
            hint = "round up (math.ceil): a fraction of a call in flight still needs a whole slot"
        elif got == math.ceil(rate * latency):
            hint = "multiply by the headroom too"
        else:
            hint = "Little's law: calls in flight = rate x latency"
        expect(
            False,
            f"{rate} calls/s staying {latency} s each, headroom {headroom}: {exact:g} in flight "
            f"-> {expected} slots, got {got}; {hint}",
        )
    return "15 slots for 5 calls/s x 3 s; 15 for 40/s x 0.25 s with 50 % headroom"
