"""Small runnable scenarios the lessons show, kept here so tests can check their numbers.

``outage_demo`` is lesson 00's first taste of virtual time: a client polls a service
that is down for a minute, and the whole minute runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import httpx

from distlab.sim.apps import hello_app
from distlab.sim.faults import FaultyTransport
from distlab.sim.netsim import canonical_digest
from distlab.sim.vtime import now, run

__all__ = ["OutageReport", "outage_demo"]


@dataclass(frozen=True)
class OutageReport:
    """What the client in ``outage_demo`` saw.

    Attributes:
        attempts: requests sent, including the one that succeeded.
        failures: requests that failed (a 5xx during the outage, or lost and timed out).
        recovered_at: virtual time of the first successful answer, in seconds.
        virtual_seconds: virtual time the whole run took.
        real_seconds: wall-clock time the whole run took.
        fault_digest: a short fingerprint of the injected faults (same seed, same digest).
    """

    attempts: int
    failures: int
    recovered_at: float
    virtual_seconds: float
    real_seconds: float
    fault_digest: str


def outage_demo(
    *,
    outage: float = 60.0,
    retry_every: float = 5.0,
    loss: float = 0.0,
    timeout: float = 2.0,
    seed: int = 7,
) -> OutageReport:
    """Poll a service that is down for ``outage`` seconds, retrying every ``retry_every``.

    The service runs in-process (ASGI) behind a ``FaultyTransport`` whose outage window
    is ``[0, outage)`` and which loses each request with probability ``loss``; a lost
    request costs the client its ``timeout``. Everything runs on ``distlab.run``, so no
    real time is waited.

    Args:
        outage: length of the outage in (virtual) seconds, >= 0.
        retry_every: pause between attempts in (virtual) seconds, > 0.
        loss: probability that a request is lost on the way, in [0, 1].
        timeout: the client's timeout in (virtual) seconds, > 0.
        seed: seed of the run (decides which requests are lost).

    Returns:
        An ``OutageReport``.

    Raises:
        ValueError: when a parameter is out of range (the message names it).
    """
    # Chained comparisons also reject NaN; infinities would make the demo wait forever.
    if not 0 <= outage < math.inf:
        raise ValueError(f"outage must be finite seconds >= 0, got {outage!r}")
    if not 0 < retry_every < math.inf:
        raise ValueError(f"retry_every must be finite seconds > 0, got {retry_every!r}")
    if not 0 < timeout < math.inf:
        raise ValueError(f"timeout must be finite seconds > 0, got {timeout!r}")
    if not 0 <= loss <= 1:
        raise ValueError(f"loss must be a probability between 0 and 1, got {loss!r}")

    async def client() -> tuple[int, int, float, str]:
        transport = FaultyTransport(
            httpx.ASGITransport(app=hello_app()), seed=seed, request_loss=loss
        )
        if outage > 0:
            transport.outage(0.0, outage)
        attempts = failures = 0
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hello", timeout=timeout
        ) as http:
            while True:
                attempts += 1
                try:
                    response = await http.get("/hello")
                    if response.status_code < 500:
                        break
                except httpx.TimeoutException:
                    pass
                failures += 1
                await asyncio.sleep(retry_every)
        digest = canonical_digest((e.time, e.kind) for e in transport.log)[:12]
        return attempts, failures, now(), digest

    started = time.perf_counter()
    attempts, failures, recovered_at, digest = run(client, seed=seed)
    real = time.perf_counter() - started
    return OutageReport(attempts, failures, recovered_at, recovered_at, real, digest)
