"""Seeded fault injection for httpx: lost requests, lost responses, duplicates, latency, 5xx.

Wrap any transport, typically ``httpx.ASGITransport`` for an in-process service::

    transport = FaultyTransport(httpx.ASGITransport(app=app), seed=7, request_loss=0.1)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders", timeout=5.0) as c:
        ...

What the client sees for each fault:

    request lost    the server never sees it     httpx.ConnectTimeout after the connect timeout
    response lost   the server executed it       httpx.ReadTimeout after the read timeout
    duplicated      the server executes it twice the first response
    latency         added before the request     (virtual) seconds of delay
    error           a proxy answers for it       a 5xx response; the server never sees it
    outage window   every request in [start, end) is lost or answered with a 5xx

httpx does not enforce its own timeouts over ``ASGITransport`` or ``MockTransport``
(nothing there reads a socket), so ``FaultyTransport`` enforces the client's read
timeout itself, on the event loop's clock: virtual time under ``distlab.run``.
``SyncFaultyTransport`` does the same for ``httpx.Client`` with an injected
``ManualClock``.

Every decision is drawn from one ``random.Random(seed)``, five draws per request
whatever the settings, so changing one probability does not reshuffle the others.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from distlab.sim.vtime import ManualClock

__all__ = ["FaultEvent", "FaultyTransport", "SyncFaultyTransport"]

Latency = float | Callable[[random.Random], float]
FaultKind = Literal["request_lost", "response_lost", "duplicated", "delayed", "error", "timeout"]


@dataclass(frozen=True)
class FaultEvent:
    """One injected fault, as kept in a transport's ``log``.

    Attributes:
        time: clock reading when the fault was decided, in seconds.
        kind: ``request_lost``, ``response_lost``, ``duplicated``, ``delayed``,
            ``error`` (a 5xx answered for the server) or ``timeout`` (the server was
            slower than the client's read timeout).
        method: the request's HTTP method.
        url: the request's URL.
        detail: human-readable specifics (seconds of delay, status code, ...).
    """

    time: float
    kind: FaultKind
    method: str
    url: str
    detail: str = ""


@dataclass(frozen=True)
class _Plan:
    """What will happen to one request (decided up front, from five draws)."""

    delay: float
    request_lost: bool
    error: bool
    duplicated: bool
    response_lost: bool


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)


class _FaultModel:
    """Settings, validation, seeded decisions and the fault log shared by both transports."""

    def __init__(
        self,
        *,
        seed: int,
        request_loss: float,
        response_loss: float,
        duplicate: float,
        latency: Latency,
        error_rate: float,
        error_status: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.log: list[FaultEvent] = []
        self.requests = 0
        self._outages: list[tuple[float, float, str]] = []
        self.request_loss = self.response_loss = self.duplicate = self.error_rate = 0.0
        self.latency: Latency = 0.0
        self.error_status = 503
        self.configure(
            request_loss=request_loss,
            response_loss=response_loss,
            duplicate=duplicate,
            latency=latency,
            error_rate=error_rate,
            error_status=error_status,
        )

    def configure(
        self,
        *,
        request_loss: float | None = None,
        response_loss: float | None = None,
        duplicate: float | None = None,
        latency: Latency | None = None,
        error_rate: float | None = None,
        error_status: int | None = None,
    ) -> None:
        """Change some settings from now on; the others keep their values.

        Raises:
            ValueError: a probability outside [0, 1], a negative or non-finite latency, or an
                error_status that is not a 5xx code (the message names the parameter).
        """
        if request_loss is not None:
            self.request_loss = _check_probability("request_loss", request_loss)
        if response_loss is not None:
            self.response_loss = _check_probability("response_loss", response_loss)
        if duplicate is not None:
            self.duplicate = _check_probability("duplicate", duplicate)
        if error_rate is not None:
            self.error_rate = _check_probability("error_rate", error_rate)
        if latency is not None:
            if not callable(latency) and (
                isinstance(latency, bool)
                or not isinstance(latency, int | float)
                or not 0 <= latency < math.inf  # also rejects NaN
            ):
                raise ValueError(
                    f"latency must be finite seconds >= 0 or a callable taking a "
                    f"random.Random, got {latency!r}"
                )
            self.latency = latency
        if error_status is not None:
            if not isinstance(error_status, int) or not 500 <= error_status <= 599:
                raise ValueError(f"error_status must be a 5xx status code, got {error_status!r}")
            self.error_status = error_status

    def outage(self, start: float, end: float, *, mode: Literal["error", "drop"] = "error") -> None:
        """Fail every request sent at a clock time in ``[start, end)``.

        Args:
            start: when the outage begins, in seconds on the transport's clock.
            end: when it heals; must be > start.
            mode: ``"error"`` answers with ``error_status``; ``"drop"`` loses the request.

        Raises:
            ValueError: when the window is empty or negative, or mode is unknown.
        """
        if not 0 <= start < end:  # also rejects NaN
            raise ValueError(f"outage needs 0 <= start < end, got start={start!r}, end={end!r}")
        if mode not in ("error", "drop"):
            raise ValueError(f"mode must be 'error' or 'drop', got {mode!r}")
        self._outages.append((float(start), float(end), mode))

    def plan(self, now: float) -> _Plan:
        """Draw what happens to the next request (always five draws, in a fixed order)."""
        rng = self.rng
        draws = [rng.random() for _ in range(4)]
        if callable(self.latency):
            delay = float(self.latency(rng))
            if not 0 <= delay < math.inf:
                raise ValueError(
                    f"latency callable returned {delay!r}; it must return finite seconds >= 0"
                )
        else:
            rng.random()  # keep the number of draws per request constant
            delay = float(self.latency)
        request_lost = draws[0] < self.request_loss
        error = draws[1] < self.error_rate
        for start, end, mode in self._outages:
            if start <= now < end:
                request_lost = request_lost or mode == "drop"
                error = error or mode == "error"
        return _Plan(
            delay=delay,
            request_lost=request_lost,
            error=error and not request_lost,
            duplicated=draws[2] < self.duplicate,
            response_lost=draws[3] < self.response_loss,
        )

    def record(self, now: float, kind: FaultKind, request: httpx.Request, detail: str = "") -> None:
        self.log.append(FaultEvent(now, kind, request.method, str(request.url), detail))

    def counts(self) -> Counter[str]:
        """Return how many faults of each kind were injected so far."""
        return Counter(event.kind for event in self.log)

    def error_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            self.error_status,
            json={"error": "injected fault", "status": self.error_status},
            request=request,
        )


def _timeouts(request: httpx.Request) -> tuple[float | None, float | None]:
    timeout: dict[str, Any] = request.extensions.get("timeout", {})
    return timeout.get("connect"), timeout.get("read")


class _FaultLog:
    """What both transports share: the fault model's settings, outages and log."""

    _model: _FaultModel

    def _attach_model(self, model: _FaultModel) -> None:
        self._model = model
        self.configure = model.configure
        self.outage = model.outage
        self.counts = model.counts

    @property
    def log(self) -> list[FaultEvent]:
        """Every injected fault so far, oldest first."""
        return self._model.log

    @property
    def requests(self) -> int:
        """How many requests were sent through this transport."""
        return self._model.requests


class FaultyTransport(_FaultLog, httpx.AsyncBaseTransport):
    """An async httpx transport that injects seeded faults in front of another one.

    Args:
        inner: the transport that reaches the service, e.g. ``httpx.ASGITransport(app=app)``.
        seed: seeds the fault decisions; the same seed replays the same faults.
        request_loss: probability that a request never reaches the server.
        response_loss: probability that the server's answer never reaches the client.
        duplicate: probability that the server receives the request twice. The copy
            travels alongside the original and the client gets the first answer as soon
            as it arrives; ``aclose()`` (the end of ``async with httpx.AsyncClient``)
            waits for copies still in flight.
        latency: seconds added before each request, or a callable drawing them from
            the transport's ``random.Random`` (e.g. ``lambda r: r.expovariate(10)``).
        error_rate: probability that a 5xx is answered without reaching the server.
        error_status: the status code of injected errors (500-599).

    Attributes:
        log: every injected fault, as ``FaultEvent`` records, in order.
        requests: how many requests the client sent through this transport.

    Raises:
        ValueError: when a setting is out of range; the message names it.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        seed: int = 0,
        request_loss: float = 0.0,
        response_loss: float = 0.0,
        duplicate: float = 0.0,
        latency: Latency = 0.0,
        error_rate: float = 0.0,
        error_status: int = 503,
    ) -> None:
        self.inner = inner
        self._attach_model(
            _FaultModel(
                seed=seed,
                request_loss=request_loss,
                response_loss=response_loss,
                duplicate=duplicate,
                latency=latency,
                error_rate=error_rate,
                error_status=error_status,
            )
        )
        self._copies: set[asyncio.Task[None]] = set()  # duplicate copies in flight

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the faults, then (maybe) to the inner transport."""
        model = self._model
        loop = asyncio.get_running_loop()
        model.requests += 1
        plan = model.plan(loop.time())
        connect_timeout, read_timeout = _timeouts(request)
        await request.aread()  # buffer the body so a duplicate can send it again

        if plan.delay > 0:
            model.record(loop.time(), "delayed", request, f"{plan.delay:.6f} s")
            await asyncio.sleep(plan.delay)
        if plan.request_lost:
            model.record(loop.time(), "request_lost", request)
            await _wait_or_hang(connect_timeout)
            raise httpx.ConnectTimeout("request lost (injected fault)", request=request)
        if plan.error:
            model.record(loop.time(), "error", request, str(model.error_status))
            return model.error_response(request)

        started = loop.time()
        if plan.duplicated:
            # The copy travels alongside the original (which reaches the server first)
            # and nobody waits for its answer: the client gets the first one.
            model.record(started, "duplicated", request)
            copy = loop.create_task(self._send_copy(request, read_timeout))
            self._copies.add(copy)
            copy.add_done_callback(self._copies.discard)
        response = await self._send(request, read_timeout)
        if plan.response_lost:
            model.record(loop.time(), "response_lost", request)
            await response.aclose()
            remaining = None if read_timeout is None else read_timeout - (loop.time() - started)
            await _wait_or_hang(remaining)
            raise httpx.ReadTimeout("response lost (injected fault)", request=request)
        return response

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        return response

    async def _send(self, request: httpx.Request, read_timeout: float | None) -> httpx.Response:
        if read_timeout is None:
            return await self._exchange(request)
        try:
            return await asyncio.wait_for(self._exchange(request), timeout=max(0.0, read_timeout))
        except TimeoutError:
            self._model.record(
                asyncio.get_running_loop().time(), "timeout", request, f"{read_timeout} s"
            )
            raise httpx.ReadTimeout(
                f"no response within the read timeout of {read_timeout} s", request=request
            ) from None

    async def _send_copy(self, request: httpx.Request, read_timeout: float | None) -> None:
        # The server executes the copy; its answer (or its failure) reaches nobody.
        try:
            response = await asyncio.wait_for(
                self._exchange(request),
                timeout=None if read_timeout is None else max(0.0, read_timeout),
            )
            await response.aclose()
        except (TimeoutError, httpx.HTTPError):
            pass

    async def aclose(self) -> None:
        """Wait for duplicate copies still in flight, then close the inner transport."""
        try:
            if self._copies:
                await asyncio.gather(*self._copies)
        finally:
            await self.inner.aclose()


async def _wait_or_hang(timeout: float | None) -> None:
    # With no timeout a real client would wait forever; so do we (distlab.run then
    # reports a DeadlockError instead of hanging).
    if timeout is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(max(0.0, timeout))


class SyncFaultyTransport(_FaultLog, httpx.BaseTransport):
    """A sync httpx transport that injects seeded faults, on an injected clock.

    Same settings and log as ``FaultyTransport``. Waiting (latency, timeouts) moves
    ``clock`` forward instead of sleeping, so sync tests stay instant. A response that
    arrives after the read timeout (the inner handler advanced the clock past it)
    becomes ``httpx.ReadTimeout``.

    Args:
        inner: the transport that reaches the service, e.g. ``httpx.MockTransport(handler)``.
        clock: a ``ManualClock`` (or anything with ``__call__`` and ``advance``).
        seed, request_loss, response_loss, duplicate, latency, error_rate, error_status:
            as for ``FaultyTransport``.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        clock: ManualClock,
        seed: int = 0,
        request_loss: float = 0.0,
        response_loss: float = 0.0,
        duplicate: float = 0.0,
        latency: Latency = 0.0,
        error_rate: float = 0.0,
        error_status: int = 503,
    ) -> None:
        if not (callable(clock) and hasattr(clock, "advance")):
            raise ValueError("clock must be a ManualClock (callable with .advance(seconds))")
        self.inner = inner
        self.clock = clock
        self._attach_model(
            _FaultModel(
                seed=seed,
                request_loss=request_loss,
                response_loss=response_loss,
                duplicate=duplicate,
                latency=latency,
                error_rate=error_rate,
                error_status=error_status,
            )
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the faults, then (maybe) to the inner transport."""
        model, clock = self._model, self.clock
        model.requests += 1
        plan = model.plan(clock())
        connect_timeout, read_timeout = _timeouts(request)
        request.read()

        if plan.delay > 0:
            model.record(clock(), "delayed", request, f"{plan.delay:.6f} s")
            clock.advance(plan.delay)
        if plan.request_lost:
            model.record(clock(), "request_lost", request)
            if connect_timeout is None:
                raise httpx.ConnectTimeout(
                    "request lost (injected fault) and no connect timeout is set: a real "
                    "client would wait forever",
                    request=request,
                )
            clock.advance(connect_timeout)
            raise httpx.ConnectTimeout("request lost (injected fault)", request=request)
        if plan.error:
            model.record(clock(), "error", request, str(model.error_status))
            return model.error_response(request)

        started = clock()
        response = self._send(request)
        elapsed = clock() - started  # the client waits for the first answer only
        if plan.duplicated:
            # Sync code cannot run the copy alongside the original: it runs after it,
            # and whatever time its handler takes is not charged to this request.
            model.record(clock(), "duplicated", request)
            self._send(request).close()
        if read_timeout is not None and elapsed > read_timeout:
            model.record(clock(), "timeout", request, f"{read_timeout} s")
            raise httpx.ReadTimeout(
                f"no response within the read timeout of {read_timeout} s", request=request
            )
        if plan.response_lost:
            model.record(clock(), "response_lost", request)
            response.close()
            if read_timeout is None:
                raise httpx.ReadTimeout(
                    "response lost (injected fault) and no read timeout is set: a real "
                    "client would wait forever",
                    request=request,
                )
            clock.advance(max(0.0, started + read_timeout - clock()))
            raise httpx.ReadTimeout("response lost (injected fault)", request=request)
        return response

    def _send(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return response

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()
