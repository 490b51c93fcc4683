"""The orders service: idempotent order placement, a saga across users and catalog.

Endpoints (the OpenAPI page is at ``/docs``)::

    POST /orders          header Idempotency-Key: <key>
                          {"user_id": 1, "items": [{"product_id": 2, "quantity": 1}]}
                          -> 201 confirmed; 404 unknown user or product; 409 not enough
                             stock; 503 a dependency failed (nothing is held: retry with
                             the same key); 422 the key was used for another order
    GET  /orders/{id}     -> 200 the order, 404 when unknown
    GET  /orders          -> 200 every order
    POST /repair          -> 200 what the repair step did (see below)

Placing an order is a saga, each step a local transaction in one service::

    1. record the order as ``pending`` under its idempotency key        (orders)
    2. check the user exists                                             (users)
    3. reserve the stock: PUT /reservations/order-<id>-<attempt>         (catalog)
    4. record the order as ``confirmed``                                 (orders)

If step 2 or 3 gets no usable answer (lost, timed out, 5xx, breaker open), the saga
*compensates*: it releases the reservation (DELETE, idempotent; a tombstone stops a
late duplicate) and records the order ``failed``; if the release gets no answer either,
the order stays ``compensating``. A clear "no" (unknown user or product, not enough
stock) records it ``rejected``, for good.

The idempotency key makes retries safe: a confirmed or rejected order is answered again
as it was (header ``Idempotent-Replayed: true``); a failed one starts a new attempt, with
a new reservation id, so a released reservation is never reused. Requests with the same
key are served one at a time.

After a crash (the process dies between two steps) or a lost release, an order can be
left ``pending`` or ``compensating`` while catalog holds its stock. :meth:`Orders.repair`
(``POST /repair``, and every ``DISTLAB_REPAIR_INTERVAL`` seconds in a real server)
releases the reservations of every such order that no request is working on and marks
them ``failed``: stock and orders end consistent (``consistency.check`` proves it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from distlab.patterns.bulkhead import Bulkhead
from distlab.patterns.discovery import DiscoveryClient
from distlab.services.ecommerce.catalog import MAX_LINES, Line, check_lines
from distlab.services.ecommerce.common import (
    Database,
    Settings,
    error,
    loop_clock,
    open_database,
    service_app,
)
from distlab.services.ecommerce.registration import registration_lifespan
from distlab.services.ecommerce.remote import (
    Remote,
    Resolver,
    is_dependency_failure,
    never_sent,
    static_resolver,
)

__all__ = [
    "Checkpoint",
    "NewOrder",
    "Orders",
    "RepairReport",
    "create_app",
    "loop_clock",
    "reservation_id",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id          INTEGER PRIMARY KEY,
    idem_key    TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    items       TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'confirmed', 'rejected', 'failed', 'compensating')),
    attempt     INTEGER NOT NULL,
    code        INTEGER,
    reason      TEXT
);
"""

FINAL = ("confirmed", "rejected")
UNSETTLED = ("pending", "compensating")
Checkpoint = Callable[[str], Awaitable[None]]
"""``await checkpoint(step)`` runs between saga steps; tests make it crash the service."""

_log = logging.getLogger("distlab.services.orders")
_KEY_HEADER = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="unique per order: a retry with the same key never places a second order",
    ),
]


def reservation_id(order_id: int, attempt: int) -> str:
    """Return the catalog reservation id of one attempt of one order."""
    return f"order-{order_id}-{attempt}"


class NewOrder(BaseModel):
    """The body of ``POST /orders``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: int = Field(ge=1, le=2**62)
    items: list[Line] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[Line]) -> list[Line]:
        return check_lines(items)


@dataclass(frozen=True)
class RepairReport:
    """What one run of the repair step did.

    Attributes:
        released: orders whose reservation was released and which are now ``failed``.
        still_unsettled: orders it could not settle (catalog gave no answer); try again.
        skipped: orders a request was working on, left alone.
    """

    released: tuple[int, ...]
    still_unsettled: tuple[int, ...]
    skipped: tuple[int, ...]


def _order(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "items": json.loads(row["items"]),
        "status": row["status"],
        "attempt": row["attempt"],
        "reservation_id": reservation_id(row["id"], row["attempt"]),
        "reason": row["reason"],
    }


class _Rejected(Exception):
    """A dependency said no (a 4xx answer): the order is rejected for good."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(reason)


def _reason(response: httpx.Response, fallback: str) -> str:
    try:
        body = response.json()
    except ValueError:
        return fallback
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return fallback


class Orders:
    """The saga and the repair step, over the orders database and the two dependencies.

    Args:
        db: the orders database.
        users: the users dependency.
        catalog: the catalog dependency.
        checkpoint: awaited between saga steps with the step's name (``recorded``,
            ``user_checked``, ``reserved``, ``confirmed``, ``compensating``); a test
            raises in it to crash the service there. None: no checkpoints.
    """

    def __init__(
        self,
        db: Database,
        *,
        users: Remote,
        catalog: Remote,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.db = db
        self.users = users
        self.catalog = catalog
        self.checkpoint = checkpoint
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        """Serve the requests of one idempotency key one at a time (in this process)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]

    async def _step(self, name: str) -> None:
        if self.checkpoint is not None:
            await self.checkpoint(name)

    def _row(self, order_id: int) -> sqlite3.Row:
        return self.db.query("SELECT * FROM orders WHERE id = ?", (order_id,))[0]

    def _set(
        self, order_id: int, status: str, *, code: int | None = None, reason: str = ""
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE orders SET status = ?, code = ?, reason = ? WHERE id = ?",
                (status, code, reason or None, order_id),
            )

    async def place(self, key: str, order: NewOrder) -> tuple[int, dict[str, Any], bool]:
        """Place ``order`` under idempotency ``key``; return (status code, body, replayed).

        The body is the order (201) or ``{"error": ..., "order": ...}``.
        """
        items = [line.model_dump() for line in order.items]
        canonical = json.dumps({"user_id": order.user_id, "items": items}, sort_keys=True)
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        async with self._key_lock(key):
            found = self.db.query("SELECT * FROM orders WHERE idem_key = ?", (key,))
            if found and found[0]["fingerprint"] != fingerprint:
                return (
                    422,
                    {"error": f"Idempotency-Key {key!r} was already used for a different order"},
                    False,
                )
            if found and found[0]["status"] in FINAL:
                return (*self._answer(found[0]), True)  # a replay: the same answer again
            if not found:
                with self.db.transaction() as conn:
                    cursor = conn.execute(
                        "INSERT INTO orders (idem_key, fingerprint, user_id, items, status,"
                        " attempt) VALUES (?, ?, ?, ?, 'pending', 1)",
                        (key, fingerprint, order.user_id, json.dumps(items)),
                    )
                order_id = int(cursor.lastrowid or 0)
            else:
                order_id = found[0]["id"]
                if not await self._settle_previous(found[0]):
                    return (*self._answer(self._row(order_id)), False)
            await self._step("recorded")
            await self._run(order_id, order.user_id, items)
            return (*self._answer(self._row(order_id)), False)

    async def _settle_previous(self, row: sqlite3.Row) -> bool:
        """Before a retry starts a new attempt, make sure the last one holds no stock."""
        if row["status"] in UNSETTLED:
            released = await self._release(row["id"], row["attempt"])
            if not released:
                self._set(row["id"], "compensating", reason="catalog unavailable: retry later")
                return False
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE orders SET status = 'pending', attempt = attempt + 1, code = NULL,"
                " reason = NULL WHERE id = ?",
                (row["id"],),
            )
        return True

    async def _run(self, order_id: int, user_id: int, items: list[dict[str, int]]) -> None:
        attempt = self._row(order_id)["attempt"]
        reservation = reservation_id(order_id, attempt)
        reserving = False
        try:
            await self._check_user(user_id)
            await self._step("user_checked")
            reserving = True
            await self._reserve(reservation, items)
            await self._step("reserved")
        except _Rejected as no:
            self._set(order_id, "rejected", code=no.code, reason=no.reason)
            return
        except Exception as exc:
            if not is_dependency_failure(exc):
                raise
            _log.info("order %d attempt %d: compensating after %r", order_id, attempt, exc)
            self._set(order_id, "compensating", reason=f"a dependency failed: {exc}")
            await self._step("compensating")
            # Nothing to give back when the reservation request never left (refused
            # connection, breaker open): only a request that may have arrived needs undoing.
            if not reserving or never_sent(exc) or await self._release(order_id, attempt):
                self._set(
                    order_id,
                    "failed",
                    reason=f"a dependency failed ({type(exc).__name__}); nothing was kept: "
                    "retry with the same Idempotency-Key",
                )
            return
        self._set(order_id, "confirmed", code=201)
        await self._step("confirmed")

    async def _check_user(self, user_id: int) -> None:
        response = await self.users.call("GET", f"/users/{user_id}")
        if response.status_code != 200:
            raise _Rejected(response.status_code, _reason(response, f"unknown user {user_id}"))

    async def _reserve(self, reservation: str, items: list[dict[str, int]]) -> None:
        response = await self.catalog.call(
            "PUT", f"/reservations/{reservation}", json={"items": items}
        )
        if response.status_code not in (200, 201):
            raise _Rejected(response.status_code, _reason(response, "the catalog refused"))

    async def _release(self, order_id: int, attempt: int) -> bool:
        """Release one attempt's reservation; return False when no answer came."""
        try:
            response = await self.catalog.call(
                "DELETE", f"/reservations/{reservation_id(order_id, attempt)}"
            )
        except Exception as exc:
            if not is_dependency_failure(exc):
                raise
            return False
        return response.status_code == 200

    def _answer(self, row: sqlite3.Row) -> tuple[int, dict[str, Any]]:
        """The status code and body that answer an order in the state of ``row``."""
        order = _order(row)
        if row["status"] == "confirmed":
            return 201, order
        if row["status"] == "rejected":
            return int(row["code"]), {"error": row["reason"], "order": order}
        return 503, {"error": row["reason"] or "the order is unsettled", "order": order}

    async def repair(self) -> RepairReport:
        """Settle every pending or compensating order that no request is working on."""
        released: list[int] = []
        unsettled: list[int] = []
        skipped: list[int] = []
        rows = self.db.query(
            "SELECT * FROM orders WHERE status IN ('pending', 'compensating') ORDER BY id"
        )
        for row in rows:
            key = row["idem_key"]
            if key in self._locks:
                skipped.append(row["id"])
                continue
            async with self._key_lock(key):
                current = self._row(row["id"])
                if current["status"] not in UNSETTLED:
                    continue
                if await self._release(current["id"], current["attempt"]):
                    self._set(
                        current["id"],
                        "failed",
                        reason="repaired: the saga did not finish, its stock was released; "
                        "retry with the same Idempotency-Key",
                    )
                    released.append(current["id"])
                else:
                    self._set(current["id"], "compensating", reason="catalog unavailable")
                    unsettled.append(current["id"])
        return RepairReport(tuple(released), tuple(unsettled), tuple(skipped))


def _faulty(transport: httpx.AsyncBaseTransport, spec: str) -> httpx.AsyncBaseTransport:
    """Wrap ``transport`` in a FaultyTransport described by ``DISTLAB_FAULTS``.

    ``spec`` looks like ``"seed=3,request_loss=0.05,response_loss=0.05,duplicate=0.05,
    error_rate=0.05"`` (also ``latency``, in seconds).
    """
    from distlab.sim.faults import FaultyTransport

    options: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        if name not in {
            "seed",
            "request_loss",
            "response_loss",
            "duplicate",
            "error_rate",
            "latency",
        }:
            raise ValueError(f"DISTLAB_FAULTS: unknown setting {name!r} in {spec!r}")
        try:
            options[name] = float(value)
        except ValueError:
            raise ValueError(f"DISTLAB_FAULTS: {name} must be a number, got {value!r}") from None
    seed = int(options.pop("seed", 0))
    return FaultyTransport(transport, seed=seed, **options)  # type: ignore[arg-type]


def _registry_reached(registry: httpx.AsyncClient) -> Callable[[], Awaitable[str | None]]:
    """Return a readiness check: ready once the registry has answered (once is enough).

    Afterwards the discovery client serves its last good lists if the registry goes
    away, so a registry outage does not take the orders service out of rotation.
    """
    reached = False

    async def ready() -> str | None:
        nonlocal reached
        if reached:
            return None
        try:
            (await registry.get("/healthz")).raise_for_status()
        except httpx.HTTPError as exc:
            return f"the registry {registry.base_url} has not been reached ({exc!r})"
        reached = True
        return None

    return ready


def _seconds(variable: str, default: float) -> float:
    """Read a positive number (seconds, or a count) from the environment variable ``variable``."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"{variable} must be a positive number, got {raw!r}")
    return value


def create_app(
    *,
    db: Database | str | None = None,
    client: httpx.AsyncClient | None = None,
    resolve: Resolver | None = None,
    resilience: bool | None = None,
    timeout: float | None = None,
    failure_threshold: int | None = None,
    recovery_timeout: float | None = None,
    bulkheads: Mapping[str, Bulkhead] | None = None,
    checkpoint: Checkpoint | None = None,
    register: bool = True,
    ready: Callable[[], Awaitable[str | None]] | None = None,
) -> FastAPI:
    """Return the orders service as a FastAPI app (a factory for ``uvicorn --factory``).

    Args:
        db: its database: a :class:`Database` (an in-process restart passes the old
            app's), an SQLite path, or None to read ``DISTLAB_DB_PATH``.
        client: the ``httpx.AsyncClient`` for calls to users and catalog; None: a real
            client, whose transport injects faults when ``DISTLAB_FAULTS`` is set.
        resolve: finds users and catalog; None: through the registry at
            ``DISTLAB_REGISTRY_URL`` (a ``DiscoveryClient`` that refetches a list at most
            every ``DISTLAB_DISCOVERY_REFRESH`` seconds, default 2), or without a registry
            at ``DISTLAB_USERS_URL`` and ``DISTLAB_CATALOG_URL`` (default ports on 127.0.0.1).
        resilience: False calls the dependencies with no breaker, bulkhead or timeout
            (the benchmark's baseline; never in production); None reads
            ``DISTLAB_RESILIENCE`` (``off`` turns it off; default on).
        timeout: seconds to wait for a dependency's answer; None reads
            ``DISTLAB_DEPENDENCY_TIMEOUT`` (default 1.0).
        failure_threshold: consecutive failures that open a dependency's breaker; None
            reads ``DISTLAB_BREAKER_FAILURES`` (default 5).
        recovery_timeout: seconds a breaker stays open; None reads
            ``DISTLAB_BREAKER_RECOVERY`` (default 5.0).
        bulkheads: a bulkhead per dependency name (``"users"``, ``"catalog"``); None: one
            each, ``DISTLAB_BULKHEAD`` calls at once (default 32) and as many waiting at
            most ``timeout`` seconds.
        checkpoint: see :class:`Orders`.
        register: register with the discovery registry when ``DISTLAB_REGISTRY_URL`` is set.
        ready: the readiness check; None: ready once the registry has been reached (at
            once without a registry).
    """
    settings = Settings.from_env("orders")
    if resilience is None:
        resilience = os.environ.get("DISTLAB_RESILIENCE", "on").strip().lower() != "off"
    if timeout is None:
        timeout = _seconds("DISTLAB_DEPENDENCY_TIMEOUT", 1.0)
    if recovery_timeout is None:
        recovery_timeout = _seconds("DISTLAB_BREAKER_RECOVERY", 5.0)
    if failure_threshold is None:
        failure_threshold = round(_seconds("DISTLAB_BREAKER_FAILURES", 5))
    database = open_database(db, settings, SCHEMA)
    owns_client = client is None
    if client is None:
        # Keep connections to the dependencies open between orders (no reconnect per call).
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(limits=limits)
        faults = os.environ.get("DISTLAB_FAULTS", "").strip()
        if faults:
            transport = _faulty(transport, faults)
        client = httpx.AsyncClient(transport=transport)
    registry: httpx.AsyncClient | None = None
    if resolve is None and settings.registry_url is not None:
        registry = httpx.AsyncClient(base_url=settings.registry_url, timeout=timeout)
        refresh = _seconds("DISTLAB_DISCOVERY_REFRESH", 2.0)
        resolve = DiscoveryClient(registry, refresh=refresh, clock=loop_clock).resolve
    elif resolve is None:
        resolve = static_resolver(
            {
                "users": os.environ.get("DISTLAB_USERS_URL", "http://127.0.0.1:8001"),
                "catalog": os.environ.get("DISTLAB_CATALOG_URL", "http://127.0.0.1:8002"),
            }
        )
    if bulkheads is None:
        size = round(_seconds("DISTLAB_BULKHEAD", 32))
        bulkheads = {
            name: Bulkhead(size, max_queue=size, max_wait=timeout, name=name)
            for name in ("users", "catalog")
        }
    if ready is None and registry is not None:
        ready = _registry_reached(registry)

    def remote(name: str) -> Remote:
        if not resilience:
            return Remote(name, client=client, resolve=resolve, timeout=None)
        return Remote.guarded(
            name,
            client=client,
            resolve=resolve,
            clock=loop_clock,
            timeout=timeout,
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            bulkhead=bulkheads.get(name),
        )

    orders = Orders(
        database, users=remote("users"), catalog=remote("catalog"), checkpoint=checkpoint
    )
    registration = registration_lifespan(settings) if register else None
    interval = _seconds("DISTLAB_REPAIR_INTERVAL", 5.0)

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def repair_forever() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await orders.repair()
                except Exception:
                    _log.exception("the repair step failed")

        repairing = asyncio.create_task(repair_forever())
        try:
            if registration is not None:
                async with contextlib.asynccontextmanager(registration)(app):
                    yield
            else:
                yield
        finally:
            repairing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await repairing
            if owns_client:
                await client.aclose()
            if registry is not None:
                await registry.aclose()

    app = service_app(
        "orders",
        database,
        title="distlab orders",
        description="Places orders: checks the user, reserves stock, records the order (a saga).",
        lifespan=lifespan,
        ready=ready,
    )
    app.state.orders = orders

    @app.post("/orders", status_code=201, tags=["orders"], summary="Place an order (idempotent)")
    async def place_order(order: NewOrder, idempotency_key: _KEY_HEADER = None) -> JSONResponse:
        if idempotency_key is None or not idempotency_key.strip():
            return error(
                400, "the Idempotency-Key header is required (any unique string per order)"
            )
        if len(idempotency_key) > 200:
            return error(400, "the Idempotency-Key header is longer than 200 characters")
        status, body, replayed = await orders.place(idempotency_key, order)
        response = JSONResponse(body, status_code=status)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        if status == 503:
            response.headers["Retry-After"] = "1"
        return response

    @app.get("/orders/{order_id}", tags=["orders"], summary="Read one order")
    async def get_order(order_id: Annotated[int, Path(ge=1, le=2**62)]) -> JSONResponse:
        rows = database.query("SELECT * FROM orders WHERE id = ?", (order_id,))
        if not rows:
            return error(404, f"unknown order {order_id}")
        return JSONResponse(_order(rows[0]))

    @app.get("/orders", tags=["orders"], summary="List orders")
    async def list_orders() -> list[dict[str, Any]]:
        return [_order(r) for r in database.query("SELECT * FROM orders ORDER BY id")]

    @app.post("/repair", tags=["orders"], summary="Settle orders a crash or a lost message left")
    async def repair() -> dict[str, list[int]]:
        report = await orders.repair()
        return {
            "released": list(report.released),
            "still_unsettled": list(report.still_unsettled),
            "skipped": list(report.skipped),
        }

    return app
