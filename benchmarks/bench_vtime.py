"""Virtual-loop timer events per second: distlab's loop beside looptime, same workload.

Workload: 1000 independent tickers, each rescheduling itself with ``call_later`` at a
random delay until N timer callbacks have fired in total (every fire is a separate
instant, so every event costs one pass of the loop). The floor is 200k events/s.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import distlab

FLOOR = 200_000


def _workload(loop: asyncio.AbstractEventLoop, total: int, done: asyncio.Future[None]) -> None:
    rng = random.Random(1)
    fired = 0

    def tick() -> None:
        nonlocal fired
        fired += 1
        if fired >= total:
            if not done.done():
                done.set_result(None)
            return
        loop.call_later(rng.random(), tick)

    for _ in range(1000):
        loop.call_later(rng.random(), tick)


async def _main(total: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    _workload(loop, total, done)
    await done
    return loop.time()


def _rate(run: Callable[[int], object], total: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(total)
        best = min(best, time.perf_counter() - started)
    return total / best


def _distlab(total: int) -> object:
    return distlab.run(lambda: _main(total))


def _looptime(total: int) -> object:
    import looptime

    loop = looptime.new_event_loop(start=0.0, noop_cycles=0)
    try:
        return loop.run_until_complete(_main(total))
    finally:
        loop.close()


def main() -> dict[str, Any]:
    """Measure and print timer events/s for distlab and looptime, and their ratio."""
    ours = _rate(_distlab, 200_000)
    theirs = _rate(_looptime, 10_000, repeats=1)  # looptime is ~50x slower: fewer events
    verdict = "meets" if ours >= FLOOR else "BELOW"
    print(f"virtual loop: distlab  {ours:>10,.0f} timer events/s  ({verdict} the {FLOOR:,} floor)")
    print(f"virtual loop: looptime {theirs:>10,.0f} timer events/s  (baseline, same workload)")
    print(f"virtual loop: ratio    {ours / theirs:>10.1f}x looptime")
    return {"distlab_events_per_s": ours, "looptime_events_per_s": theirs, "floor": FLOOR}


if __name__ == "__main__":
    main()
