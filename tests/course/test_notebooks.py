"""Every course notebook is clean, valid, and runs top to bottom in a fresh kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from distlab.course.notebooks import clean_notebook, find_notebooks, main, notebook_problems
from tests import REPO

EXECUTED_FOLDERS = ["lessons", "solutions", "quizzes"]
ALL_FOLDERS = [*EXECUTED_FOLDERS, "exercises"]
# The course promises every notebook runs in at most 10 s. nbclient enforces it per cell
# (a cell over 10 s fails the test, so a notebook can never hide a slow step); the
# whole-notebook wall time is measured, side by side, by benchmarks/bench_notebooks.py
# rather than asserted, because this machine is shared and noisy.
CELL_TIMEOUT_SECONDS = 10


def notebooks_in(folders: list[str]) -> list[Path]:
    return list(find_notebooks(REPO / f for f in folders if (REPO / f).exists()))


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_course_has_notebooks():
    """The folders this file checks are not empty (guards against a vacuous pass)."""
    names = {relative(p) for p in notebooks_in(ALL_FOLDERS)}
    assert "lessons/00_start_here.ipynb" in names
    assert len(names) >= 3


@pytest.mark.parametrize("path", notebooks_in(ALL_FOLDERS), ids=relative)
def test_notebook_is_committed_clean(path: Path):
    """No outputs, no execution counts, valid nbformat, only the metadata we keep."""
    assert notebook_problems(path) == []


@pytest.mark.slow
@pytest.mark.parametrize("path", notebooks_in(EXECUTED_FOLDERS), ids=relative)
def test_notebook_executes_in_a_fresh_kernel(path: Path, tmp_path: Path, monkeypatch):
    """Runs top to bottom without error in a fresh kernel."""
    monkeypatch.setenv("DISTLAB_HOME", str(tmp_path))  # quiz results go to a scratch folder
    monkeypatch.setenv("DISTLAB_COURSE_ROOT", str(REPO))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)


def test_clean_removes_outputs_counts_and_extra_metadata(tmp_path: Path):
    """The clean command turns a dirty notebook into one the check accepts."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    cell.execution_count = 3
    cell.metadata["collapsed"] = True
    cell.metadata["nbgrader"] = {
        "grade": False,
        "solution": True,
        "grade_id": "x",
        "locked": False,
        "schema_version": 3,
        "task": False,
    }
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"state": {}}
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, path)

    problems = notebook_problems(path)
    assert any("outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    assert main(["check", str(path)]) == 1

    assert main(["clean", str(path)]) == 0
    assert notebook_problems(path) == []
    cleaned = nbformat.read(path, as_version=4)
    assert cleaned.cells[0].metadata == {"nbgrader": cell.metadata["nbgrader"]}
    assert "widgets" not in cleaned.metadata
    assert clean_notebook(cleaned) == cleaned


def test_check_names_an_unreadable_notebook(tmp_path: Path):
    """A file that is not JSON is reported with its name, not a traceback."""
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    problems = notebook_problems(path)
    assert len(problems) == 1 and "broken.ipynb" in problems[0]


def test_cli_refuses_a_path_that_is_not_a_notebook(tmp_path: Path, capsys):
    """A wrong path gets exit code 2 and a message naming it."""
    assert main(["check", str(tmp_path / "nothing.txt")]) == 2
    assert "nothing.txt" in capsys.readouterr().err
