"""services.ecommerce.catalog: products, and reservations that are all-or-nothing and idempotent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import distlab
from distlab.services.ecommerce import catalog
from distlab.services.ecommerce.common import Database


def exchange(*requests: tuple[str, str, Any], products: int = 2) -> list[httpx.Response]:
    """Send requests to a fresh catalog holding ``products`` products of 5 units each."""
    app = catalog.create_app(db=Database(), register=False)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://catalog"
        ) as client:
            for i in range(products):
                made = await client.post(
                    "/products", json={"name": f"p{i}", "price_cents": 100, "stock": 5}
                )
                assert made.status_code == 201
            return [await client.request(m, p, json=j) for m, p, j in requests]

    return distlab.run(main)


def lines(*pairs: tuple[int, int]) -> dict[str, Any]:
    return {"items": [{"product_id": p, "quantity": q} for p, q in pairs]}


def stock(answer: httpx.Response) -> list[int]:
    return [p["stock"] for p in answer.json()]


def test_a_reservation_takes_stock_and_a_release_gives_it_back() -> None:
    """PUT reserves (201), DELETE releases (200, restocked), GET shows each state."""
    put, after_put, delete, after_delete, read = exchange(
        ("PUT", "/reservations/r1", lines((1, 2), (2, 5))),
        ("GET", "/products", None),
        ("DELETE", "/reservations/r1", None),
        ("GET", "/products", None),
        ("GET", "/reservations/r1", None),
    )
    assert put.status_code == 201
    assert put.json() == {"id": "r1", "status": "reserved", **lines((1, 2), (2, 5))}
    assert stock(after_put) == [3, 0]
    assert delete.json()["restocked"] == lines((1, 2), (2, 5))["items"]
    assert stock(after_delete) == [5, 5]
    assert read.json()["status"] == "released"


def test_the_same_reservation_twice_takes_stock_once() -> None:
    """A retried or duplicated PUT answers 200 with the reservation and takes nothing more."""
    first, again, products = exchange(
        ("PUT", "/reservations/r1", lines((1, 2))),
        ("PUT", "/reservations/r1", lines((1, 2))),
        ("GET", "/products", None),
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert stock(products) == [3, 5]


def test_a_reservation_id_reused_for_other_items_is_a_409() -> None:
    """Same id, different lines: refused, nothing taken."""
    _, other, products = exchange(
        ("PUT", "/reservations/r1", lines((1, 2))),
        ("PUT", "/reservations/r1", lines((1, 3))),
        ("GET", "/products", None),
    )
    assert other.status_code == 409 and other.json()["code"] == "conflict"
    assert stock(products) == [3, 5]


def test_a_release_is_idempotent_and_leaves_a_tombstone() -> None:
    """Releasing twice gives stock back once; a release before its reserve blocks the reserve."""
    _, _, twice, products, early, late, after = exchange(
        ("PUT", "/reservations/r1", lines((1, 2))),
        ("DELETE", "/reservations/r1", None),
        ("DELETE", "/reservations/r1", None),
        ("GET", "/products", None),
        ("DELETE", "/reservations/r2", None),
        ("PUT", "/reservations/r2", lines((2, 1))),
        ("GET", "/products", None),
    )
    assert twice.status_code == 200 and twice.json()["restocked"] == []
    assert stock(products) == [5, 5]
    assert early.status_code == 200
    assert late.status_code == 409 and late.json()["code"] == "released"
    assert stock(after) == [5, 5]


def test_not_enough_stock_reserves_nothing_at_all() -> None:
    """One short line refuses the whole reservation (409 naming the product); no line is taken."""
    short, products, missing = exchange(
        ("PUT", "/reservations/r1", lines((1, 2), (2, 6))),
        ("GET", "/products", None),
        ("GET", "/reservations/r1", None),
    )
    assert short.status_code == 409
    assert short.json()["error"] == "not enough stock for product 2: 5 left, 6 asked"
    assert short.json()["product_ids"] == [2]
    assert stock(products) == [5, 5]
    assert missing.status_code == 404


def test_an_unknown_product_reserves_nothing_and_is_named() -> None:
    """404 listing the unknown ids; the known line is not taken either."""
    unknown, products = exchange(
        ("PUT", "/reservations/r1", lines((1, 1), (7, 1), (9, 1))),
        ("GET", "/products", None),
    )
    assert unknown.status_code == 404
    assert unknown.json()["product_ids"] == [7, 9]
    assert unknown.json()["error"] == "unknown product 7, 9"
    assert stock(products) == [5, 5]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (lines((1, 0)), "body.items.0.quantity"),
        (lines((1, -2)), "body.items.0.quantity"),
        (lines((1, 1001)), "body.items.0.quantity"),
        (lines((1, 1), (1, 2)), "body.items"),
        ({"items": []}, "body.items"),
        ({"items": [{"product_id": 1}]}, "body.items.0.quantity"),
        ({"items": [{"product_id": 1, "quantity": 1.5}]}, "body.items.0.quantity"),
    ],
)
def test_invalid_reservations_are_422_and_take_nothing(body: Any, where: str) -> None:
    """Zero, negative, huge, fractional or missing quantities, repeated products, no lines."""
    refused, products = exchange(("PUT", "/reservations/r1", body), ("GET", "/products", None))
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["where"] == where
    assert stock(products) == [5, 5]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "price_cents": -1, "stock": 1},
        {"name": "x", "price_cents": 1, "stock": -1},
        {"name": "", "price_cents": 1, "stock": 1},
    ],
)
def test_invalid_products_are_refused(body: Any) -> None:
    """Negative prices or stock and empty names: 422, no product added."""
    refused, products = exchange(("POST", "/products", body), ("GET", "/products", None))
    assert refused.status_code == 422
    assert len(products.json()) == 2


def test_a_bad_reservation_id_is_refused() -> None:
    """Reservation ids are 1-200 characters of letters, digits and ._:-"""
    (answer,) = exchange(("PUT", "/reservations/bad%20id", lines((1, 1))))
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["where"] == "path.reservation_id"
