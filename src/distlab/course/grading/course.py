"""The course folder, its nbgrader configuration, and the release of ``exercises/``.

Layout of a course (see ``nbgrader_config.py``)::

    solutions/<exercise>/<notebook>.ipynb    instructor version
    exercises/<exercise>/<notebook>.ipynb    student version (generated, committed)
    _grading/submitted/<student>/<exercise>/<notebook>.ipynb
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from distlab.course.notebooks import clean_notebook
from distlab.errors import GradingError

__all__ = ["CONFIG_FILE", "Course", "find_course_root", "read_notebook", "release"]

CONFIG_FILE = "nbgrader_config.py"

_log = logging.getLogger("distlab.course.grading")


def find_course_root(start: Path | None = None) -> Path:
    """Return the course folder: the nearest one upwards that holds ``nbgrader_config.py``.

    Falls back to the repository this package was installed from (editable installs).

    Raises:
        GradingError: when no course folder can be found.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file() and (folder / "solutions").is_dir():
            return folder
    repo = Path(__file__).resolve().parents[4]  # src/distlab/course/grading/course.py
    if (repo / CONFIG_FILE).is_file():
        return repo
    raise GradingError(
        f"no {CONFIG_FILE} found in {here} or its parents: run this in the course folder"
    )


def _ensure_tools_on_path() -> None:
    # nbgrader runs `alembic` from PATH when it creates a gradebook; a bare
    # FileNotFoundError is all one gets when the venv's bin folder is not on PATH.
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + (os.pathsep + path if path else "")


def _cache_alembic_version() -> None:
    # Every new gradebook asks for the schema version by running `alembic heads` in a
    # subprocess: about 5 s here, as the subprocess imports nbgrader and SQLAlchemy
    # again. The answer is a constant of the installed nbgrader, read here in-process
    # from the same alembic scripts folder, once per process.
    # A patch of nbgrader's module attribute (Gradebook looks the function up there on
    # each call), in this process only. It degrades to nbgrader's own behaviour: if
    # nbgrader renames the function the patch is skipped, and any unusual answer from
    # alembic falls back to nbgrader's subprocess.
    import nbgrader.api as nbgrader_api

    original = getattr(nbgrader_api, "get_alembic_version", None)
    if not callable(original) or hasattr(original, "cache_info"):
        return

    @functools.cache
    def alembic_version() -> str:
        try:
            from alembic.config import Config as AlembicConfig
            from alembic.script import ScriptDirectory
            from nbgrader.dbutil import ALEMBIC_DIR

            config = AlembicConfig()
            config.set_main_option("script_location", ALEMBIC_DIR)
            heads = ScriptDirectory.from_config(config).get_heads()
        except Exception:
            heads = []
        if len(heads) == 1:
            return str(heads[0])
        return str(original())  # anything unusual: ask alembic the way nbgrader does

    nbgrader_api.get_alembic_version = alembic_version


class Course:
    """A course folder and its nbgrader configuration.

    Args:
        root: the folder with ``nbgrader_config.py`` (default: found from the cwd).

    Raises:
        GradingError: when the folder has no ``nbgrader_config.py`` or it cannot be loaded.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root).resolve() if root is not None else find_course_root()
        if not (self.root / CONFIG_FILE).is_file():
            raise GradingError(f"{self.root} has no {CONFIG_FILE}")
        _ensure_tools_on_path()
        _cache_alembic_version()
        loader = PyFileConfigLoader(CONFIG_FILE, path=str(self.root))
        try:
            self.config: Config = loader.load_config()
        except Exception as exc:  # the file runs arbitrary code: report it, no traceback
            raise GradingError(
                f"{self.root / CONFIG_FILE} could not be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        self.config.CourseDirectory.root = str(self.root)

    @property
    def course_id(self) -> str:
        """The ``course_id`` from the configuration."""
        return str(self.config.CourseDirectory.get("course_id", ""))

    def _dir(self, name: str, default: str) -> Path:
        return self.root / str(self.config.CourseDirectory.get(name, default))

    @property
    def solutions_dir(self) -> Path:
        """Where the instructor notebooks live (``CourseDirectory.source_directory``)."""
        return self._dir("source_directory", "source")

    @property
    def exercises_dir(self) -> Path:
        """Where the student notebooks live (``CourseDirectory.release_directory``)."""
        return self._dir("release_directory", "release")

    @property
    def submitted_dir(self) -> Path:
        """Where submissions are collected (``CourseDirectory.submitted_directory``)."""
        return self._dir("submitted_directory", "submitted")

    def exercises(self) -> list[str]:
        """Return the exercise names, sorted."""
        if not self.solutions_dir.is_dir():
            return []
        return sorted(p.name for p in self.solutions_dir.iterdir() if any(p.glob("*.ipynb")))

    def notebooks(self, exercise: str) -> list[str]:
        """Return the notebook names (without ``.ipynb``) of ``exercise``.

        Raises:
            GradingError: when there is no such exercise.
        """
        if exercise not in self.exercises():
            known = ", ".join(self.exercises()) or "none"
            raise GradingError(f"unknown exercise {exercise!r} (known: {known})")
        return sorted(p.stem for p in (self.solutions_dir / exercise).glob("*.ipynb"))

    def coursedir(self, **overrides: Any) -> CourseDirectory:
        """Return nbgrader's ``CourseDirectory`` for this course, with trait overrides.

        The overrides apply to a copy: the course's own configuration is left as it is
        (several graders share one course).
        """
        config = copy.deepcopy(self.config)
        for key, value in overrides.items():
            config.CourseDirectory[key] = value
        return CourseDirectory(config=config, log=_log)


def _quiet_logs() -> None:
    # nbgrader's converters log every step at INFO; the CLI shows errors only. SQLAlchemy
    # warns about nbgrader's session use on every autograde; nothing a user can act on.
    warnings.filterwarnings("ignore", module="nbgrader.api")
    if not _log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        _log.addHandler(handler)
        _log.setLevel(logging.ERROR)
        _log.propagate = False


def _run_converter(converter: Any) -> None:
    from nbgrader.converters.base import NbGraderException

    try:
        converter.start()
    except NbGraderException as exc:
        raise GradingError(str(exc) or type(exc).__name__) from exc


def release(
    course: Course, exercises: Iterable[str] | None = None, dest: Path | None = None
) -> list[Path]:
    """Generate the student notebooks from the solutions with ``nbgrader generate_assignment``.

    The notebooks are then cleaned with :func:`distlab.course.notebooks.clean_notebook` so
    the committed copies stay free of outputs and noise.

    Args:
        course: the course.
        exercises: which exercises (default: all).
        dest: write here instead of the course's ``exercises/`` folder; the course
            gradebook is then left alone too (a scratch one is used).

    Returns:
        The notebooks written.
    """
    _quiet_logs()
    names = list(exercises) if exercises is not None else course.exercises()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="distlab-release-") as scratch:
        overrides: dict[str, Any] = {}
        if dest is not None:
            overrides = {
                "release_directory": str(Path(dest).resolve()),
                "db_url": f"sqlite:///{scratch}/gradebook.db",
            }
        for exercise in names:
            course.notebooks(exercise)  # raises for an unknown exercise
            coursedir = course.coursedir(assignment_id=exercise, **overrides)
            converter = GenerateAssignment(coursedir=coursedir, config=coursedir.config, log=_log)
            converter.force = True
            _run_converter(converter)
            out_dir = Path(coursedir.format_path(coursedir.release_directory, ".", exercise))
            for path in sorted(out_dir.glob("*.ipynb")):
                nb = nbformat.read(path, as_version=4)
                nbformat.write(clean_notebook(nb), path)
                written.append(path)
    return written


# The largest submitted notebook graded (its outputs are cleared before grading, but
# reading it costs the grader's process several times its size in memory).
MAX_NOTEBOOK_MB = 32


def check_notebook_size(path: Path) -> None:
    """Refuse a notebook file over :data:`MAX_NOTEBOOK_MB` before anything reads it.

    Raises:
        GradingError: naming the file and its size.
    """
    size = path.stat().st_size >> 20
    if size > MAX_NOTEBOOK_MB:
        raise GradingError(
            f"{path.name} is too large to grade ({size} MiB, at most {MAX_NOTEBOOK_MB})"
        )


def read_notebook(path: Path) -> Any:
    """Read a notebook file for grading.

    Raises:
        GradingError: when the file is missing, too large (:data:`MAX_NOTEBOOK_MB`) or is
            not a Jupyter notebook.
    """
    if not path.is_file():
        raise GradingError(f"no such file: {path}")
    check_notebook_size(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises many kinds for a file that is not JSON
        raise GradingError(f"{path} is not a Jupyter notebook ({type(exc).__name__})") from exc
    if not isinstance(nb.get("cells"), list):
        raise GradingError(f"{path} is not a Jupyter notebook (no cells)")
    return nb
