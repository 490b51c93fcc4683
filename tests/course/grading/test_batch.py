"""grade_all: workers grade, the course records; a worker that dies costs its submission only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook

from distlab.course.grading import Course, Graded, Grader, default_workers, grade_all
from distlab.course.grading.reports import GradeReport, Integrity
from tests import REPO
from tests.submissions import honest, released


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    """A batch without workers is refused, naming the parameter."""
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        grade_all(Course(REPO), [], workers=0)
    assert default_workers() >= 1


def test_graded_adds_up_its_notebooks() -> None:
    """A submission's score, reasons to review and limits are its notebooks' together."""
    reports = tuple(
        GradeReport("x", name, "s", score, 10, integrity=Integrity(review=review, limits=limits))
        for name, score, review, limits in (
            ("one", 4, ("cell 2 (added) starts processes (os.fork)",), ()),
            ("two", 6, (), ("memory limit (512 MiB)",)),
        )
    )
    graded = Graded("s", "x", reports)
    assert (graded.score, graded.max_score) == (10, 20)
    assert graded.review == ["cell 2 (added) starts processes (os.fork)"]
    assert graded.limits == ["memory limit (512 MiB)"]


@pytest.mark.slow
def test_a_worker_that_dies_costs_only_its_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker dies mid-submission: that one is not graded, the others are, in order.

    What nbgrader's autograde records is recorded too: the submission's timestamp from
    its timestamp.txt, and the autograded notebook in the course's autograded folder.
    """
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    submitted = tmp_path / "_grading" / "submitted"
    students: dict[str, Any] = {
        "a_honest": honest("circuit_breaker"),
        "b_crash": released("circuit_breaker"),
        "c_release": released("circuit_breaker"),
    }
    for student, nb in students.items():
        folder = submitted / student / "circuit_breaker"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "circuit_breaker.ipynb")
    (submitted / "a_honest" / "circuit_breaker" / "timestamp.txt").write_text(
        "2026-03-01 12:00:00.000000 UTC"
    )
    grade_submission = Grader.grade_submission

    def die_for_b(self: Grader, student: str, *args: Any) -> list[GradeReport]:
        if student == "b_crash":
            os._exit(9)  # the worker process dies (a crash in nbgrader, an OOM kill...)
        return grade_submission(self, student, *args)

    monkeypatch.setattr(Grader, "grade_submission", die_for_b)
    course = Course(tmp_path)
    jobs = [(s, "circuit_breaker", submitted / s / "circuit_breaker") for s in students]
    seen: list[str] = []
    results = grade_all(course, jobs, workers=2, progress=lambda g: seen.append(g.student))
    assert [g.student for g in results] == list(students)
    assert sorted(seen) == sorted(students)
    assert (results[0].score, results[0].error) == (30, "")
    assert (results[1].reports, results[1].error) == ((), "the grading worker died")
    assert (results[2].score, results[2].error) == (0, "")
    autograded = tmp_path / "_grading" / "autograded" / "a_honest" / "circuit_breaker"
    assert (autograded / "circuit_breaker.ipynb").is_file()
    with Gradebook(f"sqlite:///{tmp_path / '_grading' / 'gradebook.db'}", "distlab") as gb:
        submission = gb.find_submission("circuit_breaker", "a_honest")
        assert str(submission.timestamp).startswith("2026-03-01 12:00:00")
        assert submission.score == 30
