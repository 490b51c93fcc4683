"""check_notebook: the student's run of the visible tests says what to fix."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from distlab.course.cli import main
from tests import REPO
from tests.submissions import cell_index, honest

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_check_tells_a_student_what_to_fix(capsys: pytest.CaptureFixture[str]) -> None:
    """`distlab check` on the fresh exercise fails each test with its docstring and error."""
    checked = EXERCISE.read_bytes()
    assert main(["check", str(EXERCISE)]) == 1
    assert EXERCISE.read_bytes() == checked  # the student's file is never written to
    out = capsys.readouterr().out
    assert "visible tests only" in out
    assert (
        "  FAIL  test_opening: The breaker opens after failure_threshold consecutive failures;"
        in out
    )
    assert "        -> NotImplementedError" in out
    assert "0 of 14 test cells pass." in out
    assert "Fix the first failing test" in out


@pytest.mark.slow
def test_check_passes_good_work_and_notes_edited_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good work passes (exit 0); an edited test cell is pointed out."""
    nb = honest("circuit_breaker")
    cell = nb.cells[cell_index(nb, "test_validation")]
    cell.source += "\nprint('my extra check')"
    path = tmp_path / "circuit_breaker.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "14 of 14 test cells pass." in out
    assert "you edited the test cell test_validation" in out
    assert "FAIL" not in out


@pytest.mark.slow
def test_check_points_out_a_deleted_test_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good work with a test cell deleted does not pass the check: grading scores it 0."""
    nb = honest("circuit_breaker")
    del nb.cells[cell_index(nb, "test_closing")]
    path = tmp_path / "circuit_breaker.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "  MISSING  test_closing: you deleted this test cell" in out
    assert "13 of 14 test cells pass." in out
    assert "All visible tests pass" not in out
