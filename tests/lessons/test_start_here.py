"""The numbers lesson 00 states, recomputed and checked against theory."""

from __future__ import annotations

import asyncio
import inspect
import json
import math

import pytest

import distlab
from distlab.lessons.start_here import outage_demo
from tests import REPO

LESSON = REPO / "lessons" / "00_start_here.ipynb"

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "await asyncio.sleep(60)",
    "report = outage_demo(outage=60, retry_every=5)",
    "outage_demo(outage=60, retry_every=7)",
    "first = outage_demo(loss=0.3, seed=7)",
    "again = outage_demo(loss=0.3, seed=7)",
    "other = outage_demo(loss=0.3, seed=8)",
]


def test_lesson_makes_these_calls():
    """Every call recomputed here appears verbatim in the lesson."""
    cells = json.loads(LESSON.read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    missing = [call for call in CALLS if call not in source]
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def test_waiting_a_minute_takes_sixty_virtual_seconds():
    """Section 2: the virtual clock says 60 seconds after asyncio.sleep(60)."""

    async def wait_a_minute() -> float:
        await asyncio.sleep(60)
        return distlab.now()

    assert distlab.run(wait_a_minute) == 60.0


@pytest.mark.parametrize(
    ("outage", "retry_every"),
    [(60, 5), (60, 7), (0, 5), (61, 5), (90, 30)],
)
def test_outage_demo_matches_the_arithmetic(outage: float, retry_every: float):
    """Attempt k (at t = k*retry_every) fails iff it is sent before the outage ends."""
    report = outage_demo(outage=outage, retry_every=retry_every)
    failures = math.ceil(outage / retry_every)
    assert report.failures == failures
    assert report.attempts == failures + 1
    assert report.recovered_at == pytest.approx(failures * retry_every)
    assert report.virtual_seconds == report.recovered_at


def test_lesson_claims_for_the_default_outage():
    """Lesson 00, section 2: 12 failures, 13 attempts, recovery at t = 60 s."""
    report = outage_demo(outage=60, retry_every=5)
    assert (report.attempts, report.failures, report.recovered_at) == (13, 12, 60.0)


def test_lesson_claims_for_the_try_it_cell():
    """Lesson 00, Try it: every 7 s gives 9 failures, 10 attempts, success at t = 63 s."""
    report = outage_demo(outage=60, retry_every=7)
    assert (report.attempts, report.failures, report.recovered_at) == (10, 9, 63.0)


def test_same_seed_same_story_and_another_seed_differs():
    """Lesson 00, section 3: seed 7 replays itself; seed 8 tells another story."""
    first = outage_demo(loss=0.3, seed=7)
    again = outage_demo(loss=0.3, seed=7)
    other = outage_demo(loss=0.3, seed=8)
    key = lambda r: (r.attempts, r.failures, r.recovered_at, r.fault_digest)  # noqa: E731
    assert key(first) == key(again)
    assert key(first) != key(other)


def test_section_3_relies_on_the_stated_defaults():
    """Section 3 calls outage_demo(loss=0.3, seed=...): a 60 s outage, a retry every 5 s
    and the 2-second timeout the prose states are the defaults."""
    parameters = inspect.signature(outage_demo).parameters
    assert parameters["outage"].default == 60
    assert parameters["retry_every"].default == 5
    assert parameters["timeout"].default == 2


def test_losses_only_ever_delay_recovery():
    """With losses, recovery never comes before the outage ends; a lost try costs its timeout."""
    lost_tries = 0
    for seed in range(20):
        report = outage_demo(loss=0.3, seed=seed, retry_every=5, timeout=2)
        assert report.recovered_at >= 60
        # every failure costs 5 s of waiting, a lost one 2 s more
        extra = report.recovered_at - 5 * report.failures
        lost = round(extra / 2)
        assert extra == pytest.approx(2 * lost)
        assert 0 <= lost <= report.failures  # a lost try is one of the failed ones
        lost_tries += lost
    # 20 runs of 13+ tries at 30 % loss: losses must have cost time somewhere.
    assert lost_tries > 0


def test_without_loss_every_seed_agrees():
    """Lesson 00, Try it: with loss=0 every seed gives 13 attempts and recovery at t = 60 s."""
    results = {
        (r.attempts, r.failures, r.recovered_at)
        for r in (outage_demo(loss=0.0, seed=s) for s in range(5))
    }
    assert results == {(13, 12, 60.0)}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"outage": -1}, "outage"),
        ({"outage": math.nan}, "outage"),
        ({"retry_every": 0}, "retry_every"),
        ({"retry_every": math.inf}, "retry_every"),
        ({"timeout": 0}, "timeout"),
        ({"loss": 1.5}, "loss"),
    ],
)
def test_outage_demo_validates(kwargs: dict[str, float], name: str):
    """Bad arguments name the parameter."""
    with pytest.raises(ValueError, match=name):
        outage_demo(**kwargs)
