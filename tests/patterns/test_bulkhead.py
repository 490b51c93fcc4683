"""Tests for the reference bulkheads (distlab.patterns.bulkhead).

Async tests run in virtual time (``distlab.run``); orderings are forced with Events
and ``asyncio.sleep(0)``, never slept for. Thread tests block threads on Events.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import distlab
from distlab.errors import BulkheadFullError, BulkheadTimeoutError, DistlabError
from distlab.patterns.bulkhead import Bulkhead, BulkheadMetrics, ThreadPoolBulkhead

WAIT = 5.0  # real seconds a test waits for a thread before declaring it stuck


class Boom(Exception):
    """The failure the isolated tasks raise."""


async def settle() -> None:
    """Let every ready task run until all of them wait again (a few loop turns)."""
    for _ in range(5):
        await asyncio.sleep(0)


def hold(gate: asyncio.Event, log: list[str] | None = None, tag: str = "") -> Callable[[], Any]:
    """A task that records ``tag`` when it starts and then waits for ``gate``."""

    async def task() -> str:
        if log is not None:
            log.append(tag)
        await gate.wait()
        return tag

    return task


# Configuration -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "options", "parameter"),
    [
        ((0,), {}, "max_concurrent"),
        ((-3,), {}, "max_concurrent"),
        ((1,), {"max_queue": -1}, "max_queue"),
        ((1,), {"max_wait": -0.5}, "max_wait"),
        ((1,), {"max_wait": math.nan}, "max_wait"),
        ((1,), {"name": ""}, "name"),
    ],
)
def test_bad_options_raise_value_error_naming_the_parameter(
    args: tuple[Any, ...], options: dict[str, Any], parameter: str
) -> None:
    """max_concurrent < 1, max_queue < 0, max_wait < 0 or NaN, an empty name -> ValueError."""
    with pytest.raises(ValueError, match=parameter):
        Bulkhead(*args, **options)


@pytest.mark.parametrize(
    ("args", "options", "parameter"),
    [
        ((2.0,), {}, "max_concurrent"),
        ((True,), {}, "max_concurrent"),
        ((1,), {"max_queue": "3"}, "max_queue"),
        ((1,), {"max_wait": "1"}, "max_wait"),
        ((1,), {"name": 7}, "name"),
    ],
)
def test_options_of_the_wrong_type_raise_type_error(
    args: tuple[Any, ...], options: dict[str, Any], parameter: str
) -> None:
    """A float limit or a string wait is a TypeError that names the parameter."""
    with pytest.raises(TypeError, match=parameter):
        Bulkhead(*args, **options)


def test_options_are_keyword_only_and_readable() -> None:
    """Only max_concurrent is positional; the limits read back as given."""
    with pytest.raises(TypeError):
        Bulkhead(2, 3)  # type: ignore[misc]
    bulkhead = Bulkhead(2, max_queue=3, max_wait=math.inf, name="payments")
    assert (bulkhead.max_concurrent, bulkhead.max_queue, bulkhead.max_wait) == (2, 3, math.inf)
    assert bulkhead.name == "payments"
    assert "payments" in repr(bulkhead) and "0/2" in repr(bulkhead)


# Limits and rejection ------------------------------------------------------------------
def test_at_most_max_concurrent_tasks_run_and_the_next_is_refused_at_once() -> None:
    """With max_queue=0 the third caller of a 2-slot bulkhead fails fast, naming the bulkhead."""

    async def main() -> None:
        bulkhead = Bulkhead(2, name="payments")
        gate = asyncio.Event()
        started: list[str] = []
        running = [asyncio.create_task(bulkhead.execute(hold(gate, started, t))) for t in "ab"]
        await settle()
        assert (bulkhead.active, bulkhead.queued) == (2, 0)
        called = []
        began = distlab.now()
        with pytest.raises(BulkheadFullError) as caught:
            await bulkhead.execute(lambda: called.append(1))  # type: ignore[arg-type, return-value]
        assert distlab.now() == began, "a refusal with max_queue=0 must not wait"
        assert called == [], "a refused task must not be called"
        err = caught.value
        assert (err.name, err.max_concurrent, err.max_queue) == ("payments", 2, 0)
        assert err.reason == "full"
        assert "'payments'" in str(err) and "max_concurrent=2" in str(err)
        assert isinstance(err, DistlabError)
        assert bulkhead.rejected == 1
        gate.set()
        assert await asyncio.gather(*running) == ["a", "b"]
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    distlab.run(main)


def test_the_result_and_the_exception_pass_through_unchanged() -> None:
    """execute returns the task's own object and re-raises its own exception object."""

    async def main() -> None:
        bulkhead = Bulkhead(1)
        value = object()

        async def give() -> object:
            return value

        assert await bulkhead.execute(give) is value
        error = Boom("backend down")

        async def fail() -> None:
            raise error

        with pytest.raises(Boom) as caught:
            await bulkhead.execute(fail)
        assert caught.value is error
        assert bulkhead.active == 0, "a failed task must give its slot back"

    distlab.run(main)


def test_a_task_that_returns_no_awaitable_is_a_type_error_and_frees_its_slot() -> None:
    """execute(lambda: 3) says what it needs; a task raising before awaiting frees the slot."""

    async def main() -> None:
        bulkhead = Bulkhead(1)
        with pytest.raises(TypeError, match="awaitable"):
            await bulkhead.execute(lambda: 3)  # type: ignore[arg-type, return-value]
        assert bulkhead.active == 0

        def explode() -> Awaitable[None]:
            raise Boom("before any await")

        with pytest.raises(Boom):
            await bulkhead.execute(explode)
        assert bulkhead.active == 0

    distlab.run(main)


# Waiting -------------------------------------------------------------------------------
def test_waiters_are_served_first_come_first_served() -> None:
    """Five waiters behind one slot start in their arrival order."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=5, max_wait=math.inf)
        gates = {tag: asyncio.Event() for tag in "xabcde"}
        order: list[str] = []
        tasks = [asyncio.create_task(bulkhead.execute(hold(gates["x"], order, "x")))]
        await settle()
        for tag in "abcde":
            tasks.append(asyncio.create_task(bulkhead.execute(hold(gates[tag], order, tag))))
            await asyncio.sleep(0)  # each one enqueues before the next arrives
        await settle()
        assert bulkhead.queued == 5
        for tag in "xabcd":
            gates[tag].set()
            await settle()
        gates["e"].set()
        await asyncio.gather(*tasks)
        assert order == list("xabcde")
        assert bulkhead.metrics().peak_queued == 5

    distlab.run(main)


def test_a_freed_slot_goes_to_the_waiter_not_to_a_newcomer() -> None:
    """A caller arriving just after a release queues behind the waiter (no barging)."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=2, max_wait=10.0)
        gate = asyncio.Event()
        order: list[str] = []
        first = asyncio.create_task(bulkhead.execute(hold(gate, order, "first")))
        await settle()
        waiter = asyncio.create_task(bulkhead.execute(hold(asyncio.Event(), order, "waiter")))
        await settle()
        gate.set()
        await first  # released: the slot now belongs to the waiter, which has not run yet
        newcomer = asyncio.create_task(bulkhead.execute(hold(asyncio.Event(), order, "new")))
        await settle()
        assert order == ["first", "waiter"]
        assert (bulkhead.active, bulkhead.queued) == (1, 1)
        waiter.cancel()
        newcomer.cancel()
        await asyncio.gather(waiter, newcomer, return_exceptions=True)
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    distlab.run(main)


def test_a_waiter_is_refused_after_max_wait_seconds_of_loop_time() -> None:
    """Waiting 2 s in vain costs exactly 2 virtual seconds, then BulkheadFullError('timeout')."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=1, max_wait=2.0, name="slow")
        gate = asyncio.Event()
        holder = asyncio.create_task(bulkhead.execute(hold(gate)))
        await settle()
        began = distlab.now()
        with pytest.raises(BulkheadFullError) as caught:
            await bulkhead.execute(hold(gate))
        assert distlab.now() - began == pytest.approx(2.0)
        assert caught.value.reason == "timeout" and "max_wait=2 s" in str(caught.value)
        assert (bulkhead.queued, bulkhead.rejected) == (0, 1)
        metrics = bulkhead.metrics()
        assert (metrics.rejected_timeout, metrics.rejected_full) == (1, 0)
        gate.set()
        await holder

    distlab.run(main)


def test_a_slot_freed_before_max_wait_is_taken_at_that_moment() -> None:
    """A waiter with max_wait=5 starts when the holder finishes at t=3."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=1, max_wait=5.0)

        async def three_seconds() -> None:
            await asyncio.sleep(3)

        holder = asyncio.create_task(bulkhead.execute(three_seconds))
        await settle()
        began = distlab.now()
        await bulkhead.execute(lambda: asyncio.sleep(0))
        assert distlab.now() - began == pytest.approx(3.0)
        await holder
        assert bulkhead.rejected == 0

    distlab.run(main)


def test_with_the_queue_full_a_caller_is_refused_at_once() -> None:
    """max_queue=1: the second waiter does not wait at all."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=1, max_wait=60.0)
        gate = asyncio.Event()
        tasks = [asyncio.create_task(bulkhead.execute(hold(gate))) for _ in range(2)]
        await settle()
        began = distlab.now()
        with pytest.raises(BulkheadFullError) as caught:
            await bulkhead.execute(hold(gate))
        assert distlab.now() == began and caught.value.reason == "full"
        assert "1 waiting" in str(caught.value)
        gate.set()
        await asyncio.gather(*tasks)

    distlab.run(main)


def test_max_wait_zero_means_nobody_waits_whatever_max_queue_says() -> None:
    """max_queue=10 with max_wait=0 refuses at once (resilience4j's maxWaitDuration=0)."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=10)
        gate = asyncio.Event()
        holder = asyncio.create_task(bulkhead.execute(hold(gate)))
        await settle()
        with pytest.raises(BulkheadFullError):
            await bulkhead.execute(hold(gate))
        assert bulkhead.queued == 0
        gate.set()
        await holder

    distlab.run(main)


# Cancellation --------------------------------------------------------------------------
def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_is_served() -> None:
    """Cancelling the first of two waiters: queued drops, the second gets the slot."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=2, max_wait=math.inf)
        gate = asyncio.Event()
        order: list[str] = []
        holder = asyncio.create_task(bulkhead.execute(hold(gate, order, "h")))
        await settle()
        first = asyncio.create_task(bulkhead.execute(hold(gate, order, "first")))
        second = asyncio.create_task(bulkhead.execute(hold(gate, order, "second")))
        await settle()
        first.cancel()
        await settle()
        assert bulkhead.queued == 1
        gate.set()
        await asyncio.gather(holder, second)
        assert order == ["h", "second"]
        assert first.cancelled()
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    distlab.run(main)


def test_cancelling_a_running_task_gives_its_slot_back() -> None:
    """A task cancelled while it runs (e.g. by asyncio.timeout) frees its slot."""

    async def main() -> None:
        bulkhead = Bulkhead(1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await bulkhead.execute(lambda: asyncio.sleep(60))
        assert bulkhead.active == 0
        await bulkhead.execute(lambda: asyncio.sleep(0))

    distlab.run(main)


def test_a_waiter_cancelled_right_after_it_was_handed_the_slot_passes_it_on() -> None:
    """The slot handed to a waiter that is cancelled before it resumes goes to the next waiter."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=2, max_wait=math.inf)
        gate = asyncio.Event()
        order: list[str] = []
        tasks: dict[str, asyncio.Task[Any]] = {}

        async def holder() -> None:
            async with bulkhead:
                order.append("h")
                await gate.wait()
            # The slot was just handed to `doomed`, which has not resumed yet.
            tasks["doomed"].cancel()

        tasks["holder"] = asyncio.create_task(holder())
        await settle()
        tasks["doomed"] = asyncio.create_task(bulkhead.execute(hold(asyncio.Event(), order, "d")))
        last = asyncio.create_task(bulkhead.execute(hold(asyncio.Event(), order, "last")))
        await settle()
        gate.set()
        await settle()
        doomed = tasks["doomed"]
        assert doomed.cancelled()
        assert order == ["h", "last"], "the slot must go on to the next waiter"
        assert (bulkhead.active, bulkhead.queued) == (1, 0)
        last.cancel()
        await asyncio.gather(last, return_exceptions=True)
        assert bulkhead.active == 0

    distlab.run(main)


def test_a_waiter_cancelled_after_its_wait_ran_out_leaks_nothing() -> None:
    """Timed out and cancelled in the same instant: counted once, nothing held."""

    async def main() -> None:
        bulkhead = Bulkhead(1, max_queue=1, max_wait=1.0)
        gate = asyncio.Event()
        holder = asyncio.create_task(bulkhead.execute(hold(gate)))
        await settle()
        waiter = asyncio.create_task(bulkhead.execute(hold(gate)))
        await asyncio.sleep(1.0)  # the wait timer fires in this instant...
        waiter.cancel()  # ...and the cancellation arrives before the waiter resumes
        await asyncio.gather(waiter, return_exceptions=True)
        assert (bulkhead.active, bulkhead.queued, bulkhead.rejected) == (1, 0, 1)
        gate.set()
        await holder
        assert bulkhead.active == 0

    distlab.run(main)


# Context manager, decorator, metrics ---------------------------------------------------
def test_async_with_takes_and_gives_back_a_slot_even_when_the_body_raises() -> None:
    """`async with bulkhead:` holds a slot for the body; an exception propagates."""

    async def main() -> None:
        bulkhead = Bulkhead(1)
        async with bulkhead as entered:
            assert entered is bulkhead and bulkhead.active == 1
            with pytest.raises(BulkheadFullError):
                async with bulkhead:
                    pass
        assert bulkhead.active == 0
        with pytest.raises(Boom):
            async with bulkhead:
                raise Boom()
        assert bulkhead.active == 0

    distlab.run(main)


def test_the_decorator_runs_every_call_in_a_slot_and_keeps_the_signature() -> None:
    """@bulkhead on an async def limits it; on a plain def it is a TypeError."""
    bulkhead = Bulkhead(2)

    @bulkhead
    async def fetch(item: str, *, delay: float) -> str:
        """Fetch one item."""
        await asyncio.sleep(delay)
        return item.upper()

    async def main() -> list[str]:
        return await asyncio.gather(*(fetch(c, delay=1.0) for c in "ab"))

    assert distlab.run(main) == ["A", "B"]
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch one item."
    assert bulkhead.metrics().peak_active == 2
    with pytest.raises(TypeError, match="ThreadPoolBulkhead"):

        @bulkhead
        def blocking() -> None:
            """Not async."""


def test_metrics_are_a_frozen_snapshot_that_adds_up() -> None:
    """admitted, rejected (full + timeout), peaks; the snapshot does not change afterwards."""

    async def main() -> BulkheadMetrics:
        bulkhead = Bulkhead(2, max_queue=1, max_wait=1.0, name="m")
        gate = asyncio.Event()
        tasks = [asyncio.create_task(bulkhead.execute(hold(gate))) for _ in range(5)]
        await asyncio.gather(*tasks[3:], return_exceptions=True)  # refused at once: full
        await asyncio.sleep(2)  # the waiter times out
        snapshot = bulkhead.metrics()
        gate.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert bulkhead.metrics().active == 0 and snapshot.active == 2
        return snapshot

    m = distlab.run(main)
    assert (m.name, m.max_concurrent, m.max_queue, m.active, m.queued) == ("m", 2, 1, 2, 0)
    assert (m.admitted, m.rejected, m.rejected_full, m.rejected_timeout) == (2, 3, 2, 1)
    assert (m.peak_active, m.peak_queued, m.available) == (2, 1, 0)
    with pytest.raises(AttributeError):
        m.active = 0  # type: ignore[misc]


def test_it_works_on_a_plain_asyncio_loop() -> None:
    """The bulkhead needs no virtual time: asyncio.run with a real 10 ms wait."""

    async def main() -> int:
        bulkhead = Bulkhead(1, max_queue=1, max_wait=0.01)
        gate = asyncio.Event()
        holder = asyncio.create_task(bulkhead.execute(hold(gate)))
        await asyncio.sleep(0)
        with pytest.raises(BulkheadFullError):
            await bulkhead.execute(hold(gate))
        gate.set()
        await holder
        return bulkhead.rejected

    assert asyncio.run(main()) == 1


# Invariants under a random storm ---------------------------------------------------------
STRESS_SEEDS = [1, 2, 3]


@pytest.mark.parametrize("seed", STRESS_SEEDS)
def test_random_storm_never_exceeds_the_limit_never_leaks_and_keeps_fifo(seed: int) -> None:
    """3000 tasks, random work, waits, cancellations and timeouts; invariants hold throughout.

    Times are multiples of 0.25 s, so releases, wait timers and timeouts often fall in
    the same instant; and some releases are followed, in the same loop step, by the
    cancellation of the waiter the slot was just handed to.
    """
    limit, max_queue, tick = 4, 6, 0.25
    violations: list[str] = []
    grants: list[int] = []  # ids, in the order their slot was granted, of tasks that queued

    async def main() -> Bulkhead:
        rng = distlab.rng()
        loop = asyncio.get_running_loop()
        bulkhead = Bulkhead(limit, max_queue=max_queue, max_wait=tick * rng.choice([2, 4]))
        running = 0
        enqueued: list[int] = []
        queued_ids: set[int] = set()
        tasks: list[asyncio.Task[None]] = []
        head = 0  # index into `enqueued` of the oldest caller that may still wait

        def cancel_head_waiter() -> None:
            nonlocal head
            while head < len(enqueued) and tasks[enqueued[head]].done():
                head += 1
            if head < len(enqueued):
                # Runs before the slot's new owner resumes: the slot must be handed on.
                loop.call_soon(tasks[enqueued[head]].cancel)

        async def work(i: int) -> None:
            nonlocal running
            running += 1
            if running > limit:
                violations.append(f"{running} tasks running at t={distlab.now()}")
            if i in queued_ids:
                grants.append(i)
            try:
                await asyncio.sleep(tick * rng.randint(1, 4))
                if rng.random() < 0.1:
                    raise Boom()
            finally:
                running -= 1
                if rng.random() < 0.1:
                    cancel_head_waiter()

        async def caller(i: int) -> None:
            if bulkhead.active == limit and bulkhead.queued < max_queue:
                queued_ids.add(i)
                enqueued.append(i)
            try:
                if rng.random() < 0.15:
                    async with asyncio.timeout(tick * rng.randint(0, 4)):
                        await bulkhead.execute(lambda: work(i))
                else:
                    await bulkhead.execute(lambda: work(i))
            except (BulkheadFullError, Boom, TimeoutError):
                pass
            if not (0 <= bulkhead.active <= limit and 0 <= bulkhead.queued <= max_queue):
                violations.append(f"active={bulkhead.active} queued={bulkhead.queued}")
            if bulkhead.queued and bulkhead.active != limit:
                violations.append("callers wait while a slot is free")

        for i in range(3000):
            tasks.append(asyncio.create_task(caller(i)))
            if rng.random() < 0.05:
                loop.call_later(tick * rng.randint(0, 2), tasks[-1].cancel)
            if rng.random() < 0.25:  # four arrivals per tick on average: 100 % offered load
                await asyncio.sleep(tick)
        await asyncio.gather(*tasks, return_exceptions=True)
        granted = set(grants)
        if grants != [i for i in enqueued if i in granted]:
            violations.append("queued callers were not served in arrival order")
        return bulkhead

    bulkhead = distlab.run(main, seed=seed)
    assert violations == [], f"seed {seed}: {violations[:3]}"
    m = bulkhead.metrics()
    assert (m.active, m.queued) == (0, 0), f"seed {seed}: slots leaked: {m}"
    assert m.peak_active == limit, f"seed {seed}: the storm never filled the bulkhead: {m}"
    assert m.rejected_full > 0 and m.rejected_timeout > 0, f"seed {seed}: {m}"
    assert len(grants) > 100, f"seed {seed}: too few queued callers to test FIFO"


# Thread-pool bulkhead ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "options", "error", "parameter"),
    [
        ((0,), {}, ValueError, "max_threads"),
        ((1,), {"max_queue": -1}, ValueError, "max_queue"),
        ((1,), {"timeout": -1.0}, ValueError, "timeout"),
        ((1,), {"timeout": math.inf}, ValueError, "timeout"),
        ((1.5,), {}, TypeError, "max_threads"),
    ],
)
def test_thread_pool_bulkhead_validates_its_options(
    args: tuple[Any, ...], options: dict[str, Any], error: type[Exception], parameter: str
) -> None:
    """Out-of-range or mistyped options name the parameter."""
    with pytest.raises(error, match=parameter):
        ThreadPoolBulkhead(*args, **options)


def test_thread_pool_bulkhead_runs_on_its_own_threads_and_refuses_beyond_threads_plus_queue() -> (
    None
):
    """2 threads + 1 queued: the fourth call is refused; results come back unchanged."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocked(x: int) -> tuple[int, str]:
        started.release()
        release.wait(WAIT)
        return x * 10, threading.current_thread().name

    with ThreadPoolBulkhead(2, max_queue=1, name="legacy") as bulkhead:
        futures = [bulkhead.submit(blocked, i) for i in range(3)]
        assert started.acquire(timeout=WAIT) and started.acquire(timeout=WAIT)
        assert (bulkhead.active, bulkhead.queued) == (2, 1)
        with pytest.raises(BulkheadFullError, match="'legacy'"):
            bulkhead.submit(blocked, 3)
        release.set()
        results = [f.result(WAIT) for f in futures]
    assert [r[0] for r in results] == [0, 10, 20]
    assert all(r[1].startswith("bulkhead-legacy") for r in results)
    m = bulkhead.metrics()
    assert (m.active, m.queued, m.admitted, m.rejected, m.peak_active) == (0, 0, 3, 1, 2)


def test_a_timed_out_thread_keeps_its_slot_until_it_returns() -> None:
    """call() gives up after the timeout; the hung thread still holds the only slot."""
    release = threading.Event()
    with ThreadPoolBulkhead(1, timeout=0.02, name="hung") as bulkhead:
        began = time.monotonic()
        with pytest.raises(BulkheadTimeoutError) as caught:
            bulkhead.call(release.wait, WAIT)
        assert time.monotonic() - began < WAIT / 2
        assert isinstance(caught.value, TimeoutError) and "keeps running" in str(caught.value)
        assert (bulkhead.active, bulkhead.timed_out) == (1, 1)
        with pytest.raises(BulkheadFullError):
            bulkhead.call(lambda: None)
        release.set()
        deadline = time.monotonic() + WAIT
        while bulkhead.active and time.monotonic() < deadline:
            time.sleep(0.001)
        assert bulkhead.call(lambda: "free again") == "free again"


def test_a_queued_call_that_times_out_is_withdrawn_and_frees_its_place() -> None:
    """A call still waiting for a thread when its caller gives up never runs."""
    release = threading.Event()
    ran: list[str] = []
    with ThreadPoolBulkhead(1, max_queue=1, timeout=0.02) as bulkhead:
        running = bulkhead.submit(release.wait, WAIT)
        with pytest.raises(BulkheadTimeoutError):
            bulkhead.call(ran.append, "queued")
        assert bulkhead.queued == 0
        release.set()
        running.result(WAIT)
    assert ran == []


def test_thread_pool_bulkhead_exceptions_and_decorator() -> None:
    """The function's exception object comes back; the decorator refuses async functions."""
    error = Boom("legacy failed")
    with ThreadPoolBulkhead(1) as bulkhead:

        @bulkhead
        def legacy(fail: bool) -> str:
            """A blocking call."""
            if fail:
                raise error
            return "ok"

        assert legacy(False) == "ok" and legacy.__doc__ == "A blocking call."
        with pytest.raises(Boom) as caught:
            legacy(True)
        assert caught.value is error
        with pytest.raises(TypeError, match="Bulkhead"):

            @bulkhead
            async def not_blocking() -> None:
                """Async."""


def test_thread_pool_bulkhead_acall_from_virtual_time() -> None:
    """acall runs the blocking function on the pool; virtual time stands still meanwhile."""

    def work(x: int) -> int:
        time.sleep(0.01)  # real blocking work: virtual time must not move during it
        return x + 1

    async def main() -> tuple[list[int], float]:
        with ThreadPoolBulkhead(2, max_queue=1, timeout=1.0) as bulkhead:
            results = await asyncio.gather(*(bulkhead.acall(work, i) for i in range(3)))
            with pytest.raises(BulkheadFullError):
                await asyncio.gather(*(bulkhead.acall(work, i) for i in range(4)))
            return list(results), distlab.now()

    results, elapsed = distlab.run(main)
    assert results == [1, 2, 3]
    assert elapsed == 0.0


def test_thread_pool_bulkhead_acall_times_out_on_a_real_loop() -> None:
    """On a real loop, acall gives up after the timeout and the thread keeps its slot."""
    release = threading.Event()

    async def main() -> None:
        with ThreadPoolBulkhead(1, timeout=0.02) as bulkhead:
            with pytest.raises(BulkheadTimeoutError):
                await bulkhead.acall(release.wait, WAIT)
            assert bulkhead.active == 1
            release.set()

    asyncio.run(main())
