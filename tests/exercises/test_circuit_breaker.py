"""The circuit breaker exercise: structure, graded API, release in sync, nbgrader validation.

Crafted submissions with the bugs students really write are graded by nbgrader in one
batch, and each loses exactly the points of the tests it should fail.
"""

from __future__ import annotations

import ast
import inspect
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.validator import Validator

from distlab.course.grading import Course, GradeReport, release
from distlab.course.notebooks import clean_notebook, notebook_problems
from tests import REPO, submissions
from tests.submissions import edit_cell

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
SLUG = "circuit_breaker"
FULL_MARKS = 30.0
PART_HEADING = re.compile(r"^#+\s*Part\s+(\w+)\b.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)


def _nb(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def _grade_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if nbgrader_utils.is_grade(c)]


def _cell(nb: Any, grade_id: str) -> Any:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise AssertionError(f"no cell with grade_id {grade_id!r}")


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if "### " not in line)


def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Each "Part X (N points)" heading equals the points of the test cells under it."""
    nb = _nb(SOLUTION)
    parts: dict[str, float] = {}
    heading_points: dict[str, float] = {}
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = PART_HEADING.search(cell.source)
            if match:
                current = match.group(1)
                heading_points[current] = float(match.group(2))
                parts[current] = 0.0
        elif nbgrader_utils.is_grade(cell):
            assert current is not None, f"{cell.metadata.nbgrader.grade_id} comes before any Part"
            parts[current] += float(cell.metadata.nbgrader.points)
    assert set(heading_points) == {"A", "B"}
    assert parts == heading_points == {"A": 22, "B": 8}
    assert sum(parts.values()) == FULL_MARKS


def test_points_are_split_by_behaviour() -> None:
    """Partial work earns partial credit: no test cell is worth more than 3 of 30 points."""
    cells = _grade_cells(_nb(SOLUTION))
    assert len(cells) >= 10
    assert max(float(c.metadata.nbgrader.points) for c in cells) <= 3


def test_grade_ids_are_unique_names_not_hashes() -> None:
    """grade_ids read like names (test_opening), never like hashes (cell-3f2a9c)."""
    nb = _nb(SOLUTION)
    ids = [c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))
    for grade_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", grade_id), grade_id
        assert not re.search(r"[0-9a-f]{6,}", grade_id), grade_id


def test_every_test_cell_starts_with_a_one_line_docstring_and_has_visible_tests() -> None:
    """Test cells open with a one-line docstring and keep visible asserts after hiding."""
    nb = _nb(SOLUTION)
    hider = ClearHiddenTests()
    for cell in _grade_cells(nb):
        tree = ast.parse(cell.source)
        doc = ast.get_docstring(tree)
        assert doc and "\n" not in doc.strip(), cell.metadata.nbgrader.grade_id
        visible = nbformat.from_dict(dict(cell))
        hider._remove_hidden_test_region(visible)
        body = ast.parse(visible.source).body[1:]
        assert any(isinstance(node, ast.Assert | ast.If | ast.Try | ast.For) for node in body), (
            f"{cell.metadata.nbgrader.grade_id} has no visible test left for the student"
        )


def test_hidden_tests_cover_every_part_a_behaviour_and_check_own_implementation() -> None:
    """Every Part A test cell has hidden tests, including the no-distlab MRO check."""
    nb = _nb(SOLUTION)
    part_a = [
        c for c in _grade_cells(nb) if not c.metadata.nbgrader.grade_id.startswith("test_fetch")
    ]
    assert len(part_a) == 10
    for cell in part_a:
        source = cell.source
        assert source.index("### BEGIN HIDDEN TESTS") < source.index("### END HIDDEN TESTS")
        hidden = source.split("### BEGIN HIDDEN TESTS")[1]
        assert "__mro__" in hidden and '"distlab"' in hidden, cell.metadata.nbgrader.grade_id


def test_solution_regions_sit_inside_the_class_and_function() -> None:
    """Signatures and docstrings stay visible: every solution region is indented."""
    nb = _nb(SOLUTION)
    for grade_id in ("impl_circuit_breaker", "impl_fetch_json"):
        cell = _cell(nb, grade_id)
        assert cell.metadata.nbgrader.solution is True
        markers = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" in line]
        assert markers, grade_id
        assert all(line.startswith("    ") for line in markers), grade_id
    released = _nb(EXERCISE)
    impl = _cell(released, "impl_circuit_breaker").source
    assert "def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:" in impl
    assert "raise NotImplementedError()" in impl
    assert "self._trial_running" not in impl


def _solution_namespace() -> dict[str, Any]:
    nb = _nb(SOLUTION)
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", "impl_circuit_breaker", "impl_fetch_json"):
        exec(_without_markers(_cell(nb, grade_id).source), namespace)
    return namespace


def test_the_graded_api_is_exactly_the_specified_one() -> None:
    """CircuitBreaker, CircuitOpenError and fetch_json have the specified signatures."""
    ns = _solution_namespace()
    signature = inspect.signature(ns["CircuitBreaker"].__init__)
    params = signature.parameters
    assert list(params) == ["self", "failure_threshold", "recovery_timeout", "clock", "is_failure"]
    assert params["failure_threshold"].default == 5
    assert params["recovery_timeout"].default == 30.0
    assert params["clock"].default is time.monotonic
    assert params["clock"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["is_failure"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["is_failure"].default(ValueError()) is True
    assert isinstance(inspect.getattr_static(ns["CircuitBreaker"], "state"), property)
    assert list(inspect.signature(ns["CircuitBreaker"].call).parameters) == [
        "self",
        "func",
        "args",
        "kwargs",
    ]
    assert issubclass(ns["CircuitOpenError"], Exception)
    assert ns["CircuitOpenError"](-1.0).retry_after == 0.0
    assert list(inspect.signature(ns["fetch_json"]).parameters) == ["client", "url", "breaker"]


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3, nbgrader metadata kept."""
    for path in (SOLUTION, EXERCISE):
        assert notebook_problems(path) == [], path
        assert _nb(path).metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_committed_exercises_match_a_fresh_release(tmp_path: Path) -> None:
    """exercises/ is exactly what nbgrader generate_assignment makes from solutions/."""
    written = release(Course(REPO), ["circuit_breaker"], dest=tmp_path)
    assert [p.relative_to(tmp_path) for p in written] == [
        Path("circuit_breaker/circuit_breaker.ipynb")
    ]
    fresh = clean_notebook(_nb(written[0]))
    committed = clean_notebook(_nb(EXERCISE))
    assert nbformat.writes(committed) == nbformat.writes(fresh), (
        "exercises/ is out of date: run `make exercises` (distlab release) and commit"
    )
    # A released notebook carries nbgrader's checksums and no solution or hidden test.
    text = nbformat.writes(committed)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert all("checksum" in c.metadata.nbgrader for c in _grade_cells(committed))


def _validator(**traits: Any) -> Validator:
    course = Course(REPO)
    validator = Validator(config=course.config)
    for name, value in traits.items():
        setattr(validator, name, value)
    return validator


@pytest.mark.slow
def test_solution_passes_nbgraders_validator() -> None:
    """nbgrader's Validator finds no failing cell in the solution (hidden tests included)."""
    results = _validator().validate(str(SOLUTION))
    assert results == {}, results


@pytest.mark.slow
def test_release_fails_every_graded_test() -> None:
    """The release fails all its test cells: nbgrader validate --invert finds none passing."""
    n_tests = len(_grade_cells(_nb(EXERCISE)))
    inverted = _validator(invert=True).validate(str(EXERCISE))
    assert inverted.get("passed", []) == [], [c["source"][:80] for c in inverted["passed"]]
    assert set(inverted) <= {"passed"}
    plain = _validator().validate(str(EXERCISE))
    assert len(plain["failed"]) == n_tests


# --- what the issue asked for: the single-trial rule, no borrowed breaker, 408 and 429 --------
def _visible(grade_id: str) -> str:
    cell = _cell(_nb(EXERCISE), grade_id)
    return str(cell.source)


def test_the_single_trial_rule_has_its_own_visible_test_and_points() -> None:
    """test_single_trial (3 points) shows a second caller refused while the trial runs."""
    cell = _cell(_nb(SOLUTION), "test_single_trial")
    assert cell.metadata.nbgrader.points == 3
    visible = _visible("test_single_trial")
    assert "CircuitOpenError" in visible and "Keep a flag (trial running)" in visible
    hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1]
    assert "exactly 1 trial should run and 9 be refused" in hidden
    assert "the breaker stayed half-open for ever" in hidden
    part_a = _cell(_nb(EXERCISE), "part_a").source
    assert "a single trial at a time 3" in part_a
    assert "the breaker stays half-open and the next call is a new trial" in part_a


def test_borrowing_the_course_breaker_is_forbidden_in_words_and_in_a_visible_test() -> None:
    """The intro says so; the first test checks it visibly, so distlab check reports it."""
    intro = _cell(_nb(EXERCISE), "intro").source
    assert "Importing, aliasing or subclassing the course's breaker" in intro
    assert "`distlab check` reports it" in intro
    visible = _visible("test_opening")
    assert "write CircuitBreaker yourself" in visible and "__mro__" in visible


def test_part_b_teaches_and_tests_408_and_429() -> None:
    """Part B says why 408 and 429 count; a visible test checks 429, a hidden one 408."""
    text = _cell(_nb(EXERCISE), "part_b").source
    assert "`429 Too Many Requests`" in text and "`408 Request Timeout`" in text
    assert "Microsoft.Extensions.Http.Resilience" in text
    assert "429" in _visible("test_fetch_json_transient")
    hidden = _cell(_nb(SOLUTION), "test_fetch_json_transient").source.split("### BEGIN HIDDEN")[1]
    assert "fetch_json(api(408" in hidden
    answers = _cell(_nb(SOLUTION), "test_fetch_json_answers").source
    assert "429" not in answers  # no test says a 429 is not a failure any more


def test_the_sandbox_hides_the_course_breaker_while_this_exercise_is_graded() -> None:
    """nbgrader_config.py registers distlab.patterns.breaker for circuit_breaker."""
    assert Course(REPO).config.Sandbox.hidden_modules[SLUG] == ["distlab.patterns.breaker"]


# --- grading crafted submissions -----------------------------------------------------------
TESTS = {
    str(c.metadata.nbgrader.grade_id): float(c.metadata.nbgrader.points)
    for c in _grade_cells(_nb(SOLUTION))
}

NO_TRIAL_GUARD = (
    "impl_circuit_breaker",
    "                if self._trial_running:\n                    raise CircuitOpenError(0.0)\n",
    "",
)
STUCK_AFTER_IGNORED = (
    "impl_circuit_breaker",
    "                if trial:\n                    self._trial_running = False\n"
    "                    if failed:\n",
    "                if trial:\n                    if failed:\n"
    "                        self._trial_running = False\n",
)
IGNORED_RESETS_COUNT = (
    "impl_circuit_breaker",
    "                elif failed and self._opened_at is None:",
    "                elif not failed:\n                    self._failures = 0\n"
    "                elif self._opened_at is None:",
)
NO_429 = (
    "impl_fetch_json",
    "if response.is_server_error or response.status_code in (408, 429):",
    "if response.is_server_error:",
)
EVERY_4XX_COUNTS = (
    "impl_fetch_json",
    "if response.is_server_error or response.status_code in (408, 429):",
    "if response.is_error:",
)


def _edited(*edits: tuple[str, str, str]) -> Callable[[], Any]:
    def craft() -> Any:
        nb = submissions.honest(SLUG)
        for grade_id, old, new in edits:
            edit_cell(nb, grade_id, old, new)
        return nb

    return craft


SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: submissions.honest(SLUG), set()),
    "untouched": (lambda: submissions.released(SLUG), set(TESTS)),
    "no_trial_guard": (_edited(NO_TRIAL_GUARD), {"test_single_trial"}),
    "stuck_after_ignored": (_edited(STUCK_AFTER_IGNORED), {"test_single_trial"}),
    "ignored_resets_count": (_edited(IGNORED_RESETS_COUNT), {"test_is_failure"}),
    "no_429": (_edited(NO_429), {"test_fetch_json_transient"}),
    "every_4xx_counts": (
        _edited(EVERY_4XX_COUNTS),
        {"test_fetch_json_answers", "test_fetch_json_with_breaker"},
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """Every crafted submission, graded by nbgrader in one batch with kernels started ahead."""
    crafted = {name: craft for name, (craft, _) in SUBMISSIONS.items()}
    folder = tmp_path_factory.mktemp("submissions")
    return submissions.grade_crafted(SLUG, crafted, folder, pool=2)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_loses_exactly_the_points_of_its_bug(
    graded: dict[str, GradeReport], name: str
) -> None:
    """Honest: 30/30; the release: 0; each real bug fails exactly the tests it should."""
    report = graded[name]
    failing = {t.grade_id for t in report.tests if not t.passed}
    assert failing == SUBMISSIONS[name][1], report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - sum(TESTS[t] for t in failing)


@pytest.mark.slow
def test_the_bugs_get_messages_that_say_what_to_fix(graded: dict[str, GradeReport]) -> None:
    """The visible single-trial test and the hidden ones name the rule that was broken."""

    def message(name: str, grade_id: str) -> str:
        return next(t.message for t in graded[name].tests if t.grade_id == grade_id)

    assert "exactly one trial at a time" in message("no_trial_guard", "test_single_trial")
    assert "stayed half-open for ever" in message("stuck_after_ignored", "test_single_trial")
    assert "counts as neither failure nor success" in message(
        "ignored_resets_count", "test_is_failure"
    )
    assert "a 429 answer must count as a failure" in message("no_429", "test_fetch_json_transient")
