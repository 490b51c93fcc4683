"""Lesson 01 and its machinery (distlab.lessons.unreliable_networks): the numbers it states.

Each test reruns a call the lesson makes (same arguments, same seed) and checks the
result against the formula the lesson quotes, within 5-sigma bounds so a test cannot
flake yet would catch a wrong rate. ``test_lesson_makes_these_calls`` keeps the two in
step: if the lesson's calls change, it fails until this file follows.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import nbformat
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons.plots import plot_latency_histogram
from distlab.lessons.unreliable_networks import (
    RETRY_DELAY,
    check_execute_once,
    check_merge,
    deliver_with_retries,
    plot_arrivals,
    plot_latency_survival,
    replicated_register,
    send_stream,
)
from distlab.sim.netsim import Delay, Network
from tests import REPO
from tests.theory import fraction_bounds

LESSON = REPO / "lessons" / "01_unreliable_networks.ipynb"

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "net = Network(seed=7, loss=0.2, delay=Delay.uniform(0.010, 0.050), trace=True)",
    "net = Network(seed=8, loss=0.2, delay=Delay.uniform(0.010, 0.050), trace=True)",
    'net.send("client", "server", f"msg {i}", at=i * 0.005)',
    "loss = 0.10\nstream = send_stream(1000, loss=loss, seed=1)",
    "send_stream(1000, loss=0.3, seed=1)",
    "delay = Delay.exponential(0.030, minimum=0.010)",
    "stream = send_stream(10_000, delay=delay, seed=2)",
    "pages = [latencies[i : i + 10] for i in range(0, len(latencies), 10)]",
    "send_stream(10_000, delay=Delay.uniform(0.010, 0.050), seed=2)",
    "send_stream(1000, duplicate=0.05, delay=Delay.uniform(0.010, 0.050), seed=3)",
    "send_stream(1000, duplicate=0.05, delay=0.030, seed=3)",
    "send_stream(40, interval=0.25, delay=0.05, partition=(2.0, 4.0))",
    "deliver_with_retries(2000, max_tries=tries, loss=loss, seed=4)",
    "plain = deliver_with_retries(2000, max_tries=3, seed=4)",
    "keyed = deliver_with_retries(2000, max_tries=3, seed=4, dedup=True)",
    "deliver_with_retries(2000, max_tries=3, seed=4, duplicate=0.05)",
    "replicated_register(20, seed=1)",
    "heavy = send_stream(10_000, delay=Delay.lognormal(0.024, 1.0), seed=2)",
    "plot_latency_survival(",
    "plot_arrivals(stream, first=60)",
    "cut = deliver_with_retries(2000, max_tries=3, seed=4, partition=(2.0, 4.0))",
    "check_execute_once(execute_once)",
    "check_merge(merge)",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    source = "\n".join(cell.source for cell in nbformat.read(LESSON, as_version=4).cells)
    missing = [call for call in CALLS if call not in source]
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def defaults(func: Callable[..., object]) -> dict[str, Any]:
    """Return the default values of ``func``'s parameters."""
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


# Section 1 -------------------------------------------------------------------------------
def eight_messages(seed: int) -> tuple[list[str], int, str]:
    """Run section 1's network; return what the server got, reorderings and the digest."""
    got: list[str] = []
    net = Network(seed=seed, loss=0.2, delay=Delay.uniform(0.010, 0.050), trace=True)
    net.add_node("client", lambda ctx, src, msg: None)
    net.add_node("server", lambda ctx, src, msg: got.append(msg))
    for i in range(8):
        net.send("client", "server", f"msg {i}", at=i * 0.005)
    return got, net.run().reordered, net.digest()


def test_seed_7_loses_and_reorders_and_replays() -> None:
    """Section 1: seed 7 loses some messages and reorders some, the same way every run."""
    got, reordered, digest = eight_messages(7)
    assert len(got) < 8  # "which messages never arrived?"
    assert reordered > 0  # "which ones arrived in a different order?"
    assert eight_messages(7) == (got, reordered, digest)


def test_seed_8_loses_other_messages_with_another_fingerprint() -> None:
    """Section 1, Try it: with seed 8 different messages go missing; the fingerprint changes."""
    lost_7 = {f"msg {i}" for i in range(8)} - set(eight_messages(7)[0])
    lost_8 = {f"msg {i}" for i in range(8)} - set(eight_messages(8)[0])
    assert lost_8 and lost_8 != lost_7
    assert eight_messages(8)[2][:16] != eight_messages(7)[2][:16]


# Section 2 -------------------------------------------------------------------------------
@pytest.mark.parametrize(("loss", "stated"), [(0.10, 0.90), (0.3, 0.70)])
def test_about_one_minus_loss_arrive(loss: float, stated: float) -> None:
    """Section 2: with 10 % (30 %) loss about 90 % (70 %) arrive, i.e. 1 - p."""
    assert 1 - loss == pytest.approx(stated)
    low, high = fraction_bounds(1000, 1 - loss)
    assert low <= send_stream(1000, loss=loss, seed=1).arrived_fraction <= high


@pytest.mark.parametrize("seed", range(5))
def test_without_loss_everything_arrives(seed: int) -> None:
    """Section 2, Try it: loss 0 delivers all 1000 messages for every seed."""
    assert send_stream(1000, loss=0.0, seed=seed).distinct == 1000


# Section 3 -------------------------------------------------------------------------------
def exponential_quantile(q: float, mean: float = 0.030, minimum: float = 0.010) -> float:
    """Return the q-quantile of the lesson's shifted exponential delay."""
    return minimum - (mean - minimum) * math.log(1 - q)


def test_latency_mean_median_and_p99_match_theory() -> None:
    """Section 3: mean 30 ms, p50 = 10 + 20 ln 2 ~ 23.9 ms, p99 = 10 + 20 ln 100 ~ 102 ms."""
    n, scale = 10_000, 0.020
    summary = send_stream(n, delay=Delay.exponential(0.030, minimum=0.010), seed=2).stats.latency()
    assert round(exponential_quantile(0.5) * 1000, 1) == 23.9
    assert round(exponential_quantile(0.99) * 1000) == 102
    assert abs(summary.mean - 0.030) <= 5 * scale / math.sqrt(n)
    # Standard error of a sample quantile: sqrt(q (1 - q) / n) / density at the quantile.
    for q, value in [(0.5, summary.p50), (0.99, summary.p99)]:
        se = scale * math.sqrt(q / ((1 - q) * n))
        assert abs(value - exponential_quantile(q)) <= 5 * se
    assert summary.p99 > 3 * summary.mean  # "more than three times the mean"


def test_about_one_page_in_ten_hits_the_tail() -> None:
    """Section 3: a page waiting for 10 services is slower than p99 with p = 1 - 0.99^10."""
    theory = 1 - 0.99**10
    assert round(theory * 100, 1) == 9.6
    stream = send_stream(10_000, delay=Delay.exponential(0.030, minimum=0.010), seed=2)
    latencies = stream.stats.latencies
    p99 = stream.stats.latency().p99
    pages = [latencies[i : i + 10] for i in range(0, len(latencies), 10)]
    slow_pages = sum(max(page) > p99 for page in pages) / len(pages)
    low, high = fraction_bounds(len(pages), theory)
    assert low <= slow_pages <= high


def test_latency_histogram_marks_mean_p50_and_p99_in_milliseconds() -> None:
    """Section 3's plot: every message counted, axes in ms, lines at about 30, 24 and 100 ms."""
    stats = send_stream(10_000, delay=Delay.exponential(0.030, minimum=0.010), seed=2).stats
    summary = stats.latency()
    ax = plot_latency_histogram(
        stats.latencies, marks={"mean": summary.mean, "p50": summary.p50, "p99": summary.p99}
    )
    try:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("one-way latency (ms)", "messages")
        assert sum(bar.get_height() for bar in ax.patches) == 10_000
        assert [line.get_label() for line in ax.get_lines()] == [
            "mean = 30 ms",
            "p50 = 24 ms",
            "p99 = 103 ms",
        ]
    finally:
        plt.close(ax.figure)


def test_exponential_delay_is_never_below_its_minimum() -> None:
    """Section 3: never faster than the 10 ms minimum, and the slowest far above p99."""
    stats = send_stream(10_000, delay=Delay.exponential(0.030, minimum=0.010), seed=2).stats
    assert min(stats.latencies) >= 0.010
    assert stats.latency().max > stats.latency().p99


def test_uniform_delay_has_no_tail() -> None:
    """Section 3, Try it: uniform 10-50 ms has the same 30 ms mean, p99 < 50 ms, max <= 50."""
    n, sd = 10_000, 0.040 / math.sqrt(12)
    summary = send_stream(n, delay=Delay.uniform(0.010, 0.050), seed=2).stats.latency()
    assert abs(summary.mean - 0.030) <= 5 * sd / math.sqrt(n)
    # Theory: p99 = 10 + 0.99 * 40 = 49.6 ms, with a standard error of about 0.04 ms.
    assert 0.049 <= summary.p99 < 0.050
    assert summary.max <= 0.050


# Sections 4 to 8: the settings the prose states are the functions' defaults ---------------
def test_defaults_are_the_settings_the_prose_states() -> None:
    """Sections 4, 6 and 8: 10 ms between messages, 10 % loss, a 200 ms timeout above the
    longest round trip of 2 x 50 ms, and 20 writes 10 ms apart."""
    assert defaults(send_stream)["interval"] == 0.010
    retry = defaults(deliver_with_retries)
    assert (retry["loss"], retry["timeout"], retry["interval"]) == (0.10, 0.200, 0.010)
    assert retry["delay"] is RETRY_DELAY
    assert RETRY_DELAY.name == "uniform(0.01, 0.05)"
    assert retry["timeout"] > 2 * 0.050
    register = defaults(replicated_register)
    assert (register["writes"], register["interval"]) == (20, 0.010)


# Section 4 -------------------------------------------------------------------------------
def test_about_fifty_duplicates_and_some_reordering() -> None:
    """Section 4: 5 % of 1000 duplicated (about 50); a variable delay reorders some."""
    stream = send_stream(1000, duplicate=0.05, delay=Delay.uniform(0.010, 0.050), seed=3)
    low, high = fraction_bounds(1000, 0.05)
    assert low <= stream.stats.duplicated / 1000 <= high
    assert len(stream.arrivals) == 1000 + stream.stats.duplicated
    assert stream.stats.reordered > 0


def test_constant_delay_duplicates_but_never_reorders() -> None:
    """Section 4, Try it: a constant delay gives 0 reordered, about 50 still duplicated."""
    stats = send_stream(1000, duplicate=0.05, delay=0.030, seed=3).stats
    assert stats.reordered == 0
    low, high = fraction_bounds(1000, 0.05)
    assert low <= stats.duplicated / 1000 <= high


# Section 5 -------------------------------------------------------------------------------
def test_partition_drops_exactly_the_eight_messages_in_its_window() -> None:
    """Section 5: (4 - 2) / 0.25 = 8 messages, numbers 8 to 15, are dropped."""
    stream = send_stream(40, interval=0.25, delay=0.05, partition=(2.0, 4.0))
    assert stream.count * 0.25 == 10.0  # "a message every 0.25 s for 10 s"
    assert (4.0 - 2.0) / 0.25 == 8
    assert sorted(set(range(40)) - set(stream.arrivals)) == list(range(8, 16))
    assert stream.stats.dropped == {"loss": 0, "partition": 8, "crashed": 0}


# Sections 6 and 7 ------------------------------------------------------------------------
@pytest.mark.parametrize(("tries", "stated"), [(1, 0.90), (2, 0.99), (3, 0.999), (4, 0.9999)])
def test_retries_deliver_one_minus_p_to_the_k(tries: int, stated: float) -> None:
    """Section 6: with k tries a request arrives with probability 1 - 0.1^k (90 %, 99.9 %)."""
    theory = 1 - 0.1**tries
    assert theory == pytest.approx(stated)
    low, high = fraction_bounds(2000, theory)
    report = deliver_with_retries(2000, max_tries=tries, loss=0.10, seed=4)
    assert low <= report.delivered_fraction <= high


def test_three_nines_of_two_thousand_is_about_two_missing() -> None:
    """Section 6: 99.9 % of 2000 leaves about 2 requests undelivered on average."""
    expected = 2000 * 0.1**3
    assert round(expected, 9) == 2
    report = deliver_with_retries(2000, max_tries=3, loss=0.10, seed=4)
    assert report.requests - report.delivered <= expected + 5 * math.sqrt(expected)


def extra_execution_distribution(loss: float, tries: int) -> dict[int, float]:
    """Return P(extra executions = k) for one request (executions - delivered).

    Each attempt ends one of three ways: the request is lost (p), it is executed but the
    ack is lost ((1 - p) p), or it is executed and acknowledged ((1 - p)^2, no retry).
    """
    outcomes: dict[int, float] = {}

    def walk(attempt: int, executed: int, prob: float) -> None:
        if attempt == tries:
            extra = max(executed - 1, 0)
            outcomes[extra] = outcomes.get(extra, 0.0) + prob
            return
        walk(attempt + 1, executed, prob * loss)
        walk(attempt + 1, executed + 1, prob * (1 - loss) * loss)
        extra = executed  # this attempt executes and is acknowledged: executed + 1 - 1
        outcomes[extra] = outcomes.get(extra, 0.0) + prob * (1 - loss) ** 2

    walk(0, 0, 1.0)
    return outcomes


def extra_execution_moments(loss: float, tries: int) -> tuple[float, float]:
    """Return mean and variance of double charges per request."""
    outcomes = extra_execution_distribution(loss, tries)
    mean = sum(k * p for k, p in outcomes.items())
    variance = sum((k - mean) ** 2 * p for k, p in outcomes.items())
    return mean, variance


def test_about_ten_percent_double_charges_without_a_key() -> None:
    """Section 7: 0.9 (1 + 0.19 + 0.19^2) - 0.999 ~ 10 % of payments are charged twice."""
    mean, variance = extra_execution_moments(0.1, 3)
    assert mean == pytest.approx(0.9 * (1 + 0.19 + 0.19**2) - (1 - 0.1**3))
    assert round(0.9 * (1 + 0.19 + 0.19**2), 3) == 1.103
    assert round(mean, 2) == 0.10
    report = deliver_with_retries(2000, max_tries=3, seed=4)
    bound = 5 * math.sqrt(variance / 2000)
    assert abs(report.extra_executions / report.requests - mean) <= bound


def test_a_rare_few_are_charged_three_times() -> None:
    """Section 7: charged three times (two extra) with p = 0.09^2 x 0.9 ~ 0.7 %: a rare few."""
    distribution = extra_execution_distribution(0.1, 3)
    assert sum(distribution.values()) == pytest.approx(1)
    assert distribution[2] == pytest.approx(0.09**2 * 0.9)
    assert round(distribution[2] * 100, 1) == 0.7
    assert max(distribution) == 2  # never more with 3 tries


def test_idempotency_key_removes_double_charges() -> None:
    """Section 7: with the key double charges are exactly 0 and deliveries unchanged."""
    plain = deliver_with_retries(2000, max_tries=3, seed=4)
    keyed = deliver_with_retries(2000, max_tries=3, seed=4, dedup=True)
    assert keyed.extra_executions == 0
    assert keyed.executed == keyed.delivered == plain.delivered
    assert plain.extra_executions > 0


def test_network_duplicates_charge_twice_even_without_retries() -> None:
    """Section 7, Try it: with one try, duplicate=0.05 double-charges (1 - 0.1) x 0.05 = 4.5 %."""
    report = deliver_with_retries(2000, max_tries=1, seed=4, duplicate=0.05)
    assert report.attempts == 2000
    low, high = fraction_bounds(2000, 0.9 * 0.05)
    assert low <= report.extra_executions / report.requests <= high


def test_network_duplicates_add_double_charges_unless_keyed() -> None:
    """Section 7, Try it: duplicate=0.05 raises double charges; with the key they stay 0."""
    plain = deliver_with_retries(2000, max_tries=3, seed=4)
    duplicated = deliver_with_retries(2000, max_tries=3, seed=4, duplicate=0.05)
    keyed = deliver_with_retries(2000, max_tries=3, seed=4, duplicate=0.05, dedup=True)
    assert duplicated.extra_executions > plain.extra_executions
    assert keyed.extra_executions == 0


# Section 8 -------------------------------------------------------------------------------
def test_replicas_get_every_write_yet_disagree_with_seed_1() -> None:
    """Section 8: seed 1, both replicas apply all 20 writes; b ends on 19, overtaken by 20."""
    replicas = replicated_register(20, seed=1)
    for name in ("a", "b"):
        assert sorted(replicas.applied[name]) == list(range(1, 21))
    assert replicas.final == {"a": 20, "b": 19}
    assert replicas.applied["b"][-2:] == [20, 19]
    assert not replicas.agree


def test_replicas_agree_with_seed_0() -> None:
    """Section 8, Try it: with seed 0 the two replicas happen to agree."""
    assert replicated_register(20, seed=0).agree


# --- the experiments themselves: pure, seeded, validated ----------------------------


def test_same_arguments_same_reports() -> None:
    """Every experiment is a pure function of its arguments."""
    assert send_stream(300, loss=0.2, duplicate=0.1, delay=Delay.uniform(0, 0.1), seed=5) == (
        send_stream(300, loss=0.2, duplicate=0.1, delay=Delay.uniform(0, 0.1), seed=5)
    )
    first = deliver_with_retries(300, seed=5)
    again = deliver_with_retries(300, seed=5)
    assert (first.attempts, first.executed, first.acknowledged) == (
        again.attempts,
        again.executed,
        again.acknowledged,
    )
    assert replicated_register(seed=5) == replicated_register(seed=5)


def test_different_seeds_lose_different_messages() -> None:
    """Another seed loses another set of messages."""
    assert (
        send_stream(300, loss=0.3, seed=1).arrivals != send_stream(300, loss=0.3, seed=2).arrivals
    )


def test_stream_without_faults_arrives_in_order() -> None:
    """A constant delay and no loss deliver every message once, in order."""
    stream = send_stream(100, delay=0.05)
    assert stream.arrivals == list(range(100))
    assert stream.arrived_fraction == 1.0


def test_one_try_never_retries() -> None:
    """max_tries=1 sends each request exactly once and never executes one twice."""
    report = deliver_with_retries(500, max_tries=1, loss=0.3, seed=2)
    assert report.attempts == 500
    assert report.extra_executions == 0
    assert report.executed == report.delivered < 500


def test_lossless_network_with_long_timeout_needs_no_retry() -> None:
    """Without loss every request is executed once and acknowledged on the first try."""
    report = deliver_with_retries(500, loss=0.0, seed=2)
    assert (report.attempts, report.delivered, report.executed, report.acknowledged) == (
        500,
        500,
        500,
        500,
    )


@pytest.mark.parametrize("dedup", [False, True])
def test_timeout_shorter_than_round_trip_retries_slow_requests(dedup: bool) -> None:
    """A 10 ms timeout with a 20 ms minimum round trip uses all 3 tries, loss or not.

    Try k leaves at 10 (k - 1) ms and its timer fires 10 ms later; the first ack comes
    back after more than 20 ms, so tries 2 and 3 always go out before it arrives.
    """
    report = deliver_with_retries(
        200, loss=0.0, timeout=0.01, max_tries=3, delay=Delay.uniform(0.01, 0.05), dedup=dedup
    )
    assert report.attempts == 3 * 200
    assert (report.delivered, report.acknowledged) == (200, 200)
    assert report.executed == (200 if dedup else 3 * 200)


def test_partitioned_replica_misses_the_writes_of_the_window() -> None:
    """Replica b misses exactly the writes sent while it is cut off."""
    replicas = replicated_register(40, interval=0.25, delay=0.05, partition=(2.0, 4.0))
    assert replicas.missed("b") == list(range(9, 17))
    assert replicas.missed("a") == []
    assert replicas.final == {"a": 40, "b": 40}


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: send_stream(0), "count"),
        (lambda: send_stream(10, interval=0), "interval"),
        (lambda: send_stream(10, loss=1.5), "loss"),
        (lambda: send_stream(10, partition=(1.0,)), "partition"),  # type: ignore[arg-type]
        (lambda: send_stream(10, partition=(math.nan, 1.0)), "partition"),
        (lambda: send_stream(10, interval=math.inf), "interval"),
        (lambda: deliver_with_retries(0), "requests"),
        (lambda: deliver_with_retries(10, max_tries=0), "max_tries"),
        (lambda: deliver_with_retries(10, timeout=-1), "timeout"),
        (lambda: deliver_with_retries(10, duplicate=-0.1), "duplicate"),
        (lambda: replicated_register(0), "writes"),
        (lambda: replicated_register(5, partition=(3.0, 1.0)), "heal"),
    ],
)
def test_bad_arguments_name_the_parameter(call: Any, name: str) -> None:
    """Out-of-range arguments raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        call()


# Heavy tails, the reordering plot -----------------------------------------------------------
def test_log_normal_has_the_same_median_and_a_heavier_tail() -> None:
    """Section 3: median 24 ms for both; p99 about 246 ms (10.2 × median, 2.4 × exponential)."""
    exponential = Delay.exponential(0.030, minimum=0.010)
    lognormal = Delay.lognormal(0.024, 1.0)
    # theory: the exponential's p99/p50 is about 4.3; the log-normal's e^(2.326 sigma) about 10
    assert round(exponential.quantile(0.99) / exponential.quantile(0.5), 1) == 4.3
    assert lognormal.quantile(0.99) / lognormal.quantile(0.5) == pytest.approx(
        math.exp(2.3263), rel=1e-3
    )
    light = send_stream(10_000, delay=exponential, seed=2).stats.latency()
    heavy = send_stream(10_000, delay=lognormal, seed=2).stats.latency()
    for summary, delay in [(light, exponential), (heavy, lognormal)]:
        # the empirical quantiles sit where the distribution puts them (5-sigma in rank)
        for q, value in [(0.5, summary.p50), (0.99, summary.p99)]:
            low, high = fraction_bounds(10_000, q)
            assert delay.cdf(value) == pytest.approx(q, abs=max(q - low, high - q))
    assert round(heavy.p50 * 1000) == 24
    assert round(lognormal.quantile(0.99) * 1000) == 246  # theory: 24 ms x e^2.326
    assert round(heavy.p99 * 1000) == 245
    assert round(heavy.p99 / heavy.p50, 1) == 10.2
    assert round(heavy.p99 / light.p99, 1) == 2.4
    assert round(heavy.max, 1) == 1.1  # "its slowest message takes about a second"


def test_survival_plot_is_log_log_with_a_curve_per_sample() -> None:
    """The survival plot: log axes, labelled in ms, one line per sample plus the marks."""
    a = send_stream(2000, delay=Delay.exponential(0.03, minimum=0.01), seed=2).stats.latencies
    b = send_stream(2000, delay=Delay.lognormal(0.024, 1.0), seed=2).stats.latencies
    ax = plot_latency_survival({"a": a, "b": b}, marks={"p99 a": 0.1})
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "one-way latency (ms, log scale)"
    assert ax.get_ylabel() == "share of messages slower (log scale)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b", "p99 a"]
    line = ax.get_lines()[0]
    ys = list(line.get_ydata())
    assert ys == sorted(ys, reverse=True) and min(ys) > 0  # a survival curve never rises
    assert max(line.get_xdata()) == pytest.approx(sorted(a)[-2] * 1000)  # the tail is kept whole
    plt.close(ax.figure)


def test_arrivals_plot_marks_what_the_stats_count() -> None:
    """Overtaken and duplicate markers agree with the network's reordered and duplicated counts."""
    stream = send_stream(1000, duplicate=0.05, delay=Delay.uniform(0.010, 0.050), seed=3)
    ax = plot_arrivals(stream, first=len(stream.arrivals))
    counts = {c.get_label(): len(c.get_offsets()) for c in ax.collections}
    assert counts["duplicate"] == stream.stats.duplicated == 47
    # the network also counts a second copy that arrives after a later message as reordered
    highest, late_copies, seen = -1, 0, set()
    for message in stream.arrivals:
        late_copies += message in seen and message < highest
        seen.add(message)
        highest = max(highest, message)
    assert counts["overtaken"] + late_copies == stream.stats.reordered
    assert sum(counts.values()) == len(stream.arrivals)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "y = x" in labels
    plt.close(ax.figure)


# Retries: luck, partitions, load ---------------------------------------------------------------
def test_seed_4_shows_100_percent_which_happens_one_time_in_seven() -> None:
    """Section 6: P(no loss among 2000 at 0.1 %) = 0.999^2000 = 13.5 %; seed 4 is such a run."""
    assert round(0.999**2000, 3) == round(math.exp(-2), 3) == 0.135
    report = deliver_with_retries(2000, max_tries=3, loss=0.10, seed=4)
    assert report.delivered == 2000
    shown = sum(
        deliver_with_retries(2000, max_tries=3, seed=s).delivered == 2000 for s in range(40)
    )
    low, high = fraction_bounds(40, 0.999**2000)
    assert low * 40 <= shown <= high * 40


def test_a_partition_defeats_three_tries_200_ms_apart() -> None:
    """Section 6: only the requests in the partition's last 0.4 s get a try after it heals."""
    cut = deliver_with_retries(2000, max_tries=3, seed=4, partition=(2.0, 4.0))
    assert cut.delivered_share(0.0, 2.0) == 1.0
    assert cut.delivered_share(2.0, 3.6 - 1e-9) == 0.0  # every try falls inside the cut
    assert round(cut.delivered_share(2.0, 4.0), 3) == 0.195
    assert round(cut.delivered_share(3.6, 4.0), 3) == 0.975
    assert round(cut.delivered_share(4.0, 20.0), 3) == 0.998
    # the share is bounded by the last 0.4 s of the 2 s window
    assert cut.delivered_share(2.0, 4.0) <= 0.4 / 2.0
    # 11 tries span 2 s: enough to outlast it (1 - 0.1 for the try that lands after it)
    eleven = deliver_with_retries(2000, max_tries=11, seed=4, partition=(2.0, 4.0))
    assert eleven.delivered_share(2.0, 4.0) >= 0.9
    assert (
        deliver_with_retries(2000, max_tries=10, seed=4, partition=(2.0, 4.0)).delivered_share(
            2.0, 2.01
        )
        == 0.0
    )


def test_delivered_share_refuses_an_empty_window() -> None:
    """A window in which no request started is a ValueError."""
    with pytest.raises(ValueError, match="no request started"):
        deliver_with_retries(10, seed=1).delivered_share(5.0, 6.0)


# "Your turn" checkers ---------------------------------------------------------------------------
def reference_execute_once(request_id: int, execute: Any, done: dict[int, Any]) -> Any:
    """The answer the lesson expects."""
    if request_id not in done:
        done[request_id] = execute()
    return done[request_id]


_GLOBAL_DONE: dict[int, Any] = {}


def _no_memory(request_id: int, execute: Any, done: dict[int, Any]) -> Any:
    return execute()


def _none_for_repeats(request_id: int, execute: Any, done: dict[int, Any]) -> Any:
    if request_id in done:
        return None
    done[request_id] = execute()
    return done[request_id]


def _a_global_dict(request_id: int, execute: Any, done: dict[int, Any]) -> Any:
    if request_id not in _GLOBAL_DONE:
        _GLOBAL_DONE[request_id] = execute()
    return _GLOBAL_DONE[request_id]


def _forgets_the_result(request_id: int, execute: Any, done: dict[int, Any]) -> Any:
    if request_id not in done:
        execute()
        done[request_id] = True
    return done[request_id]


EXECUTE_ONCE_BUGS = {
    "no memory": (_no_memory, "the retry of request 7 was executed again"),
    "None for a repeat": (_none_for_repeats, "should get the first answer again"),
    "a global dict": (_a_global_dict, "not in a global variable"),
    "forgets the result": (_forgets_the_result, "return what execute() returned"),
}


def test_execute_once_checker_passes_the_reference_answer() -> None:
    """The expected function passes and reports the lesson's payments."""
    feedback = check_execute_once(reference_execute_once)
    assert feedback.passed, feedback.message
    assert "2000 of 2000 payments delivered, 2000 charged, 0 charged twice" in feedback.message


@pytest.mark.parametrize("bug", sorted(EXECUTE_ONCE_BUGS), ids=str)
def test_execute_once_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake gets its own message."""
    _GLOBAL_DONE.clear()
    func, message = EXECUTE_ONCE_BUGS[bug]
    feedback = check_execute_once(func)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_execute_once_by_the_student_equals_the_built_in_key() -> None:
    """deliver_with_retries with the reference execute_once matches dedup=True."""
    keyed = deliver_with_retries(2000, max_tries=3, seed=4, dedup=True)
    mine = deliver_with_retries(2000, max_tries=3, seed=4, execute_once=reference_execute_once)
    assert (mine.delivered, mine.executed, mine.extra_executions) == (
        keyed.delivered,
        keyed.executed,
        0,
    )


def reference_merge(current: Any, write: Any) -> Any:
    """The answer the lesson expects."""
    if current is None or write[0] > current[0]:
        return write
    return current


MERGE_BUGS = {
    "latest arrival": (lambda current, write: write, "keep (3, 'teal'), the higher sequence"),
    "compares values": (
        lambda current, write: (
            write if current is None else max(current, write, key=lambda w: w[1])
        ),
        "compare the sequence numbers, not the values",
    ),
    "forgets None": (
        lambda current, write: write if write[0] > current[0] else current,
        "the first write arrives when the replica holds nothing yet",
    ),
    "returns the value": (
        lambda current, write: (write if current is None or write[0] > current[0] else current)[1],
        "merge(None, (1, 'blue')) should keep (1, 'blue'), got 'blue'",
    ),
}


def test_merge_checker_passes_the_reference_answer_and_max() -> None:
    """The expected rule passes, and so does max() on (seq, value) tuples."""
    feedback = check_merge(reference_merge)
    assert feedback.passed, feedback.message
    assert "for all 20 of 20 seeds" in feedback.message
    assert check_merge(lambda current, write: write if current is None else max(current, write))


@pytest.mark.parametrize("bug", sorted(MERGE_BUGS), ids=str)
def test_merge_checker_names_each_realistic_bug(bug: str) -> None:
    """Each mistake gets its own message."""
    func, message = MERGE_BUGS[bug]
    feedback = check_merge(func)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_checkers_report_the_untouched_stubs() -> None:
    """The lesson's stubs are "not done yet"."""

    def stub(*args: Any) -> Any:
        raise NotImplementedError

    assert check_execute_once(stub).status == "not_done"
    assert check_merge(stub).status == "not_done"


def test_a_sequence_number_makes_the_replicas_agree_for_every_seed() -> None:
    """Section 8: with the merge rule both replicas end with 20, whatever the order."""
    for seed in range(20):
        replicas = replicated_register(20, seed=seed, merge=reference_merge)
        assert replicas.final == {"a": 20, "b": 20}


# The lesson file: predictions, "Your turn", quiz, prose ------------------------------------------
def _cells() -> list[Any]:
    return list(nbformat.read(LESSON, as_version=4).cells)


def _code() -> list[str]:
    return [c.source for c in _cells() if c.cell_type == "code"]


def _markdown() -> str:
    return "\n".join(c.source for c in _cells() if c.cell_type == "markdown")


PREDICTIONS = {
    "arrived_share": "stream = send_stream(1000, loss=loss, seed=1)",
    "heavy_tail_p99": "heavy = send_stream(10_000, delay=Delay.lognormal(0.024, 1.0), seed=2)",
    "retries_in_partition": "cut = deliver_with_retries(",
    "double_charges": "plain = deliver_with_retries(2000, max_tries=3, seed=4)",
}


def test_each_prediction_comes_right_before_the_cell_that_reveals_it() -> None:
    """quiz.predict(...) is a cell of its own, and the next code cell reveals the answer."""
    code = _code()
    quiz = load_quiz("01_unreliable_networks")
    assert sorted(PREDICTIONS) == sorted(p.id for p in quiz.predictions)
    for prediction, reveal in PREDICTIONS.items():
        call = f'quiz.predict("01_unreliable_networks", "{prediction}")'
        index = next(i for i, source in enumerate(code) if call in source)
        assert code[index].strip() == call
        assert reveal in code[index + 1], (prediction, code[index + 1][:80])


def test_prediction_and_quiz_answers_match_what_the_lesson_measures() -> None:
    """Numeric answers agree with the runs and the formulas."""
    quiz = load_quiz("01_unreliable_networks")
    arrived = send_stream(1000, loss=0.10, seed=1).arrived_fraction * 100
    share = quiz.prediction("arrived_share")
    assert share.answer is not None and abs(arrived - share.answer) <= share.tolerance
    double = quiz.prediction("double_charges")
    extra = deliver_with_retries(2000, max_tries=3, seed=4).extra_executions
    assert double.answer is not None and abs(extra - double.answer) <= double.tolerance
    assert quiz.question("retries_delivery").answer == round(100 * (1 - 0.2**3), 1)
    assert quiz.question("tail_fan_out").answer == round(100 * (1 - 0.99**20))


def test_your_turn_cells_call_their_checkers_on_a_stub() -> None:
    """Two "Your turn" cells, each a stub handed to its checker on the last line."""
    turns = [source for source in _code() if "# Your turn" in source]
    assert [source.strip().splitlines()[-1] for source in turns] == [
        "check_execute_once(execute_once)",
        "check_merge(merge)",
    ]
    assert all("raise NotImplementedError" in source for source in turns)


def test_lesson_ends_with_its_quiz() -> None:
    """The last code cell shows the lesson's quiz, which has 4 to 6 questions."""
    assert _code()[-1].strip() == 'quiz.show("01_unreliable_networks")'
    assert 4 <= len(load_quiz("01_unreliable_networks").questions) <= 6


def test_lesson_prose_quotes_the_computed_numbers_and_corrected_facts() -> None:
    """The numbers the prose states (checked above) and the facts issue 8 corrected."""
    text = _markdown()
    for claim in [
        "**about 90 % of the messages arrive**",
        "its p99 is about 4.3 times its median (102 ms against 24 ms)",
        "the log-normal's p99 is about 246 ms, 10.2 times its median "
        "and 2.4 times the exponential's p99",
        "0.999²⁰⁰⁰ ≈ e⁻² ≈ 13.5 %",
        "here seed 4 shows 100 %",
        "Only 19.5 % of the requests that start during the partition get through",
        "(97.5 % of those get through",
        "It would take 11 tries 200 ms apart",
        "3 × 3 × 3 = 27 calls",
        "**about 50 messages arrive twice**",
        "(4 − 2) / 0.25 = **8 messages**, numbers 8 to 15",
        "≈ 1.103 times on average",
        "**about one payment in ten is charged twice**",
        "Reordered is then exactly 0",
    ]:
        assert claim in text, claim
    # TCP, the end-to-end argument, where duplicates come from, LWW: issue 8, section 4
    assert "Doesn't TCP fix all this?" in text and "end-to-end argument" in text
    assert "Routers do not invent copies" in text and "a router retransmits" not in text
    assert "last writer wins" in text and "Lesson 03 (data consistency)" in text
    assert "cheap insurance" not in text
    assert "may well show 100 %" not in text
    assert "Lesson 02 (latency)" in text and "lesson 04, fault tolerance" in text
    assert "labrpc" not in text  # lesson 00 says what labrpc is; no "much like this one"
