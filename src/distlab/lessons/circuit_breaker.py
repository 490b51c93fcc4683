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
    compare_breakers            the six flaw scenarios, chapter's breaker against ours
    plot_state_timeline         draw an outage_timeline: states and calls against time

Calls that hang in a scenario wait on ``threading.Event``s, never on real sleeps; a
real-time guard (``GUARD`` seconds) turns a stuck scenario into an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from distlab.errors import CircuitOpenError
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
    "BreakerFactory",
    "CallRecord",
    "FlawRow",
    "HerdResult",
    "LateFailureResult",
    "ServiceCallsResult",
    "SyncBreaker",
    "Timeline",
    "alternating_failures",
    "async_function_through_call",
    "calls_to_failing_service",
    "compare_breakers",
    "first_call_after_opening",
    "herd_after_timeout",
    "is_rejection",
    "late_failure",
    "outage_timeline",
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
    """Run the six flaw scenarios against the chapter's breaker and the reference one.

    Both breakers get ``failure_threshold=5`` and ``recovery_timeout=30``. The reference
    one is configured as lesson 06 describes: ``is_failure=http_failure`` (and the call
    raises for 5xx) for flaw 2, a failure-rate window of 50 % over the last 10 calls for
    flaw 6, and its own monotonic clock, which no step can move, for flaw 4 (the chapter's
    clock is stepped back 60 s).

    Returns:
        One ``FlawRow`` per flaw, in the lesson's order.
    """
    chapter = ChapterCircuitBreaker

    def frozen() -> ManualClock:
        return ManualClock()  # no time passes in these scenarios

    return [
        FlawRow(
            "1. calls reaching a dead backend after the timeout (of 20)",
            herd_after_timeout(chapter).reached,
            herd_after_timeout(CircuitBreaker).reached,
        ),
        FlawRow(
            "2. requests reaching a service answering 503 (of 20)",
            calls_to_failing_service(chapter(5, 30, clock=frozen())).reached,
            calls_to_failing_service(
                CircuitBreaker(5, 30, clock=frozen(), is_failure=http_failure),
                raise_for_status=True,
            ).reached,
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
