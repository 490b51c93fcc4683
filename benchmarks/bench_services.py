"""Benchmark order placement over loopback with the resilience layer on and off.

Run it with ``.venv/bin/python -m benchmarks services``. Two copies of the e-commerce
application run side by side as real processes on 127.0.0.1:

- **on**: the orders service finds users and catalog through the discovery registry
  (a cached list, refreshed every 2 s) and calls them through a circuit breaker, a
  bulkhead and a timeout per dependency (the defaults);
- **off**: fixed addresses, no breaker, no bulkhead, no timeout (``DISTLAB_RESILIENCE=off``).

It prints the latency of one order at a time (p50 and p99 over ``SEQUENTIAL`` orders
each, the two copies interleaved so that both see the same machine) and the orders per
second that ``CONCURRENT`` clients get (``SLICES`` slices of ``SECONDS`` seconds each,
alternating between the copies). Goal (issue 12): the
layer costs at most 10 % at p50. Printed, never asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from distlab.services.ecommerce.launcher import Services

SEQUENTIAL = 300
CONCURRENT = 16
SECONDS = 1.5
SLICES = 4


def _order(i: int) -> dict[str, Any]:
    return {"user_id": 1, "items": [{"product_id": 1 + i % 3, "quantity": 1}]}


def _stock_up(services: Services) -> None:
    """One user and three products with plenty of stock."""
    with httpx.Client(timeout=10.0) as client:
        client.post(
            services.urls["users"] + "/users", json={"name": "Bench", "email": "b@example.org"}
        ).raise_for_status()
        for i in range(3):
            client.post(
                services.urls["catalog"] + "/products",
                json={"name": f"p{i}", "price_cents": 100, "stock": 10**8},
            ).raise_for_status()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sequential(urls: dict[str, str]) -> dict[str, list[float]]:
    """Place SEQUENTIAL orders on each copy, alternating; return seconds per order."""
    times: dict[str, list[float]] = {name: [] for name in urls}
    with httpx.Client(timeout=10.0) as client:
        for i in range(SEQUENTIAL + 20):
            for name, url in urls.items():
                started = time.perf_counter()
                answer = client.post(
                    url + "/orders", json=_order(i), headers={"Idempotency-Key": f"seq-{i}"}
                )
                elapsed = time.perf_counter() - started
                assert answer.status_code == 201, answer.text
                if i >= 20:  # the first orders warm up connections and caches
                    times[name].append(elapsed)
    return times


async def throughput(url: str, tag: str) -> float:
    """Return orders per second placed by CONCURRENT clients in SECONDS seconds."""
    done = 0
    deadline = time.perf_counter() + SECONDS
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:

        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                answer = await client.post(
                    "/orders", json=_order(i), headers={"Idempotency-Key": f"{tag}-{w}-{i}"}
                )
                if answer.status_code == 201:
                    done += 1

        await asyncio.gather(*(worker(w) for w in range(CONCURRENT)))
    return done / SECONDS


def main() -> dict[str, Any]:
    """Print and return p50, p99 and orders/s with the layer on and off."""
    quiet = {"DISTLAB_LOG_LEVEL": "WARNING"}
    with (
        Services(ports="auto", env=quiet, demo=False) as on,
        Services(
            ports="auto", env={**quiet, "DISTLAB_RESILIENCE": "off"}, registry=False, demo=False
        ) as off,
    ):
        _stock_up(on)
        _stock_up(off)
        urls = {"on": on.urls["orders"], "off": off.urls["orders"]}
        times = sequential(urls)
        # Alternate short slices so that both copies see the same (noisy) machine.
        rates = dict.fromkeys(urls, 0.0)
        for part in range(SLICES):
            for name, url in urls.items():
                rates[name] += asyncio.run(throughput(url, f"tp-{name}-{part}")) / SLICES
    figures: dict[str, Any] = {}
    for name in ("off", "on"):
        p50 = statistics.median(times[name]) * 1000
        p99 = _percentile(times[name], 0.99) * 1000
        figures[name] = {"p50_ms": p50, "p99_ms": p99, "orders_per_s": rates[name]}
        print(f"layer {name:<3}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  {rates[name]:6.1f} orders/s")
    ratio = figures["on"]["p50_ms"] / figures["off"]["p50_ms"]
    figures["p50_ratio"] = ratio
    print(f"the layer costs {100 * (ratio - 1):+.1f} % at p50 (goal: at most +10 %)")
    return figures


if __name__ == "__main__":
    main()
