"""The grading pipeline: nbgrader autograde and feedback, and the distlab command line."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
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

from distlab.cli import main
from distlab.errors import GradingError
from distlab.grading import CheckReport, Course, Grader, GradeReport
from distlab.kernelpool import KernelPool
from tests.test_grading_robustness import _edit_breaker, _index, honest

REPO = Path(__file__).resolve().parent.parent
SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


def hidden_bug() -> Any:
    """Passes every visible test; a hidden test catches the wrong default threshold."""
    return _edit_breaker(honest(), "failure_threshold: int = 5,", "failure_threshold: int = 4,")


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
    """Autograding the solution gives 26/26, one passed line per test, then the total."""
    report = reports["solution"]
    assert (report.score, report.max_score) == (26, 26)
    lines = report.lines()
    assert lines[0] == "test_opening  2/2  passed"
    assert lines[-1] == "score: 26 / 26"
    assert len(lines) == len(report.tests) + 1 == 13


@pytest.mark.slow
def test_the_release_earns_nothing_and_says_why(reports: dict[str, GradeReport]) -> None:
    """The untouched student copy scores 0/26; each test names the error."""
    report = reports["release"]
    assert (report.score, report.max_score) == (0, 26)
    assert all(t.message == "NotImplementedError" for t in report.tests), report.lines()
    assert "test_opening  0/2  NotImplementedError" in report.lines()


@pytest.mark.slow
def test_hidden_tests_count_in_the_grade(reports: dict[str, GradeReport]) -> None:
    """A bug only the hidden tests catch costs exactly the points of that test."""
    report = reports["hidden_bug"]
    failed = [t for t in report.tests if not t.passed]
    assert [t.grade_id for t in failed] == ["test_opening"]
    assert "the default failure_threshold is 5" in failed[0].message
    assert report.score == 24


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
    assert reports["hidden_bug"].score == 24  # graded before feedback is made
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
    assert reports["hidden_bug"].score == 24
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    text = _feedback_text(grader, "hidden_bug", [GetGrades, CSSHTMLHeaderPreprocessor])
    assert any(line in text for line in _hidden_lines())


def test_course_config_is_what_the_issue_asks_for() -> None:
    """Folders, course id, a short cell timeout and a notebook budget under a minute."""
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
        "GetGrades",
        "HideHiddenTestTracebacks",
        "ClearHiddenTests",
        "CSSHTMLHeaderPreprocessor",
    ]


# --- the command line ---------------------------------------------------------------------
@pytest.mark.slow
def test_distlab_grade_json_through_the_installed_command() -> None:
    """`distlab grade EXERCISE NOTEBOOK --json` prints the documented shape and exits 0."""
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
    assert set(result) == {"exercise", "score", "max_score", "tests"}
    assert (result["exercise"], result["score"], result["max_score"]) == ("circuit_breaker", 0, 26)
    assert len(result["tests"]) == 12
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
    assert json.loads(capsys.readouterr().out)["max_score"] == 26
    assert (tmp_path / "_grading").read_text() == "not a folder"


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
    assert "0 of 12 test cells pass." in out
    assert "Fix the first failing test" in out


@pytest.mark.slow
def test_check_passes_good_work_and_notes_edited_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good work passes (exit 0); an edited test cell is pointed out."""
    nb = honest()
    cell = nb.cells[_index(nb, "test_validation")]
    cell.source += "\nprint('my extra check')"
    path = tmp_path / "circuit_breaker.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "12 of 12 test cells pass." in out
    assert "you edited the test cell test_validation" in out
    assert "FAIL" not in out


@pytest.mark.slow
def test_check_points_out_a_deleted_test_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Good work with a test cell deleted does not pass the check: grading scores it 0."""
    nb = honest()
    del nb.cells[_index(nb, "test_closing")]
    path = tmp_path / "circuit_breaker.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "  MISSING  test_closing: you deleted this test cell" in out
    assert "11 of 12 test cells pass." in out
    assert "All visible tests pass" not in out


@pytest.mark.slow
def test_grade_all_grades_the_submitted_folder_into_the_gradebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`distlab grade-all` autogrades _grading/submitted/*/*/ with a progress bar."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions", course / "solutions")
    for student, nb in (("alice", honest()), ("bob", nbformat.read(EXERCISE, as_version=4))):
        folder = course / "_grading" / "submitted" / student / "circuit_breaker"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "circuit_breaker.ipynb")
    assert main(["--course", str(course), "grade-all"]) == 0
    captured = capsys.readouterr()
    assert "alice  circuit_breaker  26 / 26" in captured.out
    assert "bob  circuit_breaker  0 / 26" in captured.out
    assert "2/2" in captured.err  # tqdm's progress bar
    db_url = f"sqlite:///{course / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, "distlab") as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions("circuit_breaker")}
    assert scores == {"alice": 26, "bob": 0}
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

    def crash_for_a(self: Grader, student: str, exercise: str) -> list[GradeReport]:
        if student == "a_crash":
            raise RuntimeError("grader bug")
        return grade_submission(self, student, exercise)

    monkeypatch.setattr(Grader, "grade_submission", crash_for_a)
    assert main(["--course", str(course), "grade-all", "--no-progress"]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "a_crash  circuit_breaker  not graded: RuntimeError: grader bug" in out
    assert any(line.startswith("b_broken  circuit_breaker  0 / 26  (not graded: ") for line in out)
    assert "c_release  circuit_breaker  0 / 26" in out
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


@pytest.mark.slow
def test_kernel_pool_moves_kernels_to_the_notebook_and_never_starves(tmp_path: Path) -> None:
    """A pooled kernel runs in the folder asked for; asking beyond the limit still works."""
    pool = KernelPool(1, limit=1)
    try:
        for _ in range(2):  # the second kernel is beyond the limit: started on demand
            km = pool.take(str(tmp_path))
            client = km.blocking_client()
            client.start_channels()
            printed: list[str] = []

            def collect(msg: dict[str, Any], printed: list[str] = printed) -> None:
                if msg["msg_type"] == "stream":
                    printed.append(msg["content"]["text"])

            try:
                client.execute_interactive(
                    "import os; print(os.getcwd())", timeout=30, output_hook=collect
                )
            finally:
                client.stop_channels()
                KernelPool.discard(km)
            assert "".join(printed).strip() == str(tmp_path)
    finally:
        pool.close()


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
def test_a_pooled_kernel_that_cannot_be_moved_is_shut_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """take() into a missing folder raises, and the kernel it could not hand out is stopped."""
    from jupyter_core.utils import run_sync

    discarded: list[Any] = []
    discard = KernelPool.discard

    def recording_discard(km: Any) -> None:
        discarded.append(km)
        discard(km)

    monkeypatch.setattr(KernelPool, "discard", staticmethod(recording_discard))
    pool = KernelPool(1, limit=1)
    try:
        with pytest.raises(RuntimeError, match="could not move a pooled kernel"):
            pool.take(str(tmp_path / "missing"))
    finally:
        pool.close()
    assert len(discarded) == 1
    assert not run_sync(discarded[0].is_alive)()


def test_the_command_leaves_sys_modules_as_it_found_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """main() blocks the slow rfc3987_syntax import only while it runs."""
    had = "rfc3987_syntax" in sys.modules
    assert main(["check", "missing.ipynb"]) == 2
    capsys.readouterr()
    assert ("rfc3987_syntax" in sys.modules) == had
    assert sys.modules.get("rfc3987_syntax", True) is not None


def test_the_alembic_shortcut_steps_aside_when_nbgrader_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without nbgrader.api.get_alembic_version the course still loads (no patch applied)."""
    import nbgrader.api

    monkeypatch.delattr(nbgrader.api, "get_alembic_version")
    assert Course(REPO).course_id == "distlab"
    assert not hasattr(nbgrader.api, "get_alembic_version")


def test_a_check_without_tests_has_not_passed() -> None:
    """A report with no test cells never reads as "all visible tests pass"."""
    report = CheckReport(Path("lesson.ipynb"), ())
    assert not report.passed
    assert "All visible tests pass" not in "\n".join(report.lines())
