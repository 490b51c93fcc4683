"""FaultyQueue: lost acks are believed by the consumer and redelivered by the queue."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import distlab
from distlab.errors import ServiceCrash
from distlab.services.serverless.faults import FaultyQueue
from distlab.services.serverless.queue import SQLiteQueue


def _queue(tmp_path: Path) -> tuple[SQLiteQueue, distlab.ManualClock]:
    clock = distlab.ManualClock()
    return SQLiteQueue(tmp_path / "q.db", clock=clock, visibility_timeout=30), clock


def test_about_a_fifth_of_acks_are_lost_and_their_messages_come_back(tmp_path: Path) -> None:
    """lost_acks=0.2 over 1000 acks: 200 ± 5 sigma lost, each one redelivered."""
    queue, clock = _queue(tmp_path)
    faulty = FaultyQueue(queue, lost_acks=0.2, rng=random.Random(1))
    for i in range(1000):
        faulty.send(f"m{i}")
    for message in [m for _ in range(10) for m in faulty.receive(100)]:
        assert faulty.ack(message) is True  # the consumer always believes it
    sigma = (1000 * 0.2 * 0.8) ** 0.5
    assert abs(faulty.lost - 200) < 5 * sigma
    clock.advance(30)
    assert len(faulty.receive(100) + faulty.receive(100) + faulty.receive(100)) == faulty.lost


def test_a_crash_at_an_ack_leaves_the_message_unacknowledged(tmp_path: Path) -> None:
    """crash_at_acks={2}: the 2nd ack raises ServiceCrash and does not reach the queue."""
    queue, clock = _queue(tmp_path)
    faulty = FaultyQueue(queue, crash_at_acks={2})
    faulty.send("a")
    faulty.send("b")
    first, second = faulty.receive(2)
    assert faulty.ack(first)
    with pytest.raises(ServiceCrash, match="ack #2"):
        faulty.ack(second)
    clock.advance(30)
    assert [m.body for m in faulty.receive(5)] == [b"b"]
    assert (faulty.acks, faulty.crashed) == (2, 1)


def test_the_wrapper_passes_everything_else_through(tmp_path: Path) -> None:
    """release, dead_letter, dead_letters, counts and close reach the real queue."""
    queue, _ = _queue(tmp_path)
    faulty = FaultyQueue(queue)
    faulty.send("a")
    faulty.send("b")
    a, b = faulty.receive(2)
    assert faulty.release(a) and faulty.dead_letter(b, "bad")
    assert [d.reason for d in faulty.dead_letters()] == ["bad"]
    assert faulty.counts().ready == 1
    assert "lost_acks=0" in repr(faulty)
    faulty.close()
    with pytest.raises(ValueError, match="closed"):
        queue.send("x")


@pytest.mark.parametrize(
    ("options", "name"),
    [({"lost_acks": 1.5}, "lost_acks"), ({"crash_at_acks": [0]}, "crash_at_acks")],
)
def test_bad_options_are_named(tmp_path: Path, options: dict[str, object], name: str) -> None:
    """A probability outside [0, 1] or an ack number < 1 is refused by name."""
    queue, _ = _queue(tmp_path)
    with pytest.raises(ValueError, match=name):
        FaultyQueue(queue, **options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue must be"):
        FaultyQueue(object())  # type: ignore[arg-type]
