"""Benchmark the reference bulkhead against asyncio.Semaphore, uncontended.

Run it with ``.venv/bin/python -m benchmarks bulkhead``. It prints, measured side by
side in one run on one plain asyncio loop (interleaved, best of REPEATS):

- the cost of one uncontended acquire + release, ``async with bulkhead: pass`` against
  ``async with asyncio.Semaphore(n): pass``, and the cost ratio bulkhead / semaphore
  (goal from issue 10: at most 0.7, i.e. the bulkhead, with its FIFO queue, bounded
  wait and metrics, costs at most 70 % of what the bare semaphore costs);
- the same through ``await bulkhead.execute(task)`` against
  ``async with semaphore: await task()``.

The ratio is printed twice: with the loop's own cost included (what timeit-style
figures usually show) and with it subtracted from both sides (stricter).
Goals are printed, not asserted: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from distlab.patterns.bulkhead import Bulkhead

CALLS = 100_000  # acquire+release pairs per timing
REPEATS = 7  # timings per variant; the minimum is kept
GOAL = 0.7


async def _task() -> None:
    """The protected work: nothing (returns at once)."""


async def _loop_only(_: Any) -> None:
    for _ in range(CALLS):
        pass


async def _with(guard: Any) -> None:
    for _ in range(CALLS):
        async with guard:
            pass


async def _semaphore_task(semaphore: asyncio.Semaphore) -> None:
    task = _task
    for _ in range(CALLS):
        async with semaphore:
            await task()


async def _bulkhead_execute(bulkhead: Bulkhead) -> None:
    task = _task
    execute = bulkhead.execute
    for _ in range(CALLS):
        await execute(task)


async def _measure() -> dict[str, float]:
    variants: dict[str, tuple[Callable[[Any], Awaitable[None]], Callable[[], Any]]] = {
        "loop": (_loop_only, lambda: None),
        "semaphore": (_with, lambda: asyncio.Semaphore(10)),
        "bulkhead": (_with, lambda: Bulkhead(10, max_queue=100, max_wait=1.0)),
        "semaphore_task": (_semaphore_task, lambda: asyncio.Semaphore(10)),
        "bulkhead_execute": (_bulkhead_execute, lambda: Bulkhead(10, max_queue=100, max_wait=1.0)),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(REPEATS):  # interleaved, so a busy neighbour slows every variant alike
        for label, (body, make) in variants.items():
            guard = make()
            began = time.perf_counter()
            await body(guard)
            best[label] = min(best[label], time.perf_counter() - began)
    return {label: elapsed / CALLS for label, elapsed in best.items()}


def main() -> dict[str, float]:
    """Run the benchmark, print a side-by-side report and return the figures.

    Returns:
        ``ns_<variant>`` per acquire+release; ``cost_ratio_with`` and
        ``cost_ratio_execute`` (bulkhead / semaphore, loop included) and their
        ``net_`` versions (loop subtracted from both sides).
    """
    t = asyncio.run(_measure())
    loop = t["loop"]
    results = {f"ns_{k}": v * 1e9 for k, v in t.items()}
    pairs = {"with": ("bulkhead", "semaphore"), "execute": ("bulkhead_execute", "semaphore_task")}
    for name, (ours, theirs) in pairs.items():
        results[f"cost_ratio_{name}"] = t[ours] / t[theirs]
        results[f"net_cost_ratio_{name}"] = (t[ours] - loop) / (t[theirs] - loop)

    print(f"Uncontended acquire + release ({CALLS:,} per timing, best of {REPEATS}, interleaved)")
    print(f"  {'variant':<48} {'ns/op':>8}")
    rows = [
        ("async with asyncio.Semaphore(10): pass", "semaphore"),
        ("async with Bulkhead(10, max_queue=100, ...): pass", "bulkhead"),
        ("async with asyncio.Semaphore(10): await task()", "semaphore_task"),
        ("await Bulkhead(10, ...).execute(task)", "bulkhead_execute"),
    ]
    for text, label in rows:
        print(f"  {text:<48} {t[label] * 1e9:>8.1f}")
    print(f"  (the timing loop itself costs {loop * 1e9:.1f} ns per iteration)")
    for name in pairs:
        ratio, net = results[f"cost_ratio_{name}"], results[f"net_cost_ratio_{name}"]
        print(
            f"  cost ratio bulkhead / semaphore ({name}): {ratio:.2f}x, loop subtracted "
            f"{net:.2f}x (goal <= {GOAL}x: the bulkhead costs at most 70 % of the semaphore)"
        )
    return results


if __name__ == "__main__":
    main()
