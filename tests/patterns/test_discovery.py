"""Tests for service discovery (distlab.patterns.discovery).

The registry runs on a ManualClock or on virtual time; its app is reached in-process
through httpx.ASGITransport, except in the last tests, which start the real server
(`python -m distlab.patterns.discovery serve`) on a free port and stop it afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

import distlab
from distlab.errors import NoInstancesError
from distlab.patterns.discovery import (
    DiscoveryClient,
    Heartbeater,
    Lease,
    ServiceRegistry,
    create_registry_app,
    main,
)

T = TypeVar("T")
BASE = "http://registry"


def make(ttl: float = 30.0) -> tuple[ServiceRegistry, distlab.ManualClock]:
    """A registry on a fresh ManualClock, and the clock."""
    clock = distlab.ManualClock()
    return ServiceRegistry(ttl, clock=clock), clock


class Switch(httpx.AsyncBaseTransport):
    """A transport to the registry app that can be cut off (ConnectError) or made to fail (503)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.mode = "up"
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "503":
            return httpx.Response(503, json={"error": "overloaded"}, request=request)
        if self.mode == "garbage":
            return httpx.Response(200, text="<html>not json</html>", request=request)
        return await self.inner.handle_async_request(request)


@asynccontextmanager
async def registry_client(
    ttl: float = 30.0,
) -> AsyncIterator[tuple[ServiceRegistry, httpx.AsyncClient, Switch]]:
    """A registry on virtual time, an AsyncClient to its app, and the switch in between."""
    registry = ServiceRegistry(ttl, clock=distlab.clock())
    switch = Switch(create_registry_app(registry))
    async with httpx.AsyncClient(transport=switch, base_url=BASE) as http:
        yield registry, http, switch


def vrun(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` in virtual time."""
    return distlab.run(main, seed=1)


# The registry --------------------------------------------------------------------------
@pytest.mark.parametrize("ttl", [0, -1.0, math.nan, math.inf])
def test_ttl_must_be_positive_and_finite(ttl: float) -> None:
    """ttl <= 0, NaN or infinite -> ValueError naming ttl."""
    with pytest.raises(ValueError, match="ttl"):
        ServiceRegistry(ttl)


@pytest.mark.parametrize(
    ("args", "error", "parameter"),
    [
        (("", "a-1", "http://a"), ValueError, "service"),
        (("a", "", "http://a"), ValueError, "instance_id"),
        (("a", "a-1", ""), ValueError, "address"),
        (("a", "a-1", "   "), ValueError, "address"),
        (("a", "a-1", 8080), TypeError, "address"),
    ],
)
def test_register_rejects_empty_names_and_addresses(
    args: tuple[Any, ...], error: type[Exception], parameter: str
) -> None:
    """Empty (or blank) names/addresses are a ValueError, non-strings a TypeError, named."""
    registry, _ = make()
    with pytest.raises(error, match=parameter):
        registry.register(*args)
    assert registry.services() == []


def test_instances_are_listed_in_registration_order_and_upsert_keeps_the_place() -> None:
    """Registering a live instance again updates its address where it stands."""
    registry, _ = make()
    for n in (1, 2, 3):
        registry.register("orders", f"o{n}", f"http://o{n}")
    registry.register("orders", "o1", "http://o1-moved")
    assert registry.instances("orders") == ["http://o1-moved", "http://o2", "http://o3"]
    assert registry.instances("payments") == []
    assert registry.services() == ["orders"]


def test_an_instance_is_live_for_strictly_less_than_ttl_seconds() -> None:
    """Listed at ttl - epsilon, gone at exactly ttl after its last renewal."""
    registry, clock = make(ttl=10.0)
    registry.register("orders", "o1", "http://o1")
    clock.advance(9.999)
    assert registry.instances("orders") == ["http://o1"]
    clock.advance(0.001)
    assert registry.instances("orders") == []
    assert registry.services() == []


def test_a_heartbeat_renews_the_lease_and_an_expired_one_raises_key_error() -> None:
    """Beats every 6 s keep a 10 s lease alive; after 10 s of silence heartbeat fails."""
    registry, clock = make(ttl=10.0)
    registry.register("orders", "o1", "http://o1")
    for _ in range(5):
        clock.advance(6)
        registry.heartbeat("orders", "o1")
    assert registry.instances("orders") == ["http://o1"]
    clock.advance(10)
    with pytest.raises(KeyError, match="lease expired"):
        registry.heartbeat("orders", "o1")
    with pytest.raises(KeyError):
        registry.heartbeat("orders", "never-registered")


def test_an_expired_instance_may_register_again_and_is_listed_last() -> None:
    """Expiry is a departure: coming back is a new registration, after the others."""
    registry, clock = make(ttl=10.0)
    registry.register("orders", "o1", "http://o1")
    clock.advance(5)
    registry.register("orders", "o2", "http://o2")
    clock.advance(5)  # o1 expires; o2 has 5 s left
    registry.register("orders", "o1", "http://o1")
    assert registry.instances("orders") == ["http://o2", "http://o1"]


def test_deregister_removes_at_once_and_unknown_ones_raise_key_error() -> None:
    """A clean shutdown: gone without waiting for the lease; twice -> KeyError."""
    registry, clock = make()
    registry.register("orders", "o1", "http://o1")
    registry.register("orders", "o2", "http://o2")
    registry.deregister("orders", "o1")
    assert registry.instances("orders") == ["http://o2"]
    with pytest.raises(KeyError, match="o1"):
        registry.deregister("orders", "o1")
    clock.advance(30)
    with pytest.raises(KeyError):
        registry.deregister("orders", "o2")  # expired: gone as well


def test_leases_say_when_each_instance_expires() -> None:
    """leases() gives renewal and expiry times on the registry's clock."""
    registry, clock = make(ttl=10.0)
    clock.advance(100)
    registry.register("orders", "o1", "http://o1")
    clock.advance(4)
    registry.heartbeat("orders", "o1")
    assert registry.leases("orders") == [Lease("orders", "o1", "http://o1", 104.0, 114.0)]
    assert "ttl=10.0" in repr(registry)


def test_instances_returns_a_copy() -> None:
    """Mutating the returned list does not change the registry."""
    registry, _ = make()
    registry.register("orders", "o1", "http://o1")
    registry.instances("orders").append("http://evil")
    assert registry.instances("orders") == ["http://o1"]


# The HTTP API --------------------------------------------------------------------------
def test_the_http_api_registers_lists_renews_and_deregisters() -> None:
    """PUT 200, GET lists, POST heartbeat 200, DELETE 204, then 404s for the gone instance."""

    async def main() -> None:
        async with registry_client() as (_, http, _switch):
            put = await http.put("/services/orders/o1", json={"address": "http://o1:8080"})
            assert put.status_code == 200
            assert put.json() == {
                "service": "orders",
                "instance_id": "o1",
                "address": "http://o1:8080",
                "ttl": 30.0,
            }
            await http.put("/services/orders/o2", json={"address": "http://o2:8080"})
            listed = await http.get("/services/orders")
            assert listed.status_code == 200
            assert listed.json() == {
                "service": "orders",
                "instances": ["http://o1:8080", "http://o2:8080"],
            }
            assert (await http.post("/services/orders/o1/heartbeat")).status_code == 200
            deleted = await http.delete("/services/orders/o1")
            assert deleted.status_code == 204 and deleted.content == b""
            assert (await http.delete("/services/orders/o1")).status_code == 404
            missing = await http.post("/services/orders/o1/heartbeat")
            assert missing.status_code == 404 and "register it again" in missing.json()["error"]
            assert (await http.get("/services")).json() == {"services": ["orders"]}
            health = await http.get("/healthz")
            assert health.json() == {"status": "ok", "ttl": 30.0, "services": 1}
            empty = await http.get("/services/payments")
            assert empty.json() == {"service": "payments", "instances": []}

    vrun(main)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b'["http://o1"]', "JSON object"),
        (b"{}", 'no "address"'),
        (b'{"address": ""}', "non-empty string"),
        (b'{"address": 8080}', "non-empty string"),
        (b'{"address": null}', "non-empty string"),
    ],
)
def test_a_bad_registration_body_is_a_422_that_says_what_is_wrong(body: bytes, says: str) -> None:
    """Malformed JSON, not an object, a missing/empty/non-string address -> 422 + JSON error."""

    async def main() -> httpx.Response:
        async with registry_client() as (registry, http, _switch):
            response = await http.put("/services/orders/o1", content=body)
            assert registry.instances("orders") == []
            return response

    response = vrun(main)
    assert response.status_code == 422
    assert says in response.json()["error"]


def test_leases_expire_over_http_in_virtual_time() -> None:
    """30 s of silence in virtual time: the instance drops out of GET and its heartbeat 404s."""

    async def main() -> tuple[list[str], list[str], int]:
        async with registry_client(ttl=30.0) as (_, http, _switch):
            await http.put("/services/orders/o1", json={"address": "http://o1"})
            await asyncio.sleep(29.9)
            before = (await http.get("/services/orders")).json()["instances"]
            await asyncio.sleep(0.1)
            after = (await http.get("/services/orders")).json()["instances"]
            beat = await http.post("/services/orders/o1/heartbeat")
            return before, after, beat.status_code

    assert vrun(main) == (["http://o1"], [], 404)


# The client ----------------------------------------------------------------------------
def test_round_robin_goes_through_the_live_instances_in_turn() -> None:
    """Three instances, six lookups: a b c a b c."""

    async def main() -> list[str]:
        async with registry_client() as (registry, http, _switch):
            for name in "abc":
                registry.register("orders", name, f"http://{name}")
            client = DiscoveryClient(http)
            return [await client.resolve("orders") for _ in range(6)]

    assert vrun(main) == ["http://a", "http://b", "http://c"] * 2


def test_no_live_instance_is_a_lookup_error_naming_the_service() -> None:
    """An empty list is NoInstancesError, which is a LookupError."""

    async def main() -> None:
        async with registry_client(ttl=5.0) as (registry, http, _switch):
            client = DiscoveryClient(http)
            with pytest.raises(LookupError, match="'orders'"):
                await client.resolve("orders")
            registry.register("orders", "a", "http://a")
            assert await client.resolve("orders") == "http://a"
            await asyncio.sleep(5)
            with pytest.raises(NoInstancesError) as caught:
                await client.resolve("orders")
            assert caught.value.service == "orders"

    vrun(main)


@pytest.mark.parametrize("failure", ["down", "503", "garbage"])
def test_an_unreachable_registry_leaves_the_last_good_list_in_service_and_logs_it(
    failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Registry down (connection refused, 503, not JSON): the cached list serves, with a warning."""

    async def main() -> None:
        async with registry_client() as (registry, http, switch):
            registry.register("orders", "a", "http://a")
            registry.register("orders", "b", "http://b")
            client = DiscoveryClient(http)
            assert await client.resolve("orders") == "http://a"
            switch.mode = failure
            with caplog.at_level(logging.WARNING, logger="distlab.patterns.discovery"):
                assert await client.resolve("orders") == "http://b"
                assert await client.resolve("orders") == "http://a"
            assert client.is_stale("orders")
            switch.mode = "up"
            registry.deregister("orders", "a")
            assert await client.resolve("orders") == "http://b"
            assert not client.is_stale("orders")

    vrun(main)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "serving the last good list of 'orders' (2 instances" in warnings[0]


def test_an_unreachable_registry_and_nothing_cached_is_no_instances_error() -> None:
    """With no list ever fetched there is nothing to serve: NoInstancesError saying why."""

    async def main() -> None:
        async with registry_client() as (_, http, switch):
            switch.mode = "down"
            with pytest.raises(NoInstancesError, match=r"unreachable .*ConnectError"):
                await DiscoveryClient(http).resolve("orders")

    vrun(main)


def test_refresh_reuses_a_fetched_list_for_that_long() -> None:
    """refresh=10: one registry request per 10 s of lookups, so a departure shows up late."""

    async def main() -> tuple[list[str], int, float]:
        async with registry_client() as (registry, http, switch):
            registry.register("orders", "a", "http://a")
            client = DiscoveryClient(http, refresh=10.0)
            seen = [await client.resolve("orders")]
            registry.deregister("orders", "a")
            for _ in range(9):
                await asyncio.sleep(1)
                seen.append(await client.resolve("orders"))  # the cached list, now stale
            requests = switch.requests
            await asyncio.sleep(1)
            with pytest.raises(NoInstancesError):
                await client.resolve("orders")
            return seen, requests, distlab.now()

    seen, requests, noticed_at = vrun(main)
    assert seen == ["http://a"] * 10
    assert requests == 1
    assert noticed_at == 10.0


def test_least_outstanding_picks_the_instance_with_the_fewest_calls_in_flight() -> None:
    """Two calls held on a, one on b: the next call goes to c, then b, then the ties in turn."""

    async def main() -> list[str]:
        async with registry_client() as (registry, http, _switch):
            for name in "abc":
                registry.register("orders", name, f"http://{name}")
            client = DiscoveryClient(http, strategy="least_outstanding")
            release = asyncio.Event()
            picked: list[str] = []

            async def call() -> None:
                async with client.instance("orders") as address:
                    picked.append(address)
                    await release.wait()

            tasks = []
            for _ in range(6):
                tasks.append(asyncio.create_task(call()))
                await asyncio.sleep(0.1)
            assert [client.outstanding(f"http://{n}") for n in "abc"] == [2, 2, 2]
            release.set()
            await asyncio.gather(*tasks)
            assert client.outstanding("http://a") == 0
            return picked

    picked = vrun(main)
    assert sorted(picked) == ["http://a"] * 2 + ["http://b"] * 2 + ["http://c"] * 2
    assert picked[:3] == ["http://a", "http://b", "http://c"]


def test_least_outstanding_avoids_a_slow_instance_that_round_robin_keeps_feeding() -> None:
    """A slow instance holds its calls: least-outstanding sends it fewer of them."""

    async def main(strategy: Any) -> int:
        async with registry_client() as (registry, http, _switch):
            for name in "abc":
                registry.register("orders", name, f"http://{name}")
            client = DiscoveryClient(http, strategy=strategy)
            counts = {"http://a": 0, "http://b": 0, "http://c": 0}

            async def call() -> None:
                async with client.instance("orders") as address:
                    counts[address] += 1
                    await asyncio.sleep(5.0 if address == "http://a" else 0.1)

            tasks = []
            for _ in range(60):
                tasks.append(asyncio.create_task(call()))
                await asyncio.sleep(0.1)
            await asyncio.gather(*tasks)
            return counts["http://a"]

    assert distlab.run(lambda: main("round_robin")) == 20
    assert distlab.run(lambda: main("least_outstanding")) < 10


def test_the_client_validates_its_options() -> None:
    """Unknown strategy, negative refresh, or no AsyncClient: errors naming the option."""
    http = httpx.AsyncClient(base_url=BASE)
    with pytest.raises(ValueError, match="strategy"):
        DiscoveryClient(http, strategy="random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh"):
        DiscoveryClient(http, refresh=-1)
    with pytest.raises(TypeError, match="AsyncClient"):
        DiscoveryClient(httpx.Client())  # type: ignore[arg-type]


# Self-registration ---------------------------------------------------------------------
def test_a_heartbeater_keeps_its_instance_listed_and_deregisters_on_stop() -> None:
    """Beats every 10 s hold a 30 s lease for 5 minutes; stop() removes the instance at once."""

    async def main() -> tuple[list[str], list[str], int]:
        async with registry_client(ttl=30.0) as (registry, http, _switch):
            async with Heartbeater(http, "orders", "o1", "http://o1", interval=10) as beater:
                await asyncio.sleep(305)  # beats at t = 10, 20, ..., 300
                during = registry.instances("orders")
                beats = beater.beats
            return during, registry.instances("orders"), beats

    during, after, beats = vrun(main)
    assert during == ["http://o1"] and after == [] and beats == 30


def test_a_crashed_instance_stays_listed_until_its_lease_runs_out() -> None:
    """stop(deregister=False) is a crash: listed for ttl seconds after the last beat, then gone."""

    async def main() -> list[tuple[float, int]]:
        async with registry_client(ttl=30.0) as (registry, http, _switch):
            beater = Heartbeater(http, "orders", "o1", "http://o1", interval=10)
            await beater.start()
            await asyncio.sleep(25)  # last beat at t=20
            await beater.stop(deregister=False)
            seen = []
            for _ in range(6):
                seen.append((distlab.now(), len(registry.instances("orders"))))
                await asyncio.sleep(5)
            return seen

    assert vrun(main) == [(25.0, 1), (30.0, 1), (35.0, 1), (40.0, 1), (45.0, 1), (50.0, 0)]


def test_a_heartbeater_registers_again_after_a_404_and_survives_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Registry unreachable for 40 s: failures logged, lease lost, re-registered on return."""

    async def main() -> tuple[list[str], int, int]:
        async with registry_client(ttl=30.0) as (registry, http, switch):
            beater = Heartbeater(http, "orders", "o1", "http://o1", interval=10)
            await beater.start()
            await asyncio.sleep(5)
            switch.mode = "down"
            await asyncio.sleep(40)  # beats at 10..40 fail; the lease ends at t=30
            switch.mode = "up"
            await asyncio.sleep(10)  # the beat at t=50 gets 404 and registers again
            listed = registry.instances("orders")
            await beater.stop()
            return listed, beater.failures, beater.registrations

    with caplog.at_level(logging.INFO, logger="distlab.patterns.discovery"):
        listed, failures, registrations = vrun(main)
    assert listed == ["http://o1"]
    assert (failures, registrations) == (4, 2)
    assert any("registering again" in r.getMessage() for r in caplog.records)


def test_a_heartbeater_refuses_a_bad_interval_and_a_second_start() -> None:
    """interval <= 0 -> ValueError; start() twice -> RuntimeError."""
    http = httpx.AsyncClient(base_url=BASE)
    with pytest.raises(ValueError, match="interval"):
        Heartbeater(http, "orders", "o1", "http://o1", interval=0)

    async def main() -> None:
        async with registry_client() as (_, http, _switch):
            beater = Heartbeater(http, "orders", "o1", "http://o1")
            await beater.start()
            with pytest.raises(RuntimeError, match="already running"):
                await beater.start()
            await beater.stop()
            assert not beater.running

    vrun(main)


# The real server -----------------------------------------------------------------------
def test_the_registry_runs_as_a_real_server_over_http() -> None:
    """`python -m distlab.patterns.discovery serve --port 0`: real HTTP calls, then stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "distlab.patterns.discovery", "serve", "--port", "0", "--ttl", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server is up (or has died)
        assert line.startswith("registry listening on http://127.0.0.1:"), line + (
            process.stderr.read() if process.stderr and process.poll() is not None else ""
        )
        url = line.split()[-1]
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            put = http.put("/services/orders/o1", json={"address": "http://10.0.0.7:8080"})
            assert put.status_code == 200 and put.json()["ttl"] == 60.0
            assert http.get("/services/orders").json()["instances"] == ["http://10.0.0.7:8080"]
            assert http.put("/services/orders/o2", content=b"{").status_code == 422
            assert http.delete("/services/orders/o1").status_code == 204
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode is not None


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--ttl", "0"], "--ttl"),
        ([], "command"),
    ],
)
def test_the_command_line_rejects_bad_arguments(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad port, bad ttl or no command: exit status 2 and a message naming the option."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert says in capsys.readouterr().err
