"""Benchmark the linearizability checker: lesson-sized histories, and what memoization buys.

Run it with ``.venv/bin/python benchmarks/bench_history.py``. It prints, measured side
by side in one run:

- the time to check the histories lesson 03 records (4 clients, 120 operations: the
  quorum store with write-back, linearizable; the eventual store, not), and the time of
  ``violations`` on the eventual one (goal: each check well under 50 ms, so the lesson's
  20-seed table costs well under a second);
- the time per operation on longer linearizable histories of an atomic register
  (5 clients, 500 to 2,000 operations): it should grow about linearly;
- a history built to be hard (k concurrent writes, then a read of a value nobody
  wrote), checked with the cache and without it (plain Wing and Gong): the ratio shows
  what Lowe's memoization, as in Knossos and Porcupine, is worth.

Figures are printed, never asserted: the machine is shared.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from distlab.lessons.data_consistency import eventual, quorum, register_history
from distlab.sim.history import History, Register, _check_one, check, violations

REPEATS = 5


def _best(func: Callable[[], Any]) -> float:
    """The fastest of REPEATS runs of ``func``, in seconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def _atomic_history(clients: int, per_client: int, seed: int) -> History:
    """A linearizable register history: each operation takes effect inside its interval."""
    rng = random.Random(seed)
    points = []
    for client in range(clients):
        t = 0.0
        for _ in range(per_client):
            call = t + rng.uniform(0, 1)
            ret = call + rng.uniform(0.1, 3)
            points.append((rng.uniform(call, ret), f"c{client}", call, ret))
            t = ret
    h = History()
    value = 0
    for _point, client, call, ret in sorted(points):
        if rng.random() < 0.4:
            value += 1
            h.add(client, "write", value, call=call, ret=ret)
        else:
            h.add(client, "read", None, value or None, call=call, ret=ret)
    return h


def _hard_history(writers: int) -> History:
    """``writers`` concurrent writes, then a read of a value nobody wrote: no order works."""
    h = History()
    for i in range(writers):
        h.add(f"w{i}", "write", i, call=0, ret=10)
    h.add("r", "read", None, -1, call=11, ret=12)
    return h


def main() -> dict[str, float]:
    figures: dict[str, float] = {}
    abd = register_history(quorum(2, 2, write_back=True), seed=0).history
    ev = register_history(eventual(), seed=4).history
    figures["lesson_abd_ms"] = 1000 * _best(lambda: check(abd))
    figures["lesson_eventual_ms"] = 1000 * _best(lambda: check(ev))
    figures["lesson_violations_ms"] = 1000 * _best(lambda: violations(ev))
    print(
        f"lesson 03, {len(abd)} operations, quorum + write-back: {figures['lesson_abd_ms']:.2f} ms"
    )
    print(
        f"lesson 03, {len(ev)} operations, eventual (rejected): "
        f" {figures['lesson_eventual_ms']:.2f} ms"
    )
    print(f"violations() on the eventual history:         {figures['lesson_violations_ms']:.2f} ms")
    print("   goal: each check well under 50 ms")
    for per_client in (100, 200, 400):
        h = _atomic_history(5, per_client, seed=per_client)
        seconds = _best(lambda h=h: check(h))
        n = len(h)
        figures[f"atomic_{n}_us_per_op"] = 1e6 * seconds / n
        print(
            f"atomic register, {n:5} operations: {1000 * seconds:7.2f} ms, "
            f"{1e6 * seconds / n:6.1f} us/op"
        )
    for writers in (6, 8):
        h = _hard_history(writers)
        ops = list(h.operations)
        with_cache = _best(lambda ops=ops: _check_one(ops, Register(), 10**9))
        without = _best(lambda ops=ops: _check_one(ops, Register(), 10**9, memo=False))
        figures[f"hard_{writers}_memo_speedup"] = without / with_cache
        print(
            f"{writers} concurrent writes, impossible read: {1000 * with_cache:8.2f} ms with the "
            f"cache, {1000 * without:9.2f} ms without: {without / with_cache:6.1f}x"
        )
    return figures


if __name__ == "__main__":
    main()
