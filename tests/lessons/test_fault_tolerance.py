"""The numbers lesson 04 (fault tolerance) states, recomputed and checked against theory.

Each experiment runs with the lesson's own arguments; the seeded values the prose quotes
are checked exactly, and against theory with 5-sigma bounds.
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons.fault_tolerance import (
    SLOW_NETWORK,
    AvailabilityReport,
    HeartbeatDetector,
    RecoveryReport,
    catch_up,
    catch_up_theory,
    check_fencing,
    check_full_jitter,
    check_replicated_availability,
    detection_delays,
    failover,
    false_suspicion_rate,
    false_suspicions,
    heartbeat_arrivals,
    plot_catch_up,
    plot_detector_tradeoff,
    plot_retry_load,
    recovering_server,
    retry_amplification,
    simulate_availability,
)
from distlab.patterns.retry import (
    constant,
    decorrelated_jitter,
    equal_jitter,
    exponential,
    full_jitter,
)
from distlab.sim.netsim import Network
from tests import REPO
from tests.lessons import lesson_cells, missing_calls
from tests.theory import binomial_bounds

LESSON = REPO / "lessons" / "04_fault_tolerance.ipynb"
STRATEGIES = [
    constant(0),
    exponential(0.1, 10),
    full_jitter(0.1, 10),
    equal_jitter(0.1, 10),
    decorrelated_jitter(0.1, 10),
]

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "r = simulate_availability(n, availability=0.9, seed=1)",
    "shared = simulate_availability(3, availability=0.9, shared=0.99, seed=1)",
    "arrivals = heartbeat_arrivals(count=20_000, interval=1.0, seed=2)",
    "for timeout in (1.2, 1.5, 2.0, 2.5):",
    "delays = detection_delays(timeout, trials=200, seed=3)",
    'r = failover(fault="crash", timeout=timeout, seed=1)',
    'split = failover(fault="partition", seed=1)',
    'r = failover(fault="partition", guard=guard, seed=1)',
    'crash = failover(fault="crash", guard="lease", seed=1)',
    'quick = failover(fault="partition", timeout=0.3, seed=1)',
    "row = [recovering_server(b, seed=seed) for b in strategies[1:]]",
    "longer = catch_up(120, retained=20_000)",
    "runs = [recovering_server(backoff, seed=1) for backoff in strategies]",
    "layered = retry_amplification(layers=3, tries=3, requests=100)",
    "top_only = retry_amplification(layers=3, tries=3, retry_layers=[0], requests=100)",
    "budgeted = retry_amplification(layers=3, tries=3, budget=0.1, requests=1000)",
    "reports = [catch_up(downtime) for downtime in (10, 40, 60, 120)]",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


# 1. Redundancy --------------------------------------------------------------------------------
def _all_down_integral(n: int, p: float, k: float, extra: float = 0.0) -> float:
    """Integral over t of Cov(D(0), D(t)) e^(-extra t), D = all n two-state replicas down.

    Each replica is down with probability p and its state decorrelates at rate
    k = 1/MTTF + 1/MTTR, so E[X(0) X(t)] = p^2 + p(1 - p) e^(-k t). For n independent
    replicas Cov(D(0), D(t)) = (p^2 + p(1 - p) e^(-k t))^n - p^(2n); expanding the power,
    its integral is sum_j C(n, j) p^(2(n-j)) (p(1-p))^j / (j k + extra).
    """
    return sum(
        math.comb(n, j) * p ** (2 * (n - j)) * (p * (1 - p)) ** j / (j * k + extra)
        for j in range(1, n + 1)
    )


def availability_sd(report: AvailabilityReport, mttr: float = 1.0) -> float:
    """The standard deviation of a measured availability over ``report.hours``.

    The time average of a stationary indicator U over T has variance about
    (2 / T) x the integral of its autocovariance. Without a shared dependency U is
    1 - D; with one (up a_s, decorrelating at k_s), U = (1 - S)(1 - D) and the
    autocovariance is a_s^2 Cov_D + a_r^2 c_s e^(-k_s t) + c_s e^(-k_s t) Cov_D, with
    c_s = a_s (1 - a_s) and a_r = 1 - p^n.
    """
    a = report.replica_availability
    p, n = 1 - a, report.replicas
    k = 1 / (mttr * a / (1 - a)) + 1 / mttr
    if report.shared is None:
        integral = _all_down_integral(n, p, k)
    else:
        a_s = report.shared
        k_s = 1 / (mttr * a_s / (1 - a_s)) + 1 / mttr
        c_s = a_s * (1 - a_s)
        a_r = 1 - p**n
        integral = (
            a_s**2 * _all_down_integral(n, p, k)
            + a_r**2 * c_s / k_s
            + c_s * _all_down_integral(n, p, k, extra=k_s)
        )
    return math.sqrt(2 * integral / report.hours)


@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_independent_replicas_follow_the_arithmetic(replicas: int) -> None:
    """1 - (1 - a)^n within 5 standard deviations of the simulated availability."""
    report = simulate_availability(replicas, availability=0.9, seed=1)
    assert report.theory == pytest.approx(1 - 0.1**replicas)
    assert abs(report.availability - report.theory) <= 5 * availability_sd(report)


def test_the_quoted_availabilities() -> None:
    """90.1 %, 99.0 %, 99.90 %; 865, 91 and 8.7 hours a year; 304 outages."""
    reports = [simulate_availability(n, availability=0.9, seed=1) for n in (1, 2, 3)]
    assert [round(100 * r.availability, 1) for r in reports] == [90.1, 99.0, 99.9]
    assert round(100 * reports[2].availability, 2) == 99.90
    assert [round(r.downtime_hours_per_year) for r in reports[:2]] == [865, 91]
    assert round(reports[2].downtime_hours_per_year, 1) == 8.7
    assert reports[2].outages == 304
    assert round(0.1 * 365) == 36  # "down 36 days a year"


def test_a_shared_dependency_caps_the_replicas() -> None:
    """98.83 % measured, 98.90 % theory (0.999 x 0.99), against the 99.90 % promised."""
    shared = simulate_availability(3, availability=0.9, shared=0.99, seed=1)
    assert shared.independent_theory == pytest.approx(0.999)
    assert shared.theory == pytest.approx(0.999 * 0.99)
    assert abs(shared.availability - shared.theory) <= 5 * availability_sd(shared)
    assert round(100 * shared.availability, 2) == 98.83
    assert round(100 * shared.theory, 2) == 98.90
    assert round((1 - shared.theory) / (1 - shared.independent_theory)) == 11  # "eleven times"


def test_availability_sd_is_right_on_one_replica() -> None:
    """The variance formula matches the classic 2 a (1 - a) / (k T) for a single replica."""
    report = AvailabilityReport(1, 0.9, None, 1000.0, 0.9, 0)
    k = 1 / 9 + 1
    assert availability_sd(report) == pytest.approx(math.sqrt(2 * 0.9 * 0.1 / (k * 1000)))


# 2. Failure detection -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arrivals() -> list[float]:
    """Section 2's 20,000 heartbeats."""
    return heartbeat_arrivals(count=20_000, interval=1.0, seed=2)


def test_false_suspicions_follow_the_theory(arrivals: list[float]) -> None:
    """Counts within binomial bounds of 20,000 x the theoretical rate, for every timeout."""
    for timeout in (1.2, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2):
        low, high = binomial_bounds(20_000, false_suspicion_rate(timeout))
        assert low <= false_suspicions(arrivals, timeout) <= high, timeout


def test_the_quoted_false_suspicions(arrivals: list[float]) -> None:
    """142 and 649 an hour measured; 147 theory; one in 5.6 h at 2.5 s; 0.0003 at 3 s."""
    hours = 20_000 / 3600
    assert round(false_suspicions(arrivals, 1.5) / hours) == 142
    assert round(false_suspicions(arrivals, 1.2) / hours) == 649
    assert round(3600 * false_suspicion_rate(1.5)) == 147
    assert false_suspicions(arrivals, 2.5) == 1
    assert round(3600 * false_suspicion_rate(3.0), 4) == 0.0003


def test_the_theory_integral_has_converged() -> None:
    """400 slices agree with 4,000 to within 1 %."""
    for timeout in (1.2, 2.0, 3.0):
        coarse = false_suspicion_rate(timeout)
        fine = false_suspicion_rate(timeout, steps=4000)
        assert coarse == pytest.approx(fine, rel=0.01)


def test_the_detector_node_raises_exactly_the_counted_suspicions() -> None:
    """HeartbeatDetector on the network suspects once per long gap (and once after the end)."""
    net = Network(seed=5, delay=SLOW_NETWORK)
    detector = HeartbeatDetector(1.5)
    net.add_node("worker", lambda ctx, src, msg: None)
    net.add_node("monitor", detector)
    for i in range(3000):
        net.send("worker", "monitor", i, at=float(i))
    net.run(max_events=None)
    counted = false_suspicions(detector.arrivals, 1.5)
    assert counted > 50
    assert len(detector.suspicions) == counted + 1  # the last one: the heartbeats stopped


@pytest.mark.parametrize(("timeout", "quoted"), [(1.5, 1.23), (2.0, 1.73), (3.0, 2.73)])
def test_detection_takes_the_timeout_minus_half_an_interval_plus_a_delay(
    timeout: float, quoted: float
) -> None:
    """Mean detection time within 5 standard errors of timeout + E[delay] - interval / 2."""
    delays = detection_delays(timeout, trials=200, seed=3)
    theory = timeout + SLOW_NETWORK.mean - 0.5  # type: ignore[operator]
    error = statistics.stdev(delays) / math.sqrt(len(delays))
    assert abs(statistics.fmean(delays) - theory) <= 5 * error
    assert round(statistics.fmean(delays), 2) == quoted


# 3. Failover ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("timeout", "quoted"), [(0.3, 0.36), (1.0, 1.06), (3.0, 3.06)])
def test_failover_outage_is_the_detection_timeout(timeout: float, quoted: float) -> None:
    """The outage is the timeout plus less than a heartbeat interval; b is the new primary."""
    report = failover(fault="crash", timeout=timeout, seed=1)
    assert timeout <= report.outage <= timeout + 0.1 + 0.01
    assert round(report.outage, 2) == quoted
    assert [(node, epoch) for _, node, epoch in report.primaries] == [("a", 1), ("b", 2)]
    assert report.stale_writes == 0


def test_a_partition_makes_two_primaries() -> None:
    """b promotes at 6 s; 41 stale writes over 4.0 s, about 10 a second until the heal."""
    split = failover(fault="partition", seed=1)
    (_, first, _), (promoted, second, epoch) = split.primaries
    assert (first, second, epoch) == ("a", "b", 2)
    assert promoted == pytest.approx(6.0, abs=0.01)  # fault at 5 s + timeout 1 s
    # One request every 0.1 s between the promotion and the heal, each written stale by a,
    # plus at most one more before a hears b's first heartbeat after the heal.
    assert 0 <= split.stale_writes - round((10.0 - promoted) / 0.1) <= 1
    assert split.stale_writes == 41
    assert round(split.split_brain, 1) == 4.0
    assert (split.served_by("a"), split.served_by("b")) == (101, 90)


def test_a_quicker_timeout_starts_the_split_brain_sooner() -> None:
    """Try it: timeout 0.3 s, b promotes at 5.3 s, 47 stale writes (one per 0.1 s to the heal)."""
    quick = failover(fault="partition", timeout=0.3, seed=1)
    promoted = quick.primaries[1][0]
    assert round(promoted, 1) == 5.3
    assert 0 <= quick.stale_writes - round((10.0 - promoted) / 0.1) <= 1
    assert quick.stale_writes == 47


def test_fencing_keeps_the_data_and_a_lease_keeps_one_leader() -> None:
    """Fencing: 0 stale, 4 refused, 4 promotions; lease: 0 promotions, a serves all 150."""
    fenced = failover(fault="partition", guard="fencing", seed=1)
    assert (fenced.stale_writes, len(fenced.rejected), fenced.promotions) == (0, 4, 4)
    epochs = [epoch for _, _, epoch in fenced.primaries]
    assert epochs == sorted(epochs) == list(range(1, len(epochs) + 1))
    leased = failover(fault="partition", guard="lease", seed=1)
    assert (leased.stale_writes, leased.promotions, leased.served_by("a")) == (0, 0, 150)
    crash = failover(fault="crash", guard="lease", seed=1)
    assert 1.0 <= crash.outage <= 1.0 + 0.1 + 0.01  # one lease length, plus a renewal
    assert round(crash.outage, 2) == 1.05


def test_before_the_fault_the_primary_serves_alone() -> None:
    """A crash at 14 s of 15: a writes every request before it, b none."""
    report = failover(fault="crash", fault_at=14.0, heal_at=14.5, duration=15.0, seed=2)
    assert report.served_by("a") == 140
    assert report.served_by("b") == 0


def accept_reference(token: int, highest: int) -> bool:
    return token >= highest


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda t, h: t > h, "every write after the first is refused"),
        (lambda t, h: t == h, "failover can never succeed"),
        (lambda t, h: True, "accept_write(1, 2) must be False"),
        (lambda t, h: t <= h, "failover can never succeed"),
        (lambda t, h: int(t >= h), "should return True or False"),
    ],
    ids=["strict", "equal", "always", "inverted", "int"],
)
def test_fencing_checker_names_each_mistake(rule: Any, message: str) -> None:
    """Each wrong rule gets the message that says what it breaks."""
    feedback = check_fencing(rule)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_a_rule_that_passes_the_spot_checks_still_runs_the_split_brain() -> None:
    """A rule right on (1,1), (2,1), (1,2) but letting very stale writes in is caught."""

    def sloppy(token: int, highest: int) -> bool:
        return token >= highest or highest > 2  # forgets to fence after a few failovers

    feedback = check_fencing(sloppy)
    assert feedback.status == "wrong"
    assert "deposed primary" in feedback.message


# 4. Retries -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs() -> list[RecoveryReport]:
    """Section 4.1's five strategies, seed 1."""
    return [recovering_server(backoff, seed=1) for backoff in STRATEGIES]


def test_the_quoted_retry_numbers(runs: list[RecoveryReport]) -> None:
    """Calls, calls in the outage, finishing times and peaks as the prose states them."""
    storm, expo, full, equal, decorr = runs
    assert (storm.calls, storm.calls_during_outage, storm.peak()) == (55_809, 49_736, 3925)
    assert round(storm.done_at, 1) == 12.5
    assert (expo.calls, expo.calls_during_outage, round(expo.done_at, 1)) == (1816, 700, 233.5)
    assert (full.calls, round(full.done_at, 1), full.peak()) == (953, 19.8, 23)
    assert (equal.calls, round(equal.done_at, 1)) == (868, 27.2)
    assert (decorr.calls, round(decorr.done_at, 1)) == (1108, 19.6)
    assert round(storm.calls_during_outage / 100) == 497  # "500 per client"
    assert round(storm.peak() / 40) == 98  # "a hundred times its capacity" of 40 a second


def test_a_storm_calls_once_per_round_trip(runs: list[RecoveryReport]) -> None:
    """No backoff: each client calls every round trip (20 ms on average) from its start."""
    storm = runs[0]
    # Starts are uniform in [0, 0.1] s: (10 - 0.05) / 0.020 calls per client on average.
    # A round trip is two uniform(5, 15) ms delays: sd sqrt(2) x 10 / sqrt(12) ms; renewal
    # counts over 10 s have sd sqrt(N) x cv, and the start adds (0.1 / sqrt(12)) / 0.02.
    per_client = 9.95 / 0.020
    cv = math.sqrt(2) * (10 / math.sqrt(12)) / 20
    sd = math.sqrt(100 * (per_client * cv**2 + ((0.1 / math.sqrt(12)) / 0.020) ** 2))
    assert abs(storm.calls_during_outage - 100 * per_client) <= 5 * sd


def test_exponential_backoff_makes_seven_calls_per_client_in_the_outage(
    runs: list[RecoveryReport],
) -> None:
    """Waits 0.1, 0.2, ... 6.4 s plus round trips: the 8th call falls after 10 s."""
    waits = [min(10, 0.1 * 2**k) for k in range(8)]
    starts_by = [sum(waits[:k]) for k in range(8)]  # earliest time of call k, before delays
    assert starts_by[6] + 7 * 0.015 + 0.1 < 10 < starts_by[7]
    assert runs[1].calls_during_outage == 700


def test_jittered_clients_call_as_their_schedule_predicts(runs: list[RecoveryReport]) -> None:
    """Calls in the outage match a Monte Carlo of the backoff schedule alone (5 sigma)."""
    rng = random.Random(99)
    for report, backoff in zip(runs[2:], STRATEGIES[2:], strict=True):
        counts = []
        for _ in range(20_000):
            t = rng.uniform(0, 0.1)
            waits = backoff.delays(rng)
            n = 0
            while t < 10:
                n += 1
                t += rng.uniform(0.005, 0.015) + rng.uniform(0.005, 0.015) + next(waits)
            counts.append(n)
        mean, sd = statistics.fmean(counts), statistics.stdev(counts)
        assert abs(report.calls_during_outage - 100 * mean) <= 5 * sd * 10, report.backoff


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_halves_the_calls_and_finishes_sooner_on_every_seed(seed: int) -> None:
    """The ranking holds on every seed: jitter well under exponential's calls and time."""
    expo, *jittered = [recovering_server(b, seed=seed) for b in STRATEGIES[1:]]
    for report in jittered:
        assert report.calls < 0.65 * expo.calls
        assert report.done_at < expo.done_at / 5
        assert report.peak() < expo.peak()


def test_amplification_multiplies_per_layer() -> None:
    """3 layers x 3 tries: 100, 300, 900, 2,700 calls; 27 per request; 3 from the top only."""
    layered = retry_amplification(layers=3, tries=3, requests=100)
    assert layered.calls == [100, 300, 900, 2700]
    assert layered.bottom_load == 3**3 == 27
    assert sum(layered.calls[1:]) // 100 == 3 + 9 + 27
    top_only = retry_amplification(layers=3, tries=3, retry_layers=[0], requests=100)
    assert top_only.bottom_load == 3
    assert 3**5 == 243  # the Builders' Library's five layers


def test_a_retry_budget_adds_a_ninth_per_layer() -> None:
    """10 % budgets: 1,000, 1,112, 1,236, 1,374: 1.37 per request, theory (1/0.9)^3."""
    budgeted = retry_amplification(layers=3, tries=3, budget=0.1, requests=1000)
    assert budgeted.calls == [1000, 1112, 1236, 1374]
    assert round(budgeted.bottom_load, 2) == round((1 / 0.9) ** 3, 2) == 1.37
    for above, below in zip(budgeted.calls[:-1], budgeted.calls[1:], strict=True):
        assert below == pytest.approx(above / 0.9, abs=2)


def full_jitter_reference(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    return rng.uniform(0, min(cap, base * 2**attempt))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda n, b, c, rng: min(c, b * 2**n), "always waits"),
        (lambda n, b, c, rng: rng.uniform(0, b * 2**n), "did you forget the cap"),
        (lambda n, b, c, rng: rng.uniform(min(c, b * 2**n) / 2, min(c, b * 2**n)), "equal jitter"),
        (lambda n, b, c, rng: rng.uniform(0, min(c, b * 2 ** (n + 1))), "the most it may wait"),
        (lambda n, b, c, rng: float(rng.randint(0, int(min(c, b * 2**n)))), "always waits"),
        (lambda n, b, c, rng: rng.uniform(0, min(c, b * 2**n)) ** 2, "on average"),
        (lambda n, b, c, rng: str(rng.uniform(0, b)), "should return seconds"),
    ],
    ids=["no-jitter", "no-cap", "equal", "off-by-one", "randint", "skewed", "string"],
)
def test_full_jitter_checker_names_each_mistake(answer: Any, message: str) -> None:
    """Each realistic mistake gets its own message."""
    feedback = check_full_jitter(answer)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


def test_checkers_pass_the_references_and_wait_for_the_stubs() -> None:
    """The references pass; untouched stubs are 'not done yet'."""

    def stub(*args: Any) -> Any:
        raise NotImplementedError

    assert check_full_jitter(full_jitter_reference).passed
    assert check_fencing(accept_reference).passed
    assert check_replicated_availability(lambda a, n: 1 - (1 - a) ** n).passed
    for check in (check_full_jitter, check_fencing, check_replicated_availability):
        assert check(stub).status == "not_done"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda a, n: a**n, "what a chain of services needs"),
        (lambda a, n: (1 - a) ** n, "one minus that"),
        (lambda a, n: 1 - a**n, "at least one is down"),
        (lambda a, n: n * a, "at most 1"),
        (lambda a, n: 1 - (1 - a) ** (n - 1), "should be"),
        (lambda a, n: "99.9 %", "should return a number"),
    ],
    ids=["series", "unavailability", "any-down", "sum", "off-by-one", "string"],
)
def test_availability_checker_names_each_mistake(answer: Any, message: str) -> None:
    """Series for parallel, unavailability for availability... each is named."""
    feedback = check_replicated_availability(answer)
    assert feedback.status == "wrong", feedback.message
    assert message in feedback.message


# 5. Recovery ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("downtime", "missing", "snapshot", "quoted"),
    [
        (10, 1000, False, 1.15),
        (40, 4000, False, 4.55),
        (60, 6000, True, 11.15),
        (120, 12000, True, 11.15),
    ],
)
def test_catch_up_matches_the_theory(
    downtime: float, missing: int, snapshot: bool, quoted: float
) -> None:
    """Within one fetch round (0.102 s) of L / (r - w), or of the snapshot formula."""
    report = catch_up(downtime)
    assert (report.missing, report.snapshot) == (missing, snapshot)
    theory = catch_up_theory(missing, snapshot_seconds=10.0 if snapshot else 0.0)
    assert abs(report.caught_up_after - theory) <= 0.102
    assert round(report.caught_up_after, 2) == quoted


def test_replaying_a_long_log_can_cost_more_than_a_snapshot() -> None:
    """Try it: 20,000 entries kept, 120 s down: 12,000 replayed in 13.64 s, no snapshot."""
    longer = catch_up(120, retained=20_000)
    assert (longer.snapshot, longer.missing) == (False, 12_000)
    assert abs(longer.caught_up_after - catch_up_theory(12_000)) <= 0.102
    assert round(longer.caught_up_after, 2) == 13.64
    assert longer.caught_up_after > catch_up(120).caught_up_after


@pytest.mark.parametrize("seed", [2, 3])
def test_exponential_needs_about_234_seconds_on_every_seed(seed: int) -> None:
    """Try it: without jitter the last client is served after about 234 s whatever the seed."""
    assert round(recovering_server(exponential(0.1, 10), seed=seed).done_at) == 234


def test_the_catch_up_rate_is_the_quoted_980_a_second() -> None:
    """100 entries per round trip of 2 ms plus 100 ms of applying: 980 a second."""
    assert round(100 / (0.002 + 100 / 1000)) == 980
    assert catch_up_theory(880) == pytest.approx(880 / (100 / 0.102 - 100))


# Plots, validation, the lesson file -----------------------------------------------------------
def test_plots_label_their_axes(arrivals: list[float], runs: list[RecoveryReport]) -> None:
    """Trade-off on a log scale with a twin axis; one panel per strategy; catch-up in seconds."""
    ax = plot_detector_tradeoff((1.2, 1.5), [649.0, 142.0], [(1.5, 1.23), (3.0, 2.73)])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "detector timeout (s)"
    assert len(ax.figure.axes) == 2
    plt.close(ax.figure)
    fig = plot_retry_load(runs[1:3])
    assert len(fig.axes) == 2 and fig.axes[-1].get_xlabel().startswith("time (s)")
    plt.close(fig)
    ax = plot_catch_up([catch_up(10)])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("follower downtime (s)", "time to catch up (s)")
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (lambda: simulate_availability(0), "replicas"),
        (lambda: simulate_availability(2, availability=1.0), "availability"),
        (lambda: simulate_availability(2, shared=0.0), "shared"),
        (lambda: heartbeat_arrivals(count=0), "count"),
        (lambda: false_suspicion_rate(0), "timeout"),
        (lambda: detection_delays(1.0, trials=0), "trials"),
        (lambda: failover(fault="flood"), "fault"),  # type: ignore[arg-type]
        (lambda: failover(guard="hope"), "guard"),  # type: ignore[arg-type]
        (lambda: failover(fault_at=12.0, heal_at=11.0), "fault_at < heal_at"),
        (lambda: recovering_server(constant(0), clients=0), "clients"),
        (lambda: retry_amplification(layers=0), "layers"),
        (lambda: catch_up(0), "downtime"),
        (lambda: catch_up(10, apply_rate=100.0), "never catches up"),
        (lambda: HeartbeatDetector(-1.0), "timeout"),
    ],
)
def test_bad_arguments_name_the_parameter(run: Any, name: str) -> None:
    """Every experiment refuses impossible settings with a message naming the parameter."""
    with pytest.raises(ValueError, match=name):
        run()


def test_lesson_asks_each_prediction_before_its_reveal_and_ends_with_its_quiz() -> None:
    """Predictions in file order, each alone in a cell; three Your turns; the quiz last."""
    quiz = load_quiz("04_fault_tolerance")
    assert 4 <= len(quiz.questions) <= 6
    code = lesson_cells(LESSON, "code")
    asked = [c.strip() for c in code if c.strip().startswith("quiz.predict(")]
    assert asked == [f'quiz.predict("04_fault_tolerance", "{p.id}")' for p in quiz.predictions]
    assert code[-1].strip() == 'quiz.show("04_fault_tolerance")'
    your_turn = [c for c in code if "# Your turn" in c]
    assert len(your_turn) == 3 and all("raise NotImplementedError" in c for c in your_turn)


def test_the_quizs_numbers_are_the_lessons_arithmetic() -> None:
    """Numeric answers and the figures in options, recomputed."""
    quiz = load_quiz("04_fault_tolerance")
    assert quiz.question("three_replicas").answer == pytest.approx(100 * (1 - 0.1**3))
    assert quiz.question("amplification").answer == 3**3
    assert quiz.question("four_layers").answer == 2**4
    assert round(100 * 0.999**3, 2) == 99.70  # chain_or_replicas
    assert round(2**1.5, 1) == 2.8  # heavy_tail_timeout: doubling divides by 2^alpha
    assert round(3600 * false_suspicion_rate(3.0), 4) == 0.0003  # double_timeout


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "is down 36 days a year",
        "one replica is up **90.1 %** of the time, two **99.0 %**, three **99.90 %**",
        "from **865 hours a year** (36 days) to 91 hours, then to **8.7 hours**",
        "only 304 times in 100,000 hours",
        "The arithmetic promised **99.90 %**; the service delivers **98.83 %**",
        "the **98.90 %** that the shared part allows (0.999 × 0.99): eleven times the downtime",
        "**142 false suspicions per hour** with a 1.5 s timeout (theory 147)",
        "and **649** with 1.2 s",
        "5.6 hours show only one",
        "**1.23 s** at 1.5 s, **1.73 s** at 2 s and **2.73 s** at 3 s",
        "**0.0003 an hour** at 3 s",
        "**0.36 s, 1.06 s and 3.06 s**",
        "At t = 6 s, one timeout after the link broke",
        "**41 stale writes**",
        "over **4.0 s**",
        "**0 stale writes**",
        "the promotions: **4** in five seconds",
        "**0 promotions, 0 stale writes**, and `a` serves all 150 requests",
        "the outage is **1.05 s**",
        "**55,809 requests**, 49,736 of them during the 10 s outage, 500 per client",
        "**3,925 requests in its first second**, a hundred times its capacity",
        "only 700 requests during the outage (7 per client",
        "after **233.5 s**",
        "**953 requests**, all served after **19.8 s**",
        "**23 requests in any second**",
        "makes 868 requests but finishes later, 27.2 s",
        "finishes first, 19.6 s, with 1,108 requests",
        "(here: 953 against 1,816 requests)",
        "**27 calls per user request**",
        "3 + 9 + 27 = 39 calls",
        "brings it down to **3** per request",
        "**1.37 calls per user request** instead of 27",
        "1,000 entries behind and back in sync **1.15 s**",
        "4,000 entries and **4.55 s**",
        "gains about 980 entries per second",
        "6,000 entries behind",
        "takes **11.15 s** whatever the downtime, **the same after 120 s**",
        "stale writes grow from 41 to 47",
        "promotes itself at 5.3 s instead of 6 s",
        "exponential backoff without jitter needs about 234 s every time",
        "replays all 12,000 missed entries and needs **13.64 s**, longer than the 11.15 s",
    ]:
        assert claim in text, claim
