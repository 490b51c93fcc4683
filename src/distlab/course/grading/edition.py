"""The student edition: the course without its answers, ready to hand out.

``distlab student-edition DIR`` (``make student``) writes what students need and
nothing more: the lessons, quizzes and exercise notebooks, the ``distlab`` package and
its install files, a README without the instructor section and a Makefile with the
students' two commands (``make lab``, ``make check``). It leaves out ``solutions/``
(the answers and the hidden tests), the gradebook and everything grading produced
(``_grading/``), the grading configuration, the tests (they read the solutions), the
benchmarks, CI and the repository's history (which holds every answer ever committed).

Every exercise notebook is checked on the way: one that still holds a hidden test, a
solution region or a line of a solution is refused, and nothing is written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat

from distlab.course.grading.course import Course
from distlab.errors import GradingError

__all__ = ["STUDENT_MAKEFILE", "student_edition"]

# Copied when present; anything else at the top of the course stays behind.
_KEPT = (
    "lessons",
    "quizzes",
    "exercises",
    "src",
    "deploy",  # the containers lesson 09 builds
    "pyproject.toml",
    "environment.yml",
)
_KEPT_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", ".gitignore")
_SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache"}
_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION")

STUDENT_MAKEFILE = """\
# distlab, student edition: two commands.
#   make lab     install the course into .venv (first time only) and open JupyterLab
#   make check   run the visible tests of every exercise and say what to fix
#                (one exercise: make check NOTEBOOK=exercises/circuit_breaker/circuit_breaker.ipynb)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Jupyter refuses to run as root without this flag (containers).
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)
NOTEBOOK ?= $(wildcard exercises/*/*.ipynb)

.PHONY: install lab check clean

install: $(STAMP)

$(STAMP): pyproject.toml
\t@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "distlab needs \
Python 3.11 or newer; set PYTHON=python3.11 (found " + sys.version.split()[0] + ")")'
\t@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --upgrade pip
\t$(BIN)/python -m pip install --quiet -e .
\t@touch $(STAMP)

# LAB_ARGS passes extra options to JupyterLab, e.g. make lab LAB_ARGS="--no-browser --port=9999"
LAB_ARGS ?=
lab: install
\tPATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m jupyterlab --ServerApp.root_dir="$(CURDIR)" \
$(ROOT_FLAG) $(LAB_ARGS) lessons/00_start_here.ipynb

check: install
\t@status=0; for notebook in $(NOTEBOOK); do \\
\t  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m distlab.course.cli check "$$notebook" \
|| status=1; \\
\tdone; exit $$status

clean:
\trm -rf $(VENV)
"""

_NOTE = (
    "> **Student edition.** This copy of the course has everything you need to learn and "
    "to practise: lessons, quizzes, exercises.\n"
    "> `make lab` opens it; `make check` runs the visible tests of your exercises.\n"
)


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        skipped = _SKIPPED_PARTS & set(rel.parts) or path.suffix == ".pyc"
        if path.is_file() and not skipped and not any(p.endswith(".egg-info") for p in rel.parts):
            yield path


def _solution_lines(course: Course) -> set[str]:
    """Distinctive lines of the solutions: hidden tests and solution regions."""
    region = re.compile(
        r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END (?:SOLUTION|HIDDEN TESTS)", re.S
    )
    released = "\n".join(
        cell.source
        for path in sorted(course.exercises_dir.glob("*/*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
    )
    lines = set()
    for path in sorted(course.solutions_dir.glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for block in region.findall(cell.source):
                for line in block.splitlines():
                    text = line.strip()
                    if len(text) > 30 and text not in released:
                        lines.add(text)
    return lines


def _check_exercise(path: Path, answers: set[str]) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        marker = next((m for m in _MARKERS if m in cell.source), None)
        if marker is not None:
            raise GradingError(f"{path} still has '{marker}': run `distlab release` first")
        leaked = next((line for line in answers if line in cell.source), None)
        if leaked is not None:
            raise GradingError(f"{path} holds a line of a solution: {leaked[:60]!r}")


def _readme(text: str) -> str:
    """The course README for students: no instructor or contributor sections."""
    for section in ("For instructors", "How to contribute"):
        text = re.sub(rf"\n## {section}\n.*?(?=\n## |\Z)", "\n", text, flags=re.S)
    text = re.sub(
        r"^make test .*$",
        "make check  # runs the visible tests of every exercise and says what to fix",
        text,
        flags=re.M,
    )
    text = text.replace(", and `make test` checks every quiz file", "")
    title, _, rest = text.partition("\n")
    return f"{title}\n\n{_NOTE}{rest}"


def student_edition(course: Course, dest: Path | str) -> list[Path]:
    """Write the student edition of ``course`` into the new folder ``dest``.

    Returns:
        The files written.

    Raises:
        GradingError: ``dest`` exists and is not empty, or is inside the course; an
            exercise notebook still holds a hidden test, a solution region or a line of
            a solution.
    """
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise GradingError(f"{dest} is not empty: the student edition needs a new folder")
    if dest == course.root or course.root in dest.parents:
        raise GradingError(f"{dest} is inside the course: write the student edition elsewhere")
    answers = _solution_lines(course)
    notebooks = sorted(course.exercises_dir.glob("*/*.ipynb"))
    if not notebooks:
        raise GradingError(
            f"no exercise notebooks in {course.exercises_dir}: run `distlab release`"
        )
    for path in notebooks:
        _check_exercise(path, answers)
    written: list[Path] = []
    dest.mkdir(parents=True, exist_ok=True)
    for name in _KEPT + _KEPT_FILES:
        source = course.root / name
        files = [source] if source.is_file() else list(_files(source)) if source.is_dir() else []
        for path in files:
            target = dest / path.relative_to(course.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            written.append(target)
    readme = course.root / "README.md"
    if readme.is_file():
        (dest / "README.md").write_text(_readme(readme.read_text(encoding="utf-8")))
        written.append(dest / "README.md")
    (dest / "Makefile").write_text(STUDENT_MAKEFILE)
    written.append(dest / "Makefile")
    return written
