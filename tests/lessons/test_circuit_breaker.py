"""The numbers lesson 06 (circuit breaker) states, recomputed and checked against theory."""

from __future__ import annotations

import contextlib
import json
import math

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PathCollection

import distlab
from distlab.course.quiz import load_quiz
from distlab.lessons import circuit_breaker as scenarios
from distlab.lessons.circuit_breaker import (
    Timeline,
    alternating_failures,
    async_function_through_call,
    calls_to_failing_service,
    compare_breakers,
    first_call_after_opening,
    herd_after_timeout,
    is_rejection,
    late_failure,
    outage_timeline,
    plot_state_timeline,
)
from distlab.patterns.breaker import CircuitBreaker, http_failure
from distlab.patterns.chapter import ChapterCircuitBreaker
from tests import REPO

LESSON = REPO / "lessons" / "06_circuit_breaker.ipynb"


# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "naive = ChapterCircuitBreaker(failure_threshold=5, recovery_timeout=30, clock=clock)",
    "herd_after_timeout(ChapterCircuitBreaker, callers=20)",
    "herd_after_timeout(ChapterCircuitBreaker, callers=100)",
    "naive = ChapterCircuitBreaker(5, 30, clock=distlab.ManualClock())\n"
    "service = calls_to_failing_service(naive, calls=20)",
    "async_function_through_call(ChapterCircuitBreaker(5, 30), calls=20)",
    "for step in (0, -60, +25):\n"
    "    seconds = first_call_after_opening(ChapterCircuitBreaker, clock_step=step)",
    "late_failure(ChapterCircuitBreaker, slow_call=10)",
    "alternating_failures(\n"
    "    ChapterCircuitBreaker(5, 30, clock=distlab.ManualClock()), calls=100\n)",
    'CircuitBreaker(failure_threshold=5, recovery_timeout=30, clock=clock, name="orders")',
    "compare_breakers()",
    "outage_timeline(outage=(10, 70), duration=120, failure_threshold=5, recovery_timeout=30)",
    "outage_timeline(with_breaker=False)",
    "outage_timeline(recovery_timeout=10)",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    source = "\n".join(
        "".join(c["source"])
        for c in json.loads(LESSON.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    missing = [call for call in CALLS if call not in source]
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def frozen() -> distlab.ManualClock:
    """Return a clock that no scenario moves (no time passes)."""
    return distlab.ManualClock()


# 1. The chapter's breaker, as section 1 walks through it ---------------------------------
def test_chapter_breaker_opens_refuses_and_reopens_after_the_timeout() -> None:
    """Section 1: five failures, a refusal with the chapter's message, "ok" 30 s later."""
    clock = frozen()
    naive = ChapterCircuitBreaker(5, 30, clock=clock)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            naive.call(_backend_down)
    with pytest.raises(Exception, match=r"^Circuit breaker is open$") as info:
        naive.call(lambda: "ok")
    assert is_rejection(info.value)
    clock.advance(30)
    assert naive.call(lambda: "ok") == "ok"


def _backend_down() -> None:
    raise ConnectionError("backend is down")


# 2.1 The herd ----------------------------------------------------------------------------
@pytest.mark.parametrize("callers", [1, 20, 100])
def test_chapter_breaker_lets_every_waiting_caller_through(callers: int) -> None:
    """2.1 and its Try it: every caller reaches the dead backend (20 of 20, 100 of 100)."""
    herd = herd_after_timeout(ChapterCircuitBreaker, callers=callers)
    assert (herd.reached, herd.rejected) == (callers, 0)


@pytest.mark.parametrize("callers", [1, 20, 100])
def test_reference_breaker_lets_exactly_one_trial_through(callers: int) -> None:
    """Section 3.1, row 1: one trial call, every other caller refused."""
    herd = herd_after_timeout(CircuitBreaker, callers=callers)
    assert (herd.reached, herd.rejected) == (1, callers - 1)


# 2.2 A 503 is an answer --------------------------------------------------------------------
def test_chapter_breaker_counts_503_answers_as_successes() -> None:
    """2.2: 20 of 20 requests reach the service, 20 come back 503, 0 failures counted."""
    naive = ChapterCircuitBreaker(5, 30, clock=frozen())
    result = calls_to_failing_service(naive, calls=20)
    assert (result.reached, result.answered_5xx, result.raised, result.rejected) == (20, 20, 0, 0)
    assert naive.failure_count == 0


@pytest.mark.parametrize("threshold", [1, 5, 7])
def test_reference_breaker_with_http_failure_stops_at_the_threshold(threshold: int) -> None:
    """3.1, row 2: the first `threshold` calls reach the service, the rest are refused."""
    breaker = CircuitBreaker(threshold, 30, clock=frozen(), is_failure=http_failure)
    result = calls_to_failing_service(breaker, calls=20, raise_for_status=True)
    assert (result.reached, result.raised, result.rejected) == (
        threshold,
        threshold,
        20 - threshold,
    )


def test_raise_for_status_alone_fixes_the_chapter_breaker_count() -> None:
    """With raise_for_status the chapter's breaker opens too: the flaw is the missing exception."""
    result = calls_to_failing_service(
        ChapterCircuitBreaker(5, 30, clock=frozen()), calls=20, raise_for_status=True
    )
    assert (result.reached, result.rejected) == (5, 15)


# 2.3 async def --------------------------------------------------------------------------------
def test_chapter_breaker_returns_coroutines_as_successes() -> None:
    """2.3: 20 of 20 calls "succeed", the body runs 0 times, no error."""
    result = async_function_through_call(ChapterCircuitBreaker(5, 30), calls=20)
    assert (result.returned_coroutines, result.bodies_run, result.type_errors) == (20, 0, 0)


def test_reference_breaker_refuses_coroutines_in_sync_call() -> None:
    """3.1, row 3: every call raises TypeError and none counts as a success."""
    result = async_function_through_call(CircuitBreaker(5, 30), calls=20)
    assert (result.returned_coroutines, result.bodies_run, result.type_errors) == (0, 0, 20)


# 2.4 The wall clock jumps -----------------------------------------------------------------------
@pytest.mark.parametrize(("step", "expected"), [(0, 30.0), (-60, 90.0), (25, 5.0), (40, 5.0)])
def test_open_time_follows_the_clock_step(step: float, expected: float) -> None:
    """2.4: stepped at t=5 s, open for timeout - step seconds, but at least until the step."""
    theory = max(5.0, 30.0 - step) if step else 30.0
    assert theory == expected
    assert first_call_after_opening(ChapterCircuitBreaker, clock_step=step) == expected


def test_reference_breaker_on_a_monotonic_clock_is_open_for_the_timeout() -> None:
    """3.1, row 4: on virtual (monotonic) time the reference opens for exactly 30 s."""
    assert first_call_after_opening(CircuitBreaker) == 30.0


# 2.5 A late failure ----------------------------------------------------------------------------
@pytest.mark.parametrize("slow_call", [10.0, 20.0])
def test_late_failure_restarts_the_chapter_timer_but_not_the_reference(slow_call: float) -> None:
    """2.5: chapter reopens at late failure + 30 (t=40 for 10 s); reference at opening + 30."""
    naive = late_failure(ChapterCircuitBreaker, slow_call=slow_call)
    assert (naive.opened_at, naive.late_failure_at) == (5.0, slow_call)
    assert naive.first_call_at == slow_call + 30.0
    reference = late_failure(CircuitBreaker, slow_call=slow_call)
    assert reference.first_call_at == 5.0 + 30.0
    assert reference.open_for == 30.0


def test_lesson_numbers_for_the_late_failure() -> None:
    """2.5 prose: opened at t=5, slow call failed at t=10, next call at t=40: 35 s open."""
    late = late_failure(ChapterCircuitBreaker, slow_call=10)
    assert (late.opened_at, late.late_failure_at, late.first_call_at, late.open_for) == (
        5.0,
        10.0,
        40.0,
        35.0,
    )


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"duration": math.inf}, "duration"),
        ({"interval": math.nan}, "interval"),
        ({"latency": 1.0}, "latency"),
        ({"outage": (30.0, 20.0)}, "outage"),
    ],
)
def test_outage_timeline_rejects_settings_that_cannot_run(
    options: dict[str, object], name: str
) -> None:
    """An endless or inconsistent outage run is refused with the parameter's name."""
    with pytest.raises(ValueError, match=name):
        outage_timeline(**options)  # type: ignore[arg-type]


def test_a_breaker_that_never_lets_a_call_through_gives_up() -> None:
    """late_failure stops probing after give_up seconds instead of looping forever."""
    result = late_failure(ChapterCircuitBreaker, recovery_timeout=math.inf, give_up=100)
    assert result.first_call_at == math.inf


# 2.6 Alternating failures ------------------------------------------------------------------------
@pytest.mark.parametrize("calls", [10, 100, 1001])
def test_consecutive_count_never_opens_at_fifty_percent(calls: int) -> None:
    """2.6: every call reaches the backend; ceil(calls / 2) of them fail; none refused."""
    result = alternating_failures(ChapterCircuitBreaker(5, 30, clock=frozen()), calls=calls)
    assert (result.reached, result.failed, result.rejected) == (calls, math.ceil(calls / 2), 0)
    assert result.first_rejected is None


def test_consecutive_count_never_goes_above_one() -> None:
    """2.6 prose: failing every other call, the chapter's count never goes above 1."""
    naive = ChapterCircuitBreaker(5, 30, clock=frozen())
    counts = []
    for number in range(1, 101):
        with contextlib.suppress(ConnectionError):
            naive.call(_backend_down if number % 2 else (lambda: "ok"))
        counts.append(naive.failure_count)
    assert max(counts) == 1


@pytest.mark.parametrize("window", [4, 10, 20])
def test_failure_rate_window_opens_when_the_window_fills(window: int) -> None:
    """3.1, row 6: at 50 % the rate is reached with the window's last call; the next is refused."""
    breaker = CircuitBreaker(5, 30, clock=frozen(), failure_rate=0.5, window=window)
    result = alternating_failures(breaker, calls=100)
    assert result.reached == window
    assert result.failed == window // 2
    assert result.first_rejected == window + 1
    assert result.rejected == 100 - window


# 3. The reference breaker -----------------------------------------------------------------------
def test_reference_breaker_walk_of_section_3() -> None:
    """Section 3: prints open, a refusal with retry_after 30 s, half_open, then ok closed."""
    clock = frozen()
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=30, clock=clock, name="orders")
    for _ in range(5):
        with pytest.raises(ConnectionError):
            breaker.call(_backend_down)
    assert breaker.state == "open"
    with pytest.raises(distlab.CircuitOpenError) as info:
        breaker.call(lambda: "ok")
    assert (info.value.name, info.value.retry_after) == ("orders", 30.0)
    clock.advance(30)
    assert breaker.state == "half_open"
    assert (breaker.call(lambda: "ok"), breaker.state) == ("ok", "closed")


def test_comparison_table_has_the_numbers_the_prose_reads_row_by_row() -> None:
    """3.1: 20 vs 1, 20 vs 5, 20 vs 0, 90 vs 30 s, 35 vs 30 s, 100 vs 10."""
    rows = compare_breakers()
    assert [(row.chapter, row.reference) for row in rows] == [
        (20, 1),
        (20, 5),
        (20, 0),
        (90, 30),
        (35, 30),
        (100, 10),
    ]
    assert [row.label[:2] for row in rows] == ["1.", "2.", "3.", "4.", "5.", "6."]


# 4. The outage timeline ---------------------------------------------------------------------------
def theory(
    *,
    outage: tuple[float, float] = (10.0, 70.0),
    duration: float = 120.0,
    interval: float = 1.0,
    latency: float = 0.5,
    threshold: int = 5,
    timeout: float = 30.0,
) -> dict[str, object]:
    """Replay the outage by hand: calls at k*interval, each lasting `latency` seconds.

    A call fails iff it starts inside the outage. The breaker opens when the
    threshold-th consecutive failure returns, stays open `timeout` seconds from then,
    and the first call after that is the single trial.
    """
    start, end = outage
    state, streak, opened = "closed", 0, -math.inf
    counts = {"success": 0, "failure": 0, "rejected": 0}
    states: list[tuple[float, str]] = [(0.0, "closed")]
    reached_down = 0
    for k in range(math.ceil(duration / interval)):
        t = k * interval
        if state == "open" and t < opened + timeout:
            counts["rejected"] += 1
            continue
        down = start <= t < end
        reached_down += down
        counts["failure" if down else "success"] += 1
        if state == "open":  # this call is the trial
            states.append((opened + timeout, "half_open"))
            if down:
                opened = t + latency
                states.append((opened, "open"))
            else:
                state, streak = "closed", 0
                states.append((t + latency, "closed"))
            continue
        streak = streak + 1 if down else 0
        if streak >= threshold:
            state, opened = "open", t + latency
            states.append((opened, "open"))
    recovered = next((t for t, s in states if s == "closed" and t >= end), None)
    return {
        "counts": counts,
        "states": states,
        "reached_down": reached_down,
        "recovered": recovered,
    }


def summary(timeline: Timeline) -> dict[str, object]:
    """Put a Timeline in the shape `theory` returns."""
    return {
        "counts": {k: timeline.count(k) for k in ("success", "failure", "rejected")},  # type: ignore[arg-type]
        "states": [(t, s) for t, s in timeline.states],
        "reached_down": timeline.reached_during_outage,
        "recovered": timeline.recovered_at,
    }


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"timeout": 10.0},
        {"timeout": 5.0, "threshold": 3},
        {"outage": (0.0, 30.0), "threshold": 2, "timeout": 12.0},
        {"outage": (50.0, 51.0)},
    ],
)
def test_outage_timeline_matches_the_hand_replay(options: dict[str, object]) -> None:
    """Section 4: calls, states and recovery agree with the hand replay for several settings."""
    translate = {"threshold": "failure_threshold", "timeout": "recovery_timeout"}
    kwargs = {translate.get(k, k): v for k, v in options.items()}
    assert summary(outage_timeline(**kwargs)) == theory(**options)  # type: ignore[arg-type]


def test_lesson_numbers_for_the_outage() -> None:
    """Section 4 prose: open at 14.5, trials at 45 and 76, 6 vs 60 requests, 60 refused."""
    timeline = outage_timeline(outage=(10, 70), duration=120, failure_threshold=5)
    assert [c.time for c in timeline.calls] == list(range(120))  # every second for 120 s
    assert timeline.states == (
        (0.0, "closed"),
        (14.5, "open"),
        (44.5, "half_open"),
        (45.5, "open"),
        (75.5, "half_open"),
        (76.5, "closed"),
    )
    assert timeline.reached_during_outage == 6
    assert timeline.count("rejected") == 60
    assert timeline.recovered_at == 76.5
    assert timeline.recovered_at - timeline.outage[1] == 6.5
    assert timeline.count("rejected", start=70) == 6
    # "the 5 that open it and 1 failed trial": failures at t = 10 .. 14 and at t = 45
    assert [c.time for c in timeline.calls if c.outcome == "failure"] == [10, 11, 12, 13, 14, 45]
    assert [c.time for c in timeline.calls if c.outcome == "rejected" and c.time >= 70] == [
        70,
        71,
        72,
        73,
        74,
        75,
    ]
    without = outage_timeline(with_breaker=False)
    assert without.reached_during_outage == 60 == timeline.outage[1] - timeline.outage[0]
    assert without.states == ()


def test_lesson_numbers_for_the_eager_try_it() -> None:
    """Section 4, Try it: recovery_timeout=10 lets 10 requests reach it, closes at 80.5 s."""
    eager = outage_timeline(recovery_timeout=10)
    assert eager.reached_during_outage == 10
    assert eager.recovered_at == 80.5
    # 5 failures open it, then 5 failed trials, the last one at t = 69 s
    failures = [c.time for c in eager.calls if c.outcome == "failure"]
    assert failures == [10, 11, 12, 13, 14, 25, 36, 47, 58, 69]


def test_state_timeline_plot_has_labelled_axes_and_every_call() -> None:
    """The plot labels time in seconds and draws one marker per call."""
    timeline = outage_timeline()
    ax = plot_state_timeline(timeline)
    assert ax.get_xlabel() == "virtual time (s)"
    markers = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert markers == len(timeline.calls)
    assert "6 requests reached the backend" in ax.get_title()
    plt.close(ax.figure)


# Lesson file ----------------------------------------------------------------------------------
def test_lesson_ends_with_its_quiz_and_the_quiz_is_valid() -> None:
    """The last code cell shows quiz 06_circuit_breaker, which loads and has 3-5 questions."""
    nb = json.loads(LESSON.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "".join(code[-1]["source"]).strip() == 'quiz.show("06_circuit_breaker")'
    quiz = load_quiz("06_circuit_breaker")
    assert 3 <= len(quiz.questions) <= 5


def test_library_defaults_in_the_table_match_pybreaker() -> None:
    """Section 5: pybreaker opens after fail_max=5 failures and resets after 60 s."""
    import pybreaker

    library = pybreaker.CircuitBreaker()
    assert (library.fail_max, library.reset_timeout) == (5, 60)


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(
        "".join(c["source"])
        for c in json.loads(LESSON.read_text())["cells"]
        if c["cell_type"] == "markdown"
    )
    for claim in [
        "All 20 of 20 calls reach the dead backend",
        "all 100 of 100 reach the backend",
        "All 20 requests reach the service, all 20 come back as 503",
        "it stays open for 90 s",
        "it reopens after only 5 s",
        "open for 35 s instead of 30",
        "All 100 of 100 calls reach the backend and 50 fail",
        "closed at t = 76.5 s",
        "all 60 requests of the outage hit the dead backend",
        "only 6 do",
        "60 calls are refused",
        "6.5 s after the backend recovered",
        "10 requests reach the dead backend",
        "closes only at t = 80.5 s",
        "its last trial, at t = 69 s, fails",
        "20 calls against 1 trial; 20 requests to the failing service against 5",
        "the other 15 are refused",
        '20 silent "successes" against 0',
        "90 s against 30 s; 35 s against 30 s; 100 calls against 10",
        "the count never goes above 1",
        "`fail_max` (5)",
        "`reset_timeout` (60 s)",
    ]:
        assert claim in text, claim


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (lambda: scenarios.herd_after_timeout(ChapterCircuitBreaker, callers=0), "callers"),
        (
            lambda: scenarios.calls_to_failing_service(ChapterCircuitBreaker(5, 30), calls=0),
            "calls",
        ),
        (
            lambda: scenarios.async_function_through_call(ChapterCircuitBreaker(5, 30), calls=0),
            "calls",
        ),
        (lambda: scenarios.alternating_failures(ChapterCircuitBreaker(5, 30), calls=0), "calls"),
    ],
)
def test_scenarios_refuse_an_empty_run(run, name):
    """A scenario with no callers or no calls is a ValueError naming the count."""
    with pytest.raises(ValueError, match=rf"^{name} must be >= 1"):
        run()
