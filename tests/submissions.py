"""Craft student submissions from an exercise's release, for the grading tests.

Every exercise's tests build their submissions the same way: start from the student
copy in ``exercises/<slug>/``, answer some solution cells (with the reference answer or
with a realistic bug), add or delete cells, write the notebook, grade it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat

from distlab.course.grading import Course, Grader, GradeReport
from tests import REPO


def solution_path(exercise: str) -> Path:
    """The instructor notebook of ``exercise`` (``solutions/<slug>/<slug>.ipynb``)."""
    return REPO / "solutions" / exercise / f"{exercise}.ipynb"


def release_path(exercise: str) -> Path:
    """The student notebook of ``exercise`` (``exercises/<slug>/<slug>.ipynb``)."""
    return REPO / "exercises" / exercise / f"{exercise}.ipynb"


def cell_index(nb: Any, grade_id: str) -> int:
    """Return the index of the cell whose nbgrader ``grade_id`` is ``grade_id``."""
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def answer(exercise: str, grade_id: str) -> str:
    """The reference answer of a solution cell, as a student would type it."""
    solution = nbformat.read(solution_path(exercise), as_version=4)
    source = solution.cells[cell_index(solution, grade_id)].source
    return "\n".join(line for line in source.splitlines() if "### " not in line)


def solution_ids(exercise: str) -> list[str]:
    """The grade ids of the solution cells of ``exercise``, in notebook order."""
    solution = nbformat.read(solution_path(exercise), as_version=4)
    return [
        c.metadata.nbgrader.grade_id
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    ]


def released(exercise: str) -> Any:
    """The untouched student copy of ``exercise``."""
    return nbformat.read(release_path(exercise), as_version=4)


def honest(exercise: str) -> Any:
    """The student copy with every solution cell answered with the reference answer."""
    nb = released(exercise)
    for grade_id in solution_ids(exercise):
        nb.cells[cell_index(nb, grade_id)].source = answer(exercise, grade_id)
    return nb


def edit_cell(nb: Any, grade_id: str, old: str, new: str) -> Any:
    """Replace ``old`` by ``new`` in the cell ``grade_id`` (``old`` must be there)."""
    cell = nb.cells[cell_index(nb, grade_id)]
    assert old in cell.source, f"{old!r} is not in cell {grade_id}"
    cell.source = cell.source.replace(old, new)
    return nb


def insert_before(nb: Any, grade_id: str, source: str) -> Any:
    """Insert a new code cell holding ``source`` before the cell ``grade_id``."""
    nb.cells.insert(cell_index(nb, grade_id), nbformat.v4.new_code_cell(source))
    return nb


def grade_crafted(
    exercise: str,
    crafted: Mapping[str, Callable[[], Any]],
    folder: Path,
    *,
    pool: int = 2,
) -> dict[str, GradeReport]:
    """Write each crafted submission to ``folder`` and grade them all in one batch.

    One :class:`~distlab.course.grading.Grader` (a scratch copy of the course, ``pool``
    kernels started ahead) grades them in order, each as the student of its name.

    Returns:
        ``name -> report``.
    """
    reports = {}
    with Grader(Course(REPO), pool=pool) as grader:
        for name, craft in crafted.items():
            path = folder / f"{name}.ipynb"
            nbformat.write(craft(), path)
            reports[name] = grader.grade(exercise, path, student=name)
    return reports
