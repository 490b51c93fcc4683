"""Grading survives what real students submit.

Every crafted submission below is graded through nbgrader (``distlab.course.grading.Grader``)
in one batch, the bad ones between two honest ones: whatever a submission does, it
gets a grade, and the honest submission after it still gets full marks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from distlab.course.grading import Course, Grader, GradeReport
from distlab.course.sandbox import SANDBOX_WORKDIR
from tests import submissions
from tests.submissions import REPO, cell_index, edit_cell, insert_before

pytestmark = pytest.mark.slow

EXERCISE_NAME = "circuit_breaker"
FULL_MARKS = 30.0
PART_A = [
    "test_opening",
    "test_rejecting_while_open",
    "test_half_open_trial",
    "test_single_trial",
    "test_closing",
    "test_reopening",
    "test_is_failure",
    "test_pass_through",
    "test_thread_safety",
    "test_validation",
]
PART_B = [
    "test_fetch_json_answers",
    "test_fetch_json_failures",
    "test_fetch_json_transient",
    "test_fetch_json_with_breaker",
]


# --- crafting submissions from the student's copy -------------------------------------
def honest() -> Any:
    """The released exercise with both solution cells answered correctly."""
    return submissions.honest(EXERCISE_NAME)


def _edit_breaker(nb: Any, old: str, new: str) -> Any:
    return edit_cell(nb, "impl_circuit_breaker", old, new)


def _breaker_cell(source: str) -> Any:
    nb = honest()
    nb.cells[cell_index(nb, "impl_circuit_breaker")].source = source
    return nb


TRIAL_START = "                self._trial_running = trial = True"


def loop_forever() -> Any:
    """Every call loops forever."""
    return _edit_breaker(
        honest(),
        "        with self._lock:\n            trial = False",
        "        while True:\n            pass\n"
        "        with self._lock:\n            trial = False",
    )


def loop_in_trial_swallowing_interrupts() -> Any:
    """Half-open trial calls loop forever, and the loop swallows KeyboardInterrupt."""
    return _edit_breaker(
        honest(),
        TRIAL_START,
        TRIAL_START.replace(
            "self._trial_running",
            "while True:\n                    try:\n"
            "                        time.sleep(0.01)\n                    except BaseException:\n"
            "                        pass\n                self._trial_running",
        ),
    )


def import_error() -> Any:
    """The solution cell fails at import time: nothing in it gets defined."""
    nb = honest()
    cell = nb.cells[cell_index(nb, "impl_circuit_breaker")]
    cell.source = "import distlab.no_such_module\n" + cell.source
    return nb


def definition_error() -> Any:
    """The class body raises while the class is being defined."""
    return _edit_breaker(
        honest(), "class CircuitBreaker:\n", "class CircuitBreaker:\n    LIMIT = 1 / 0\n"
    )


def sys_exit() -> Any:
    """A scratch cell calls sys.exit() (IPython reports it; the kernel lives on)."""
    return insert_before(honest(), "test_opening", "import sys\nsys.exit('done for today')")


def os_exit() -> Any:
    """A scratch cell kills the kernel with os._exit() between Part A and Part B tests."""
    nb = insert_before(honest(), "part_b", "import os\nos._exit(3)")
    return insert_before(nb, "part_b", "import os\nprint('cwd after restart:', os.getcwd())")


def edited_test_cell() -> Any:
    """No validation in __init__, and the validation test edited to pass anyway."""
    nb = _edit_breaker(honest(), "        if failure_threshold < 1:", "        if False:")
    nb = _edit_breaker(nb, "        if recovery_timeout < 0:", "        if False:")
    nb.cells[
        cell_index(nb, "test_validation")
    ].source = '"""Bad settings raise ValueError."""\npass'
    return nb


def deleted_test_cell() -> Any:
    """The test cell for closing is deleted."""
    nb = honest()
    del nb.cells[cell_index(nb, "test_closing")]
    return nb


def raising_scratch_cells() -> Any:
    """Scratch cells that raise, all over the notebook."""
    nb = honest()
    for grade_id in ("test_helpers", "test_opening", "impl_fetch_json", "going_further"):
        insert_before(nb, grade_id, f"raise RuntimeError('scratch before {grade_id}')")
    return nb


def megabytes_of_output() -> Any:
    """A scratch cell prints about 10 MB."""
    return insert_before(
        honest(), "test_helpers", "for i in range(250_000):\n    print('x' * 36, i)"
    )


def distlab_import() -> Any:
    """The breaker imported from the course's reference implementation."""
    return _breaker_cell(
        "from distlab.patterns.breaker import CircuitBreaker\n"
        "from distlab.errors import CircuitOpenError\n"
    )


def distlab_alias() -> Any:
    """The breaker aliased from the course's reference implementation."""
    return _breaker_cell(
        "import distlab.patterns.breaker\nimport distlab.errors\n\n"
        "CircuitBreaker = distlab.patterns.breaker.CircuitBreaker\n"
        "CircuitOpenError = distlab.errors.CircuitOpenError\n"
    )


def distlab_subclass() -> Any:
    """The breaker subclassed from the course's reference implementation."""
    return _breaker_cell(
        "import distlab.patterns.breaker\nimport distlab.errors\n\n"
        "CircuitOpenError = distlab.errors.CircuitOpenError\n\n\n"
        "class CircuitBreaker(distlab.patterns.breaker.CircuitBreaker):\n"
        '    """My very own breaker."""\n'
    )


def state_equal_to_anything() -> Any:
    """``state`` returns a str subclass that compares equal to anything."""
    nb = honest()
    cell = nb.cells[cell_index(nb, "impl_circuit_breaker")]
    cell.source += (
        "\n\n\nclass Anything(str):\n"
        "    def __eq__(self, other):\n        return True\n\n"
        "    def __ne__(self, other):\n        return False\n\n"
        "    __hash__ = str.__hash__\n\n\n"
        "_state = CircuitBreaker.state\n"
        "CircuitBreaker.state = property(lambda self: Anything(_state.fget(self)))\n"
    )
    return nb


SUBMISSIONS: dict[str, Callable[[], Any]] = {
    "honest_first": honest,
    "loop_forever": loop_forever,
    "loop_in_trial": loop_in_trial_swallowing_interrupts,
    "import_error": import_error,
    "definition_error": definition_error,
    "sys_exit": sys_exit,
    "os_exit": os_exit,
    "edited_test_cell": edited_test_cell,
    "deleted_test_cell": deleted_test_cell,
    "raising_scratch_cells": raising_scratch_cells,
    "megabytes_of_output": megabytes_of_output,
    "distlab_import": distlab_import,
    "distlab_alias": distlab_alias,
    "distlab_subclass": distlab_subclass,
    "state_equal_to_anything": state_equal_to_anything,
    "honest_last": honest,
}


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    """One grader (scratch course, kernels started ahead) for the whole module."""
    with Grader(Course(REPO), pool=len(SUBMISSIONS)) as grader:
        yield grader


@pytest.fixture(scope="module")
def graded(
    grader: Grader, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[GradeReport, float]]:
    """Grade every crafted submission in one batch: ``name -> (report, seconds)``."""
    folder = tmp_path_factory.mktemp("submissions")
    results: dict[str, tuple[GradeReport, float]] = {}
    for name, craft in SUBMISSIONS.items():
        path = folder / f"{name}.ipynb"
        nbformat.write(craft(), path)
        started = time.monotonic()
        report = grader.grade("circuit_breaker", path, student=name)
        results[name] = (report, time.monotonic() - started)
    return results


def _autograded(student: str, grader: Grader) -> Path:
    """The folder of a student's autograded notebook."""
    coursedir = grader.coursedir("circuit_breaker", student)
    return Path(coursedir.format_path(coursedir.autograded_directory, student, "circuit_breaker"))


def _tests(report: GradeReport) -> dict[str, Any]:
    return {t.grade_id: t for t in report.tests}


def _assert_only_failing(report: GradeReport, failing: set[str]) -> None:
    tests = _tests(report)
    assert set(tests) == set(PART_A + PART_B)
    assert {g for g, t in tests.items() if not t.passed} == failing, report.lines()
    for grade_id in failing:
        assert tests[grade_id].points == 0
        assert tests[grade_id].message
    expected = FULL_MARKS - sum(tests[g].max_points for g in failing)
    assert report.score == expected


# --- the tests ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["honest_first", "honest_last"])
def test_honest_submission_gets_full_marks_before_and_after_the_bad_ones(
    graded: dict[str, tuple[GradeReport, float]], name: str
) -> None:
    """An honest submission scores full marks whatever was graded before it."""
    report, _ = graded[name]
    assert (report.score, report.max_score) == (FULL_MARKS, FULL_MARKS), report.lines()
    assert all(t.passed for t in report.tests)


def test_an_infinite_loop_costs_under_a_minute_and_the_looping_tests(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """A call that loops forever: every Part A test times out, the whole grade takes < 60 s."""
    report, seconds = graded["loop_forever"]
    assert seconds < 60, f"grading a looping submission took {seconds:.0f} s"
    tests = _tests(report)
    for grade_id in PART_A:
        assert tests[grade_id].points == 0
        assert "did not finish in time" in tests[grade_id].message or (
            "GradingBudgetExceeded" in tests[grade_id].message
        )
    assert "did not finish in time" in tests["test_opening"].message
    assert report.score <= 4  # at most Part B's visible tests, which use a fake breaker


def test_a_loop_that_swallows_interrupts_costs_only_the_tests_that_reach_it(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """Trial calls that loop and catch KeyboardInterrupt: the kernel restarts, others pass."""
    report, seconds = graded["loop_in_trial"]
    assert seconds < 60, f"grading took {seconds:.0f} s"
    _assert_only_failing(
        report,
        {
            "test_half_open_trial",
            "test_single_trial",
            "test_closing",
            "test_reopening",
            "test_pass_through",
            "test_fetch_json_with_breaker",
        },
    )
    assert "did not finish in time" in _tests(report)["test_half_open_trial"].message


def test_an_import_error_in_the_solution_cell_costs_part_a_only(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """Nothing in the cell gets defined; fetch_json keeps the Part B tests with a fake breaker."""
    report, _ = graded["import_error"]
    _assert_only_failing(
        report, {*PART_A, "test_fetch_json_transient", "test_fetch_json_with_breaker"}
    )
    assert "NameError" in _tests(report)["test_opening"].message


def test_an_error_while_defining_the_class_costs_part_a(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """The class body raises; fetch_json keeps the Part B tests that use a fake breaker."""
    report, _ = graded["definition_error"]
    _assert_only_failing(
        report, {*PART_A, "test_fetch_json_transient", "test_fetch_json_with_breaker"}
    )


def test_sys_exit_in_a_cell_is_just_an_error(graded: dict[str, tuple[GradeReport, float]]) -> None:
    """IPython turns sys.exit() into an error output; the kernel and the grade survive."""
    report, _ = graded["sys_exit"]
    assert report.score == FULL_MARKS


def test_os_exit_kills_the_kernel_but_not_the_grading(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """After os._exit() a fresh kernel replays the definitions and grading goes on."""
    report, _ = graded["os_exit"]
    assert report.score == FULL_MARKS, report.lines()


def test_a_restarted_kernel_runs_in_the_notebook_folder(
    graded: dict[str, tuple[GradeReport, float]], grader: Grader
) -> None:
    """After os._exit() the fresh kernel is back in its work folder (the sandbox's, if any)."""
    assert graded["os_exit"][0].score == FULL_MARKS
    folder = _autograded("os_exit", grader)
    printed = "".join(
        o.get("text", "")
        for c in nbformat.read(folder / "circuit_breaker.ipynb", as_version=4).cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    expected = SANDBOX_WORKDIR if grader.sandboxed else str(folder.resolve())
    assert f"cwd after restart: {expected}" in printed


def test_an_edited_test_cell_runs_as_originally_written(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """The student replaced the validation test by `pass`; the original still fails them."""
    report, _ = graded["edited_test_cell"]
    _assert_only_failing(report, {"test_validation"})
    assert "should raise ValueError" in _tests(report)["test_validation"].message


def test_a_deleted_test_cell_scores_zero(graded: dict[str, tuple[GradeReport, float]]) -> None:
    """Deleting a test cell does not earn its points."""
    report, _ = graded["deleted_test_cell"]
    _assert_only_failing(report, {"test_closing"})


def test_scratch_cells_that_raise_do_not_cost_points(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """Errors outside test cells are not graded."""
    report, _ = graded["raising_scratch_cells"]
    assert report.score == FULL_MARKS


def test_megabytes_of_output_are_graded_and_trimmed(
    graded: dict[str, tuple[GradeReport, float]], grader: Grader
) -> None:
    """10 MB of prints: full marks, and the autograded notebook keeps a trimmed output."""
    report, seconds = graded["megabytes_of_output"]
    assert report.score == FULL_MARKS
    assert seconds < 60
    path = _autograded("megabytes_of_output", grader)
    autograded = nbformat.read(path / "circuit_breaker.ipynb", as_version=4)
    printed = "".join(
        o.get("text", "") for c in autograded.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "x" * 36 in printed  # the output is there...
    assert len(printed) < 100_000  # ...trimmed by nbgrader's LimitOutput


@pytest.mark.sandbox
@pytest.mark.parametrize("name", ["distlab_import", "distlab_alias", "distlab_subclass"])
def test_the_course_reference_breaker_earns_nothing_in_part_a(
    graded: dict[str, tuple[GradeReport, float]], grader: Grader, name: str
) -> None:
    """Importing, aliasing or subclassing distlab's breaker scores 0 for Part A.

    The grading sandbox hides distlab.patterns.breaker (c.Sandbox.hidden_modules): the
    import fails with a message saying why, so nothing named CircuitBreaker exists.
    """
    report, _ = graded[name]
    tests = _tests(report)
    assert sum(tests[g].points for g in PART_A) == 0
    for grade_id in PART_A:
        assert tests[grade_id].message == "NameError: name 'CircuitBreaker' is not defined"
    assert tests["test_fetch_json_answers"].passed  # Part B is the student's own work
    autograded = nbformat.read(_autograded(name, grader) / "circuit_breaker.ipynb", as_version=4)
    cell = autograded.cells[cell_index(autograded, "impl_circuit_breaker")]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert [o.ename for o in errors] == ["ImportError"]
    assert "distlab.patterns.breaker is not available while circuit_breaker is graded" in (
        errors[0].evalue
    )


def test_a_state_equal_to_anything_fails_the_state_checks(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """Tests compare exact strings: a str subclass equal to anything is caught."""
    report, _ = graded["state_equal_to_anything"]
    no_state_read = {
        "test_pass_through",
        "test_fetch_json_answers",
        "test_fetch_json_failures",
        "test_fetch_json_transient",
    }
    failing = set(PART_A + PART_B) - no_state_read
    _assert_only_failing(report, failing)
    tests = _tests(report)
    for grade_id in failing:  # caught by the exact-type check, not by some other error
        assert "state should be a str" in tests[grade_id].message, tests[grade_id].message
