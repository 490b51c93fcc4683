"""The durable queue's contract, run against SQLite and against Redis Streams alike.

Every test takes the ``make_queue`` fixture, parametrized over both backends, and a
ManualClock: a 30-second visibility timeout passes in no real time.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import distlab
from distlab.services.serverless.queue import DurableQueue, Message, QueueCounts, SQLiteQueue
from distlab.services.serverless.redis_queue import RedisStreamsQueue

MakeQueue = Callable[..., DurableQueue]
_names = itertools.count()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
def make_queue(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeQueue]:
    """Open queues on one shared store (one file, or one stream): several consumers."""
    opened: list[DurableQueue] = []
    clients: list[Any] = []
    name = f"q{next(_names)}"

    def make(**options: Any) -> DurableQueue:
        options.setdefault("clock", distlab.ManualClock())
        queue: DurableQueue
        if backend == "sqlite":
            queue = SQLiteQueue(tmp_path / "queue.db", **options)
        else:
            client = request.getfixturevalue("redis_server").client()
            clients.append(client)
            queue = RedisStreamsQueue(client, name, **options)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        queue.close()
    for client in clients:
        client.close()


def test_a_sent_message_is_received_with_its_body_and_first_delivery(make_queue: MakeQueue) -> None:
    """send -> receive gives the same bytes, deliveries == 1, and a str body is UTF-8."""
    queue = make_queue()
    first = queue.send(b"\x00\xffraw")
    second = queue.send("café")
    got = queue.receive(max_messages=10)
    assert [(m.id, m.body, m.deliveries) for m in got] == [
        (first, b"\x00\xffraw", 1),
        (second, "café".encode(), 1),
    ]
    assert got[1].text() == "café"
    assert queue.receive() == []


def test_a_leased_message_is_invisible_until_its_visibility_timeout_ends(
    make_queue: MakeQueue,
) -> None:
    """Nobody gets it again before 30 s; at 30 s it is redelivered, deliveries == 2."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock, visibility_timeout=30)
    other = make_queue(clock=clock, visibility_timeout=30)
    message_id = queue.send("order-1")
    (first,) = queue.receive()
    clock.advance(29)
    assert other.receive() == [] and queue.receive() == []
    assert queue.counts() == QueueCounts(ready=0, in_flight=1, dead=0)
    clock.advance(1)
    assert queue.counts() == QueueCounts(ready=1, in_flight=0, dead=0)
    (again,) = other.receive()
    assert (again.id, again.body, again.deliveries) == (message_id, b"order-1", 2)
    assert again.receipt != first.receipt


def test_an_acknowledged_message_is_never_delivered_again(make_queue: MakeQueue) -> None:
    """ack deletes: after any time, nothing comes back and nothing is counted."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock)
    queue.send("x")
    (message,) = queue.receive()
    assert queue.ack(message) is True
    clock.advance(3600)
    assert queue.receive() == []
    assert queue.counts() == QueueCounts(0, 0, 0)


def test_a_stale_receipt_changes_nothing(make_queue: MakeQueue) -> None:
    """After a redelivery, the first consumer's ack, release and dead_letter return False."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock, visibility_timeout=10)
    queue.send("x")
    (old,) = queue.receive()
    clock.advance(10)
    (new,) = queue.receive()
    assert queue.ack(old) is False
    assert queue.release(old) is False
    assert queue.dead_letter(old, "late") is False
    assert queue.counts() == QueueCounts(ready=0, in_flight=1, dead=0)
    assert queue.ack(new) is True
    assert queue.ack(new) is False  # twice: already gone


def test_an_ack_after_the_lease_ended_but_before_a_redelivery_still_counts(
    make_queue: MakeQueue,
) -> None:
    """The receipt is valid until the message is delivered again."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock, visibility_timeout=10)
    queue.send("x")
    (message,) = queue.receive()
    clock.advance(25)
    assert queue.ack(message) is True
    assert queue.receive() == []


def test_release_makes_a_message_visible_at_once_and_counts_the_delivery(
    make_queue: MakeQueue,
) -> None:
    """release (a nack) -> receive again with no time passing, deliveries == 2."""
    queue = make_queue(visibility_timeout=300)
    queue.send("x")
    (message,) = queue.receive()
    assert queue.release(message) is True
    (again,) = queue.receive()
    assert again.deliveries == 2


def test_a_message_never_acknowledged_goes_to_the_dead_letter_queue_after_max_deliveries(
    make_queue: MakeQueue,
) -> None:
    """With max_deliveries=3 it is delivered 3 times, then dead with the reason."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock, visibility_timeout=5, max_deliveries=3)
    message_id = queue.send("poison")
    deliveries = []
    for _ in range(6):
        deliveries += [m.deliveries for m in queue.receive()]
        clock.advance(5)
    assert deliveries == [1, 2, 3]
    (dead,) = queue.dead_letters()
    assert (dead.id, dead.body, dead.deliveries) == (message_id, b"poison", 3)
    assert dead.reason == "not acknowledged after 3 deliveries"
    assert queue.counts() == QueueCounts(0, 0, 1)


def test_dead_letter_moves_a_message_with_the_functions_reason(make_queue: MakeQueue) -> None:
    """An explicit dead_letter keeps the body, the reason and the delivery count."""
    queue = make_queue()
    queue.send(b"{not json")
    queue.send(b"fine")
    bad, good = queue.receive(max_messages=2)
    assert queue.dead_letter(bad, "body is not JSON") is True
    assert queue.ack(good) is True
    assert [(d.body, d.reason, d.deliveries) for d in queue.dead_letters()] == [
        (b"{not json", "body is not JSON", 1)
    ]


def test_receive_takes_at_most_max_messages_and_leaves_the_rest(make_queue: MakeQueue) -> None:
    """25 messages, batches of 10: 10, 10, 5, then nothing; nothing delivered twice."""
    queue = make_queue()
    sent = {queue.send(f"m{i}") for i in range(25)}
    batches = [queue.receive(max_messages=10) for _ in range(4)]
    assert [len(b) for b in batches] == [10, 10, 5, 0]
    assert {m.id for b in batches for m in b} == sent


def test_two_consumers_racing_never_get_the_same_message(make_queue: MakeQueue) -> None:
    """Four threads with their own queue objects split 200 messages without overlap."""
    clock = distlab.ManualClock()
    producer = make_queue(clock=clock)
    sent = {producer.send(f"m{i}") for i in range(200)}
    consumers = [make_queue(clock=clock) for _ in range(4)]
    got: list[list[Message]] = [[] for _ in consumers]

    def drain(i: int) -> None:
        while batch := consumers[i].receive(max_messages=7):
            got[i] += batch

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [m.id for g in got for m in g]
    assert len(ids) == len(set(ids)) == 200 and set(ids) == sent


def test_messages_survive_a_reopen_and_leases_keep_running(make_queue: MakeQueue) -> None:
    """Close the queue mid-lease, open it again: the lease still ends at 30 s."""
    clock = distlab.ManualClock()
    queue = make_queue(clock=clock, visibility_timeout=30)
    queue.send("a")
    queue.send("b")
    (leased,) = queue.receive()
    queue.close()
    reopened = make_queue(clock=clock, visibility_timeout=30)
    (other,) = reopened.receive()
    assert other.body != leased.body
    clock.advance(30)
    (back,) = reopened.receive()
    assert (back.id, back.deliveries) == (leased.id, 2)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"visibility_timeout": 0}, "visibility_timeout"),
        ({"visibility_timeout": 43201}, "visibility_timeout"),
        ({"visibility_timeout": float("nan")}, "visibility_timeout"),
        ({"max_deliveries": 0}, "max_deliveries"),
        ({"max_deliveries": 2.5}, "max_deliveries"),
        ({"max_deliveries": True}, "max_deliveries"),
        ({"clock": 3.0}, "clock"),
    ],
)
def test_bad_options_are_refused_with_the_parameters_name(
    make_queue: MakeQueue, options: dict[str, Any], match: str
) -> None:
    """Each bad option raises ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        make_queue(**options)


def test_bad_calls_are_refused_with_the_parameters_name(make_queue: MakeQueue) -> None:
    """receive(0), send(42), ack('id') and an empty reason are refused, naming the problem."""
    queue = make_queue()
    with pytest.raises(ValueError, match="max_messages"):
        queue.receive(max_messages=0)
    with pytest.raises(ValueError, match="max_messages"):
        queue.receive(max_messages=101)
    with pytest.raises(TypeError, match="body must be bytes or str"):
        queue.send(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Message returned by receive"):
        queue.ack("some-id")  # type: ignore[arg-type]
    queue.send("x")
    (message,) = queue.receive()
    with pytest.raises(ValueError, match="reason"):
        queue.dead_letter(message, "  ")


def test_a_closed_queue_says_so(make_queue: MakeQueue) -> None:
    """Using a closed queue raises ValueError('... is closed'); closing twice is fine."""
    queue = make_queue()
    queue.close()
    queue.close()
    with pytest.raises(ValueError, match="is closed"):
        queue.send("x")


def test_persist_queue_cannot_redeliver_while_running(tmp_path: Path) -> None:
    """Why SQLiteQueue exists: SQLiteAckQueue never redelivers a message a dead consumer held.

    Its "unack" message comes back only when the queue is opened again (auto_resume),
    however long the running system waits; SQLiteQueue redelivers after the timeout.
    """
    from persistqueue import SQLiteAckQueue
    from persistqueue.exceptions import Empty

    persisted = SQLiteAckQueue(str(tmp_path / "pq"), multithreading=True)
    persisted.put("order-1")
    assert persisted.get(block=False) == "order-1"  # the consumer then dies: no ack
    assert persisted.unack_count() == 1
    with pytest.raises(Empty):
        persisted.get(block=False)  # an hour later, still nothing to retry
    reopened = SQLiteAckQueue(str(tmp_path / "pq"), multithreading=True)
    assert reopened.get(block=False) == "order-1"  # only a restart brings it back

    clock = distlab.ManualClock()
    queue = SQLiteQueue(tmp_path / "ours.db", clock=clock, visibility_timeout=30)
    queue.send("order-1")
    assert queue.receive()[0].deliveries == 1
    clock.advance(30)
    assert queue.receive()[0].deliveries == 2
    queue.close()
