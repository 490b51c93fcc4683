"""Lesson 00's machinery: a first outage on virtual time, and its "Your turn" checkers.

``outage_demo`` is lesson 00's first taste of virtual time: a client polls a service
that is down for a minute, and the whole minute runs in milliseconds.
``check_poll_until_up`` and ``check_lost_requests`` check the two pieces of code the
student writes: a retry loop on virtual time, and a seeded source of losses.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from distlab.lessons.checks import Wrong, checker, expect
from distlab.sim.apps import hello_app
from distlab.sim.faults import FaultyTransport
from distlab.sim.netsim import canonical_digest
from distlab.sim.vtime import now, run

__all__ = ["OutageReport", "check_lost_requests", "check_poll_until_up", "outage_demo"]


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


# "Your turn" checkers ----------------------------------------------------------------------------
_MAX_ATTEMPTS = 200  # a student's loop that never stops is cut off here, with a message


@checker("your poll_until_up")
def check_poll_until_up(poll_until_up: Callable[..., Any]) -> str:
    """Check a student's ``async def poll_until_up(call, every)`` on virtual time.

    ``call`` is an async function returning True once the service is up (here after a
    60 s outage); ``poll_until_up`` must await it at once, then every ``every`` seconds
    with ``await asyncio.sleep(every)``, and return the number of attempts.
    """
    if not inspect.iscoroutinefunction(poll_until_up):
        raise Wrong(
            "poll_until_up should be an `async def`: it waits with `await asyncio.sleep(...)`"
        )
    for outage, every, attempts in ((60.0, 5.0, 13), (60.0, 7.0, 10)):
        result, times = _poll(poll_until_up, outage=outage, every=every)
        expect(
            times,
            "call() never ran: `call` is an async function, so write `await call()` "
            "(without await you get a coroutine object, which is always true)",
        )
        expect(
            times[0] == 0,
            f"the first attempt should go out at once, at t = 0, got t = {times[0]:g}: "
            "call first, sleep after a failure",
        )
        gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
        expect(
            gaps == {every},
            f"with every={every:g}, attempts should be {every:g} s apart, got gaps of "
            f"{', '.join(f'{gap:g} s' for gap in sorted(gaps))}",
        )
        expect(
            times[-1] >= outage,
            f"it stopped at t = {times[-1]:g} s, before the service came back at t = {outage:g} s",
        )
        expect(
            result == attempts,
            f"with an outage of {outage:g} s and every={every:g}, return the number of attempts, "
            f"{attempts} ({attempts - 1} failures and the success), got {result!r}",
        )
    return "13 attempts, 5 s apart, success at t = 60 s, in virtual time"


def _poll(
    poll_until_up: Callable[..., Any], *, outage: float, every: float
) -> tuple[Any, list[float]]:
    times: list[float] = []

    async def call() -> bool:
        times.append(now())
        if len(times) > _MAX_ATTEMPTS:
            if times[-1] == times[0]:
                raise Wrong(
                    f"{_MAX_ATTEMPTS} attempts and no virtual time passed: did you forget "
                    "`await` before asyncio.sleep(...)?"
                )
            raise Wrong(f"more than {_MAX_ATTEMPTS} attempts: stop as soon as call() returns True")
        return now() >= outage

    async def scenario() -> Any:
        return await poll_until_up(call, every)

    real_sleep = time.sleep

    def blocking_sleep(seconds: object) -> None:
        raise Wrong(
            "time.sleep() blocks the whole program and waits in real time; "
            "inside async code wait with `await asyncio.sleep(every)`"
        )

    time.sleep = blocking_sleep
    try:
        result = run(scenario)
    finally:
        time.sleep = real_sleep
    return result, times


@checker("your lost_requests")
def check_lost_requests(lost_requests: Callable[..., Any]) -> str:
    """Check a student's ``lost_requests(n, loss, seed)``: seeded, fair, and private.

    It returns the sorted indices (0 .. n - 1) of the requests that are lost, each with
    probability ``loss``, drawn from its own ``random.Random(seed)``.
    """
    before = random.getstate()
    first = lost_requests(1000, 0.3, 7)
    touched = random.getstate() != before
    expect(
        isinstance(first, list) and all(isinstance(i, int) for i in first),
        f"lost_requests should return a list of request numbers, got {type(first).__name__}",
    )
    expect(
        first == sorted(set(first)) and all(0 <= i < 1000 for i in first),
        "return each lost request number once, in increasing order, between 0 and n - 1",
    )
    again = lost_requests(1000, 0.3, 7)
    expect(
        again == first,
        "the same seed must give the same list: make a generator from the seed, "
        "`rng = random.Random(seed)`, and draw from it",
    )
    expect(
        lost_requests(1000, 0.3, 8) != first,
        "seeds 7 and 8 gave the same list: draw from `random.Random(seed)`, not from a fixed seed",
    )
    n, loss = 10_000, 0.3
    count = len(lost_requests(n, loss, 1))
    low, high = _binomial_bounds(n, loss)
    expect(
        low <= count <= high,
        f"with loss=0.3, about 3000 of 10000 requests should be lost (between {low:.0f} and "
        f"{high:.0f}), got {count}: lose each request when `rng.random() < loss`, with one "
        "generator made once, before the loop",
    )
    expect(lost_requests(50, 0.0, 1) == [], "with loss=0.0 no request should be lost")
    expect(lost_requests(50, 1.0, 1) == list(range(50)), "with loss=1.0 every request is lost")
    expect(
        not touched,
        "your function changed Python's global generator (random.seed or random.random): "
        "everything else that uses `random` now depends on your calls. Make your own, "
        "`rng = random.Random(seed)`",
    )
    return f"seed 7 replays itself, seed 8 differs, and {count} of 10000 are lost at 30 %"


def _binomial_bounds(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread
