"""The catalog service: products and their stock (its own SQLite database).

Endpoints (the OpenAPI page is at ``/docs``)::

    POST   /products                {"name": "Lamp", "price_cents": 2500, "stock": 10} -> 201
    GET    /products/{id}           -> 200 the product with its stock, 404 when unknown
    GET    /products                -> 200 every product
    PUT    /reservations/{id}       {"items": [{"product_id": 1, "quantity": 2}]}
                                    -> 201 reserved (stock taken), 200 the same again,
                                       404 unknown product, 409 not enough stock or released
    DELETE /reservations/{id}       -> 200 released (stock given back); idempotent
    GET    /reservations/{id}       -> 200 the reservation, 404 when unknown
    GET    /reservations            -> 200 every reservation

A reservation is the saga's step "reserve stock": all of its lines or none, in one
transaction. ``PUT`` with the reservation's id makes it idempotent: a retried or
duplicated request finds the reservation already there and takes no more stock.
``DELETE`` (the compensation) is idempotent too, and it leaves a *tombstone*: a
reserve request that arrives after its release (a slow duplicate) is refused with 409,
so a released reservation can never come back to life.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from distlab.services.ecommerce.common import (
    Database,
    Settings,
    error,
    open_database,
    service_app,
)
from distlab.services.ecommerce.registration import registration_lifespan

__all__ = ["Line", "NewProduct", "Reservation", "create_app"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    stock       INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS reservations (
    id     TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('reserved', 'released')),
    items  TEXT NOT NULL
);
"""

MAX_LINES = 50
MAX_QUANTITY = 1000
ProductId = Annotated[int, Path(ge=1, le=2**62, description="the product's id")]
ReservationId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="chosen by the caller (the orders service uses order-<id>-<attempt>)",
    ),
]


class NewProduct(BaseModel):
    """The body of ``POST /products``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0, le=10**9, description="the price in cents")
    stock: int = Field(ge=0, le=10**9, description="items in stock")


class Line(BaseModel):
    """One line of an order or a reservation: a product and how many of it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: int = Field(ge=1, le=2**62)
    quantity: int = Field(gt=0, le=MAX_QUANTITY)


def check_lines(items: list[Line]) -> list[Line]:
    """Refuse a product that appears on two lines (the caller should add the quantities)."""
    seen: set[int] = set()
    for line in items:
        if line.product_id in seen:
            raise ValueError(f"product {line.product_id} appears on more than one line")
        seen.add(line.product_id)
    return items


class Reservation(BaseModel):
    """The body of ``PUT /reservations/{id}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[Line] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[Line]) -> list[Line]:
        return check_lines(items)


def _product(row: sqlite3.Row) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "name", "price_cents", "stock")}


def _reservation(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "status": row["status"], "items": json.loads(row["items"])}


def create_app(*, db: Database | str | None = None, register: bool = True) -> FastAPI:
    """Return the catalog service as a FastAPI app (a factory for ``uvicorn --factory``).

    Args:
        db: its database: a :class:`Database` (instances of the catalog may share one),
            an SQLite path, or None to read ``DISTLAB_DB_PATH`` (``:memory:`` when unset).
        register: register with the discovery registry at startup when
            ``DISTLAB_REGISTRY_URL`` is set (real servers only).
    """
    settings = Settings.from_env("catalog")
    database = open_database(db, settings, SCHEMA)
    app = service_app(
        "catalog",
        database,
        title="distlab catalog",
        description="Products and their stock; stock reservations for orders.",
        lifespan=registration_lifespan(settings) if register else None,
    )

    @app.post("/products", status_code=201, tags=["products"], summary="Add a product")
    async def create_product(product: NewProduct) -> JSONResponse:
        with database.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO products (name, price_cents, stock) VALUES (?, ?, ?)",
                (product.name, product.price_cents, product.stock),
            )
        return JSONResponse({"id": cursor.lastrowid, **product.model_dump()}, status_code=201)

    @app.get("/products/{product_id}", tags=["products"], summary="Read one product")
    async def get_product(product_id: ProductId) -> JSONResponse:
        rows = database.query("SELECT * FROM products WHERE id = ?", (product_id,))
        if not rows:
            return error(404, f"unknown product {product_id}", product_ids=[product_id])
        return JSONResponse(_product(rows[0]))

    @app.get("/products", tags=["products"], summary="List products")
    async def list_products(
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        rows = database.query("SELECT * FROM products ORDER BY id LIMIT ?", (limit,))
        return [_product(r) for r in rows]

    @app.put("/reservations/{reservation_id}", tags=["reservations"], summary="Reserve stock")
    async def reserve(reservation_id: ReservationId, body: Reservation) -> JSONResponse:
        items = [line.model_dump() for line in body.items]
        with database.transaction() as conn:
            found = conn.execute(
                "SELECT * FROM reservations WHERE id = ?", (reservation_id,)
            ).fetchone()
            if found is not None:
                if found["status"] == "released":
                    return error(
                        409,
                        f"reservation {reservation_id} was released; reserve under a new id",
                        code="released",
                    )
                if json.loads(found["items"]) != items:
                    return error(
                        409,
                        f"reservation {reservation_id} exists with other items",
                        code="conflict",
                    )
                return JSONResponse(_reservation(found), status_code=200)
            wanted = {line["product_id"]: line["quantity"] for line in items}
            marks = ",".join("?" * len(wanted))
            stock = {
                row["id"]: row["stock"]
                for row in conn.execute(
                    f"SELECT id, stock FROM products WHERE id IN ({marks})", tuple(wanted)
                )
            }
            unknown = sorted(set(wanted) - set(stock))
            if unknown:
                names = ", ".join(map(str, unknown))
                return error(404, f"unknown product {names}", product_ids=unknown)
            short = [pid for pid, qty in wanted.items() if stock[pid] < qty]
            if short:
                pid = short[0]
                return error(
                    409,
                    f"not enough stock for product {pid}: {stock[pid]} left, {wanted[pid]} asked",
                    code="insufficient_stock",
                    product_ids=short,
                )
            for pid, qty in wanted.items():
                conn.execute("UPDATE products SET stock = stock - ? WHERE id = ?", (qty, pid))
            conn.execute(
                "INSERT INTO reservations (id, status, items) VALUES (?, 'reserved', ?)",
                (reservation_id, json.dumps(items)),
            )
        return JSONResponse(
            {"id": reservation_id, "status": "reserved", "items": items}, status_code=201
        )

    @app.delete(
        "/reservations/{reservation_id}", tags=["reservations"], summary="Release a reservation"
    )
    async def release(reservation_id: ReservationId) -> JSONResponse:
        with database.transaction() as conn:
            found = conn.execute(
                "SELECT * FROM reservations WHERE id = ?", (reservation_id,)
            ).fetchone()
            if found is None:
                # A tombstone: a reserve request still on its way must not take stock later.
                conn.execute(
                    "INSERT INTO reservations (id, status, items) VALUES (?, 'released', '[]')",
                    (reservation_id,),
                )
                return JSONResponse({"id": reservation_id, "status": "released", "restocked": []})
            if found["status"] == "released":
                return JSONResponse({"id": reservation_id, "status": "released", "restocked": []})
            items = json.loads(found["items"])
            for line in items:
                conn.execute(
                    "UPDATE products SET stock = stock + ? WHERE id = ?",
                    (line["quantity"], line["product_id"]),
                )
            conn.execute(
                "UPDATE reservations SET status = 'released' WHERE id = ?", (reservation_id,)
            )
        return JSONResponse({"id": reservation_id, "status": "released", "restocked": items})

    @app.get("/reservations/{reservation_id}", tags=["reservations"], summary="Read one")
    async def get_reservation(reservation_id: ReservationId) -> JSONResponse:
        rows = database.query("SELECT * FROM reservations WHERE id = ?", (reservation_id,))
        if not rows:
            return error(404, f"unknown reservation {reservation_id}")
        return JSONResponse(_reservation(rows[0]))

    @app.get("/reservations", tags=["reservations"], summary="List reservations")
    async def list_reservations() -> list[dict[str, Any]]:
        return [_reservation(r) for r in database.query("SELECT * FROM reservations ORDER BY id")]

    return app
