"""Benchmark the durable queues: messages a second through send, receive and ack.

Run it with ``.venv/bin/python -m benchmarks queue``. It prints, measured side by side in
one run, the rate of a full cycle (send, then receive and ack in batches of 10) for:

- ``SQLiteQueue`` (the embedded default, one SQLite file in WAL mode);
- ``RedisStreamsQueue`` on a real redis-server over a Unix socket (append-only file,
  ``appendfsync everysec``: the guarantee of SQLite's WAL with ``synchronous=NORMAL``);
- persist-queue's ``SQLiteAckQueue``, the library the queue is not built on (no visibility
  timeout: see ``distlab.services.serverless.queue``), for scale.

Goal (printed, not asserted): both course queues at least 500 messages a second, so a
graded pipeline of ~100 messages costs well under a second of queue time.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from persistqueue import SQLiteAckQueue

from distlab.services.serverless.queue import DurableQueue, SQLiteQueue
from distlab.services.serverless.redis_queue import RedisServer, RedisStreamsQueue

MESSAGES = 2000
BATCH = 10
GOAL = 500.0  # messages a second


def _cycle(queue: DurableQueue) -> float:
    """Seconds to send MESSAGES, then receive and ack them all in batches."""
    started = time.perf_counter()
    for n in range(MESSAGES):
        queue.send(b"reading %d" % n)
    done = 0
    while batch := queue.receive(BATCH):
        for message in batch:
            queue.ack(message)
            done += 1
    assert done == MESSAGES, done
    return time.perf_counter() - started


def _persist_queue(folder: Path) -> float:
    queue = SQLiteAckQueue(str(folder / "pq"), multithreading=True)
    started = time.perf_counter()
    for n in range(MESSAGES):
        queue.put(b"reading %d" % n)
    for _ in range(MESSAGES):
        queue.ack(queue.get(block=False))
    return time.perf_counter() - started


def main() -> dict[str, float]:
    """Print and return messages a second for each queue."""
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="distlab-bench-") as name:
        folder = Path(name)
        runs: dict[str, Callable[[], float]] = {
            "sqlite_queue": lambda: _cycle(SQLiteQueue(folder / "q.db")),
            "persist_queue": lambda: _persist_queue(folder),
        }
        with RedisServer() as server:
            client = server.client()
            runs["redis_streams_queue"] = lambda: _cycle(RedisStreamsQueue(client, "bench"))
            for label, run in runs.items():
                rates[label] = MESSAGES / run()
            client.close()
    for label, rate in rates.items():
        mark = "" if label == "persist_queue" else ("  ok" if rate >= GOAL else "  BELOW GOAL")
        print(f"{label:<22} {rate:8.0f} messages/s{mark}")
    print(f"goal: course queues >= {GOAL:.0f} messages/s (send + receive + ack)")
    return rates


if __name__ == "__main__":
    main()
