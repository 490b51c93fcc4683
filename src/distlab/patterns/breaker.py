"""A three-state circuit breaker for sync and async calls: the course's reference.

States and the moves between them::

    closed ──(failure_threshold consecutive failures, or failure rate reached)──> open
    open ──(recovery_timeout seconds by clock)──> half_open
    half_open ──(the single trial call succeeds)──> closed
    half_open ──(the single trial call fails)──> open (with a fresh timer)

Rules that the chapter's naive breaker gets wrong and this one keeps:

- In half-open exactly one trial call at a time reaches the dependency; everybody
  else gets ``CircuitOpenError`` until the trial has finished.
- Outcomes are tied to the state they were admitted in: a slow call that started
  before the breaker opened cannot, by failing late, restart the open timer, nor close
  the breaker by succeeding late.
- ``call`` refuses an ``async def`` (it would return an un-awaited coroutine and look
  like a success); use ``await breaker.acall(...)``.
- Time comes from an injectable monotonic ``clock`` (never the wall clock).
- The function runs without any lock held, so a slow dependency never serialises
  callers; in the common case (closed, no failure pending) no lock is taken at all.

Typical use::

    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30.0, name="payments")
    try:
        receipt = breaker.call(pay, order)
    except CircuitOpenError as exc:
        show_retry_banner(exc.retry_after)

In virtual time pass ``clock=distlab.clock()`` inside ``distlab.run``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Literal, ParamSpec, TypeVar, cast

from distlab.errors import CircuitOpenError

__all__ = ["TRANSIENT_4XX", "CircuitBreaker", "Listener", "State", "http_failure"]

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

State = Literal["closed", "open", "half_open"]
Listener = Callable[["CircuitBreaker", State, State], object]
"""A state-change callback: ``listener(breaker, old_state, new_state)``."""

_log = logging.getLogger(__name__)
_CoroutineType: Final = types.CoroutineType

# Outcomes of one admitted call.
_SUCCESS: Final = 0
_FAILURE: Final = 1
_IGNORED: Final = 2  # is_failure said no, or a BaseException such as cancellation

_DEFAULT_WINDOW: Final = 20


def _always(exc: BaseException) -> bool:
    """Count every exception as a failure (the default ``is_failure``)."""
    return True


def http_failure(exc: BaseException) -> bool:
    """Tell whether an httpx error means the remote service is failing.

    Use it as ``is_failure=http_failure`` and call ``response.raise_for_status()``
    inside the protected function. Transport errors (refused connections, timeouts),
    5xx answers, ``408 Request Timeout`` and ``429 Too Many Requests`` count as
    failures: the dependency is down, overloaded or shedding load. Other 4xx answers
    mean the caller's own request was wrong, and do not count, so one client's bad
    requests never open the breaker for everybody. This is the split resilience
    libraries make by default (``HttpClientResiliencePredicates.IsTransient`` in
    Microsoft.Extensions.Http.Resilience, .NET).

    Args:
        exc: the exception raised by the protected function.

    Returns:
        True for ``httpx.TransportError`` and for ``httpx.HTTPStatusError`` with a
        status of 500 or more, 408 or 429; False for anything else.
    """
    import httpx  # imported here so that the breaker itself does not need httpx

    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in TRANSIENT_4XX
    return isinstance(exc, httpx.TransportError)


TRANSIENT_4XX: Final = frozenset({408, 429})
"""The 4xx statuses that ``http_failure`` counts: the dependency, not the request, is at fault."""


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return value


class CircuitBreaker:
    """Stop calling a failing dependency for a while, then probe it with one call.

    Args:
        failure_threshold: consecutive failures (in the closed state) that open the
            breaker; >= 1.
        recovery_timeout: seconds, read from ``clock``, that the breaker stays open
            before it lets one trial call through; >= 0 and finite.
        clock: zero-argument callable returning monotonic seconds. Defaults to
            ``time.monotonic``; inject ``distlab.clock()`` or a ``distlab.ManualClock``.
        is_failure: decides whether an exception raised by the protected function
            counts as a failure. Exceptions for which it returns False propagate and
            count as neither failure nor success. Defaults to counting every
            ``Exception``; ``BaseException``s such as cancellation never count.
        name: names the protected dependency in ``CircuitOpenError`` and logs.
        failure_rate: optional failure-rate trigger in (0, 1]: the breaker also opens
            when, over the last ``window`` calls, failures / calls >= failure_rate
            (checked after every call once ``min_calls`` calls are in the window).
        window: number of most recent calls the failure rate is computed over (>= 1;
            only with ``failure_rate``; default 20).
        min_calls: calls the window must hold before the rate is checked
            (1 <= min_calls <= window; default: ``window``).
        listeners: callables ``listener(breaker, old_state, new_state)`` told of every
            state change, after the change, outside the breaker's lock. An exception in
            a listener is logged and does not affect the call.

    Raises:
        ValueError: when an option is out of range (the message names it).
        TypeError: when an option has the wrong type.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        is_failure: Callable[[BaseException], bool] = _always,
        name: str = "breaker",
        failure_rate: float | None = None,
        window: int | None = None,
        min_calls: int | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._threshold = _check_int("failure_threshold", failure_threshold, 1)
        if isinstance(recovery_timeout, bool) or not isinstance(recovery_timeout, int | float):
            raise TypeError(
                "recovery_timeout must be a number of seconds, "
                f"got {type(recovery_timeout).__name__}"
            )
        if not (math.isfinite(recovery_timeout) and recovery_timeout >= 0):
            raise ValueError(
                f"recovery_timeout must be >= 0 and finite (seconds), got {recovery_timeout!r}"
            )
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        if not callable(is_failure):
            raise TypeError("is_failure must be a callable taking the exception")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not name:
            raise ValueError("name must be a non-empty string, got ''")
        if failure_rate is None:
            if window is not None or min_calls is not None:
                raise ValueError(
                    "window and min_calls configure the failure-rate trigger: "
                    "pass failure_rate as well (a fraction in (0, 1])"
                )
        else:
            if isinstance(failure_rate, bool) or not isinstance(failure_rate, int | float):
                raise TypeError(
                    f"failure_rate must be a fraction, got {type(failure_rate).__name__}"
                )
            if not 0 < failure_rate <= 1:
                raise ValueError(f"failure_rate must be in (0, 1], got {failure_rate!r}")
            window = _check_int("window", _DEFAULT_WINDOW if window is None else window, 1)
            min_calls = _check_int("min_calls", window if min_calls is None else min_calls, 1)
            if min_calls > window:
                raise ValueError(
                    f"min_calls must be between 1 and window ({window}), got {min_calls!r}"
                )
        listeners = tuple(listeners)
        for listener in listeners:
            if not callable(listener):
                raise TypeError(f"listeners must be callables, got {listener!r}")

        self._timeout = float(recovery_timeout)
        self._clock = clock
        self._is_failure = is_failure
        self._name = name
        self._rate = None if failure_rate is None else float(failure_rate)
        self._min_calls = min_calls or 0
        self._outcomes: deque[bool] | None = None if failure_rate is None else deque(maxlen=window)
        self._listeners: tuple[Listener, ...] = listeners

        self._lock = threading.Lock()
        self._state: State = "closed"
        # Every state change starts a new generation; a call remembers the generation
        # it was admitted in, and outcomes from an older generation are ignored.
        self._gen = 0
        self._failures = 0  # consecutive failures in the closed state
        self._window_failures = 0  # failures among self._outcomes
        self._opened_at = 0.0
        self._trial = False  # a half-open trial call is in flight
        # The lock-free fast path: the current generation while the breaker is closed
        # with nothing to record on success (no failure pending, no rate window);
        # -1 otherwise. Written only under the lock, read without it.
        self._fast = 0 if self._outcomes is None else -1

    # Introspection ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name of the protected dependency."""
        return self._name

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker."""
        return self._threshold

    @property
    def recovery_timeout(self) -> float:
        """Seconds the breaker stays open before a trial call."""
        return self._timeout

    @property
    def state(self) -> State:
        """The state now: ``"closed"``, ``"open"`` or ``"half_open"``.

        Reading it checks the clock, so an open breaker whose timeout has passed
        reads (and becomes) ``"half_open"``; listeners hear of that change then.
        """
        changes: list[tuple[State, State]] = []
        with self._lock:
            state = self._refresh(changes)
        self._notify(changes)
        return state

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted in the closed state (0 in other states)."""
        return self._failures

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self._name!r}, state={self._state!r}, "
            f"failures={self._failures}/{self._threshold}, "
            f"recovery_timeout={self._timeout!r})"
        )

    # Calls -----------------------------------------------------------------------------
    def call(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``func(*args, **kwargs)`` through the breaker and return its result.

        Returns:
            What ``func`` returns, unchanged.

        Raises:
            CircuitOpenError: when the breaker is open, or half-open with a trial call
                already in flight; ``func`` is not called.
            TypeError: when ``func`` returns a coroutine (an ``async def``): use
                ``await breaker.acall(func, ...)`` instead.
            Exception: whatever ``func`` raises, the same object, unwrapped.
        """
        gen = self._fast
        if gen >= 0:
            # Fast path: closed with no failure pending. No lock, no clock.
            try:
                result = func(*args, **kwargs)
            except Exception as exc:
                self._failed(gen, False, exc)
                raise
            if type(result) is _CoroutineType:
                self._misused(gen, False, func, result)
            if self._fast != gen:
                self._finish(gen, False, _SUCCESS)
            return result

        gen, trial = self._admit()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            self._failed(gen, trial, exc)
            raise
        except BaseException:
            self._finish(gen, trial, _IGNORED)
            raise
        if type(result) is _CoroutineType:
            self._misused(gen, trial, func, result)
        self._finish(gen, trial, _SUCCESS)
        return result

    async def acall(
        self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``func(*args, **kwargs)`` through the breaker and return its result.

        Same rules as ``call``; the breaker can be shared by threads and event loops.
        Cancelling the awaiting task counts as neither success nor failure (and frees
        the half-open trial slot).

        Returns:
            What the awaited call returns, unchanged.

        Raises:
            CircuitOpenError: when the breaker refuses the call; ``func`` is not called.
            TypeError: when ``func`` does not return an awaitable: use ``call``.
            Exception: whatever the awaited call raises, the same object, unwrapped.
        """
        gen = self._fast
        trial = False
        if gen < 0:
            gen, trial = self._admit()
        try:
            awaitable = func(*args, **kwargs)
        except Exception as exc:
            self._failed(gen, trial, exc)
            raise
        except BaseException:
            self._finish(gen, trial, _IGNORED)
            raise
        if not inspect.isawaitable(awaitable):
            self._finish(gen, trial, _IGNORED)
            raise TypeError(
                f"acall() needs an async function, but {func!r} returned "
                f"{type(awaitable).__name__}; use breaker.call() for a plain function"
            )
        try:
            result = await awaitable
        except Exception as exc:
            self._failed(gen, trial, exc)
            raise
        except BaseException:
            self._finish(gen, trial, _IGNORED)
            raise
        if trial or self._fast != gen:
            self._finish(gen, trial, _SUCCESS)
        return result

    def __call__(self, func: F) -> F:
        """Decorate ``func`` so that every call goes through this breaker.

        An ``async def`` is wrapped with ``acall``, anything else with ``call``.
        """
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(func, *args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(func, *args, **kwargs)

        return cast(F, wrapper)

    # Machinery -------------------------------------------------------------------------
    def _refresh(self, changes: list[tuple[State, State]]) -> State:
        """Move open -> half_open when the timeout has passed (lock held)."""
        if self._state == "open" and self._clock() - self._opened_at >= self._timeout:
            self._move("half_open", changes)
        return self._state

    def _move(self, new: State, changes: list[tuple[State, State]]) -> None:
        """Change state, start a new generation and reset counters (lock held)."""
        old = self._state
        self._state = new
        self._gen += 1
        self._failures = 0
        self._trial = False
        if self._outcomes is not None:
            self._outcomes.clear()
            self._window_failures = 0
        if new == "open":
            self._opened_at = self._clock()
        self._fast = self._gen if new == "closed" and self._outcomes is None else -1
        changes.append((old, new))

    def _admit(self) -> tuple[int, bool]:
        """Decide whether a call may go ahead; return (generation, is_trial)."""
        changes: list[tuple[State, State]] = []
        try:
            with self._lock:
                state = self._refresh(changes)
                if state == "closed":
                    return self._gen, False
                if state == "half_open":
                    if not self._trial:
                        self._trial = True
                        return self._gen, True
                    # A trial is in flight: a new one may start as soon as it ends.
                    retry_after = 0.0
                else:
                    retry_after = self._opened_at + self._timeout - self._clock()
        finally:
            self._notify(changes)
        raise CircuitOpenError(self._name, retry_after)

    def _failed(self, gen: int, trial: bool, exc: Exception) -> None:
        """Classify ``exc`` with is_failure (no lock held) and record the outcome."""
        try:
            failure = self._is_failure(exc)
        except BaseException:
            self._finish(gen, trial, _IGNORED)
            raise
        self._finish(gen, trial, _FAILURE if failure else _IGNORED)

    def _misused(self, gen: int, trial: bool, func: object, coro: Any) -> None:
        """Reject a coroutine returned to sync ``call``: close it and raise TypeError."""
        coro.close()  # nothing of it ran; closing avoids a "never awaited" warning
        self._finish(gen, trial, _IGNORED)
        raise TypeError(
            f"call() got a coroutine from {func!r}: an async function never fails "
            "until it is awaited, so the breaker would count every call as a success; "
            "use `await breaker.acall(func, ...)`"
        )

    def _finish(self, gen: int, trial: bool, outcome: int) -> None:
        """Record the outcome of a call admitted in generation ``gen``."""
        changes: list[tuple[State, State]] = []
        with self._lock:
            if gen != self._gen:
                return  # admitted before a state change: too late to count
            if self._state == "half_open":
                if trial:
                    if outcome == _SUCCESS:
                        self._move("closed", changes)
                    elif outcome == _FAILURE:
                        self._move("open", changes)
                    else:
                        self._trial = False  # no verdict; the next caller probes
            elif self._state == "closed" and outcome != _IGNORED:
                failed = outcome == _FAILURE
                self._failures = self._failures + 1 if failed else 0
                if self._failures >= self._threshold or self._rate_reached(failed):
                    self._move("open", changes)
                elif self._outcomes is None:
                    self._fast = -1 if self._failures else self._gen
        self._notify(changes)

    def _rate_reached(self, failed: bool) -> bool:
        """Add an outcome to the rate window; tell whether the rate trips (lock held)."""
        outcomes = self._outcomes
        if outcomes is None or self._rate is None:
            return False
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            self._window_failures -= 1
        outcomes.append(failed)
        self._window_failures += failed
        calls = len(outcomes)
        return calls >= self._min_calls and self._window_failures / calls >= self._rate

    def _notify(self, changes: list[tuple[State, State]]) -> None:
        """Tell the listeners about state changes (never with the lock held)."""
        for old, new in changes:
            _log.info("circuit %r: %s -> %s", self._name, old, new)
            for listener in self._listeners:
                try:
                    listener(self, old, new)
                except Exception:
                    _log.exception("listener %r of circuit %r failed", listener, self._name)
