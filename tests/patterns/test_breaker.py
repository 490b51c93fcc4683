"""Tests for the reference circuit breaker (distlab.patterns.breaker).

Time comes from a ManualClock or the virtual-time loop; "slow" calls block on Events,
so every ordering below is forced, never slept for.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import distlab
from distlab.errors import CircuitOpenError
from distlab.patterns.breaker import CircuitBreaker, State, http_failure

WAIT = 5.0  # real seconds a test waits for a thread before declaring it stuck


class Boom(Exception):
    """The failure the protected functions raise."""


class Benign(Exception):
    """An exception the tests tell is_failure not to count."""


def fail() -> None:
    """Raise a fresh Boom."""
    raise Boom("backend down")


def ok() -> str:
    """Succeed."""
    return "ok"


def make(
    threshold: int = 3, timeout: float = 30.0, **options: Any
) -> tuple[CircuitBreaker, distlab.ManualClock]:
    """Return a breaker on a fresh ManualClock, and the clock."""
    clock = distlab.ManualClock()
    return CircuitBreaker(threshold, timeout, clock=clock, **options), clock


def trip(breaker: CircuitBreaker) -> None:
    """Fail failure_threshold times so that the breaker opens."""
    for _ in range(breaker.failure_threshold):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "open"


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start target in a thread; its result or exception lands in the returned dict."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


class Blocker:
    """A protected function that signals when it starts and waits to be released."""

    def __init__(self, outcome: Callable[[], Any] = ok) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.outcome = outcome

    def __call__(self) -> Any:
        self.entered.set()
        assert self.release.wait(WAIT), "the test never released the blocked call"
        return self.outcome()


# Opening -------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_threshold_consecutive_failures_open_the_breaker(threshold: int) -> None:
    """The breaker stays closed for threshold-1 failures and opens at the threshold."""
    breaker, _ = make(threshold)
    for _ in range(threshold - 1):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "closed"
    assert breaker.failure_count == threshold - 1
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state == "open"


def test_success_resets_the_consecutive_count() -> None:
    """Two failures, a success, two failures: never three in a row, so still closed."""
    breaker, _ = make(3)
    for func in (fail, fail, ok, fail, fail):
        with contextlib.suppress(Boom):
            breaker.call(func)
    assert breaker.state == "closed"
    assert breaker.failure_count == 2


# Rejecting while open ------------------------------------------------------------------
def test_open_breaker_rejects_without_calling_func() -> None:
    """While open, call raises CircuitOpenError and never reaches the function."""
    breaker, _ = make()
    trip(breaker)
    calls = []
    with pytest.raises(CircuitOpenError):
        breaker.call(calls.append, 1)
    assert calls == []


def test_open_error_names_the_breaker_and_counts_down_retry_after() -> None:
    """CircuitOpenError carries the name and the seconds left until a trial."""
    breaker, clock = make(timeout=30.0, name="payments")
    trip(breaker)
    clock.advance(12.5)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.name == "payments"
    assert info.value.retry_after == pytest.approx(17.5)


def test_breaker_stays_open_until_the_timeout_has_passed() -> None:
    """Just before recovery_timeout it is open; at recovery_timeout it is half-open."""
    breaker, clock = make(timeout=30.0)
    trip(breaker)
    clock.advance(29.999)
    assert breaker.state == "open"
    clock.advance(0.001)
    assert breaker.state == "half_open"


def test_zero_recovery_timeout_goes_half_open_at_once() -> None:
    """recovery_timeout=0 lets the next call probe immediately."""
    breaker, _ = make(timeout=0.0)
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"


# Half-open: a single trial -------------------------------------------------------------
def test_half_open_lets_exactly_one_trial_through_at_a_time() -> None:
    """While the trial is in flight every other caller is rejected with retry_after 0."""
    breaker, clock = make()
    trip(breaker)
    clock.advance(30)
    trial = Blocker()
    thread, box = in_thread(lambda: breaker.call(trial))
    assert trial.entered.wait(WAIT)
    reached = []
    for _ in range(5):
        with pytest.raises(CircuitOpenError) as info:
            breaker.call(reached.append, 1)
        assert info.value.retry_after == 0.0
    assert reached == []
    trial.release.set()
    thread.join(WAIT)
    assert box == {"result": "ok"}
    assert breaker.state == "closed"


def test_concurrent_callers_in_half_open_yield_one_trial() -> None:
    """Of 20 threads arriving together after the timeout, one probes and 19 are rejected."""
    breaker, clock = make()
    trip(breaker)
    clock.advance(30)
    trial = Blocker()
    start = threading.Barrier(20)
    rejections = threading.Semaphore(0)

    def caller() -> Any:
        start.wait(WAIT)
        try:
            return breaker.call(trial)
        except CircuitOpenError:
            rejections.release()
            raise

    threads = [in_thread(caller) for _ in range(20)]
    # The trial is still blocked, so 19 rejections must happen while it is in flight.
    assert all(rejections.acquire(timeout=WAIT) for _ in range(19))
    assert trial.entered.is_set()
    trial.release.set()
    for thread, _ in threads:
        thread.join(WAIT)
    rejected = sum(isinstance(box.get("error"), CircuitOpenError) for _, box in threads)
    succeeded = sum(box.get("result") == "ok" for _, box in threads)
    assert (succeeded, rejected) == (1, 19)


def test_trial_success_closes_with_a_zero_count() -> None:
    """A successful trial closes the breaker and it takes a full threshold to reopen."""
    breaker, clock = make(3)
    trip(breaker)
    clock.advance(30)
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"
    assert breaker.failure_count == 0
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "closed"


def test_trial_failure_reopens_with_a_fresh_timer() -> None:
    """A failed trial at t=45 reopens the breaker until t=75, not t=60."""
    breaker, clock = make(timeout=30.0)
    trip(breaker)
    clock.advance(45)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state == "open"
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(ok)
    assert info.value.retry_after == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state == "half_open"


def test_uncounted_trial_outcome_frees_the_trial_slot() -> None:
    """A trial ending in an ignored exception leaves half-open for the next caller."""
    breaker, clock = make(is_failure=lambda exc: not isinstance(exc, Benign))
    trip(breaker)
    clock.advance(30)

    def benign() -> None:
        raise Benign

    with pytest.raises(Benign):
        breaker.call(benign)
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"
    assert breaker.state == "closed"


def test_base_exception_in_trial_frees_the_slot_and_propagates() -> None:
    """A KeyboardInterrupt in the trial is no verdict: still half-open, slot free."""
    breaker, clock = make()
    trip(breaker)
    clock.advance(30)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"


# Late outcomes belong to the state they started in ---------------------------------------
def test_late_failure_does_not_extend_the_open_window() -> None:
    """A call that started while closed and fails after the breaker opened restarts no timer."""
    breaker, clock = make(3, 30.0)
    slow = Blocker(outcome=fail)
    thread, box = in_thread(lambda: breaker.call(slow))
    assert slow.entered.wait(WAIT)
    trip(breaker)  # opens at t=0
    clock.advance(10)
    slow.release.set()
    thread.join(WAIT)
    assert isinstance(box["error"], Boom)
    clock.advance(20)  # t=30: 30 s after opening, 20 s after the late failure
    assert breaker.state == "half_open"


def test_late_success_does_not_close_an_open_breaker() -> None:
    """A call admitted while closed that succeeds after the breaker opened changes nothing."""
    breaker, _ = make(3)
    slow = Blocker()
    thread, box = in_thread(lambda: breaker.call(slow))
    assert slow.entered.wait(WAIT)
    trip(breaker)
    slow.release.set()
    thread.join(WAIT)
    assert box == {"result": "ok"}
    assert breaker.state == "open"


def test_late_success_resets_a_pending_count() -> None:
    """A fast-path success finishing after a failure in the same closed period resets it."""
    breaker, _ = make(3)
    slow = Blocker()
    thread, box = in_thread(lambda: breaker.call(slow))
    assert slow.entered.wait(WAIT)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.failure_count == 1
    slow.release.set()
    thread.join(WAIT)
    assert box == {"result": "ok"}
    assert breaker.failure_count == 0


# is_failure ----------------------------------------------------------------------------
def test_ignored_exceptions_propagate_and_count_as_neither() -> None:
    """fail, ignored, fail: the ignored error neither counts nor resets (count 2)."""
    breaker, _ = make(3, is_failure=lambda exc: not isinstance(exc, Benign))
    benign_error = Benign("not the backend's fault")

    def benign() -> None:
        raise benign_error

    with pytest.raises(Boom):
        breaker.call(fail)
    with pytest.raises(Benign) as info:
        breaker.call(benign)
    assert info.value is benign_error
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.failure_count == 2
    assert breaker.state == "closed"


def test_is_failure_receives_the_raised_exception() -> None:
    """is_failure is called with the very exception object the function raised."""
    seen: list[BaseException] = []
    error = Boom()

    def raise_it() -> None:
        raise error

    breaker, _ = make(is_failure=lambda exc: seen.append(exc) is None)
    with pytest.raises(Boom):
        breaker.call(raise_it)
    assert seen == [error]
    assert seen[0] is error


def test_is_failure_that_raises_frees_the_trial() -> None:
    """A buggy is_failure propagates its error and does not wedge half-open."""
    verdicts = iter([True, True, True])

    def judge(exc: BaseException) -> bool:
        try:
            return next(verdicts)
        except StopIteration:
            raise RuntimeError("judge broke") from None

    breaker, clock = make(is_failure=judge)
    trip(breaker)
    clock.advance(30)
    with pytest.raises(RuntimeError, match="judge broke"):
        breaker.call(fail)
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (503, True),
        (500, True),
        (599, True),
        (408, True),
        (429, True),
        (400, False),
        (404, False),
        (409, False),
        (499, False),
        (ValueError("bad input"), False),
    ],
)
def test_http_failure_counts_transport_errors_5xx_408_and_429(
    error: BaseException | int, expected: bool
) -> None:
    """http_failure: transport errors, 5xx, 408 and 429 are failures; other 4xx are not."""
    if isinstance(error, int):
        request = httpx.Request("GET", "http://svc/")
        response = httpx.Response(error, request=request)
        error = httpx.HTTPStatusError("status", request=request, response=response)
    assert http_failure(error) is expected


# Pass-through --------------------------------------------------------------------------
def test_arguments_and_return_value_pass_through() -> None:
    """call passes args and kwargs on and returns the very object func returned."""
    breaker, _ = make()
    token = object()

    def echo(*args: Any, **kwargs: Any) -> Any:
        return args, kwargs, token

    args, kwargs, got = breaker.call(echo, 1, 2, key="v")
    assert (args, kwargs) == ((1, 2), {"key": "v"})
    assert got is token


@pytest.mark.parametrize("where", ["closed", "closed_with_failures", "half_open"])
def test_exceptions_pass_through_as_the_same_object(where: str) -> None:
    """In every state that calls func, its exception comes out unwrapped and identical."""
    breaker, clock = make(3)
    if where == "closed_with_failures":
        with pytest.raises(Boom):
            breaker.call(fail)
    elif where == "half_open":
        trip(breaker)
        clock.advance(30)
    error = Boom("the original")

    def raise_it() -> None:
        raise error

    with pytest.raises(Boom) as info:
        breaker.call(raise_it)
    assert info.value is error


# Thread safety -------------------------------------------------------------------------
@pytest.mark.parametrize("pending_failure", [False, True])
def test_func_runs_without_the_lock_held(pending_failure: bool) -> None:
    """Two threads are inside func at once, so no lock serialises the calls."""
    breaker, _ = make(3)
    if pending_failure:  # the slow path, which does take the lock around func
        with pytest.raises(Boom):
            breaker.call(fail)
    both_inside = threading.Barrier(2)

    def meet() -> str:
        both_inside.wait(WAIT)  # BrokenBarrierError if the other thread cannot get in
        return "met"

    threads = [in_thread(lambda: breaker.call(meet)) for _ in range(2)]
    for thread, _ in threads:
        thread.join(WAIT)
    assert [box for _, box in threads] == [{"result": "met"}, {"result": "met"}]


def test_listeners_run_without_the_lock_held() -> None:
    """A listener may read the breaker's state (it would deadlock under the lock)."""
    seen: list[State] = []
    breaker, _ = make(1, listeners=[lambda b, old, new: seen.append(b.state)])
    with pytest.raises(Boom):
        breaker.call(fail)
    assert seen == ["open"]


def test_concurrent_failures_are_all_counted_and_open_once() -> None:
    """8 threads x 50 failures: count exact, then exactly one closed -> open change."""
    changes: list[tuple[str, str]] = []
    breaker, _ = make(401, listeners=[lambda b, old, new: changes.append((old, new))])
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait(WAIT)
        for _ in range(50):
            with contextlib.suppress(Boom):
                breaker.call(fail)

    threads = [in_thread(hammer) for _ in range(8)]
    for thread, _ in threads:
        thread.join(WAIT * 2)
    assert breaker.failure_count == 400
    assert changes == []
    with pytest.raises(Boom):
        breaker.call(fail)
    assert changes == [("closed", "open")]


# Validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"recovery_timeout": float("nan")}, "recovery_timeout"),
        ({"recovery_timeout": float("inf")}, "recovery_timeout"),
        ({"failure_rate": 0.0}, "failure_rate"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": 0.5, "window": 0}, "window"),
        ({"failure_rate": 0.5, "window": 10, "min_calls": 0}, "min_calls"),
        ({"failure_rate": 0.5, "window": 10, "min_calls": 11}, "min_calls"),
        ({"window": 10}, "failure_rate"),
        ({"min_calls": 3}, "failure_rate"),
        ({"name": ""}, "name"),
    ],
)
def test_out_of_range_options_raise_value_error_naming_them(
    options: dict[str, Any], parameter: str
) -> None:
    """Each bad option raises ValueError whose message names the parameter."""
    with pytest.raises(ValueError, match=parameter):
        CircuitBreaker(**options)


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"clock": 0.0}, "clock"),
        ({"is_failure": True}, "is_failure"),
        ({"listeners": [None]}, "listeners"),
        ({"failure_rate": "half"}, "failure_rate"),
        ({"name": 42}, "name"),
        ({"failure_rate": 0.5, "window": 2.5}, "window"),
    ],
)
def test_wrongly_typed_options_raise_type_error_naming_them(
    options: dict[str, Any], parameter: str
) -> None:
    """Each wrongly typed option raises TypeError whose message names the parameter."""
    with pytest.raises(TypeError, match=parameter):
        CircuitBreaker(**options)


def test_defaults_match_the_documented_signature() -> None:
    """Defaults: 5 failures, 30 seconds, named "breaker", closed."""
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (5, 30.0)
    assert (breaker.name, breaker.state) == ("breaker", "closed")


# Failure-rate window -------------------------------------------------------------------
def test_alternating_failures_open_by_rate_not_by_count() -> None:
    """At a 50 % failure rate the count never reaches 5, but the rate opens at call 10."""
    breaker, _ = make(5, failure_rate=0.5, window=10)
    calls = 0
    while breaker.state == "closed" and calls < 100:
        with contextlib.suppress(Boom):
            breaker.call(fail if calls % 2 == 0 else ok)
        calls += 1
    assert calls == 10
    assert breaker.state == "open"


def test_rate_is_not_judged_before_min_calls() -> None:
    """Three failures out of three stay closed while min_calls is 4; the fourth opens."""
    breaker, _ = make(100, failure_rate=0.5, window=10, min_calls=4)
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "closed"
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state == "open"


def test_old_outcomes_slide_out_of_the_window() -> None:
    """With window 4 and rate 0.75, a failure five calls ago no longer counts."""
    breaker, _ = make(100, failure_rate=0.75, window=4)
    for func in (fail, ok, ok, ok, ok, fail, fail):  # window now: ok ok fail fail
        with contextlib.suppress(Boom):
            breaker.call(func)
    assert breaker.state == "closed"
    with pytest.raises(Boom):
        breaker.call(fail)  # window: ok fail fail fail -> 3/4
    assert breaker.state == "open"


def test_window_starts_empty_after_recovery() -> None:
    """After a successful trial, old failures do not count against the closed breaker."""
    breaker, clock = make(100, failure_rate=0.5, window=4)
    for _ in range(4):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "open"
    clock.advance(30)
    breaker.call(ok)
    for _ in range(3):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "closed"  # 3 calls < min_calls (= window = 4)


def test_consecutive_threshold_still_applies_with_a_rate() -> None:
    """failure_threshold consecutive failures open even before the window is full."""
    breaker, _ = make(2, failure_rate=0.9, window=10)
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "open"


# Listeners -----------------------------------------------------------------------------
def test_listeners_hear_every_transition_in_order() -> None:
    """closed -> open -> half_open -> open -> half_open -> closed, with the breaker."""
    heard: list[tuple[CircuitBreaker, str, str]] = []
    breaker, clock = make(2, listeners=[lambda b, old, new: heard.append((b, old, new))])
    trip(breaker)
    clock.advance(30)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(30)
    breaker.call(ok)
    assert [(old, new) for _, old, new in heard] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert all(b is breaker for b, _, _ in heard)


def test_failing_listener_is_logged_and_does_not_break_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged; the call still raises the function's error."""

    def broken(b: CircuitBreaker, old: State, new: State) -> None:
        raise RuntimeError("listener bug")

    later: list[str] = []
    breaker, _ = make(1, listeners=[broken, lambda b, old, new: later.append(new)])
    with caplog.at_level(logging.ERROR, logger="distlab.patterns.breaker"), pytest.raises(Boom):
        breaker.call(fail)
    assert "listener" in caplog.text
    assert later == ["open"]


# Async ---------------------------------------------------------------------------------
def test_acall_opens_and_recovers_in_virtual_time() -> None:
    """On distlab.run, three failures open it; 30 virtual seconds later a trial closes it."""

    async def main() -> list[tuple[float, str]]:
        breaker = CircuitBreaker(3, 30.0, clock=distlab.clock())
        log = []
        healthy = False

        async def backend() -> str:
            await asyncio.sleep(1)
            if not healthy:
                raise Boom
            return "ok"

        for _ in range(3):
            with pytest.raises(Boom):
                await breaker.acall(backend)
        log.append((distlab.now(), breaker.state))
        with pytest.raises(CircuitOpenError) as info:
            await breaker.acall(backend)
        assert info.value.retry_after == 30.0
        await asyncio.sleep(30)
        healthy = True
        result = await breaker.acall(backend)
        log.append((distlab.now(), result))
        log.append((distlab.now(), breaker.state))
        return log

    assert distlab.run(main) == [(3.0, "open"), (34.0, "ok"), (34.0, "closed")]


def test_acall_half_open_admits_one_task_at_a_time() -> None:
    """Two tasks after the timeout: the first probes, the second is rejected."""

    async def main() -> tuple[str, str]:
        breaker = CircuitBreaker(1, 30.0, clock=distlab.clock())
        with pytest.raises(Boom):
            await breaker.acall(asyncio.to_thread, fail)
        await asyncio.sleep(30)
        entered, release = asyncio.Event(), asyncio.Event()

        async def trial() -> str:
            entered.set()
            await release.wait()
            return "probed"

        probe = asyncio.create_task(breaker.acall(trial))
        await entered.wait()
        with pytest.raises(CircuitOpenError):
            await breaker.acall(trial)
        release.set()
        return await probe, breaker.state

    assert distlab.run(main) == ("probed", "closed")


def test_cancelling_the_trial_frees_the_slot() -> None:
    """A cancelled trial is no verdict: still half-open and the next task may probe."""

    async def main() -> tuple[str, str]:
        breaker = CircuitBreaker(1, 30.0, clock=distlab.clock())
        with pytest.raises(Boom):
            await breaker.acall(asyncio.to_thread, fail)
        await asyncio.sleep(30)
        hang = asyncio.create_task(breaker.acall(asyncio.sleep, 3600))
        await asyncio.sleep(1)
        hang.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hang
        state = breaker.state
        await breaker.acall(asyncio.sleep, 0)
        return state, breaker.state

    assert distlab.run(main) == ("half_open", "closed")


def test_acall_passes_exceptions_and_results_through() -> None:
    """acall returns the awaited object and raises the very exception, unwrapped."""
    token, error = object(), Boom()

    async def give() -> object:
        return token

    async def throw() -> None:
        raise error

    async def main() -> None:
        breaker = CircuitBreaker(clock=distlab.clock())
        assert await breaker.acall(give) is token
        with pytest.raises(Boom) as info:
            await breaker.acall(throw)
        assert info.value is error

    distlab.run(main)


def test_acall_rejects_a_plain_function() -> None:
    """acall on a sync function is a TypeError that counts as neither outcome."""

    async def main() -> int:
        breaker = CircuitBreaker(1, clock=distlab.clock())
        with pytest.raises(TypeError, match="async function"):
            await breaker.acall(ok)  # type: ignore[arg-type]
        assert breaker.state == "closed"
        return breaker.failure_count

    assert distlab.run(main) == 0


def test_async_def_passed_to_sync_call_is_a_type_error() -> None:
    """call(async_fn) raises TypeError naming acall, leaves no un-awaited coroutine."""
    breaker, _ = make(1)
    ran = []

    async def backend() -> None:
        ran.append(1)
        raise Boom

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        with pytest.raises(TypeError, match="acall"):
            breaker.call(backend)
        gc.collect()
    assert ran == []
    assert breaker.state == "closed"


def test_async_def_rejected_in_half_open_frees_the_trial() -> None:
    """The TypeError of a misused trial leaves the slot free for a proper probe."""
    breaker, clock = make(1)
    trip(breaker)
    clock.advance(30)

    async def backend() -> str:
        return "ok"

    with pytest.raises(TypeError):
        breaker.call(backend)
    assert breaker.state == "half_open"
    assert breaker.call(ok) == "ok"


def test_decorator_wraps_sync_and_async_functions() -> None:
    """@breaker protects both kinds of function and keeps their names."""
    breaker, _ = make(1)

    @breaker
    def sync_fail() -> None:
        raise Boom

    @breaker
    async def async_ok() -> str:
        return "ok"

    assert sync_fail.__name__ == "sync_fail"
    assert distlab.run(async_ok) == "ok"
    with pytest.raises(Boom):
        sync_fail()
    with pytest.raises(CircuitOpenError):
        distlab.run(async_ok)
