"""services.ecommerce.hosting: in-process servers that stop, crash and restart; routing by host."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

import distlab
from distlab.errors import ServiceCrash
from distlab.services.ecommerce.hosting import Borrowed, HostRouter, Server


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
