"""The distlab command: exit codes, one-line errors, the installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from distlab.course.cli import main
from tests import REPO

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.sandbox
def test_distlab_grade_json_through_the_installed_command() -> None:
    """`distlab grade EXERCISE NOTEBOOK --json` prints the documented shape and exits 0.

    The untouched release is graded in a sandbox and nothing in it needs review.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    submitted = EXERCISE.read_bytes()
    done = subprocess.run(
        [str(BIN / "distlab"), "grade", "circuit_breaker", str(EXERCISE), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"exercise", "score", "max_score", "tests", "integrity"}
    assert (result["exercise"], result["score"], result["max_score"]) == ("circuit_breaker", 0, 30)
    assert result["integrity"] == {
        "sandboxed": True,
        "needs_review": False,
        "review": [],
        "limits": [],
    }
    assert len(result["tests"]) == 14
    for test in result["tests"]:
        assert set(test) == {"grade_id", "points", "max_points", "passed"}
        assert test["passed"] is False and test["points"] == 0
    assert EXERCISE.read_bytes() == submitted  # the graded file is never written to


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grade", "no_such_exercise", str(SOLUTION)], "unknown exercise 'no_such_exercise'"),
        (["grade", "circuit_breaker", "missing.ipynb"], "no such file: missing.ipynb"),
        (["grade", "circuit_breaker", str(REPO / "pyproject.toml")], "is not a Jupyter notebook"),
        (["check", "missing.ipynb"], "no such file: missing.ipynb"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown exercise, missing file, not a notebook: exit 2 and one line on stderr."""
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1


def test_a_broken_ipynb_is_not_a_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A half-written .ipynb is reported, not graded."""
    broken = tmp_path / "circuit_breaker.ipynb"
    broken.write_text('{"cells": [')
    assert main(["grade", "circuit_breaker", str(broken)]) == 2
    assert "is not a Jupyter notebook" in capsys.readouterr().err


def _without_nbgrader_metadata() -> Any:
    nb = nbformat.read(EXERCISE, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    return nb


@pytest.mark.parametrize("command", ["check", "grade"])
@pytest.mark.parametrize(
    "make", [nbformat.v4.new_notebook, _without_nbgrader_metadata], ids=["empty", "no_metadata"]
)
def test_a_notebook_without_the_exercise_cells_is_named_not_graded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, make: Any
) -> None:
    """No nbgrader cells: exit 2 saying so, never "all visible tests pass" or 0 points."""
    path = tmp_path / "my copy.ipynb"
    nbformat.write(make(), path)
    args = ["check", str(path)] if command == "check" else ["grade", "circuit_breaker", str(path)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "my copy.ipynb has no" in captured.err or "my copy.ipynb has none" in captured.err
    assert captured.err.count("\n") == 1


@pytest.mark.slow
def test_grade_works_when_the_course_folder_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A course whose _grading/ cannot be created (read-only copy) still grades a file."""
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    # A file where the folder should be fails os.makedirs like a read-only folder does
    # (and unlike permissions, also when the tests run as root).
    (tmp_path / "_grading").write_text("not a folder")
    args = ["--course", str(tmp_path), "grade", "circuit_breaker", str(EXERCISE), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["max_score"] == 30
    assert (tmp_path / "_grading").read_text() == "not a folder"


def test_the_command_leaves_sys_modules_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """main() blocks the slow rfc3987_syntax import only while it runs."""
    had = "rfc3987_syntax" in sys.modules
    assert main(["check", "missing.ipynb"]) == 2
    capsys.readouterr()
    assert ("rfc3987_syntax" in sys.modules) == had
    assert sys.modules.get("rfc3987_syntax", True) is not None


def test_grade_refuses_without_a_sandbox_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where no sandbox can be made: exit 2, the reason, and the way out (--unsandboxed)."""
    import distlab.course.grading.grader as grader

    monkeypatch.setattr(grader, "sandbox_problem", lambda: "bubblewrap is not installed")
    assert main(["grade", "circuit_breaker", str(EXERCISE)]) == 2
    err = capsys.readouterr().err
    assert "cannot grade in a sandbox: bubblewrap is not installed" in err
    assert "--unsandboxed" in err and err.count("\n") == 1


@pytest.mark.slow
def test_grade_unsandboxed_warns_on_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    """--unsandboxed grades as this user, and the report says so."""
    assert main(["grade", "circuit_breaker", str(EXERCISE), "--unsandboxed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "score: 0 / 30"
    assert lines[-1].startswith("warning: graded without a sandbox")
