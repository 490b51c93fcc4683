"""The numbers lesson 08 (service discovery) states, recomputed and checked against theory."""

from __future__ import annotations

import json
from typing import Any

import httpx
import matplotlib.pyplot as plt
import pytest

import distlab
from distlab.course.quiz import load_quiz
from distlab.lessons.service_discovery import (
    Cluster,
    DiscoveryRun,
    balance,
    check_pick_least_outstanding,
    check_staleness_bound,
    hung_instance,
    instance_app,
    orders_cluster,
    plot_balance,
    plot_discovery,
    plot_stale_errors,
    stale_errors,
)
from tests import REPO
from tests.lessons import lesson_cells, missing_calls

LESSON = REPO / "lessons" / "08_service_discovery.ipynb"
QUIZ = "08_service_discovery"
CHAPTER_DIAGRAM = (
    "```mermaid\n"
    "graph TD;\n"
    "A[Service Consumer] -->|Request| B[Service Registry];\n"
    "B -->|Response| A;\n"
    "A -->|Connect| C[Service Provider];\n"
    "```"
)

CALLS = [
    'hardcoded = orders_cluster(mode="hardcoded")',
    'registry = orders_cluster(mode="registry")',
    "plot_discovery(hardcoded, registry)",
    "sweep = [stale_errors(ttl) for ttl in (6, 15, 30, 60, 90)]",
    "cached = [stale_errors(ttl, refresh=10) for ttl in (15, 30)]",
    "plot_stale_errors(sweep + cached, theory=lambda ttl: 3 / 3 * (ttl - ttl / 3 / 2))",
    "check_staleness_bound(staleness_bound)",
    'retried = orders_cluster(mode="registry", retry_next=True)',
    'round_robin = balance("round_robin")',
    'least = balance("least_outstanding")',
    "plot_balance(round_robin, least)",
    "check_pick_least_outstanding(pick)",
    'self_registered = hung_instance("self")',
    'probed = hung_instance("third_party")',
]

PREDICTIONS = {
    "hardcoded_share": 'hardcoded = orders_cluster(mode="hardcoded")',
    "stale_window": 'registry = orders_cluster(mode="registry")',
    "ttl_errors": "sweep = [stale_errors(ttl) for ttl in (6, 15, 30, 60, 90)]",
    "lor_share": 'round_robin = balance("round_robin")',
    "hung_listed": 'self_registered = hung_instance("self")',
}


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def test_the_chapters_diagram_is_kept_as_its_own_mermaid_source() -> None:
    """The first cell holds the chapter's graph TD, line for line, in a mermaid block."""
    first = lesson_cells(LESSON, "markdown")[0]
    assert CHAPTER_DIAGRAM in first
    chapter = (REPO.parent.parent / "shared" / "seed").glob("*.txt")
    for path in chapter:  # where the chapter text is available, compare with it
        text = path.read_text(encoding="utf-8")
        if "Service Discovery Pattern" in text:
            for line in CHAPTER_DIAGRAM.splitlines()[1:-1]:
                assert line in text, line


@pytest.fixture(scope="module")
def runs() -> dict[str, DiscoveryRun]:
    """Sections 1 and 2, and the Try it."""
    return {
        "hardcoded": orders_cluster(mode="hardcoded"),
        "registry": orders_cluster(mode="registry"),
        "retried": orders_cluster(mode="registry", retry_next=True),
    }


# 1. and 2. -----------------------------------------------------------------------------------
def test_lesson_numbers_for_hardcoded_addresses(runs: dict[str, DiscoveryRun]) -> None:
    """Round-robin over a fixed list: every third call after the crash fails, orders-4 gets none."""
    hardcoded = runs["hardcoded"]
    after = [c for c in hardcoded.calls if c.at >= 30]
    assert hardcoded.errors() == len(after) / 3 == 150
    assert len(hardcoded.calls) == 600
    assert f"{hardcoded.error_share(30, 120):.1%}" == "33.3%"
    assert hardcoded.served_by("orders-4") == 0
    assert {c.error for c in hardcoded.calls if not c.ok} == {"refused"}


def test_lesson_numbers_for_the_registry(runs: dict[str, DiscoveryRun]) -> None:
    """The last renewal (t = 25) leases to t = 40: failures only in [30, 40), 5/3 a second."""
    registry = runs["registry"]
    last_renewal, ttl = 25.0, 15.0
    assert registry.unlisted_at("orders-2") == last_renewal + ttl == 40
    first, last = registry.error_window or (None, None)
    assert first is not None and last is not None
    assert first >= 30 and last < last_renewal + ttl
    assert f"{first:.1f} {last:.1f}" == "30.2 39.8"
    assert abs(registry.errors() - 5 * (40 - 30) / 3) <= 1
    assert registry.errors() == 17
    # From t = 60, orders-1, orders-3 and orders-4 share 5 calls a second.
    assert registry.listed_at("orders-4") == 60
    assert registry.served_by("orders-4") == 5 * 60 / 3 == 100


def test_retrying_on_the_next_instance_hides_the_crash(runs: dict[str, DiscoveryRun]) -> None:
    """A refused call retried on the next instance succeeds: 0 of 600 fail."""
    assert (runs["retried"].errors(), len(runs["retried"].calls)) == (0, 600)


def test_discovery_plot_has_both_runs_and_the_instances(runs: dict[str, DiscoveryRun]) -> None:
    """Two step curves, the crash and expiry marked; one row per instance below."""
    errors_ax, served_ax = plot_discovery(runs["hardcoded"], runs["registry"])
    try:
        assert errors_ax.get_ylabel() == "failed calls per second"
        assert served_ax.get_xlabel() == "virtual time (s)"
        assert [t.get_text() for t in served_ax.get_yticklabels()] == [
            "orders-1",
            "orders-2",
            "orders-3",
            "orders-4",
        ]
    finally:
        plt.close("all")


# 3. The TTL window ---------------------------------------------------------------------------
@pytest.mark.parametrize("ttl", [6, 15, 30, 60, 90])
def test_stale_errors_follow_the_lease(ttl: float) -> None:
    """A crash halfway between heartbeats: rate / 3 x (ttl - h / 2) failed calls, within 1."""
    result = stale_errors(ttl)
    window = ttl - result.heartbeat / 2
    assert abs(result.errors - 3 / 3 * window) <= 1
    assert result.listed_for <= window


def test_lesson_numbers_for_the_ttl_window() -> None:
    """5, 12, 25, 50, 75; with a 10 s client refresh 17 (ttl 15) and 25 (ttl 30)."""
    assert [stale_errors(ttl).errors for ttl in (6, 15, 30, 60, 90)] == [5, 12, 25, 50, 75]
    assert [3 / 3 * (t - t / 6) for t in (6, 15, 30, 60, 90)] == [5, 12.5, 25, 50, 75]
    cached = [stale_errors(ttl, refresh=10) for ttl in (15, 30)]
    assert [c.errors for c in cached] == [17, 25]
    for ttl, result in zip((15, 30), cached, strict=True):
        plain = stale_errors(ttl).errors
        assert plain <= result.errors <= plain + 10 * 3 / 3 + 1  # a cache adds up to refresh


@pytest.mark.parametrize("phase", [0.05, 0.25, 0.9])
def test_the_window_depends_on_where_the_crash_falls(phase: float) -> None:
    """The lease ends ttl - phase x h after the crash: nearly ttl just after a heartbeat."""
    result = stale_errors(30, crash_phase=phase)
    assert abs(result.errors - (30 - phase * 10)) <= 1


def test_stale_error_plot_has_points_and_the_theory_line() -> None:
    """Measured points per refresh, a dashed theory line, labelled axes."""
    results = [stale_errors(ttl) for ttl in (6, 15)]
    ax = plot_stale_errors(results, theory=lambda ttl: ttl - ttl / 6)
    try:
        assert ax.get_xlabel() == "lease TTL (s), heartbeat every TTL / 3"
        assert ax.get_ylabel() == "failed calls after the crash"
        assert len(ax.get_lines()) == 2
    finally:
        plt.close("all")


# 5. Balancing ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def balanced() -> dict[str, Any]:
    """Section 5's two runs."""
    return {s: balance(s) for s in ("round_robin", "least_outstanding")}


def test_lesson_numbers_for_balancing(balanced: dict[str, Any]) -> None:
    """Round-robin: a third to the slow instance, mean 367 ms; least outstanding: 7.2 %, 118 ms."""
    rr, lor = balanced["round_robin"], balanced["least_outstanding"]
    assert (rr.to_slow, rr.calls) == (403, 1209) and abs(rr.to_slow - rr.calls / 3) <= 1
    assert (lor.to_slow, lor.calls) == (87, 1209)
    for result in (rr, lor):  # the mean is the mix of 1 s and 50 ms calls
        mix = (result.to_slow * 1.0 + (result.calls - result.to_slow) * 0.05) / result.calls
        assert result.mean == pytest.approx(mix, abs=1e-6)
    assert round((2 * 0.05 + 1.0) / 3 * 1000) == round(rr.mean * 1000) == 367
    assert round(lor.mean * 1000) == 118
    assert [round(r.percentile(q) * 1000) for r in (rr, lor) for q in (0.5, 0.9, 0.99)] == [
        50,
        1000,
        1000,
        50,
        50,
        1000,
    ]
    assert f"{lor.to_slow / lor.calls:.1%}" == "7.2%"
    assert round(100 * (1 - rr.to_slow / rr.calls)) == 67


def test_balance_plot_is_a_survival_curve(balanced: dict[str, Any]) -> None:
    """Log-log survival curves of the latencies, one per strategy."""
    ax = plot_balance(balanced["round_robin"], balanced["least_outstanding"])
    try:
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlabel() == "latency of a call (ms)"
        assert len(ax.get_lines()) == 2
    finally:
        plt.close("all")


# 6. Registration ------------------------------------------------------------------------------
def test_lesson_numbers_for_the_hung_instance() -> None:
    """Self: a third of calls time out for ever; probes: unlisted after 3 failed probes."""
    self_registered = hung_instance("self")
    after = [c for c in self_registered.calls if c.at >= 30]
    assert self_registered.errors() == 90 and abs(90 - len(after) / 3) <= 1
    assert self_registered.unlisted_at("orders-2") is None
    assert {c.error for c in self_registered.calls if not c.ok} == {"timeout"}
    probed = hung_instance("third_party")
    gone = probed.unlisted_at("orders-2")
    assert gone == 50.5 and probed.errors() == 20
    period, timeout, threshold = 10.0, 1.0, 3
    assert 30 + (threshold - 1) * period <= gone <= 30 + threshold * (period + timeout) + 1


def test_the_registrar_registers_every_instance_that_answers_its_probe() -> None:
    """The registrar registers every instance that answers its probe (all 3 at the start)."""
    probed = hung_instance("third_party", duration=10, hang_at=5)
    assert probed.listed[0][1] == ("orders-1", "orders-2", "orders-3")


# The transport and the validation --------------------------------------------------------------
def test_the_cluster_refuses_crashed_hosts_and_times_out_hung_ones() -> None:
    """down -> ConnectError at once; hung -> ReadTimeout after the request's timeout."""

    async def main() -> list[Any]:
        cluster = Cluster()
        cluster.add("a", instance_app("a"))
        seen: list[Any] = []
        async with httpx.AsyncClient(transport=cluster) as http:
            seen.append((await http.get("http://a/orders/7")).json())
            cluster.hang("a")
            began = distlab.now()
            with pytest.raises(httpx.ReadTimeout):
                await http.get("http://a/orders/7", timeout=2.0)
            seen.append(distlab.now() - began)
            cluster.crash("a")
            with pytest.raises(httpx.ConnectError, match="refused"):
                await http.get("http://a/orders/7")
            with pytest.raises(httpx.ConnectError):
                await http.get("http://nowhere/")
            seen.append(cluster.state("a"))
        return seen

    assert distlab.run(main) == [{"instance": "a", "order": "7"}, 2.0, "down"]


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (lambda: orders_cluster(mode="dns"), "mode"),  # type: ignore[arg-type]
        (lambda: orders_cluster(instances=0), "instances"),
        (lambda: orders_cluster(crash="orders-9"), "crash"),
        (lambda: orders_cluster(crash_at=500), "crash_at"),
        (lambda: stale_errors(0), "ttl"),
        (lambda: stale_errors(10, crash_phase=1.0), "crash_phase"),
        (lambda: stale_errors(10, crash_phase=0.0), "crash_phase"),
        (lambda: balance("random"), "strategy"),  # type: ignore[arg-type]
        (lambda: hung_instance("dns"), "registration"),  # type: ignore[arg-type]
        (lambda: hung_instance("self", failure_threshold=0), "failure_threshold"),
    ],
)
def test_scenarios_reject_settings_that_cannot_run(run: Any, name: str) -> None:
    """A bad setting is a ValueError that names it."""
    with pytest.raises(ValueError, match=name):
        run()


def test_discovery_run_helpers_refuse_an_empty_window(runs: dict[str, DiscoveryRun]) -> None:
    """No call in the window: an error that says so."""
    with pytest.raises(ValueError, match="no call"):
        runs["registry"].error_share(500, 600)


# Your turn: the checkers -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        (lambda ttl, h, r: ttl + r, "passed", "ttl + refresh"),
        (lambda ttl, h, r: ttl - h / 2 + r, "wrong", "typical case, not the worst"),
        (lambda ttl, h, r: ttl, "wrong", "add the client's refresh"),
        (lambda ttl, h, r: ttl + h + r, "wrong", "the heartbeat interval does not add"),
        (lambda ttl, h, r: "forever", "wrong", "return a number of seconds"),
    ],
)
def test_staleness_checker(answer: Any, status: str, says: str) -> None:
    """The reference passes; each realistic mistake gets its own hint."""
    feedback = check_staleness_bound(answer)
    assert feedback.status == status, feedback.message
    assert says in feedback.message


def _reference_pick(addresses: list[str], outstanding: dict[str, int], turn: int) -> str:
    n = len(addresses)
    order = [addresses[(turn + k) % n] for k in range(n)]
    return min(order, key=lambda a: outstanding.get(a, 0))


def _first_minimum(addresses: list[str], outstanding: dict[str, int], turn: int) -> str:
    return min(addresses, key=lambda a: outstanding.get(a, 0))


def _needs_every_key(addresses: list[str], outstanding: dict[str, int], turn: int) -> str:
    n = len(addresses)
    order = [addresses[(turn + k) % n] for k in range(n)]
    return min(order, key=lambda a: outstanding[a])


def _busiest(addresses: list[str], outstanding: dict[str, int], turn: int) -> str:
    return max(addresses, key=lambda a: outstanding.get(a, 0))


def _counts_itself(addresses: list[str], outstanding: dict[str, int], turn: int) -> str:
    choice = _reference_pick(addresses, outstanding, turn)
    outstanding[choice] = outstanding.get(choice, 0) + 1
    return choice


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        (_reference_pick, "passed", "ties taken in turn"),
        (_first_minimum, "wrong", "break ties in turn"),
        (_needs_every_key, "error", "KeyError"),
        (_busiest, "wrong", "pick the minimum"),
        (_counts_itself, "wrong", "do not change the `outstanding` dict"),
    ],
)
def test_least_outstanding_checker(answer: Any, status: str, says: str) -> None:
    """The reference passes; ties, missing keys, max and side effects are named."""
    feedback = check_pick_least_outstanding(answer)
    assert feedback.status == status, feedback.message
    assert says in feedback.message


def test_checkers_report_the_stubs() -> None:
    """Untouched stubs are 'not done yet'."""

    def stub(*args: Any) -> Any:
        raise NotImplementedError

    assert check_staleness_bound(stub).status == "not_done"
    assert check_pick_least_outstanding(stub).status == "not_done"


# The notebook itself ------------------------------------------------------------------------------
def test_each_prediction_comes_right_before_the_cell_that_reveals_it() -> None:
    """quiz.predict(...) is a cell of its own, and the next code cell reveals the answer."""
    code = lesson_cells(LESSON, "code")
    quiz = load_quiz(QUIZ)
    assert sorted(PREDICTIONS) == sorted(p.id for p in quiz.predictions)
    for prediction, reveal in PREDICTIONS.items():
        call = f'quiz.predict("{QUIZ}", "{prediction}")'
        index = next(i for i, source in enumerate(code) if call in source)
        assert code[index].strip() == call, "a prediction cell holds the prediction only"
        assert reveal in code[index + 1], (prediction, code[index + 1][:80])


def test_prediction_and_quiz_answers_are_the_computed_numbers(
    runs: dict[str, DiscoveryRun],
) -> None:
    """Numeric answers are what the scenarios and the documented defaults give."""
    quiz = load_quiz(QUIZ)
    assert quiz.prediction("hardcoded_share").answer == round(
        100 * runs["hardcoded"].error_share(30, 120)
    )
    assert quiz.prediction("stale_window").answer == runs["registry"].unlisted_at("orders-2")
    assert quiz.prediction("ttl_errors").answer == stale_errors(30, crash_phase=0.5).errors
    assert quiz.question("eureka_worst_case").answer == 90 + 60 + 30
    assert quiz.question("mean_latency_round_robin").answer == round((50 + 50 + 1000) / 3)
    assert quiz.question("readiness_detection").answer == 3 * 10
    assert "2 × 90 s" in quiz.question("eureka_worst_case").explanation


def test_your_turn_cells_call_their_checkers_on_a_stub() -> None:
    """Two "Your turn" cells: each defines a stub and hands it to its checker on the last line."""
    turns = [source for source in lesson_cells(LESSON, "code") if "# Your turn" in source]
    assert len(turns) == 2
    for source in turns:
        assert "raise NotImplementedError" in source
        assert source.strip().splitlines()[-1].startswith("check_")


def test_lesson_ends_with_its_quiz_and_keeps_the_reference_code_for_going_further() -> None:
    """quiz.show is last; discovery.py is pointed to only in Going further."""
    cells = json.loads(LESSON.read_text())["cells"]
    assert lesson_cells(LESSON, "code")[-1].strip() == f'quiz.show("{QUIZ}")'
    going_further = next(
        i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Going further")
    )
    for i, cell in enumerate(cells):
        if "patterns/discovery.py" in "".join(cell["source"]):
            assert i == going_further, f"cell {i} points to the reference code"


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "150 of the 600 calls fail: after the crash, 33.3 % of the calls go to the dead address",
        "`orders-4` answers 0 calls",
        "17 calls fail instead of 150, all between t = 30.2 and 39.8 s",
        "last renewed its lease at t = 25 s, so the registry listed it until t = 40 s",
        "at t = 60 s, and answered 100 calls",
        "5, 12, 25, 50 and 75 failed calls for leases of 6, 15, 30, 60 and 90 s",
        "rate / 3 × (ttl − h / 2) = 5, 12.5, 25, 50 and 75",
        "75 s of calls to a dead instance for a crash halfway between renewals, up to 90 s",
        "17 calls fail instead of 12",
        "0 of 600",
        "sends 403 of 1209 calls to the slow instance, 33.3 %",
        "from the 67th percentile on: the mean is 367 ms and the p90 1000 ms",
        "sends it 87 calls, 7.2 %",
        "The mean drops to 118 ms and the p90 to 50 ms; the p99 stays at 1000 ms",
        "90 calls time out, 33.3 % of the calls after the hang",
        "20 calls time out, and `orders-2` is gone from the registry at t = 50.5 s",
        "so 180 s of calls to a crashed instance",
        "within 3 × 10 = 30 s",
        "renew 30 s, lease 90 s, eviction 60 s, client registry fetch 30 s",
        "below 85 % of the expected ones",
        "(at least 1 minute; the reaper runs every 30 s)",
        "check `Timeout` 10 s; HTTP check: 2xx `passing`, 429 `warning`, other `critical`",
        "probe every 10 s (`periodSeconds`), 1 s timeout, 3 failures in a row",
        "kube-proxy in iptables mode picks a ready pod at random",
    ]:
        assert claim in text, claim
