"""Statistical bounds shared by the tests that check seeded runs against theory.

Seeded runs are deterministic, so a bound can never flake; a 5-sigma bound is still
tight enough to catch a rate that is wrong by a few percentage points.
"""

from __future__ import annotations

import math

SIGMAS = 5.0


def binomial_bounds(n: int, p: float, sigmas: float = SIGMAS) -> tuple[float, float]:
    """Return the [low, high] range of a Binomial(n, p) count: mean +- ``sigmas`` sd."""
    spread = sigmas * math.sqrt(n * p * (1 - p))
    return n * p - spread, n * p + spread


def fraction_bounds(n: int, p: float, sigmas: float = SIGMAS) -> tuple[float, float]:
    """Return the [low, high] range of the fraction of successes in n Bernoulli(p) trials."""
    low, high = binomial_bounds(n, p, sigmas)
    return low / n, high / n
