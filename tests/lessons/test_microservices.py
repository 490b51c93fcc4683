"""The numbers lesson 05 (microservices) states, recomputed and checked against theory."""

from __future__ import annotations

import math
import statistics
from typing import Any

import httpx
import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.errors import CircuitOpenError
from distlab.lessons.microservices import (
    HOP_FIXED,
    HOP_MEAN,
    HOP_MEAN_EXTRA,
    WORK,
    Capacity,
    catalog_outage,
    check_classify,
    check_orphans,
    crash_mid_saga,
    lost_answers,
    moving_parts,
    order_latencies,
    plot_latencies,
    plot_waterfall,
    replace_catalog,
    scale_catalog,
    trace_one_order,
)
from tests import REPO
from tests.lessons import lesson_cells, missing_calls
from tests.theory import SIGMAS

LESSON = REPO / "lessons" / "05_microservices.ipynb"

CALLS = [
    "order_latencies(orders=100, seed=5)",
    'trace_one_order(seed=5, request_id="order-42")',
    "scale_catalog(instances, rate=120, seconds=1.0, service_time=0.02, seed=7)",
    "catalog_outage(with_breaker=breaker, seconds=60, seed=3)",
    "replace_catalog(orders=100, rate=25.0, seed=11)",
    "lost_answers(compensate=False, orders=100, loss=0.1, seed=2)",
    "lost_answers(compensate=True, orders=100, loss=0.1, seed=2)",
    "crash_mid_saga(seed=1)",
    "moving_parts()",
    "check_classify(classify)",
    "check_orphans(orphans)",
    'quiz.show("05_microservices")',
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


# 2. Latency --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def latencies() -> Any:
    return order_latencies(orders=100, seed=5)


def test_three_hops_cost_three_times_one_within_five_sigma(latencies: Any) -> None:
    """Mean latency is 3 hops x 1 ms (microservices) and 1 hop (monolith), 5-sigma bounds."""
    n = len(latencies.microservices)
    for values, hops in ((latencies.microservices, 3), (latencies.monolith, 1)):
        mean = statistics.mean(values)
        sd = math.sqrt(hops) * HOP_MEAN_EXTRA  # an exponential's sd is its mean
        assert abs(mean - hops * HOP_MEAN) <= SIGMAS * sd / math.sqrt(n)
        assert min(values) >= hops * HOP_FIXED  # the fixed part of every hop is paid
    assert f"{1000 * statistics.mean(latencies.microservices):.1f}" == "3.0"
    assert f"{1000 * statistics.mean(latencies.monolith):.1f}" == "1.0"


def test_the_latency_plot_is_a_labelled_log_scale_survival_curve(latencies: Any) -> None:
    """Two curves, log y axis, units on the x axis, a legend."""
    ax = plot_latencies(latencies)
    assert ax.get_yscale() == "log"
    assert "ms" in ax.get_xlabel() and ax.get_ylabel()
    assert len(ax.get_lines()) == 2 and ax.get_legend() is not None
    plt.close(ax.figure)


def test_the_waterfall_nests_the_calls_of_one_order() -> None:
    """orders encloses users then catalog; each service works WORK seconds; numbers as printed."""
    spans = trace_one_order(seed=5, request_id="order-42")
    assert [s.service for s in spans] == ["orders", "users", "catalog"]
    orders, users, catalog = spans
    assert orders.start < users.start < users.end < catalog.start < catalog.end < orders.end
    assert users.duration == pytest.approx(WORK) and catalog.duration == pytest.approx(WORK)
    assert orders.end - catalog.end == pytest.approx(WORK)
    assert [f"{1000 * s.start:.2f}" for s in spans] == ["1.41", "1.98", "3.24"]
    ax = plot_waterfall(spans)
    assert "ms" in ax.get_xlabel() and len(ax.patches) == 3
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="spans"):
        plot_waterfall([])


# 3-5. Benefits --------------------------------------------------------------------------------
@pytest.mark.parametrize(("instances", "printed"), [(1, "50.0"), (2, "99.3"), (3, "118.6")])
def test_throughput_is_min_of_offered_and_capacity(instances: int, printed: str) -> None:
    """Each catalog instance adds 1/service_time orders/s until the offered 120/s are served."""
    rate = scale_catalog(instances, rate=120, seconds=1.0, service_time=0.02, seed=7)
    assert rate == pytest.approx(min(120, instances / 0.02), rel=0.03)
    assert f"{rate:.1f}" == printed


def test_capacity_is_validated_by_name() -> None:
    """workers >= 1, service_time >= 0."""
    with pytest.raises(ValueError, match="workers"):
        Capacity(type("App", (), {"state": None})(), workers=0)
    with pytest.raises(ValueError, match="service_time"):
        Capacity(type("App", (), {"state": None})(), service_time=-1)


def test_a_catalog_outage_spares_users_and_the_breaker_spares_the_catalog() -> None:
    """Users answer 60/60 both ways; 6 calls and 6 slow orders with the breaker, 60 without."""
    on = catalog_outage(with_breaker=True, seconds=60, seed=3)
    off = catalog_outage(with_breaker=False, seconds=60, seed=3)
    assert (on.users_ok, off.users_ok) == (60, 60)
    assert (on.orders_failed, off.orders_failed) == (60, 60)
    # 5 failures open the breaker; it stays open 30 s; the trial at ~35 s fails: 5 + 1.
    assert (on.catalog_calls, on.slow_orders) == (6, 6)
    # Without a breaker every order tries once; a lost request needs no release.
    assert (off.catalog_calls, off.slow_orders) == (60, 60)


def test_replacing_the_catalog_under_load_fails_no_order() -> None:
    """100 orders placed, 0 failed, both versions served some."""
    swap = replace_catalog(orders=100, rate=25.0, seed=11)
    assert swap == {"placed": 100, "failed": 0, "served_by_v1": 52, "served_by_v2": 48}


# 6-8. Costs ---------------------------------------------------------------------------------
def test_lost_answers_leave_orphans_only_without_compensation() -> None:
    """Without compensation every lost reservation answer is an orphan; with the saga none is."""
    naive = lost_answers(compensate=False, orders=100, loss=0.1, seed=2)
    saga = lost_answers(compensate=True, orders=100, loss=0.1, seed=2)
    low, high = 100 * 0.1 - SIGMAS * math.sqrt(100 * 0.1 * 0.9), 100 * 0.1 + SIGMAS * 3
    assert low <= naive["failed"] <= high
    assert naive == {"failed": 8, "orphans": 8, "units_held_for_nothing": 8}
    assert saga == {"failed": 7, "orphans": 0, "units_held_for_nothing": 0}


def test_a_crash_mid_saga_is_repaired_and_the_retry_succeeds() -> None:
    """2 problems after the crash, 0 after the repair step, 201 on retry, 0 at the end."""
    crash = crash_mid_saga(seed=1)
    assert crash["client_saw"] == "RemoteProtocolError"
    assert crash["after_crash"] == [
        "order 1 is still pending (run the repair step)",
        "reservation order-1-1 holds stock for no confirmed order (an orphan)",
    ]
    assert crash["after_repair"] == [] and crash["at_the_end"] == []
    assert crash["retry_status"] == 201


def test_moving_parts_match_the_launcher() -> None:
    """4 processes (3 services + registry), 3 databases, 6 health endpoints, 3 calls per order."""
    parts = moving_parts()
    assert parts["microservices"] == {
        "processes": 4,
        "ports": 4,
        "databases": 3,
        "network calls per order": 3,
        "health endpoints to probe": 6,
    }
    assert set(parts["monolith"].values()) <= {1, 2}


# Your turn checkers ----------------------------------------------------------------------------
def reference_classify(result: object) -> str:
    if isinstance(result, httpx.Response):
        return "confirmed" if result.status_code in (200, 201) else "rejected"
    if isinstance(result, httpx.ConnectError | httpx.ConnectTimeout | CircuitOpenError):
        return "failed"
    return "compensate"


def reference_orphans(
    orders: list[dict[str, Any]], reservations: list[dict[str, Any]]
) -> list[str]:
    owned = {o["reservation_id"] for o in orders if o["status"] == "confirmed"}
    return [r["id"] for r in reservations if r["status"] == "reserved" and r["id"] not in owned]


def test_the_reference_answers_pass_the_checkers() -> None:
    """Both checkers accept the reference answers."""
    assert check_classify(reference_classify).passed
    assert check_orphans(reference_orphans).passed


def test_the_untouched_stubs_are_not_done_yet() -> None:
    """A stub that raises NotImplementedError gets "not done yet", never an exception."""

    def stub(*args: Any) -> Any:
        raise NotImplementedError

    for check in (check_classify, check_orphans):
        feedback = check(stub)
        assert feedback.status == "not_done"


def _only_201(result: object) -> str:
    if isinstance(result, httpx.Response):
        return "confirmed" if result.status_code == 201 else "rejected"
    return reference_classify(result)


def _timeouts_are_nothing(result: object) -> str:
    return reference_classify(result) if isinstance(result, httpx.Response) else "failed"


def _everything_is_doubt(result: object) -> str:
    return reference_classify(result) if isinstance(result, httpx.Response) else "compensate"


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (_timeouts_are_nothing, "after httpx.ReadTimeout (the answer never came) the saga should"),
        (_everything_is_doubt, "after httpx.ConnectError (connection refused) the saga should"),
        (_only_201, "after a 200 answer (the same reservation again) the saga should confirm"),
    ],
)
def test_each_classify_bug_gets_its_own_message(bug: Any, message: str) -> None:
    """Treating timeouts as 'nothing happened', refusals as 'maybe', or a 200 as a no."""
    feedback = check_classify(bug)
    assert feedback.status == "wrong" and message in feedback.message


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (
            lambda orders, reservations: [
                r["id"]
                for r in reservations
                if r["status"] == "reserved"
                and not any(o["reservation_id"] == r["id"] for o in orders)
            ],
            "with a failed order still holding stock the orphans are ['order-1-1']",
        ),
        (
            lambda orders, reservations: [
                r["id"]
                for r in reservations
                if r["id"]
                not in {o["reservation_id"] for o in orders if o["status"] == "confirmed"}
            ],
            "with a released reservation of a failed attempt the orphans are []",
        ),
        (lambda orders, reservations: {"order-1-1"}, "return a list of reservation ids, got set"),
    ],
)
def test_each_orphans_bug_gets_its_own_message(bug: Any, message: str) -> None:
    """Any order owning stock, counting released reservations, returning a set."""
    feedback = check_orphans(bug)
    assert feedback.status == "wrong" and message in feedback.message


# The notebook itself ----------------------------------------------------------------------------
def test_lesson_ends_with_its_quiz_and_the_quiz_is_valid() -> None:
    """The last code cell shows the quiz; 5 questions with per-option feedback, 3 predictions."""
    assert lesson_cells(LESSON, "code")[-1].strip() == 'quiz.show("05_microservices")'
    quiz = load_quiz(REPO / "quizzes" / "05_microservices.yaml")
    assert len(quiz.questions) == 5 and len(quiz.predictions) == 3
    source = "\n".join(lesson_cells(LESSON, "code"))
    for prediction in quiz.predictions:
        assert f'quiz.predict("05_microservices", "{prediction.id}")' in source


def test_predictions_come_before_their_reveals() -> None:
    """Each quiz.predict cell comes before the cell that computes the answer."""
    code = lesson_cells(LESSON, "code")
    order = {
        name: i
        for i, cell in enumerate(code)
        for name in (
            "hops_cost",
            "outage_calls",
            "lost_answers_stock",
            "order_latencies(",
            "catalog_outage(",
            "lost_answers(compensate",
        )
        if name in cell
    }
    assert order["hops_cost"] < order["order_latencies("]
    assert order["outage_calls"] < order["catalog_outage("]
    assert order["lost_answers_stock"] < order["lost_answers(compensate"]


def test_lesson_has_two_your_turn_cells_with_stubs() -> None:
    """Two 'Your turn' cells, each a stub that raises NotImplementedError, checked on the spot."""
    turns = [c for c in lesson_cells(LESSON, "code") if "# Your turn" in c]
    assert len(turns) == 2
    assert all("raise NotImplementedError" in c and "check_" in c for c in turns)


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states is one the tests above recompute."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "the lamp's stock goes from 10 to 8 once",
        "The mean order takes 3.0 ms against 1.0 ms",
        "each service works 0.3 ms here",
        "in 20 ms, so 50 orders/s",
        "Clients send 120 orders/s",
        "One instance completes 50 orders/s, two 99 and three 119",
        "The users service answers all 60 look-ups",
        "only 6 requests reach for the dead catalog and only 6 orders wait for the timeout",
        "without it all 60 do",
        "All 100 orders are placed and none fails: "
        "the old version served 52 reservations, the new one 48",
        "Without compensation 8 orders failed and 8 reservations hold 8 units",
        "With the saga 7 orders failed and 0 reservations are left holding stock",
        "its reservation holds stock for no confirmed order: 2 problems",
        "marks them `failed`: 0 problems",
        "and gets `201`",
        "Four processes instead of one, three databases to back up, four ports, "
        "six health endpoints",
    ]:
        assert claim in text, claim
