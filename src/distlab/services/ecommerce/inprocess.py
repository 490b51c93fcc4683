"""The whole e-commerce application in one Python process, on virtual time.

:class:`Shop` builds the three services (and as many catalog instances as asked), each
served by an in-process :class:`Server` that stands for one process: it can be stopped
(connections refused), crashed in the middle of a request (the caller sees the
connection drop) and restarted over the same database. Requests travel over
``httpx.ASGITransport``; between the orders service and each dependency sits a seeded
``FaultyTransport``, so lost requests and answers, duplicates, latency, 503s and
outages happen on demand and replay exactly with the same seed::

    async def main():
        async with Shop(seed=7, faults={"catalog": {"response_loss": 0.1}}) as shop:
            user = await shop.add_user("Ada", "ada@example.org")
            lamp = await shop.add_product("Lamp", price_cents=2500, stock=10)
            async with shop.client() as client:
                answer = await client.post(
                    "/orders",
                    json={"user_id": user, "items": [{"product_id": lamp, "quantity": 1}]},
                    headers={"Idempotency-Key": "order-1"},
                )
            assert await shop.problems() == []

    distlab.run(main, seed=7)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette

from distlab.patterns.bulkhead import Bulkhead
from distlab.patterns.discovery import DiscoveryClient, ServiceRegistry, create_registry_app
from distlab.services.ecommerce import catalog, consistency, orders, users
from distlab.services.ecommerce.common import Database, Span
from distlab.services.ecommerce.hosting import Borrowed, HostRouter, Server, ServiceRouter
from distlab.services.ecommerce.orders import Checkpoint, loop_clock
from distlab.services.ecommerce.remote import Resolver
from distlab.sim.faults import FaultyTransport

__all__ = ["Shop"]


class Shop:
    """The e-commerce application in-process: users, catalog (1+ instances) and orders.

    Use it as ``async with Shop(...) as shop:`` inside ``distlab.run``.

    Args:
        seed: seeds the fault transports (each hop gets its own stream).
        faults: ``FaultyTransport`` settings per dependency of the orders service, e.g.
            ``{"catalog": {"request_loss": 0.05}}``; also ``"orders"`` for the hop from
            the shop's clients to the orders service.
        catalog_instances: how many catalog servers share the catalog database (>= 1).
        resilience: False calls users and catalog with no breaker, bulkhead or timeout.
        timeout: seconds the orders service waits for a dependency.
        failure_threshold: consecutive failures that open a dependency's breaker.
        recovery_timeout: seconds a breaker stays open.
        bulkheads: a bulkhead per dependency of the orders service (see ``orders.create_app``).
        discovery_refresh: seconds the orders service reuses a list of instances before it
            asks the registry again (0: ask before every call).
        checkpoint: see ``orders.Orders``: raise :class:`distlab.errors.ServiceCrash` in it to
            crash the orders server at a step of the saga.

    Attributes:
        servers: every server by host name (``users``, ``catalog-1``..., ``orders``).
        registry: the discovery registry (``distlab.patterns.discovery.ServiceRegistry``)
            where every users and catalog instance is registered.
        transports: the ``FaultyTransport`` in front of each service, by service name.
        databases: each service's database, by service name.

    Raises:
        ValueError: for an unknown service in ``faults`` or ``catalog_instances < 1``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        faults: Mapping[str, Mapping[str, Any]] | None = None,
        catalog_instances: int = 1,
        resilience: bool = True,
        timeout: float = 1.0,
        failure_threshold: int = 5,
        recovery_timeout: float = 5.0,
        bulkheads: Mapping[str, Bulkhead] | None = None,
        discovery_refresh: float = 1.0,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        faults = dict(faults or {})
        unknown = sorted(set(faults) - {"users", "catalog", "orders"})
        if unknown:
            raise ValueError(
                f"faults names unknown services {unknown}: use 'users', 'catalog' or 'orders'"
            )
        if (
            isinstance(catalog_instances, bool)
            or not isinstance(catalog_instances, int)
            or catalog_instances < 1
        ):
            raise ValueError(f"catalog_instances must be an int >= 1, got {catalog_instances!r}")
        self.databases = {
            "users": Database(schema=users.SCHEMA),
            "catalog": Database(schema=catalog.SCHEMA),
            "orders": Database(schema=orders.SCHEMA),
        }
        self.servers: dict[str, Server] = {
            "users": Server("users", users.create_app(db=self.databases["users"], register=False))
        }
        for i in range(1, catalog_instances + 1):
            name = f"catalog-{i}"
            self.servers[name] = Server(
                name, catalog.create_app(db=self.databases["catalog"], register=False)
            )
        self.instances = {
            "users": ["users"],
            "catalog": [f"catalog-{i}" for i in range(1, catalog_instances + 1)],
        }
        self.transports = {
            service: FaultyTransport(
                HostRouter({h: self.servers[h] for h in hosts}),
                seed=seed * 1000 + n,
                **faults.get(service, {}),
            )
            for n, (service, hosts) in enumerate(self.instances.items(), start=1)
        }
        self._inner = httpx.AsyncClient(
            transport=ServiceRouter(self.transports, keep_open=("orders",))
        )
        self._orders_options: dict[str, Any] = {
            "resilience": resilience,
            "timeout": timeout,
            "failure_threshold": failure_threshold,
            "recovery_timeout": recovery_timeout,
            "bulkheads": bulkheads,
            "checkpoint": checkpoint,
        }
        # Service discovery, in-process: the registry is an ASGI app like the services.
        # No heartbeats run in-process: a day-long lease keeps the instances listed.
        self.registry = ServiceRegistry(ttl=86_400.0, clock=loop_clock)
        self.servers["registry"] = Server("registry", create_registry_app(self.registry))
        for service, hosts in self.instances.items():
            for host in hosts:
                self.registry.register(service, host, f"http://{host}")
        self._registry_http = httpx.AsyncClient(
            transport=Borrowed(HostRouter({"registry": self.servers["registry"]})),
            base_url="http://registry",
        )
        self.discovery = DiscoveryClient(
            self._registry_http, refresh=discovery_refresh, clock=loop_clock
        )
        self.resolve: Resolver = self.discovery.resolve
        self.servers["orders"] = Server("orders", self._new_orders_app())
        self.transports["orders"] = FaultyTransport(
            HostRouter({"orders": self.servers["orders"]}),
            seed=seed * 1000,
            **faults.get("orders", {}),
        )
        self._admin = httpx.AsyncClient(
            transport=HostRouter(self.servers), base_url="http://orders", timeout=None
        )

    def _new_orders_app(self) -> FastAPI:
        return orders.create_app(
            db=self.databases["orders"],
            client=self._inner,
            resolve=self.resolve,
            register=False,
            **self._orders_options,
        )

    async def __aenter__(self) -> Shop:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the clients (waits for duplicated requests still in flight)."""
        await self._inner.aclose()
        await self._admin.aclose()
        await self._registry_http.aclose()
        await self.transports["orders"].aclose()

    # Clients ----------------------------------------------------------------------------
    def client(self, *, timeout: float | None = 5.0) -> httpx.AsyncClient:
        """Return a client of the orders service (through the ``"orders"`` faults).

        Args:
            timeout: seconds the client waits for an answer, or None.
        """
        return httpx.AsyncClient(
            transport=Borrowed(self.transports["orders"]),
            base_url="http://orders",
            timeout=timeout,
        )

    def admin(self, host: str) -> httpx.AsyncClient:
        """Return a fault-free client of one server (``"users"``, ``"catalog-1"``...)."""
        if host not in self.servers:
            raise ValueError(f"no server {host!r}; servers: {sorted(self.servers)}")
        return httpx.AsyncClient(
            transport=Borrowed(HostRouter(self.servers)), base_url=f"http://{host}"
        )

    async def add_user(self, name: str, email: str) -> int:
        """Create a user (fault-free) and return its id."""
        response = await self._admin.post("http://users/users", json={"name": name, "email": email})
        response.raise_for_status()
        return int(response.json()["id"])

    async def add_product(self, name: str, *, price_cents: int = 1000, stock: int = 10) -> int:
        """Create a product (fault-free) and return its id."""
        response = await self._admin.post(
            "http://catalog-1/products",
            json={"name": name, "price_cents": price_cents, "stock": stock},
        )
        response.raise_for_status()
        return int(response.json()["id"])

    def add_catalog_instance(self) -> str:
        """Start one more catalog server on the shared database and register it; return its host.

        The orders service finds it through discovery at its next refresh: nothing else
        changes (scaling out one service).
        """
        host = f"catalog-{len(self.instances['catalog']) + 1}"
        self.servers[host] = Server(
            host, catalog.create_app(db=self.databases["catalog"], register=False)
        )
        self.instances["catalog"].append(host)
        router = self.transports["catalog"].inner
        assert isinstance(router, HostRouter)
        router.routes[host] = self.servers[host]
        self.registry.register("catalog", host, f"http://{host}")
        return host

    # Failures -----------------------------------------------------------------------------
    def restart_orders(self) -> None:
        """Start the orders service again after a crash: a new app over the same database."""
        self.servers["orders"].start(self._new_orders_app())

    async def repair(self) -> orders.RepairReport:
        """Run the orders service's repair step (as its timer would)."""
        state: orders.Orders = self.servers["orders"].app.state.orders
        return await state.repair()

    async def problems(self, initial_stock: Mapping[int, int] | None = None) -> list[str]:
        """Return every inconsistency between orders and stock (empty: consistent)."""
        return await consistency.check(
            self._admin, "http://orders", "http://catalog-1", initial_stock
        )

    def spans(self, request_id: str | None = None) -> list[Span]:
        """Return the spans every server recorded (of one request id), by start time."""
        seen: dict[int, Starlette] = {}
        for server in self.servers.values():
            seen[id(server.app)] = server.app
        found: Iterable[Span] = (
            s for app in seen.values() for s in getattr(app.state, "spans", ())
        )
        if request_id is not None:
            found = (s for s in found if s.request_id == request_id)
        return sorted(found, key=lambda s: (s.start, -s.end))
