"""Service discovery with leases: a registry, its HTTP API, a client and a heartbeat helper.

Services find each other by name, not by address. Each instance registers its address
under its service's name and renews a lease (a heartbeat) before ``ttl`` seconds pass;
an instance that stops renewing (it crashed, or the network cut it off) disappears from
the registry once its lease runs out. Consumers ask the registry for the live instances
and spread their calls over them (client-side discovery).

The pieces, as the chapter's diagram draws them::

    Service Consumer ──request──> Service Registry ──response──> Service Consumer
    Service Consumer ──connect──> Service Provider

- :class:`ServiceRegistry` keeps the leases (in memory, clock injectable);
- :func:`create_registry_app` serves it over HTTP (a Starlette ASGI app)::

      PUT    /services/{service}/{instance_id}             {"address": "..."} -> 200
      POST   /services/{service}/{instance_id}/heartbeat   200, or 404 when unknown or expired
      DELETE /services/{service}/{instance_id}             204, or 404
      GET    /services/{service}                           200 {"service": ..., "instances": [...]}
      GET    /services                                     200 {"services": [...]}
      GET    /healthz                                      200 {"status": "ok", ...}

- :class:`DiscoveryClient` resolves a service name to an address (round-robin or
  least-outstanding-requests) and keeps serving the last good list when the registry
  cannot be reached;
- :class:`Heartbeater` registers a service instance and renews its lease (self-registration);
- ``python -m distlab.patterns.discovery serve --port N`` runs the registry for real
  (uvicorn on 127.0.0.1).

In virtual time pass ``clock=distlab.clock()`` to the registry inside ``distlab.run``
and reach the app through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from distlab.errors import NoInstancesError

__all__ = [
    "DiscoveryClient",
    "Heartbeater",
    "Lease",
    "ServiceRegistry",
    "Strategy",
    "create_registry_app",
    "main",
]

_log = logging.getLogger(__name__)

Strategy = Literal["round_robin", "least_outstanding"]


def _check_name(parameter: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{parameter} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{parameter} must be a non-empty string, got {value!r}")
    return value


def _check_seconds(parameter: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{parameter} must be a number of seconds, got {type(value).__name__}")
    ok = value > 0 if positive else value >= 0
    if not (ok and math.isfinite(value)):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{parameter} must be {bound} and finite (seconds), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Lease:
    """One live instance as the registry sees it.

    Attributes:
        service: the service name.
        instance_id: the instance's id, unique within the service.
        address: where to reach it (``"http://10.0.0.7:8080"``).
        renewed_at: registry-clock time of the last register or heartbeat.
        expires_at: the registry-clock time from which it counts as gone.
    """

    service: str
    instance_id: str
    address: str
    renewed_at: float
    expires_at: float


class _Entry:
    __slots__ = ("address", "renewed_at")

    def __init__(self, address: str, renewed_at: float) -> None:
        self.address = address
        self.renewed_at = renewed_at


class ServiceRegistry:
    """Keep the addresses of service instances, each on a lease of ``ttl`` seconds.

    An instance is live while less than ``ttl`` seconds (by ``clock``) have passed
    since its last ``register`` or ``heartbeat``. An expired instance is gone: it is
    not listed, ``heartbeat`` and ``deregister`` raise ``KeyError`` for it, and it may
    register again (it is then listed last, as a new registration).

    Args:
        ttl: the lease, in seconds; > 0 and finite.
        clock: zero-argument callable returning monotonic seconds. Defaults to
            ``time.monotonic``; inject ``distlab.clock()`` or a ``distlab.ManualClock``.

    Raises:
        ValueError: when ``ttl`` is not > 0 and finite.
        TypeError: when ``ttl`` is not a number or ``clock`` is not callable.
    """

    def __init__(self, ttl: float = 30.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = _check_seconds("ttl", ttl, positive=True)
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds")
        self._clock = clock
        self._lock = threading.Lock()
        # service -> instance_id -> entry, both in registration order (dicts keep it).
        self._services: dict[str, dict[str, _Entry]] = {}

    @property
    def ttl(self) -> float:
        """The lease, in seconds."""
        return self._ttl

    def register(self, service: str, instance_id: str, address: str) -> None:
        """Add an instance, or update a live one's address; either way renew its lease.

        Raises:
            ValueError: when a name or the address is empty.
            TypeError: when one of them is not a string.
        """
        _check_name("service", service)
        _check_name("instance_id", instance_id)
        _check_name("address", address)
        with self._lock:
            now = self._clock()
            instances = self._live(service, now)
            entry = instances.get(instance_id)
            if entry is None:
                self._services.setdefault(service, instances)[instance_id] = _Entry(address, now)
            else:  # an update keeps its place in the registration order
                entry.address = address
                entry.renewed_at = now

    def heartbeat(self, service: str, instance_id: str) -> None:
        """Renew a live instance's lease.

        Raises:
            KeyError: when the instance is unknown or its lease has expired (it must
                register again).
        """
        with self._lock:
            now = self._clock()
            entry = self._live(service, now).get(instance_id)
            if entry is None:
                raise KeyError(self._unknown(service, instance_id))
            entry.renewed_at = now

    def deregister(self, service: str, instance_id: str) -> None:
        """Remove an instance at once (a clean shutdown).

        Raises:
            KeyError: when the instance is unknown or its lease has already expired.
        """
        with self._lock:
            instances = self._live(service, self._clock())
            if instances.pop(instance_id, None) is None:
                raise KeyError(self._unknown(service, instance_id))
            if not instances:
                self._services.pop(service, None)

    def instances(self, service: str) -> list[str]:
        """Return the addresses of the live instances of ``service``, in registration order.

        Returns:
            A new list; ``[]`` when the service has no live instance (or is unknown).
        """
        with self._lock:
            return [entry.address for entry in self._live(service, self._clock()).values()]

    def leases(self, service: str) -> list[Lease]:
        """Return the live instances of ``service`` with their lease times, in order."""
        with self._lock:
            return [
                Lease(service, instance_id, e.address, e.renewed_at, e.renewed_at + self._ttl)
                for instance_id, e in self._live(service, self._clock()).items()
            ]

    def services(self) -> list[str]:
        """Return the names of the services that have at least one live instance, sorted."""
        with self._lock:
            now = self._clock()
            return sorted(name for name in list(self._services) if self._live(name, now))

    def __repr__(self) -> str:
        return f"ServiceRegistry(ttl={self._ttl!r}, services={len(self._services)})"

    def _live(self, service: str, now: float) -> dict[str, _Entry]:
        """The live instances of ``service``, expired ones dropped (lock held)."""
        instances = self._services.get(service)
        if instances is None:
            return {}
        expired = [i for i, e in instances.items() if not now - e.renewed_at < self._ttl]
        for instance_id in expired:
            del instances[instance_id]
        if not instances:
            del self._services[service]
        return instances

    @staticmethod
    def _unknown(service: str, instance_id: str) -> str:
        return (
            f"instance {instance_id!r} of service {service!r} is not registered "
            "(unknown, deregistered, or its lease expired)"
        )


# HTTP API ------------------------------------------------------------------------------
def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_registry_app(registry: ServiceRegistry) -> Starlette:
    """Return an ASGI app (Starlette) that serves ``registry`` over HTTP.

    Endpoints (JSON in and out; errors are ``{"error": "..."}``):

    - ``PUT /services/{service}/{instance_id}`` with ``{"address": "..."}``: register or
      renew; 200 with the registration. Malformed JSON, no object, a missing, empty or
      non-string address: 422 saying which.
    - ``POST /services/{service}/{instance_id}/heartbeat``: renew; 200, or 404 when the
      instance is unknown or its lease expired (register again).
    - ``DELETE /services/{service}/{instance_id}``: deregister; 204, or 404.
    - ``GET /services/{service}``: 200 ``{"service": ..., "instances": [addresses]}``.
    - ``GET /services``: 200 ``{"services": [names with a live instance]}``.
    - ``GET /healthz``: 200 ``{"status": "ok", "ttl": ..., "services": count}``.
    """

    async def register(request: Request) -> Response:
        service = request.path_params["service"]
        instance_id = request.path_params["instance_id"]
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(422, f"the request body is not valid JSON: {exc}")
        if not isinstance(body, dict):
            return _error(
                422, 'the request body must be a JSON object like {"address": "http://host:port"}'
            )
        if "address" not in body:
            return _error(422, 'the request body has no "address" (where to reach the instance)')
        address = body["address"]
        if not isinstance(address, str) or not address.strip():
            return _error(422, f'"address" must be a non-empty string, got {address!r}')
        try:
            registry.register(service, instance_id, address)
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse(
            {
                "service": service,
                "instance_id": instance_id,
                "address": address,
                "ttl": registry.ttl,
            }
        )

    async def heartbeat(request: Request) -> Response:
        service = request.path_params["service"]
        instance_id = request.path_params["instance_id"]
        try:
            registry.heartbeat(service, instance_id)
        except KeyError as exc:
            return _error(404, f"{exc.args[0]}: register it again with PUT")
        return JSONResponse({"service": service, "instance_id": instance_id, "ttl": registry.ttl})

    async def deregister(request: Request) -> Response:
        try:
            registry.deregister(request.path_params["service"], request.path_params["instance_id"])
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        return Response(status_code=204)

    async def instances(request: Request) -> Response:
        service = request.path_params["service"]
        return JSONResponse({"service": service, "instances": registry.instances(service)})

    async def services(request: Request) -> Response:
        return JSONResponse({"services": registry.services()})

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "ttl": registry.ttl, "services": len(registry.services())}
        )

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/services", services, methods=["GET"]),
            Route("/services/{service}", instances, methods=["GET"]),
            Route("/services/{service}/{instance_id}", register, methods=["PUT"]),
            Route("/services/{service}/{instance_id}", deregister, methods=["DELETE"]),
            Route("/services/{service}/{instance_id}/heartbeat", heartbeat, methods=["POST"]),
        ]
    )


# Client-side discovery -----------------------------------------------------------------
class _Cached:
    __slots__ = ("addresses", "fetched_at")

    def __init__(self, addresses: list[str], fetched_at: float) -> None:
        self.addresses = addresses
        self.fetched_at = fetched_at


class DiscoveryClient:
    """Resolve service names to addresses through a registry's HTTP API.

    Every lookup asks the registry (or reuses a list fetched less than ``refresh``
    seconds ago). When the registry cannot be reached (a transport error, a 5xx, an
    answer that is not a list of instances) the client keeps serving the last good
    list of that service and logs a warning saying so; it raises
    ``NoInstancesError`` only when it has nothing to serve.

    Args:
        http: an ``httpx.AsyncClient`` whose ``base_url`` is the registry
            (``httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://registry")``
            in-process). The caller owns it and closes it.
        strategy: ``"round_robin"`` (each live instance in turn) or
            ``"least_outstanding"`` (the instance with the fewest calls in flight
            through :meth:`instance`; ties in turn).
        refresh: seconds a fetched list is reused before the registry is asked again;
            0 (the default) asks on every lookup.
        clock: monotonic seconds for ``refresh``; defaults to the running event loop's
            time (virtual under ``distlab.run``).

    Raises:
        ValueError: for an unknown strategy or a negative ``refresh`` (named).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        strategy: Strategy = "round_robin",
        refresh: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(http, httpx.AsyncClient):
            raise TypeError(f"http must be an httpx.AsyncClient, got {type(http).__name__}")
        if strategy not in ("round_robin", "least_outstanding"):
            raise ValueError(
                f"strategy must be 'round_robin' or 'least_outstanding', got {strategy!r}"
            )
        self._http = http
        self._strategy = strategy
        self._refresh = _check_seconds("refresh", refresh, positive=False)
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._stale: set[str] = set()
        self._turn: dict[str, itertools.count[int]] = {}
        self._outstanding: dict[str, int] = {}

    @property
    def strategy(self) -> Strategy:
        """How an instance is chosen: ``"round_robin"`` or ``"least_outstanding"``."""
        return self._strategy

    def is_stale(self, service: str) -> bool:
        """True when the last lookup of ``service`` served a cached list (registry unreachable)."""
        return service in self._stale

    def outstanding(self, address: str) -> int:
        """Calls in flight to ``address`` through :meth:`instance`."""
        return self._outstanding.get(address, 0)

    async def instances(self, service: str) -> list[str]:
        """Return the live addresses of ``service`` (a new list; ``[]`` if the registry has none).

        Raises:
            NoInstancesError: when the registry cannot be reached and no list of
                ``service`` was ever fetched.
        """
        _check_name("service", service)
        now = self._now()
        cached = self._cache.get(service)
        if cached is not None and self._refresh and now - cached.fetched_at < self._refresh:
            return list(cached.addresses)
        try:
            response = await self._http.get(f"/services/{service}")
            response.raise_for_status()
            addresses = response.json()["instances"]
            if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
                raise ValueError(f"'instances' is not a list of addresses: {addresses!r}")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            reason = self._describe(exc)
            if cached is None:
                raise NoInstancesError(
                    service, f"the registry is unreachable ({reason}) and no list is cached"
                ) from exc
            self._stale.add(service)
            _log.warning(
                "registry unreachable (%s): serving the last good list of %r "
                "(%d instances, fetched %.1f s ago)",
                reason,
                service,
                len(cached.addresses),
                now - cached.fetched_at,
            )
            return list(cached.addresses)
        self._stale.discard(service)
        self._cache[service] = _Cached(list(addresses), now)
        return list(addresses)

    async def resolve(self, service: str) -> str:
        """Return the address of one live instance of ``service``, chosen by the strategy.

        Raises:
            NoInstancesError: (a ``LookupError``) when no live instance is known.
        """
        addresses = await self.instances(service)
        if not addresses:
            raise NoInstancesError(service)
        turn = next(self._turn.setdefault(service, itertools.count()))
        if self._strategy == "round_robin":
            return addresses[turn % len(addresses)]
        n = len(addresses)
        order = [addresses[(turn + k) % n] for k in range(n)]  # ties go round in turn
        return min(order, key=self.outstanding)

    @contextlib.asynccontextmanager
    async def instance(self, service: str) -> AsyncIterator[str]:
        """Resolve ``service`` and count a call in flight to the chosen address while inside.

        Use it around the call so that ``"least_outstanding"`` sees the load::

            async with discovery.instance("orders") as address:
                response = await http.get(f"{address}/orders/42")

        Raises:
            NoInstancesError: when no live instance is known.
        """
        address = await self.resolve(service)
        self._outstanding[address] = self._outstanding.get(address, 0) + 1
        try:
            yield address
        finally:
            left = self._outstanding[address] - 1
            if left:
                self._outstanding[address] = left
            else:
                del self._outstanding[address]

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    @staticmethod
    def _describe(exc: BaseException) -> str:
        if isinstance(exc, httpx.HTTPStatusError):
            return f"HTTP {exc.response.status_code}"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# Self-registration ---------------------------------------------------------------------
class Heartbeater:
    """Register a service instance and keep renewing its lease until stopped.

    Every ``interval`` seconds it sends a heartbeat; when the registry answers 404 (the
    lease expired, or the registry restarted and forgot it) it registers again; when
    the registry cannot be reached it logs a warning and tries again at the next beat.
    Pick ``interval`` well below the registry's ttl (Eureka: 30 s renewals, 90 s lease)
    so that one or two lost heartbeats do not drop a healthy instance.

    Use it as an async context manager around the service's life::

        async with Heartbeater(http, "orders", "orders-1", "http://10.0.0.7:8080", interval=10):
            await serve_forever()

    Args:
        http: an ``httpx.AsyncClient`` whose ``base_url`` is the registry.
        service: the service name.
        instance_id: this instance's id.
        address: where consumers reach this instance.
        interval: seconds between heartbeats (event-loop time); > 0.

    Raises:
        ValueError: for an empty name or address, or interval <= 0.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        service: str,
        instance_id: str,
        address: str,
        *,
        interval: float = 10.0,
    ) -> None:
        self._http = http
        self.service = _check_name("service", service)
        self.instance_id = _check_name("instance_id", instance_id)
        self.address = _check_name("address", address)
        self.interval = _check_seconds("interval", interval, positive=True)
        self._task: asyncio.Task[None] | None = None
        self.beats = 0
        """Heartbeats the registry accepted."""
        self.registrations = 0
        """Successful registrations (the first one included)."""
        self.failures = 0
        """Heartbeats or registrations that did not reach the registry."""

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Register now, then renew every ``interval`` seconds in a background task.

        Raises:
            httpx.HTTPError: when the first registration fails (the service should not
                pretend to be discoverable).
            RuntimeError: when already started.
        """
        if self.running:
            raise RuntimeError(f"the heartbeater of {self.instance_id!r} is already running")
        await self._register()
        self._task = asyncio.create_task(
            self._beat_forever(), name=f"heartbeat {self.service}/{self.instance_id}"
        )

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop renewing; with ``deregister`` (the default) remove the instance at once.

        Without deregistering (a crash, simulated) the instance stays listed until its
        lease runs out. A registry that cannot be reached is logged, not raised.
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if deregister:
            try:
                response = await self._http.delete(self._path)
                if response.status_code not in (204, 404):
                    response.raise_for_status()
            except httpx.HTTPError as exc:
                _log.warning("could not deregister %s: %s", self._path, exc)

    async def __aenter__(self) -> Heartbeater:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def _path(self) -> str:
        return f"/services/{self.service}/{self.instance_id}"

    async def _register(self) -> None:
        response = await self._http.put(self._path, json={"address": self.address})
        response.raise_for_status()
        self.registrations += 1

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                response = await self._http.post(f"{self._path}/heartbeat")
                if response.status_code == 404:
                    _log.info("lease of %s expired: registering again", self._path)
                    await self._register()
                else:
                    response.raise_for_status()
                    self.beats += 1
            except httpx.HTTPError as exc:
                self.failures += 1
                _log.warning("heartbeat of %s failed: %s", self._path, exc)


# Command line --------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m distlab.patterns.discovery serve [--host H] [--port N] [--ttl S]``.

    Serves a fresh in-memory registry with uvicorn until interrupted; prints
    ``registry listening on http://HOST:PORT`` once it accepts connections (``--port 0``
    picks a free port and prints it).
    """
    parser = argparse.ArgumentParser(
        prog="python -m distlab.patterns.discovery",
        description="Run the course's service registry as a real HTTP server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a fresh in-memory registry")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8761, help="port (default 8761; 0: any free)")
    serve.add_argument("--ttl", type=float, default=30.0, help="lease in seconds (default 30)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, got {args.port}")
    try:
        registry = ServiceRegistry(args.ttl)
    except ValueError as exc:
        parser.error(f"--ttl: {exc}")

    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                port = self.servers[0].sockets[0].getsockname()[1]
                print(f"registry listening on http://{args.host}:{port}", flush=True)

    config = uvicorn.Config(
        create_registry_app(registry), host=args.host, port=args.port, log_level="warning"
    )
    _Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
