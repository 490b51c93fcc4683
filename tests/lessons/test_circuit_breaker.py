"""The numbers lesson 06 (circuit breaker) states, recomputed and checked against theory."""

from __future__ import annotations

import contextlib
import json
import math

import httpx
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
    bad_requests_open_the_breaker,
    calls_after_failed_probe,
    calls_to_failing_service,
    cascade,
    check_after_call,
    check_is_failure,
    compare_breakers,
    first_call_after_opening,
    herd_after_timeout,
    is_rejection,
    late_failure,
    outage_timeline,
    plot_cascade,
    plot_state_timeline,
)
from distlab.patterns.breaker import CircuitBreaker, http_failure
from distlab.patterns.chapter import ChapterCircuitBreaker
from tests import REPO
from tests.lessons import missing_calls

LESSON = REPO / "lessons" / "06_circuit_breaker.ipynb"


# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "without = cascade(with_breaker=False)",
    'without.select("catalog", 15, 70)',
    "protected = cascade(with_breaker=True)",
    "plot_cascade(without, protected)",
    "short = cascade(with_breaker=False, backend_timeout=2)",
    "calls_after_failed_probe(ChapterCircuitBreaker, calls=20)",
    "fair = calls_to_failing_service(breaker, calls=20, raise_for_status=True)",
    "typo = bad_requests_open_the_breaker(breaker, bad=5, good=20)",
    "check_is_failure(is_failure)",
    "check_after_call(after_call)",
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
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def frozen() -> distlab.ManualClock:
    """Return a clock that no scenario moves (no time passes)."""
    return distlab.ManualClock()


# 2. The chapter's breaker, as section 2 walks through it ---------------------------------
def test_chapter_breaker_opens_refuses_and_reopens_after_the_timeout() -> None:
    """Section 2: five failures, a refusal with the chapter's message, "ok" 30 s later."""
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


# 3.1 The herd ----------------------------------------------------------------------------
@pytest.mark.parametrize("callers", [1, 20, 100])
def test_chapter_breaker_lets_every_waiting_caller_through(callers: int) -> None:
    """3.1 and its Try it: every caller reaches the dead backend (20 of 20, 100 of 100)."""
    herd = herd_after_timeout(ChapterCircuitBreaker, callers=callers)
    assert (herd.reached, herd.rejected) == (callers, 0)


@pytest.mark.parametrize("callers", [1, 20, 100])
def test_reference_breaker_lets_exactly_one_trial_through(callers: int) -> None:
    """Section 4.1, row 1: one trial call, every other caller refused."""
    herd = herd_after_timeout(CircuitBreaker, callers=callers)
    assert (herd.reached, herd.rejected) == (1, callers - 1)


# 3.2 A 503 is an answer --------------------------------------------------------------------
def test_chapter_breaker_counts_503_answers_as_successes() -> None:
    """3.2: 20 of 20 requests reach the service, 20 come back 503, 0 failures counted."""
    naive = ChapterCircuitBreaker(5, 30, clock=frozen())
    result = calls_to_failing_service(naive, calls=20)
    assert (result.reached, result.answered_5xx, result.raised, result.rejected) == (20, 20, 0, 0)
    assert naive.failure_count == 0


@pytest.mark.parametrize("threshold", [1, 5, 7])
def test_reference_breaker_with_http_failure_stops_at_the_threshold(threshold: int) -> None:
    """4.1, row 2: the first `threshold` calls reach the service, the rest are refused."""
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


# 3.3 async def --------------------------------------------------------------------------------
def test_chapter_breaker_returns_coroutines_as_successes() -> None:
    """3.3: 20 of 20 calls "succeed", the body runs 0 times, no error."""
    result = async_function_through_call(ChapterCircuitBreaker(5, 30), calls=20)
    assert (result.returned_coroutines, result.bodies_run, result.type_errors) == (20, 0, 0)


def test_reference_breaker_refuses_coroutines_in_sync_call() -> None:
    """4.1, row 3: every call raises TypeError and none counts as a success."""
    result = async_function_through_call(CircuitBreaker(5, 30), calls=20)
    assert (result.returned_coroutines, result.bodies_run, result.type_errors) == (0, 0, 20)


# 3.4 The wall clock jumps -----------------------------------------------------------------------
@pytest.mark.parametrize(("step", "expected"), [(0, 30.0), (-60, 90.0), (25, 5.0), (40, 5.0)])
def test_open_time_follows_the_clock_step(step: float, expected: float) -> None:
    """3.4: stepped at t=5 s, open for timeout - step seconds, but at least until the step."""
    theory = max(5.0, 30.0 - step) if step else 30.0
    assert theory == expected
    assert first_call_after_opening(ChapterCircuitBreaker, clock_step=step) == expected


def test_reference_breaker_on_a_monotonic_clock_is_open_for_the_timeout() -> None:
    """4.1, row 4: on virtual (monotonic) time the reference opens for exactly 30 s."""
    assert first_call_after_opening(CircuitBreaker) == 30.0


# 3.5 A late failure ----------------------------------------------------------------------------
@pytest.mark.parametrize("slow_call", [10.0, 20.0])
def test_late_failure_restarts_the_chapter_timer_but_not_the_reference(slow_call: float) -> None:
    """3.5: chapter reopens at late failure + 30 (t=40 for 10 s); reference at opening + 30."""
    naive = late_failure(ChapterCircuitBreaker, slow_call=slow_call)
    assert (naive.opened_at, naive.late_failure_at) == (5.0, slow_call)
    assert naive.first_call_at == slow_call + 30.0
    reference = late_failure(CircuitBreaker, slow_call=slow_call)
    assert reference.first_call_at == 5.0 + 30.0
    assert reference.open_for == 30.0


def test_lesson_numbers_for_the_late_failure() -> None:
    """3.5 prose: opened at t=5, slow call failed at t=10, next call at t=40: 35 s open."""
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


# 3.6 Alternating failures ------------------------------------------------------------------------
@pytest.mark.parametrize("calls", [10, 100, 1001])
def test_consecutive_count_never_opens_at_fifty_percent(calls: int) -> None:
    """3.6: every call reaches the backend; ceil(calls / 2) of them fail; none refused."""
    result = alternating_failures(ChapterCircuitBreaker(5, 30, clock=frozen()), calls=calls)
    assert (result.reached, result.failed, result.rejected) == (calls, math.ceil(calls / 2), 0)
    assert result.first_rejected is None


def test_consecutive_count_never_goes_above_one() -> None:
    """3.6 prose: failing every other call, the chapter's count never goes above 1."""
    naive = ChapterCircuitBreaker(5, 30, clock=frozen())
    counts = []
    for number in range(1, 101):
        with contextlib.suppress(ConnectionError):
            naive.call(_backend_down if number % 2 else (lambda: "ok"))
        counts.append(naive.failure_count)
    assert max(counts) == 1


@pytest.mark.parametrize("window", [4, 10, 20])
def test_failure_rate_window_opens_when_the_window_fills(window: int) -> None:
    """4.1, row 6: at 50 % the rate is reached with the window's last call; the next is refused."""
    breaker = CircuitBreaker(5, 30, clock=frozen(), failure_rate=0.5, window=window)
    result = alternating_failures(breaker, calls=100)
    assert result.reached == window
    assert result.failed == window // 2
    assert result.first_rejected == window + 1
    assert result.rejected == 100 - window


# 4. The reference breaker -----------------------------------------------------------------------
def test_reference_breaker_walk_of_section_3() -> None:
    """Section 4: prints open, a refusal with retry_after 30 s, half_open, then ok closed."""
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
    """4.1: 20 vs 1, 5 vs 1, 20 vs 0 refused, 20 vs 0, 90 vs 30 s, 35 vs 30 s, 100 vs 10."""
    rows = compare_breakers()
    assert [(row.chapter, row.reference) for row in rows] == [
        (20, 1),
        (5, 1),
        (20, 0),
        (20, 0),
        (90, 30),
        (35, 30),
        (100, 10),
    ]
    assert [row.label[:2] for row in rows] == ["1.", "1.", "2.", "3.", "4.", "5.", "6."]


# 5. The outage timeline ---------------------------------------------------------------------------
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
    """Section 5: calls, states and recovery agree with the hand replay for several settings."""
    translate = {"threshold": "failure_threshold", "timeout": "recovery_timeout"}
    kwargs = {translate.get(k, k): v for k, v in options.items()}
    assert summary(outage_timeline(**kwargs)) == theory(**options)  # type: ignore[arg-type]


def test_lesson_numbers_for_the_outage() -> None:
    """Section 5 prose: open at 14.5, trials at 45 and 76, 6 vs 60 requests, 60 refused."""
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
    """Section 5, Try it: recovery_timeout=10 lets 10 requests reach it, closes at 80.5 s."""
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
    assert 4 <= len(quiz.questions) <= 6


def test_library_defaults_in_the_table_match_pybreaker() -> None:
    """Section 6: pybreaker opens after fail_max=5 failures and resets after 60 s."""
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
        "The catalog stops answering at t = 15 s",
        "only 89 of its 550 requests are answered (16 %)",
        "a median 4.7 s instead of 20 ms",
        "after 10 of them, at t = 14.5 s, all 10 workers are stuck",
        "2 × 30 = 60 workers",
        "The breaker opens at t = 42 s",
        "the first hung call fails at t = 40 s",
        "every catalog request that arrives after t = 37.1 s is answered",
        "63 % of its requests instead of 16 %",
        "At t = 72 s the breaker lets one trial call through",
        "Hung calls now hold 2 × 2 = 4 workers",
        "the catalog answers 100 % of its requests",
        "all 120 orders requests of the outage still reach the dead backend",
        "All 20 of 20 calls reach the dead backend",
        "5 of them.",
        "all 100 of 100 reach the backend",
        "All 20 requests reach the service, all 20 come back as 503",
        "Both stop at 5 of 20; the other 15 are refused.",
        "The chapter's breaker refuses all 20 good requests",
        "The course's breaker refuses none.",
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
        "20 calls against 1 trial; 5 calls against 1 when they come one at a time; "
        "20 good requests refused against 0",
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


# 1. The cascade -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs() -> dict[str, scenarios.CascadeResult]:
    """The lesson's three cascade runs, computed once for the module."""
    return {
        "without": cascade(with_breaker=False),
        "protected": cascade(with_breaker=True),
        "short": cascade(with_breaker=False, backend_timeout=2),
    }


def test_cascade_runs_every_request_of_the_schedule(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """10 catalog and 2 orders requests per second for 120 s, each answered exactly once."""
    for result in runs.values():
        assert len(result.select("catalog")) == 1200
        assert len(result.select("orders")) == 240
        assert all(r.finished >= r.arrived for r in result.requests)


def test_without_a_breaker_the_pool_fills_when_ten_calls_hang(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """Section 1: 10 workers, orders every 0.5 s from t = 10: full at 10 + 9 × 0.5 = 14.5 s.

    Before that every catalog request is answered in 20 ms; after it, none arriving before
    the first timeout frees a worker (t = 40 s, minus the 5 s queue timeout) is answered.
    """
    without = runs["without"]
    full_at = 10 + (10 - 1) * 0.5
    assert full_at == 14.5
    early = without.select("catalog", 0, full_at)
    assert all(r.outcome == "ok" and r.latency == pytest.approx(0.02) for r in early)
    starved = without.select("catalog", full_at + 0.05, 40 - 5)
    assert starved and all(r.outcome == "queue_timeout" for r in starved)
    assert without.per_second("catalog")[14:16] == [5, 0]  # "stops answering at t = 15 s"


def test_lesson_numbers_for_the_cascade_without_a_breaker(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """Section 1 prose: 89 of 550 answered (16 %), median wait 4.7 s against 20 ms."""
    without = runs["without"]
    catalog = without.select("catalog", 15, 70)
    assert len(catalog) == 550 == (70 - 15) * 10
    assert sum(r.outcome == "ok" for r in catalog) == 89
    assert round(100 * without.answered_fraction("catalog", 15, 70)) == 16
    assert round(without.median_latency("catalog", 15, 70), 1) == 4.7
    # a request served after waiting is bounded by the queue timeout plus its work
    assert without.median_latency("catalog", 15, 70) <= 5 + 0.02
    assert round(without.median_latency("catalog", 0, 10) * 1000) == 20
    assert without.states == ()


@pytest.mark.parametrize(
    ("options", "opens_at"),
    [
        ({}, 42.0),
        ({"failure_threshold": 3}, 41.0),
        ({"backend_timeout": 20.0}, 32.0),
        ({"outage": (20.0, 70.0)}, 52.0),
    ],
)
def test_the_breaker_opens_when_the_fifth_hung_call_times_out(
    options: dict[str, object], opens_at: float
) -> None:
    """Opens at outage start + timeout + (threshold - 1) × 0.5 s: a failure counts when it ends."""
    result = cascade(with_breaker=True, **options)  # type: ignore[arg-type]
    start = result.outage[0]
    timeout = float(options.get("backend_timeout", 30.0))  # type: ignore[arg-type]
    threshold = int(options.get("failure_threshold", 5))  # type: ignore[call-overload]
    assert start + timeout + (threshold - 1) * 0.5 == opens_at
    assert result.states[1] == (opens_at, "open")


def test_lesson_numbers_for_the_cascade_with_a_breaker(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """Section 1: open at 42 s, catalog whole from 37.1 s (queued at 42 - 5), 63 %, closed at 72."""
    protected = runs["protected"]
    assert protected.states == (
        (0.0, "closed"),
        (42.0, "open"),
        (72.0, "half_open"),
        (72.0, "closed"),
    )
    # the first catalog request still queued when the breaker opened arrived just after 42 - 5
    assert 42 - 5 <= protected.recovered_at("catalog") <= 42 - 5 + 0.1 + 1e-9
    assert round(protected.recovered_at("catalog"), 1) == 37.1
    assert round(100 * protected.answered_fraction("catalog", 15, 70)) == 63
    assert protected.answered_fraction("catalog", 42, 120) == 1.0
    refused = [r for r in protected.select("orders") if r.outcome == "refused"]
    assert refused and all(42 <= r.finished < 72 for r in refused)
    # fast 503s once the hung calls of before the opening have let go of their workers
    assert all(r.latency == 0 for r in refused if r.arrived >= 42 + 5 * 0.5)
    assert protected.select("orders", 72, 120) and protected.answered_fraction("orders", 72) == 1.0


@pytest.mark.parametrize(
    ("options", "survives"),
    [
        ({"backend_timeout": 2.0}, True),  # 2/s × 2 s = 4 workers held < 10
        ({"backend_timeout": 4.0}, True),  # 8 < 10
        ({"backend_timeout": 6.0}, False),  # 12 > 10
        ({}, False),  # 60 > 10
        ({"workers": 80}, True),  # 60 < 80
    ],
)
def test_littles_law_says_when_the_pool_fills(options: dict[str, object], survives: bool) -> None:
    """Without a breaker the catalog survives iff 2 calls/s × timeout stays below the pool."""
    result = cascade(with_breaker=False, **options)  # type: ignore[arg-type]
    share = result.answered_fraction("catalog", 15, 70)
    assert (share == 1.0) if survives else (share < 0.5)


def test_lesson_numbers_for_the_short_timeout_try_it(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """Try it: a 2 s timeout keeps the catalog at 100 %; all 120 orders calls hit the backend."""
    short = runs["short"]
    assert short.answered_fraction("catalog", 15, 70) == 1.0
    assert short.backend_calls_during_outage == 120 == (70 - 10) * 2
    hung = [r for r in short.select("orders", 10, 70)]
    assert all(r.outcome == "failed" and r.latency == pytest.approx(2.0) for r in hung)


def test_cascade_plot_has_two_runs_two_endpoints_and_labelled_axes(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """The plot: columns without and with the breaker; both endpoints; % and log-scale ms."""
    axes = plot_cascade(runs["without"], runs["protected"])
    assert axes[0][0].get_ylabel() == "requests answered (%)"
    assert axes[1][0].get_ylabel() == "median wait for an answer (ms)"
    assert axes[1][0].get_yscale() == "log"
    assert axes[1][1].get_xlabel() == "virtual time of arrival (s)"
    assert "no breaker" in axes[0][0].get_title()
    assert "with the breaker" in axes[0][1].get_title()
    for ax in (axes[0][0], axes[0][1], axes[1][0], axes[1][1]):
        assert len(ax.get_lines()) == 2  # catalog and orders
    labels = [t.get_text() for t in axes[0][0].get_legend().get_texts()]
    assert labels == ["/catalog (never calls the backend)", "/orders (calls the backend)"]
    plt.close(axes[0][0].figure)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"workers": 0}, "workers"),
        ({"duration": math.inf}, "duration"),
        ({"orders_every": 0}, "orders_every"),
        ({"backend_timeout": math.nan}, "backend_timeout"),
        ({"catalog_time": -1}, "catalog_time"),
        ({"outage": (5.0, 5.0)}, "outage"),
    ],
)
def test_cascade_rejects_settings_that_cannot_run(options: dict[str, object], name: str) -> None:
    """A bad cascade setting is a ValueError naming it."""
    with pytest.raises(ValueError, match=name):
        cascade(**options)  # type: ignore[arg-type]


def test_cascade_result_helpers_refuse_an_empty_window(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """answered_fraction of a window without requests says so; median_latency is inf."""
    with pytest.raises(ValueError, match="no catalog request arrived"):
        runs["without"].answered_fraction("catalog", 500, 600)
    assert runs["without"].median_latency("catalog", 20, 30) == math.inf


# 3.1 After a failed probe, 3.2 the same wrapper for both ------------------------------------------
@pytest.mark.parametrize("threshold", [1, 5, 10])
def test_after_a_failed_probe_the_chapter_lets_threshold_calls_through(threshold: int) -> None:
    """3.1: one at a time, the chapter's breaker lets failure_threshold calls reach it; ours 1."""
    assert calls_after_failed_probe(ChapterCircuitBreaker, failure_threshold=threshold) == threshold
    assert calls_after_failed_probe(CircuitBreaker, failure_threshold=threshold) == 1


@pytest.mark.parametrize(("bad", "refused"), [(4, 0), (5, 20), (12, 20)])
def test_bad_requests_open_the_chapter_breaker_for_everybody(bad: int, refused: int) -> None:
    """3.2: 5 requests answered 404 open the chapter's breaker; http_failure ignores them."""
    naive = bad_requests_open_the_breaker(
        ChapterCircuitBreaker(5, 30, clock=frozen()), bad=bad, good=20
    )
    assert (naive.good_refused, naive.good_answered) == (refused, 20 - refused)
    reference = bad_requests_open_the_breaker(
        CircuitBreaker(5, 30, clock=frozen(), is_failure=http_failure), bad=bad, good=20
    )
    assert (reference.good_refused, reference.good_answered) == (0, 20)


# "Your turn" checkers -----------------------------------------------------------------------------
def reference_is_failure(exc: BaseException) -> bool:
    """The answer the lesson expects."""
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status >= 500 or status in (408, 429)
    return isinstance(exc, httpx.TransportError)


def _status(exc: BaseException) -> int:
    return exc.response.status_code  # type: ignore[attr-defined,no-any-return]


IS_FAILURE_BUGS = {
    "only 5xx": (
        lambda e: (
            isinstance(e, httpx.TransportError)
            or (isinstance(e, httpx.HTTPStatusError) and _status(e) >= 500)
        ),
        "429 Too Many Requests should count",
    ),
    "every status error": (
        lambda e: isinstance(e, httpx.HTTPError),
        "a 400 answer should not count: the request was wrong",
    ),
    "every exception": (lambda e: True, "a 400 answer should not count"),
    "no transport errors": (
        lambda e: isinstance(e, httpx.HTTPStatusError) and reference_is_failure(e),
        "a refused connection (ConnectError) should count",
    ),
    "408 forgotten": (
        lambda e: (
            reference_is_failure(e)
            and not (isinstance(e, httpx.HTTPStatusError) and _status(e) == 408)
        ),
        "408 Request Timeout should count",
    ),
    "our own bugs count": (
        lambda e: not isinstance(e, httpx.HTTPStatusError) or reference_is_failure(e),
        "a ValueError from our own code should not count",
    ),
    "returns the status": (
        lambda e: _status(e) if isinstance(e, httpx.HTTPStatusError) else True,
        "is_failure should return True or False, got 500",
    ),
}


def test_is_failure_checker_passes_the_reference_answer() -> None:
    """The expected predicate passes, and the success line reports the typo scenario."""
    feedback = check_is_failure(reference_is_failure)
    assert feedback.passed, feedback.message
    assert "20 of 20 good ones are still answered" in feedback.message
    assert check_is_failure(http_failure).passed  # the course's own predicate agrees


@pytest.mark.parametrize("bug", sorted(IS_FAILURE_BUGS), ids=str)
def test_is_failure_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake students make gets its own message, not a crash."""
    func, message = IS_FAILURE_BUGS[bug]
    feedback = check_is_failure(func)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_is_failure_checker_reports_the_stub_and_a_crash() -> None:
    """The untouched stub is "not done yet"; a crash is named with its line, never raised."""

    def stub(exc: BaseException) -> bool:
        raise NotImplementedError

    assert check_is_failure(stub).status == "not_done"
    crash = check_is_failure(lambda e: e.response.status_code >= 500)  # type: ignore[attr-defined]
    assert crash.status == "error"
    assert "AttributeError" in crash.message


def reference_after_call(
    state: str, failures: int, failed: bool, *, failure_threshold: int
) -> tuple[str, int]:
    """The answer the lesson expects."""
    if state == "half_open":
        return ("open", failures) if failed else ("closed", 0)
    if not failed:
        return ("closed", 0)
    failures += 1
    return ("open" if failures >= failure_threshold else "closed", failures)


def _strict(state: str, failures: int, failed: bool, *, failure_threshold: int) -> tuple[str, int]:
    if state == "half_open":
        return ("open", failures) if failed else ("closed", 0)
    if not failed:
        return ("closed", 0)
    failures += 1
    return ("open" if failures > failure_threshold else "closed", failures)


def _no_reset(
    state: str, failures: int, failed: bool, *, failure_threshold: int
) -> tuple[str, int]:
    if failed or state == "half_open":
        return reference_after_call(state, failures, failed, failure_threshold=failure_threshold)
    return ("closed", failures)


def _trial_counts(
    state: str, failures: int, failed: bool, *, failure_threshold: int
) -> tuple[str, int]:
    if state == "half_open" and failed:  # a failed trial treated like any failure
        failures += 1
        return ("open" if failures >= failure_threshold else "half_open", failures)
    return reference_after_call(state, failures, failed, failure_threshold=failure_threshold)


def _trial_keeps_count(
    state: str, failures: int, failed: bool, *, failure_threshold: int
) -> tuple[str, int]:
    if state == "half_open" and not failed:
        return ("closed", failure_threshold)
    return reference_after_call(state, failures, failed, failure_threshold=failure_threshold)


AFTER_CALL_BUGS = {
    "> instead of >=": (
        _strict,
        "should open the breaker (got 'closed'): compare the new count with >=",
    ),
    "success keeps the count": (
        _no_reset,
        "a success resets the count of consecutive failures to 0",
    ),
    "failed trial counts like any failure": (
        _trial_counts,
        "a failed trial call opens the breaker again at once",
    ),
    "closing keeps the count": (
        _trial_keeps_count,
        "a successful trial call closes the breaker with a count of 0",
    ),
    "returns a state only": (
        lambda state, failures, failed, *, failure_threshold: "closed",
        "after_call should return a pair (state, failures), got 'closed'",
    ),
    "typo in a state": (
        lambda state, failures, failed, *, failure_threshold: ("half-open", 0),
        "the state should be one of 'closed', 'open', 'half_open', got 'half-open'",
    ),
}


def test_after_call_checker_passes_the_reference_answer() -> None:
    """The table's moves pass; a list instead of a tuple is accepted too."""
    assert check_after_call(reference_after_call).passed

    def as_list(state: str, failures: int, failed: bool, *, failure_threshold: int) -> list[object]:
        return list(
            reference_after_call(state, failures, failed, failure_threshold=failure_threshold)
        )

    assert check_after_call(as_list).passed


@pytest.mark.parametrize("bug", sorted(AFTER_CALL_BUGS), ids=str)
def test_after_call_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake gets the message that says what to change."""
    func, message = AFTER_CALL_BUGS[bug]
    feedback = check_after_call(func)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_after_call_checker_reports_the_stub() -> None:
    """The untouched stub is "not done yet"."""

    def stub(state: str, failures: int, failed: bool, *, failure_threshold: int) -> tuple[str, int]:
        raise NotImplementedError

    assert check_after_call(stub).status == "not_done"


# Predict, then reveal -----------------------------------------------------------------------------
PREDICTIONS = {
    # prediction id: the call that reveals its answer, in a later code cell
    "cascade_catalog": "without = cascade(with_breaker=False)",
    "breaker_opens_at": "protected = cascade(with_breaker=True)",
    "herd_reached": "herd = herd_after_timeout(ChapterCircuitBreaker, callers=20)",
    "closes_at": "timeline = outage_timeline(",
}


def test_each_prediction_comes_right_before_the_cell_that_reveals_it() -> None:
    """quiz.predict(...) is a cell of its own, and the next code cell reveals the answer."""
    code = [
        "".join(c["source"])
        for c in json.loads(LESSON.read_text())["cells"]
        if c["cell_type"] == "code"
    ]
    quiz = load_quiz("06_circuit_breaker")
    assert sorted(PREDICTIONS) == sorted(p.id for p in quiz.predictions)
    for prediction, reveal in PREDICTIONS.items():
        call = f'quiz.predict("06_circuit_breaker", "{prediction}")'
        index = next(i for i, source in enumerate(code) if call in source)
        assert code[index].strip() == call, "a prediction cell holds the prediction only"
        assert reveal in code[index + 1], (prediction, code[index + 1][:80])


def test_prediction_answers_are_the_computed_numbers(
    runs: dict[str, scenarios.CascadeResult],
) -> None:
    """The numeric predictions' answers are what the scenarios compute."""
    quiz = load_quiz("06_circuit_breaker")
    assert quiz.prediction("breaker_opens_at").answer == runs["protected"].states[1][0]
    assert (
        quiz.prediction("herd_reached").answer == herd_after_timeout(ChapterCircuitBreaker).reached
    )
    assert quiz.prediction("closes_at").answer == outage_timeline().recovered_at
    assert quiz.question("after_failed_probe").options[1].text == str(
        calls_after_failed_probe(ChapterCircuitBreaker, failure_threshold=10)
    )
    assert quiz.question("pool_needed").answer == 4 * 10  # Little's law: rate × time held


def test_your_turn_cells_call_their_checkers_on_a_stub() -> None:
    """Two "Your turn" cells: each defines a stub and hands it to its checker on the last line."""
    code = [
        "".join(c["source"])
        for c in json.loads(LESSON.read_text())["cells"]
        if c["cell_type"] == "code"
    ]
    turns = [source for source in code if "# Your turn" in source]
    assert len(turns) >= 2
    for source in turns:
        assert "raise NotImplementedError" in source
        assert source.strip().splitlines()[-1].startswith("check_")


def test_the_lesson_does_not_show_the_reference_breaker_s_code_before_the_exercise() -> None:
    """No getsource of the course's breaker; breaker.py is named only in "Going further"."""
    cells = json.loads(LESSON.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "getsource(CircuitBreaker" not in code
    assert "_admit" not in code and "_finish" not in code
    going_further = next(
        i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Going further")
    )
    for i, cell in enumerate(cells):
        if "patterns/breaker.py" in "".join(cell["source"]):
            assert i == going_further, f"cell {i} points to the reference code"
