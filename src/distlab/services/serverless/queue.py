"""A durable queue with acknowledgements, a visibility timeout and a dead-letter queue.

The contract (the same for :class:`SQLiteQueue` and
:class:`~distlab.services.serverless.redis_queue.RedisStreamsQueue`, and tested the same):

* ``send(body)`` stores a message durably and returns its id.
* ``receive()`` hands out visible messages and *leases* each one for
  ``visibility_timeout`` seconds: nobody else receives it while the lease runs.
* ``ack(message)`` deletes it. A message that is not acknowledged before its lease
  ends becomes visible again and is delivered again (at-least-once delivery): a consumer
  that crashed, or whose acknowledgement was lost, causes a *redelivery*.
* ``release(message)`` gives a message back at once (processing failed, retry soon).
* ``dead_letter(message, reason)`` moves it to the dead-letter queue, with the reason.
* A message delivered ``max_deliveries`` times without an acknowledgement goes to the
  dead-letter queue instead of being delivered again (a *poison message* must not loop
  forever), with the reason ``"not acknowledged after N deliveries"``.
* ``ack``, ``release`` and ``dead_letter`` take the :class:`Message` a ``receive``
  returned; its receipt is valid until the message is delivered again or removed. A
  stale receipt changes nothing and the call returns False.

Time comes from ``clock`` (default ``time.time``, which survives a restart): pass
``distlab.clock()`` or a :class:`distlab.ManualClock` and a 30-second visibility timeout
runs in virtual time.

Why not ``persist-queue``'s ``SQLiteAckQueue``? It marks a message "unack" when it is
handed out, and only ``resume_unack_tasks()`` (run when the queue is opened) makes it
ready again: there is no lease, so in a running system a message whose consumer died is
never redelivered, and there is no delivery count to dead-letter a poison message.
``tests/services/serverless/test_queue.py`` shows it. :class:`SQLiteQueue` is written on
:mod:`sqlite3` instead, with a lease per message.
"""

from __future__ import annotations

import abc
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "MAX_VISIBILITY_TIMEOUT",
    "DeadLetter",
    "DurableQueue",
    "Message",
    "QueueCounts",
    "SQLiteQueue",
]

# Amazon SQS's limits, used as the defaults and bounds here (SQS Developer Guide,
# "Amazon SQS visibility timeout": default 30 seconds, maximum 12 hours).
DEFAULT_VISIBILITY_TIMEOUT = 30.0
MAX_VISIBILITY_TIMEOUT = 12 * 3600.0
MAX_BATCH = 100


@dataclass(frozen=True)
class Message:
    """One delivery of a message.

    Attributes:
        id: the message's id, the same at every delivery (not the event's id: a producer
            that sends the same event twice makes two messages).
        body: the bytes that were sent.
        deliveries: how many times the message has been delivered, this one included.
        receipt: names this delivery; ``ack`` and friends need it.
    """

    id: str
    body: bytes
    deliveries: int
    receipt: str

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes become U+FFFD)."""
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class DeadLetter:
    """A message in the dead-letter queue.

    Attributes:
        id: the message's id.
        body: the bytes that were sent.
        reason: why it is here (the function's reason, or "not acknowledged after N
            deliveries").
        deliveries: how many times it had been delivered.
    """

    id: str
    body: bytes
    reason: str
    deliveries: int


@dataclass(frozen=True)
class QueueCounts:
    """How many messages are where.

    Attributes:
        ready: visible now (never delivered, released, or their lease ran out).
        in_flight: leased to a consumer, invisible until acknowledged or the lease ends.
        dead: in the dead-letter queue.
    """

    ready: int
    in_flight: int
    dead: int

    @property
    def live(self) -> int:
        """Messages still to be processed (ready or in flight)."""
        return self.ready + self.in_flight


def _exhausted_reason(deliveries: int) -> str:
    return f"not acknowledged after {deliveries} deliveries"


class DurableQueue(abc.ABC):
    """What every queue of the course offers (see the module docstring for the contract).

    Args:
        visibility_timeout: seconds a received message stays invisible (0 < t <= 12 h).
        max_deliveries: deliveries without an acknowledgement before the message goes to
            the dead-letter queue (>= 1).
        clock: returns the current time in seconds.

    Raises:
        ValueError: for a visibility timeout or a delivery count out of range.
    """

    def __init__(
        self,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(visibility_timeout, int | float) or not (
            0 < visibility_timeout <= MAX_VISIBILITY_TIMEOUT
        ):
            raise ValueError(
                "visibility_timeout must be a number of seconds in (0, 43200] (12 hours, "
                f"the SQS maximum), got {visibility_timeout!r}"
            )
        if isinstance(max_deliveries, bool) or not isinstance(max_deliveries, int):
            raise ValueError(f"max_deliveries must be an int >= 1, got {max_deliveries!r}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be an int >= 1, got {max_deliveries!r}")
        if not callable(clock):
            raise ValueError(f"clock must be a callable returning seconds, got {clock!r}")
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = max_deliveries
        self.clock = clock

    # --- the contract -------------------------------------------------------------------
    def send(self, body: bytes | str) -> str:
        """Store ``body`` durably and return the new message's id.

        Raises:
            TypeError: when ``body`` is neither bytes nor str.
        """
        return self._send(_as_bytes(body))

    def receive(self, max_messages: int = 1) -> list[Message]:
        """Lease up to ``max_messages`` visible messages (possibly none).

        Messages that ran out of deliveries go to the dead-letter queue on the way.

        Raises:
            ValueError: when ``max_messages`` is not an int in [1, 100].
        """
        if (
            isinstance(max_messages, bool)
            or not isinstance(max_messages, int)
            or not 1 <= max_messages <= MAX_BATCH
        ):
            raise ValueError(f"max_messages must be an int in [1, 100], got {max_messages!r}")
        return self._receive(max_messages)

    def ack(self, message: Message) -> bool:
        """Delete ``message``: it was processed. False when its receipt is stale."""
        return self._ack(_as_message(message))

    def release(self, message: Message) -> bool:
        """Make ``message`` visible again now (it still counts as a delivery).

        Returns False when the receipt is stale.
        """
        return self._release(_as_message(message))

    def dead_letter(self, message: Message, reason: str) -> bool:
        """Move ``message`` to the dead-letter queue with ``reason``.

        Returns False when the receipt is stale.

        Raises:
            ValueError: when ``reason`` is empty (whoever reads the queue needs it).
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty string, got {reason!r}")
        return self._dead_letter(_as_message(message), reason)

    @abc.abstractmethod
    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the dead-letter queue, oldest first."""

    @abc.abstractmethod
    def counts(self) -> QueueCounts:
        """How many messages are ready, in flight and dead, now."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection (the data stays)."""

    # --- for implementations -------------------------------------------------------------
    @abc.abstractmethod
    def _send(self, body: bytes) -> str: ...

    @abc.abstractmethod
    def _receive(self, max_messages: int) -> list[Message]: ...

    @abc.abstractmethod
    def _ack(self, message: Message) -> bool: ...

    @abc.abstractmethod
    def _release(self, message: Message) -> bool: ...

    @abc.abstractmethod
    def _dead_letter(self, message: Message, reason: str) -> bool: ...

    def __enter__(self) -> DurableQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _as_bytes(body: object) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, got {type(body).__name__}")


def _as_message(message: object) -> Message:
    if not isinstance(message, Message):
        raise TypeError(
            f"message must be a Message returned by receive(), got {type(message).__name__}"
        )
    return message


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    body       BLOB    NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    visible_at REAL    NOT NULL,
    receipt    TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    reason     TEXT    NOT NULL,
    deliveries INTEGER NOT NULL
);
"""


class SQLiteQueue(DurableQueue):
    """The durable queue on one SQLite file (the embedded default).

    Several ``SQLiteQueue`` objects, in one process or several, may open the same file:
    a receive is one ``BEGIN IMMEDIATE`` transaction, so two consumers never lease the
    same message. Every change is committed before the method returns, so a process
    killed at any point loses nothing that a call had confirmed.

    Args:
        path: the database file (created if missing), or ``":memory:"`` for a queue
            that lives as long as this object.
        visibility_timeout, max_deliveries, clock: see :class:`DurableQueue`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            visibility_timeout=visibility_timeout, max_deliveries=max_deliveries, clock=clock
        )
        self.path = str(path)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self._lock = threading.Lock()
        if self.path != ":memory:":
            # WAL: readers never block the writer; NORMAL: a commit survives a crash of
            # the process (the OS keeps the log); only a power cut can lose the last ones.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return (
            f"SQLiteQueue({self.path!r}, visibility_timeout={self.visibility_timeout:g}, "
            f"max_deliveries={self.max_deliveries})"
        )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"{self!r} is closed")
        return self._db

    def _now(self) -> float:
        now = float(self.clock())
        if not math.isfinite(now):
            raise ValueError(f"clock returned {now!r}, not a finite number of seconds")
        return now

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn(), self._lock)

    def _send(self, body: bytes) -> str:
        message_id = uuid.uuid4().hex
        with self._transaction() as db:
            db.execute(
                "INSERT INTO messages (id, body, visible_at) VALUES (?, ?, ?)",
                (message_id, body, -math.inf),
            )
        return message_id

    def _receive(self, max_messages: int) -> list[Message]:
        now = self._now()
        leased: list[Message] = []
        with self._transaction() as db:
            while len(leased) < max_messages:
                rows = db.execute(
                    "SELECT seq, id, body, deliveries FROM messages WHERE visible_at <= ? "
                    "ORDER BY visible_at, seq LIMIT ?",
                    (now, max_messages - len(leased)),
                ).fetchall()
                if not rows:
                    break
                for seq, message_id, body, deliveries in rows:
                    if deliveries >= self.max_deliveries:
                        self._move_to_dead(db, seq, _exhausted_reason(deliveries))
                        continue
                    receipt = f"{message_id}:{deliveries + 1}:{uuid.uuid4().hex[:8]}"
                    db.execute(
                        "UPDATE messages SET deliveries = ?, visible_at = ?, receipt = ? "
                        "WHERE seq = ?",
                        (deliveries + 1, now + self.visibility_timeout, receipt, seq),
                    )
                    leased.append(Message(message_id, bytes(body), deliveries + 1, receipt))
        return leased

    @staticmethod
    def _move_to_dead(db: sqlite3.Connection, seq: int, reason: str) -> None:
        db.execute(
            "INSERT INTO dead_letters (id, body, reason, deliveries) "
            "SELECT id, body, ?, deliveries FROM messages WHERE seq = ?",
            (reason, seq),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

    def _current_seq(self, db: sqlite3.Connection, message: Message) -> int | None:
        row = db.execute(
            "SELECT seq FROM messages WHERE id = ? AND receipt = ?", (message.id, message.receipt)
        ).fetchone()
        return None if row is None else int(row[0])

    def _ack(self, message: Message) -> bool:
        with self._transaction() as db:
            seq = self._current_seq(db, message)
            if seq is None:
                return False
            db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            return True

    def _release(self, message: Message) -> bool:
        with self._transaction() as db:
            seq = self._current_seq(db, message)
            if seq is None:
                return False
            db.execute("UPDATE messages SET visible_at = ? WHERE seq = ?", (self._now(), seq))
            return True

    def _dead_letter(self, message: Message, reason: str) -> bool:
        with self._transaction() as db:
            seq = self._current_seq(db, message)
            if seq is None:
                return False
            self._move_to_dead(db, seq, reason)
            return True

    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the dead-letter queue, oldest first."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT id, body, reason, deliveries FROM dead_letters ORDER BY seq")
                .fetchall()
            )
        return [DeadLetter(i, bytes(b), r, d) for i, b, r, d in rows]

    def counts(self) -> QueueCounts:
        """How many messages are ready, in flight and dead, now."""
        now = self._now()
        with self._lock:
            db = self._conn()
            ready, in_flight = db.execute(
                "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0) "
                "FROM messages",
                (now, now),
            ).fetchone()
            (dead,) = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        return QueueCounts(int(ready), int(in_flight), int(dead))

    def close(self) -> None:
        """Close the connection; the file keeps every message. Closing twice is fine."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class _Transaction:
    """``with`` block: the lock, BEGIN IMMEDIATE, then COMMIT (or ROLLBACK on error)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._lock.release()
