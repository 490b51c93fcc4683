"""services.ecommerce.orders: idempotent orders, the saga, compensation, crashes and repair.

Every scenario runs the three services in-process (``Shop``) in virtual time; seeds are
in the assertion messages, so a failure replays exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

import distlab
from distlab.errors import ServiceCrash
from distlab.services.ecommerce.inprocess import Shop
from distlab.services.ecommerce.orders import Orders, reservation_id

T = TypeVar("T")
STOCK = 10


def run(scenario: Callable[[Shop, int, int], Awaitable[T]], seed: int = 0, **options: Any) -> T:
    """Run ``scenario(shop, user, product)`` on a shop with one user and one product of 10."""

    async def main() -> T:
        async with Shop(seed=seed, **options) as shop:
            user = await shop.add_user("Ada", "ada@example.org")
            product = await shop.add_product("Lamp", stock=STOCK)
            return await scenario(shop, user, product)

    return distlab.run(main, seed=seed)


def order(user: int, product: int, quantity: int = 1) -> dict[str, Any]:
    return {"user_id": user, "items": [{"product_id": product, "quantity": quantity}]}


async def post(shop: Shop, body: Any, key: str | None = "k1", **headers: str) -> httpx.Response:
    if key is not None:
        headers["Idempotency-Key"] = key
    async with shop.client() as client:
        return await client.post("/orders", json=body, headers=headers)


async def state(shop: Shop, product: int = 1) -> tuple[list[dict[str, Any]], int]:
    """Every order, and the product's stock left."""
    async with shop.admin("orders") as client:
        orders = (await client.get("/orders")).json()
    async with shop.admin("catalog-1") as client:
        left = (await client.get(f"/products/{product}")).json()["stock"]
    return orders, left


def test_an_order_is_placed_once_however_often_it_is_sent() -> None:
    """201 with the order; the same key again replays it (header set) and takes no stock."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        first = await post(shop, order(user, product, 2))
        again = await post(shop, order(user, product, 2))
        assert first.status_code == 201 and again.status_code == 201
        assert first.json()["status"] == "confirmed"
        assert first.json()["reservation_id"] == reservation_id(1, 1) == "order-1-1"
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        orders, left = await state(shop)
        assert len(orders) == 1 and left == STOCK - 2
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


def test_concurrent_duplicates_place_one_order() -> None:
    """Ten copies of one request sent at once: one order, one reservation."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        answers = await asyncio.gather(*(post(shop, order(user, product)) for _ in range(10)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        orders, left = await state(shop)
        assert len(orders) == 1 and left == STOCK - 1

    run(scenario)


def test_the_idempotency_key_is_required_and_bound_to_its_order() -> None:
    """No key: 400; a key used for another order: 422; an over-long key: 400. Nothing written."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        missing = await post(shop, order(user, product), key=None)
        assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["error"]
        blank = await post(shop, order(user, product), key="  ")
        assert blank.status_code == 400
        long = await post(shop, order(user, product), key="k" * 201)
        assert long.status_code == 400 and "200" in long.json()["error"]
        assert (await post(shop, order(user, product))).status_code == 201
        reused = await post(shop, order(user, product, 3))
        assert reused.status_code == 422
        assert (
            reused.json()["error"] == "Idempotency-Key 'k1' was already used for a different order"
        )
        orders, left = await state(shop)
        assert len(orders) == 1 and left == STOCK - 1

    run(scenario)


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"user_id": 1, "items": [{"product_id": 1, "quantity": 0}]}, 422, "body.items.0.quantity"),
        (
            {"user_id": 1, "items": [{"product_id": 1, "quantity": -1}]},
            422,
            "body.items.0.quantity",
        ),
        ({"user_id": 1, "items": []}, 422, "body.items"),
        ({"user_id": 1}, 422, "body.items"),
        ({"user_id": "1", "items": [{"product_id": 1, "quantity": 1}]}, 422, "body.user_id"),
        ({"items": [{"product_id": 1, "quantity": 1}]}, 422, "body.user_id"),
    ],
)
def test_invalid_orders_write_nothing_anywhere(body: Any, status: int, where: str) -> None:
    """A body that breaks the schema is refused before the saga: no order, no reservation."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        answer = await post(shop, body)
        assert answer.status_code == status
        assert answer.json()["problems"][0]["where"] == where
        orders, left = await state(shop)
        assert orders == [] and left == STOCK
        assert shop.transports["catalog"].requests == 0
        # The key was not used up: the corrected order goes through under it.
        assert (await post(shop, order(user, product))).status_code == 201

    run(scenario)


def test_malformed_json_and_oversized_orders_are_refused() -> None:
    """400 for a body that is not JSON, 413 for 64 KiB and more; nothing written."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        async with shop.client() as client:
            bad = await client.post(
                "/orders",
                content=b'{"user_id": 1,',
                headers={"Idempotency-Key": "k", "Content-Type": "application/json"},
            )
            huge = await client.post(
                "/orders",
                json={"user_id": 1, "items": [], "pad": "x" * 70_000},
                headers={"Idempotency-Key": "k"},
            )
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        assert huge.status_code == 413
        assert (await state(shop)) == ([], STOCK)

    run(scenario)


@pytest.mark.parametrize(
    ("user_id", "product_id", "quantity", "status", "error"),
    [
        (99, 1, 1, 404, "unknown user 99"),
        (1, 99, 1, 404, "unknown product 99"),
        (1, 1, STOCK + 1, 409, f"not enough stock for product 1: {STOCK} left, {STOCK + 1} asked"),
    ],
)
def test_a_clear_no_rejects_the_order_for_good(
    user_id: int, product_id: int, quantity: int, status: int, error: str
) -> None:
    """Unknown user or product, not enough stock: the 4xx is kept and replayed, no stock held."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        body = {"user_id": user_id, "items": [{"product_id": product_id, "quantity": quantity}]}
        first = await post(shop, body)
        again = await post(shop, body)
        assert first.status_code == status and first.json()["error"] == error
        assert first.json()["order"]["status"] == "rejected"
        assert again.status_code == status and again.headers["idempotent-replayed"] == "true"
        orders, left = await state(shop)
        assert left == STOCK and [o["status"] for o in orders] == ["rejected"]
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


def test_catalog_down_fails_the_order_and_a_retry_places_it_later() -> None:
    """Catalog stopped: 503, order failed, nothing held; once back, the same key places it."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        shop.servers["catalog-1"].stop()
        down = await post(shop, order(user, product))
        assert down.status_code == 503 and down.headers["retry-after"] == "1"
        assert down.json()["order"]["status"] == "failed"
        assert "retry with the same Idempotency-Key" in down.json()["error"]
        shop.servers["catalog-1"].start()
        back = await post(shop, order(user, product))
        assert back.status_code == 201 and back.json()["attempt"] == 2
        assert back.json()["reservation_id"] == "order-1-2"
        orders, left = await state(shop)
        assert len(orders) == 1 and left == STOCK - 1
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


def test_users_down_fails_fast_without_touching_the_catalog() -> None:
    """Users stopped: 503, and the catalog never hears of the order (nothing to compensate)."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        shop.servers["users"].stop()
        answer = await post(shop, order(user, product))
        assert answer.status_code == 503
        assert shop.transports["catalog"].requests == 0

    run(scenario)


def lose_answers_then_requests(shop: Shop) -> None:
    """The reservation arrives but its answer is lost; from the compensation on, nothing arrives."""
    catalog = shop.transports["catalog"]
    catalog.configure(response_loss=1.0)
    orders: Orders = shop.servers["orders"].app.state.orders

    async def checkpoint(step: str) -> None:
        if step == "compensating":
            catalog.configure(response_loss=0.0, request_loss=1.0)

    orders.checkpoint = checkpoint


def test_lost_answers_leave_stock_held_until_the_repair_step_releases_it() -> None:
    """Reserve answered into the void, release lost: stock held until the repair step."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        lose_answers_then_requests(shop)
        answer = await post(shop, order(user, product, 3))
        assert answer.status_code == 503
        orders, left = await state(shop)
        assert orders[0]["status"] == "compensating" and left == STOCK - 3
        problems = await shop.problems({product: STOCK})
        assert "order 1 is still compensating (run the repair step)" in problems
        assert "reservation order-1-1 holds stock for no confirmed order (an orphan)" in problems
        report = await shop.repair()
        assert report.still_unsettled == (1,)  # the catalog is still unreachable
        shop.transports["catalog"].configure(request_loss=0.0)
        report = await shop.repair()
        assert report.released == (1,) and report.still_unsettled == ()
        orders, left = await state(shop)
        assert orders[0]["status"] == "failed" and left == STOCK
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


def test_a_retry_settles_the_previous_attempt_before_starting_a_new_one() -> None:
    """A compensating order retried while the catalog is unreachable: 503, no extra stock."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        lose_answers_then_requests(shop)
        await post(shop, order(user, product, 3))
        again = await post(shop, order(user, product, 3))
        assert again.status_code == 503
        assert again.json()["order"]["attempt"] == 1
        assert (await state(shop))[1] == STOCK - 3
        shop.transports["catalog"].configure(request_loss=0.0)
        done = await post(shop, order(user, product, 3))
        assert done.status_code == 201 and done.json()["attempt"] == 2
        assert (await state(shop))[1] == STOCK - 3
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


STEPS = ["recorded", "user_checked", "reserved", "confirmed"]


def crash_at(step: str, times: int = 1) -> Callable[[str], Awaitable[None]]:
    """A checkpoint that crashes the orders service the first ``times`` times at ``step``."""
    left = [times]

    async def checkpoint(name: str) -> None:
        if name == step and left[0] > 0:
            left[0] -= 1
            raise ServiceCrash(f"killed at {step}")

    return checkpoint


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_at_any_step_then_repair_leaves_orders_and_stock_consistent(step: str) -> None:
    """The process dies mid-saga; after restart and repair nothing is held for nothing."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        with pytest.raises(httpx.RemoteProtocolError, match="crashed"):
            await post(shop, order(user, product, 2))
        assert not shop.servers["orders"].running
        shop.restart_orders()
        await shop.repair()
        orders, left = await state(shop)
        confirmed = step == "confirmed"  # it died after recording the order: it stands
        assert [o["status"] for o in orders] == ["confirmed" if confirmed else "failed"]
        assert left == STOCK - (2 if confirmed else 0)
        assert await shop.problems({product: STOCK}) == []

    run(scenario, checkpoint=crash_at(step))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("repair_first", [False, True])
def test_a_crash_at_any_step_then_a_retry_places_the_order_exactly_once(
    step: str, repair_first: bool
) -> None:
    """The client retries with the same key after the restart (before or after repair)."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        with pytest.raises(httpx.RemoteProtocolError):
            await post(shop, order(user, product, 2))
        shop.restart_orders()
        if repair_first:
            await shop.repair()
        answer = await post(shop, order(user, product, 2))
        assert answer.status_code == 201
        orders, left = await state(shop)
        assert [o["status"] for o in orders] == ["confirmed"] and left == STOCK - 2
        assert await shop.problems({product: STOCK}) == []

    run(scenario, checkpoint=crash_at(step))


def test_the_repair_step_leaves_an_order_in_progress_alone() -> None:
    """An order whose request is still running is skipped, not compensated under its feet."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        gate = asyncio.Event()
        orders: Orders = shop.servers["orders"].app.state.orders

        async def slow(name: str) -> None:
            if name == "reserved":
                await gate.wait()

        orders.checkpoint = slow
        placing = asyncio.ensure_future(post(shop, order(user, product)))
        await asyncio.sleep(0.5)
        report = await shop.repair()
        assert report.skipped == (1,) and report.released == ()
        gate.set()
        assert (await placing).status_code == 201
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


def test_the_breaker_fails_orders_fast_during_a_catalog_outage() -> None:
    """After 5 failed catalog calls the catalog is not called for 5 s; then a trial goes through."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        catalog = shop.transports["catalog"]
        catalog.outage(0, 3, mode="error")
        for i in range(20):
            assert (await post(shop, order(user, product), key=f"k{i}")).status_code == 503
        # reserve, release, reserve, release, reserve: 5 failures in a row open the breaker;
        # the 17 orders after that fail at once without a request to the catalog.
        assert catalog.requests == 5
        await asyncio.sleep(6)  # the breaker's recovery_timeout is 5 s: one trial goes through
        assert (await post(shop, order(user, product), key="after")).status_code == 201
        await shop.repair()  # the two releases that failed during the outage
        assert await shop.problems({product: STOCK}) == []

    run(scenario)


FAULTS = {"request_loss": 0.05, "response_loss": 0.05, "duplicate": 0.05, "error_rate": 0.05}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_orders_under_every_fault_are_placed_exactly_once(seed: int) -> None:
    """60 orders, 5 % of each fault on every hop, clients retrying: each placed once."""

    async def scenario(shop: Shop, user: int, product: int) -> None:
        async with shop.client(timeout=3.0) as client:

            async def place(i: int) -> int:
                for attempt in range(30):
                    try:
                        answer = await client.post(
                            "/orders",
                            json=order(user, product, 1 + i % 2),
                            headers={"Idempotency-Key": f"o{i}"},
                        )
                    except httpx.TransportError:
                        answer = None
                    if answer is not None and answer.status_code < 500:
                        return answer.status_code
                    await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
                return 0

            codes = await asyncio.gather(*(place(i) for i in range(60)))
        await shop.repair()
        orders, left = await state(shop, product)
        assert codes == [201] * 60, f"seed {seed}: {codes}"
        assert [o["status"] for o in orders] == ["confirmed"] * 60, f"seed {seed}"
        assert left == 1000 - sum(1 + i % 2 for i in range(60)), f"seed {seed}"
        assert await shop.problems({product: 1000}) == [], f"seed {seed}"
        counts = shop.transports["catalog"].counts()
        assert min(counts[k] for k in ("request_lost", "response_lost", "duplicated", "error")) > 0

    async def big_stock(shop: Shop, user: int, product: int) -> None:
        async with shop.admin("catalog-1") as client:
            made = await client.post(
                "/products", json={"name": "Bulk", "price_cents": 1, "stock": 1000}
            )
        await scenario(shop, user, made.json()["id"])

    run(big_stock, seed=seed, faults={"users": FAULTS, "catalog": FAULTS, "orders": FAULTS})
