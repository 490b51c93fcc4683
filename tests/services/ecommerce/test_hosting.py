"""services.ecommerce.hosting: in-process servers that stop, crash and restart; routing by host."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

import distlab
from distlab.errors import ServiceCrash
from distlab.services.ecommerce.hosting import Borrowed, HostRouter, Server, ServiceRouter


def crashing_app() -> FastAPI:
    app = FastAPI()

    @app.get("/die")
    async def die() -> None:
        raise ServiceCrash("pulled the plug")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_a_server_refuses_when_stopped_and_drops_the_connection_when_it_crashes() -> None:
    """Stopped: ConnectError. Crashed mid-request: RemoteProtocolError, then stopped."""
    server = Server("svc", crashing_app())

    async def main() -> None:
        async with httpx.AsyncClient(
            transport=HostRouter({"svc": server}), base_url="http://svc"
        ) as c:
            assert (await c.get("/ok")).status_code == 200
            with pytest.raises(httpx.RemoteProtocolError, match="svc crashed"):
                await c.get("/die")
            assert (server.running, server.crashes) == (False, 1)
            with pytest.raises(httpx.ConnectError, match="svc is not running"):
                await c.get("/ok")
            server.start()
            assert (await c.get("/ok")).status_code == 200
            with pytest.raises(httpx.ConnectError, match="no host 'other'"):
                await c.get("http://other/ok")

    distlab.run(main)


def test_a_borrowed_transport_outlives_its_client() -> None:
    """Closing a client over Borrowed leaves the server usable by the next client."""
    server = Server("svc", crashing_app())

    async def main() -> None:
        for _ in range(2):
            async with httpx.AsyncClient(transport=Borrowed(server), base_url="http://svc") as c:
                assert (await c.get("/ok")).status_code == 200

    distlab.run(main)


class _Recording(httpx.AsyncBaseTransport):
    """Answers 200 with its own name; remembers being closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=self.name)

    async def aclose(self) -> None:
        self.closed = True


def test_a_service_router_sends_each_instance_to_its_services_transport() -> None:
    """catalog-2 goes to catalog's transport; unknown hosts are refused; keep_open is kept."""
    transports = {name: _Recording(name) for name in ("users", "catalog", "orders")}

    async def main() -> None:
        router = ServiceRouter(transports, keep_open=("orders",))
        async with httpx.AsyncClient(transport=router) as c:
            for url, service in [
                ("http://users/u/1", "users"),
                ("http://catalog-2/products", "catalog"),
                ("http://catalog/products", "catalog"),
                ("http://orders/orders", "orders"),
            ]:
                assert (await c.get(url)).text == service, url
            for host in ("payments", "catalog-x", "inventory-1"):
                with pytest.raises(httpx.ConnectError, match=f"no host '{host}'"):
                    await c.get(f"http://{host}/")

    distlab.run(main)
    assert {name: t.closed for name, t in transports.items()} == {
        "users": True,
        "catalog": True,
        "orders": False,
    }
