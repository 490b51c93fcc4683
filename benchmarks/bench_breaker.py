"""Benchmark the reference circuit breaker against a bare call, pybreaker and the chapter's.

Run it with ``.venv/bin/python benchmarks/bench_breaker.py``. It prints, measured side
by side in one run:

- the time per successful call through each breaker, as a multiple of a bare call
  (goal for ``distlab.patterns.breaker``: at most 6x a bare call and 0.15x pybreaker);
- the wall time of 20 threads each making a 0.1 s call through a closed breaker
  (goal: at most 0.25 s; a breaker that holds its lock during the call takes 2 s).

Goals are printed next to the figures, not asserted: timings depend on the machine.
"""

from __future__ import annotations

import threading
import time
import timeit
from collections.abc import Callable
from typing import Any

import pybreaker

from distlab.patterns.breaker import CircuitBreaker
from distlab.patterns.chapter import ChapterCircuitBreaker

CALLS = 200_000  # calls per timing
REPEATS = 7  # timings per variant; the minimum is kept
THREADS = 20
SLEEP = 0.1  # seconds each threaded call sleeps


def _noop() -> None:
    """Do nothing: the function every breaker protects in the overhead benchmark."""


def _breakers() -> dict[str, Any]:
    """Return a fresh closed breaker of each kind."""
    return {
        "distlab": CircuitBreaker(5, 30.0),
        "pybreaker": pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30),
        "chapter": ChapterCircuitBreaker(5, 30.0),
    }


def per_call_seconds() -> dict[str, float]:
    """Time a successful call: bare and through each breaker, interleaved, best of REPEATS.

    Returns:
        Seconds per iteration of a timeit loop running "bare" (``f()``), "distlab",
        "pybreaker" and "chapter" (``breaker.call(f)``), and "loop" (``pass``: the
        cost of the loop itself, included in the others).
    """
    env: dict[str, Any] = {f"{label}_b": b for label, b in _breakers().items()}
    env["f"] = _noop
    statements = {
        "loop": "pass",
        "bare": "f()",
        "distlab": "distlab_b.call(f)",
        "pybreaker": "pybreaker_b.call(f)",
        "chapter": "chapter_b.call(f)",
    }
    best = dict.fromkeys(statements, float("inf"))
    for _ in range(REPEATS):  # interleaved, so a busy neighbour slows every variant alike
        for label, statement in statements.items():
            elapsed = timeit.timeit(statement, number=CALLS, globals=env)
            best[label] = min(best[label], elapsed)
    return {label: elapsed / CALLS for label, elapsed in best.items()}


def concurrent_seconds(call: Callable[..., Any]) -> float:
    """Return the wall time of THREADS threads each doing ``call(time.sleep, SLEEP)``."""
    start = threading.Barrier(THREADS + 1)

    def worker() -> None:
        start.wait()
        call(time.sleep, SLEEP)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def main() -> dict[str, float]:
    """Run both benchmarks, print a side-by-side report and return the figures.

    Returns:
        ``ns_<variant>`` per-call times; ``x_<variant>_vs_bare`` ratios as timeit
        reports them (loop included, the usual convention) and ``net_x_<variant>_vs_bare``
        with the loop's own cost subtracted from both sides (stricter);
        ``x_distlab_vs_pybreaker``, ``x_distlab_vs_chapter``; ``threads_<variant>_s``
        wall times.
    """
    t = per_call_seconds()
    loop = t["loop"]
    results: dict[str, float] = {f"ns_{k}": v * 1e9 for k, v in t.items()}
    for label in ("distlab", "pybreaker", "chapter"):
        results[f"x_{label}_vs_bare"] = t[label] / t["bare"]
        results[f"net_x_{label}_vs_bare"] = (t[label] - loop) / (t["bare"] - loop)
    results["x_distlab_vs_pybreaker"] = t["distlab"] / t["pybreaker"]
    results["x_distlab_vs_chapter"] = t["distlab"] / t["chapter"]
    for label, breaker in _breakers().items():
        results[f"threads_{label}_s"] = concurrent_seconds(breaker.call)

    print(f"Successful call ({CALLS:,} calls, best of {REPEATS}, interleaved)")
    print(f"  {'variant':<10} {'ns/call':>9} {'x bare':>8} {'x bare, loop subtracted':>24}")
    for label in ("bare", "distlab", "pybreaker", "chapter"):
        ratio = t[label] / t["bare"]
        net = (t[label] - loop) / (t["bare"] - loop)
        print(f"  {label:<10} {t[label] * 1e9:>9.1f} {ratio:>8.2f} {net:>24.2f}")
    print(f"  (the timing loop itself costs {loop * 1e9:.1f} ns per iteration)")
    print(
        f"  distlab: {results['x_distlab_vs_bare']:.2f}x a bare call (goal <= 6x), "
        f"{results['x_distlab_vs_pybreaker']:.3f}x pybreaker (goal <= 0.15x), "
        f"{results['x_distlab_vs_chapter']:.2f}x the chapter's unsafe breaker"
    )
    print(f"{THREADS} threads each making a {SLEEP} s call through a closed breaker")
    for label in ("distlab", "pybreaker", "chapter"):
        print(f"  {label:<10} {results[f'threads_{label}_s']:.3f} s")
    print("  goal for distlab: <= 0.25 s (the lock must not be held during the call)")
    return results


if __name__ == "__main__":
    main()
