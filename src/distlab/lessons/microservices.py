"""The experiments of lesson 05 (microservices), run on the course's e-commerce application.

Every scenario builds the application in-process (``Shop``) on virtual time, so the
lesson and its tests get the same numbers from the same seeds:

- :func:`order_latencies`: what the extra network hops cost, microservices vs monolith;
- :func:`trace_one_order` and :func:`plot_waterfall`: one order's path, hop by hop;
- :func:`scale_catalog`: throughput as catalog instances are added through discovery;
- :func:`catalog_outage`: users keep working, orders fail fast behind the breaker;
- :func:`replace_catalog`: a new catalog version swapped in under load;
- :func:`lost_answers`: partial failures, with and without the saga's compensation;
- :func:`crash_mid_saga`: stock reserved but the order not recorded, and the repair;
- :func:`moving_parts`: what there is to run and watch;
- the checkers of the two "Your turn" cells.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from starlette.types import Message, Receive, Scope, Send

from distlab.errors import CircuitOpenError, ServiceCrash
from distlab.lessons.checks import checker, expect
from distlab.services.ecommerce.common import Span
from distlab.services.ecommerce.consistency import problems as consistency_problems
from distlab.services.ecommerce.hosting import Server
from distlab.services.ecommerce.inprocess import Shop
from distlab.services.ecommerce.launcher import SERVICES
from distlab.sim.vtime import run

__all__ = [
    "HOP",
    "Capacity",
    "LatencyRun",
    "OutageRun",
    "catalog_outage",
    "check_classify",
    "check_orphans",
    "crash_mid_saga",
    "lost_answers",
    "moving_parts",
    "order_latencies",
    "plot_latencies",
    "plot_waterfall",
    "replace_catalog",
    "scale_catalog",
    "trace_one_order",
]

HOP_FIXED = 0.0005
HOP_MEAN_EXTRA = 0.0005
HOP_MEAN = HOP_FIXED + HOP_MEAN_EXTRA
"""Mean seconds one call spends on the network in these experiments (1 ms)."""
WORK = 0.0003
"""Seconds each service works on a request in the waterfall."""


def HOP(rng: Any) -> float:
    """Draw one call's network delay: 0.5 ms plus an exponential tail of mean 0.5 ms."""
    return HOP_FIXED + float(rng.expovariate(1 / HOP_MEAN_EXTRA))


def _body(user: int, product: int, quantity: int = 1) -> dict[str, Any]:
    return {"user_id": user, "items": [{"product_id": product, "quantity": quantity}]}


async def _setup(shop: Shop, stock: int = 10_000) -> tuple[int, int]:
    user = await shop.add_user("Ada", "ada@example.org")
    product = await shop.add_product("Lamp", stock=stock)
    return user, product


# 1. Latency ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyRun:
    """Seconds per order, placed one at a time.

    Attributes:
        microservices: client -> orders -> users, catalog: three calls on the network.
        monolith: client -> one process that checks, reserves and records: one call.
    """

    microservices: list[float]
    monolith: list[float]


def order_latencies(*, orders: int = 100, seed: int = 5) -> LatencyRun:
    """Place ``orders`` orders one at a time in each architecture; return their latencies.

    Every call on the network costs :data:`HOP` (0.5 ms plus an exponential tail, mean
    1 ms); work inside a process costs nothing in virtual time, so the difference is
    the network alone. The monolith is the same code with the two remote calls made
    inside the process (modelled as one call from the client to it).
    """
    if orders < 1:
        raise ValueError(f"orders must be >= 1, got {orders!r}")

    async def main() -> LatencyRun:
        hops = {"latency": HOP}
        async with Shop(seed=seed, faults={"users": hops, "catalog": hops, "orders": hops}) as shop:
            user, product = await _setup(shop)
            micro = []
            async with shop.client() as client:
                for i in range(orders):
                    started = asyncio.get_running_loop().time()
                    answer = await client.post(
                        "/orders", json=_body(user, product), headers={"Idempotency-Key": f"m{i}"}
                    )
                    assert answer.status_code == 201, answer.text
                    micro.append(asyncio.get_running_loop().time() - started)
        async with Shop(seed=seed, faults={"orders": hops}) as shop:  # internal calls free
            user, product = await _setup(shop)
            mono = []
            async with shop.client() as client:
                for i in range(orders):
                    started = asyncio.get_running_loop().time()
                    await client.post(
                        "/orders", json=_body(user, product), headers={"Idempotency-Key": f"o{i}"}
                    )
                    mono.append(asyncio.get_running_loop().time() - started)
        return LatencyRun(micro, mono)

    return run(main, seed=seed)


def plot_latencies(result: LatencyRun, ax: Axes | None = None) -> Axes:
    """Draw the survival curve of both latency samples (log-scaled fraction slower than x)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for label, values in (
        ("monolith: 1 call", result.monolith),
        ("microservices: 3 calls", result.microservices),
    ):
        ordered = sorted(v * 1000 for v in values)
        n = len(ordered)
        ax.step(ordered, [1 - i / n for i in range(n)], where="post", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("order latency (ms)")
    ax.set_ylabel("fraction of orders slower")
    ax.set_title("The price of the network: one order, placed one at a time")
    ax.legend()
    return ax


# 2. The waterfall --------------------------------------------------------------------------
def trace_one_order(*, seed: int = 5, request_id: str = "order-42") -> list[Span]:
    """Place one order with ``X-Request-ID: request_id``; return the spans of every service."""

    async def main() -> list[Span]:
        hops = {"latency": HOP}
        async with Shop(seed=seed, faults={"users": hops, "catalog": hops, "orders": hops}) as shop:
            user, product = await _setup(shop)
            for host in ("orders", "users", "catalog-1"):  # each service works 0.3 ms
                _limit(shop.servers[host], WORK, workers=100, prefix="/")
            async with shop.client() as client:
                await client.post(
                    "/orders",
                    json=_body(user, product),
                    headers={"Idempotency-Key": "trace", "X-Request-ID": request_id},
                )
            return shop.spans(request_id)

    return run(main, seed=seed)


def plot_waterfall(spans: list[Span], ax: Axes | None = None) -> Axes:
    """Draw one bar per span: which service, when it started, how long it took (ms)."""
    if not spans:
        raise ValueError("spans is empty: nothing to draw (was the request id right?)")
    ax = ax or plt.subplots(figsize=(7, 2.5))[1]
    origin = min(s.start for s in spans)
    labels = [f"{s.service}: {s.method} {s.path}" for s in spans]
    for row, span in enumerate(spans):
        ax.barh(row, (span.end - span.start) * 1000, left=(span.start - origin) * 1000)
    ax.set_yticks(range(len(spans)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("time since the order arrived (ms)")
    ax.set_title(f"One order's path (X-Request-ID: {spans[0].request_id})")
    return ax


# 3. Scalability --------------------------------------------------------------------------
class Capacity:
    """Give an ASGI app a finite capacity: ``workers`` requests at a time, ``service_time`` each.

    Only requests whose path starts with ``prefix`` pay; requests beyond ``workers``
    queue. ``state`` is the wrapped app's, so spans still work.

    Raises:
        ValueError: when ``workers < 1`` or ``service_time < 0`` (named).
    """

    def __init__(
        self, app: Any, *, workers: int = 1, service_time: float = 0.01, prefix: str = "/"
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        if service_time < 0:
            raise ValueError(f"service_time must be >= 0 seconds, got {service_time!r}")
        self.app = app
        self.state = app.state
        self.service_time = service_time
        self.prefix = prefix
        self._slots = asyncio.Semaphore(workers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            async with self._slots:

                async def send_after_work(message: Message) -> None:
                    # The work happens before the answer leaves, inside the app's span.
                    if message["type"] == "http.response.start":
                        await asyncio.sleep(self.service_time)
                    await send(message)

                await self.app(scope, receive, send_after_work)
            return
        await self.app(scope, receive, send)


def _limit(
    server: Server, service_time: float, workers: int = 1, prefix: str = "/reservations"
) -> None:
    capacity = Capacity(server.app, workers=workers, service_time=service_time, prefix=prefix)
    server.start(capacity)  # type: ignore[arg-type]


def scale_catalog(
    instances: int,
    *,
    rate: float = 120.0,
    seconds: float = 1.0,
    service_time: float = 0.02,
    seed: int = 7,
) -> float:
    """Offer ``rate`` orders/s for ``seconds``; return the orders/s completed.

    Each catalog instance reserves one order at a time in ``service_time`` seconds (50
    orders/s each), so with ``instances`` of them theory says
    ``min(rate, instances / service_time)``. Instances after the first are started and
    registered while the shop runs; the orders service finds them through discovery.
    """
    if instances < 1:
        raise ValueError(f"instances must be >= 1, got {instances!r}")

    async def main() -> float:
        async with Shop(seed=seed, timeout=30.0) as shop:
            user, product = await _setup(shop, stock=10**6)
            _limit(shop.servers["catalog-1"], service_time)
            for _ in range(instances - 1):
                _limit(shop.servers[shop.add_catalog_instance()], service_time)
            await asyncio.sleep(2.0)  # the discovery client refreshes its list
            loop = asyncio.get_running_loop()
            start = loop.time()
            total = round(rate * seconds)
            done: list[float] = []
            async with shop.client(timeout=None) as client:

                async def one(i: int) -> None:
                    await asyncio.sleep(i / rate)
                    answer = await client.post(
                        "/orders", json=_body(user, product), headers={"Idempotency-Key": f"s{i}"}
                    )
                    if answer.status_code == 201:
                        done.append(loop.time())

                await asyncio.gather(*(one(i) for i in range(total)))
            return len(done) / (max(done) - start)

    return run(main, seed=seed)


# 4. Resilience -----------------------------------------------------------------------------
@dataclass(frozen=True)
class OutageRun:
    """What happened while the catalog was down.

    Attributes:
        users_ok: user look-ups answered 200 (of ``attempts``).
        orders_failed: orders answered 503 (of ``attempts``).
        catalog_calls: requests that reached for the dead catalog.
        slow_orders: orders that took 0.5 s or more (they waited for the 1 s timeout).
        attempts: look-ups and orders tried, one each per second.
    """

    users_ok: int
    orders_failed: int
    catalog_calls: int
    slow_orders: int
    attempts: int


def catalog_outage(*, with_breaker: bool = True, seconds: int = 60, seed: int = 3) -> OutageRun:
    """Stop the catalog; for ``seconds`` s look a user up and place an order every second."""

    async def main() -> OutageRun:
        # Without a breaker: the same 1 s timeout, but a threshold no outage reaches.
        threshold = 5 if with_breaker else 10**9
        async with Shop(
            seed=seed, timeout=1.0, failure_threshold=threshold, recovery_timeout=30.0
        ) as shop:
            user, product = await _setup(shop)
            shop.transports["catalog"].outage(0, 10**6, mode="drop")  # every request lost
            users_ok = failed = slow = 0
            loop = asyncio.get_running_loop()
            async with shop.client(timeout=5.0) as client, shop.admin("users") as users:
                for i in range(seconds):
                    tick = loop.time()
                    users_ok += (await users.get(f"/users/{user}")).status_code == 200
                    started = loop.time()
                    try:
                        answer = await client.post(
                            "/orders",
                            json=_body(user, product),
                            headers={"Idempotency-Key": f"k{i}"},
                        )
                        failed += answer.status_code == 503
                    except httpx.TimeoutException:
                        failed += 1
                    slow += loop.time() - started >= 0.5
                    await asyncio.sleep(max(0.0, tick + 1.0 - loop.time()))
            return OutageRun(users_ok, failed, shop.transports["catalog"].requests, slow, seconds)

    return run(main, seed=seed)


def replace_catalog(*, orders: int = 100, rate: float = 25.0, seed: int = 11) -> dict[str, int]:
    """Swap catalog v1 for v2 while orders flow: start v2, register it, drain and stop v1.

    Returns:
        ``{"placed": ..., "failed": ..., "served_by_v1": ..., "served_by_v2": ...}``.
    """

    async def main() -> dict[str, int]:
        async with Shop(seed=seed, discovery_refresh=0.5) as shop:
            user, product = await _setup(shop)
            placed = failed = 0
            swap_at = orders / rate / 2

            async def swap() -> None:
                await asyncio.sleep(swap_at)
                new = shop.add_catalog_instance()  # "v2": same API, new code, same database
                shop.registry.deregister("catalog", "catalog-1")
                await asyncio.sleep(2.0)  # let requests already sent to v1 finish (drain)
                shop.servers["catalog-1"].stop()
                assert new == "catalog-2"

            async with shop.client() as client:

                async def one(i: int) -> None:
                    nonlocal placed, failed
                    await asyncio.sleep(i / rate)
                    answer = await client.post(
                        "/orders", json=_body(user, product), headers={"Idempotency-Key": f"r{i}"}
                    )
                    if answer.status_code == 201:
                        placed += 1
                    else:
                        failed += 1

                await asyncio.gather(swap(), *(one(i) for i in range(orders)))

            def served(host: str) -> int:
                spans = shop.servers[host].app.state.spans
                return sum(1 for s in spans if s.path.startswith("/reservations"))

            return {
                "placed": placed,
                "failed": failed,
                "served_by_v1": served("catalog-1"),
                "served_by_v2": served("catalog-2"),
            }

    return run(main, seed=seed)


# 5. Partial failures and consistency ---------------------------------------------------------
def lost_answers(
    *, compensate: bool = True, orders: int = 100, loss: float = 0.1, seed: int = 2
) -> dict[str, int]:
    """Place orders while ``loss`` of the catalog's answers are lost; count stock held for nothing.

    With ``compensate`` the saga releases a reservation whose answer was lost (and the
    repair step retries releases that failed); without it, the orders service simply
    reports the failure, as a naive service does.

    Returns:
        ``{"failed": orders that failed, "orphans": reservations held by no order,
        "units_held_for_nothing": stock units they hold}``.
    """

    async def main() -> dict[str, int]:
        async with Shop(seed=seed, faults={"catalog": {"response_loss": loss}}) as shop:
            user, product = await _setup(shop)
            state = shop.servers["orders"].app.state.orders
            if not compensate:

                async def never(order_id: int, attempt: int) -> bool:
                    return True  # "released": pretend, as a service without compensation does

                state._release = never
            failed = 0
            async with shop.client() as client:
                for i in range(orders):
                    answer = await client.post(
                        "/orders", json=_body(user, product), headers={"Idempotency-Key": f"k{i}"}
                    )
                    failed += answer.status_code != 201
            shop.transports["catalog"].configure(response_loss=0.0)
            await shop.repair()
            async with shop.admin("catalog-1") as admin:
                held = [
                    r
                    for r in (await admin.get("/reservations")).json()
                    if r["status"] == "reserved"
                ]
            async with shop.admin("orders") as admin:
                confirmed = {
                    o["reservation_id"]
                    for o in (await admin.get("/orders")).json()
                    if o["status"] == "confirmed"
                }
            orphans = [r for r in held if r["id"] not in confirmed]
            return {
                "failed": failed,
                "orphans": len(orphans),
                "units_held_for_nothing": sum(
                    line["quantity"] for r in orphans for line in r["items"]
                ),
            }

    return run(main, seed=seed)


def crash_mid_saga(*, seed: int = 1) -> dict[str, Any]:
    """Crash the orders service right after the stock is reserved; repair; retry the order.

    Returns:
        the problems seen after the crash, after the repair step, the order's final status
        code when the client retries with the same key, and the problems at the end.
    """

    async def checkpoint(step: str) -> None:
        if step == "reserved" and not crashed:
            crashed.append(step)
            raise ServiceCrash("the process died after reserving stock")

    crashed: list[str] = []

    async def main() -> dict[str, Any]:
        async with Shop(seed=seed, checkpoint=checkpoint) as shop:
            user, product = await _setup(shop, stock=10)
            async with shop.client() as client:
                try:
                    await client.post(
                        "/orders", json=_body(user, product, 3), headers={"Idempotency-Key": "k"}
                    )
                    error = ""
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                shop.restart_orders()
                after_crash = await shop.problems({product: 10})
                await shop.repair()
                after_repair = await shop.problems({product: 10})
                retry = await client.post(
                    "/orders", json=_body(user, product, 3), headers={"Idempotency-Key": "k"}
                )
            return {
                "client_saw": error,
                "after_crash": after_crash,
                "after_repair": after_repair,
                "retry_status": retry.status_code,
                "at_the_end": await shop.problems({product: 10}),
            }

    return run(main, seed=seed)


def moving_parts() -> dict[str, dict[str, int]]:
    """Count what there is to run, configure and watch: the application vs a monolith."""
    processes = len(SERVICES) + 1  # + the registry
    return {
        "microservices": {
            "processes": processes,
            "ports": processes,
            "databases": len(SERVICES),
            "network calls per order": 3,
            "health endpoints to probe": 2 * len(SERVICES),
        },
        "monolith": {
            "processes": 1,
            "ports": 1,
            "databases": 1,
            "network calls per order": 1,
            "health endpoints to probe": 2,
        },
    }


# 6. "Your turn" checkers ---------------------------------------------------------------------
_REQUEST = httpx.Request("PUT", "http://catalog-1/reservations/order-1-1")
_CASES: list[tuple[str, object, str]] = [
    ("a 201 answer", httpx.Response(201, request=_REQUEST), "confirmed"),
    (
        "a 200 answer (the same reservation again)",
        httpx.Response(200, request=_REQUEST),
        "confirmed",
    ),
    ("a 409 answer (not enough stock)", httpx.Response(409, request=_REQUEST), "rejected"),
    ("a 404 answer (unknown product)", httpx.Response(404, request=_REQUEST), "rejected"),
    (
        "httpx.ReadTimeout (the answer never came)",
        httpx.ReadTimeout("lost", request=_REQUEST),
        "compensate",
    ),
    (
        "httpx.HTTPStatusError for a 503",
        httpx.HTTPStatusError(
            "503", request=_REQUEST, response=httpx.Response(503, request=_REQUEST)
        ),
        "compensate",
    ),
    (
        "httpx.ConnectError (connection refused)",
        httpx.ConnectError("refused", request=_REQUEST),
        "failed",
    ),
    ("CircuitOpenError (the breaker refused)", CircuitOpenError("catalog", 3.0), "failed"),
]


@checker("the reservation's outcome")
def check_classify(classify: Callable[[object], str]) -> str:
    """Check ``classify(result)``: what the saga does after the reserve step returned ``result``."""
    for label, result, expected in _CASES:
        got = classify(result)
        expect(
            got == expected,
            f"after {label} the saga should {_VERBS[expected]}: return {expected!r}, not {got!r}",
        )
    return "you know when a request may have done something"


_VERBS = {
    "confirmed": "confirm the order",
    "rejected": "reject the order (the catalog said no)",
    "compensate": "release the reservation (it may have been made)",
    "failed": "fail without compensating (the request never arrived)",
}


def _reservation(rid: str, status: str = "reserved") -> dict[str, Any]:
    return {"id": rid, "status": status, "items": [{"product_id": 1, "quantity": 1}]}


def _order(oid: int, status: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "id": oid,
        "status": status,
        "reservation_id": f"order-{oid}-{attempt}",
        "items": [{"product_id": 1, "quantity": 1}],
    }


_ORPHAN_CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], list[str]]] = [
    ("a consistent shop", [_order(1, "confirmed")], [_reservation("order-1-1")], []),
    (
        "a failed order still holding stock",
        [_order(1, "failed")],
        [_reservation("order-1-1")],
        ["order-1-1"],
    ),
    (
        "a released reservation of a failed attempt",
        [_order(1, "confirmed", 2)],
        [_reservation("order-1-1", "released"), _reservation("order-1-2")],
        [],
    ),
    (
        "an old attempt still reserved next to the confirmed one",
        [_order(1, "confirmed", 2)],
        [_reservation("order-1-1"), _reservation("order-1-2")],
        ["order-1-1"],
    ),
    ("a reservation no order knows", [], [_reservation("order-9-1")], ["order-9-1"]),
]


@checker("the orphan finder")
def check_orphans(
    orphans: Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[str]],
) -> str:
    """Check ``orphans(orders, reservations)``: ids of reservations held for no confirmed order."""
    for label, orders, reservations, expected in _ORPHAN_CASES:
        got = orphans(orders, reservations)
        expect(isinstance(got, list), f"return a list of reservation ids, got {type(got).__name__}")
        expect(
            sorted(got) == expected,
            f"with {label} the orphans are {expected}, your function said {sorted(got)}",
        )
        # The course's own checker agrees (a guard on the cases themselves).
        described = consistency_problems(orders, reservations, [])
        assert sum("an orphan" in p for p in described) == len(expected)
    return "it finds stock held for nothing, and only that"
