"""The numbers lesson 07 (bulkhead) states, recomputed and checked against theory."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from typing import Any

import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.errors import BulkheadFullError
from distlab.lessons import bulkhead as lesson
from distlab.lessons.bulkhead import (
    ChapterBulkhead,
    NaiveBulkhead,
    PollingBulkhead,
    burst,
    cancellation_leak,
    check_fallback,
    check_slots_needed,
    concurrency_in_flight,
    erlang_b,
    erlang_c,
    fairness,
    fifo_wait_beyond,
    hung_threads,
    plot_rejections,
    plot_shop,
    plot_waits,
    rejection_by_slots,
    shop,
)
from distlab.patterns.bulkhead import Bulkhead
from tests import REPO
from tests.lessons import lesson_cells, missing_calls
from tests.theory import SIGMAS, fraction_bounds

LESSON = REPO / "lessons" / "07_bulkhead.ipynb"
QUIZ = "07_bulkhead"

CALLS = [
    'shared = shop(isolation="shared")',
    'isolated = shop(isolation="bulkheads")',
    'chapter = shop(isolation="chapter")',
    "plot_shop(shared, isolated)",
    "check_fallback(reviews_or_fallback)",
    "print(inspect.getsource(ChapterBulkhead))",
    "burst(ChapterBulkhead(4), calls=10)",
    "burst(Bulkhead(4, max_queue=6, max_wait=0.2), calls=10)",
    'fifo = fairness("fifo")',
    'polling = fairness("polling")',
    "plot_waits(fifo, polling, theory=(4, 36.0, 0.1))",
    "print(inspect.getsource(NaiveBulkhead.execute))",
    "naive = cancellation_leak(NaiveBulkhead(4))",
    "faithful = cancellation_leak(ChapterBulkhead(4))",
    "hung = hung_threads(threads=2, timeout=0.02)",
    "little = concurrency_in_flight(rate=20, mean_latency=0.25)",
    "measured = rejection_by_slots(rate=16, mean_latency=0.25, slots=(2, 4, 6, 8))",
    "erlang_b(slots, 4.0)",
    "plot_rejections(measured, 4.0)",
    "rejection_by_slots(rate=16, mean_latency=0.25, slots=(10, 12))",
    "check_slots_needed(slots_needed)",
]

PREDICTIONS = {
    # prediction id: a call of the code cell right after the prediction
    "stock_share": 'shared = shop(isolation="shared")',
    "reviews_share": 'isolated = shop(isolation="bulkheads")',
    "polling_tail": 'fifo = fairness("fifo")',
    "leak_refusing_from": "naive = cancellation_leak(NaiveBulkhead(4))",
    "slots_at_average": "measured = rejection_by_slots(",
}


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


@pytest.fixture(scope="module")
def runs() -> dict[str, lesson.ShopRun]:
    """The three shop runs of sections 1 to 3."""
    return {kind: shop(isolation=kind) for kind in ("shared", "bulkheads", "chapter")}


# 1. and 2. The shop -----------------------------------------------------------------------
def test_lesson_numbers_for_the_shared_pool(runs: dict[str, lesson.ShopRun]) -> None:
    """/stock: 10.9 % answered in the slowdown, a median 1 s; /reviews: 68 %, after 3.95 s."""
    shared = runs["shared"]
    assert f"{shared.during('stock'):.1%}" == "10.9%"
    assert shared.share("stock", "ok", 0, 20) == 1.0
    assert round(shared.median_latency("stock", 20, 80) * 1000) == 1000  # the 1 s pool wait
    assert f"{shared.during('reviews'):.0%}" == "68%"
    assert f"{shared.median_latency('reviews', 20, 80):.2f}" == "3.95"
    # Every /stock request that was not answered waited the full pool wait for a 503.
    assert shared.during("stock", "pool_timeout") == pytest.approx(1 - shared.during("stock"))
    assert (
        len(shared.select("stock", 20, 80)) == 1200 and len(shared.select("reviews", 20, 80)) == 300
    )


@pytest.mark.parametrize(("workers", "starves"), [(10, True), (14, True), (17, False)])
def test_littles_law_says_when_the_shared_pool_starves(workers: int, starves: bool) -> None:
    """Slow reviews need 5/s x 3 s = 15 workers (plus 0.4 for /stock): fewer starve /stock."""
    needed = 5 * 3.0 + 20 * 0.02
    assert (workers < needed) is starves
    result = shop(isolation="shared", workers=workers)
    assert (result.during("stock") < 0.5) is starves


def test_lesson_numbers_for_the_bulkheads(runs: dict[str, lesson.ShopRun]) -> None:
    """/stock 100 % in 20 ms; /reviews 4 slots / 3 s / 5 per s = 26.7 %, the rest refused."""
    isolated = runs["bulkheads"]
    assert isolated.during("stock") == 1.0
    assert round(isolated.median_latency("stock", 20, 80) * 1000) == 20
    capacity = 4 / 3.0  # slots / seconds each slow call holds one
    assert isolated.during("reviews") == pytest.approx(capacity / 5, abs=1 / 300)
    assert f"{isolated.during('reviews'):.1%}" == "26.7%"
    assert f"{isolated.during('reviews', 'rejected'):.1%}" == "73.3%"
    assert isolated.median_latency("reviews", 20, 80) == 0.0  # refused at once
    reviews = isolated.metrics["reviews"]
    assert (reviews.admitted, reviews.rejected, reviews.peak_active) == (280, 220, 4)
    assert isolated.metrics["inventory"].rejected == 0


def test_the_chapters_bulkhead_does_as_well_in_the_shop(runs: dict[str, lesson.ShopRun]) -> None:
    """Same 100 % and 26.7 %: without cancellations or bursts it is a correct limit."""
    assert [r.outcome for r in runs["chapter"].requests] == [
        r.outcome for r in runs["bulkheads"].requests
    ]


def test_shop_plot_has_two_runs_two_endpoints_and_labelled_axes(
    runs: dict[str, lesson.ShopRun],
) -> None:
    """2 x 2 panels, one line per endpoint, units on the axes, a log time scale."""
    axes = plot_shop(runs["shared"], runs["bulkheads"])
    try:
        assert axes[0][0].get_ylabel() == "requests answered (%)"
        assert axes[1][0].get_ylabel() == "median time to an answer (ms)"
        assert axes[1][0].get_yscale() == "log"
        assert axes[1][1].get_xlabel() == "virtual time of arrival (s)"
        for row in axes:
            for ax in row:
                assert len(ax.get_lines()) == 2
    finally:
        plt.close("all")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"isolation": "none"}, "isolation"),
        ({"workers": 0}, "workers"),
        ({"reviews_slots": 0}, "reviews_slots"),
        ({"slow_reviews_time": 0}, "slow_reviews_time"),
        ({"slowdown": (30, 20)}, "slowdown"),
    ],
)
def test_shop_rejects_settings_that_cannot_run(options: dict[str, Any], name: str) -> None:
    """A bad setting is a ValueError that names it."""
    with pytest.raises(ValueError, match=name):
        shop(**options)


def test_shop_results_refuse_an_empty_window(runs: dict[str, lesson.ShopRun]) -> None:
    """Asking about a window with no request is an error, not a division by zero."""
    with pytest.raises(ValueError, match="no stock request"):
        runs["shared"].share("stock", "ok", 500, 600)
    with pytest.raises(ValueError, match="no reviews request"):
        runs["shared"].median_latency("reviews", 500, 600)


# 3. The chapter's gaps ---------------------------------------------------------------------
@pytest.mark.parametrize(("calls", "limit"), [(10, 4), (7, 3), (3, 5)])
def test_a_burst_without_a_queue_serves_the_limit_and_a_queue_serves_all(
    calls: int, limit: int
) -> None:
    """The chapter serves min(calls, limit); a queue serves all, in ceil(calls/limit) rounds."""
    chapter = burst(ChapterBulkhead(limit), calls=calls, service_time=0.05)
    assert (chapter.served, chapter.refused) == (min(calls, limit), max(0, calls - limit))
    queued = burst(Bulkhead(limit, max_queue=calls, max_wait=10.0), calls=calls, service_time=0.05)
    assert (queued.served, queued.refused) == (calls, 0)
    assert queued.longest_wait == pytest.approx((math.ceil(calls / limit) - 1) * 0.05)


def test_lesson_numbers_for_the_burst() -> None:
    """6 of 10 refused; with a queue of 6 and 0.2 s all 10 served, the longest wait 100 ms."""
    assert burst(ChapterBulkhead(4), calls=10) == lesson.BurstResult(10, 4, 6, 0.0)
    queued = burst(Bulkhead(4, max_queue=6, max_wait=0.2), calls=10)
    assert (queued.served, queued.refused, round(queued.longest_wait * 1000)) == (10, 0, 100)


@pytest.fixture(scope="module")
def waits() -> dict[str, lesson.FairnessResult]:
    """Section 3.2's two runs."""
    return {kind: fairness(kind) for kind in ("fifo", "polling")}


def test_lesson_numbers_for_fairness(waits: dict[str, lesson.FairnessResult]) -> None:
    """The medians, tails, overtakings and wake-ups the prose quotes."""
    fifo, polling = waits["fifo"], waits["polling"]
    ms = [round(r.percentile(q) * 1000) for r in (fifo, polling) for q in (0.5, 0.99)]
    assert ms == [178, 1045, 120, 2800]
    assert round(max(fifo.waits) * 1000) == 1177 and round(max(polling.waits) * 1000) == 4700
    assert (fifo.overtaken, fifo.wakeups, fifo.refused, len(fifo.waits)) == (0, 0, 0, 2249)
    assert (polling.overtaken, len(polling.waits), polling.refused) == (1264, 2241, 8)
    assert polling.wakeups == 36510
    theory_p99 = math.log(erlang_c(4, 3.6) / 0.01) / (4 / 0.1 - 36)
    assert round(theory_p99 * 1000) == 1092


@pytest.mark.parametrize("seed", [8, 9])
def test_polling_is_unfair_and_fifo_is_not_for_other_seeds(seed: int) -> None:
    """Polling overtakes and has the longer tail; hand-over never overtakes (other seeds too)."""
    fifo = fairness("fifo", seed=seed, duration=30)
    polling = fairness("polling", seed=seed, duration=30)
    assert fifo.overtaken == 0 and polling.overtaken > len(polling.waits) // 4
    assert polling.percentile(0.99) > 1.5 * fifo.percentile(0.99)


def test_fifo_waits_match_the_mmc_queue() -> None:
    """The mean FIFO wait of 6 independent runs is within 5 std errors of C / (c/W - λ)."""
    means = [
        statistics.fmean(fairness("fifo", seed=seed, duration=40).waits) for seed in range(30, 36)
    ]
    theory = erlang_c(4, 3.6) / (4 / 0.1 - 36)  # 0.197 s
    error = statistics.stdev(means) / math.sqrt(len(means))
    assert abs(statistics.fmean(means) - theory) < SIGMAS * error, (means, theory)


def test_the_polling_port_gives_up_after_max_wait() -> None:
    """PollingBulkhead refuses a caller that found no slot for max_wait seconds."""
    result = burst(PollingBulkhead(1, max_wait=0.1, poll=0.02), calls=4, service_time=0.06)
    assert (result.served, result.refused) == (2, 2)


def test_lesson_numbers_for_the_cancellation_leak() -> None:
    """No finally: 12 served, all refused from t = 8 s; with it: 160 served, 40 timed out."""
    naive = cancellation_leak(NaiveBulkhead(4))
    assert (naive.served, naive.timed_out, naive.refused) == (12, 4, 184)
    assert (naive.slots_lost, naive.refusing_from) == (4, 8.0)
    faithful = cancellation_leak(ChapterBulkhead(4))
    assert (faithful.served, faithful.timed_out, faithful.refused, faithful.slots_lost) == (
        160,
        40,
        0,
        0,
    )
    assert faithful.refusing_from is None


@pytest.mark.parametrize("slots", [1, 2, 6])
def test_the_leak_loses_one_slot_per_timeout_until_none_is_left(slots: int) -> None:
    """Theory: the k-th slow call (one every 2.5 s) leaks the k-th slot 1 s after it starts."""
    naive = cancellation_leak(NaiveBulkhead(slots))
    assert naive.slots_lost == slots == naive.timed_out
    last_slow_start = (slots - 1) * 2.5
    assert naive.refusing_from is not None
    assert last_slow_start < naive.refusing_from <= last_slow_start + 1.0


# 4. Threads --------------------------------------------------------------------------------
def test_lesson_numbers_for_hung_threads() -> None:
    """2 timed out, 2 threads still busy, the third call refused, all free after release."""
    assert hung_threads(threads=2, timeout=0.02) == lesson.HungThreadsResult(2, 2, 2, 1, 0)


# 5. Sizing ---------------------------------------------------------------------------------
def test_lesson_numbers_for_littles_law() -> None:
    """4.88 in flight, measured two ways; the theory's 5 within 5 sigma."""
    little = concurrency_in_flight(rate=20, mean_latency=0.25)
    assert f"{little.mean_in_flight:.2f}" == f"{little.littles_law:.2f}" == "4.88"
    # Var(L) from the arrival count (Poisson) and the mean of exponential latencies.
    n = little.arrivals
    sd = math.sqrt((20 / little.duration) * 0.25**2 + (20**2) * 0.25**2 / n)
    assert abs(little.mean_in_flight - 20 * 0.25) < SIGMAS * sd


@pytest.mark.parametrize(("rate", "latency"), [(5.0, 1.0), (40.0, 0.05)])
def test_littles_law_holds_on_other_runs(rate: float, latency: float) -> None:
    """The time-average in flight equals measured rate x measured latency, up to edge effects."""
    little = concurrency_in_flight(rate=rate, mean_latency=latency, duration=200, seed=4)
    assert little.mean_in_flight == pytest.approx(little.littles_law, rel=0.02)


def test_erlang_formulas_match_known_values() -> None:
    """B(1, A) = A / (1 + A); B(4, 4) = 31.1 %; C >= B; P(wait > 0) = C."""
    assert erlang_b(1, 3.0) == pytest.approx(0.75)
    assert erlang_b(0, 2.0) == 1.0
    assert f"{erlang_b(4, 4.0):.1%}" == "31.1%"
    assert f"{erlang_b(8, 8.0):.1%}" == "23.6%"
    assert erlang_c(4, 3.6) > erlang_b(4, 3.6)
    assert fifo_wait_beyond(0.0, slots=4, rate=36.0, mean_service=0.1) == erlang_c(4, 3.6)
    with pytest.raises(ValueError, match="offered"):
        erlang_c(4, 4.0)
    with pytest.raises(ValueError, match="offered"):
        erlang_b(4, -1.0)


def test_measured_refusals_match_the_erlang_loss_formula() -> None:
    """Each measured share is within 5 sigma of Erlang B, and the lesson's numbers are these."""
    measured = rejection_by_slots(rate=16, mean_latency=0.25, slots=(2, 4, 6, 8))
    shares = []
    for slots, share, calls in measured:
        low, high = fraction_bounds(calls, erlang_b(slots, 4.0))
        assert low <= share <= high, (slots, share, erlang_b(slots, 4.0))
        shares.append(f"{share:.1%}")
    assert shares == ["62.1%", "30.3%", "10.1%", "3.6%"]
    assert [f"{erlang_b(n, 4.0):.1%}" for n in (4, 8)] == ["31.1%", "3.0%"]
    assert [f"{erlang_b(n, 4.0):.2%}" for n in (10, 12)] == ["0.53%", "0.06%"]


def test_rejection_plot_draws_the_formula_and_the_measurements() -> None:
    """One curve, one set of points, Little's average marked; labelled axes."""
    ax = plot_rejections([(2, 0.6, 100), (4, 0.3, 100)], 4.0)
    try:
        assert ax.get_xlabel() == "bulkhead size (slots)"
        assert ax.get_ylabel() == "calls refused (%)"
        assert len(ax.get_lines()) == 3
    finally:
        plt.close("all")


def test_wait_plot_is_a_survival_curve_on_a_log_scale(
    waits: dict[str, lesson.FairnessResult],
) -> None:
    """Two step curves and the theory line; the share axis is logarithmic."""
    ax = plot_waits(waits["fifo"], waits["polling"], theory=(4, 36.0, 0.1))
    try:
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "time waited for a slot (ms)"
        assert len(ax.get_lines()) == 3
    finally:
        plt.close("all")


@pytest.mark.parametrize(
    ("run", "name"),
    [
        (lambda: burst(ChapterBulkhead(1), calls=0), "calls"),
        (lambda: fairness("random"), "kind"),  # type: ignore[arg-type]
        (lambda: cancellation_leak(ChapterBulkhead(1), timeout=0), "timeout"),
        (lambda: hung_threads(threads=0), "threads"),
        (lambda: concurrency_in_flight(rate=0), "rate"),
        (lambda: rejection_by_slots(slots=(0,)), "slots"),
    ],
)
def test_scenarios_reject_settings_that_cannot_run(run: Any, name: str) -> None:
    """A bad setting is a ValueError that names it."""
    with pytest.raises(ValueError, match=name):
        run()


# Your turn: the checkers ----------------------------------------------------------------------
async def _reference_fallback(bulkhead: Any, fetch_reviews: Any) -> Any:
    try:
        return await bulkhead.execute(fetch_reviews)
    except BulkheadFullError:
        return []


async def _catches_everything(bulkhead: Any, fetch_reviews: Any) -> Any:
    try:
        return await bulkhead.execute(fetch_reviews)
    except Exception:
        return []


async def _bypasses_the_bulkhead(bulkhead: Any, fetch_reviews: Any) -> Any:
    return await fetch_reviews()


async def _returns_none(bulkhead: Any, fetch_reviews: Any) -> Any:
    try:
        return await bulkhead.execute(fetch_reviews)
    except BulkheadFullError:
        pass


async def _fetches_twice(bulkhead: Any, fetch_reviews: Any) -> Any:
    try:
        await bulkhead.execute(fetch_reviews)
    except BulkheadFullError:
        return []
    return await fetch_reviews()


async def _waits_then_falls_back(bulkhead: Any, fetch_reviews: Any) -> Any:
    try:
        return await bulkhead.execute(fetch_reviews)
    except BulkheadFullError:
        await asyncio.sleep(1.0)  # "give it a second"
        return []


def test_fallback_checker_passes_the_reference_answer() -> None:
    """The reference answer passes with a summary of what was checked."""
    feedback = check_fallback(_reference_fallback)
    assert feedback.status == "passed", feedback.message
    assert "[] at once" in feedback.message


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (_catches_everything, "catch BulkheadFullError only"),
        (_bypasses_the_bulkhead, "call fetch_reviews through the bulkhead"),
        (_returns_none, "should return the fallback [], got None"),
        (_fetches_twice, "fetch_reviews ran 2 time(s)"),
        (_waits_then_falls_back, "the fallback should come at once; it took 1 s"),
    ],
)
def test_fallback_checker_names_each_realistic_bug(answer: Any, says: str) -> None:
    """Each bug gets its own message, never an exception."""
    feedback = check_fallback(answer)
    assert feedback.status == "wrong", feedback.message
    assert says in feedback.message


def test_fallback_checker_reports_the_stub_and_a_crash() -> None:
    """The untouched stub is 'not done yet'; a student's crash is named, never raised."""

    async def stub(bulkhead: Any, fetch_reviews: Any) -> Any:
        raise NotImplementedError

    assert check_fallback(stub).status == "not_done"

    async def passes_a_coroutine(bulkhead: Any, fetch_reviews: Any) -> Any:
        return await bulkhead.execute(fetch_reviews())

    feedback = check_fallback(passes_a_coroutine)
    assert feedback.status == "error" and "TypeError" in feedback.message


def _reference_slots(rate: float, latency: float, headroom: float) -> int:
    return math.ceil(rate * latency * headroom)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda r, w, h: round(r * w * h), "round up (math.ceil)"),
        (lambda r, w, h: int(r * w * h), "round up (math.ceil)"),
        (lambda r, w, h: math.ceil(r * w), "multiply by the headroom"),
        (lambda r, w, h: r * w * h, "return a whole number of slots"),
        (lambda r, w, h: math.ceil(r * w * 1000 * h), "Little's law"),
    ],
)
def test_sizing_checker_names_each_realistic_bug(answer: Any, says: str) -> None:
    """Rounding down, no headroom, a float, milliseconds: each named."""
    feedback = check_slots_needed(answer)
    assert feedback.status == "wrong", feedback.message
    assert says in feedback.message


def test_sizing_checker_passes_the_reference_and_reports_the_stub() -> None:
    """ceil(rate x latency x headroom) passes; the stub is not done yet."""
    assert check_slots_needed(_reference_slots).status == "passed"

    def stub(rate: float, latency: float, headroom: float) -> int:
        raise NotImplementedError

    assert check_slots_needed(stub).status == "not_done"


# The notebook itself ---------------------------------------------------------------------------
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


def test_prediction_and_quiz_answers_are_the_computed_numbers() -> None:
    """Numeric answers are what the scenarios and formulas compute."""
    quiz = load_quiz(QUIZ)
    assert quiz.prediction("reviews_share").answer == pytest.approx(100 * 4 / 15, abs=0.05)
    assert (
        quiz.prediction("leak_refusing_from").answer
        == cancellation_leak(NaiveBulkhead(4)).refusing_from
    )
    assert quiz.prediction("slots_at_average").answer == round(100 * erlang_b(4, 4.0))
    assert quiz.question("littles_law_slots").answer == 40 * 0.25
    assert quiz.question("retry_inside").answer == 5 * (3 * 2 + 2 * 1)
    assert "23.6 %" in quiz.question("erlang_headroom").options[1].feedback
    explanation = quiz.question("erlang_headroom").explanation
    assert "12 slots for 8 erlangs refuse about 5 %, 14 slots under 2 %" in explanation
    assert f"{erlang_b(12, 8.0):.0%}" == "5%" and erlang_b(14, 8.0) < 0.02


def test_your_turn_cells_call_their_checkers_on_a_stub() -> None:
    """Two "Your turn" cells: each defines a stub and hands it to its checker on the last line."""
    turns = [source for source in lesson_cells(LESSON, "code") if "# Your turn" in source]
    assert len(turns) == 2
    for source in turns:
        assert "raise NotImplementedError" in source
        assert source.strip().splitlines()[-1].startswith("check_")


def test_lesson_ends_with_its_quiz_and_keeps_the_reference_code_for_going_further() -> None:
    """quiz.show is last; no getsource(Bulkhead); patterns/bulkhead.py only in Going further."""
    cells = json.loads(LESSON.read_text())["cells"]
    code = lesson_cells(LESSON, "code")
    assert code[-1].strip() == f'quiz.show("{QUIZ}")'
    assert "getsource(Bulkhead" not in "\n".join(code)
    going_further = next(
        i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Going further")
    )
    for i, cell in enumerate(cells):
        if "patterns/bulkhead.py" in "".join(cell["source"]):
            assert i == going_further, f"cell {i} points to the reference code"


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "20 × 0.02 + 5 × 0.05 = 0.65 workers",
        "`/stock` answers only 10.9 % of its requests",
        "its median answer comes after 1000 ms",
        "Before the slowdown it answered 100 %, in 20 ms.",
        "still gets 68 % of its requests answered, after a median 3.95 s",
        "5 per second × 3 s = 15 workers, more than the 10 there are",
        "`/stock` answers 100 % of its requests, in a median 20 ms",
        "`/reviews` serves 26.7 %",
        "4 / 15 = 26.7 %",
        "The other 73.3 %",
        "280 reviews calls admitted, 220 refused, at most 4 at a time",
        "the cell prints `100 %` and `26.7 %`",
        "refuses 6 of the 10 calls",
        "all 10 are served, the longest after waiting 100 ms",
        "(120 ms against 178 ms)",
        "its p99 is 2800 ms against 1045 ms",
        "its longest wait is 4700 ms against 1177 ms",
        "1264 of the 2241 callers were overtaken",
        "8 gave up after 5 s",
        "36510 wake-ups in one minute",
        "a p99 of 1092 ms",
        "serves 12 of 200 calls: from t = 8 s on it refuses every call, with 4 slots",
        "Four timeouts were enough",
        "serves all 160 fast calls; the 40 slow ones time out",
        "after 20 ms",
        "the third call was refused",
        "is 4.88, and the measured arrival rate times the measured mean latency is 4.88",
        "the theoretical 20 × 0.25 = 5",
        "refuse 30.3 % of the calls (the formula says 31.1 %); 8 slots still refuse 3.6 % "
        "(formula: 3.0 %)",
        "The formula predicts 0.53 % and 0.06 %",
        "25 calls, `maxWaitDuration` 0",
        "queue 100, `keepAliveDuration` 20 ms",
        "(1000 permits when no limiter is configured)",
        "`Retry ( CircuitBreaker ( RateLimiter ( TimeLimiter ( Bulkhead ( call ) ) ) ) )`",
    ]:
        assert claim in text, claim
