"""Tests for distlab.patterns.retry: backoff strategies, the retry budget, retry_call."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import statistics
from typing import Any

import pytest

import distlab
from distlab.patterns.retry import (
    Backoff,
    RetryBudget,
    aretry_call,
    constant,
    decorrelated_jitter,
    equal_jitter,
    exponential,
    full_jitter,
    retry_call,
)


def first(backoff: Backoff, n: int, seed: int = 0) -> list[float]:
    """The first ``n`` sleeps of one retry sequence."""
    return list(itertools.islice(backoff.delays(random.Random(seed)), n))


# Backoff strategies ----------------------------------------------------------------------
def test_constant_and_exponential_are_exact() -> None:
    """constant repeats its delay; exponential doubles from base and stops at cap."""
    assert first(constant(0.5), 3) == [0.5, 0.5, 0.5]
    assert first(constant(), 2) == [0.0, 0.0]
    assert first(exponential(0.1, 1.0), 6) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_the_formulas_are_those_of_the_aws_simulator() -> None:
    """min(cap, base * 2**n) is the ceiling of every jittered strategy, n from 0."""
    base, cap = 0.005, 2.0  # the simulator's own settings: 5 ms base, 2 s cap
    ceilings = [min(cap, base * 2**n) for n in range(12)]
    assert first(exponential(base, cap), 12) == pytest.approx(ceilings)
    for backoff, lows in [
        (full_jitter(base, cap), [0.0] * 12),
        (equal_jitter(base, cap), [c / 2 for c in ceilings]),
    ]:
        for seed in range(50):
            sleeps = first(backoff, 12, seed)
            assert all(lo <= s <= c for s, lo, c in zip(sleeps, lows, ceilings, strict=True))


@pytest.mark.parametrize(
    ("backoff", "mean_share"),
    [(full_jitter(1.0, 100.0), 0.5), (equal_jitter(1.0, 100.0), 0.75)],
    ids=["full", "equal"],
)
def test_jittered_sleeps_are_uniform_below_the_ceiling(backoff: Backoff, mean_share: float) -> None:
    """The n-th sleep averages half (full) or three quarters (equal) of its ceiling, 5 sigma."""
    n = 20_000
    rng = random.Random(1)
    for retry in range(4):
        ceiling = 2.0**retry
        width = ceiling if backoff.kind == "full_jitter" else ceiling / 2
        draws = [list(itertools.islice(backoff.delays(rng), retry + 1))[-1] for _ in range(n)]
        sd = width / math.sqrt(12)
        assert abs(statistics.fmean(draws) - mean_share * ceiling) <= 5 * sd / math.sqrt(n)


def test_decorrelated_jitter_stays_between_base_and_three_times_the_last_sleep() -> None:
    """Each sleep is in [base, min(cap, 3 * previous)], starting from previous = base."""
    base, cap = 0.1, 5.0
    for seed in range(100):
        sleeps = first(decorrelated_jitter(base, cap), 30, seed)
        previous = base
        for s in sleeps:
            assert base <= s <= min(cap, 3 * previous) + 1e-12
            previous = s
        assert max(sleeps) <= cap


def test_a_seeded_generator_replays_the_jitter() -> None:
    """The same rng seed gives the same sleeps; each delays() call starts a new sequence."""
    backoff = decorrelated_jitter(0.1, 10.0)
    assert first(backoff, 10, seed=3) == first(backoff, 10, seed=3) != first(backoff, 10, seed=4)


def test_huge_retry_counts_do_not_overflow() -> None:
    """After thousands of retries the ceiling is still the cap, not an overflow."""
    sleeps = first(exponential(1.0, 60.0), 3000)
    assert sleeps[-1] == 60.0


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: constant(-1.0), "delay"),
        (lambda: exponential(0.0, 1.0), "base"),
        (lambda: full_jitter(1.0, math.inf), "cap"),
        (lambda: equal_jitter(2.0, 1.0), "cap must be >= base"),
        (lambda: decorrelated_jitter(math.nan, 1.0), "base"),
    ],
)
def test_bad_backoff_settings_name_the_parameter(build: Any, name: str) -> None:
    """Negative, zero, infinite or inverted settings are refused, naming the parameter."""
    with pytest.raises(ValueError, match=name):
        build()


def test_backoffs_print_their_formula_settings() -> None:
    """str() says the strategy and its seconds."""
    assert str(full_jitter(0.1, 10)) == "full_jitter(base=0.1 s, cap=10 s)"
    assert str(constant(0)) == "constant(0 s)"


# Retry budget ------------------------------------------------------------------------------
def test_budget_caps_retries_at_the_ratio_when_everything_fails() -> None:
    """1,000 failing requests with 3 tries each: retries stop at 1/9 of the first attempts."""
    budget = RetryBudget(ratio=0.1, window=None)
    sent = 0
    for _ in range(1000):
        budget.record_request()
        sent += 1
        for _ in range(2):
            if budget.try_retry():
                sent += 1
    assert budget.retries == pytest.approx(1000 / 9, abs=1)
    assert sent / 1000 == pytest.approx(1 / (1 - 0.1), abs=0.002)  # the SRE book's "1.1x"
    assert budget.retries < 0.1 * budget.requests + 1


def test_budget_forgets_requests_older_than_the_window() -> None:
    """A quiet hour does not bank retries: only the last `window` seconds count."""
    clock = distlab.ManualClock()
    budget = RetryBudget(ratio=0.5, window=10.0, clock=clock)
    for _ in range(100):
        budget.record_request()
    clock.advance(10.0)
    assert budget.requests == 0
    assert not budget.try_retry()  # nothing recent to retry against
    budget.record_request()
    assert budget.try_retry() and not budget.try_retry()  # 1 retry for 2 requests at 50 %
    clock.advance(10.0)
    assert (budget.requests, budget.retries) == (0, 0)


def test_a_zero_budget_never_retries() -> None:
    """ratio=0 turns retries off."""
    budget = RetryBudget(ratio=0.0)
    budget.record_request()
    assert not budget.try_retry()
    assert "ratio=0.0" in repr(budget)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"ratio": 1.0}, "ratio"), ({"ratio": -0.1}, "ratio"), ({"window": 0}, "window")],
)
def test_bad_budget_settings_name_the_parameter(options: dict[str, Any], name: str) -> None:
    """A ratio outside [0, 1) or a window that is not > 0 is refused."""
    with pytest.raises(ValueError, match=name):
        RetryBudget(**options)


# retry_call / aretry_call --------------------------------------------------------------------
class Flaky:
    """Fail ``failures`` times with ``error``, then return "ok"; count the calls."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("down")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_retry_call_backs_off_between_tries_and_returns() -> None:
    """Two failures, three attempts: "ok", after sleeping base then 2 * base."""
    clock = distlab.ManualClock()
    flaky = Flaky(2)
    result = retry_call(flaky, attempts=3, backoff=exponential(0.1, 10), sleep=clock.sleep)
    assert (result, flaky.calls) == ("ok", 3)
    assert clock.now == pytest.approx(0.3)


def test_retry_call_raises_the_last_error_when_attempts_run_out() -> None:
    """Three failures, three attempts: the original exception, after 3 calls and 2 sleeps."""
    sleeps: list[float] = []
    flaky = Flaky(5)
    with pytest.raises(ConnectionError, match="down"):
        retry_call(flaky, attempts=3, backoff=constant(1.0), sleep=sleeps.append)
    assert (flaky.calls, sleeps) == (3, [1.0, 1.0])


def test_errors_not_worth_retrying_are_raised_at_once() -> None:
    """retry_on by type or by predicate: a ValueError is a bug, not a glitch."""
    flaky = Flaky(1, ValueError("bad request"))
    with pytest.raises(ValueError):
        retry_call(flaky, retry_on=ConnectionError, sleep=lambda s: None)
    assert flaky.calls == 1
    flaky = Flaky(1, ValueError("bad request"))
    assert retry_call(flaky, retry_on=lambda e: "bad" in str(e), sleep=lambda s: None) == "ok"


def test_retry_call_stops_when_the_budget_says_so() -> None:
    """Once retries reach 10 % of the requests, the next failure is final."""
    budget = RetryBudget(ratio=0.1, window=None)
    assert retry_call(Flaky(1), budget=budget, sleep=lambda s: None) == "ok"  # 0 of 1: allowed
    assert (budget.requests, budget.retries) == (2, 1)
    flaky = Flaky(1)
    with pytest.raises(ConnectionError):
        retry_call(flaky, budget=budget, sleep=lambda s: None)  # 1 retry of 3 requests: refused
    assert (flaky.calls, budget.requests, budget.retries) == (1, 3, 1)
    for _ in range(17):
        budget.record_request()
    assert retry_call(Flaky(1), budget=budget, sleep=lambda s: None) == "ok"  # 1 of 21: allowed
    assert budget.retries == 2


def test_retry_call_refuses_zero_attempts() -> None:
    """attempts counts the first try: it must be at least 1."""
    with pytest.raises(ValueError, match="attempts"):
        retry_call(Flaky(0), attempts=0)


def test_aretry_call_sleeps_in_virtual_time() -> None:
    """Backoffs of 10 and 20 s pass in virtual time under distlab.run."""
    flaky = Flaky(2)

    async def call() -> str:
        return flaky()

    async def main() -> tuple[str, float]:
        result = await aretry_call(call, attempts=3, backoff=exponential(10, 60))
        return result, distlab.now()

    assert distlab.run(main) == ("ok", 30.0)


def test_aretry_call_never_retries_a_cancellation() -> None:
    """CancelledError propagates after one call; errors run out like retry_call's."""
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    async def main() -> None:
        await aretry_call(cancelled, attempts=5)

    with pytest.raises(asyncio.CancelledError):
        distlab.run(main)
    assert calls == 1

    async def failing() -> None:
        raise ConnectionError("down")

    async def main2() -> None:
        await aretry_call(failing, attempts=2, backoff=constant(1.0))

    with pytest.raises(ConnectionError):
        distlab.run(main2)
