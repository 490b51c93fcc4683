"""Checks every nbgrader exercise should pass, shared by the exercise tests.

Each function takes the exercise's slug, reads ``solutions/<slug>/<slug>.ipynb`` and its
release, and fails with a message naming the cell at fault.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.validator import Validator

from distlab.course.grading import Course, release
from distlab.course.notebooks import clean_notebook, notebook_problems
from tests import REPO
from tests.submissions import release_path, solution_path

PART_HEADING = re.compile(r"^#+\s*Part\s+(\w+)\b.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)


def notebook(path: Path) -> Any:
    """Read a notebook."""
    return nbformat.read(path, as_version=4)


def grade_cells(nb: Any) -> list[Any]:
    """The graded (test) cells of ``nb``."""
    return [c for c in nb.cells if nbgrader_utils.is_grade(c)]


def cell(nb: Any, grade_id: str) -> Any:
    """The cell whose grade_id is ``grade_id``."""
    for candidate in nb.cells:
        if candidate.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return candidate
    raise AssertionError(f"no cell with grade_id {grade_id!r}")


def without_markers(source: str) -> str:
    """``source`` without nbgrader's ``### BEGIN/END`` marker lines (what a student types)."""
    return "\n".join(line for line in source.splitlines() if "### " not in line)


def points_by_part(slug: str) -> dict[str, float]:
    """Check that each "Part X (N points)" heading equals its test cells' points; return them."""
    nb = notebook(solution_path(slug))
    parts: dict[str, float] = {}
    headings: dict[str, float] = {}
    current = None
    for c in nb.cells:
        if c.cell_type == "markdown":
            match = PART_HEADING.search(c.source)
            if match:
                current = match.group(1)
                headings[current] = float(match.group(2))
                parts[current] = 0.0
        elif nbgrader_utils.is_grade(c):
            assert current is not None, f"{c.metadata.nbgrader.grade_id} comes before any Part"
            parts[current] += float(c.metadata.nbgrader.points)
    assert parts == headings, f"points in the headings {headings} != in the cells {parts}"
    return parts


def check_cells(slug: str, *, max_points: float = 3) -> None:
    """Names not hashes, split points, one-line docstrings, visible and hidden tests in each."""
    nb = notebook(solution_path(slug))
    ids = [c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for grade_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", grade_id), grade_id
        assert not re.search(r"[0-9a-f]{6,}", grade_id), grade_id
    hider = ClearHiddenTests()
    for c in grade_cells(nb):
        grade_id = c.metadata.nbgrader.grade_id
        assert float(c.metadata.nbgrader.points) <= max_points, f"{grade_id}: split the points"
        doc = ast.get_docstring(ast.parse(c.source))
        assert doc and "\n" not in doc.strip(), f"{grade_id}: no one-line docstring"
        source = c.source
        assert "### BEGIN HIDDEN TESTS" in source, f"{grade_id} has no hidden tests"
        assert source.index("### BEGIN HIDDEN TESTS") < source.index("### END HIDDEN TESTS")
        visible = nbformat.from_dict(dict(c))
        hider._remove_hidden_test_region(visible)
        body = ast.parse(visible.source).body[1:]
        assert any(
            isinstance(node, ast.Assert | ast.If | ast.Try | ast.For | ast.Expr) for node in body
        ), f"{grade_id} has no visible test left for the student"


def check_solution_regions(slug: str, grade_ids: list[str]) -> None:
    """Every solution region sits inside a function or class: signatures stay visible."""
    nb = notebook(solution_path(slug))
    for grade_id in grade_ids:
        c = cell(nb, grade_id)
        assert c.metadata.nbgrader.solution is True, grade_id
        markers = [line for line in c.source.splitlines() if "### BEGIN SOLUTION" in line]
        assert markers, grade_id
        assert all(line.startswith("    ") for line in markers), grade_id
    released = notebook(release_path(slug))
    for grade_id in grade_ids:
        assert "raise NotImplementedError()" in cell(released, grade_id).source, grade_id


def check_clean(slug: str) -> None:
    """No outputs, no execution counts, kernelspec python3, in solution and release."""
    for path in (solution_path(slug), release_path(slug)):
        assert notebook_problems(path) == [], path
        assert notebook(path).metadata.kernelspec.name == "python3"


def check_release_is_fresh(slug: str, dest: Path) -> None:
    """exercises/<slug>/ is exactly what nbgrader generates from solutions/<slug>/."""
    written = release(Course(REPO), [slug], dest=dest)
    assert [p.relative_to(dest) for p in written] == [Path(f"{slug}/{slug}.ipynb")]
    fresh = clean_notebook(notebook(written[0]))
    committed = clean_notebook(notebook(release_path(slug)))
    assert nbformat.writes(committed) == nbformat.writes(fresh), (
        "exercises/ is out of date: run `make exercises` (distlab release) and commit"
    )
    text = nbformat.writes(committed)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert all("checksum" in c.metadata.nbgrader for c in grade_cells(committed))


def validator(**traits: Any) -> Validator:
    """nbgrader's Validator with the course's configuration."""
    course = Course(REPO)
    found = Validator(config=course.config)
    for name, value in traits.items():
        setattr(found, name, value)
    return found
