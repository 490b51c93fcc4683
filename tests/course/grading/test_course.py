"""The course folder and its nbgrader configuration."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from distlab.course.cli import main
from distlab.course.grading import Course
from tests import REPO

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


def test_course_config_is_what_the_issue_asks_for() -> None:
    """Folders, course id, a short cell timeout, a notebook budget under a minute, a sandbox."""
    course = Course(REPO)
    cd = course.config.CourseDirectory
    assert (cd.source_directory, cd.release_directory) == ("solutions", "exercises")
    for name in ("submitted_directory", "autograded_directory", "feedback_directory"):
        assert cd[name].startswith("_grading/")
    assert cd.db_url == f"sqlite:///{REPO / '_grading' / 'gradebook.db'}"
    assert cd.course_id == "distlab"
    assert 1 <= course.config.Execute.timeout <= 10
    assert course.config.BudgetedExecute.notebook_budget < 60
    assert [p.__name__ for p in course.config.GenerateFeedback.preprocessors] == [
        "HideStudentOutputs",
        "GetGrades",
        "HideHiddenTestTracebacks",
        "ClearHiddenTests",
        "CSSHTMLHeaderPreprocessor",
    ]
    sandbox = course.config.Sandbox
    assert sandbox.get("enabled", True) is True
    assert sandbox.hidden_modules["circuit_breaker"] == ["distlab.patterns.breaker"]
    assert sandbox.memory_mb <= 1024 and sandbox.processes >= 64


def test_graders_sharing_a_course_leave_its_config_alone() -> None:
    """coursedir() overrides apply to a copy: the course keeps its own folders."""
    course = Course(REPO)
    before = dict(course.config.CourseDirectory)
    course.coursedir(root="/elsewhere", autograded_directory="autograded", db_url="sqlite://")
    assert dict(course.config.CourseDirectory) == before


def test_a_broken_course_config_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An nbgrader_config.py that raises: exit 2 naming the file, no traceback."""
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.Execute.timeout = 1 / 0\n")
    assert main(["--course", str(tmp_path), "grade", "circuit_breaker", str(EXERCISE)]) == 2
    err = capsys.readouterr().err
    assert "nbgrader_config.py could not be loaded: ZeroDivisionError" in err
    assert err.count("\n") == 1


def test_the_alembic_shortcut_steps_aside_when_nbgrader_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without nbgrader.api.get_alembic_version the course still loads (no patch applied)."""
    import nbgrader.api

    monkeypatch.delattr(nbgrader.api, "get_alembic_version")
    assert Course(REPO).course_id == "distlab"
    assert not hasattr(nbgrader.api, "get_alembic_version")


def test_a_notebook_too_large_to_grade_is_refused_unread(tmp_path: Path) -> None:
    """A submission of hundreds of MiB would cost the grader's process gigabytes to read."""
    from distlab.course.grading.course import MAX_NOTEBOOK_MB, check_notebook_size, read_notebook
    from distlab.errors import GradingError

    huge = tmp_path / "circuit_breaker.ipynb"
    with open(huge, "wb") as f:
        f.truncate((MAX_NOTEBOOK_MB + 1) << 20)  # sparse: no disk used
    for read in (read_notebook, check_notebook_size):
        with pytest.raises(GradingError, match=r"too large to grade \(33 MiB, at most 32\)"):
            read(huge)
