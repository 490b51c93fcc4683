"""The numbers lesson 10 (serverless) states, recomputed and checked against theory."""

from __future__ import annotations

import math
import random
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons import serverless as sl
from distlab.lessons.serverless import (
    DURATION,
    MEMORY_GB,
    PRICE_PER_GB_SECOND,
    PRICE_PER_MILLION_REQUESTS,
    SERVER_PER_HOUR,
    always_on,
    at_least_once_run,
    breakeven_rate,
    bursty_day,
    bursty_hour,
    check_daily_cost,
    check_instances_needed,
    example_function,
    latency_run,
    max_overlap,
    pay_per_use,
    poison_run,
    reading,
    stored_readings,
)
from tests import REPO
from tests.lessons import lesson_cells, missing_calls

LESSON = REPO / "lessons" / "10_serverless.ipynb"

CALLS = [
    'function = example_function(folder / "readings.db")',
    "on_demand = latency_run(provisioned=0)",
    "average = latency_run(provisioned=2)",
    "peak = max_overlap(on_demand.arrivals, DURATION)",
    "covered = latency_run(provisioned=peak)",
    "day = bursty_day()",
    "servers, server_cost = always_on(day)",
    "breakeven_rate()",
    "breakeven_rate(seconds_each=0.04)",
    "plain = at_least_once_run(idempotent=False)",
    "keyed = at_least_once_run(idempotent=True)",
    "retried = poison_run(validate=False)",
    "refused = poison_run(validate=True)",
    'on_redis = poison_run(validate=False, backend="redis")',
    "check_instances_needed(instances_needed)",
    "check_daily_cost(daily_cost)",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


# --- section 1 ---------------------------------------------------------------------------
def test_the_example_function_answers_200_200_400_400_and_stores_one_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Try it of section 1: a reading, its duplicate, garbage, 400 °C; one row."""
    monkeypatch.setenv("DISTLAB_DB", "unused")
    function = example_function(tmp_path / "readings.db")
    bodies = [reading("reading-0001"), reading("reading-0001"), b"garbage"]
    bodies.append(reading("reading-0002", celsius=400))
    replies = [function.post(body) for body in bodies]
    assert [r.status for r in replies] == [200, 200, 400, 400]
    assert replies[3].text == "invalid event: celsius must be between -90 and 60, got 400"
    assert stored_readings(tmp_path / "readings.db") == [("reading-0001", "greenhouse-3", 21.5)]
    assert "type: ignore" not in sl.example_source()


# --- section 2 ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs() -> dict[str, sl.LatencyRun]:
    """The three runs of section 2 (on demand, 2 provisioned, the peak provisioned)."""
    on_demand = latency_run(provisioned=0)
    peak = max_overlap(on_demand.arrivals, DURATION)
    return {
        "on_demand": on_demand,
        "average": latency_run(provisioned=2),
        "covered": latency_run(provisioned=peak),
    }


def test_the_bursty_hour_has_the_expected_number_of_requests(
    runs: dict[str, sl.LatencyRun],
) -> None:
    """3779 arrivals: Poisson with mean 0.2 x 3600 + 4 bursts x 25 x 30 = 3720, within 5 sigma."""
    requests = runs["on_demand"].requests
    assert requests == 3779
    assert abs(requests - 3720) < 5 * math.sqrt(3720)


def test_warm_requests_take_the_duration_and_cold_ones_a_lognormal_start_more(
    runs: dict[str, sl.LatencyRun],
) -> None:
    """Warm: exactly 80 ms; cold: 80 ms + a draw whose log-mean is ln 0.4 within 5 sigma."""
    run = runs["on_demand"]
    warm = [lat for lat, cold in zip(run.latencies, run.cold, strict=True) if not cold]
    starts = [lat - DURATION for lat, cold in zip(run.latencies, run.cold, strict=True) if cold]
    assert all(abs(lat - DURATION) < 1e-9 for lat in warm)
    assert len(starts) == run.cold_starts == 35 and all(s > 0 for s in starts)
    log_mean = sum(math.log(s) for s in starts) / len(starts)
    assert abs(log_mean - math.log(sl.COLD_START_MEDIAN)) < 5 * sl.COLD_START_SIGMA / math.sqrt(35)


def test_with_under_one_percent_cold_the_p99_is_the_warm_latency(
    runs: dict[str, sl.LatencyRun],
) -> None:
    """0.93 % cold: the median and p99 are 80 ms; p99.9 is 845 ms and the slowest 1024 ms."""
    run = runs["on_demand"]
    assert f"{run.cold_share:.2%}" == "0.93%" and run.cold_share < 0.01
    assert round(run.percentile(50) * 1000) == round(run.percentile(99) * 1000) == 80
    assert round(run.percentile(99.9) * 1000) == 845
    assert round(max(run.latencies) * 1000) == 1024
    assert run.peak_instances == 13


def test_provisioning_the_average_leaves_cold_starts_and_the_peak_removes_them(
    runs: dict[str, sl.LatencyRun],
) -> None:
    """2 instances (Little's law) leave 23 cold starts; 9 (the most in flight) leave none."""
    assert runs["average"].cold_starts == 23
    covered = runs["covered"]
    assert covered.provisioned == 9 == max_overlap(covered.arrivals, DURATION)
    assert covered.cold_starts == 0 and round(max(covered.latencies) * 1000) == 80


def test_instance_time_and_billed_time(runs: dict[str, sl.LatencyRun]) -> None:
    """Provisioned: 9 x 3600 s exactly; billed: requests x 80 ms whatever the provisioning."""
    assert runs["covered"].instance_seconds == pytest.approx(9 * 3600)
    assert round(runs["on_demand"].instance_seconds) == 27490
    for run in runs.values():
        assert run.billed_seconds == pytest.approx(run.requests * DURATION)
    assert round(runs["covered"].billed_seconds) == 302


def test_max_overlap_counts_requests_in_flight() -> None:
    """Three requests of 1 s at 0, 0.5 and 0.99: 3 in flight; at 0 and 1.0: only 1."""
    assert max_overlap([0, 0.5, 0.99], 1.0) == 3
    assert max_overlap([0, 1.0], 1.0) == 1
    assert max_overlap([], 1.0) == 0


# --- section 3 ---------------------------------------------------------------------------
def test_the_bursty_day_and_its_two_bills() -> None:
    """294240 requests cost $0.26 per invocation; 5 servers cost $2.50 a day."""
    day = bursty_day()
    night, daytime, sale = 0.05 * 60 * 480, 2.0 * 60 * 940, 150.0 * 60 * 20
    assert day.requests == pytest.approx(night + daytime + sale) == 294240
    per_request = PRICE_PER_MILLION_REQUESTS / 1e6 + DURATION * MEMORY_GB * PRICE_PER_GB_SECOND
    assert pay_per_use(day.requests) == pytest.approx(294240 * per_request)
    assert f"${pay_per_use(day.requests):.2f}" == "$0.26"
    servers, cost = always_on(day)
    assert (servers, cost) == (5, pytest.approx(5 * 24 * SERVER_PER_HOUR))
    assert f"${cost:.2f}" == "$2.50"


def test_break_even_rates() -> None:
    """One server-day buys 6.7 req/s steady at 80 ms; 10.8 at 40 ms; 3.8 at 160 ms (the quiz)."""

    def even(seconds: float) -> float:
        per_request = PRICE_PER_MILLION_REQUESTS / 1e6 + seconds * MEMORY_GB * PRICE_PER_GB_SECOND
        return 24 * SERVER_PER_HOUR / (per_request * 86400)

    assert breakeven_rate() == pytest.approx(even(0.08)) and f"{breakeven_rate():.1f}" == "6.7"
    assert f"{breakeven_rate(seconds_each=0.04):.1f}" == "10.8"
    quiz = {q.id: q for q in load_quiz("10_serverless").questions}["breakeven_slower"]
    assert abs(even(0.16) - quiz.answer) <= quiz.tolerance


# --- section 4 ---------------------------------------------------------------------------
def test_a_plain_insert_stores_every_delivery_and_a_keyed_one_every_event() -> None:
    """Rows = calls = 100 + lost acks + crashes at an ack; keyed: exactly 100 rows."""
    plain = at_least_once_run(idempotent=False)
    keyed = at_least_once_run(idempotent=True)
    assert plain.rows == plain.calls == plain.messages + plain.lost_acks + plain.crashes
    assert (plain.calls, plain.lost_acks, plain.crashes, plain.rows) == (137, 36, 1, 137)
    attempts = plain.calls - plain.crashes  # acks sent that could be lost
    sigma = math.sqrt(attempts * 0.2 * 0.8)
    assert abs(plain.lost_acks - 0.2 * attempts) < 5 * sigma
    assert (keyed.calls, keyed.lost_acks, keyed.rows, keyed.distinct) == (137, 36, 100, 100)
    assert plain.left == keyed.left == 0


# --- section 5 ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_poison_message_is_retried_5_times_30_s_apart_then_dead(backend: str) -> None:
    """max_deliveries = 5 calls; each lease is 30 s; dead at t = 150.59 s, the reason is vague."""
    retried = poison_run(validate=False, backend=backend)
    assert retried.calls == 5
    gaps = [b - a for a, b in zip(retried.calls_at, retried.calls_at[1:], strict=False)]
    assert all(abs(gap - 30) < 0.1 for gap in gaps)
    assert f"{retried.dead_at:.2f}" == "150.59"
    assert retried.reason == "not acknowledged after 5 deliveries"
    assert retried.good_rows == 4


def test_a_validated_poison_message_is_dead_lettered_at_once_with_its_reason() -> None:
    """InvalidEvent: one call, dead at t = 0.55 s, with the function's reason."""
    refused = poison_run(validate=True)
    assert (refused.calls, f"{refused.dead_at:.2f}") == (1, "0.55")
    assert refused.reason == "celsius must be a number, got 'hot'"
    with pytest.raises(ValueError, match="backend"):
        poison_run(validate=True, backend="kafka")


# --- the checkers ------------------------------------------------------------------------
def test_instances_needed_checker() -> None:
    """The reference passes; the stub is not done; each real mistake gets its message."""
    assert check_instances_needed(lambda r, d: math.ceil(r * d)).passed

    def stub(r: float, d: float) -> int:
        raise NotImplementedError

    assert check_instances_needed(stub).status == "not_done"
    for wrong, words in [
        (lambda r, d: r * d, "round up (math.ceil)"),
        (lambda r, d: r / d, "Little's law multiplies"),
        (lambda r, d: math.floor(r * d), "round up, not down"),
        (lambda r, d: None, "should return a number"),
        (lambda r, d: 2, "should be 25"),
    ]:
        feedback = check_instances_needed(wrong)
        assert feedback.status == "wrong" and words in feedback.message, feedback.message


def test_daily_cost_checker() -> None:
    """The reference passes; missing charges, milliseconds and per-request prices are named."""
    price_ms, price_gb = PRICE_PER_MILLION_REQUESTS, PRICE_PER_GB_SECOND
    assert check_daily_cost(lambda n, s, m: n * price_ms / 1e6 + n * s * m * price_gb).passed

    def stub(n: float, s: float, m: float) -> float:
        raise NotImplementedError

    assert check_daily_cost(stub).status == "not_done"
    for wrong, words in [
        (lambda n, s, m: n * s * m * price_gb, "left out the request charge"),
        (lambda n, s, m: n * price_ms / 1e6, "left out the duration charge"),
        (lambda n, s, m: n * price_ms / 1e6 + n * s * 1000 * m * price_gb, "not milliseconds"),
        (lambda n, s, m: n * price_ms / 1e6 + n * s * price_gb, "seconds x memory in GB"),
        (lambda n, s, m: n * price_ms + n * s * m * price_gb, "per *million* requests"),
        (lambda n, s, m: "cheap", "should return dollars"),
    ]:
        feedback = check_daily_cost(wrong)
        assert feedback.status == "wrong" and words in feedback.message, feedback.message


# --- the plots ---------------------------------------------------------------------------
def test_plots_have_labelled_axes(runs: dict[str, sl.LatencyRun]) -> None:
    """Every plot names its axes with units."""
    axes = [
        sl.plot_latencies(list(runs.values())),
        sl.plot_instances([runs["on_demand"]]),
        sl.plot_breakeven(),
        *sl.plot_day(bursty_day()).axes,
    ]
    try:
        for ax in axes:
            assert ax.get_ylabel()
        assert "ms" in axes[0].get_xlabel() and "minutes" in axes[1].get_xlabel()
        assert "USD" in axes[2].get_ylabel() and "hour" in axes[-1].get_xlabel()
    finally:
        plt.close("all")


def test_bursty_hour_is_seeded() -> None:
    """The same generator seed gives the same arrivals."""
    assert bursty_hour(random.Random(5)) == bursty_hour(random.Random(5))


# --- the notebook ------------------------------------------------------------------------
def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the markdown as recomputed above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "Of 3779 requests, 35 were cold (0.93%)",
        "the bare 80 ms of the function",
        "takes 845 ms or more, the slowest of all 1024 ms",
        "up to 13 instances",
        "Little's law says 2 in flight on average",
        "23 cold starts remain",
        "9 requests were in flight at once",
        "With 9 provisioned instances there is no cold start at all",
        "The function ran for 302 s in the hour",
        "32400 instance-seconds",
        "instances lived 27490 s",
        "**$0.20 per million requests**",
        "**$0.0000166667 per GB-second**",
        "**$0.0208 an hour**",
        "The day has 294240 requests; paid per invocation they cost $0.26",
        "takes 5 servers, and kept all day they cost $2.50",
        "At a steady 6.7 requests a second",
        "about 10.8 requests a second",
        "The function ran 137 times for 100 readings: 36 lost acks and 1 crash",
        "The table has 137 rows for 100 events",
        "now 100 rows for 100 events",
        "The function ran 5 times on the poison message, 30 s apart",
        "at t = 150.59 s",
        "The 4 good readings",
        "One call, dead-lettered at t = 0.55 s",
        "Expect the same 5 calls and the same t = 150.59 s",
    ]:
        assert claim in text, claim


def test_the_quoted_prices_are_the_constants_the_lesson_computes_with() -> None:
    """The prose's prices and the module's constants agree."""
    assert (PRICE_PER_MILLION_REQUESTS, PRICE_PER_GB_SECOND) == (0.20, 0.0000166667)
    assert (SERVER_PER_HOUR, sl.SERVER_CAPACITY, MEMORY_GB, DURATION) == (0.0208, 30.0, 0.5, 0.08)


def test_lesson_has_two_your_turn_cells_and_ends_with_its_quiz() -> None:
    """Two stubs checked on the spot; the last code cell shows quiz 10_serverless (4-6 qs)."""
    code = lesson_cells(LESSON, "code")
    stubs = [c for c in code if "raise NotImplementedError" in c]
    assert len(stubs) == 2
    assert all(c.rstrip().splitlines()[-1].startswith("check_") for c in stubs)
    assert code[-1].strip() == 'quiz.show("10_serverless")'
    assert 4 <= len(load_quiz("10_serverless").questions) <= 6


def test_every_prediction_comes_before_the_cell_that_reveals_it() -> None:
    """Each prediction of the quiz file is shown by quiz.predict, just before its reveal."""
    code = lesson_cells(LESSON, "code")
    reveals = {
        "cold_share": "on_demand = latency_run(provisioned=0)",
        "provisioned_two": "average = latency_run(provisioned=2)",
        "cheaper_day": "day = bursty_day()",
        "lost_ack": "plain = at_least_once_run(idempotent=False)",
        "poison_calls": "retried = poison_run(validate=False)",
    }
    assert {p.id for p in load_quiz("10_serverless").predictions} == set(reveals)
    for prediction, reveal in reveals.items():
        shown = code.index(f'quiz.predict("10_serverless", "{prediction}")')
        assert reveal in code[shown + 1], prediction
