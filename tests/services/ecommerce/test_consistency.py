"""services.ecommerce.consistency: every way orders and stock can disagree is named."""

from __future__ import annotations

from typing import Any

from distlab.services.ecommerce.consistency import problems


def order(oid: int, status: str, attempt: int = 1, quantity: int = 2) -> dict[str, Any]:
    return {
        "id": oid,
        "status": status,
        "reservation_id": f"order-{oid}-{attempt}",
        "items": [{"product_id": 1, "quantity": quantity}],
    }


def held(rid: str, quantity: int = 2, status: str = "reserved") -> dict[str, Any]:
    return {"id": rid, "status": status, "items": [{"product_id": 1, "quantity": quantity}]}


def test_a_consistent_shop_has_no_problem() -> None:
    """Confirmed orders hold exactly their reservations; released ones hold nothing."""
    orders = [order(1, "confirmed"), order(2, "failed"), order(3, "rejected")]
    reservations = [held("order-1-1"), held("order-2-1", status="released")]
    assert problems(orders, reservations, [{"id": 1, "stock": 8}], {1: 10}) == []


def test_each_kind_of_inconsistency_is_named() -> None:
    """Unsettled orders, orders without stock, other items, orphans and lost units."""
    orders = [
        order(1, "confirmed"),
        order(2, "confirmed", quantity=3),
        order(3, "pending"),
        order(4, "compensating"),
    ]
    reservations = [held("order-2-1"), held("order-4-1"), held("order-9-1")]
    found = problems(orders, reservations, [{"id": 1, "stock": 5}], {1: 10})
    assert found == [
        "confirmed order 1 holds no stock (no reservation order-1-1)",
        "confirmed order 2 holds other items than it ordered",
        "order 3 is still pending (run the repair step)",
        "order 4 is still compensating (run the repair step)",
        "reservation order-4-1 holds stock for no confirmed order (an orphan)",
        "reservation order-9-1 holds stock for no confirmed order (an orphan)",
        "product 1: 5 in stock, but 10 minus 6 reserved is 4",
    ]


def test_the_stock_check_is_skipped_without_initial_stock() -> None:
    """No initial stock given: only the cross-service checks run."""
    assert problems([order(1, "confirmed")], [held("order-1-1")], [{"id": 1, "stock": 0}]) == []
