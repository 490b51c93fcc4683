"""The numbers lesson 00 states, recomputed and checked against theory."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import random
import time

import pytest

import distlab
from distlab.course.quiz import load_quiz
from distlab.lessons.start_here import check_lost_requests, check_poll_until_up, outage_demo
from tests import REPO
from tests.lessons import missing_calls

LESSON = REPO / "lessons" / "00_start_here.ipynb"

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "await asyncio.sleep(60)",
    "check_poll_until_up(poll_until_up)",
    "check_lost_requests(lost_requests)",
    "r = outage_demo(loss=0.0, seed=seed)",
    "report = outage_demo(outage=60, retry_every=5)",
    "outage_demo(outage=60, retry_every=7)",
    "first = outage_demo(loss=0.3, seed=7)",
    "again = outage_demo(loss=0.3, seed=7)",
    "other = outage_demo(loss=0.3, seed=8)",
]


def test_lesson_makes_these_calls():
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
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


# The quiz, the predictions and the "Your turn" cells ------------------------------------------
def _code_cells() -> list[str]:
    cells = json.loads(LESSON.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def _markdown() -> str:
    cells = json.loads(LESSON.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


PREDICTIONS = {
    "outage_attempts": "report = outage_demo(outage=60, retry_every=5)",
    "same_seed": "first = outage_demo(loss=0.3, seed=7)",
}


def test_each_prediction_comes_right_before_the_cell_that_reveals_it() -> None:
    """quiz.predict(...) is a cell of its own, and the next code cell reveals the answer."""
    code = _code_cells()
    quiz = load_quiz("00_start_here")
    assert sorted(PREDICTIONS) == sorted(p.id for p in quiz.predictions)
    for prediction, reveal in PREDICTIONS.items():
        call = f'quiz.predict("00_start_here", "{prediction}")'
        index = next(i for i, source in enumerate(code) if call in source)
        assert code[index].strip() == call
        assert reveal in code[index + 1]


def test_prediction_and_quiz_answers_are_the_computed_numbers() -> None:
    """The numeric answers are what outage_demo and the arithmetic give."""
    quiz = load_quiz("00_start_here")
    assert quiz.prediction("outage_attempts").answer == outage_demo(outage=60).attempts == 13
    assert quiz.question("new_outage").answer == outage_demo(outage=45, retry_every=10).recovered_at
    assert quiz.question("lost_attempt").answer == replay(outage=60, every=5, lost_at={20})
    assert replay(outage=60, every=5, lost_at=set()) == outage_demo().recovered_at


def replay(*, outage: float, every: float, lost_at: set[float], timeout: float = 2.0) -> float:
    """Section 3 by hand: a lost attempt costs the timeout before the pause; return the recovery."""
    t = 0.0
    while True:
        if t in lost_at:
            t += timeout
        elif t >= outage:
            return t
        t += every


def test_a_blocking_sleep_waits_for_real_and_leaves_virtual_time_alone() -> None:
    """Quiz, blocking_sleep: time.sleep inside distlab.run takes real time, not virtual time."""

    async def blocking() -> tuple[float, float]:
        before = distlab.now()
        time.sleep(0.05)
        return before, distlab.now()

    started = time.perf_counter()
    before, after = distlab.run(blocking)
    assert time.perf_counter() - started >= 0.05
    assert after == before


def test_the_loop_jumps_to_the_first_timer_due() -> None:
    """Quiz, virtual_clock: with timers at 5 s and 30 s pending, the 5 s task runs first, at 5 s."""
    order: list[tuple[str, float]] = []

    async def wait(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        order.append((name, distlab.now()))

    async def main() -> None:
        await asyncio.gather(wait("long", 30), wait("short", 5))

    distlab.run(main)
    assert order == [("short", 5.0), ("long", 30.0)]


async def reference_poll(call, every):  # type: ignore[no-untyped-def]
    """The answer the lesson expects."""
    attempts = 1
    while not await call():
        await asyncio.sleep(every)
        attempts += 1
    return attempts


async def _no_await_sleep(call, every):  # type: ignore[no-untyped-def]
    attempts = 1
    while not await call():
        asyncio.sleep(every)  # the bug under test: never awaited
        attempts += 1
    return attempts


async def _blocking_sleep(call, every):  # type: ignore[no-untyped-def]
    attempts = 1
    while not await call():
        time.sleep(every)
        attempts += 1
    return attempts


async def _no_await_call(call, every):  # type: ignore[no-untyped-def]
    attempts = 1
    while not call():
        await asyncio.sleep(every)
        attempts += 1
    return attempts


async def _sleep_first(call, every):  # type: ignore[no-untyped-def]
    attempts = 0
    while True:
        await asyncio.sleep(every)
        attempts += 1
        if await call():
            return attempts


async def _counts_failures(call, every):  # type: ignore[no-untyped-def]
    failures = 0
    while not await call():
        await asyncio.sleep(every)
        failures += 1
    return failures


async def _never_stops(call, every):  # type: ignore[no-untyped-def]
    attempts = 0
    while True:
        attempts += 1
        await call()
        await asyncio.sleep(every)


async def _hard_coded(call, every):  # type: ignore[no-untyped-def]
    attempts = 1
    while not await call():
        await asyncio.sleep(5)
        attempts += 1
    return attempts


def _not_async(call, every):  # type: ignore[no-untyped-def]
    return 13


POLL_BUGS = {
    "asyncio.sleep without await": (_no_await_sleep, "did you forget `await` before asyncio.sleep"),
    "time.sleep": (_blocking_sleep, "time.sleep() blocks the whole program"),
    "call without await": (_no_await_call, "write `await call()`"),
    "sleep before the first attempt": (_sleep_first, "the first attempt should go out at once"),
    "counts failures": (_counts_failures, "return the number of attempts, 13"),
    "never stops": (_never_stops, "stop as soon as call() returns True"),
    "ignores every": (_hard_coded, "with every=7, attempts should be 7 s apart"),
    "not async": (_not_async, "poll_until_up should be an `async def`"),
}


def test_poll_checker_passes_the_reference_answer() -> None:
    """The expected retry loop passes."""
    feedback = check_poll_until_up(reference_poll)
    assert feedback.passed, feedback.message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the un-awaited coroutines of the bugs
@pytest.mark.parametrize("bug", sorted(POLL_BUGS), ids=str)
def test_poll_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake gets its own message; time.sleep is caught before it blocks."""
    func, message = POLL_BUGS[bug]
    started = time.perf_counter()
    feedback = check_poll_until_up(func)
    assert time.perf_counter() - started < 5  # no real 5 s sleep ever happened
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message
    assert time.sleep.__module__ == "time"  # the real sleep is back


def reference_lost(n: int, loss: float, seed: int) -> list[int]:
    """The answer the lesson expects."""
    rng = random.Random(seed)
    return [i for i in range(n) if rng.random() < loss]


def _global_seed(n: int, loss: float, seed: int) -> list[int]:
    random.seed(seed)
    return [i for i in range(n) if random.random() < loss]


def _unseeded(n: int, loss: float, seed: int) -> list[int]:
    return [i for i in range(n) if random.random() < loss]


def _new_rng_each_time(n: int, loss: float, seed: int) -> list[int]:
    return [i for i in range(n) if random.Random(seed).random() < loss]


def _kept_instead_of_lost(n: int, loss: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [i for i in range(n) if rng.random() >= loss]


def _fixed_seed(n: int, loss: float, seed: int) -> list[int]:
    return reference_lost(n, loss, 42)


def _a_set(n: int, loss: float, seed: int) -> set[int]:
    return set(reference_lost(n, loss, seed))


LOST_BUGS = {
    "random.seed": (_global_seed, "changed Python's global generator"),
    "unseeded": (_unseeded, "the same seed must give the same list"),
    "new generator per request": (_new_rng_each_time, "about 3000 of 10000"),
    "kept instead of lost": (_kept_instead_of_lost, "about 3000 of 10000"),
    "ignores the seed": (_fixed_seed, "seeds 7 and 8 gave the same list"),
    "returns a set": (_a_set, "should return a list of request numbers, got set"),
}


def test_lost_requests_checker_passes_the_reference_answer() -> None:
    """The expected seeded function passes, and the global generator is left alone."""
    state = random.getstate()
    feedback = check_lost_requests(reference_lost)
    assert feedback.passed, feedback.message
    assert random.getstate() == state


@pytest.mark.parametrize("bug", sorted(LOST_BUGS), ids=str)
def test_lost_requests_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake gets its own message."""
    func, message = LOST_BUGS[bug]
    feedback = check_lost_requests(func)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_checkers_report_the_untouched_stubs() -> None:
    """The stubs of the lesson are "not done yet", never an error."""

    async def poll_stub(call, every):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def lost_stub(n: int, loss: float, seed: int) -> list[int]:
        raise NotImplementedError

    assert check_poll_until_up(poll_stub).status == "not_done"
    assert check_lost_requests(lost_stub).status == "not_done"


def test_your_turn_cells_call_their_checkers_on_a_stub() -> None:
    """Two "Your turn" cells: each defines a stub and hands it to its checker on the last line."""
    turns = [source for source in _code_cells() if "# Your turn" in source]
    assert [source.strip().splitlines()[-1] for source in turns] == [
        "check_poll_until_up(poll_until_up)",
        "check_lost_requests(lost_requests)",
    ]
    assert all("raise NotImplementedError" in source for source in turns)


def test_lesson_ends_with_its_quiz() -> None:
    """The last code cell shows the lesson's quiz, which has 4 to 6 questions."""
    assert _code_cells()[-1].strip() == 'quiz.show("00_start_here")'
    assert 4 <= len(load_quiz("00_start_here").questions) <= 6


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """The numbers and facts the prose states, as checked above."""
    text = _markdown()
    for claim in [
        "That is 60 / 5 = 12 failures and 13 attempts, with recovery at t = 60 s",
        "the first success is at t = 63 s, after 9 failures and 10 attempts",
        "every seed gives the deterministic answer of section 2: "
        "13 attempts and recovery at t = 60 s",
        "answered `503 Service Unavailable`",
    ]:
        assert claim in text, claim
    # a service answering 503 is reachable: it is down (issue 8)
    assert "makes the service unreachable" not in text
    assert "Down does not mean unreachable" in text


def test_going_further_cites_deterministic_simulators_not_labrpc_as_one() -> None:
    """FoundationDB and TigerBeetle's VOPR are the deterministic simulators; labrpc is not."""
    text = _markdown()
    assert "FoundationDB" in text and "VOPR" in text
    assert "same trick" not in text
    assert "real sleeps (`time.Sleep`)" in text
    assert "wall-clock `--time-limit`" in text
