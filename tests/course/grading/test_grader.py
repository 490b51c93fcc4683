"""Grader: nbgrader autograde in a scratch course or in place, the gradebook, feedback."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback
from nbgrader.preprocessors import GetGrades
from traitlets.config import Config

from distlab.course.cli import main
from distlab.course.grading import Course, Grader, GradeReport
from distlab.errors import GradingError
from tests import REPO
from tests.submissions import edit_cell, insert_before
from tests.submissions import honest as _honest

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


def honest() -> Any:
    """The breaker exercise answered with the reference answers."""
    return _honest("circuit_breaker")


def hidden_bug() -> Any:
    """Passes every visible test; a hidden test catches the wrong default threshold."""
    old, new = "failure_threshold: int = 5,", "failure_threshold: int = 4,"
    return edit_cell(honest(), "impl_circuit_breaker", old, new)


@pytest.fixture(scope="module")
def grader() -> Iterator[Grader]:
    """One scratch course for the module, kernels started ahead for its three grades."""
    with Grader(Course(REPO), pool=3) as grader:
        yield grader


@pytest.fixture(scope="module")
def reports(grader: Grader, tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """The solution, the untouched release and a submission with a hidden bug, graded."""
    folder = tmp_path_factory.mktemp("submitted")
    nbformat.write(hidden_bug(), folder / "hidden_bug.ipynb")
    return {
        "solution": grader.grade("circuit_breaker", SOLUTION, student="solution"),
        "release": grader.grade("circuit_breaker", EXERCISE, student="release"),
        "hidden_bug": grader.grade("circuit_breaker", folder / "hidden_bug.ipynb", "hidden_bug"),
    }


@pytest.mark.slow
def test_the_solution_earns_every_point(reports: dict[str, GradeReport]) -> None:
    """Autograding the solution gives 30/30, one passed line per test, then the total."""
    report = reports["solution"]
    assert (report.score, report.max_score) == (30, 30)
    lines = report.lines()
    assert lines[0] == "test_opening  2/2  passed"
    assert lines[-1] == "score: 30 / 30"
    assert len(lines) == len(report.tests) + 1 == 15


@pytest.mark.slow
def test_the_release_earns_nothing_and_says_why(reports: dict[str, GradeReport]) -> None:
    """The untouched student copy scores 0/30; each test names the error."""
    report = reports["release"]
    assert (report.score, report.max_score) == (0, 30)
    assert all(t.message == "NotImplementedError" for t in report.tests), report.lines()
    assert "test_opening  0/2  NotImplementedError" in report.lines()


@pytest.mark.slow
def test_hidden_tests_count_in_the_grade(reports: dict[str, GradeReport]) -> None:
    """A bug only the hidden tests catch costs exactly the points of that test."""
    report = reports["hidden_bug"]
    failed = [t for t in report.tests if not t.passed]
    assert [t.grade_id for t in failed] == ["test_opening"]
    assert "the default failure_threshold is 5" in failed[0].message
    assert report.score == 28


def _feedback_text(grader: Grader, student: str, preprocessors: list[Any] | None) -> str:
    coursedir = grader.coursedir("circuit_breaker", student)
    config = Config(coursedir.config)
    if preprocessors is not None:
        config.GenerateFeedback.preprocessors = preprocessors
    feedback = GenerateFeedback(coursedir=coursedir, config=config)
    feedback.force = True
    feedback.start()
    out = Path(coursedir.format_path(coursedir.feedback_directory, student, "circuit_breaker"))
    page = (out / "circuit_breaker.html").read_text()
    shutil.rmtree(out)
    # Source is syntax-highlighted token by token: compare the text a reader sees.
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _hidden_lines() -> list[str]:
    """Lines that appear only in hidden tests (not also in visible code)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    hidden_region = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
    visible = "\n".join(hidden_region.sub("", cell.source) for cell in nb.cells)
    lines = []
    for cell in nb.cells:
        for region in hidden_region.findall(cell.source):
            lines += [ln.strip() for ln in region.splitlines() if len(ln.strip()) > 25]
    return [line for line in lines if line not in visible]


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_source(
    reports: dict[str, GradeReport], grader: Grader
) -> None:
    """Feedback made with the course config hides hidden tests, even a failing one's line."""
    assert reports["hidden_bug"].score == 28  # graded before feedback is made
    hidden = _hidden_lines()
    assert len(hidden) > 80
    text = _feedback_text(grader, "hidden_bug", None)
    assert "the default failure_threshold is 5" in text  # the student still learns why
    assert 'check_state(breaker, "closed", "a new breaker")' in text  # visible tests stay
    leaked = [line for line in hidden if line in text]
    assert leaked == []


@pytest.mark.slow
def test_nbgrader_default_feedback_would_leak_hidden_tests(
    reports: dict[str, GradeReport], grader: Grader
) -> None:
    """Why the config matters: nbgrader's default feedback shows the hidden tests."""
    assert reports["hidden_bug"].score == 28
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    text = _feedback_text(grader, "hidden_bug", [GetGrades, CSSHTMLHeaderPreprocessor])
    assert any(line in text for line in _hidden_lines())


# --- the command line ---------------------------------------------------------------------


@pytest.mark.slow
def test_grade_all_grades_the_submitted_folder_into_the_gradebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`distlab grade-all` autogrades _grading/submitted/*/*/ in parallel, lists what to review."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions", course / "solutions")
    mallory = insert_before(
        nbformat.read(EXERCISE, as_version=4),
        "test_opening",
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
    )
    students = (("alice", honest()), ("bob", nbformat.read(EXERCISE, as_version=4)))
    for student, nb in (*students, ("mallory", mallory)):
        folder = course / "_grading" / "submitted" / student / "circuit_breaker"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "circuit_breaker.ipynb")
    assert main(["--course", str(course), "grade-all", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "alice  circuit_breaker  30 / 30" in captured.out
    assert "bob  circuit_breaker  0 / 30" in captured.out
    assert "mallory  circuit_breaker  30 / 30  NEEDS REVIEW" in captured.out
    review = captured.out.split("1 need review (the score stands; flagged in the gradebook):\n")
    assert review[1].startswith("  mallory  circuit_breaker:\n    - cell 7 (added) reaches")
    assert "3/3" in captured.err  # tqdm's progress bar
    db_url = f"sqlite:///{course / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, "distlab") as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions("circuit_breaker")}
        flagged = {
            s.student.id: s.notebooks[0].flagged
            for s in gb.assignment_submissions("circuit_breaker")
        }
    assert scores == {"alice": 30, "bob": 0, "mallory": 30}
    assert flagged == {"alice": False, "bob": False, "mallory": True}
    autograded = course / "_grading" / "autograded" / "alice" / "circuit_breaker"
    assert (autograded / "circuit_breaker.ipynb").is_file()
    assert not (course / "exercises").exists()  # the release is left alone


@pytest.mark.slow
def test_grade_all_grades_the_others_when_one_submission_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash or a broken file costs that submission only; the summary and exit say so."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions", course / "solutions")
    submitted = course / "_grading" / "submitted"
    for student in ("a_crash", "b_broken", "c_release"):
        (submitted / student / "circuit_breaker").mkdir(parents=True)
        shutil.copy(EXERCISE, submitted / student / "circuit_breaker")
    (submitted / "b_broken" / "circuit_breaker" / "circuit_breaker.ipynb").write_text('{"cells": [')
    grade_submission = Grader.grade_submission

    def crash_for_a(
        self: Grader, student: str, exercise: str, folder: Path | None = None
    ) -> list[GradeReport]:
        if student == "a_crash":
            raise RuntimeError("grader bug")
        return grade_submission(self, student, exercise, folder)

    monkeypatch.setattr(Grader, "grade_submission", crash_for_a)
    assert main(["--course", str(course), "grade-all", "--no-progress"]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "a_crash  circuit_breaker  not graded: RuntimeError: grader bug" in out
    assert any(line.startswith("b_broken  circuit_breaker  0 / 30  (not graded: ") for line in out)
    assert "c_release  circuit_breaker  0 / 30" in out
    assert "graded 1 submissions" in captured.out
    assert "2 not graded" in captured.err


@pytest.mark.parametrize("student", ["../../escaped", "*", ".."])
def test_a_student_id_is_a_name_not_a_path(
    student: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--student` cannot point the scratch copy (and its clean-up) outside the grader."""
    args = ["grade", "circuit_breaker", str(EXERCISE), "--student", student]
    assert main(args) == 2
    assert f"student id {student!r} must be a plain name" in capsys.readouterr().err


def test_grading_in_place_never_replaces_a_collected_submission(tmp_path: Path) -> None:
    """In the course itself, grading a file for a student who submitted leaves theirs alone."""
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    collected = tmp_path / "_grading" / "submitted" / "alice" / "circuit_breaker"
    collected.mkdir(parents=True)
    (collected / "circuit_breaker.ipynb").write_text("alice's work")
    with (
        Grader(Course(tmp_path), in_place=True) as grader,
        pytest.raises(GradingError, match="already holds a submission"),
    ):
        grader.grade("circuit_breaker", EXERCISE, student="alice")
    assert (collected / "circuit_breaker.ipynb").read_text() == "alice's work"


def test_the_prepared_gradebook_cache_follows_solutions_and_config(tmp_path: Path) -> None:
    """A changed solution or nbgrader_config.py never reuses a gradebook prepared before."""
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    solution = tmp_path / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"

    def key() -> Path:
        with Grader(Course(tmp_path)) as grader:
            return grader._cached_gradebook("circuit_breaker")

    first = key()
    assert key() == first
    with (tmp_path / "nbgrader_config.py").open("a") as config:
        config.write("\nc.ClearSolutions.code_stub = {'python': '# your code here'}\n")
    after_config = key()
    solution.write_text(solution.read_text().replace("failure_threshold", "threshold"))
    assert len({first, after_config, key()}) == 3


@pytest.mark.slow
@pytest.mark.sandbox
def test_nbgrader_autograde_runs_the_kernel_in_a_sandbox_too(tmp_path: Path) -> None:
    """nbgrader's own command runs BudgetedExecute, which makes the sandbox itself."""
    import subprocess

    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "solutions", tmp_path / "solutions")
    folder = tmp_path / "_grading" / "submitted" / "eve" / "circuit_breaker"
    folder.mkdir(parents=True)
    probe = "import os\nprint('uid', os.getuid(), 'cwd', os.getcwd())"
    nbformat.write(insert_before(honest(), "test_opening", probe), folder / "circuit_breaker.ipynb")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for args in (["generate_assignment", "circuit_breaker"], ["autograde", "circuit_breaker"]):
        done = subprocess.run(
            [str(BIN / "nbgrader"), *args, "--force"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    autograded = tmp_path / "_grading" / "autograded" / "eve" / "circuit_breaker"
    nb = nbformat.read(autograded / "circuit_breaker.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "uid 60001 cwd /home/student/work" in printed
    db_url = f"sqlite:///{tmp_path / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, "distlab") as gb:
        assert gb.find_submission("circuit_breaker", "eve").score == 30


@pytest.mark.slow
def test_a_cached_gradebook_that_changed_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache lives outside the course; a copy whose content changed is removed, not used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions", course / "solutions")
    with Grader(Course(course), sandbox=False) as grader:
        grader.prepare("circuit_breaker")
    cache = tmp_path / "cache" / "distlab" / "gradebooks"
    (poisoned,) = cache.glob("circuit_breaker-*.db")
    poisoned.write_bytes(poisoned.read_bytes() + b"every test passes")
    with Grader(Course(course), sandbox=False) as grader:
        grader.prepare("circuit_breaker")
        assert (grader.scratch / "gradebook.db").read_bytes()[-17:] != b"every test passes"
    assert not poisoned.exists()
    (fresh,) = cache.glob("circuit_breaker-*.db")
    assert fresh.stem.rsplit("-", 1)[1] == hashlib.sha256(fresh.read_bytes()).hexdigest()[:16]
    assert not (course / "_grading" / "cache").exists()


def test_grading_without_a_sandbox_is_asked_for_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only --unsandboxed, sandbox=False or $DISTLAB_UNSANDBOXED=1 turn the sandbox off."""
    from distlab.course.sandbox import UNSANDBOXED_ENV, Sandbox, sandbox_default

    monkeypatch.delenv(UNSANDBOXED_ENV, raising=False)
    assert sandbox_default() and Sandbox().enabled
    for value in ("0", "yes", ""):
        monkeypatch.setenv(UNSANDBOXED_ENV, value)
        assert sandbox_default()
    monkeypatch.setenv(UNSANDBOXED_ENV, "1")
    assert not sandbox_default() and not Sandbox().enabled
    with Grader(Course(REPO)) as grader:
        assert grader.sandboxed is False
