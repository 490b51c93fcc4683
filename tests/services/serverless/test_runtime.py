"""The function runtime on virtual time, and the queue trigger that drives it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import distlab
from distlab.errors import InvalidEvent, ServiceCrash
from distlab.services.serverless.events import encode, make_event
from distlab.services.serverless.faults import FaultyQueue
from distlab.services.serverless.queue import SQLiteQueue
from distlab.services.serverless.runtime import FunctionRuntime, QueueTrigger


def test_the_first_request_is_cold_and_the_next_ones_warm() -> None:
    """cold_start 0.5 s + duration 0.1 s; then 0.1 s on the same instance."""

    async def main() -> list[Any]:
        runtime = FunctionRuntime(cold_start=0.5, duration=0.1)
        first = await runtime.invoke()
        second = await runtime.invoke()
        return [first, second, runtime.cold_starts]

    first, second, cold_starts = distlab.run(main)
    assert (first.cold, round(first.latency, 9), first.instance) == (True, 0.6, 1)
    assert (second.cold, round(second.latency, 9), second.instance) == (False, 0.1, 1)
    assert cold_starts == 1


def test_an_idle_instance_is_shut_down_and_the_next_request_is_cold_again() -> None:
    """Scale to zero: idle for idle_timeout -> no instance; then a new cold start."""

    async def main() -> tuple[Any, ...]:
        runtime = FunctionRuntime(cold_start=1, duration=0, idle_timeout=600)
        await runtime.invoke()
        await asyncio.sleep(599)
        alive_before = len(runtime.alive)
        await asyncio.sleep(2)
        alive_after = len(runtime.alive)
        late = await runtime.invoke()
        return alive_before, alive_after, late.cold, late.instance, runtime.timeline

    before, after, cold, instance, timeline = distlab.run(main)
    assert (before, after, cold, instance) == (1, 0, True, 2)
    assert [n for _, n in timeline] == [0, 1, 0, 1]
    assert timeline[2][0] == pytest.approx(601.0)


def test_provisioned_instances_are_warm_and_never_shut_down() -> None:
    """With provisioned=2 two simultaneous requests are warm, even after an hour idle."""

    async def main() -> list[Any]:
        runtime = FunctionRuntime(cold_start=1, duration=0.1, provisioned=2, idle_timeout=60)
        await asyncio.sleep(3600)
        calls = await asyncio.gather(*(runtime.invoke() for _ in range(3)))
        return [[c.cold for c in calls], len(runtime.alive), runtime.instance_seconds()]

    colds, alive, seconds = distlab.run(main)
    assert colds == [False, False, True]
    assert alive == 3
    # until the cold one is done (t = 3601.1 s): 2 provisioned lifetimes + its own 1.1 s
    assert seconds == pytest.approx(2 * 3601.1 + 1.1)


def test_concurrency_beyond_the_limit_is_throttled() -> None:
    """max_concurrency=2 and 3 requests at once: one is refused at once."""

    async def main() -> list[str]:
        runtime = FunctionRuntime(cold_start=0.2, duration=1, max_concurrency=2)
        calls = await asyncio.gather(*(runtime.invoke() for _ in range(3)))
        return [c.outcome for c in calls]

    assert sorted(distlab.run(main)) == ["ok", "ok", "throttled"]


def test_durations_are_drawn_from_the_seeded_generator() -> None:
    """The same seed gives the same latencies; another seed different ones."""

    async def main() -> list[float]:
        runtime = FunctionRuntime(cold_start=lambda r: r.uniform(0.1, 1), duration=0)
        calls = await asyncio.gather(*(runtime.invoke() for _ in range(5)))
        return [c.latency for c in calls]

    assert distlab.run(main, seed=3) == distlab.run(main, seed=3) != distlab.run(main, seed=4)


def test_a_function_error_is_an_outcome_not_an_exception() -> None:
    """invoke() records 'error' with the exception; the instance stays warm."""

    def broken(event: Any) -> None:
        raise ValueError("bad")

    async def main() -> Any:
        runtime = FunctionRuntime(broken)
        result = await runtime.invoke("e")
        return result, len(runtime.alive)

    result, alive = distlab.run(main)
    assert (result.outcome, type(result.error), alive) == ("error", ValueError, 1)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"cold_start": -1}, "cold_start"),
        ({"duration": "fast"}, "duration"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"provisioned": -1}, "provisioned"),
        ({"provisioned": 5, "max_concurrency": 2}, "provisioned must be <= max_concurrency"),
        ({"idle_timeout": 0}, "idle_timeout"),
        ({"function": 3}, "function"),
    ],
)
def test_bad_runtime_options_are_named(options: dict[str, Any], name: str) -> None:
    """Each bad option raises ValueError naming it."""

    async def main() -> None:
        FunctionRuntime(**options)

    with pytest.raises(ValueError, match=name):
        distlab.run(main)


# --- the trigger ----------------------------------------------------------------------
def _store(db: sqlite3.Connection) -> Any:
    def store(event: Any) -> None:
        if not isinstance(event.data, dict) or "n" not in event.data:
            raise InvalidEvent("data needs n")
        with db:
            db.execute("INSERT OR IGNORE INTO t VALUES (?, ?)", (event["id"], event.data["n"]))

    return store


def _setup(tmp_path: Path, **options: Any) -> tuple[SQLiteQueue, sqlite3.Connection, Any]:
    clock = distlab.ManualClock()  # replaced by the loop's clock inside run()
    queue = SQLiteQueue(tmp_path / "q.db", clock=clock, **options)
    db = sqlite3.connect(tmp_path / "out.db", check_same_thread=False)
    db.execute("CREATE TABLE t (id TEXT PRIMARY KEY, n INT)")
    return queue, db, clock


def test_the_trigger_acks_good_messages_and_dead_letters_bad_ones(tmp_path: Path) -> None:
    """10 good events -> 10 rows; garbage and bad data -> DLQ with the reasons."""
    queue, db, _ = _setup(tmp_path)
    for i in range(10):
        queue.send(encode(make_event({"n": i}, id=f"e{i}")))
    queue.send(b"garbage")
    queue.send(encode(make_event({"m": 1}, id="bad")))

    async def main() -> Any:
        queue.clock = distlab.clock()
        runtime = FunctionRuntime(_store(db), cold_start=0.3, duration=0.01)
        return await QueueTrigger(queue, runtime, batch_size=5).run()

    report = distlab.run(main)
    assert (report.acked, report.dead_lettered, report.failed) == (10, 2, 0)
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (10,)
    reasons = [d.reason for d in queue.dead_letters()]
    assert reasons[0].startswith("not a CloudEvent") and reasons[1] == "data needs n"
    assert queue.counts().live == 0


def test_lost_acks_and_a_crash_mid_batch_redeliver_and_the_idempotent_write_holds(
    tmp_path: Path,
) -> None:
    """20 % of acks lost and a crash at the 7th ack: redeliveries, still exactly 30 rows."""
    queue, db, _ = _setup(tmp_path, visibility_timeout=30)
    for i in range(30):
        queue.send(encode(make_event({"n": i}, id=f"e{i}")))
    calls: list[str] = []
    store = _store(db)

    def counting(event: Any) -> None:
        calls.append(event["id"])
        store(event)

    async def main() -> Any:
        queue.clock = distlab.clock()
        faulty = FaultyQueue(queue, lost_acks=0.2, crash_at_acks={7}, rng=distlab.rng())
        runtime = FunctionRuntime(counting, cold_start=0.3, duration=0.01)
        report = await QueueTrigger(faulty, runtime, batch_size=10).run()
        return report, faulty, runtime

    report, faulty, runtime = distlab.run(main, seed=5)
    assert faulty.lost > 0 and report.crashes == 1
    assert len(calls) > 30  # redeliveries happened
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (30,)
    assert queue.counts().live == 0 and queue.dead_letters() == []
    assert runtime.instances[0].died is not None  # the crashed instance is gone


def test_a_failing_function_is_retried_after_the_visibility_timeout_then_dead(
    tmp_path: Path,
) -> None:
    """A function that always raises: 3 deliveries 30 s apart, then the DLQ."""
    queue, _, _ = _setup(tmp_path, visibility_timeout=30, max_deliveries=3)
    queue.send(encode(make_event({"n": 1}, id="e")))
    seen: list[float] = []

    def flaky(event: Any) -> None:
        seen.append(distlab.now())
        raise sqlite3.OperationalError("database is locked")

    async def main() -> Any:
        queue.clock = distlab.clock()
        runtime = FunctionRuntime(flaky, cold_start=0, duration=0)
        return await QueueTrigger(queue, runtime, poll_interval=1).run()

    report = distlab.run(main)
    assert seen == [0.0, 30.0, 60.0]
    assert report.failed == 3 and "database is locked" in report.errors[0]
    assert queue.dead_letters()[0].reason == "not acknowledged after 3 deliveries"


def test_a_crash_raised_by_the_function_kills_only_that_instance(tmp_path: Path) -> None:
    """ServiceCrash in the 3rd call: the instance dies, a new one finishes the work."""
    queue, db, _ = _setup(tmp_path, visibility_timeout=10)
    for i in range(5):
        queue.send(encode(make_event({"n": i}, id=f"e{i}")))
    store = _store(db)
    count = {"calls": 0}

    def dying(event: Any) -> None:
        count["calls"] += 1
        if count["calls"] == 3:
            raise ServiceCrash("killed")
        store(event)

    async def main() -> Any:
        queue.clock = distlab.clock()
        runtime = FunctionRuntime(dying, cold_start=0.5, duration=0)
        report = await QueueTrigger(queue, runtime, batch_size=5).run()
        return report, runtime

    report, runtime = distlab.run(main)
    assert report.crashes == 1 and report.acked == 5
    assert [i.number for i in runtime.instances] == [1, 2]
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (5,)


def test_bad_trigger_options_are_named(tmp_path: Path) -> None:
    """batch_size, pollers, poll_interval and the types of queue and runtime are checked."""
    queue, _, _ = _setup(tmp_path)

    async def main() -> list[str]:
        runtime = FunctionRuntime()
        errors = []
        for options in (
            {"batch_size": 0},
            {"batch_size": 101},
            {"pollers": 0},
            {"poll_interval": 0},
        ):
            try:
                QueueTrigger(queue, runtime, **options)
            except ValueError as exc:
                errors.append(str(exc).split(" ")[0])
        for bad in ((object(), runtime), (queue, object())):
            try:
                QueueTrigger(*bad)  # type: ignore[arg-type]
            except ValueError as exc:
                errors.append(str(exc).split(" ")[0])
        return errors

    assert distlab.run(main) == [
        "batch_size",
        "batch_size",
        "pollers",
        "poll_interval",
        "queue",
        "runtime",
    ]
