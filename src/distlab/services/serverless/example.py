"""An example CloudEvent function: store a sensor reading in SQLite, once per event.

Run it as a server on 127.0.0.1 and send it an event with ``curl`` (the README shows
how)::

    DISTLAB_DB=readings.db .venv/bin/functions-framework \\
        --source src/distlab/services/serverless/example.py --target store_reading \\
        --signature-type cloudevent --host 127.0.0.1 --port 8080

The event's data is ``{"sensor": "greenhouse-3", "celsius": 21.5}``. The function

* opens the database once per instance, outside the handler, and reuses the
  connection while the instance stays warm (the database is ``$DISTLAB_DB``);
* raises :class:`distlab.errors.InvalidEvent` for data it can never store, which the
  error handler below turns into ``400`` with the reason (a retry would not help);
* writes with ``INSERT ... ON CONFLICT (event_id) DO NOTHING``: a redelivered or
  duplicated event changes nothing, so at-least-once delivery has an exactly-once effect.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading

import functions_framework
from cloudevents.http import CloudEvent

from distlab.errors import InvalidEvent

__all__ = ["READING_TYPE", "connect", "store_reading", "validate_reading"]

READING_TYPE = "com.example.sensor.reading"
_SCHEMA = """CREATE TABLE IF NOT EXISTS readings (
    event_id TEXT PRIMARY KEY,
    sensor   TEXT NOT NULL,
    celsius  REAL NOT NULL
)"""

_db: sqlite3.Connection | None = None
_db_lock = threading.Lock()


def connect(path: str) -> sqlite3.Connection:
    """Open (and create) the readings database at ``path``."""
    db = sqlite3.connect(path, check_same_thread=False, timeout=10.0)
    # WAL: readers never block the writer, and a commit needs no fsync of the whole file.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)
    db.commit()
    return db


def _database() -> sqlite3.Connection:
    """The instance's connection, opened on the first event (a cold start pays for it)."""
    global _db
    with _db_lock:
        if _db is None:
            _db = connect(os.environ.get("DISTLAB_DB", "readings.db"))
        return _db


def validate_reading(event: CloudEvent) -> tuple[str, float]:
    """Return ``(sensor, celsius)`` from a reading event.

    Raises:
        InvalidEvent: wrong type, data not an object, no sensor name, or a temperature
            that is not a number between -90 and 60 °C.
    """
    if event["type"] != READING_TYPE:
        raise InvalidEvent(f"type must be {READING_TYPE}, got {event['type']!r}")
    data = event.data
    if not isinstance(data, dict):
        raise InvalidEvent(f"data must be a JSON object, got {type(data).__name__}")
    sensor = data.get("sensor")
    if not isinstance(sensor, str) or not sensor.strip():
        raise InvalidEvent(f"sensor must be a non-empty string, got {sensor!r}")
    celsius = data.get("celsius")
    if isinstance(celsius, bool) or not isinstance(celsius, int | float):
        raise InvalidEvent(f"celsius must be a number, got {celsius!r}")
    if not (math.isfinite(celsius) and -90 <= celsius <= 60):
        raise InvalidEvent(f"celsius must be between -90 and 60, got {celsius!r}")
    return sensor.strip(), float(celsius)


@functions_framework.cloud_event
def store_reading(cloud_event: CloudEvent) -> None:
    """Store one reading; an event seen before changes nothing."""
    sensor, celsius = validate_reading(cloud_event)
    db = _database()
    with _db_lock, db:  # one transaction: committed on return, rolled back on error
        db.execute(
            "INSERT INTO readings (event_id, sensor, celsius) VALUES (?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING",
            (cloud_event["id"], sensor, celsius),
        )


@functions_framework.errorhandler(InvalidEvent)  # type: ignore[untyped-decorator]
def _invalid(error: InvalidEvent) -> tuple[str, int]:
    """An event the function can never store: 400 with the reason, so nobody retries it."""
    return f"invalid event: {error.reason}", 400
