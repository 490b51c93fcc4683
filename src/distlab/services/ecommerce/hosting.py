"""In-process hosting: a server that stands for a process, and routing by host name.

Lessons, tests and the graded exercise run services in one Python process over
``httpx.ASGITransport``. :class:`Server` adds what a process has and an ASGI app lacks:
it can be stopped (connections refused), crash mid-request and be restarted.
:class:`HostRouter` sends each request to the server of its host (``http://catalog-1``),
:class:`ServiceRouter` to the transport of its host's service (``catalog`` for ``catalog-1``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import httpx
from starlette.applications import Starlette

from distlab.errors import ServiceCrash

__all__ = ["Borrowed", "HostRouter", "Server", "ServiceRouter"]


class Server(httpx.AsyncBaseTransport):
    """One in-process server (it stands for a process) serving one ASGI app.

    Args:
        name: its host name, e.g. ``catalog-1``.
        app: the ASGI app it serves.

    A stopped server refuses connections (``httpx.ConnectError``). An app that raises
    :class:`distlab.errors.ServiceCrash` while serving crashes the server: that request's
    caller sees the connection drop (``httpx.RemoteProtocolError``) and the server is
    stopped until :meth:`start` (with a new app: a restart).
    """

    def __init__(self, name: str, app: Starlette) -> None:
        self.name = name
        self.app = app
        self.running = True
        self.crashes = 0
        self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def stop(self) -> None:
        """Stop serving: new connections are refused."""
        self.running = False

    def start(self, app: Starlette | None = None) -> None:
        """Serve again, with ``app`` (a restarted process) or the same app."""
        if app is not None:
            self.app = app
            self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.running = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve ``request`` with the app, unless the server is stopped or crashes."""
        if not self.running:
            raise httpx.ConnectError(
                f"connection refused: {self.name} is not running", request=request
            )
        try:
            return await self._transport.handle_async_request(request)
        except ServiceCrash as crash:
            self.running = False
            self.crashes += 1
            raise httpx.RemoteProtocolError(
                f"{self.name} crashed ({crash}): server disconnected without an answer",
                request=request,
            ) from None


class HostRouter(httpx.AsyncBaseTransport):
    """Send each request to the transport registered for its host (``http://catalog-1/...``).

    An unknown host is a refused connection (``httpx.ConnectError``).
    """

    def __init__(self, routes: Mapping[str, httpx.AsyncBaseTransport] | None = None) -> None:
        self.routes: dict[str, httpx.AsyncBaseTransport] = dict(routes or {})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route ``request`` by ``request.url.host``."""
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(
                f"connection refused: no host {request.url.host!r}", request=request
            )
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        """Close every route's transport (waits for duplicated requests still in flight)."""
        for transport in self.routes.values():
            await transport.aclose()


class ServiceRouter(httpx.AsyncBaseTransport):
    """Send each request to the transport of its host's service, e.g. a service's faults.

    The service of ``http://catalog-2/...`` is ``catalog`` (a ``-N`` instance number is
    dropped); an unknown service is a refused connection (``httpx.ConnectError``).

    Args:
        transports: the transport of each service.
        keep_open: services whose transport :meth:`aclose` leaves open (their owner
            closes them).
    """

    def __init__(
        self,
        transports: Mapping[str, httpx.AsyncBaseTransport],
        *,
        keep_open: Collection[str] = (),
    ) -> None:
        self.transports = transports
        self.keep_open = frozenset(keep_open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route ``request`` by the service of ``request.url.host``."""
        host = request.url.host
        name, _, number = host.rpartition("-")
        transport = self.transports.get(name if name and number.isdigit() else host)
        if transport is None:
            raise httpx.ConnectError(f"connection refused: no host {host!r}", request=request)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        """Close every service's transport but those in ``keep_open``."""
        for name, transport in self.transports.items():
            if name not in self.keep_open:
                await transport.aclose()


class Borrowed(httpx.AsyncBaseTransport):
    """Use a transport without closing it when the client closes (its owner closes it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Pass ``request`` to the borrowed transport."""
        return await self.inner.handle_async_request(request)
