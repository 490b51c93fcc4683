"""What the e-commerce exercise's tests run on: the provided services, faults, and the checks.

The exercise asks students to write the core of the orders service, an ``OrderDesk``
that places orders with the users and catalog services. :class:`Market` provides those
services in-process, in virtual time: the course's own users and catalog apps (two
catalog instances on one database), a discovery registry, a seeded ``FaultyTransport``
in front of each service, and a circuit breaker per dependency on the virtual clock::

    async def main():
        async with Market(seed=3, faults=FAULTS) as market:
            desk = OrderDesk(http=market.http, resolve=market.resolve, breakers=market.breakers)
            outcome = await market.place_until_final(desk, "order-1", market.user, [...])

    distlab.run(main, seed=3)

:func:`run_orders` places many orders under faults the way a client would (retrying a
failed order with the same key, then running the desk's repair step) and
:meth:`Market.problems` says whether every order was placed exactly once and the stock
agrees. Every message names the seed, so a failure replays exactly.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol

import httpx

from distlab.patterns.breaker import CircuitBreaker, http_failure
from distlab.patterns.discovery import DiscoveryClient, ServiceRegistry, create_registry_app
from distlab.services.ecommerce import catalog, users
from distlab.services.ecommerce.common import Database, loop_clock
from distlab.services.ecommerce.hosting import Borrowed, HostRouter, Server, ServiceRouter
from distlab.sim.faults import FaultyTransport

__all__ = ["FAULTS", "Market", "Outcome", "Summary", "run_orders"]

FAULTS: Mapping[str, float] = {
    "request_loss": 0.1,
    "response_loss": 0.1,
    "duplicate": 0.1,
    "error_rate": 0.1,
}
"""10 % of each fault: lost requests, lost answers, duplicates and 503s."""

Status = Literal["confirmed", "rejected", "failed"]


@dataclass(frozen=True)
class Outcome:
    """What ``OrderDesk.place`` returns.

    Attributes:
        status: ``"confirmed"`` (stock reserved for good), ``"rejected"`` (a clear no:
            unknown user or product, not enough stock; final) or ``"failed"`` (no usable
            answer came; nothing is kept and the same key may be tried again).
        reservation: the catalog reservation id that holds the stock of a confirmed
            order (``"<key>-<attempt>"``); None otherwise.
        reason: a few words on why it was rejected or failed.
    """

    status: Status
    reservation: str | None = None
    reason: str = ""


class Desk(Protocol):
    """What the tests call on a student's ``OrderDesk``."""

    async def place(self, key: str, user_id: int, items: list[dict[str, int]]) -> Outcome: ...

    async def repair(self) -> int: ...


class Market:
    """The users and catalog services in-process, with faults, discovery and breakers.

    Use it as ``async with Market(...) as market:`` inside ``distlab.run``.

    Args:
        seed: seeds the faults (the same seed replays the same faults).
        faults: ``FaultyTransport`` settings for every request to users and catalog.
        stock: units of each of the three products at the start.

    Attributes:
        http: the ``httpx.AsyncClient`` an ``OrderDesk`` sends its requests with
            (addresses come from ``resolve``).
        resolve: ``await market.resolve("catalog")`` returns the address of one live
            instance (``http://catalog-1`` or ``http://catalog-2``, in turn).
        breakers: a ``CircuitBreaker`` per service (``"users"``, ``"catalog"``): 5
            failures in a row open it for 5 virtual seconds; 4xx answers never count.
        user: the id of the one user.
        products: the ids of the three products.
        transports: the ``FaultyTransport`` in front of each service.
        seed: the seed.
    """

    def __init__(
        self, *, seed: int = 0, faults: Mapping[str, float] | None = None, stock: int = 100
    ) -> None:
        self.seed = seed
        self.stock = stock
        databases = {
            "users": Database(schema=users.SCHEMA),
            "catalog": Database(schema=catalog.SCHEMA),
        }
        self.servers = {
            "users": Server("users", users.create_app(db=databases["users"], register=False)),
            "catalog-1": Server(
                "catalog-1", catalog.create_app(db=databases["catalog"], register=False)
            ),
            "catalog-2": Server(
                "catalog-2", catalog.create_app(db=databases["catalog"], register=False)
            ),
        }
        hosts = {"users": ["users"], "catalog": ["catalog-1", "catalog-2"]}
        options: dict[str, Any] = dict(faults or {})
        self.transports = {
            service: FaultyTransport(
                HostRouter({h: self.servers[h] for h in names}),
                seed=seed * 100 + n,
                **options,
            )
            for n, (service, names) in enumerate(hosts.items(), start=1)
        }
        # No heartbeats run in-process: a day-long lease keeps the instances listed.
        self.registry = ServiceRegistry(ttl=86_400.0, clock=loop_clock)
        for service, names in hosts.items():
            for host in names:
                self.registry.register(service, host, f"http://{host}")
        self._registry_http = httpx.AsyncClient(
            transport=Borrowed(
                HostRouter({"registry": Server("registry", create_registry_app(self.registry))})
            ),
            base_url="http://registry",
        )
        self.resolve = DiscoveryClient(self._registry_http, clock=loop_clock).resolve
        self.http = httpx.AsyncClient(transport=ServiceRouter(self.transports), timeout=1.0)
        self.breakers = {
            name: CircuitBreaker(5, 5.0, clock=loop_clock, is_failure=http_failure, name=name)
            for name in ("users", "catalog")
        }
        self._admin = httpx.AsyncClient(transport=Borrowed(HostRouter(self.servers)), timeout=None)
        self.user = 0
        self.products: list[int] = []

    async def __aenter__(self) -> Market:
        answer = await self._admin.post(
            "http://users/users", json={"name": "Ada", "email": "ada@example.org"}
        )
        self.user = answer.json()["id"]
        for name in ("Lamp", "Desk", "Chair"):
            made = await self._admin.post(
                "http://catalog-1/products",
                json={"name": name, "price_cents": 1000, "stock": self.stock},
            )
            self.products.append(made.json()["id"])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.http.aclose()
        await self._admin.aclose()
        await self._registry_http.aclose()

    async def stock_of(self, product: int) -> int:
        """Return the units of ``product`` left in the catalog (read without faults)."""
        answer = await self._admin.get(f"http://catalog-1/products/{product}")
        return int(answer.json()["stock"])

    async def reservations(self) -> list[dict[str, Any]]:
        """Return every reservation the catalog knows (read without faults)."""
        return list((await self._admin.get("http://catalog-1/reservations")).json())

    def requests_to(self, service: str) -> int:
        """Return how many requests were sent to ``service`` (``"users"`` or ``"catalog"``)."""
        return self.transports[service].requests

    async def place_until_final(
        self, desk: Desk, key: str, user_id: int, items: list[dict[str, int]], *, tries: int = 40
    ) -> Outcome:
        """Place an order as a client would: retry a failed one with the same key, backing off.

        Returns:
            The first confirmed or rejected outcome, or the last failed one after ``tries``.
        """
        outcome = Outcome("failed", None, "never tried")
        for attempt in range(tries):
            outcome = await desk.place(key, user_id, items)
            if outcome.status != "failed":
                return outcome
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        return outcome

    async def problems(
        self, outcomes: Mapping[str, Outcome], ordered: Mapping[str, Sequence[Mapping[str, int]]]
    ) -> list[str]:
        """Return what is wrong after ``outcomes`` (empty: every order placed exactly once).

        Every order is expected to be valid (a known user, enough stock): a rejected one is
        a problem too.

        Args:
            outcomes: the final outcome of each key.
            ordered: the items each key ordered.
        """
        where = f" (seed {self.seed})"
        found: list[str] = []
        held = {r["id"]: r for r in await self.reservations() if r["status"] == "reserved"}
        owned: set[str] = set()
        for key, outcome in outcomes.items():
            if outcome.status == "failed":
                found.append(f"order {key!r} never got a final answer: {outcome.reason}{where}")
            elif outcome.status == "rejected":
                found.append(
                    f"order {key!r} was rejected ({outcome.reason}) though the user exists and "
                    f"the stock suffices{where}"
                )
            elif outcome.status == "confirmed":
                if outcome.reservation not in held:
                    found.append(
                        f"order {key!r} is confirmed but no stock is held for it "
                        f"(reservation {outcome.reservation!r}){where}"
                    )
                owned.add(str(outcome.reservation))
        for rid in sorted(set(held) - owned):
            found.append(f"reservation {rid!r} holds stock but no confirmed order owns it{where}")
        units: Counter[int] = Counter()
        for key, outcome in outcomes.items():
            if outcome.status == "confirmed":
                for line in ordered[key]:
                    units[line["product_id"]] += line["quantity"]
        for product in self.products:
            left = await self.stock_of(product)
            if left != self.stock - units[product]:
                found.append(
                    f"product {product}: {left} left, but {self.stock} minus {units[product]} "
                    f"confirmed is {self.stock - units[product]}{where}"
                )
        return found


@dataclass(frozen=True)
class Summary:
    """What :func:`run_orders` saw.

    Attributes:
        outcomes: the final outcome of each order key.
        problems: what is wrong (empty: every order placed exactly once, stock consistent).
        faults: how many faults of each kind were injected.
        repairs: how many times the desk's repair step ran.
    """

    outcomes: dict[str, Outcome]
    problems: list[str]
    faults: dict[str, int]
    repairs: int


async def run_orders(
    market: Market, desk: Desk, *, orders: int = 30, concurrency: int = 5
) -> Summary:
    """Place ``orders`` orders (``concurrency`` at a time) until final, repair, and check.

    Returns:
        A :class:`Summary`; ``summary.problems`` is empty when everything is consistent.

    Raises:
        TypeError: when ``desk.place`` or ``desk.repair`` is not an ``async def``.
    """
    for name in ("place", "repair"):
        if not inspect.iscoroutinefunction(getattr(desk, name, None)):
            raise TypeError(f"OrderDesk.{name} must be an async def")
    ordered = {
        f"order-{i}": [{"product_id": market.products[i % 3], "quantity": 1 + i % 2}]
        for i in range(orders)
    }
    outcomes: dict[str, Outcome] = {}
    keys = list(ordered)
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> None:
        async with gate:
            outcomes[key] = await market.place_until_final(desk, key, market.user, ordered[key])

    await asyncio.gather(*(one(k) for k in keys))
    repairs = 0
    for _ in range(20):  # the repair step's own calls can fail: run it until it has nothing left
        repairs += 1
        if await desk.repair() == 0:
            break
        await asyncio.sleep(1.0)
    faults = Counter[str]()
    for transport in market.transports.values():
        faults.update(transport.counts())
    return Summary(outcomes, await market.problems(outcomes, ordered), dict(faults), repairs)
