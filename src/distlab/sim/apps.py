"""Tiny in-process web services for the simulated world (ASGI, no network).

The lessons call them through ``httpx.ASGITransport``, usually behind a
:class:`distlab.sim.faults.FaultyTransport`, on virtual time.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from distlab.sim.vtime import now

__all__ = ["hello_app"]


def hello_app() -> Starlette:
    """Return a tiny ASGI service answering ``GET /hello`` with a greeting and the time."""

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"message": "hello", "served_at": now()})

    return Starlette(routes=[Route("/hello", hello)])
