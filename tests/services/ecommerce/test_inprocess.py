"""services.ecommerce.inprocess: servers that stop, crash and restart; the Shop's settings."""

from __future__ import annotations

import pytest

import distlab
from distlab.services.ecommerce.inprocess import Shop


def test_the_shop_validates_its_settings_by_name() -> None:
    """Unknown services in faults, fewer than one catalog instance."""
    with pytest.raises(ValueError, match="faults"):
        Shop(faults={"payments": {}})
    with pytest.raises(ValueError, match="catalog_instances"):
        Shop(catalog_instances=0)
    with pytest.raises(ValueError, match="request_loss"):
        Shop(faults={"catalog": {"request_loss": 2}})


def test_catalog_instances_share_one_database_and_take_turns() -> None:
    """Three instances: requests go round-robin, stock is shared, one order each."""

    async def main() -> None:
        async with Shop(catalog_instances=3) as shop:
            user = await shop.add_user("Ada", "ada@example.org")
            lamp = await shop.add_product("Lamp", stock=5)
            async with shop.client() as client:
                for i in range(3):
                    answer = await client.post(
                        "/orders",
                        json={"user_id": user, "items": [{"product_id": lamp, "quantity": 1}]},
                        headers={"Idempotency-Key": f"k{i}", "X-Request-ID": f"r{i}"},
                    )
                    assert answer.status_code == 201
            served = [
                s.service for i in range(3) for s in shop.spans(f"r{i}") if s.service == "catalog"
            ]
            assert len(served) == 3
            hosts = {id(shop.servers[f"catalog-{i}"].app) for i in (1, 2, 3)}
            spanned = {
                id(shop.servers[f"catalog-{i}"].app)
                for i in (1, 2, 3)
                if any(
                    s.request_id.startswith("r")
                    for s in shop.servers[f"catalog-{i}"].app.state.spans
                )
            }
            assert spanned == hosts
            assert await shop.problems({lamp: 5}) == []
            async with shop.admin("catalog-3") as admin:
                assert (await admin.get(f"/products/{lamp}")).json()["stock"] == 2

    distlab.run(main)


def test_spans_of_one_request_nest_in_time() -> None:
    """With 10 ms per hop the orders span encloses the users and catalog spans, in order."""

    async def main() -> None:
        hop = {"latency": 0.01}
        async with Shop(faults={"users": hop, "catalog": hop, "orders": hop}) as shop:
            user = await shop.add_user("Ada", "ada@example.org")
            lamp = await shop.add_product("Lamp")
            async with shop.client() as client:
                await client.post(
                    "/orders",
                    json={"user_id": user, "items": [{"product_id": lamp, "quantity": 1}]},
                    headers={"Idempotency-Key": "k", "X-Request-ID": "trace-me"},
                )
            spans = shop.spans("trace-me")
            assert [s.service for s in spans] == ["orders", "users", "catalog"]
            outer, users, catalog = spans
            assert outer.start == pytest.approx(0.01)
            assert users.start == pytest.approx(0.02) and catalog.start == pytest.approx(0.03)
            assert outer.end >= catalog.end
            with pytest.raises(ValueError, match="servers"):
                shop.admin("nowhere")

    distlab.run(main)
