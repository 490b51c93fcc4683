"""Circuit-breaker scenarios for lesson 06, runnable against any breaker with ``call``.

Each function sets up one situation, runs it on a virtual clock (a ``ManualClock`` for
the sync breakers, ``distlab.run`` for async code) and returns the counts the lesson
quotes, so that ``tests/lessons/test_circuit_breaker.py`` can check the very same numbers.

Most take a *breaker factory*: anything called as
``factory(failure_threshold, recovery_timeout, clock=clock)``, such as the classes
``distlab.patterns.chapter.ChapterCircuitBreaker`` and ``distlab.patterns.breaker.CircuitBreaker``.

    herd_after_timeout          how many waiting callers reach a dead backend at once
    calls_to_failing_service    does a 503 answer count as a failure?
    async_function_through_call what a sync breaker makes of an ``async def``
    first_call_after_opening    how long the breaker stays open when the clock jumps
    late_failure                does a slow failure restart the open timer?
    alternating_failures        does a 50 % failure rate ever open the breaker?
    outage_timeline             a whole outage, call by call, for a state plot
    compare_breakers            the flaw scenarios, chapter's breaker against ours
    plot_state_timeline         draw an outage_timeline: states and calls against time
    cascade                     a bounded worker pool and a hanging backend: the healthy
                                endpoint starves without a breaker
    plot_cascade                its throughput and latency over time, side by side
    bad_requests_open_the_breaker  do one client's 404s open the breaker for everybody?
    calls_after_failed_probe    how many calls reach a dead backend after the timeout
    check_after_call, check_is_failure   the checkers of the lesson's "Your turn" cells

Calls that hang in a scenario wait on ``threading.Event``s, never on real sleeps; a
real-time guard (``GUARD`` seconds) turns a stuck scenario into an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from distlab.errors import CircuitOpenError
from distlab.lessons.checks import checker, expect
from distlab.patterns.breaker import CircuitBreaker, State, http_failure
from distlab.patterns.chapter import ChapterCircuitBreaker
from distlab.sim.apps import hello_app
from distlab.sim.faults import FaultyTransport
from distlab.sim.vtime import ManualClock, clock, now, run

__all__ = [
    "GUARD",
    "STATE_COLORS",
    "AlternatingResult",
    "AsyncMisuseResult",
    "BadRequestsResult",
    "BreakerFactory",
    "CallRecord",
    "CascadeResult",
    "FlawRow",
    "HerdResult",
    "LateFailureResult",
    "RequestRecord",
    "ServiceCallsResult",
    "SyncBreaker",
    "Timeline",
    "alternating_failures",
    "async_function_through_call",
    "bad_requests_open_the_breaker",
    "calls_after_failed_probe",
    "calls_to_failing_service",
    "cascade",
    "check_after_call",
    "check_is_failure",
    "compare_breakers",
    "first_call_after_opening",
    "herd_after_timeout",
    "is_rejection",
    "late_failure",
    "outage_timeline",
    "plot_cascade",
    "plot_state_timeline",
]

GUARD = 10.0  # real seconds a scenario waits for its threads before it gives up

Outcome = Literal["success", "failure", "rejected"]


class SyncBreaker(Protocol):
    """Anything with the breaker's sync ``call``."""

    def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``func`` through the breaker."""


class BreakerFactory(Protocol):
    """Builds a breaker from the two settings every breaker has, on a given clock."""

    def __call__(
        self, failure_threshold: int, recovery_timeout: float, *, clock: Callable[[], float]
    ) -> SyncBreaker:
        """Return a new closed breaker."""


def is_rejection(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a breaker refusing a call (ours or the chapter's).

    The chapter's breaker raises a bare ``Exception("Circuit breaker is open")``, so
    only its message identifies it: one more reason for a typed error.
    """
    if isinstance(exc, CircuitOpenError):
        return True
    return type(exc) is Exception and str(exc) == "Circuit breaker is open"


def _backend_down() -> None:
    """Fail like a dead backend."""
    raise ConnectionError("backend is down")


def _trip(breaker: SyncBreaker, failures: int) -> None:
    """Make ``failures`` failing calls, ignoring the errors."""
    for _ in range(failures):
        with contextlib.suppress(ConnectionError):
            breaker.call(_backend_down)


def _check_positive(name: str, value: float) -> None:
    if not 0 < value < math.inf:  # also rejects NaN; an infinite run would never end
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _check_count(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")


# 1. The herd after the timeout -----------------------------------------------------------
@dataclass(frozen=True)
class HerdResult:
    """What happened to concurrent callers arriving once the open timeout had passed.

    Attributes:
        callers: callers that arrived together.
        reached: calls that reached the (still dead) backend.
        rejected: calls the breaker refused without trying.
    """

    callers: int
    reached: int
    rejected: int


def herd_after_timeout(
    factory: BreakerFactory,
    *,
    callers: int = 20,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
) -> HerdResult:
    """Open a breaker, let the timeout pass, then send ``callers`` threads at once.

    The backend is still down: each call that reaches it hangs (on an Event, like a
    connection waiting for its timeout) until every caller has either reached it or been
    rejected, then fails. Nothing is slept for; the clock is a ``ManualClock``.

    Args:
        factory: builds the breaker, e.g. ``ChapterCircuitBreaker`` or ``CircuitBreaker``.
        callers: how many threads call at the same moment (>= 1).
        failure_threshold: passed to the factory.
        recovery_timeout: passed to the factory, seconds.

    Returns:
        A ``HerdResult``; a correct breaker lets exactly one trial call through.

    Raises:
        ValueError: when callers < 1.
        RuntimeError: when the threads do not all finish within ``GUARD`` real seconds.
    """
    _check_count("callers", callers)
    manual = ManualClock()
    breaker = factory(failure_threshold, recovery_timeout, clock=manual)
    _trip(breaker, failure_threshold)
    manual.advance(recovery_timeout)

    decided = threading.Condition()
    counts = {"reached": 0, "rejected": 0}
    unexpected: list[BaseException] = []
    release = threading.Event()
    start = threading.Barrier(callers)

    def dead_backend() -> None:
        with decided:
            counts["reached"] += 1
            decided.notify_all()
        release.wait(GUARD)  # the connection hangs until its timeout...
        raise ConnectionError("backend is down")  # ...and fails

    def caller() -> None:
        try:
            start.wait(GUARD)
            breaker.call(dead_backend)
        except ConnectionError:
            pass
        except Exception as exc:
            if not is_rejection(exc):
                unexpected.append(exc)
            with decided:
                counts["rejected"] += 1
                decided.notify_all()

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    with decided:
        done = decided.wait_for(lambda: sum(counts.values()) == callers, timeout=GUARD)
    release.set()
    for thread in threads:
        thread.join(GUARD)
    if unexpected:
        raise unexpected[0]
    if not done:
        raise RuntimeError(f"herd_after_timeout: callers still undecided after {GUARD} s")
    return HerdResult(callers, counts["reached"], counts["rejected"])


# 2. A 503 is an answer, not an exception --------------------------------------------------
@dataclass(frozen=True)
class ServiceCallsResult:
    """What happened to calls sent through a breaker to a service answering 503.

    Attributes:
        calls: calls attempted.
        reached: requests the service received.
        answered_5xx: calls that returned a 5xx response to the caller as a "success".
        raised: calls that raised the service's error (counted by the breaker).
        rejected: calls the breaker refused without trying.
    """

    calls: int
    reached: int
    answered_5xx: int
    raised: int
    rejected: int


def calls_to_failing_service(
    breaker: SyncBreaker, *, calls: int = 20, raise_for_status: bool = False
) -> ServiceCallsResult:
    """Call ``GET /orders`` on a service that answers every request with 503.

    The service is an ``httpx.MockTransport`` handler: no network, no time passes.

    Args:
        breaker: the breaker to send the calls through.
        calls: how many calls to make (>= 1).
        raise_for_status: when True the protected function calls
            ``response.raise_for_status()``, turning a 5xx into an exception.

    Returns:
        A ``ServiceCallsResult``.

    Raises:
        ValueError: when calls < 1.
    """
    _check_count("calls", calls)
    received = []

    def service(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(503, json={"error": "unavailable"})

    answered = raised = rejected = 0
    with httpx.Client(transport=httpx.MockTransport(service), base_url="http://orders") as http:

        def get_orders() -> httpx.Response:
            response = http.get("/orders")
            if raise_for_status:
                response.raise_for_status()
            return response

        for _ in range(calls):
            try:
                response = breaker.call(get_orders)
            except httpx.HTTPStatusError:
                raised += 1
            except Exception as exc:
                if not is_rejection(exc):
                    raise
                rejected += 1
            else:
                answered += response.status_code >= 500
    return ServiceCallsResult(calls, len(received), answered, raised, rejected)


# 3. An async def through a sync call ------------------------------------------------------
@dataclass(frozen=True)
class AsyncMisuseResult:
    """What a sync ``call`` made of an ``async def`` whose body always fails.

    Attributes:
        calls: calls attempted.
        returned_coroutines: calls that "succeeded" by returning an un-awaited coroutine.
        type_errors: calls refused with a TypeError.
        bodies_run: times the async function's body actually ran.
    """

    calls: int
    returned_coroutines: int
    type_errors: int
    bodies_run: int


def async_function_through_call(breaker: SyncBreaker, *, calls: int = 20) -> AsyncMisuseResult:
    """Pass an ``async def`` that always fails to the breaker's sync ``call``.

    Returned coroutines are closed (never awaited), as the caller who forgot ``await``
    would drop them.

    Args:
        breaker: the breaker under test.
        calls: how many calls to make (>= 1).

    Returns:
        An ``AsyncMisuseResult``.

    Raises:
        ValueError: when calls < 1.
    """
    _check_count("calls", calls)
    bodies = 0

    async def fetch_orders() -> None:
        nonlocal bodies
        bodies += 1
        raise ConnectionError("backend is down")

    coroutines = type_errors = 0
    for _ in range(calls):
        try:
            result = breaker.call(fetch_orders)
        except TypeError:
            type_errors += 1
        else:
            if asyncio.iscoroutine(result):
                coroutines += 1
                result.close()
    return AsyncMisuseResult(calls, coroutines, type_errors, bodies)


# 4. The wall clock jumps ------------------------------------------------------------------
def first_call_after_opening(
    factory: BreakerFactory,
    *,
    clock_step: float = 0.0,
    step_at: float = 5.0,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
    probe_every: float = 1.0,
    give_up: float = 3600.0,
) -> float:
    """Return how many seconds after opening the breaker lets the first call through.

    Runs on ``distlab.run``. The breaker opens at t = 0. Its clock reads virtual time,
    except that at ``t = step_at`` it is stepped by ``clock_step`` seconds, as NTP or an
    administrator steps a wall clock (``time.time()``); a monotonic clock never steps
    (``clock_step=0``). A healthy backend is probed every ``probe_every`` seconds.

    Args:
        factory: builds the breaker.
        clock_step: seconds the breaker's clock jumps by at ``step_at`` (negative: back).
        step_at: virtual time of the jump, seconds.
        failure_threshold: passed to the factory.
        recovery_timeout: passed to the factory, seconds.
        probe_every: seconds between probe calls (> 0).
        give_up: stop probing after this many seconds and return ``math.inf``.

    Returns:
        Virtual seconds from opening to the first call let through (a multiple of
        ``probe_every``), or ``math.inf``.

    Raises:
        ValueError: when probe_every <= 0.
    """
    _check_positive("probe_every", probe_every)

    async def main() -> float:
        def stepped_clock() -> float:
            t = now()
            return t + (clock_step if t >= step_at else 0.0)

        breaker = factory(failure_threshold, recovery_timeout, clock=stepped_clock)
        _trip(breaker, failure_threshold)
        opened = now()
        while now() - opened <= give_up:
            await asyncio.sleep(probe_every)
            try:
                breaker.call(lambda: "ok")
            except Exception as exc:
                if not is_rejection(exc):
                    raise
                continue
            return now() - opened
        return math.inf

    return run(main)


# 5. A late failure --------------------------------------------------------------------------
@dataclass(frozen=True)
class LateFailureResult:
    """When a breaker opened, when a slow call failed, when it let a call through again.

    Attributes:
        opened_at: virtual time the breaker opened (the last fast failure), seconds.
        late_failure_at: when the slow call, started before the opening, failed.
        first_call_at: when the breaker let the next call through.
    """

    opened_at: float
    late_failure_at: float
    first_call_at: float

    @property
    def open_for(self) -> float:
        """Seconds from opening to the first call let through."""
        return self.first_call_at - self.opened_at


def late_failure(
    factory: BreakerFactory,
    *,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
    slow_call: float = 10.0,
    give_up: float = 3600.0,
) -> LateFailureResult:
    """Open a breaker while a slow call is in flight, then let that call fail.

    At t = 0 a slow call starts (in a thread, blocked on an Event). Fast calls fail at
    t = 1, 2, ..., ``failure_threshold``, which opens the breaker. At t = ``slow_call``
    the slow call fails too. Then a healthy backend is probed every second.

    Args:
        factory: builds the breaker.
        failure_threshold: passed to the factory.
        recovery_timeout: passed to the factory, seconds.
        slow_call: how long the slow call takes, seconds (> failure_threshold).
        give_up: stop probing this many seconds after the late failure; ``first_call_at``
            is then ``math.inf`` (a breaker that never lets a call through again).

    Returns:
        A ``LateFailureResult``.

    Raises:
        ValueError: when slow_call <= failure_threshold (it must end after the opening).
        RuntimeError: when the slow call does not start or end within ``GUARD`` seconds.
    """
    if slow_call <= failure_threshold:
        raise ValueError(
            f"slow_call must be > failure_threshold ({failure_threshold}) seconds so that "
            f"it ends after the breaker opened, got {slow_call!r}"
        )
    manual = ManualClock()
    breaker = factory(failure_threshold, recovery_timeout, clock=manual)
    entered, release = threading.Event(), threading.Event()

    def slow_backend() -> None:
        entered.set()
        release.wait(GUARD)
        raise TimeoutError("read timeout")

    def slow_caller() -> None:
        with contextlib.suppress(TimeoutError):
            breaker.call(slow_backend)

    thread = threading.Thread(target=slow_caller, daemon=True)
    thread.start()
    if not entered.wait(GUARD):
        raise RuntimeError("late_failure: the slow call never started")
    for _ in range(failure_threshold):
        manual.advance(1.0)
        _trip(breaker, 1)
    opened_at = manual()
    manual.advance(slow_call - opened_at)
    release.set()
    thread.join(GUARD)
    if thread.is_alive():
        raise RuntimeError("late_failure: the slow call never finished")
    late_failure_at = manual()
    while manual() - late_failure_at < give_up:
        manual.advance(1.0)
        try:
            breaker.call(lambda: "ok")
        except Exception as exc:
            if not is_rejection(exc):
                raise
            continue
        return LateFailureResult(opened_at, late_failure_at, manual())
    return LateFailureResult(opened_at, late_failure_at, math.inf)


# 6. A steady 50 % failure rate --------------------------------------------------------------
@dataclass(frozen=True)
class AlternatingResult:
    """What happened to calls failing every other time.

    Attributes:
        calls: calls attempted.
        reached: calls that reached the backend.
        failed: calls that reached it and failed.
        rejected: calls the breaker refused.
        first_rejected: 1-based number of the first refused call, or None.
    """

    calls: int
    reached: int
    failed: int
    rejected: int
    first_rejected: int | None


def alternating_failures(breaker: SyncBreaker, *, calls: int = 100) -> AlternatingResult:
    """Send ``calls`` calls that fail, succeed, fail, succeed, ... (no time passes).

    Args:
        breaker: the breaker under test (give it a frozen clock, e.g. ``ManualClock()``).
        calls: how many calls to make (>= 1).

    Returns:
        An ``AlternatingResult``.

    Raises:
        ValueError: when calls < 1.
    """
    _check_count("calls", calls)
    reached = failed = rejected = 0
    first_rejected: int | None = None
    for number in range(1, calls + 1):
        backend_fails = number % 2 == 1

        def backend(fails: bool = backend_fails) -> str:
            nonlocal reached
            reached += 1
            if fails:
                raise ConnectionError("backend is down")
            return "ok"

        try:
            breaker.call(backend)
        except ConnectionError:
            failed += 1
        except Exception as exc:
            if not is_rejection(exc):
                raise
            rejected += 1
            if first_rejected is None:
                first_rejected = number
    return AlternatingResult(calls, reached, failed, rejected, first_rejected)


# 7. A whole outage --------------------------------------------------------------------------
@dataclass(frozen=True)
class CallRecord:
    """One client call: when it was made (virtual seconds) and how it ended."""

    time: float
    outcome: Outcome


@dataclass(frozen=True)
class Timeline:
    """Calls and breaker states through an outage of the backend.

    Attributes:
        calls: every call, in order.
        states: ``(time, state)`` pairs, from ``(0.0, "closed")``; empty without a breaker.
            A half-open period starts when the open timeout ran out (the breaker itself
            notices at the next call).
        outage: ``(start, end)`` of the backend outage, virtual seconds.
        duration: length of the run, virtual seconds.
    """

    calls: tuple[CallRecord, ...]
    states: tuple[tuple[float, State], ...]
    outage: tuple[float, float]
    duration: float

    def count(
        self, outcome: Outcome | None = None, start: float = 0.0, end: float = math.inf
    ) -> int:
        """Count calls made in ``[start, end)`` with ``outcome`` (any when None)."""
        return sum(
            start <= c.time < end and (outcome is None or c.outcome == outcome) for c in self.calls
        )

    @property
    def reached_during_outage(self) -> int:
        """Requests that reached the dead backend (calls not rejected during the outage)."""
        start, end = self.outage
        return self.count(None, start, end) - self.count("rejected", start, end)

    @property
    def recovered_at(self) -> float | None:
        """When the breaker closed again after the outage ended (None if it did not)."""
        end = self.outage[1]
        for time, state in self.states:
            if state == "closed" and time >= end:
                return time
        return None


def outage_timeline(
    *,
    with_breaker: bool = True,
    outage: tuple[float, float] = (10.0, 70.0),
    duration: float = 120.0,
    interval: float = 1.0,
    latency: float = 0.5,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
    seed: int = 0,
) -> Timeline:
    """Run a client calling a service every ``interval`` s through an outage.

    Runs on ``distlab.run``. The service (``distlab.sim.apps.hello_app``) sits behind a
    ``FaultyTransport`` that answers 503 to every request sent during ``outage`` and
    adds ``latency`` seconds to every request. The client calls at t = 0, interval,
    2 * interval, ... < duration, through ``CircuitBreaker.acall`` (5xx and transport
    errors count as failures, see ``http_failure``) or, with ``with_breaker=False``,
    directly.

    Args:
        with_breaker: protect the calls with a ``CircuitBreaker``.
        outage: ``(start, end)`` virtual seconds during which the service fails.
        duration: virtual seconds to run.
        interval: seconds between the starts of two calls (> latency).
        latency: seconds every request takes (>= 0).
        failure_threshold: the breaker's consecutive-failure threshold.
        recovery_timeout: the breaker's open time, seconds.
        seed: seed of the run.

    Returns:
        A ``Timeline``.

    Raises:
        ValueError: when the timing parameters are inconsistent (the message names one).
    """
    _check_positive("interval", interval)
    _check_positive("duration", duration)
    if not 0 <= latency < interval:
        raise ValueError(f"latency must be in [0, interval={interval}), got {latency!r}")
    start, end = outage
    if not 0 <= start < end:
        raise ValueError(f"outage must be (start, end) with 0 <= start < end, got {outage!r}")

    async def main() -> Timeline:
        transport = FaultyTransport(httpx.ASGITransport(app=hello_app()), latency=latency)
        transport.outage(start, end)
        states: list[tuple[float, State]] = []
        calls: list[CallRecord] = []

        def record(breaker: CircuitBreaker, old: State, new: State) -> None:
            if new == "half_open":  # eligible since the timeout ran out
                states.append((states[-1][0] + breaker.recovery_timeout, new))
            else:
                states.append((now(), new))

        breaker = None
        if with_breaker:
            breaker = CircuitBreaker(
                failure_threshold,
                recovery_timeout,
                clock=clock(),
                is_failure=http_failure,
                name="hello",
                listeners=[record],
            )
            states.append((0.0, "closed"))

        async with httpx.AsyncClient(transport=transport, base_url="http://hello") as http:

            async def get_hello() -> httpx.Response:
                response = await http.get("/hello")
                response.raise_for_status()
                return response

            number = 0
            while (t := number * interval) < duration:
                await asyncio.sleep(t - now())
                outcome: Outcome = "success"
                try:
                    if breaker is None:
                        await get_hello()
                    else:
                        await breaker.acall(get_hello)
                except CircuitOpenError:
                    outcome = "rejected"
                except httpx.HTTPError:
                    outcome = "failure"
                calls.append(CallRecord(t, outcome))
                number += 1
        return Timeline(tuple(calls), tuple(states), (start, end), duration)

    result: Timeline = run(main, seed=seed)
    return result


# All six flaws side by side ---------------------------------------------------------------
@dataclass(frozen=True)
class FlawRow:
    """One flaw's scenario, measured on the chapter's breaker and on the reference one.

    Attributes:
        label: what is measured, with its unit or its total.
        chapter: the figure for ``ChapterCircuitBreaker``.
        reference: the figure for ``CircuitBreaker``.
    """

    label: str
    chapter: float
    reference: float


def compare_breakers() -> list[FlawRow]:
    """Run the flaw scenarios against the chapter's breaker and the reference one.

    Both breakers get ``failure_threshold=5`` and ``recovery_timeout=30`` and the same
    calls. The reference one is configured as lesson 06 describes:
    ``is_failure=http_failure`` for flaw 2 (both calls raise for status, so both see
    the 404s), a failure-rate window of 50 % over the last 10 calls for flaw 6, and its
    own monotonic clock, which no step can move, for flaw 4 (the chapter's clock is
    stepped back 60 s).

    Returns:
        One ``FlawRow`` per measurement, in the lesson's order (flaw 1 has two).
    """
    chapter = ChapterCircuitBreaker

    def frozen() -> ManualClock:
        return ManualClock()  # no time passes in these scenarios

    return [
        FlawRow(
            "1. calls reaching a dead backend after the timeout, 20 at once (of 20)",
            herd_after_timeout(chapter).reached,
            herd_after_timeout(CircuitBreaker).reached,
        ),
        FlawRow(
            "1. calls reaching it after the timeout, one at a time (of 20)",
            calls_after_failed_probe(chapter),
            calls_after_failed_probe(CircuitBreaker),
        ),
        FlawRow(
            "2. good requests refused after one client's 5 bad ones (of 20)",
            bad_requests_open_the_breaker(chapter(5, 30, clock=frozen())).good_refused,
            bad_requests_open_the_breaker(
                CircuitBreaker(5, 30, clock=frozen(), is_failure=http_failure)
            ).good_refused,
        ),
        FlawRow(
            "3. async def calls counted as successes (of 20)",
            async_function_through_call(chapter(5, 30)).returned_coroutines,
            async_function_through_call(CircuitBreaker(5, 30)).returned_coroutines,
        ),
        FlawRow(
            "4. seconds open when the clock steps back 60 s",
            first_call_after_opening(chapter, clock_step=-60),
            first_call_after_opening(CircuitBreaker),
        ),
        FlawRow(
            "5. seconds open after a late failure",
            late_failure(chapter).open_for,
            late_failure(CircuitBreaker).open_for,
        ),
        FlawRow(
            "6. calls reaching a backend failing every other time (of 100)",
            alternating_failures(chapter(5, 30, clock=frozen())).reached,
            alternating_failures(
                CircuitBreaker(5, 30, clock=frozen(), failure_rate=0.5, window=10)
            ).reached,
        ),
    ]


# 8. The cascade: a bounded worker pool and a hanging backend -------------------------------
Endpoint = Literal["catalog", "orders"]
RequestOutcome = Literal["ok", "queue_timeout", "failed", "refused"]


@dataclass(frozen=True)
class RequestRecord:
    """One user request to the frontend, from arrival to answer.

    Attributes:
        endpoint: ``"catalog"`` (answered by the frontend itself) or ``"orders"`` (needs
            the backend).
        arrived: virtual time the request arrived, seconds.
        finished: virtual time it was answered, seconds.
        outcome: ``"ok"``; ``"queue_timeout"`` (no worker became free within the queue
            timeout: the frontend answered 503); ``"failed"`` (the backend call failed,
            after the client's timeout); ``"refused"`` (the breaker refused the backend
            call at once: a fast 503).
        reached_backend: whether the request made a backend call (not refused).
    """

    endpoint: Endpoint
    arrived: float
    finished: float
    outcome: RequestOutcome
    reached_backend: bool

    @property
    def latency(self) -> float:
        """Seconds from arrival to answer."""
        return self.finished - self.arrived


@dataclass(frozen=True)
class CascadeResult:
    """Every request of one ``cascade`` run.

    Attributes:
        requests: every request, in arrival order.
        with_breaker: whether the backend calls went through a ``CircuitBreaker``.
        outage: ``(start, end)``: the backend hangs for requests it gets in that window.
        duration: seconds of arrivals.
        workers: size of the frontend's worker pool.
        states: ``(time, state)`` of the breaker (empty without one).
    """

    requests: tuple[RequestRecord, ...]
    with_breaker: bool
    outage: tuple[float, float]
    duration: float
    workers: int
    states: tuple[tuple[float, State], ...] = ()

    def select(
        self, endpoint: Endpoint, start: float = 0.0, end: float = math.inf
    ) -> list[RequestRecord]:
        """Return the requests to ``endpoint`` that arrived in ``[start, end)``."""
        return [r for r in self.requests if r.endpoint == endpoint and start <= r.arrived < end]

    def answered_fraction(
        self, endpoint: Endpoint, start: float = 0.0, end: float = math.inf
    ) -> float:
        """Return the share of requests arriving in ``[start, end)`` answered ``"ok"``."""
        chosen = self.select(endpoint, start, end)
        if not chosen:
            raise ValueError(f"no {endpoint} request arrived in [{start}, {end})")
        return sum(r.outcome == "ok" for r in chosen) / len(chosen)

    def median_latency(
        self, endpoint: Endpoint, start: float = 0.0, end: float = math.inf
    ) -> float:
        """Return the median latency (s) of the ``"ok"`` answers to requests arriving in the window.

        Returns ``math.inf`` when none was answered.
        """
        latencies = [r.latency for r in self.select(endpoint, start, end) if r.outcome == "ok"]
        return statistics.median(latencies) if latencies else math.inf

    def per_second(self, endpoint: Endpoint, outcome: RequestOutcome = "ok") -> list[int]:
        """Return how many ``endpoint`` answers with ``outcome`` went out in each second."""
        seconds = math.ceil(self.duration + max((r.latency for r in self.requests), default=0))
        counts = [0] * (seconds + 1)
        for r in self.requests:
            if r.endpoint == endpoint and r.outcome == outcome:
                counts[int(r.finished)] += 1
        return counts

    @property
    def backend_calls_during_outage(self) -> int:
        """Backend calls made by requests that arrived while the backend hung."""
        start, end = self.outage
        return sum(r.reached_backend for r in self.select("orders", start, end))

    def recovered_at(self, endpoint: Endpoint = "catalog", *, after: float | None = None) -> float:
        """Return the arrival time from which every later ``endpoint`` request was answered ok.

        Args:
            endpoint: the endpoint to look at.
            after: only look at requests arriving from this time (default: the outage start).

        Returns:
            The arrival time of the first request of the final all-``"ok"`` run, or
            ``math.inf`` if the last request failed.
        """
        start = self.outage[0] if after is None else after
        chosen = self.select(endpoint, start)
        recovered = math.inf
        for r in reversed(chosen):
            if r.outcome != "ok":
                break
            recovered = r.arrived
        return recovered


def _hanging_backend(outage: tuple[float, float]) -> Callable[..., Any]:
    """An ASGI app answering ``GET /orders`` at once, except during ``outage``, when it hangs."""
    start, end = outage

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":  # lifespan events: nothing to set up
            return
        if start <= now() < end:
            await asyncio.Event().wait()  # hangs: a stuck thread, a lock, a full disk
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"orders": []}'})

    return app


def cascade(
    *,
    with_breaker: bool = False,
    workers: int = 10,
    duration: float = 120.0,
    outage: tuple[float, float] = (10.0, 70.0),
    catalog_every: float = 0.1,
    orders_every: float = 0.5,
    catalog_time: float = 0.02,
    backend_timeout: float = 30.0,
    queue_timeout: float = 5.0,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
) -> CascadeResult:
    """Run a frontend with a bounded worker pool through a backend that hangs.

    Runs on ``distlab.run``. Users send ``GET /catalog`` every ``catalog_every`` s (the
    frontend answers it itself in ``catalog_time`` s) and ``GET /orders`` every
    ``orders_every`` s (the frontend calls the backend over HTTP, with the client's
    timeout of ``backend_timeout`` s). Every request needs one of ``workers`` workers; a
    request that finds none free within ``queue_timeout`` s is answered 503. During
    ``outage`` the backend accepts requests and never answers, so each call holds its
    worker until the client's timeout. With ``with_breaker=True`` the backend calls go
    through ``CircuitBreaker(failure_threshold, recovery_timeout, is_failure=http_failure)``.

    Args:
        with_breaker: protect the backend calls with a circuit breaker.
        workers: concurrent requests the frontend can work on (>= 1).
        duration: seconds during which users send requests.
        outage: ``(start, end)``: the backend hangs on requests it gets then.
        catalog_every: seconds between two catalog requests (> 0).
        orders_every: seconds between two orders requests (> 0).
        catalog_time: seconds a worker spends on a catalog request (>= 0).
        backend_timeout: the frontend's HTTP timeout for backend calls (> 0).
        queue_timeout: seconds a request may wait for a worker (> 0).
        failure_threshold: the breaker's consecutive-failure threshold.
        recovery_timeout: the breaker's open time, seconds.

    Returns:
        A ``CascadeResult`` with every request.

    Raises:
        ValueError: when a setting is out of range (the message names it).
    """
    _check_count("workers", workers)
    for name, value in [
        ("duration", duration),
        ("catalog_every", catalog_every),
        ("orders_every", orders_every),
        ("backend_timeout", backend_timeout),
        ("queue_timeout", queue_timeout),
    ]:
        _check_positive(name, value)
    if not 0 <= catalog_time < math.inf:
        raise ValueError(f"catalog_time must be finite seconds >= 0, got {catalog_time!r}")
    start, end = outage
    if not 0 <= start < end < math.inf:
        raise ValueError(f"outage must be (start, end) with 0 <= start < end, got {outage!r}")

    async def main() -> CascadeResult:
        pool = asyncio.Semaphore(workers)
        records: list[RequestRecord] = []
        states: list[tuple[float, State]] = []
        breaker: CircuitBreaker | None = None
        if with_breaker:
            states.append((0.0, "closed"))
            breaker = CircuitBreaker(
                failure_threshold,
                recovery_timeout,
                clock=clock(),
                is_failure=http_failure,
                name="orders-backend",
                listeners=[lambda _breaker, _old, new: states.append((now(), new))],
            )
        transport = FaultyTransport(httpx.ASGITransport(app=_hanging_backend(outage)))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://backend", timeout=backend_timeout
        ) as http:

            async def get_orders() -> httpx.Response:
                response = await http.get("/orders")
                response.raise_for_status()
                return response

            async def handle(endpoint: Endpoint) -> None:
                arrived = now()
                try:
                    await asyncio.wait_for(pool.acquire(), queue_timeout)
                except TimeoutError:
                    records.append(RequestRecord(endpoint, arrived, now(), "queue_timeout", False))
                    return
                outcome: RequestOutcome = "ok"
                reached = False
                try:
                    if endpoint == "catalog":
                        await asyncio.sleep(catalog_time)
                    else:
                        reached = True
                        try:
                            if breaker is None:
                                await get_orders()
                            else:
                                await breaker.acall(get_orders)
                        except CircuitOpenError:
                            outcome, reached = "refused", False
                        except httpx.HTTPError:
                            outcome = "failed"
                finally:
                    pool.release()
                records.append(RequestRecord(endpoint, arrived, now(), outcome, reached))

            async def users(endpoint: Endpoint, every: float) -> list[asyncio.Task[None]]:
                tasks = []
                number = 0
                while (t := number * every) < duration:
                    await asyncio.sleep(t - now())
                    tasks.append(asyncio.create_task(handle(endpoint)))
                    number += 1
                return tasks

            batches = await asyncio.gather(
                users("catalog", catalog_every), users("orders", orders_every)
            )
            await asyncio.gather(*(task for batch in batches for task in batch))
        ordered = sorted(records, key=lambda r: (r.arrived, r.endpoint))
        return CascadeResult(
            tuple(ordered), with_breaker, (start, end), duration, workers, tuple(states)
        )

    result: CascadeResult = run(main)
    return result


def plot_cascade(without: CascadeResult, protected: CascadeResult, *, axes: Any = None) -> Any:
    """Draw both endpoints' answered share and latency over time, without and with a breaker.

    Two columns (no breaker, with the breaker) and two rows, both by second of arrival:
    the share of requests answered ``"ok"``, and the median time users waited for an
    answer of any kind (log scale; answers faster than 1 ms are drawn at 1 ms). The
    backend's outage is shaded; seconds without any request leave a gap.

    Args:
        without: a ``cascade(with_breaker=False)`` run.
        protected: a ``cascade(with_breaker=True)`` run of the same scenario.
        axes: a 2 x 2 array of matplotlib ``Axes``; a new figure is made when None.

    Returns:
        The 2 x 2 array of ``Axes``.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(
            2, 2, figsize=(11, 5.5), sharex=True, sharey="row", layout="constrained"
        )
    styles: dict[Endpoint, tuple[str, str]] = {
        "catalog": ("tab:blue", "/catalog (never calls the backend)"),
        "orders": ("tab:orange", "/orders (calls the backend)"),
    }
    for column, (run_, name) in enumerate(
        [(without, "no breaker"), (protected, "with the breaker")]
    ):
        share_ax, wait_ax = axes[0][column], axes[1][column]
        for endpoint, (colour, label) in styles.items():
            seconds, shares, waits = _by_arrival_second(run_, endpoint)
            share_ax.plot(seconds, shares, color=colour, label=label)
            wait_ax.plot(seconds, waits, color=colour, label=label)
        for ax in (share_ax, wait_ax):
            ax.axvspan(*run_.outage, color="0.88", zorder=0)
        share_ax.set_title(f"{name}: backend hangs in the shaded window")
        wait_ax.set_xlabel("virtual time of arrival (s)")
    axes[0][0].set_ylabel("requests answered (%)")
    axes[0][0].set_ylim(-5, 105)
    axes[1][0].set_ylabel("median wait for an answer (ms)")
    axes[1][0].set_yscale("log")
    axes[0][0].legend(loc="center right", fontsize="small")
    return axes


def _by_arrival_second(
    result: CascadeResult, endpoint: Endpoint
) -> tuple[list[float], list[float], list[float]]:
    """Per second of arrival: (second, % answered ok, median wait in ms), NaN where empty."""
    groups: dict[int, list[RequestRecord]] = {}
    for r in result.requests:
        if r.endpoint == endpoint:
            groups.setdefault(int(r.arrived), []).append(r)
    seconds, shares, waits = [], [], []
    for second in range(int(result.duration)):
        group = groups.get(second, [])
        seconds.append(second + 0.5)
        if not group:
            shares.append(math.nan)
            waits.append(math.nan)
            continue
        shares.append(100 * sum(r.outcome == "ok" for r in group) / len(group))
        waits.append(max(1.0, statistics.median(r.latency for r in group) * 1000))
    return seconds, shares, waits


# 9. Which errors count: one client's bad requests ------------------------------------------
@dataclass(frozen=True)
class BadRequestsResult:
    """What one client's bad requests did to everybody else's good ones.

    Attributes:
        bad: requests for an order that does not exist (answered 404).
        good: requests for existing orders, sent after the bad ones.
        good_refused: good requests the breaker refused without trying.
        good_answered: good requests answered 200.
    """

    bad: int
    good: int
    good_refused: int
    good_answered: int


def bad_requests_open_the_breaker(
    breaker: SyncBreaker, *, bad: int = 5, good: int = 20
) -> BadRequestsResult:
    """Send ``bad`` requests answered 404, then ``good`` requests, through one breaker.

    Every call goes through the same wrapper, ``response.raise_for_status()``, so a 4xx
    answer raises ``httpx.HTTPStatusError`` inside the protected function; the breaker
    decides whether that counts. The orders service is an ``httpx.MockTransport``
    handler: no network, and no time passes.

    Args:
        breaker: the breaker to send the calls through.
        bad: requests for a missing order (>= 1).
        good: requests for an existing order afterwards (>= 1).

    Returns:
        A ``BadRequestsResult``.

    Raises:
        ValueError: when bad or good < 1.
    """
    _check_count("bad", bad)
    _check_count("good", good)

    def service(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/orders/42":
            return httpx.Response(200, json={"id": 42})
        return httpx.Response(404, json={"error": "no such order"})

    refused = answered = 0
    with httpx.Client(transport=httpx.MockTransport(service), base_url="http://orders") as http:

        def get(path: str) -> httpx.Response:
            response = http.get(path)
            response.raise_for_status()  # the same wrapper for every breaker
            return response

        for _ in range(bad):
            try:
                breaker.call(get, "/orders/4242")  # a typo in one client's order id
            except httpx.HTTPStatusError:
                pass
            except Exception as exc:
                if not is_rejection(exc):
                    raise
        for _ in range(good):
            try:
                breaker.call(get, "/orders/42")
            except Exception as exc:
                if not is_rejection(exc):
                    raise
                refused += 1
            else:
                answered += 1
    return BadRequestsResult(bad, good, refused, answered)


# 10. After a failed probe ----------------------------------------------------------------------
def calls_after_failed_probe(
    factory: BreakerFactory,
    *,
    calls: int = 20,
    failure_threshold: int = 5,
    recovery_timeout: float = 30.0,
) -> int:
    """Return how many of ``calls`` sequential calls reach a still-dead backend after the timeout.

    The breaker opens, ``recovery_timeout`` passes on a ``ManualClock``, and then
    ``calls`` calls are made one after the other (no time passes between them) to a
    backend that is still down. A three-state breaker lets exactly one probe through
    and opens again when it fails.

    Args:
        factory: builds the breaker.
        calls: how many calls to make after the timeout (>= 1).
        failure_threshold: passed to the factory.
        recovery_timeout: passed to the factory, seconds.

    Returns:
        How many calls reached the backend.

    Raises:
        ValueError: when calls < 1.
    """
    _check_count("calls", calls)
    manual = ManualClock()
    breaker = factory(failure_threshold, recovery_timeout, clock=manual)
    _trip(breaker, failure_threshold)
    manual.advance(recovery_timeout)
    reached = 0

    def dead_backend() -> None:
        nonlocal reached
        reached += 1
        raise ConnectionError("backend is down")

    for _ in range(calls):
        try:
            breaker.call(dead_backend)
        except ConnectionError:
            pass
        except Exception as exc:
            if not is_rejection(exc):
                raise
    return reached


# "Your turn" checkers ----------------------------------------------------------------------------
_STATES = ("closed", "open", "half_open")


def _transition(
    func: Callable[..., Any], state: str, failures: int, failed: bool, threshold: int
) -> tuple[str, int]:
    got = func(state, failures, failed, failure_threshold=threshold)
    expect(
        isinstance(got, tuple | list) and len(got) == 2,
        f"after_call should return a pair (state, failures), got {got!r}",
    )
    new_state, new_failures = got
    expect(
        new_state in _STATES,
        f"the state should be one of {', '.join(repr(s) for s in _STATES)}, got {new_state!r}",
    )
    expect(
        isinstance(new_failures, int) and not isinstance(new_failures, bool) and new_failures >= 0,
        f"the failure count should be an int >= 0, got {new_failures!r}",
    )
    return new_state, new_failures


@checker("your after_call")
def check_after_call(after_call: Callable[..., Any]) -> str:
    """Check a student's ``after_call(state, failures, failed, *, failure_threshold)``.

    The function returns the breaker's ``(state, failures)`` after a call it let through
    has ended: the rows of the state table of lesson 06 that follow a call.
    """
    state, count = _transition(after_call, "closed", 0, True, 3)
    expect(
        (state, count) == ("closed", 1),
        "closed, no failure yet, then a failed call (failure_threshold=3): expected "
        f"('closed', 1), got {(state, count)!r}",
    )
    state, count = _transition(after_call, "closed", 1, True, 3)
    expect(
        (state, count) == ("closed", 2),
        "closed with 1 failure, then a failed call: expected ('closed', 2), "
        f"got {(state, count)!r}",
    )
    state, _ = _transition(after_call, "closed", 2, True, 3)
    expect(
        state == "open",
        "the 3rd consecutive failure with failure_threshold=3 should open the breaker "
        f"(got {state!r}): compare the new count with >=, after adding the failure",
    )
    state, count = _transition(after_call, "closed", 2, False, 3)
    expect(
        state == "closed",
        f"a successful call leaves a closed breaker closed, got {state!r}",
    )
    expect(
        count == 0,
        f"a success resets the count of consecutive failures to 0, got {count}: "
        "otherwise failures hours apart add up and open the breaker",
    )
    state, count = _transition(after_call, "half_open", 0, False, 3)
    expect(
        (state, count) == ("closed", 0),
        f"a successful trial call closes the breaker with a count of 0, got {(state, count)!r}",
    )
    state, count = _transition(after_call, "half_open", 0, True, 3)
    expect(
        state == "open",
        f"a failed trial call opens the breaker again at once, got {state!r}: one probe is "
        "the only evidence there is; waiting for failure_threshold more failures sends "
        "them all to a dead backend (the chapter's flaw 1, section 3.1)",
    )
    state, _ = _transition(after_call, "half_open", 0, True, 1)
    expect(
        state == "open", f"a failed trial with failure_threshold=1 should open it, got {state!r}"
    )
    state, _ = _transition(after_call, "closed", 0, True, 1)
    expect(
        state == "open",
        f"with failure_threshold=1 a single failure should open the breaker, got {state!r}",
    )
    # A whole outage, call by call: 3 failures open it; a failed then a good trial.
    walk = []
    state, count = "closed", 0
    for failed in (False, True, True, True):
        state, count = _transition(after_call, state, count, failed, 3)
        walk.append(state)
    expect(
        walk[-1] == "open", f"ok, fail, fail, fail with failure_threshold=3 should end open: {walk}"
    )
    return "closed → open after 3 failures, a failed trial reopens, a good one closes with count 0"


def _status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://orders/orders/42")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(
        f"{status} from the orders service", request=request, response=response
    )


def _judged(func: Callable[[BaseException], Any], exc: BaseException, what: str) -> bool:
    verdict = func(exc)
    expect(
        isinstance(verdict, bool),
        f"is_failure should return True or False, got {verdict!r} for {what}",
    )
    return bool(verdict)


@checker("your is_failure")
def check_is_failure(is_failure: Callable[[BaseException], Any]) -> str:
    """Check a student's ``is_failure(exc)`` for HTTP calls made with httpx.

    Transport errors, 5xx, 408 and 429 count (the dependency is down, slow or shedding
    load); other 4xx and exceptions from our own code do not.
    """
    request = httpx.Request("GET", "http://orders/orders/42")
    transport_errors = [
        (httpx.ConnectError("connection refused", request=request), "a refused connection"),
        (httpx.ReadTimeout("no answer in 30 s", request=request), "a read timeout"),
        (httpx.ConnectTimeout("no connection in 30 s", request=request), "a connect timeout"),
    ]
    for exc, what in transport_errors:
        expect(
            _judged(is_failure, exc, what),
            f"{what} ({type(exc).__name__}) should count: the dependency did not answer. "
            "httpx raises these as subclasses of httpx.TransportError",
        )
    for status in (500, 502, 503, 504):
        expect(
            _judged(is_failure, _status_error(status), f"a {status} answer"),
            f"a {status} answer should count: the dependency itself is failing",
        )
    expect(
        _judged(is_failure, _status_error(429), "a 429 answer"),
        "429 Too Many Requests should count: the dependency is overloaded and asks you "
        "to back off, which is what an open breaker does (resilience libraries count it)",
    )
    expect(
        _judged(is_failure, _status_error(408), "a 408 answer"),
        "408 Request Timeout should count: the server gave up waiting, a sign of a slow "
        "dependency, not of a wrong request",
    )
    for status in (400, 401, 404, 409, 422):
        expect(
            not _judged(is_failure, _status_error(status), f"a {status} answer"),
            f"a {status} answer should not count: the request was wrong, the dependency is "
            "fine. Counting it lets one client's bad requests open the breaker for "
            "everybody (section 3.2)",
        )
    own_bugs: list[tuple[Exception, str]] = [
        (ValueError("our bug"), "a ValueError from our own code"),
        (KeyError("total"), "a KeyError from our own code"),
    ]
    for bug, what in own_bugs:
        expect(
            not _judged(is_failure, bug, what),
            f"{what} should not count: it is a bug on our side, not the dependency failing",
        )
    result = bad_requests_open_the_breaker(
        CircuitBreaker(5, 30, clock=ManualClock(), is_failure=is_failure)
    )
    return (
        f"transport errors, 5xx, 408 and 429 count; other 4xx do not, so after 5 bad "
        f"requests {result.good_answered} of {result.good} good ones are still answered"
    )


# --------------------------------------------------------------------------------------
# The state timeline plot
# --------------------------------------------------------------------------------------
_MARK_STYLES = ("-", "--", ":", "-.")

STATE_COLORS = {"closed": "tab:green", "half_open": "tab:orange", "open": "tab:red"}
_OUTCOME_STYLE = {
    # outcome: (row, marker, colour)
    "success": (2, "o", "tab:green"),
    "failure": (1, "x", "tab:red"),
    "rejected": (0, "|", "tab:gray"),
}
_STATE_ROW = 3


def plot_state_timeline(timeline: Timeline, *, ax: Any = None, title: str | None = None) -> Any:
    """Draw a breaker's states and every call of ``timeline`` against virtual time.

    The top row shows the breaker state as coloured bars (closed, half-open, open); the
    rows below mark each call at the time it was made: success, failure (it reached
    the failing backend) or rejected (the breaker refused it). The outage is shaded.

    Args:
        timeline: a ``distlab.lessons.circuit_breaker.Timeline``, e.g. from ``outage_timeline()``.
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.
        title: the plot title; a summary of the counts when None.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.2), layout="constrained")
    start, end = timeline.outage
    ax.axvspan(start, end, color="0.85", zorder=0)

    states = list(timeline.states)
    for (t0, state), (t1, _) in zip(
        states, [*states[1:], (timeline.duration, "closed")], strict=True
    ):
        if t1 > t0:
            ax.broken_barh([(t0, t1 - t0)], (_STATE_ROW - 0.35, 0.7), color=STATE_COLORS[state])

    for outcome, (row, marker, colour) in _OUTCOME_STYLE.items():
        times = [c.time for c in timeline.calls if c.outcome == outcome]
        ax.scatter(times, [row] * len(times), marker=marker, color=colour, s=25, zorder=3)

    ax.set_yticks([0, 1, 2, _STATE_ROW])
    ax.set_yticklabels(["rejected", "failure", "success", "breaker state"])
    ax.set_ylim(-0.7, _STATE_ROW + 0.7)
    ax.set_xlim(0, timeline.duration)
    ax.set_xlabel("virtual time (s)")
    handles = [Patch(color=c, label=s.replace("_", "-")) for s, c in STATE_COLORS.items()]
    handles.append(Patch(color="0.85", label="backend down"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4)
    if title is None:
        title = (
            f"{timeline.count('success')} successes, {timeline.count('failure')} failures, "
            f"{timeline.count('rejected')} rejected; "
            f"{timeline.reached_during_outage} requests reached the backend while it was down"
        )
    ax.set_title(title)
    return ax
