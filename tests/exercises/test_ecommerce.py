"""The e-commerce exercise: its machinery (Market, run_orders), structure, release and grading."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import distlab
from distlab.course.grading import Course, GradeReport
from distlab.exercises.ecommerce import FAULTS, Market, Outcome, run_orders
from tests import REPO, submissions
from tests.exercises import nbgrader_checks as checks
from tests.submissions import edit_cell

SLUG = "ecommerce"
TESTS = {
    "test_call_discovery": 2,
    "test_call_breaker": 2,
    "test_place_confirms": 2,
    "test_place_rejects": 2,
    "test_place_is_idempotent": 2,
    "test_compensates": 3,
    "test_repair": 2,
    "test_under_faults": 3,
}
FULL_MARKS = sum(TESTS.values())


def reference_desk() -> type:
    """The OrderDesk class of the solution notebook, as a student would type it."""
    nb = checks.notebook(submissions.solution_path(SLUG))
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", "impl_order_desk"):
        exec(checks.without_markers(checks.cell(nb, grade_id).source), namespace)
    desk: type = namespace["OrderDesk"]
    return desk


def desk_for(market: Market, cls: type | None = None) -> Any:
    return (cls or reference_desk())(
        http=market.http, resolve=market.resolve, breakers=market.breakers
    )


# --- the machinery ------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reference_places_every_order_once_under_faults_and_an_outage(seed: int) -> None:
    """30 orders, 10 % of every fault, a catalog outage: no problem, every fault kind seen."""

    async def main() -> Any:
        async with Market(seed=seed, faults=FAULTS) as market:
            market.transports["catalog"].outage(2, 8, mode="error")
            return await run_orders(market, desk_for(market), orders=30)

    summary = distlab.run(main, seed=seed)
    assert summary.problems == [], f"seed {seed}"
    assert {o.status for o in summary.outcomes.values()} == {"confirmed"}
    assert all(summary.faults.get(k, 0) > 0 for k in ("request_lost", "response_lost", "error"))


def test_problems_name_orphans_lost_stock_and_the_seed() -> None:
    """A desk that never compensates leaves orphan reservations; messages name them and the seed."""
    cls = reference_desk()

    class NoCompensation(cls):  # type: ignore[misc, valid-type]
        async def release(self, reservation: str) -> bool:
            return True  # pretends to have released it

    async def main() -> Any:
        async with Market(seed=5, faults=FAULTS) as market:
            return await run_orders(market, desk_for(market, NoCompensation), orders=30)

    summary = distlab.run(main, seed=5)
    assert summary.problems, "30 orders under 10 % faults lose at least one answer"
    assert all("(seed 5)" in p for p in summary.problems)
    assert any("holds stock but no confirmed order owns it" in p for p in summary.problems)
    assert any("left, but 100 minus" in p for p in summary.problems)


def test_a_rejected_or_unfinished_valid_order_is_a_problem() -> None:
    """problems() reports valid orders that were rejected or never got a final answer."""

    async def main() -> list[str]:
        async with Market(seed=0) as market:
            ordered = {"a": [{"product_id": market.products[0], "quantity": 1}], "b": []}
            outcomes = {
                "a": Outcome("rejected", None, "nope"),
                "b": Outcome("failed", None, "lost"),
            }
            return await market.problems(outcomes, ordered)

    found = distlab.run(main)
    assert found == [
        "order 'a' was rejected (nope) though the user exists and the stock suffices (seed 0)",
        "order 'b' never got a final answer: lost (seed 0)",
    ]


def test_run_orders_refuses_a_desk_without_async_methods() -> None:
    """place and repair must be async def; the message says which."""

    class Sync:
        def place(self, *args: Any) -> None: ...

        async def repair(self) -> int:
            return 0

    async def main() -> None:
        async with Market() as market:
            with pytest.raises(TypeError, match=r"OrderDesk\.place must be an async def"):
                await run_orders(market, Sync())  # type: ignore[arg-type]

    distlab.run(main)


def test_the_market_spreads_calls_over_two_catalog_instances_on_one_database() -> None:
    """Discovery alternates catalog-1 and catalog-2; both see the same stock."""

    async def main() -> None:
        async with Market() as market:
            assert [await market.resolve("catalog") for _ in range(3)] == [
                "http://catalog-1",
                "http://catalog-2",
                "http://catalog-1",
            ]
            made = await market.http.put(
                "http://catalog-2/reservations/x",
                json={"items": [{"product_id": 1, "quantity": 7}]},
            )
            assert made.status_code == 201
            assert await market.stock_of(1) == 93
            assert market.requests_to("catalog") == 1 and market.requests_to("users") == 0

    distlab.run(main)


# --- structure, release, validation -------------------------------------------------
def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Part A 4, Part B 6, Part C 8: 18 points."""
    assert checks.points_by_part(SLUG) == {"A": 4.0, "B": 6.0, "C": 8.0}
    nb = checks.notebook(submissions.solution_path(SLUG))
    assert {
        c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in checks.grade_cells(nb)
    } == TESTS


def test_cells_follow_the_course_rules() -> None:
    """Named grade ids, split points, one-line docstrings, visible and hidden tests."""
    checks.check_cells(SLUG)


def test_solution_regions_sit_inside_the_class() -> None:
    """The class, its signatures and docstrings stay visible to the student."""
    checks.check_solution_regions(SLUG, ["impl_order_desk"])
    released = checks.cell(
        checks.notebook(submissions.release_path(SLUG)), "impl_order_desk"
    ).source
    for signature in (
        "def __init__(self, *, http, resolve, breakers):",
        "async def call(self, service, method, path, json=None):",
        "async def place(self, key, user_id, items):",
        "async def release(self, reservation):",
        "async def repair(self):",
    ):
        assert signature in released
    assert "self.unreleased" not in released


def test_the_reference_desk_has_the_specified_methods() -> None:
    """Keyword-only constructor; every method but __init__ is a coroutine function."""
    cls = reference_desk()
    params = inspect.signature(cls.__init__).parameters
    assert [p.kind for p in list(params.values())[1:]] == [inspect.Parameter.KEYWORD_ONLY] * 3
    for name in ("call", "place", "release", "repair"):
        assert inspect.iscoroutinefunction(getattr(cls, name)), name


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3."""
    checks.check_clean(SLUG)


def test_the_sandbox_hides_the_reference_orders_service() -> None:
    """nbgrader_config.py hides the orders service, its remote calls, the Shop and lesson 05."""
    hidden = Course(REPO).config.Sandbox.hidden_modules[SLUG]
    assert set(hidden) == {
        "distlab.services.ecommerce.orders",
        "distlab.services.ecommerce.remote",
        "distlab.services.ecommerce.inprocess",
        "distlab.lessons.microservices",
    }
    import distlab.exercises.ecommerce as machinery

    source = Path(machinery.__file__).read_text()
    assert not any(f"import {m.rsplit('.', 1)[1]}" in source or m in source for m in hidden)


@pytest.mark.slow
def test_committed_exercise_matches_a_fresh_release(tmp_path: Path) -> None:
    """exercises/ecommerce is exactly what nbgrader generates from the solution."""
    checks.check_release_is_fresh(SLUG, tmp_path)


@pytest.mark.slow
def test_nbgraders_validator_passes_the_solution_and_fails_every_test_of_the_release() -> None:
    """nbgrader validate: no failure in the solution; --invert: nothing passes in the release."""
    assert checks.validator().validate(str(submissions.solution_path(SLUG))) == {}
    inverted = checks.validator(invert=True).validate(str(submissions.release_path(SLUG)))
    assert inverted.get("passed", []) == []


# --- grading crafted submissions ----------------------------------------------------
def _edited(**replace: str) -> Callable[[], Any]:
    def craft() -> Any:
        nb = submissions.honest(SLUG)
        for old, new in replace.items():
            edit_cell(nb, "impl_order_desk", old, new)
        return nb

    return craft


NO_COMPENSATION = {
    "            # The reservation may have been made: compensate before giving up.\n"
    "            await self.release(reservation)\n": "",
}
ONE_RESERVATION_ID = {'reservation = f"{key}-{attempt}"': 'reservation = f"{key}-1"'}
NO_REPLAY = {
    'if known is not None and known.status != "failed":': "if False:",
}
FIVE_HUNDREDS_ARE_ANSWERS = {
    "            if response.status_code >= 500:\n"
    "                response.raise_for_status()"
    "  # a failure of the service: the breaker counts it\n": "",
}
FIXED_ADDRESS = {
    "address = await self.resolve(service)": (
        'address = "http://users" if service == "users" else "http://catalog-1"'
    ),
}
NO_REPAIR = {
    "        for reservation in sorted(self.unreleased):\n"
    "            await self.release(reservation)\n": "",
}

SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: submissions.honest(SLUG), set()),
    "untouched": (lambda: submissions.released(SLUG), set(TESTS)),
    "no_compensation": (
        _edited(**NO_COMPENSATION),
        {"test_compensates", "test_repair", "test_under_faults"},
    ),
    "one_reservation_id": (
        _edited(**ONE_RESERVATION_ID),
        {"test_compensates", "test_under_faults"},
    ),
    "no_replay": (_edited(**NO_REPLAY), {"test_place_is_idempotent"}),
    "five_hundreds_are_answers": (
        _edited(**FIVE_HUNDREDS_ARE_ANSWERS),
        {"test_call_breaker", "test_under_faults"},
    ),
    "fixed_address": (_edited(**FIXED_ADDRESS), {"test_call_discovery"}),
    "no_repair": (_edited(**NO_REPAIR), {"test_repair", "test_under_faults"}),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """Every crafted submission, graded by nbgrader in one batch with kernels started ahead."""
    crafted = {name: craft for name, (craft, _) in SUBMISSIONS.items()}
    folder = tmp_path_factory.mktemp("submissions")
    return submissions.grade_crafted(SLUG, crafted, folder, pool=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_loses_exactly_the_points_of_its_bug(
    graded: dict[str, GradeReport], name: str
) -> None:
    """Honest: 18/18; the release: 0; each bug fails exactly the tests it should."""
    report = graded[name]
    failing = {t.grade_id for t in report.tests if not t.passed}
    assert failing == SUBMISSIONS[name][1], report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - sum(TESTS[t] for t in failing)
