"""Check that orders and stock agree across the two services' databases.

No transaction spans the orders and catalog databases, so nothing *makes* them agree;
the saga and its repair step are supposed to. :func:`problems` says whether they did:

* every confirmed order holds exactly its reservation (``order-<id>-<attempt>``), with
  its items, in state ``reserved``;
* every reservation still holding stock belongs to a confirmed order (else the stock is
  held for nothing: an *orphan*);
* with the initial stock given: for every product, initial stock = stock left + units
  held by reservations (no unit lost or created).

Orders that are still ``pending`` or ``compensating`` are reported as unsettled: run the
repair step, then check again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

__all__ = ["check", "problems"]


def problems(
    orders: Iterable[Mapping[str, Any]],
    reservations: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    initial_stock: Mapping[int, int] | None = None,
) -> list[str]:
    """Return every inconsistency between the orders and the catalog, in words.

    Args:
        orders: the orders service's ``GET /orders``.
        reservations: the catalog's ``GET /reservations``.
        products: the catalog's ``GET /products``.
        initial_stock: units of each product before any order, or None to skip that check.

    Returns:
        One sentence per problem; an empty list when everything agrees.
    """
    found: list[str] = []
    held = {r["id"]: r for r in reservations if r["status"] == "reserved"}
    owned: set[str] = set()
    for order in orders:
        status = order["status"]
        rid = order["reservation_id"]
        if status in ("pending", "compensating"):
            found.append(f"order {order['id']} is still {status} (run the repair step)")
        if status != "confirmed":
            continue
        owned.add(rid)
        reservation = held.get(rid)
        if reservation is None:
            found.append(f"confirmed order {order['id']} holds no stock (no reservation {rid})")
        elif _lines(reservation["items"]) != _lines(order["items"]):
            found.append(f"confirmed order {order['id']} holds other items than it ordered")
    for rid in sorted(set(held) - owned):
        found.append(f"reservation {rid} holds stock for no confirmed order (an orphan)")
    if initial_stock is not None:
        units: Counter[int] = Counter()
        for reservation in held.values():
            for line in reservation["items"]:
                units[line["product_id"]] += line["quantity"]
        for product in products:
            pid = product["id"]
            if pid not in initial_stock:
                continue
            expected = initial_stock[pid] - units[pid]
            if product["stock"] != expected:
                found.append(
                    f"product {pid}: {product['stock']} in stock, but {initial_stock[pid]} minus "
                    f"{units[pid]} reserved is {expected}"
                )
    return found


def _lines(items: Iterable[Mapping[str, Any]]) -> list[tuple[int, int]]:
    return sorted((int(i["product_id"]), int(i["quantity"])) for i in items)


async def check(
    client: httpx.AsyncClient,
    orders_url: str,
    catalog_url: str,
    initial_stock: Mapping[int, int] | None = None,
) -> list[str]:
    """Read both services over HTTP and return :func:`problems` (empty: consistent).

    Raises:
        httpx.HTTPStatusError: when a service does not answer 200.
    """
    answers = []
    for url in (
        f"{orders_url}/orders",
        f"{catalog_url}/reservations",
        f"{catalog_url}/products?limit=10000",
    ):
        response = await client.get(url)
        response.raise_for_status()
        answers.append(response.json())
    return problems(answers[0], answers[1], answers[2], initial_stock)
