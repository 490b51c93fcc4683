"""The numbers lesson 02 (latency) states, recomputed and checked against theory.

Each experiment runs once per module (the fixtures below), with the lesson's own
arguments; statistical claims are checked with 5-sigma bounds, quantiles by the share
of the samples below the theoretical quantile (a binomial count).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons.latency import (
    FIBRE_KM_PER_S,
    LEAF_LATENCY,
    SPEED_OF_LIGHT_KM_PER_S,
    FanOutReport,
    QueueReport,
    call_graph,
    check_hedged_latency,
    check_timeout_for,
    false_timeout_share,
    fan_out,
    fan_out_quantile,
    great_circle_km,
    percentile,
    plot_fan_out,
    plot_hockey_stick,
    plot_survival,
    propagation_delay,
    queue_latency,
    slow_share_theory,
    transmission_delay,
)
from distlab.sim.queueing import mm1_mean_time_in_system
from tests import REPO
from tests.lessons import lesson_cells, missing_calls
from tests.theory import fraction_bounds

LESSON = REPO / "lessons" / "02_latency.ipynb"
UTILISATIONS = (0.3, 0.5, 0.7, 0.9)
FANOUTS = (2, 10, 30, 100)

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "distance = great_circle_km(40.7128, -74.0060, 51.5074, -0.1278)",
    "one_way = propagation_delay(distance)",
    "send_10kb = transmission_delay(10_000, 1e9)",
    "send_10mb = transmission_delay(10_000_000, 100e6)",
    'chain = call_graph("chain", services=3, requests=1000, seed=1)',
    'fanout = call_graph("fanout", services=3, requests=1000, seed=1)',
    "call_graph(shape, services=10, requests=500, seed=1)",
    "reports = [queue_latency(u, requests=round(3000 / (1 - u)), seed=2) "
    "for u in (0.3, 0.5, 0.7, 0.9)]",
    "r = queue_latency(0.95, requests=20_000, seed=2)",
    "leaf = fan_out(1, requests=20_000, seed=4)",
    "sweep = [fan_out(n, requests=2000, seed=3) for n in (2, 10, 30, 100)]",
    "measured = fan_out(1, requests=10_000, seed=5).latencies",
    "timeout = percentile(measured, 99.9)",
    "false_timeout_share(timeout, requests=50_000, seed=6)",
    "false_timeout_share(0.030, requests=50_000, seed=6)",
    "hedge_after = percentile(measured, 95)",
    "plain = fan_out(10, requests=5000, seed=7)",
    "hedged = fan_out(10, requests=5000, hedge_after=hedge_after, seed=7)",
    "plain100 = fan_out(100, requests=2000, seed=8)",
    "hedged100 = fan_out(100, requests=2000, hedge_after=hedge_after, seed=8)",
    "hit, miss = 0.0005, 2 * one_way",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


# Experiments, run once with the lesson's arguments ------------------------------------------
@pytest.fixture(scope="module")
def queues() -> list[QueueReport]:
    """Section 2's four utilisations."""
    return [queue_latency(u, requests=round(3000 / (1 - u)), seed=2) for u in UTILISATIONS]


@pytest.fixture(scope="module")
def sweep() -> list[FanOutReport]:
    """Section 3's fan-outs."""
    return [fan_out(n, requests=2000, seed=3) for n in FANOUTS]


@pytest.fixture(scope="module")
def measured() -> list[float]:
    """Section 4's 10,000 leaf latencies, from which the timeout and hedge delay come."""
    return fan_out(1, requests=10_000, seed=5).latencies


@pytest.fixture(scope="module")
def hedging(measured: list[float]) -> dict[str, Any]:
    """Section 4.2: a fan-out of 10 with and without hedging after the measured p95."""
    hedge_after = percentile(measured, 95)
    return {
        "hedge_after": hedge_after,
        "plain": fan_out(10, requests=5000, seed=7),
        "hedged": fan_out(10, requests=5000, hedge_after=hedge_after, seed=7),
        "plain100": fan_out(100, requests=2000, seed=8),
        "hedged100": fan_out(100, requests=2000, hedge_after=hedge_after, seed=8),
    }


def batch_means_error(values: list[float], batches: int = 20) -> float:
    """Standard error of the mean of correlated values (queue times), by batch means."""
    size = len(values) // batches
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    return statistics.stdev(means) / math.sqrt(batches)


def assert_quantile(samples: list[float], p: float, x: float) -> None:
    """``x`` is the p-quantile: the share of samples at or below it is within 5 sigma of p."""
    low, high = fraction_bounds(len(samples), p)
    share = sum(s <= x for s in samples) / len(samples)
    assert low <= share <= high, f"{share:.4f} of the samples <= {x!r}, expected about {p}"


# 1. Where latency comes from --------------------------------------------------------------------
def test_the_ocean_round_trip() -> None:
    """5,570 km New York - London; 27.3 ms one way in fibre, 54.6 ms round trip; c / 1.47."""
    distance = great_circle_km(40.7128, -74.0060, 51.5074, -0.1278)
    assert distance == pytest.approx(5570, abs=5)  # published great-circle distance
    assert pytest.approx(204_000, rel=0.002) == FIBRE_KM_PER_S
    assert pytest.approx(2 / 3, abs=0.015) == FIBRE_KM_PER_S / SPEED_OF_LIGHT_KM_PER_S
    one_way = propagation_delay(distance)
    assert round(one_way * 1000, 1) == 27.3
    assert round(2 * one_way * 1000, 1) == 54.6
    assert great_circle_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371)


def test_transmission_times() -> None:
    """10 KB at 1 Gbit/s take 0.08 ms; 10 MB at 100 Mbit/s take 800 ms."""
    assert transmission_delay(10_000, 1e9) == pytest.approx(80e-6)
    assert transmission_delay(10_000_000, 100e6) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("shape", "services", "requests", "theory", "sd"),
    [
        ("chain", 3, 1000, 0.036, math.sqrt(3) * 0.010),
        (
            "fanout",
            3,
            1000,
            0.002 + 0.010 * (1 + 1 / 2 + 1 / 3),
            0.010 * math.sqrt(1 + 1 / 4 + 1 / 9),
        ),
        ("chain", 10, 500, 0.120, math.sqrt(10) * 0.010),
        (
            "fanout",
            10,
            500,
            0.002 + 0.010 * sum(1 / k for k in range(1, 11)),
            0.010 * math.sqrt(sum(1 / k**2 for k in range(1, 11))),
        ),
    ],
)
def test_chains_add_and_fan_outs_take_the_slowest(
    shape: str, services: int, requests: int, theory: float, sd: float
) -> None:
    """Means within 5 standard errors of n x (work + 2 hops) and 2 hops + work x H(n)."""
    report = call_graph(shape, services=services, requests=requests, seed=1)  # type: ignore[arg-type]
    assert len(report.latencies) == requests
    assert abs(report.mean - theory) <= 5 * sd / math.sqrt(requests)


# 2. Queueing ----------------------------------------------------------------------------------
def test_queue_means_and_p99s_match_mm1(queues: list[QueueReport]) -> None:
    """Each mean is within 5 batch-means errors of 1/(mu - lambda); p99s are exp quantiles."""
    for report in queues:
        assert len(report.times) == round(3000 / (1 - report.utilisation))
        error = batch_means_error(report.times)
        assert abs(report.mean - report.theory_mean) <= 5 * error, report.utilisation
        inside = [float(t <= report.theory_p99) for t in report.times]
        assert abs(statistics.fmean(inside) - 0.99) <= 5 * batch_means_error(inside)
    assert [round(r.theory_mean * 1000, 1) for r in queues] == [14.3, 20.0, 33.3, 100.0]
    assert round(queues[-1].theory_p99 * 1000) == 461  # "about 460 ms"
    assert mm1_mean_time_in_system(99, 100) == pytest.approx(1.0)  # 10 % more traffic at 90 %


def test_queue_at_95_percent_is_the_try_its_figure() -> None:
    """Try it: theory 200 ms; the seeded run measures 173 ms (within its wide error)."""
    report = queue_latency(0.95, requests=20_000, seed=2)
    assert round(report.theory_mean * 1000) == 200
    assert round(report.mean * 1000) == 173
    assert abs(report.mean - report.theory_mean) <= 5 * batch_means_error(report.times)


# 3. The tail at scale ----------------------------------------------------------------------------
def test_the_leaf_is_fast_with_one_percent_slow() -> None:
    """p50 10 ms, 1 % at a second or more, none between 30 ms and 1 s, slowest 17 s."""
    leaf = fan_out(1, requests=20_000, seed=4)
    assert_quantile(leaf.latencies, 0.5, LEAF_LATENCY.quantile(0.5))
    assert round(leaf.p50 * 1000, 1) == 10.0
    low, high = fraction_bounds(20_000, 0.01)
    assert low <= leaf.slow_share <= high
    assert not any(0.030 < x < 1.0 for x in leaf.latencies)
    assert round(max(leaf.latencies)) == 17
    assert LEAF_LATENCY.cdf(1.0) == pytest.approx(0.99)


def test_fan_out_slow_shares_are_one_minus_099_to_the_n(sweep: list[FanOutReport]) -> None:
    """Slow shares within binomial bounds of 1 - 0.99^n; 63 % at a fan-out of 100."""
    for report in sweep:
        theory = slow_share_theory(report.fanout)
        assert theory == pytest.approx(1 - 0.99**report.fanout, abs=1e-9)
        low, high = fraction_bounds(len(report.latencies), theory)
        assert low <= report.slow_share <= high, report.fanout
    assert round(100 * slow_share_theory(100)) == 63
    assert round(100 * slow_share_theory(10), 1) == 9.6


def test_fan_out_quantiles_match_the_theory_of_the_maximum(sweep: list[FanOutReport]) -> None:
    """p50 and p99 of every fan-out: the share below the theoretical quantile is binomial."""
    for report in sweep:
        for p in (0.5, 0.99):
            assert_quantile(report.latencies, p, fan_out_quantile(report.fanout, p))
    assert sweep[-1].p50 > 1.0  # at 100 leaves even the median user request is slow


def test_the_median_crosses_a_second_from_a_fan_out_of_69() -> None:
    """0.99^69 < 0.5 <= 0.99^68: the median jumps from tens of ms to over a second."""
    assert math.ceil(math.log(0.5) / math.log(0.99)) == 69
    assert fan_out_quantile(68, 0.5) < 0.05 < 1.0 <= fan_out_quantile(69, 0.5)


def test_the_papers_two_thousand_servers() -> None:
    """1 slow in 10,000 per server, 2,000 servers: 18.1 %, "almost one in five"."""
    assert round(100 * (1 - 0.9999**2000), 1) == 18.1


# 4.1 Timeouts ------------------------------------------------------------------------------------
def test_a_timeout_at_the_p999_fires_for_about_one_in_a_thousand(measured: list[float]) -> None:
    """Theory 4.64 s; 3.67 s estimated from 10,000; 0.15 % false timeouts, within bounds."""
    assert round(LEAF_LATENCY.quantile(0.999), 2) == round(10 ** (2 / 3), 2) == 4.64
    timeout = percentile(measured, 99.9)
    assert round(timeout, 2) == 3.67
    exceed = 1 - LEAF_LATENCY.cdf(timeout)  # the true false-timeout rate of this timeout
    # Ten of 10,000 samples lie above the estimate: its exceedance is 0.001 give or take
    # sqrt(10) / 10,000.
    assert abs(exceed - 0.001) <= 5 * math.sqrt(10) / 10_000
    share = false_timeout_share(timeout, requests=50_000, seed=6)
    low, high = fraction_bounds(50_000, exceed)
    assert low <= share <= high
    assert round(100 * share, 2) == 0.15


def test_a_thirty_ms_timeout_fires_for_about_one_in_a_hundred() -> None:
    """1 - F(30 ms) is 1.0 %; measured 1.03 %."""
    share = false_timeout_share(0.030, requests=50_000, seed=6)
    theory = 1 - LEAF_LATENCY.cdf(0.030)
    assert theory == pytest.approx(0.01, abs=1e-4)
    low, high = fraction_bounds(50_000, theory)
    assert low <= share <= high
    assert round(100 * share, 2) == 1.03


# 4.2 Hedging -------------------------------------------------------------------------------------
def test_hedging_after_the_p95_costs_five_percent(hedging: dict[str, Any]) -> None:
    """The hedge delay is the leaf's p95 (15.5 ms); hedges are 1 - F(delay) of leaf requests."""
    delay = hedging["hedge_after"]
    assert round(delay * 1000, 1) == 15.5
    assert round(LEAF_LATENCY.quantile(0.95) * 1000, 1) == 15.5
    low, high = fraction_bounds(10_000, 0.95)
    assert low <= LEAF_LATENCY.cdf(delay) <= high
    hedged = hedging["hedged"]
    low, high = fraction_bounds(hedged.leaf_requests, 1 - LEAF_LATENCY.cdf(delay))
    assert low <= hedged.extra_load <= high
    assert round(100 * hedged.extra_load, 1) == 4.7
    assert hedging["plain"].extra_load == 0


def test_hedging_cuts_the_p99_of_a_fan_out_of_ten(hedging: dict[str, Any]) -> None:
    """p99 from about 4.6 s to about 30 ms, slow share 9.1 % to 0.06 %, p50 unchanged."""
    delay, plain, hedged = hedging["hedge_after"], hedging["plain"], hedging["hedged"]
    assert_quantile(plain.latencies, 0.99, fan_out_quantile(10, 0.99))
    assert_quantile(hedged.latencies, 0.99, fan_out_quantile(10, 0.99, hedge_after=delay))
    assert round(fan_out_quantile(10, 0.99), 1) == 4.6
    assert round(fan_out_quantile(10, 0.99, hedge_after=delay) * 1000) == 30
    assert round(hedged.p99 * 1000) == 29
    for report, hedge in ((plain, None), (hedged, delay)):
        theory = slow_share_theory(10, hedge_after=hedge)
        low, high = fraction_bounds(5000, theory)
        assert low <= report.slow_share <= high
    assert (round(100 * plain.slow_share, 1), round(100 * hedged.slow_share, 2)) == (9.1, 0.06)
    assert round(plain.p50 * 1000, 1) == round(hedged.p50 * 1000, 1) == 14.8


def test_hedging_a_fan_out_of_a_hundred(hedging: dict[str, Any]) -> None:
    """Try it: slow user requests from about 63 % to about 1 %."""
    delay = hedging["hedge_after"]
    for report, hedge in ((hedging["plain100"], None), (hedging["hedged100"], delay)):
        low, high = fraction_bounds(2000, slow_share_theory(100, hedge_after=hedge))
        assert low <= report.slow_share <= high
    assert round(100 * slow_share_theory(100, hedge_after=delay)) == 1


# 4.3 Caching ----------------------------------------------------------------------------------
def test_caching_moves_the_mean_not_the_tail() -> None:
    """90 % hits: mean 5.9 ms, p99 54.6 ms (a miss); 99.5 % hits: p99 0.5 ms (a hit)."""
    miss = 2 * propagation_delay(great_circle_km(40.7128, -74.0060, 51.5074, -0.1278))
    hit = 0.0005
    assert round((0.9 * hit + 0.1 * miss) * 1000, 1) == 5.9
    assert round(miss * 1000, 1) == 54.6
    assert round((0.995 * hit + 0.005 * miss) * 1000, 1) == 0.8


# The "Your turn" checkers ------------------------------------------------------------------------
def timeout_reference(latencies: list[float], false_timeout_rate: float) -> float:
    """What a student writes: the nearest-rank percentile."""
    ordered = sorted(latencies)
    return ordered[math.ceil((1 - false_timeout_rate) * len(ordered) - 1e-9) - 1]


def stub(*args: Any) -> Any:
    raise NotImplementedError


@pytest.mark.parametrize(
    "answer",
    [
        timeout_reference,
        lambda xs, rate: float(np.percentile(xs, 100 * (1 - rate))),
        lambda xs, rate: (
            statistics.quantiles(xs, n=1000)[round((1 - rate) * 1000) - 1]
            if rate == 0.001
            else statistics.quantiles(xs, n=10)[8]
        ),
    ],
    ids=["nearest-rank", "numpy", "statistics"],
)
def test_timeout_checker_accepts_the_usual_percentiles(answer: Any) -> None:
    """Nearest rank, numpy's interpolation and statistics.quantiles all pass."""
    feedback = check_timeout_for(answer)
    assert feedback.passed, feedback.message


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda xs, rate: statistics.fmean(xs), "is the mean latency"),
        (lambda xs, rate: xs[math.ceil((1 - rate) * len(xs)) - 1], "sort them"),
        (lambda xs, rate: max(xs), "slowest latency ever seen"),
        (lambda xs, rate: timeout_reference(xs, 0.01), "more than the 0.1 % you accept"),
        (lambda xs, rate: timeout_reference(xs, rate / 100), "0.001 means 0.1 %"),
        (lambda xs, rate: timeout_reference(xs, rate * 10), "more than the 0.1 % you accept"),
        (lambda xs, rate: timeout_reference(xs, rate / 3), "longer than needed"),
        (lambda xs, rate: str(timeout_reference(xs, rate)), "should return a number"),
    ],
    ids=["mean", "unsorted", "max", "p99", "percent", "too-short", "too-long", "string"],
)
def test_timeout_checker_names_each_mistake(answer: Any, message: str) -> None:
    """Each realistic bug gets its own message, never an exception."""
    feedback = check_timeout_for(answer)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def hedged_reference(first: float, second: float, hedge_after: float) -> float:
    if first <= hedge_after:
        return first
    return min(first, hedge_after + second)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda f, s, d: f if f <= d else min(f, s), "answers then + second"),
        (lambda f, s, d: f if f <= d else d + s, "the earlier answer wins"),
        (lambda f, s, d: f if f < d else d + s, "the earlier answer wins"),
        (lambda f, s, d: f, "answers then + second"),
        (lambda f, s, d: min(f, s), "answers then + second"),
        (lambda f, s, d: s, "no hedge was sent"),
        (lambda f, s, d: None, "should return seconds"),
    ],
    ids=[
        "no-delay",
        "hedge-wins",
        "hedge-wins-strict",
        "never-hedge",
        "min-raw",
        "second",
        "none",
    ],
)
def test_hedge_checker_names_each_mistake(answer: Any, message: str) -> None:
    """Forgetting the delay, the first copy, or the case of no hedge: each is named."""
    feedback = check_hedged_latency(answer)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_checkers_pass_the_reference_and_wait_for_the_stub() -> None:
    """The reference and the one-line min() pass; the untouched stub is 'not done yet'."""
    assert check_hedged_latency(hedged_reference).passed
    assert check_hedged_latency(lambda f, s, d: min(f, d + s)).passed
    assert check_timeout_for(timeout_reference).passed
    assert check_hedged_latency(stub).status == "not_done"
    assert check_timeout_for(stub).status == "not_done"


# Plots, validation, the lesson file ------------------------------------------------------------
def test_plots_label_their_axes_and_use_log_scales_for_tails(
    queues: list[QueueReport], sweep: list[FanOutReport]
) -> None:
    """The hockey stick in ms against %, fan-out and survival plots on log-log axes."""
    ax = plot_hockey_stick(queues)
    assert ax.get_xlabel().endswith("(%)") and ax.get_ylabel() == "time in system (ms)"
    assert len(ax.get_legend().get_texts()) == 4
    plt.close(ax.figure)
    ax = plot_fan_out(sweep)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_ylabel() == "user request latency (ms)"
    plt.close(ax.figure)
    ax = plot_survival({"a": [0.01] * 1500 + [2.0] * 20, "b": [0.02, 0.03]})
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "latency x (ms)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "1 % (the p99)"]
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (lambda: call_graph("ring", requests=1), "shape"),  # type: ignore[arg-type]
        (lambda: call_graph("chain", services=0), "services"),
        (lambda: queue_latency(1.0), "utilisation"),
        (lambda: queue_latency(0.5, service_mean=0), "service_mean"),
        (lambda: fan_out(0), "fanout"),
        (lambda: fan_out(1, hedge_after=-1.0), "hedge_after"),
        (lambda: false_timeout_share(-0.1), "timeout"),
        (lambda: percentile([], 50), "values"),
        (lambda: percentile([1.0], 0), "p must be"),
        (lambda: propagation_delay(-1), "distance_km"),
        (lambda: transmission_delay(10, 0), "bandwidth"),
        (lambda: fan_out_quantile(3, 1.0), "p must be"),
    ],
)
def test_bad_arguments_name_the_parameter(run: Any, name: str) -> None:
    """Every experiment refuses impossible settings with a message naming the parameter."""
    with pytest.raises(ValueError, match=name):
        run()


def test_lesson_asks_each_prediction_before_its_reveal_and_ends_with_its_quiz() -> None:
    """Predictions in order, each alone in its cell; the last code cell shows the quiz."""
    quiz = load_quiz("02_latency")
    assert 4 <= len(quiz.questions) <= 6
    code = lesson_cells(LESSON, "code")
    asked = [c.strip() for c in code if c.strip().startswith("quiz.predict(")]
    assert asked == [f'quiz.predict("02_latency", "{p.id}")' for p in quiz.predictions]
    assert code[-1].strip() == 'quiz.show("02_latency")'
    your_turn = [c for c in code if "# Your turn" in c]
    assert len(your_turn) == 2 and all("raise NotImplementedError" in c for c in your_turn)


def test_the_quizs_numbers_are_the_lessons_arithmetic() -> None:
    """Numeric answers and the figures in options are recomputed here."""
    quiz = load_quiz("02_latency")
    assert quiz.question("shards").answer == pytest.approx(100 * (1 - 0.98**50), abs=0.05)
    assert quiz.question("fan_out_hundred").answer == pytest.approx(
        100 * slow_share_theory(100), abs=0.05
    )
    assert quiz.question("busy_ninety").answer == pytest.approx(1000 / (100 - 90))
    assert round(1000 / (100 - 88)) == 83  # more_traffic
    assert round(20 * (1 + 1 / 2 + 1 / 3 + 1 / 4), 1) == 41.7  # parallel_calls
    assert pytest.approx(4.95) == 0.95 * 1 + 0.05 * 80  # cache_tail


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "c / 1.47 ≈ 204,000 km per second",
        "5,570 km apart",
        "**27.3 ms one way and 54.6 ms for a round trip**",
        "**0.08 ms**",
        "10 MB over 100 Mbit/s takes 800 ms",
        "**36 ms** on average",
        "**20.3 ms**",
        "10 × 12 = 120 ms",
        "= 31.3 ms",
        "At 50 % busy a request spends **20 ms**",
        "at 90 % busy it spends **100 ms**",
        "its p99 is **about 460 ms**",
        "sends 30,000 at 90 %",
        "from 90 % to 99 % busy and its mean from 100 ms to a full second",
        "theory says 200 ms, and this run of 20,000 requests measures 173 ms",
        "answers in **10 ms** and about **1 %**",
        "took 17 s",
        "2 % with two leaves, 9.6 % with ten, and **63 %** with a hundred",
        "**from a fan-out of 69**",
        "(1 − 0.9999²⁰⁰⁰ = 18.1 %)",
        "p99.9 of this leaf is **4.64 s**",
        "the estimate is **3.67 s**",
        "**0.15 %** of healthy leaves",
        "**about 1 %** of healthy requests",
        "p95 is **15.5 ms**",
        "(14.8 ms: most requests never hedge)",
        "**p99 falls from about 4.6 s to about 30 ms**",
        "from 9.1 % to 0.06 %",
        "**extra load: 4.7 % more leaf requests**",
        "from about 63 % to about 1 %",
        "the mean drops to **5.9 ms** but the p99 is still a miss, **54.6 ms**",
    ]:
        assert claim in text, claim
