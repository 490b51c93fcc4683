"""Benchmark the network simulator: simulated messages per second of real time.

A ring of 16 nodes passes 1,000 tokens around for 300 hops each over links with 1 %
loss, 1 % duplication and a uniform 1-10 ms delay: about 300,000 messages, each one
sent, possibly lost or duplicated, queued and delivered to a handler. The floor is
200,000 messages per second with tracing off; it is printed, not asserted, because the
figure depends on the machine (run ``python benchmarks/bench_netsim.py``).

Because a shared machine makes absolute rates jumpy, the same ring also runs on a bare
reference loop (a heap, one ``random.Random``, no features), interleaved with the real
runs, and the ratio of the two is printed: it moves much less with the machine's load.
"""

from __future__ import annotations

import heapq
import random
import time
from typing import Any

from distlab.sim.netsim import Context, Delay, Network

FLOOR = 200_000  # simulated messages per second, tracing off
RING = 16
TOKENS = 1_000
HOPS = 300


def _build(*, trace: bool, seed: int = 1) -> Network:
    net = Network(
        seed=seed, loss=0.01, duplicate=0.01, delay=Delay.uniform(0.001, 0.010), trace=trace
    )
    names = [f"n{i}" for i in range(RING)]
    for i, name in enumerate(names):
        successor = names[(i + 1) % RING]

        def relay(ctx: Context, src: str, hops: Any, successor: str = successor) -> None:
            if hops < HOPS:
                ctx.send(successor, hops + 1)

        net.add_node(name, relay)
    for t in range(TOKENS):
        net.send(names[t % RING], names[(t + 1) % RING], 1)
    return net


def _reference(seed: int = 1) -> int:
    """Run the same ring on a bare heap loop with the same draws; return messages sent."""
    rng = random.Random(seed)
    heap: list[tuple[float, int, int, int]] = []
    seq = 0
    sent = 0

    def send(now: float, dst: int, hops: int) -> None:
        nonlocal seq, sent
        sent += 1
        if rng.random() < 0.01:
            return
        for _ in range(2 if rng.random() < 0.01 else 1):
            seq += 1
            heapq.heappush(heap, (now + 0.001 + 0.009 * rng.random(), seq, dst, hops))

    for t in range(TOKENS):
        send(0.0, (t + 1) % RING, 1)
    while heap:
        now, _, node, hops = heapq.heappop(heap)
        if hops < HOPS:
            send(now, (node + 1) % RING, hops + 1)
    return sent


def _timed(run: Any) -> tuple[int, float]:
    started = time.perf_counter()
    sent = run()
    return sent, time.perf_counter() - started


def measure(*, repeats: int = 3) -> dict[str, float]:
    """Time netsim (tracing off and on) and the reference loop, interleaved.

    Returns:
        Messages per run and the best messages/s of each, plus netsim/reference.
    """
    best = {"off": 0.0, "on": 0.0, "reference": 0.0}
    sent = 0
    for _ in range(repeats):
        for key in best:
            if key == "reference":
                sent_here, elapsed = _timed(_reference)
            else:
                net = _build(trace=key == "on")
                sent_here, elapsed = _timed(lambda net=net: net.run(max_events=None).sent)
                sent = sent_here
            best[key] = max(best[key], sent_here / elapsed)
    return {
        "messages": float(sent),
        "messages_per_s": best["off"],
        "messages_per_s_traced": best["on"],
        "reference_messages_per_s": best["reference"],
        "ratio_to_reference": best["off"] / best["reference"],
    }


def main() -> dict[str, float]:
    """Print and return simulated messages per second with tracing off and on."""
    figures = measure()
    figures["floor_messages_per_s"] = float(FLOOR)
    figures["ratio_to_floor"] = figures["messages_per_s"] / FLOOR
    verdict = "meets" if figures["messages_per_s"] >= FLOOR else "BELOW"
    print(
        f"netsim: {figures['messages']:,.0f} messages per run\n"
        f"  tracing off : {figures['messages_per_s']:>9,.0f} msg/s "
        f"({verdict} the {FLOOR:,} floor, x{figures['ratio_to_floor']:.2f})\n"
        f"  tracing on  : {figures['messages_per_s_traced']:>9,.0f} msg/s\n"
        f"  bare loop   : {figures['reference_messages_per_s']:>9,.0f} msg/s "
        f"(netsim runs at x{figures['ratio_to_reference']:.2f} of it)"
    )
    return figures


if __name__ == "__main__":
    main()
