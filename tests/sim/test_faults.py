"""Tests for HTTP fault injection (distlab.sim.faults)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import distlab
from distlab.errors import DeadlockError
from distlab.sim import vtime
from distlab.sim.faults import FaultyTransport, SyncFaultyTransport
from tests.theory import binomial_bounds


class CountingService:
    """An ASGI service that counts what it executed; /slow takes 30 virtual seconds."""

    def __init__(self) -> None:
        self.executed = 0
        self.app = Starlette(
            routes=[
                Route("/pay", self.pay, methods=["POST"]),
                Route("/slow", self.slow),
            ]
        )

    async def pay(self, request: Request) -> JSONResponse:
        self.executed += 1
        body = await request.json()
        return JSONResponse({"charged": body["amount"], "n": self.executed})

    async def slow(self, request: Request) -> JSONResponse:
        await asyncio.sleep(30)
        self.executed += 1
        return JSONResponse({"late": True})


def run_client(service: CountingService, calls: Any, *, timeout: float = 5.0, **faults: Any) -> Any:
    """Run `calls(client, transport)` on a virtual loop against the service."""

    async def main() -> Any:
        transport = FaultyTransport(httpx.ASGITransport(app=service.app), **faults)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://svc", timeout=timeout
        ) as client:
            return await calls(client, transport)

    return distlab.run(main)


def test_lost_request_never_reaches_the_server_and_times_out_on_connect():
    """request_loss=1: ConnectTimeout after the connect timeout, server executed nothing."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> float:
        with pytest.raises(httpx.ConnectTimeout):
            await client.post("/pay", json={"amount": 10})
        return distlab.now()

    assert run_client(service, calls, timeout=3.0, request_loss=1.0) == 3.0
    assert service.executed == 0


def test_lost_response_means_the_server_did_execute():
    """response_loss=1: the charge happened, yet the client sees ReadTimeout at the timeout."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> float:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/pay", json={"amount": 10})
        return distlab.now()

    assert run_client(service, calls, timeout=5.0, response_loss=1.0) == 5.0
    assert service.executed == 1


def test_duplicated_request_executes_twice_but_answers_once():
    """duplicate=1: the server charges twice; the client gets the first answer."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> Any:
        return (await client.post("/pay", json={"amount": 10})).json()

    assert run_client(service, calls, duplicate=1.0) == {"charged": 10, "n": 1}
    assert service.executed == 2


def test_client_gets_the_first_answer_without_waiting_for_the_copy():
    """duplicate=1 on a 30 s handler: the answer comes at t=30 (not 60), no timeout logged."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> Any:
        response = await client.get("/slow", timeout=45.0)
        return response.json(), distlab.now(), dict(transport.counts())

    answer, at, counts = run_client(service, calls, duplicate=1.0)
    assert (answer, at) == ({"late": True}, 30.0)
    assert counts == {"duplicated": 1}  # the copy's answer is nobody's timeout
    assert service.executed == 2  # closing the client waited for the copy


def test_a_timed_out_duplicated_call_logs_one_timeout():
    """duplicate=1 on a 30 s handler behind a 5 s timeout: one ReadTimeout at t=5, logged once."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> Any:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        return distlab.now(), dict(transport.counts())

    assert run_client(service, calls, duplicate=1.0) == (5.0, {"duplicated": 1, "timeout": 1})


def test_latency_is_added_in_virtual_time():
    """A constant 250 ms latency delays each of 4 sequential calls by exactly that."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> float:
        for _ in range(4):
            await client.post("/pay", json={"amount": 1})
        return distlab.now()

    assert run_client(service, calls, latency=0.25) == pytest.approx(1.0)


def test_injected_error_is_a_5xx_the_server_never_saw():
    """error_rate=1 answers error_status for the server."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> int:
        return (await client.post("/pay", json={"amount": 1})).status_code

    assert run_client(service, calls, error_rate=1.0, error_status=502) == 502
    assert service.executed == 0


def test_read_timeout_is_enforced_in_virtual_time():
    """A 30 s handler behind a 5 s client timeout raises ReadTimeout at t=5, no real wait."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> tuple[float, int]:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        return distlab.now(), transport.counts()["timeout"]

    assert run_client(service, calls, timeout=5.0) == (5.0, 1)


def test_without_a_timeout_the_slow_call_completes():
    """timeout=None waits the full 30 virtual seconds, as a real client would."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> tuple[Any, float]:
        response = await client.get("/slow", timeout=None)
        return response.json(), distlab.now()

    assert run_client(service, calls) == ({"late": True}, 30.0)


def test_lost_request_without_timeout_is_a_deadlock(monkeypatch: pytest.MonkeyPatch):
    """No timeout + a lost request hangs forever; distlab reports it instead of hanging."""
    monkeypatch.setattr(vtime, "_DEADLOCK_AFTER", 0.1)
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> None:
        await client.post("/pay", json={"amount": 1}, timeout=None)

    with pytest.raises(DeadlockError):
        run_client(service, calls, request_loss=1.0)


@pytest.mark.parametrize(
    ("setting", "kind"),
    [
        ("request_loss", "request_lost"),
        ("response_loss", "response_lost"),
        ("duplicate", "duplicated"),
        ("error_rate", "error"),
    ],
)
def test_fault_rates_match_their_probability(setting: str, kind: str):
    """Over 2000 requests each fault's count stays within 5 sigma of n*p."""
    service = CountingService()
    n, p = 2000, 0.2

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> int:
        for _ in range(n):
            with contextlib.suppress(httpx.TimeoutException):
                await client.post("/pay", json={"amount": 1})
        return transport.counts()[kind]

    count = run_client(service, calls, seed=11, **{setting: p})
    low, high = binomial_bounds(n, p)
    assert low <= count <= high, f"{kind}: {count} outside [{low:.0f}, {high:.0f}]"


def test_same_seed_same_fault_log_and_different_seed_differs():
    """The fault log is replayable from the seed."""

    def log_for(seed: int) -> list[tuple[float, str]]:
        service = CountingService()

        async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> Any:
            for _ in range(200):
                with contextlib.suppress(httpx.TimeoutException):
                    await client.post("/pay", json={"amount": 1})
            return [(e.time, e.kind) for e in transport.log]

        return run_client(  # type: ignore[no-any-return]
            service,
            calls,
            seed=seed,
            request_loss=0.1,
            response_loss=0.1,
            duplicate=0.1,
            latency=lambda r: r.expovariate(20),
        )

    assert log_for(3) == log_for(3)
    assert log_for(3) != log_for(4)


def test_changing_one_probability_does_not_reshuffle_the_others():
    """Each request always takes five draws, so request losses stay put when duplicate changes."""

    def lost_indices(duplicate: float) -> list[int]:
        service = CountingService()

        async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> list[int]:
            lost = []
            for i in range(300):
                try:
                    await client.post("/pay", json={"amount": 1})
                except httpx.ConnectTimeout:
                    lost.append(i)
            return lost

        return run_client(service, calls, seed=5, request_loss=0.2, duplicate=duplicate)  # type: ignore[no-any-return]

    lost = lost_indices(0.0)
    assert len(lost) > 30  # about 60 of 300: the comparison below is not vacuous
    assert lost_indices(0.5) == lost


def test_outage_window_fails_exactly_inside_it():
    """Requests sent in [10, 20) get the 5xx; just before and at 20 they succeed."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> list[int]:
        transport.outage(10, 20)
        statuses = []
        for at in [0, 9.999, 10, 15, 19.999, 20, 25]:
            await asyncio.sleep(at - distlab.now())
            statuses.append((await client.post("/pay", json={"amount": 1})).status_code)
        return statuses

    assert run_client(service, calls) == [200, 200, 503, 503, 503, 200, 200]


def test_drop_outage_loses_requests():
    """mode='drop' turns the outage into lost requests (ConnectTimeout)."""
    service = CountingService()

    async def calls(client: httpx.AsyncClient, transport: FaultyTransport) -> str:
        transport.outage(0, 60, mode="drop")
        try:
            await client.post("/pay", json={"amount": 1})
        except httpx.ConnectTimeout:
            return "lost"
        return "delivered"

    assert run_client(service, calls) == "lost"
    assert service.executed == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"request_loss": 1.5}, "request_loss"),
        ({"response_loss": -0.1}, "response_loss"),
        ({"duplicate": 2}, "duplicate"),
        ({"error_rate": -1}, "error_rate"),
        ({"latency": -0.5}, "latency"),
        ({"latency": math.nan}, "latency"),
        ({"latency": math.inf}, "latency"),
        ({"request_loss": math.nan}, "request_loss"),
        ({"duplicate": True}, "duplicate"),
        ({"error_status": 404}, "error_status"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], name: str):
    """Out-of-range settings raise ValueError naming the parameter, in both transports."""
    with pytest.raises(ValueError, match=name):
        FaultyTransport(httpx.MockTransport(lambda r: httpx.Response(200)), **kwargs)
    with pytest.raises(ValueError, match=name):
        SyncFaultyTransport(
            httpx.MockTransport(lambda r: httpx.Response(200)),
            clock=distlab.ManualClock(),
            **kwargs,
        )


def test_configure_validates_too():
    """configure() applies the same checks as the constructor."""
    transport = FaultyTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ValueError, match="request_loss"):
        transport.configure(request_loss=3)


@pytest.mark.parametrize(("start", "end"), [(5, 5), (10, 2), (-1, 3), (math.nan, 3), (0, math.nan)])
def test_bad_outage_window(start: float, end: float):
    """An empty or negative outage window is refused."""
    transport = FaultyTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ValueError, match="outage"):
        transport.outage(start, end)


@pytest.mark.parametrize("drawn", [-1.0, math.nan, math.inf])
def test_latency_callable_returning_a_bad_delay_is_refused(drawn: float):
    """A latency callable that returns a negative, NaN or infinite delay raises ValueError."""
    client, _, seen = sync_setup(latency=lambda rng: drawn)
    with pytest.raises(ValueError, match="latency"):
        client.get("/x")
    assert seen == []


def sync_setup(**faults: Any) -> tuple[httpx.Client, distlab.ManualClock, list[int]]:
    clock = distlab.ManualClock()
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if request.url.path == "/slow":
            clock.advance(30)
        return httpx.Response(200, json={"ok": True})

    transport = SyncFaultyTransport(httpx.MockTransport(handler), clock=clock, **faults)
    return httpx.Client(transport=transport, base_url="http://svc", timeout=5.0), clock, seen


def test_sync_lost_request_advances_the_clock_by_the_connect_timeout():
    """The sync transport moves the injected clock instead of sleeping."""
    client, clock, seen = sync_setup(request_loss=1.0)
    with pytest.raises(httpx.ConnectTimeout):
        client.get("/x")
    assert (clock(), len(seen)) == (5.0, 0)


def test_sync_lost_response_and_duplicate():
    """Sync: a lost response was executed; a duplicate executes twice."""
    client, clock, seen = sync_setup(response_loss=1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/x")
    assert (clock(), len(seen)) == (5.0, 1)
    client, clock, seen = sync_setup(duplicate=1.0)
    assert client.get("/x").json() == {"ok": True}
    assert len(seen) == 2


def test_sync_duplicate_of_a_slow_handler_is_not_charged_to_the_client():
    """Sync: a 30 s handler behind a 45 s timeout answers although its copy took 30 s too."""
    client, clock, seen = sync_setup(duplicate=1.0)
    assert client.get("/slow", timeout=45.0).json() == {"ok": True}
    assert (clock(), len(seen)) == (60.0, 2)


def test_sync_slow_handler_exceeds_read_timeout():
    """A handler that advances the clock past the read timeout yields ReadTimeout."""
    client, clock, seen = sync_setup()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/slow")
    assert (clock(), len(seen)) == (30.0, 1)


def test_sync_clock_must_be_advanceable():
    """A plain time function is not accepted as the sync transport's clock."""
    import time

    with pytest.raises(ValueError, match="clock"):
        SyncFaultyTransport(
            httpx.MockTransport(lambda r: httpx.Response(200)), clock=time.monotonic
        )  # type: ignore[arg-type]
