"""The numbers lesson 03 (data consistency) states, recomputed and checked against theory."""

from __future__ import annotations

import functools
import math
import random
import re
import statistics
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons.data_consistency import (
    History,
    OpRecord,
    cap_experiment,
    check,
    check_compare_versions,
    check_newest,
    check_tricky_history,
    compare_versions,
    conflicting_writes,
    convergence,
    convergence_theory,
    eventual,
    lost_write_theory,
    max_of_two_round_trips_mean,
    monotonic_violation_theory,
    near,
    newest,
    plot_convergence,
    plot_staleness,
    primary,
    quorum,
    quorum_costs,
    quorum_latency_theory,
    quorum_stale_reads,
    register_history,
    run_store,
    session_guarantees,
    stale_read_theory,
    stale_window_theory,
    strong_vs_eventual,
    violations,
)
from tests import REPO
from tests.lessons import lesson_cells, missing_calls
from tests.theory import SIGMAS, binomial_bounds, fraction_bounds

LESSON = REPO / "lessons" / "03_data_consistency.ipynb"
QUIZ = REPO / "quizzes" / "03_data_consistency.yaml"

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    "report = strong_vs_eventual(trials=500, seed=1)",
    "run = quorum_stale_reads(w, r, trials=600, seed=2)",
    "for w, r in [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3)]:",
    "costs = quorum_costs([(1, 1), (1, 3), (2, 2), (3, 1)], trials=600, seed=3)",
    "run = register_history(eventual(), seed=4)",
    "for protocol in (eventual(), quorum(2, 2), quorum(2, 2, write_back=True), primary()):",
    "failures = [s for s in range(20) if not check(register_history(protocol, seed=s).history)]",
    "sizes = [3, 10, 30, 100]",
    "gossip = [convergence(n, seeds=30, pull=pull, seed=5) "
    "for pull in (True, False) for n in sizes]",
    'lww = conflicting_writes(1000, clocks="wall", skew=0.1, max_gap=0.5, seed=6)',
    "c = conflicting_writes(1000, clocks=clocks, skew=0.1, concurrent=0.2, seed=6)",
    "session_guarantees(routing, trials=500, seed=7)",
    "cap = cap_experiment(protocol, partition=(3.0, 7.0), seed=8)",
    "check_newest(newest)",
    "check_tricky_history(tricky_history)",
    "check_compare_versions(compare)",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def test_every_prediction_the_lesson_asks_is_in_the_quiz_file_and_used_once() -> None:
    """quiz.predict ids exist under predictions:, each asked once, before its reveal."""
    source = "\n".join(lesson_cells(LESSON, "code"))
    asked = re.findall(r'quiz\.predict\("03_data_consistency", "(\w+)"\)', source)
    quiz = load_quiz(QUIZ)
    assert sorted(asked) == sorted(p.id for p in quiz.predictions)
    assert len(asked) == len(set(asked)) >= 6
    assert 'quiz.show("03_data_consistency")' in lesson_cells(LESSON, "code")[-1]


def _mean_within(values: list[float], theory: float, sigmas: float = SIGMAS) -> None:
    mean = statistics.fmean(values)
    spread = sigmas * statistics.stdev(values) / math.sqrt(len(values))
    assert abs(mean - theory) <= spread, (mean, theory, spread)


# 1. Strong vs eventual ----------------------------------------------------------------
@pytest.fixture(scope="module")
def staleness() -> Any:
    """Section 1's run."""
    return strong_vs_eventual(trials=500, seed=1)


def test_eventual_stale_reads_match_the_window_theory(staleness: Any) -> None:
    """1: the stale count is within 5 sigma of the sum of each read's theoretical chance."""
    gaps = staleness.gaps["eventual"]
    stale = staleness.stale["eventual"]
    # A read sent t s after the write was sent is stale when the copy's delay D > t.
    chances = [stale_window_theory(t - 0.002) for t in gaps]
    expected = sum(chances)
    spread = SIGMAS * math.sqrt(sum(p * (1 - p) for p in chances))
    assert abs(sum(stale) - expected) <= spread
    # The copy takes 5 to 50 ms: before 5 ms every read is stale, from 50 ms none is.
    assert all(s for t, s in zip(gaps, stale, strict=True) if t < 0.005)
    assert not any(s for t, s in zip(gaps, stale, strict=True) if t >= 0.050)
    assert len(gaps) == 1000


def test_strong_never_stale_and_pays_in_latency(staleness: Any) -> None:
    """1: primary 0 stale; writes ~67.5 ms, remote reads ~55 ms; eventual 2 ms both."""
    ev, strong = staleness.rows
    assert (ev.protocol, strong.protocol) == ("eventual", "primary (strong)")
    assert strong.stale == 0.0
    assert ev.write_ms == pytest.approx(2.0) and ev.read_ms == pytest.approx(2.0)
    run = staleness.runs["primary (strong)"]
    writes = [1000 * op.latency for op in run.ops("write")]
    _mean_within(writes, 2 + 1000 * max_of_two_round_trips_mean())
    reads = [1000 * op.latency for op in run.reads()]
    _mean_within(reads, 55.0)


def test_the_theories_of_section_1() -> None:
    """10 ms after the write: (50 - 12) / 45; E[max of two round trips] = 2a + (b-a) 37/30."""
    assert stale_window_theory(0.010) == pytest.approx(38 / 45)
    assert stale_window_theory(0.0) == 1.0 and stale_window_theory(0.1) == 0.0
    rng = random.Random(1)
    samples = [
        max(rng.uniform(5, 50) + rng.uniform(5, 50), rng.uniform(5, 50) + rng.uniform(5, 50))
        for _ in range(50_000)
    ]
    # sd of the max is about 12 ms: 5 sigma of the mean of 50,000 is about 0.27 ms
    assert statistics.fmean(samples) == pytest.approx(1000 * max_of_two_round_trips_mean(), abs=0.3)


# 2. Quorums ------------------------------------------------------------------------------
@pytest.mark.parametrize(("w", "r"), [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3)])
def test_quorum_stale_reads_match_the_combinatorics(w: int, r: int) -> None:
    """2: stale fraction within 5 sigma of C(n-w, r)/C(n, r); exactly 0 when w + r > n."""
    run = quorum_stale_reads(w, r, trials=600, seed=2)
    theory = stale_read_theory(3, w, r)
    if w + r > 3:
        assert theory == 0 and run.stale_fraction == 0
    else:
        low, high = fraction_bounds(600, theory)
        assert low <= run.stale_fraction <= high


def test_stale_read_theory_values() -> None:
    """2/3 for w=r=1, 1/3 for w=2 r=1 or w=1 r=2, 0 for majority quorums."""
    assert stale_read_theory(3, 1, 1) == pytest.approx(2 / 3)
    assert stale_read_theory(3, 2, 1) == stale_read_theory(3, 1, 2) == pytest.approx(1 / 3)
    assert stale_read_theory(5, 3, 3) == 0.0
    assert stale_read_theory(5, 2, 2) == pytest.approx(3 / 10)


@pytest.fixture(scope="module")
def costs() -> Any:
    """Section 2's cost table."""
    return {
        (c.w, c.r): c for c in quorum_costs([(1, 1), (1, 3), (2, 2), (3, 1)], trials=600, seed=3)
    }


@functools.cache
def _cost_run(w: int, r: int, down: bool) -> Any:
    """Recompute one half of a row of the cost table (all up, or r3 down)."""
    plans = {
        "alice": [(0.5 * i, "write") for i in range(600)],
        "bob": [(0.5 * i + 0.25, "read") for i in range(600)],
    }
    return run_store(quorum(w, r), plans, service=0.010, down=("r3",) if down else (), seed=3)


def _latencies(w: int, r: int, kind: str, *, down: bool) -> list[float]:
    """One column of the cost table as a list of latencies in ms."""
    return [1000 * op.latency for op in _cost_run(w, r, down).ops(kind) if op.ok]


@pytest.mark.parametrize(("w", "r"), [(1, 1), (1, 3), (2, 2), (3, 1)])
def test_quorum_latency_follows_the_order_statistics(costs: Any, w: int, r: int) -> None:
    """2: mean = 2 ms + 10 ms x H_k; the theoretical p99 splits the reads 99:1."""
    for kind, k in (("write", w), ("read", r)):
        values = _latencies(w, r, kind, down=False)
        _mean_within(values, 1000 * quorum_latency_theory(k))
    reads = _latencies(w, r, "read", down=False)
    p99 = 1000 * quorum_latency_theory(r, quantile=0.99)
    low, high = binomial_bounds(len(reads), 0.99)
    assert low <= sum(v <= p99 for v in reads) <= high
    row = costs[(w, r)]
    assert row.read_ms == pytest.approx(statistics.fmean(reads))


@pytest.mark.parametrize(("w", "r"), [(1, 1), (1, 3), (2, 2), (3, 1)])
def test_a_replica_down_costs_availability_or_a_timeout(costs: Any, w: int, r: int) -> None:
    """2: k = 3 fails every time; k <= 2 succeeds, paying 200 ms with probability k/3."""
    row = costs[(w, r)]
    assert row.down_available == (0.5 if 3 in (w, r) else 1.0)
    for kind, k in (("write", w), ("read", r)):
        values = _latencies(w, r, kind, down=True)
        if k == 3:
            assert values == [] and math.isnan(quorum_latency_theory(k, down=1))
            continue
        theory = 1000 * quorum_latency_theory(k, down=1)
        _mean_within(values, theory)
        slow = sum(v > 200 for v in values)
        low, high = binomial_bounds(len(values), k / 3)
        assert low <= slow <= high


def test_theory_numbers_quoted_for_quorum_latency() -> None:
    """12 ms, 17 ms, 20.3 ms all up; 78.7 and 147 ms with r3 down."""
    assert [round(1000 * quorum_latency_theory(k), 1) for k in (1, 2, 3)] == [12.0, 17.0, 20.3]
    assert [round(1000 * quorum_latency_theory(k, down=1), 1) for k in (1, 2)] == [78.7, 147.0]
    with pytest.raises(ValueError, match="quantile"):
        quorum_latency_theory(2, down=1, quantile=0.5)


# 3. Linearizability ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verdicts() -> dict[str, list[int]]:
    """Section 3's table: the seeds whose history is not linearizable, per protocol."""
    table = {}
    for protocol in (eventual(), quorum(2, 2), quorum(2, 2, write_back=True), primary()):
        table[protocol.name] = [
            s for s in range(20) if not check(register_history(protocol, seed=s).history)
        ]
    return table


def test_eventual_fails_and_quorums_fail_sometimes(verdicts: dict[str, list[int]]) -> None:
    """3: eventual 20 of 20 not linearizable, quorum w=2 r=2 5 of 20 (first: seed 2)."""
    assert len(verdicts["eventual"]) == 20
    assert len(verdicts["quorum w=2 r=2"]) == 5
    assert verdicts["quorum w=2 r=2"][0] == 2


def test_write_back_and_primary_are_linearizable(verdicts: dict[str, list[int]]) -> None:
    """3: ABD (write-back) and the primary pass every run (as theory says), 20 more too."""
    assert verdicts["quorum w=2 r=2 + write-back"] == []
    assert verdicts["primary (strong)"] == []
    for seed in range(20, 40):
        assert check(register_history(quorum(2, 2, write_back=True), seed=seed).history)


def test_the_quorum_failure_is_a_new_then_old_read() -> None:
    """3: in seed 2 a read returns an older value than a read that had returned before it."""
    run = register_history(quorum(2, 2), seed=2)
    (bad, *_) = violations(run.history)
    assert bad.kind == "read"
    earlier = [op for op in near(run.history, bad) if op.kind == "read" and op.ret < bad.call]
    assert any(op.output is not None and op.output > bad.output for op in earlier)


def test_the_eventual_history_of_section_3() -> None:
    """3: 120 operations, 34 reads no order explains, all of them reads."""
    run = register_history(eventual(), seed=4)
    marked = violations(run.history)
    assert len(run.history) == 120
    assert len(marked) == 34 and {op.kind for op in marked} == {"read"}


def test_the_three_small_histories_of_section_3() -> None:
    """3: overlap fine, stale read and new-then-old verdicts as the prose says."""
    fine, stale, inversion = History(), History(), History()
    fine.add("alice", "write", 1, call=0, ret=10)
    fine.add("bob", "read", None, None, call=1, ret=2)
    fine.add("carol", "read", None, 1, call=3, ret=4)
    stale.add("alice", "write", 1, call=0, ret=1)
    stale.add("bob", "read", None, None, call=2, ret=3)
    inversion.add("alice", "write", 1, call=0, ret=10)
    inversion.add("bob", "read", None, 1, call=1, ret=2)
    inversion.add("carol", "read", None, None, call=3, ret=4)
    assert [bool(check(h)) for h in (fine, stale, inversion)] == [True, False, False]
    assert [op.client for op in violations(inversion)] == ["carol"]


# 4. Convergence ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gossip() -> Any:
    """Section 4's runs."""
    sizes = [3, 10, 30, 100]
    return [convergence(n, seeds=30, pull=pull, seed=5) for pull in (True, False) for n in sizes]


def test_gossip_rounds_match_the_markov_chain(gossip: Any) -> None:
    """4: every mean within 5 sigma of the exact expected rounds."""
    for report in gossip:
        _mean_within(
            [float(r) for r in report.rounds], convergence_theory(report.n, pull=report.pull)
        )


def test_convergence_theory_small_cases_and_growth() -> None:
    """Two replicas need exactly one round; 10 -> 100 adds about 3 rounds (log growth)."""
    assert convergence_theory(2) == 1.0 and convergence_theory(2, pull=False) == 1.0
    assert convergence_theory(3) == pytest.approx(1.5)
    assert convergence_theory(100) - convergence_theory(10) == pytest.approx(3.07, abs=0.01)
    assert round(convergence_theory(100), 2) == 6.53
    assert round(convergence_theory(100, pull=False), 2) == 12.30


# 5. Conflicts --------------------------------------------------------------------------------
def test_last_write_wins_loses_causally_later_writes_within_the_skew() -> None:
    """5.1: 195 of 1000 lost, within 5 sigma of (skew - 4 ms) / max_gap = 19.2 %."""
    lww = conflicting_writes(1000, clocks="wall", skew=0.1, max_gap=0.5, seed=6)
    assert lww.causal == 1000 and lww.lost_causal == 195
    low, high = binomial_bounds(1000, lost_write_theory(0.1, max_gap=0.5))
    assert low <= lww.lost_causal <= high
    assert lost_write_theory(0.1, max_gap=0.5) == pytest.approx(0.192)
    assert conflicting_writes(300, clocks="wall", skew=0.0, seed=6).lost_causal == 0


@pytest.mark.parametrize("clocks", ["wall", "lamport", "vector"])
def test_lamport_keeps_causal_order_and_version_vectors_keep_concurrent_writes(clocks: Any) -> None:
    """5.2: only vectors keep both concurrent writes; wall clocks also lose causal ones."""
    c = conflicting_writes(1000, clocks=clocks, skew=0.1, concurrent=0.2, seed=6)
    assert c.causal + c.concurrent == 1000
    low, high = binomial_bounds(1000, 0.2)
    assert low <= c.concurrent <= high and c.concurrent == 181
    if clocks == "wall":
        low, high = binomial_bounds(c.causal, lost_write_theory(0.1))
        assert low <= c.lost_causal <= high
    else:
        assert c.lost_causal == 0
    if clocks == "vector":
        assert (c.lost_concurrent, c.siblings) == (0, c.concurrent)
    else:
        assert (c.lost_concurrent, c.siblings) == (c.concurrent, 0)


def test_compare_versions_reference() -> None:
    """The reference comparison: before, after, equal, concurrent, missing entries as 0."""
    assert compare_versions({"A": 1}, {"A": 1, "B": 1}) == "before"
    assert compare_versions({"A": 2, "B": 1}, {"A": 1, "B": 3}) == "concurrent"
    assert compare_versions({"A": 1, "B": 0}, {"A": 1}) == "equal"
    assert compare_versions({"B": 2}, {}) == "after"


# 6. Session guarantees ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sessions() -> dict[str, Any]:
    """Section 6's three routings."""
    routings = (
        eventual(route="random"),
        eventual(route="sticky"),
        eventual(route="random", token=True),
    )
    return {p.name: session_guarantees(p, trials=500, seed=7) for p in routings}


def test_load_balancer_breaks_session_guarantees_as_theory_says(sessions: dict[str, Any]) -> None:
    """6: read-your-writes broken ~56.3 %, monotonic reads ~20.5 %, each within 5 sigma."""
    theory = monotonic_violation_theory(0.010)
    assert round(100 * theory["read_your_writes"], 1) == 56.3
    assert round(100 * theory["monotonic"], 1) == 20.5
    s = sessions["load balancer"]
    for measured, p in (
        (s.read_your_writes, theory["read_your_writes"]),
        (s.monotonic, theory["monotonic"]),
    ):
        low, high = fraction_bounds(500, p)
        assert low <= measured <= high
    assert s.read_ms == pytest.approx(2.0)


def test_sticky_sessions_and_version_tokens_keep_the_guarantees(sessions: dict[str, Any]) -> None:
    """6: sticky and token routing break neither guarantee; tokens make reads wait."""
    sticky, tokens = sessions["sticky sessions"], sessions["version tokens"]
    assert (sticky.read_your_writes, sticky.monotonic) == (0.0, 0.0)
    assert (tokens.read_your_writes, tokens.monotonic) == (0.0, 0.0)
    assert sticky.read_ms == pytest.approx(2.0)
    assert 2.0 < tokens.read_ms < 2.0 + 50.0


# 7. CAP --------------------------------------------------------------------------------------
def test_cap_consistent_store_refuses_the_minority_and_never_goes_stale() -> None:
    """7: quorum + write-back: bob 0 % answered during the partition, alice 100 %, 0 stale."""
    cap = cap_experiment(quorum(2, 2, write_back=True), partition=(3.0, 7.0), seed=8)
    assert cap.rows[("bob", "during")][1] == 0.0
    assert all(cap.rows[("alice", phase)][1] == 1.0 for phase in ("before", "during", "after"))
    assert all(cap.rows[("bob", phase)][1:] == (1.0, 0.0) for phase in ("before", "after"))


def test_cap_available_store_answers_the_minority_with_stale_values() -> None:
    """7: eventual: bob answered 100 %, every read during the partition stale, none after."""
    cap = cap_experiment(eventual(), partition=(3.0, 7.0), seed=8)
    assert cap.rows[("bob", "during")][1:] == (1.0, 1.0)
    assert cap.rows[("bob", "after")][1:] == (1.0, 0.0)
    assert cap.rows[("bob", "before")][1:] == (1.0, 0.0)


# The prose --------------------------------------------------------------------------------------
def test_lesson_prose_quotes_the_computed_numbers(
    staleness: Any, costs: Any, sessions: dict[str, Any], gossip: Any
) -> None:
    """Every number the prose states is the one computed (rounded as printed)."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    ev, strong = staleness.rows
    s, tokens = sessions["load balancer"], sessions["version tokens"]
    gossip100 = {g.pull: g.mean_rounds for g in gossip if g.n == 100}
    claims = [
        f"{100 * ev.stale:.1f} % of all reads were stale",
        f"writes took {strong.write_ms:.1f} ms instead of 2",
        f"= {2 + 1000 * max_of_two_round_trips_mean():.1f} ms)",
        f"reads took {strong.read_ms:.1f} ms instead of 2",
        "(50 − 2 − 10) / 45 ≈ 84 %",
        f"**{costs[(2, 2)].down_write_ms:.0f} ms for writes and "
        f"{costs[(2, 2)].down_read_ms:.0f} ms for reads**",
        "12 ms for one replica, 17 ms for two, 20.3 ms for three",
        "(theory 147 ms)",
        "in 5 of 20 runs",
        f"**{gossip100[True]:.2f} rounds**",
        f"push alone needs {gossip100[False]:.2f} (theory 12.30)",
        "(theory 6.53)",
        "**195 of 1000 pairs**",
        "the 181 concurrent pairs",
        f"**{100 * s.read_your_writes:.1f} % of reloads",
        f"and {100 * s.monotonic:.1f} % of second reads",
        "(theory 56.3 %",
        "(theory 20.5 %)",
        f"{tokens.read_ms:.1f} ms on average instead of 2",
    ]
    missing = [claim for claim in claims if claim not in text]
    assert not missing, missing


# "Your turn" checkers ----------------------------------------------------------------------------
def _stub(*args: Any) -> Any:
    raise NotImplementedError


NEWEST_BUGS: dict[str, tuple[Callable[..., Any], str]] = {
    "first answer": (lambda answers: answers[0], "returned the first answer"),
    "last answer": (lambda answers: answers[-1], "returned the last answer"),
    "max by value": (lambda answers: max(answers, key=lambda a: a[1]), "not the values"),
    "version only": (lambda answers: max(answers)[0], "should return one of the answers"),
}


def test_check_newest_accepts_the_reference_and_says_not_done_for_the_stub() -> None:
    """The reference passes with 0 stale reads; the stub is 'not done yet'."""
    ok = check_newest(newest)
    assert ok.passed and "0 stale reads out of 300" in ok.message
    assert check_newest(lambda answers: max(answers)).passed
    assert check_newest(_stub).status == "not_done"


@pytest.mark.parametrize("bug", NEWEST_BUGS)
def test_check_newest_names_each_bug(bug: str) -> None:
    """Each realistic bug gets its own message."""
    func, message = NEWEST_BUGS[bug]
    feedback = check_newest(func)
    assert feedback.status == "wrong" and message in feedback.message


def _indexes_both(a: dict[str, int], b: dict[str, int]) -> str:
    keys = set(a) | set(b)
    smaller = any(a[k] < b[k] for k in keys)
    larger = any(a[k] > b[k] for k in keys)
    return (
        "concurrent"
        if smaller and larger
        else "before"
        if smaller
        else "after"
        if larger
        else "equal"
    )


def _only_keys_of_a(a: dict[str, int], b: dict[str, int]) -> str:
    le = all(a[k] <= b.get(k, 0) for k in a)
    ge = all(a[k] >= b.get(k, 0) for k in a)
    return "equal" if le and ge else "before" if le else "after" if ge else "concurrent"


def _shared_keys_only(a: dict[str, int], b: dict[str, int]) -> str:
    keys = set(a) & set(b)
    smaller = any(a[k] < b[k] for k in keys)
    larger = any(a[k] > b[k] for k in keys)
    return (
        "concurrent"
        if smaller and larger
        else "before"
        if smaller
        else "after"
        if larger
        else "equal"
    )


COMPARE_BUGS: dict[str, tuple[Callable[..., Any], str]] = {
    "sums": (
        lambda a, b: (
            "before"
            if sum(a.values()) < sum(b.values())
            else "after"
            if sum(a.values()) > sum(b.values())
            else "equal"
        ),
        "they are 'concurrent'",
    ),
    "KeyError": (_indexes_both, "KeyError"),
    "only a's keys": (_only_keys_of_a, "concurrent"),
    "shared keys only": (_shared_keys_only, "once a missing entry counts as 0"),
    "bool": (lambda a, b: a == b, "must return one of"),
}


def test_check_compare_versions_accepts_the_reference() -> None:
    """The reference passes; the stub is 'not done yet'."""
    assert check_compare_versions(compare_versions).passed
    assert check_compare_versions(_stub).status == "not_done"


@pytest.mark.parametrize("bug", COMPARE_BUGS)
def test_check_compare_versions_names_each_bug(bug: str) -> None:
    """Each realistic bug gets its own message."""
    func, message = COMPARE_BUGS[bug]
    feedback = check_compare_versions(func)
    assert feedback.status == "wrong", feedback
    assert message in feedback.message, feedback.message


def _history(*ops: tuple[str, str, Any, Any, float, float]) -> Callable[[], History]:
    def build() -> History:
        h = History()
        for client, kind, value, output, call, ret in ops:
            h.add(client, kind, value, output, call=call, ret=ret)
        return h

    return build


TRICKY = {
    "linearizable": (
        _history(("a", "write", 1, None, 0, 10), ("b", "read", None, 1, 1, 2)),
        "this history is linearizable",
    ),
    "value never written": (
        _history(("a", "write", 1, None, 0, 1), ("b", "read", None, 7, 2, 3)),
        "which no write wrote",
    ),
    "value from the future": (
        _history(("b", "read", None, 1, 0, 1), ("a", "write", 1, None, 2, 3)),
        "value from the future",
    ),
    "too long": (
        _history(*[("a", "write", i, None, 2 * i, 2 * i + 1) for i in range(9)]),
        "at most 8 operations",
    ),
    "cas": (
        _history(("a", "cas", (None, 1), True, 0, 1), ("b", "read", None, 1, 2, 3)),
        "reads and writes only",
    ),
    "not a history": (lambda: [("a", "write", 1)], "should return the History"),
}


def test_check_tricky_history_accepts_an_inversion_and_a_stale_read() -> None:
    """New-then-old and a plain stale read both pass; the stub is 'not done yet'."""
    inversion = _history(
        ("a", "write", 1, None, 0, 10),
        ("b", "read", None, 1, 1, 2),
        ("c", "read", None, None, 3, 4),
    )
    feedback = check_tricky_history(inversion)
    assert feedback.passed and "r→None by c" in feedback.message
    assert check_tricky_history(
        _history(("a", "write", 1, None, 0, 1), ("b", "read", None, None, 2, 3))
    ).passed
    assert check_tricky_history(_stub).status == "not_done"


@pytest.mark.parametrize("case", TRICKY)
def test_check_tricky_history_says_what_is_wrong(case: str) -> None:
    """Each way to miss the point gets its own message."""
    build, message = TRICKY[case]
    feedback = check_tricky_history(build)
    assert feedback.status == "wrong" and message in feedback.message, feedback.message


# Plots and validation ------------------------------------------------------------------------
def test_plots_have_labelled_axes_and_legends(staleness: Any, gossip: Any) -> None:
    """plot_staleness and plot_convergence label both axes with units and show a legend."""
    try:
        ax = plot_staleness(staleness)
        assert "ms" in ax.get_xlabel() and "%" in ax.get_ylabel()
        assert len(ax.get_legend().get_texts()) == 3
        ax = plot_convergence(gossip)
        assert ax.get_xscale() == "log" and "replicas" in ax.get_xlabel()
        assert "1 s" in ax.get_ylabel()
        assert len(ax.get_legend().get_texts()) == 4
    finally:
        plt.close("all")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: quorum(4, 1), "w"),
        (lambda: quorum(1, 0), "r"),
        (lambda: eventual(route="nearest"), "route"),  # type: ignore[arg-type]
        (lambda: strong_vs_eventual(trials=0), "trials"),
        (lambda: strong_vs_eventual(spacing=0.1), "spacing"),
        (lambda: register_history(eventual(), readers=9), "readers"),
        (lambda: convergence(1), "n"),
        (lambda: conflicting_writes(clocks="atomic"), "clocks"),  # type: ignore[arg-type]
        (lambda: conflicting_writes(concurrent=1.5), "concurrent"),
        (lambda: session_guarantees(eventual(), gap=-1), "gap"),
        (lambda: cap_experiment(eventual(), partition=(5.0, 3.0)), "partition"),
        (lambda: run_store(quorum(2, 2), {}, n=1), "n=1"),
        (lambda: run_store(eventual(), {"a": []}, homes={"a": "r9"}), "homes"),
        (lambda: run_store(eventual(), {}, down=("r9",)), "down"),
        (lambda: run_store(eventual(), {}, timeout=0), "timeout"),
    ],
)
def test_bad_settings_are_refused_naming_the_parameter(call: Callable[[], Any], name: str) -> None:
    """A setting that cannot run raises ValueError whose message names it."""
    with pytest.raises(ValueError, match=re.escape(name)):
        call()


def test_op_record_staleness_and_latency() -> None:
    """A read older than a returned write is stale; an unfinished op has infinite latency."""
    read = OpRecord("bob", "read", 1.0, end=1.5, ok=True, version=(1, "a"), fresh=(2, "a"))
    assert read.stale and read.latency == 0.5
    assert not OpRecord("bob", "write", 0.0).stale
    assert OpRecord("bob", "read", 0.0).latency == math.inf
