"""Virtual time: an asyncio event loop whose clock jumps to the next timer when idle.

A 30-second timeout or a 10-minute outage costs microseconds of real time, and a
run is replayable: the same ``seed`` gives the same result, in a script, under
pytest and inside a Jupyter kernel.

How it works: the loop wraps its selector. When asyncio asks the selector to wait
``t`` seconds for I/O, the wrapper polls the real selector without waiting; if
nothing is ready and no thread is working for the loop, it moves the virtual clock
forward by ``t`` and returns, so the next timer is due at once.

Work handed to threads (``loop.run_in_executor``, ``asyncio.to_thread``, anyio worker
threads such as Starlette's sync endpoints) freezes virtual time: the loop waits for it
in real time before it advances the clock, so a slow thread never looks like a timeout.
Real sockets are polled but not waited for; talk to real servers in real time.

Typical use::

    import asyncio, distlab

    async def main():
        await asyncio.sleep(60)          # one minute of outage...
        return distlab.now()

    distlab.run(main, seed=7)            # ...in well under a millisecond: returns 60.0
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
import random
import selectors
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

from distlab.errors import DeadlockError, VirtualTimeError

__all__ = [
    "ManualClock",
    "VirtualEventLoop",
    "clock",
    "current_loop",
    "now",
    "rng",
    "run",
]

T = TypeVar("T")

# How long (real seconds) the loop waits, with nothing scheduled and no thread at work,
# before it declares that nothing can ever happen again.
_DEADLOCK_AFTER = 2.0
# While threads work for the loop, it checks back at least this often (real seconds).
_THREAD_POLL = 0.05


class _VirtualSelector(selectors.BaseSelector):
    """Selector wrapper that turns idle waits into jumps of the virtual clock."""

    def __init__(self, loop: VirtualEventLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    # Delegation of the registration API ------------------------------------------------
    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    # The one method that differs --------------------------------------------------------
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        real = self._real
        loop = self._loop
        events = real.select(0)
        if events or timeout == 0:
            return events
        if loop._threads_busy():
            # Threads are working for us: time stands still until they report back.
            wait = _THREAD_POLL if timeout is None else min(timeout, _THREAD_POLL)
            return real.select(wait)
        if timeout is None:
            # Nothing scheduled. Another thread may still call_soon_threadsafe() or real
            # I/O may arrive, so wait in real time, but not forever.
            deadline = time.monotonic() + loop.deadlock_after
            while time.monotonic() < deadline:
                events = real.select(min(0.1, loop.deadlock_after))
                if events or loop._ready_pending() or loop._threads_busy():
                    return events
            raise DeadlockError(
                "nothing can run any more: every task is waiting for something that no "
                "timer, thread or I/O will ever deliver (an Event nobody sets, a Future "
                "nobody resolves, a queue nobody fills). "
                f"Virtual time stopped at t={loop.time():.6f} s."
            )
        loop._advance(timeout)
        return []


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time.

    ``loop.time()`` starts at ``start`` and only moves when every task is waiting for a
    timer: then it jumps straight to the next one.

    Args:
        seed: seeds ``loop.rng``, the random generator that distlab helpers draw from.
        start: the virtual time at which the loop starts, in seconds.
    """

    def __init__(self, *, seed: int | None = 0, start: float = 0.0) -> None:
        real = selectors.DefaultSelector()
        self._now = float(start)
        self._executor_jobs = 0
        # Entries are (when, sequence, TimerHandle); handles are typed Any because the
        # flags asyncio keeps on them (_scheduled, _cancelled) are private.
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = itertools.count()
        self._timer_cancelled_count = 0
        self._real_selector = real
        super().__init__(selector=_VirtualSelector(self, real))
        if not 0 <= start < math.inf:  # also rejects NaN
            self.close()
            raise ValueError(f"start must be a finite number of seconds >= 0, got {start!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.deadlock_after = _DEADLOCK_AFTER
        self._anyio_workers: type | None = None

    # Clock ------------------------------------------------------------------------------
    def time(self) -> float:
        """Return the current virtual time in seconds."""
        return self._now

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    def clock(self) -> float:
        """Return the current virtual time; a callable to inject as ``clock=``."""
        return self._now

    # Timers -----------------------------------------------------------------------------
    # asyncio keeps TimerHandle objects in a heap ordered by their Python-level __lt__,
    # which dominates the cost of a timer-heavy simulation. Here the heap holds
    # (when, sequence, handle) tuples: comparisons stay in C, and timers due at the same
    # instant run in the order they were scheduled, which keeps runs replayable.
    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback(*args)`` at virtual time ``when``."""
        if when is None:  # same check as asyncio's own loop
            raise TypeError("when cannot be None")
        self._check_closed()  # type: ignore[attr-defined]
        timer: Any = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, next(self._timer_seq), timer))
        timer._scheduled = True
        return timer  # type: ignore[no-any-return]

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback(*args)`` after ``delay`` virtual seconds."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self._now + delay, callback, *args, context=context)

    def _run_once(self) -> None:
        timers = self._timers
        ready: Any = self._ready  # type: ignore[attr-defined]
        if self._timer_cancelled_count > 100 and self._timer_cancelled_count * 2 > len(timers):
            live = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    live.append(entry)
            heapq.heapify(live)
            self._timers = timers = live
            self._timer_cancelled_count = 0
        else:
            while timers and timers[0][2]._cancelled:
                self._timer_cancelled_count -= 1
                heapq.heappop(timers)[2]._scheduled = False

        if ready or self._stopping:  # type: ignore[attr-defined]
            timeout: float | None = 0
        elif timers:
            timeout = max(0.0, timers[0][0] - self._now)
        else:
            timeout = None
        if self._nothing_real_pending() and timeout is not None:
            # Fast path: only the loop's own wake-up pipe is registered and no thread
            # works for us, so no real event can be pending. call_soon_threadsafe()
            # appends to the ready queue itself, so skipping the poll loses nothing; the
            # pipe is drained by the next real poll.
            if timeout > 0:
                self._now = max(self._now, timers[0][0])
        else:
            self._process_events(self._selector.select(timeout))  # type: ignore[attr-defined]

        end_time = self._now + self._clock_resolution  # type: ignore[attr-defined]
        while timers and timers[0][0] < end_time:
            handle = heapq.heappop(timers)[2]
            handle._scheduled = False
            ready.append(handle)

        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()

    def close(self) -> None:
        """Close the loop and drop every pending timer."""
        self._timers.clear()
        super().close()

    # Threads ----------------------------------------------------------------------------
    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """Run ``func`` in a thread; virtual time stands still until it returns."""
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _future: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    def _nothing_real_pending(self) -> bool:
        if self._executor_jobs or len(self._real_selector.get_map()) > 1:
            return False
        return "anyio._backends._asyncio" not in sys.modules or not self._threads_busy()

    def _threads_busy(self) -> bool:
        if self._executor_jobs:
            return True
        # anyio (used by Starlette for sync endpoints) runs its own worker threads instead
        # of run_in_executor. A worker that is not idle is running a job for this loop.
        backend = sys.modules.get("anyio._backends._asyncio")
        if backend is None:
            return False
        worker_cls = backend.WorkerThread
        for thread in threading.enumerate():
            if (
                isinstance(thread, worker_cls)
                and thread.loop is self
                and not thread.stopping
                and thread not in thread.idle_workers
            ):
                return True
        return False

    def _ready_pending(self) -> bool:
        return bool(self._ready)  # type: ignore[attr-defined]


_current: contextvars.ContextVar[VirtualEventLoop | None] = contextvars.ContextVar(
    "distlab_virtual_loop", default=None
)


def current_loop() -> VirtualEventLoop:
    """Return the running virtual-time loop.

    Raises:
        VirtualTimeError: when called outside ``distlab.run``.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if isinstance(loop, VirtualEventLoop):
        return loop
    found = _current.get()
    if found is not None:
        return found
    raise VirtualTimeError(
        "no virtual-time loop is running here: call this inside a coroutine started "
        "with distlab.run(main, seed=...)"
    )


def now() -> float:
    """Return the current virtual time in seconds (inside ``distlab.run``)."""
    return current_loop().time()


def clock() -> Callable[[], float]:
    """Return a zero-argument callable that reads the running loop's virtual time.

    Inject it wherever sync code takes a clock, e.g. ``CircuitBreaker(clock=distlab.clock())``.
    """
    return current_loop().clock


def rng() -> random.Random:
    """Return the seeded random generator of the running ``distlab.run``."""
    return current_loop().rng


MainType = Callable[[], Awaitable[T]] | Coroutine[Any, Any, T]


def run(main: MainType[T], *, seed: int | None = 0, start: float = 0.0) -> T:
    """Run ``main`` to completion on a fresh virtual-time loop and return its result.

    Works the same in a script, in pytest and in a Jupyter kernel. Where an event loop
    is already running in this thread (Jupyter), the virtual loop runs in a worker
    thread and this call blocks until it finishes.

    Args:
        main: a coroutine function taking no arguments (preferred, so a failed call
            leaves nothing half-started) or a coroutine object.
        seed: seeds ``distlab.rng()``; the same seed replays the same run.
        start: virtual time at which the run starts, in seconds.

    Returns:
        Whatever ``main`` returns.

    Raises:
        TypeError: when ``main`` is not a coroutine function or coroutine.
        DeadlockError: when every task waits for something that can never happen.
    """
    if asyncio.iscoroutine(main):
        coro_factory: Callable[[], Coroutine[Any, Any, T]] = lambda: main  # noqa: E731
    elif callable(main):

        async def _call() -> T:
            result = main()
            if not isinstance(result, Awaitable):
                raise TypeError(
                    f"distlab.run needs a coroutine function (async def); {main!r} "
                    f"returned {type(result).__name__}"
                )
            return await result

        coro_factory = _call
    else:
        raise TypeError(
            f"distlab.run needs a coroutine function or a coroutine, got {type(main).__name__}"
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(coro_factory, seed, start)

    # A loop already runs in this thread (Jupyter): run ours in a worker thread.
    outcome: dict[str, Any] = {}
    loops: list[VirtualEventLoop] = []
    interrupted = threading.Event()

    def started(loop: VirtualEventLoop) -> None:
        loops.append(loop)  # before the check: the caller sets the flag, then reads loops
        if interrupted.is_set():
            _cancel_run([loop])

    def target() -> None:
        try:
            outcome["result"] = _run_here(coro_factory, seed, start, started)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="distlab-virtual-loop", daemon=True)
    worker.start()
    try:
        # Join in short slices, never in one blocking wait: Linux may deliver the SIGINT
        # of Jupyter's stop button to another thread of the process, and then only wakes
        # a main thread that comes back to Python now and then to run the handler.
        while worker.is_alive():
            worker.join(_THREAD_POLL)
    except BaseException:
        # Interrupted (Jupyter's stop button is a KeyboardInterrupt here): stop the
        # virtual loop too, or a run that never ends would spin a core until the
        # kernel restarts.
        interrupted.set()
        _cancel_run(loops)
        worker.join(_THREAD_POLL * 20)
        raise
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


def _cancel_run(loops: list[VirtualEventLoop]) -> None:
    """Cancel every task of the virtual loop in ``loops`` (if any), from another thread."""

    def cancel_all(loop: VirtualEventLoop) -> None:
        for task in asyncio.all_tasks(loop):
            task.cancel()

    for loop in loops:
        with contextlib.suppress(RuntimeError):  # a closed loop has nothing left to stop
            loop.call_soon_threadsafe(cancel_all, loop)


def _run_here(
    coro_factory: Callable[[], Coroutine[Any, Any, T]],
    seed: int | None,
    start: float,
    on_loop: Callable[[VirtualEventLoop], object] | None = None,
) -> T:
    with asyncio.Runner(loop_factory=lambda: VirtualEventLoop(seed=seed, start=start)) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, VirtualEventLoop)
        if on_loop is not None:
            on_loop(loop)
        token = _current.set(loop)
        try:
            return runner.run(coro_factory())
        finally:
            _current.reset(token)


class ManualClock:
    """A clock for synchronous code that moves only when told to.

    Call it to read the time; ``advance`` (or ``sleep``) moves it forward.

    Args:
        start: the initial reading, in seconds (finite, >= 0).

    Raises:
        ValueError: when ``start`` is negative, infinite or NaN.
    """

    def __init__(self, start: float = 0.0) -> None:
        if not 0 <= start < math.inf:  # also rejects NaN
            raise ValueError(f"start must be a finite number of seconds >= 0, got {start!r}")
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the current reading in seconds (what ``clock=`` callers read)."""
        return self._now

    @property
    def now(self) -> float:
        """The current reading in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new reading.

        Raises:
            ValueError: when ``seconds`` is negative (time never runs backwards), infinite
                or NaN.
        """
        if not 0 <= seconds < math.inf:  # also rejects NaN, which would poison the clock
            raise ValueError(
                f"seconds must be finite and >= 0 (time never runs backwards), got {seconds!r}"
            )
        with self._lock:
            self._now += seconds
            return self._now

    def sleep(self, seconds: float) -> None:
        """Pretend to sleep: advance the clock without waiting."""
        self.advance(seconds)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"
