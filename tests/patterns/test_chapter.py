"""distlab.patterns.chapter: the chapter's breaker, translated line for line (flaws kept).

Lesson 06 measures the flaws; these tests pin the translation itself, so a "fix" that
slipped into the chapter's code would be caught here.
"""

from __future__ import annotations

import inspect
import time

import pytest

import distlab
from distlab.patterns.chapter import ChapterCircuitBreaker


class Boom(Exception):
    """A failing call."""


def fail() -> None:
    raise Boom("down")


def test_default_clock_is_the_wall_clock_as_in_the_chapter() -> None:
    """The chapter calls time.time(); only the injected clock is new."""
    default = inspect.signature(ChapterCircuitBreaker).parameters["clock"].default
    assert default is time.time


def test_counts_every_exception_and_refuses_with_a_plain_exception() -> None:
    """Threshold failures open it; the refusal is the chapter's bare Exception."""
    breaker = ChapterCircuitBreaker(2, 30, clock=distlab.ManualClock())
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    with pytest.raises(Exception, match="Circuit breaker is open") as refused:
        breaker.call(lambda: "ok")
    assert type(refused.value) is Exception


def test_after_the_timeout_the_count_resets_and_a_success_closes_it() -> None:
    """recovery_timeout after the last failure, the next call runs and resets the count."""
    clock = distlab.ManualClock()
    breaker = ChapterCircuitBreaker(1, 30, clock=clock)
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(30)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.failure_count == 0


def test_a_success_resets_the_consecutive_count() -> None:
    """The chapter resets failure_count on every success."""
    breaker = ChapterCircuitBreaker(3, 30, clock=distlab.ManualClock())
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    breaker.call(lambda: None)
    assert breaker.failure_count == 0
