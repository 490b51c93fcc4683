"""What the serverless_pipeline exercise's tests run on: orders, faults, and the pipeline run.

The exercise (``solutions/serverless_pipeline/``) asks for a function that stores "order
placed" events from a queue in SQLite, and the consumer that settles each message. This
module gives the tests their world:

* :data:`ORDER_TYPE`, :class:`Order`, :func:`create_schema`, :func:`order_event`;
* :func:`connect`: a SQLite connection whose commits can fail like a busy database
  (``sqlite3.OperationalError: database is locked``) or kill the process
  (:class:`~distlab.errors.ServiceCrash`) after the write and before the commit;
* :func:`run_pipeline`: a seeded workload (valid orders, duplicates, malformed messages)
  through a :class:`~distlab.services.serverless.faults.FaultyQueue` with lost
  acknowledgements and a crash mid-batch, consumed by the student's ``consume`` until the
  queue drains; the :class:`PipelineReport` says what went wrong, seed included.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

from distlab.errors import ServiceCrash
from distlab.services.serverless.events import CloudEvent, encode, make_event
from distlab.services.serverless.faults import FaultyQueue
from distlab.services.serverless.queue import SQLiteQueue
from distlab.sim.vtime import ManualClock

__all__ = [
    "ORDER_TYPE",
    "Order",
    "PipelineReport",
    "connect",
    "create_schema",
    "order_event",
    "run_pipeline",
    "stored_orders",
]

ORDER_TYPE = "com.example.shop.order.placed"
SOURCE = "/shop/checkout"


class Order(NamedTuple):
    """One order, as the database stores it.

    Attributes:
        order_id: the shop's order number ("A-1042").
        customer: who ordered.
        total_cents: the total in cents (an int: money is never a float).
    """

    order_id: str
    customer: str
    total_cents: int


def create_schema(db: sqlite3.Connection) -> None:
    """Create the ``orders`` table: one row per event, keyed on the event's id."""
    with db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders ("
            " event_id TEXT PRIMARY KEY,"
            " order_id TEXT NOT NULL,"
            " customer TEXT NOT NULL,"
            " total_cents INTEGER NOT NULL)"
        )


def stored_orders(path: str | Path) -> dict[str, Order]:
    """Every committed row of the database at ``path``: ``event_id -> Order``."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT event_id, order_id, customer, total_cents FROM orders").fetchall()
    db.close()
    return {row[0]: Order(row[1], row[2], row[3]) for row in rows}


def order_event(data: Any, *, event_id: str = "evt-1", type: str = ORDER_TYPE) -> CloudEvent:
    """An "order placed" CloudEvent with ``data`` (for tests: any data, any type)."""
    return make_event(data, id=event_id, type=type, source=SOURCE)


# --- a database whose commits fail ------------------------------------------------------
class _CommitFaults:
    def __init__(self, crash_at: set[int], transient: float, rng: random.Random) -> None:
        self.crash_at = crash_at
        self.transient = transient
        self.rng = rng
        self.commits = 0
        self.crashes = 0
        self.locked = 0

    def before_commit(self) -> None:
        self.commits += 1
        if self.commits in self.crash_at:
            self.crashes += 1
            raise ServiceCrash(f"the instance died during commit #{self.commits}")
        if self.transient and self.rng.random() < self.transient:
            self.locked += 1
            raise sqlite3.OperationalError("database is locked")


class FaultyConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` whose commits (``commit()`` or ``with db:``) can fail."""

    faults: _CommitFaults | None = None

    def commit(self) -> None:
        """Commit, unless the fault plan fails this commit (then roll back and raise)."""
        if self.faults is not None and self.in_transaction:
            try:
                self.faults.before_commit()
            except BaseException:
                self.rollback()
                raise
        super().commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc_type is None and self.faults is not None and self.in_transaction:
            try:
                self.faults.before_commit()
            except BaseException:
                self.rollback()
                raise
        return super().__exit__(exc_type, exc, tb)


def connect(
    path: str | Path,
    *,
    crash_at_commits: Iterable[int] = (),
    locked: float = 0.0,
    rng: random.Random | None = None,
) -> FaultyConnection:
    """Open the orders database, with faults at commit time.

    Args:
        path: the database file.
        crash_at_commits: commit numbers (1-based, counted on this connection) at which
            the process dies: :class:`~distlab.errors.ServiceCrash`, the write is lost.
        locked: probability in [0, 1] that a commit fails with ``sqlite3.OperationalError:
            database is locked`` (rolled back; a retry later succeeds).
        rng: draws the failures; default ``random.Random(0)``.

    Raises:
        ValueError: ``locked`` outside [0, 1].
    """
    if not 0 <= locked <= 1:
        raise ValueError(f"locked must be a probability in [0, 1], got {locked!r}")
    db = sqlite3.connect(path, factory=FaultyConnection, check_same_thread=False)
    assert isinstance(db, FaultyConnection)
    # WAL + NORMAL: a commit survives a crash of the process without an fsync each time
    # (a grading run commits hundreds of times; with fsync each would cost ~15 ms).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    create_schema(db)
    db.faults = _CommitFaults(set(crash_at_commits), locked, rng or random.Random(0))
    return db


# --- the workload ---------------------------------------------------------------------
_TOTALS = ["19.99", "0.29", "5", "1.10", "1234.50", "0.01", "72.30", "8.05", "100", "33.33"]
_CUSTOMERS = ["ada", "grace", "edsger", "barbara", "ken", "margaret", "tony", "leslie"]


@dataclass(frozen=True)
class _Item:
    body: bytes
    event_id: str | None  # None for a malformed message
    order: Order | None
    what: str  # for messages: "valid" or what is wrong with it


def _cents(total: str) -> int:
    whole, _, frac = total.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _malformed(rng: random.Random, n: int) -> _Item:
    kind = n % 12
    good = {"order_id": f"B-{n}", "customer": rng.choice(_CUSTOMERS), "total": "10.00"}

    def event(data: Any, type: str = ORDER_TYPE) -> bytes:
        return encode(order_event(data, event_id=f"bad-{n}", type=type))

    cases: list[tuple[bytes, str]] = [
        (b"order B-%d for 10.00" % n, "not JSON"),
        (json.dumps(good).encode(), "JSON but not a CloudEvent"),
        (event(good, "com.example.shop.order.cancelled"), "another event type"),
        (event({k: v for k, v in good.items() if k != "customer"}), "no customer"),
        (event({**good, "total": "-5.00"}), "a negative total"),
        (event({**good, "total": "12.345"}), "a total with 3 decimals"),
        (event({**good, "total": 19.99}), "a total that is a JSON number"),
        (event({**good, "total": "abc"}), "a total that is not a number"),
        (event([good]), "data that is a list"),
        (event({**good, "total": "NaN"}), "a total of NaN"),
        (event({**good, "total": "0"}), "a total of 0"),
        (event({**good, "order_id": ""}), "an empty order_id"),
    ]
    body, what = cases[kind]
    return _Item(body, None, None, what)


def _workload(rng: random.Random, valid: int, duplicates: float, malformed: int) -> list[_Item]:
    items = []
    for n in range(valid):
        order = Order(f"A-{1000 + n}", rng.choice(_CUSTOMERS), 0)
        total = _TOTALS[n % len(_TOTALS)]
        order = order._replace(total_cents=_cents(total))
        data = {"order_id": order.order_id, "customer": order.customer, "total": total}
        event_id = f"evt-{rng.getrandbits(48):012x}"
        item = _Item(encode(order_event(data, event_id=event_id)), event_id, order, "valid")
        items.append(item)
        if rng.random() < duplicates:
            items.append(item)  # the producer sent it twice: two messages, one event
    items += [_malformed(rng, n) for n in range(malformed)]
    rng.shuffle(items)
    return items


# --- the run --------------------------------------------------------------------------
@dataclass
class PipelineReport:
    """What one pipeline run did, and every way it fell short.

    Attributes:
        seed: the run's seed (the same seed replays the same run).
        expected: ``event_id -> Order`` for every distinct valid event.
        stored: ``event_id -> Order`` committed in the database at the end.
        dead: ``(what the message was, reason)`` for every dead letter.
        valid_dead: valid events that ended in the dead-letter queue, with the reason.
        left_in_queue: messages neither acknowledged nor dead when the run stopped.
        lost_acks, crashes, locked: faults that happened.
        rounds: calls of ``consume``.
        error: what ``consume`` raised, if it raised something other than a crash.
    """

    seed: int
    expected: dict[str, Order] = field(default_factory=dict)
    stored: dict[str, Order] = field(default_factory=dict)
    dead: list[tuple[str, str]] = field(default_factory=list)
    valid_dead: list[tuple[str, str]] = field(default_factory=list)
    malformed: int = 0
    left_in_queue: int = 0
    lost_acks: int = 0
    crashes: int = 0
    locked: int = 0
    rounds: int = 0
    error: str | None = None

    def problems(self) -> list[str]:
        """What went wrong, the most general first; empty when the run was right."""
        seed = f"(seed {self.seed})"
        found: list[str] = []
        if self.error:
            found.append(
                f"consume raised {self.error} {seed}: it must settle every message itself "
                "(ack, dead-letter, or leave it for a redelivery), never stop the consumer"
            )
        if self.left_in_queue:
            found.append(
                f"{self.left_in_queue} messages were never acknowledged nor dead-lettered "
                f"after {self.rounds} rounds {seed}"
            )
        missing = sorted(set(self.expected) - set(self.stored))
        if missing:
            found.append(
                f"{len(missing)} of {len(self.expected)} valid orders are not in the database, "
                f"e.g. event {missing[0]} ({self.expected[missing[0]].order_id}) {seed}: "
                "commit the write before the ack, so a crash or a lost ack cannot lose it"
            )
        extra = sorted(set(self.stored) - set(self.expected))
        if extra:
            found.append(
                f"{len(extra)} rows come from malformed events, e.g. event {extra[0]} "
                f"{self.stored[extra[0]]} {seed}: validate before you store"
            )
        wrong = [e for e in sorted(self.expected) if e in self.stored]
        wrong = [e for e in wrong if self.stored[e] != self.expected[e]]
        if wrong:
            e = wrong[0]
            found.append(
                f"{len(wrong)} stored orders differ from their events, e.g. {self.stored[e]} "
                f"instead of {self.expected[e]} {seed}"
            )
        for event_id, reason in self.valid_dead[:1]:
            found.append(
                f"{len(self.valid_dead)} valid events ended in the dead-letter queue, e.g. "
                f"{event_id} with reason {reason!r} {seed}: only events that can never "
                "succeed belong there (a locked database succeeds later)"
            )
        slow = [(what, r) for what, r in self.dead if r.startswith("not acknowledged after")]
        slow = [(what, r) for what, r in slow if what != "valid"]
        if slow:
            found.append(
                f"{len(slow)} malformed messages reached the dead-letter queue only after "
                f"every delivery failed, e.g. {slow[0][0]} {seed}: dead-letter them at once, "
                "with the reason"
            )
        return found

    @property
    def ok(self) -> bool:
        """True when every valid order is stored once, right, and every bad one is dead."""
        return not self.problems()

    def summary(self) -> str:
        """One paragraph: the counts, the faults, and the problems (seed included)."""
        lines = [
            f"seed {self.seed}: {len(self.expected)} valid orders, {self.malformed} malformed "
            f"messages; {len(self.stored)} rows stored, {len(self.dead)} dead letters; "
            f"faults: {self.lost_acks} lost acks, {self.crashes} crashes, "
            f"{self.locked} 'database is locked'; {self.rounds} rounds",
        ]
        lines += [f"  - {p}" for p in self.problems()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


Consume = Callable[..., Any]


def run_pipeline(
    consume: Consume,
    *,
    seed: int,
    valid: int = 60,
    duplicates: float = 0.15,
    malformed: int = 12,
    lost_acks: float = 0.2,
    locked: float = 0.05,
    crash: bool = True,
    batch_size: int = 10,
    max_rounds: int = 400,
) -> PipelineReport:
    """Drive ``consume(queue, db, batch_size=...)`` until the queue drains, with faults.

    The queue is a :class:`SQLiteQueue` (visibility timeout 30 s, 10 deliveries) behind a
    :class:`FaultyQueue` that loses ``lost_acks`` of the acknowledgements and, with
    ``crash``, kills the consumer at one ack mid-run; the database fails ``locked`` of
    its commits with "database is locked" and, with ``crash``, kills the consumer during
    one commit. After a crash the run goes on with a fresh connection (a new instance).
    Between rounds the clock moves 10 s, so unacknowledged messages come back.

    Returns:
        The report; ``report.ok`` when every valid order is stored exactly once and right,
        and every malformed message went to the dead-letter queue with its reason.
    """
    rng = random.Random(seed)
    items = _workload(rng, valid, duplicates, malformed)
    report = PipelineReport(seed=seed, malformed=sum(1 for i in items if i.event_id is None))
    report.expected = {i.event_id: i.order for i in items if i.event_id and i.order}
    clock = ManualClock()
    with tempfile.TemporaryDirectory(prefix="distlab-pipeline-") as folder:
        store = Path(folder) / "orders.db"
        inner = SQLiteQueue(
            Path(folder) / "queue.db", clock=clock, visibility_timeout=30, max_deliveries=10
        )
        # Crashes: first during one commit of the first instance, later at one ack.
        crash_commit = {rng.randint(valid // 8, valid // 4)} if crash else set()
        crash_ack = {rng.randint(valid // 2, valid * 3 // 4)} if crash else set()
        queue = FaultyQueue(
            inner, lost_acks=lost_acks, crash_at_acks=crash_ack, rng=random.Random(seed + 1)
        )
        what = {}
        for item in items:
            what[queue.send(item.body)] = item
        faults_rng = random.Random(seed + 2)
        db = connect(store, crash_at_commits=crash_commit, locked=locked, rng=faults_rng)
        try:
            while report.rounds < max_rounds and inner.counts().live:
                report.rounds += 1
                try:
                    consume(queue, db, batch_size=batch_size)
                except ServiceCrash:
                    report.crashes += 1
                    faults = db.faults
                    db.close()  # the instance is gone, with its uncommitted work
                    db = connect(store, locked=locked, rng=faults_rng)
                    if faults is not None:
                        report.locked += faults.locked
                except Exception as exc:
                    report.error = f"{type(exc).__name__}: {exc}"
                    break
                clock.advance(10)
        finally:
            if db.faults is not None:
                report.locked += db.faults.locked
            db.close()
        report.lost_acks = queue.lost
        report.left_in_queue = inner.counts().live
        for letter in inner.dead_letters():
            origin = what.get(letter.id)
            label = "valid" if origin is None or origin.event_id else origin.what
            report.dead.append((label, letter.reason))
            if origin is not None and origin.event_id:
                report.valid_dead.append((origin.event_id, letter.reason))
        report.stored = stored_orders(store)
        inner.close()
    return report
