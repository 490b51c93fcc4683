"""distlab.sim.apps: the tiny in-process services answer on virtual time."""

from __future__ import annotations

import asyncio

import httpx

import distlab
from distlab.sim.apps import hello_app


def test_hello_answers_with_the_virtual_time_it_was_served_at() -> None:
    """GET /hello says hello and reports the virtual clock, not the wall clock."""

    async def main() -> list[dict[str, object]]:
        transport = httpx.ASGITransport(app=hello_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
            first = (await client.get("/hello")).json()
            await asyncio.sleep(90)
            second = (await client.get("/hello")).json()
        return [first, second]

    first, second = distlab.run(main, start=1000.0)
    assert first == {"message": "hello", "served_at": 1000.0}
    assert second == {"message": "hello", "served_at": 1090.0}


def test_unknown_paths_are_404() -> None:
    """Only /hello exists."""

    async def main() -> int:
        transport = httpx.ASGITransport(app=hello_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://hello") as client:
            return (await client.get("/nope")).status_code

    assert distlab.run(main) == 404
