"""A seeded storm for the bulkhead exercise: thousands of calls, cancellations and timeouts.

``storm(Bulkhead, BulkheadFullError, seed=7)`` builds a bulkhead with the student's class
and hammers it in virtual time. Callers arrive four per tick (a tick is 0.25 s) on
average, 2.5 times what four slots serve; tasks run one to four ticks and sometimes
raise; some callers give up after a few ticks (``asyncio.timeout``), some are cancelled
outright, and some releases are followed, in the same loop step, by the cancellation of
the waiter the slot was just handed to. All times are multiples of a tick, so releases,
wait timers and timeouts often coincide.

It then reports every broken rule it saw:

- more than ``max_concurrent`` tasks running at once;
- ``active`` or ``queued`` outside their limits, or not back at 0 when all is over
  (a leaked slot or a ghost waiter);
- callers that waited being served out of arrival order;
- ``rejected`` disagreeing with the BulkheadFullErrors callers actually got;
- exceptions other than ``BulkheadFullError``, the task's own, a timeout or a
  cancellation escaping from ``execute``;
- a storm that never ends (a caller waits forever for a slot nobody will free).

The same seed replays the same storm, so a failure can be reproduced in a scratch cell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distlab.errors import DeadlockError
from distlab.exercises import run
from distlab.sim.vtime import now, rng

__all__ = ["StormReport", "storm"]

TICK = 0.25  # seconds; every time in the storm is a multiple of it


class TaskFailed(Exception):
    """The exception the storm's tasks raise now and then (it must pass through)."""


@dataclass
class StormReport:
    """What a storm saw.

    Attributes:
        seed: the seed that replays this storm.
        calls: callers started.
        completed: tasks that ran to the end (successfully or with their own error).
        rejected: BulkheadFullErrors the callers got.
        cancelled: callers cancelled or timed out by the storm.
        peak_running: the most tasks that ran at once.
        queued_callers: callers that arrived while all slots were taken and the queue
            had room (the ones the FIFO rule is checked on).
        violations: the broken rules, one sentence each (empty: all good).
    """

    seed: int
    calls: int = 0
    completed: int = 0
    rejected: int = 0
    cancelled: int = 0
    peak_running: int = 0
    queued_callers: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no rule was broken."""
        return not self.violations


def storm(
    bulkhead_class: Callable[..., Any],
    full_error: type[BaseException],
    *,
    seed: int,
    tasks: int = 2000,
    max_concurrent: int = 4,
    max_queue: int = 6,
    max_wait: float = 2 * TICK,
) -> StormReport:
    """Run a storm of ``tasks`` calls against ``bulkhead_class(max_concurrent, ...)``.

    Args:
        bulkhead_class: the class under test, called as
            ``bulkhead_class(max_concurrent, max_queue=max_queue, max_wait=max_wait)``;
            it needs ``execute``, ``active``, ``queued`` and ``rejected``.
        full_error: the exception it raises when a call gets no slot.
        seed: the seed of the storm (the same seed, the same storm).
        tasks: how many callers arrive.
        max_concurrent: the bulkhead's limit (>= 1).
        max_queue: the bulkhead's queue (>= 1).
        max_wait: the bulkhead's wait, in seconds (> 0).

    Returns:
        A :class:`StormReport`; ``report.violations`` lists the broken rules.
    """
    if tasks < 1 or max_concurrent < 1 or max_queue < 1 or not max_wait > 0:
        raise ValueError(
            "storm needs tasks >= 1, max_concurrent >= 1, max_queue >= 1 and max_wait > 0"
        )
    report = StormReport(seed=seed)
    violations = report.violations

    def broken(message: str) -> None:
        if message not in violations:
            violations.append(message)

    async def main() -> None:
        random = rng()
        loop = asyncio.get_running_loop()
        # Callers the storm cancels may leave exceptions nobody retrieves: not the student's
        # business, and not to be written to stderr (nbgrader would fail the cell for it).
        loop.set_exception_handler(lambda loop, context: None)
        bulkhead = bulkhead_class(max_concurrent, max_queue=max_queue, max_wait=max_wait)
        running = 0
        enqueued: list[int] = []  # callers that had to wait, in arrival order
        granted: list[int] = []  # of those, the ones whose task started, in start order
        waited: set[int] = set()
        callers: list[asyncio.Task[None]] = []
        head = 0

        def check_gauges(when: str) -> None:
            active, queued = bulkhead.active, bulkhead.queued
            if not (isinstance(active, int) and 0 <= active <= max_concurrent):
                broken(f"active was {active!r} {when} (it must stay in 0..{max_concurrent})")
            if not (isinstance(queued, int) and 0 <= queued <= max_queue):
                broken(f"queued was {queued!r} {when} (it must stay in 0..{max_queue})")

        def cancel_head_waiter() -> None:
            # Called as a task ends, before the bulkhead hands its slot on: the
            # cancellation then reaches the new owner before it resumes.
            nonlocal head
            while head < len(enqueued) and callers[enqueued[head]].done():
                head += 1
            if head < len(enqueued):
                loop.call_soon(callers[enqueued[head]].cancel)

        async def work(i: int) -> str:
            nonlocal running
            running += 1
            report.peak_running = max(report.peak_running, running)
            if running > max_concurrent:
                broken(
                    f"{running} tasks ran at once at t={now():g} s "
                    f"(max_concurrent={max_concurrent})"
                )
            if i in waited:
                granted.append(i)
            try:
                await asyncio.sleep(TICK * random.randint(1, 4))
                if random.random() < 0.1:
                    raise TaskFailed(i)
                return f"result {i}"
            finally:
                running -= 1
                if random.random() < 0.1:
                    cancel_head_waiter()

        async def caller(i: int) -> None:
            if bulkhead.active >= max_concurrent and bulkhead.queued < max_queue:
                waited.add(i)
                enqueued.append(i)
            roll = random.random()
            try:
                if roll < 0.15:
                    async with asyncio.timeout(TICK * random.randint(0, 4)):
                        result = await bulkhead.execute(lambda: work(i))
                else:
                    result = await bulkhead.execute(lambda: work(i))
            except TaskFailed as exc:
                if exc.args != (i,):
                    broken(f"caller {i} got another task's exception: {exc!r}")
                report.completed += 1
            except TimeoutError:
                report.cancelled += 1
            except asyncio.CancelledError:
                report.cancelled += 1
                raise
            except Exception as exc:
                if isinstance(exc, full_error):
                    report.rejected += 1
                else:
                    broken(f"execute raised {type(exc).__name__}: {exc}")
            else:
                report.completed += 1
                if result != f"result {i}":
                    broken(f"caller {i} got {result!r}, not its task's result")
            check_gauges(f"after caller {i} finished (t={now():g} s)")

        for i in range(tasks):
            callers.append(asyncio.create_task(caller(i)))
            report.calls += 1
            if random.random() < 0.05:
                loop.call_later(TICK * random.randint(0, 2), callers[-1].cancel)
            if random.random() < 0.25:  # 4 arrivals a tick, 1.6 served: the queue stays busy
                await asyncio.sleep(TICK)
        await asyncio.gather(*callers, return_exceptions=True)

        report.queued_callers = len(enqueued)
        started = set(granted)
        expected = [i for i in enqueued if i in started]
        if enqueued and not granted:
            broken(
                f"none of the {len(enqueued)} callers that had to wait ever got a slot: "
                "callers should wait for a slot when the queue has room (Part B)"
            )
        elif granted != expected:
            pairs = enumerate(zip(granted, expected, strict=True))
            first = next(k for k, (got, due) in pairs if got != due)
            broken(
                f"waiters were not served in arrival order: caller {granted[first]} got a slot "
                f"before caller {expected[first]}, which had been waiting longer"
            )
        if bulkhead.active != 0 or bulkhead.queued != 0:
            broken(
                f"slots leaked: after every call had ended, active={bulkhead.active!r} and "
                f"queued={bulkhead.queued!r} (both should be 0)"
            )
        if bulkhead.rejected != report.rejected:
            broken(
                f"rejected is {bulkhead.rejected!r}, but callers got {report.rejected} "
                "BulkheadFullErrors"
            )

    try:
        run(main, seed=seed)
    except DeadlockError:
        broken(
            "the storm never finished: a caller waited forever for a slot that nobody "
            "would give back (a leaked slot, or a waiter nobody wakes)"
        )
    return report
