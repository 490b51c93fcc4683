"""The student edition: no answers in it, and its own two commands work there."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from distlab.course.cli import main
from distlab.course.grading import Course, student_edition
from distlab.errors import GradingError
from tests import REPO
from tests.submissions import honest

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student edition of this repository, written by the command line."""
    dest = tmp_path_factory.mktemp("student") / "distlab-student"
    assert main(["student-edition", str(dest)]) == 0
    return dest


def _answer_lines(pattern: re.Pattern[str]) -> set[str]:
    """Lines of every solution notebook's regions that no student notebook has."""
    released = "\n".join(
        c.source
        for p in sorted((REPO / "exercises").glob("*/*.ipynb"))
        for c in nbformat.read(p, as_version=4).cells
    )
    return {
        line.strip()
        for path in sorted((REPO / "solutions").glob("*/*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        for region in pattern.findall(cell.source)
        for line in region.splitlines()
        if len(line.strip()) > 30 and line.strip() not in released
    }


def test_no_solution_hidden_test_or_gradebook_is_in_it(edition: Path) -> None:
    """No solutions/, _grading/, grading config, tests or history; no answer in any notebook."""
    top = {p.name for p in edition.iterdir()}
    assert top == {
        "lessons",
        "quizzes",
        "exercises",
        "src",
        "deploy",
        "pyproject.toml",
        "environment.yml",
        "README.md",
        "Makefile",
        ".gitignore",
    }
    assert not list(edition.rglob("gradebook*.db")) and not list(edition.rglob("__pycache__"))
    hidden, solutions = _answer_lines(HIDDEN), _answer_lines(SOLUTION)
    assert len(hidden) > 100 and len(solutions) > 50
    notebooks = sorted(edition.rglob("*.ipynb"))
    assert len(notebooks) > 10
    for path in notebooks:
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, path
        assert [line for line in solutions | hidden if line in text] == [], path
    # Nor any hidden assertion anywhere else (a plain line of code may well recur).
    asserts = {line for line in hidden if line.startswith("assert")}
    assert len(asserts) > 30
    for path in edition.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".md", ".yaml", ".yml", ".txt", ""):
            text = path.read_text(errors="replace")
            assert [line for line in asserts if line in text] == [], path


def test_the_exercises_are_the_released_notebooks(edition: Path) -> None:
    """Students get exactly the committed student copies."""
    for path in sorted((REPO / "exercises").glob("*/*.ipynb")):
        copy = edition / path.relative_to(REPO)
        assert copy.read_bytes() == path.read_bytes()


def test_the_readme_has_no_instructor_section(edition: Path) -> None:
    """It says it is the student edition and gives the students' commands."""
    readme = (edition / "README.md").read_text()
    assert "Student edition" in readme and "make check" in readme
    assert "## For instructors" not in readme and "make test" not in readme
    assert "## For instructors" in (REPO / "README.md").read_text()


def test_an_exercise_with_a_hidden_test_is_refused(tmp_path: Path) -> None:
    """A student copy that still has hidden tests (not released) stops the edition."""
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "solutions", course / "solutions")
    shutil.copytree(REPO / "exercises", course / "exercises")
    leaked = course / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
    shutil.copy(REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb", leaked)
    with pytest.raises(GradingError, match=r"circuit_breaker\.ipynb still has 'BEGIN "):
        student_edition(Course(course), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["not_empty", "inside"])
def test_the_edition_goes_into_a_new_folder_outside_the_course(tmp_path: Path, where: str) -> None:
    """A folder with files in it, or one inside the course, is refused before any work."""
    if where == "not_empty":
        dest = tmp_path / "out"
        dest.mkdir()
        (dest / "mine.txt").write_text("keep")
        match = "is not empty"
    else:
        dest = REPO / "student-edition"
        match = "is inside the course"
    with pytest.raises(GradingError, match=match):
        student_edition(Course(REPO), dest)
    assert not (REPO / "student-edition").exists()


def _venv_for(edition: Path) -> None:
    """A throwaway .venv for the edition: its own src/, the dependencies already installed.

    What `make install` would build with pip, without downloading the dependencies again:
    the edition's `src` first on the path, then this environment's site-packages.
    """
    venv = edition / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python3*/site-packages")
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "_distlab_edition.pth").write_text(f"{edition / 'src'}\n{ours}\n")
    (venv / ".installed").touch()  # newer than pyproject.toml: make sees it installed


def _make(edition: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(edition), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )


@pytest.mark.slow
def test_make_check_and_make_lab_work_in_the_edition(edition: Path) -> None:
    """`make check` checks the student's exercise; `make lab` serves the lessons."""
    _venv_for(edition)
    origin = subprocess.run(
        [
            str(edition / ".venv" / "bin" / "python"),
            "-c",
            "import distlab; print(distlab.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert origin.startswith(str(edition / "src"))  # the edition's own package
    notebook = "exercises/circuit_breaker/circuit_breaker.ipynb"
    nbformat.write(honest("circuit_breaker"), edition / notebook)
    done = _make(edition, "check", f"NOTEBOOK={notebook}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All visible tests pass" in done.stdout
    untouched = "exercises/bulkhead/bulkhead.ipynb"
    done = _make(edition, "check", f"NOTEBOOK={untouched}")
    assert done.returncode != 0 and "NotImplementedError" in done.stdout

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lab_args = f"--no-browser --port={port} --ServerApp.token=edition --ServerApp.ip=127.0.0.1"
    server = subprocess.Popen(
        ["make", "-C", str(edition), "lab", f"LAB_ARGS={lab_args}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/contents/lessons?token=edition"
        deadline = time.monotonic() + 120
        listing = ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    listing = response.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert "00_start_here.ipynb" in listing, server.poll()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
