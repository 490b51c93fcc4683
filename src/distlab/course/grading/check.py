"""``distlab check``: the student's friendly run of the visible tests."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nbformat
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput
from traitlets.config import Config

from distlab.course.grading.course import Course, read_notebook
from distlab.course.grading.execute import BudgetedExecute, kernels_from
from distlab.course.grading.reports import (
    CheckReport,
    TestResult,
    _docstring_line,
    _failure_message,
)
from distlab.course.kernelpool import KernelPool
from distlab.errors import GradingError

__all__ = ["CHECK_ENV", "check_notebook"]

# What nbgrader's validator tells the kernel; `distlab check` does the same.
CHECK_ENV = {"NBGRADER_EXECUTION": "validate", "NBGRADER_VALIDATING": "1"}

_log = logging.getLogger("distlab.course.grading")


def check_notebook(
    path: Path | str, course: Course | None = None, pool: KernelPool | None = None
) -> CheckReport:
    """Run the visible tests of a notebook and report each test cell's outcome.

    Hidden tests are removed first (the student's copy has none; an instructor's copy
    would otherwise leak them). Test cells the student edited are reported, and the
    edited version runs: ``check`` shows what the student sees in Jupyter.

    Args:
        path: the notebook.
        course: whose settings (timeouts) apply; default nbgrader's.
        pool: take the kernel from this pool (started early by the command line).

    Raises:
        GradingError: when the file is missing or not a notebook.
    """
    path = Path(path)
    nb = read_notebook(path)
    if not any(nbgrader_utils.is_grade(cell) for cell in nb.cells):
        # Otherwise "0 of 0 test cells pass" reads as success (a lesson, a blank notebook,
        # or a copy whose cell metadata an editor dropped).
        raise GradingError(
            f"{path.name} has no nbgrader test cells: check the notebook you opened "
            "from exercises/ (a copy keeps its cell metadata only in Jupyter)"
        )
    config = Config(course.config) if course is not None else Config()
    missing = _deleted_tests(course, nb) if course is not None else []
    edited = []
    for cell in nb.cells:
        checksum = cell.metadata.get("nbgrader", {}).get("checksum")
        if nbgrader_utils.is_grade(cell) and checksum not in (
            None,
            nbgrader_utils.compute_checksum(cell),
        ):
            edited.append(cell.metadata.nbgrader.grade_id)
    resources: dict[str, Any] = {"metadata": {"path": str(path.resolve().parent)}}
    for pp_class in (ClearOutput, ClearHiddenTests):
        pp = pp_class(config=config, log=_log)
        if isinstance(pp, ClearHiddenTests):
            pp.enforce_metadata = False
        nb, resources = pp.preprocess(nb, resources)
    executor = BudgetedExecute(config=config, log=_log)
    # The student runs their own notebook on their own machine: no sandbox.
    with kernels_from(pool, sandboxed=False), nbgrader_utils.setenv(**CHECK_ENV):
        nb, resources = executor.preprocess(nb, resources)
    tests = []
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if nbgrader_utils.is_grade(cell):
            score, max_points = nbgrader_utils.determine_grade(cell, _log)
            passed = score is not None and score >= max_points
            tests.append(
                TestResult(
                    grade_id=cell.metadata.nbgrader.grade_id,
                    points=float(score or 0.0),
                    max_points=float(max_points),
                    passed=passed,
                    message="" if passed else (_failure_message(cell) or "failed"),
                    description=_docstring_line(cell.source),
                )
            )
        else:
            if any(o.output_type == "error" for o in cell.get("outputs", [])):
                problems.append(_failure_message(cell))
    return CheckReport(path, tuple(tests), tuple(edited), tuple(problems), tuple(missing))


def _deleted_tests(course: Course, nb: Any) -> list[str]:
    """Return the grade ids of test cells of ``nb``'s exercise that ``nb`` lacks.

    The exercise is the solution notebook that shares the most graded cells with ``nb``
    (exercises may reuse a test name such as ``test_validation``).
    """
    found = {c.metadata.nbgrader.grade_id for c in nb.cells if nbgrader_utils.is_grade(c)}
    best: list[str] = []
    shared = 0
    for exercise in course.exercises():
        for path in sorted((course.solutions_dir / exercise).glob("*.ipynb")):
            source = nbformat.read(path, as_version=4)
            expected = [
                c.metadata.nbgrader.grade_id for c in source.cells if nbgrader_utils.is_grade(c)
            ]
            if len(found & set(expected)) > shared:
                best, shared = expected, len(found & set(expected))
    return [grade_id for grade_id in best if grade_id not in found]
