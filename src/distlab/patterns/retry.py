"""Retries done right: capped exponential backoff with jitter, and a retry budget.

Backoff strategies, as Marc Brooker compares them in "Exponential Backoff And Jitter"
(AWS Architecture Blog, 2015; the formulas as in the post's simulator,
aws-samples/aws-arch-backoff-simulator). ``n`` counts retries from 0, so the first
retry waits about ``base`` (as gRPC's ``initialBackoff``)::

    constant(d)                 sleep = d                          (d = 0: no backoff at all)
    exponential(base, cap)      sleep = min(cap, base * 2 ** n)    (no jitter)
    full_jitter(base, cap)      sleep = random(0, min(cap, base * 2 ** n))
    equal_jitter(base, cap)     v = min(cap, base * 2 ** n);  sleep = v / 2 + random(0, v / 2)
    decorrelated_jitter(b, c)   sleep = min(c, random(b, 3 * previous sleep)), previous = b at first

``RetryBudget`` is the Google SRE book's per-client retry budget ("Handling Overload"):
a request is retried only while retries are below ``ratio`` (10 %) of the requests the
client sent recently, so a dead dependency sees about 1.1 times the normal load instead
of 3 times.

``retry_call`` and ``aretry_call`` put the pieces together::

    from distlab.patterns.retry import RetryBudget, full_jitter, retry_call

    budget = RetryBudget(ratio=0.1)
    answer = retry_call(lambda: client.get("/stock/42"), attempts=3,
                        backoff=full_jitter(0.1, 10.0), retry_on=httpx.TransportError,
                        budget=budget)

Under ``distlab.run`` the async version sleeps in virtual time: a backoff of minutes
costs nothing.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = [
    "Backoff",
    "BackoffKind",
    "RetryBudget",
    "aretry_call",
    "constant",
    "decorrelated_jitter",
    "equal_jitter",
    "exponential",
    "full_jitter",
    "retry_call",
]

T = TypeVar("T")
BackoffKind = Literal[
    "constant", "exponential", "full_jitter", "equal_jitter", "decorrelated_jitter"
]
RetryOn = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]


def _seconds(name: str, value: float, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each retry; build one with the functions of this module.

    Attributes:
        kind: the strategy (see the module docstring for the formulas).
        base: the first backoff, in seconds (for ``constant``: every backoff).
        cap: the longest backoff, in seconds.
    """

    kind: BackoffKind
    base: float
    cap: float

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the sleep before retry 0, 1, 2, ... without end, drawing from ``rng``.

        Each retry sequence (one request's retries) needs its own iterator: decorrelated
        jitter remembers its previous sleep.

        Args:
            rng: the random generator for the jitter; a fresh unseeded one when None.
        """
        draw = (rng or random.Random()).uniform
        base, cap = self.base, self.cap
        previous = base
        n = 0
        while True:
            if self.kind == "constant":
                yield base
            elif self.kind == "decorrelated_jitter":
                previous = min(cap, draw(base, previous * 3))
                yield previous
            else:
                ceiling = min(cap, base * 2.0**n) if n < 1024 else cap
                if self.kind == "exponential":
                    yield ceiling
                elif self.kind == "full_jitter":
                    yield draw(0.0, ceiling)
                else:  # equal_jitter
                    yield ceiling / 2 + draw(0.0, ceiling / 2)
            n += 1

    def __str__(self) -> str:
        if self.kind == "constant":
            return f"constant({self.base:g} s)"
        return f"{self.kind}(base={self.base:g} s, cap={self.cap:g} s)"


def constant(delay: float = 0.0) -> Backoff:
    """Wait ``delay`` seconds before every retry; ``constant(0)`` retries at once.

    Raises:
        ValueError: when ``delay`` is negative or not finite.
    """
    seconds = _seconds("delay", delay, positive=False)
    return Backoff("constant", seconds, seconds)


def _capped(kind: BackoffKind, base: float, cap: float) -> Backoff:
    low = _seconds("base", base, positive=True)
    high = _seconds("cap", cap, positive=True)
    if high < low:
        raise ValueError(f"cap must be >= base ({low!r} s), got {high!r}")
    return Backoff(kind, low, high)


def exponential(base: float, cap: float) -> Backoff:
    """Double the wait after each retry, from ``base`` up to ``cap`` seconds, without jitter.

    Raises:
        ValueError: when ``base`` or ``cap`` is not > 0, or ``cap < base``.
    """
    return _capped("exponential", base, cap)


def full_jitter(base: float, cap: float) -> Backoff:
    """Wait a uniform random time up to the capped exponential backoff (AWS's pick).

    Raises:
        ValueError: when ``base`` or ``cap`` is not > 0, or ``cap < base``.
    """
    return _capped("full_jitter", base, cap)


def equal_jitter(base: float, cap: float) -> Backoff:
    """Wait half the capped exponential backoff plus a uniform random time up to the other half.

    Raises:
        ValueError: when ``base`` or ``cap`` is not > 0, or ``cap < base``.
    """
    return _capped("equal_jitter", base, cap)


def decorrelated_jitter(base: float, cap: float) -> Backoff:
    """Wait a uniform random time between ``base`` and three times the previous wait, capped.

    Raises:
        ValueError: when ``base`` or ``cap`` is not > 0, or ``cap < base``.
    """
    return _capped("decorrelated_jitter", base, cap)


class RetryBudget:
    """Allow a retry only while retries stay below ``ratio`` of the requests sent recently.

    The Google SRE book ("Handling Overload") keeps this ratio per client at 10 %: when a
    dependency fails every request, the client's retries add about 11 % to its load (one
    retry per nine first attempts) instead of multiplying it.

    Count every first attempt with ``record_request()`` and ask ``try_retry()`` before
    each retry: it records the retry and returns True, or returns False (give up).

    Args:
        ratio: the largest share of retries among the requests sent in the window, in [0, 1).
        window: how far back the counts go, in seconds (> 0), so that a long quiet
            period cannot bank retries for a later outage; None counts forever.
        clock: a monotonic clock in seconds (``distlab.clock()`` in virtual time).

    Raises:
        ValueError: when ``ratio`` or ``window`` is out of range.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        *,
        window: float | None = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
            raise ValueError(f"ratio must be a share of requests in [0, 1), got {ratio!r}")
        if window is not None:
            _seconds("window", window, positive=True)
        self.ratio = float(ratio)
        self.window = window
        self._clock = clock
        self._events: deque[tuple[float, bool]] = deque()  # (time, is_retry)
        self._retries = 0

    def _expire(self) -> None:
        if self.window is None:
            return
        horizon = self._clock() - self.window
        events = self._events
        while events and events[0][0] <= horizon:
            _, was_retry = events.popleft()
            self._retries -= was_retry

    @property
    def requests(self) -> int:
        """Requests (first attempts and retries) sent in the window."""
        self._expire()
        return len(self._events)

    @property
    def retries(self) -> int:
        """Retries sent in the window."""
        self._expire()
        return self._retries

    def record_request(self) -> None:
        """Count a first attempt."""
        self._expire()
        self._events.append((self._clock(), False))

    def try_retry(self) -> bool:
        """Count a retry and return True if the budget allows it, else return False."""
        self._expire()
        if self._retries >= self.ratio * len(self._events):
            return False
        self._events.append((self._clock(), True))
        self._retries += 1
        return True

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio!r}, retries={self.retries}, requests={self.requests})"
        )


def _should_retry(retry_on: RetryOn, exc: Exception) -> bool:
    if isinstance(retry_on, type | tuple):
        return isinstance(exc, retry_on)
    return bool(retry_on(exc))


def _check_attempts(attempts: int) -> None:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"attempts must be an int >= 1 (the first try included), got {attempts!r}")


def retry_call(
    func: Callable[[], T],
    *,
    attempts: int = 3,
    backoff: Backoff | None = None,
    retry_on: RetryOn = Exception,
    budget: RetryBudget | None = None,
    sleep: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``func()`` until it returns, at most ``attempts`` times, backing off in between.

    Args:
        func: the call to make (wrap arguments with a lambda or ``functools.partial``).
        attempts: tries in all, the first included (>= 1).
        backoff: the wait before each retry; ``full_jitter(0.1, 10.0)`` when None.
        retry_on: exception types worth retrying, or a predicate on the exception; any
            other exception is raised at once.
        budget: a ``RetryBudget`` shared by the calls of one client, or None.
        sleep: how to wait (``ManualClock.sleep`` in tests).
        rng: the generator for the jitter.

    Returns:
        What ``func`` returned.

    Raises:
        ValueError: when ``attempts`` is below 1.
        Exception: the last exception of ``func`` when the attempts or the budget run out.
    """
    _check_attempts(attempts)
    waits = (backoff or full_jitter(0.1, 10.0)).delays(rng)
    if budget is not None:
        budget.record_request()
    for attempt in range(1, attempts + 1):
        try:
            return func()
        except Exception as exc:  # never KeyboardInterrupt or SystemExit
            if (
                attempt == attempts
                or not _should_retry(retry_on, exc)
                or (budget is not None and not budget.try_retry())
            ):
                raise
        sleep(next(waits))
    raise AssertionError("unreachable")  # pragma: no cover


async def aretry_call(
    func: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    backoff: Backoff | None = None,
    retry_on: RetryOn = Exception,
    budget: RetryBudget | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await ``func()`` until it returns, like ``retry_call``; sleeps with ``asyncio.sleep``.

    Under ``distlab.run`` the backoff passes in virtual time. Cancellation is never
    retried (``asyncio.CancelledError`` is not an ``Exception``). Arguments, return value
    and errors are those of ``retry_call``.
    """
    _check_attempts(attempts)
    waits = (backoff or full_jitter(0.1, 10.0)).delays(rng)
    if budget is not None:
        budget.record_request()
    for attempt in range(1, attempts + 1):
        try:
            return await func()
        except Exception as exc:  # never CancelledError, KeyboardInterrupt or SystemExit
            if (
                attempt == attempts
                or not _should_retry(retry_on, exc)
                or (budget is not None and not budget.try_retry())
            ):
                raise
        await sleep(next(waits))
    raise AssertionError("unreachable")  # pragma: no cover
