"""Bulkheads: cap how many calls run at once against one dependency, the course's reference.

A ship's bulkheads keep one flooded compartment from sinking the ship; a software
bulkhead keeps one slow dependency from taking every worker, connection or task of
a service. Give each dependency its own bulkhead and a hung payments API can take at
most its own slots: calls to the catalogue still find theirs.

Two kinds:

- :class:`Bulkhead` (semaphore isolation) for asyncio code. At most
  ``max_concurrent`` calls run at once; when all slots are taken a caller may wait,
  if fewer than ``max_queue`` callers already wait, for at most ``max_wait`` seconds
  of event-loop time (virtual under ``distlab.run``); otherwise it gets
  ``BulkheadFullError`` at once. Waiters are served first come, first served. A slot
  is given back when the call returns, raises or is cancelled, and a cancelled or
  timed-out waiter leaves the queue: no slot ever leaks.
- :class:`ThreadPoolBulkhead` (thread-pool isolation) for blocking code: calls run on
  the bulkhead's own ``max_threads`` threads, with a bounded queue and a timeout. A
  timeout frees the caller, never the thread: a hung call keeps its thread (and its
  slot) until it returns, which is the price of isolating code that cannot be
  cancelled.

Typical use::

    payments = Bulkhead(10, max_queue=20, max_wait=0.5, name="payments")

    async with payments:                           # as a context manager
        receipt = await pay(order)

    receipt = await payments.execute(lambda: pay(order))   # the chapter's interface

    @payments                                      # as a decorator
    async def pay(order): ...

A :class:`Bulkhead` belongs to one event loop at a time and is not thread-safe (like
``asyncio.Semaphore``); a :class:`ThreadPoolBulkhead` may be shared by threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import math
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from distlab.errors import BulkheadFullError, BulkheadTimeoutError

__all__ = ["Bulkhead", "BulkheadMetrics", "ThreadPoolBulkhead"]

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class BulkheadMetrics:
    """A snapshot of a bulkhead's gauges and counters.

    Attributes:
        name: the bulkhead's name.
        max_concurrent: the limit on calls running at once.
        max_queue: the limit on callers waiting.
        active: calls holding a slot now.
        queued: callers waiting for a slot now.
        admitted: calls that got a slot so far.
        rejected: calls refused so far (``rejected_full + rejected_timeout``).
        rejected_full: calls refused at once: no slot and no room to wait.
        rejected_timeout: calls refused after waiting ``max_wait`` in vain.
        peak_active: the most calls that ever held a slot at once.
        peak_queued: the most callers that ever waited at once.
    """

    name: str
    max_concurrent: int
    max_queue: int
    active: int
    queued: int
    admitted: int
    rejected: int
    rejected_full: int
    rejected_timeout: int
    peak_active: int
    peak_queued: int

    @property
    def available(self) -> int:
        """Slots free now."""
        return self.max_concurrent - self.active


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return value


def _check_seconds(name: str, value: object, *, allow_inf: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not value >= 0 or (value == math.inf and not allow_inf):  # `not >=` also rejects NaN
        bound = "math.inf" if allow_inf else "finite"
        raise ValueError(f"{name} must be >= 0 seconds ({bound} at most), got {value!r}")
    return float(value)


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError("name must be a non-empty string, got ''")
    return name


class Bulkhead:
    """Let at most ``max_concurrent`` calls run at once; make the others wait a little or fail fast.

    Args:
        max_concurrent: calls allowed to run at once; >= 1.
        max_queue: callers allowed to wait for a slot when all are taken; >= 0.
            With 0 (the default) a caller that finds no slot is refused at once.
        max_wait: seconds of event-loop time a waiting caller waits at most before it
            is refused; >= 0, ``math.inf`` to wait as long as it takes. With 0 (the
            default) nobody waits, whatever ``max_queue`` says.
        name: names the isolated dependency in errors and metrics.

    Raises:
        ValueError: when an option is out of range (the message names it).
        TypeError: when an option has the wrong type.
    """

    __slots__ = (
        "_active",
        "_admitted",
        "_max",
        "_max_queue",
        "_max_wait",
        "_name",
        "_peak_active",
        "_peak_queued",
        "_rejected_full",
        "_rejected_timeout",
        "_waiters",
    )

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_queue: int = 0,
        max_wait: float = 0.0,
        name: str = "bulkhead",
    ) -> None:
        self._max = _check_int("max_concurrent", max_concurrent, 1)
        self._max_queue = _check_int("max_queue", max_queue, 0)
        self._max_wait = _check_seconds("max_wait", max_wait, allow_inf=True)
        self._name = _check_name(name)
        self._active = 0
        # Waiters in arrival order (an OrderedDict: O(1) removal at the front and by key).
        # A waiter's future gets True when a slot is handed to it and False when its wait
        # times out; either way it leaves the queue at that moment. A cancelled waiter
        # leaves when its task resumes, or earlier if a freed slot finds it first.
        self._waiters: OrderedDict[asyncio.Future[bool], None] = OrderedDict()
        self._admitted = 0
        self._rejected_full = 0
        self._rejected_timeout = 0
        self._peak_active = 0
        self._peak_queued = 0

    # Introspection ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name of the isolated dependency."""
        return self._name

    @property
    def max_concurrent(self) -> int:
        """Calls allowed to run at once."""
        return self._max

    @property
    def max_queue(self) -> int:
        """Callers allowed to wait for a slot."""
        return self._max_queue

    @property
    def max_wait(self) -> float:
        """Seconds a waiting caller waits at most."""
        return self._max_wait

    @property
    def active(self) -> int:
        """Calls holding a slot now."""
        return self._active

    @property
    def queued(self) -> int:
        """Callers waiting for a slot now."""
        return len(self._waiters)

    @property
    def rejected(self) -> int:
        """Calls refused so far (at once or after waiting)."""
        return self._rejected_full + self._rejected_timeout

    def metrics(self) -> BulkheadMetrics:
        """Return a snapshot of the gauges and counters (a frozen copy)."""
        return BulkheadMetrics(
            name=self._name,
            max_concurrent=self._max,
            max_queue=self._max_queue,
            active=self._active,
            queued=len(self._waiters),
            admitted=self._admitted,
            rejected=self._rejected_full + self._rejected_timeout,
            rejected_full=self._rejected_full,
            rejected_timeout=self._rejected_timeout,
            peak_active=self._peak_active,
            peak_queued=self._peak_queued,
        )

    def __repr__(self) -> str:
        return (
            f"Bulkhead(name={self._name!r}, active={self._active}/{self._max}, "
            f"queued={len(self._waiters)}/{self._max_queue}, max_wait={self._max_wait!r}, "
            f"rejected={self.rejected})"
        )

    # Use -------------------------------------------------------------------------------
    async def execute(self, task: Callable[[], Awaitable[T]]) -> T:
        """Run ``await task()`` in a slot and return its result.

        Args:
            task: a zero-argument callable returning an awaitable, e.g.
                ``lambda: client.get(url)`` or an ``async def`` with no parameters.

        Returns:
            What the awaited task returns, unchanged.

        Raises:
            BulkheadFullError: when no slot is free and the caller may not wait, or its
                wait ran out; ``task`` is not called.
            TypeError: when ``task()`` does not return an awaitable.
            Exception: whatever the task raises, the same object, unwrapped.
        """
        if self._active < self._max:
            self._active += 1
            self._admitted += 1
            if self._active > self._peak_active:
                self._peak_active = self._active
        else:
            await self._wait_for_slot()
        try:
            awaitable = task()
            if not inspect.isawaitable(awaitable):
                raise TypeError(
                    f"execute() needs a callable returning an awaitable (an async def, or "
                    f"lambda: client.get(url)); {task!r} returned {type(awaitable).__name__}"
                )
            return await awaitable
        finally:
            self._release()

    async def __aenter__(self) -> Bulkhead:
        """Take a slot, waiting for one if allowed.

        Raises:
            BulkheadFullError: when no slot is free and the caller may not wait, or its
                wait ran out.
        """
        if self._active < self._max:
            self._active += 1
            self._admitted += 1
            if self._active > self._peak_active:
                self._peak_active = self._active
        else:
            await self._wait_for_slot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Give the slot back (to the first waiter, if any); exceptions propagate."""
        if self._waiters:
            self._release()
        else:
            self._active -= 1

    def __call__(self, func: F) -> F:
        """Decorate an ``async def`` so that every call runs in a slot of this bulkhead.

        Raises:
            TypeError: when ``func`` is not an ``async def`` (use ``ThreadPoolBulkhead``
                to isolate blocking functions).
        """
        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"Bulkhead decorates async functions only, got {func!r}; "
                "isolate a blocking function with ThreadPoolBulkhead"
            )

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            async with self:
                return await func(*args, **kwargs)

        return cast(F, wrapper)

    # Machinery -------------------------------------------------------------------------
    async def _wait_for_slot(self) -> None:
        """Wait for a slot to be handed over, or raise BulkheadFullError."""
        waiters = self._waiters
        if len(waiters) >= self._max_queue or self._max_wait <= 0:
            self._rejected_full += 1
            raise BulkheadFullError(self._name, self._max, self._max_queue, self._max_wait, "full")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        waiters[waiter] = None
        if len(waiters) > self._peak_queued:
            self._peak_queued = len(waiters)
        timer = None
        if self._max_wait != math.inf:
            timer = loop.call_later(self._max_wait, self._expire, waiter)
        try:
            granted = await waiter
        except BaseException:
            # Cancelled (or interrupted). Still waiting: leave the queue. A slot handed to
            # us just before the cancellation arrived: hand it on, or it would leak.
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                waiters.pop(waiter, None)  # gone already if a freed slot skipped it
            elif waiter.result():
                self._release()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not granted:
            raise BulkheadFullError(
                self._name, self._max, self._max_queue, self._max_wait, "timeout"
            )

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        """The wait timer of ``waiter`` fired: refuse it unless it already left."""
        if not waiter.done():
            waiter.set_result(False)
            self._rejected_timeout += 1
            self._waiters.pop(waiter, None)

    def _release(self) -> None:
        """Give a slot back: to the first live waiter (FIFO) if any, else to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popitem(last=False)[0]
            if not waiter.done():  # else cancelled, its task not resumed yet: skip it
                # The slot changes hands and `active` stays the same, so a newcomer can
                # never take it before the waiter that has waited longest.
                waiter.set_result(True)
                self._admitted += 1
                return
        self._active -= 1


class ThreadPoolBulkhead:
    """Run blocking calls on a private pool of threads, with a bounded queue and a timeout.

    At most ``max_threads`` calls run at once, at most ``max_queue`` more wait for a
    thread; any further call is refused with ``BulkheadFullError``. A caller waits at
    most ``timeout`` seconds for its result, then gets ``BulkheadTimeoutError``; the
    thread cannot be interrupted and keeps its slot until the function returns.

    Args:
        max_threads: threads of the pool (calls running at once); >= 1.
        max_queue: calls allowed to wait for a thread; >= 0.
        timeout: real seconds ``call`` and ``acall`` wait for a result; None waits
            as long as it takes. (Under ``distlab.run`` virtual time stands still
            while a thread works, so there a timeout only fires after the thread ends.)
        name: names the isolated dependency in errors, metrics and thread names.

    Raises:
        ValueError: when an option is out of range (the message names it).
        TypeError: when an option has the wrong type.
    """

    def __init__(
        self,
        max_threads: int,
        *,
        max_queue: int = 0,
        timeout: float | None = None,
        name: str = "bulkhead",
    ) -> None:
        self._max = _check_int("max_threads", max_threads, 1)
        self._max_queue = _check_int("max_queue", max_queue, 0)
        self._timeout = (
            None if timeout is None else _check_seconds("timeout", timeout, allow_inf=False)
        )
        self._name = _check_name(name)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._max, thread_name_prefix=f"bulkhead-{self._name}"
        )
        self._admitting = _Admitting(self)
        self._lock = threading.Lock()
        self._in_flight = 0  # admitted and not finished: running + queued
        self._running = 0
        self._admitted = 0
        self._rejected = 0
        self._timed_out = 0
        self._peak_running = 0
        self._peak_queued = 0

    # Introspection ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name of the isolated dependency."""
        return self._name

    @property
    def max_threads(self) -> int:
        """Threads of the pool."""
        return self._max

    @property
    def active(self) -> int:
        """Calls running on a thread now (hung ones included)."""
        return self._running

    @property
    def queued(self) -> int:
        """Calls admitted and waiting for a thread now."""
        with self._lock:
            return self._in_flight - self._running

    @property
    def rejected(self) -> int:
        """Calls refused so far because threads and queue were full."""
        return self._rejected

    @property
    def timed_out(self) -> int:
        """Callers that stopped waiting after ``timeout`` so far."""
        return self._timed_out

    def metrics(self) -> BulkheadMetrics:
        """Return a snapshot of the gauges and counters (``rejected_timeout`` is 0 here:
        a timed-out call was admitted and still runs; see :attr:`timed_out`)."""
        with self._lock:
            return BulkheadMetrics(
                name=self._name,
                max_concurrent=self._max,
                max_queue=self._max_queue,
                active=self._running,
                queued=self._in_flight - self._running,
                admitted=self._admitted,
                rejected=self._rejected,
                rejected_full=self._rejected,
                rejected_timeout=0,
                peak_active=self._peak_running,
                peak_queued=self._peak_queued,
            )

    def __repr__(self) -> str:
        return (
            f"ThreadPoolBulkhead(name={self._name!r}, active={self._running}/{self._max}, "
            f"queued={self.queued}/{self._max_queue}, timeout={self._timeout!r}, "
            f"rejected={self._rejected})"
        )

    # Use -------------------------------------------------------------------------------
    def submit(
        self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Admit ``func(*args, **kwargs)`` to the pool and return its future at once.

        Raises:
            BulkheadFullError: when every thread is busy and the queue is full.
            RuntimeError: after ``shutdown``.
        """
        with self._lock:
            if self._in_flight >= self._max + self._max_queue:
                self._rejected += 1
                rejected = True
            else:
                rejected = False
                self._in_flight += 1
                self._admitted += 1
                queued = self._in_flight - self._running
                if queued > self._peak_queued:
                    self._peak_queued = queued
        if rejected:
            raise BulkheadFullError(self._name, self._max, self._max_queue, 0.0, "full")
        try:
            future = self._pool.submit(self._run, func, args, kwargs)
        except BaseException:
            self._done()
            raise
        # A queued call cancelled before it started never reaches _run: free its place here.
        future.add_done_callback(self._cancelled)
        return future

    def call(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)`` on the pool and wait for its result.

        Returns:
            What ``func`` returns, unchanged.

        Raises:
            BulkheadFullError: when every thread is busy and the queue is full.
            BulkheadTimeoutError: when the result is not there after ``timeout`` seconds
                (a queued call is withdrawn; a running one keeps its thread).
            Exception: whatever ``func`` raises, the same object.
        """
        future = self.submit(func, *args, **kwargs)
        try:
            return future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()
            future.cancel()  # succeeds only while it still waits for a thread
            with self._lock:
                self._timed_out += 1
            raise BulkheadTimeoutError(self._name, cast(float, self._timeout)) from None

    async def acall(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)`` on the pool from asyncio code and await its result.

        Same rules as :meth:`call`; the event loop keeps running while the thread works.
        Cancelling the awaiting task withdraws a queued call (a running one goes on).
        """
        loop = asyncio.get_running_loop()
        # Through run_in_executor, so that a virtual-time loop knows a thread works for it
        # (time stands still meanwhile); _Admitting routes the submission through submit().
        awaited = loop.run_in_executor(self._admitting, functools.partial(func, *args, **kwargs))
        try:
            return await asyncio.wait_for(awaited, self._timeout)
        except TimeoutError:
            with self._lock:
                self._timed_out += 1
            raise BulkheadTimeoutError(self._name, cast(float, self._timeout)) from None

    def __call__(self, func: F) -> F:
        """Decorate a blocking function so that every call goes through :meth:`call`.

        Raises:
            TypeError: when ``func`` is an ``async def`` (use ``Bulkhead``).
        """
        if inspect.iscoroutinefunction(func):
            raise TypeError(
                f"ThreadPoolBulkhead decorates blocking functions, got the async {func!r}; "
                "isolate async code with Bulkhead"
            )

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self.call(func, *args, **kwargs)

        return cast(F, wrapper)

    def shutdown(self, *, wait: bool = True) -> None:
        """Refuse new calls and stop the threads (after their current call if ``wait``)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> ThreadPoolBulkhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)

    # Machinery -------------------------------------------------------------------------
    def _run(self, func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with self._lock:
            self._running += 1
            if self._running > self._peak_running:
                self._peak_running = self._running
        try:
            return func(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _cancelled(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            self._done()


class _Admitting(concurrent.futures.Executor):
    """An executor view of a ThreadPoolBulkhead: ``submit`` goes through its admission."""

    def __init__(self, bulkhead: ThreadPoolBulkhead) -> None:
        self._bulkhead = bulkhead

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        return self._bulkhead.submit(fn, *args, **kwargs)
