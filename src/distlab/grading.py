"""Release, check and grade the course's nbgrader exercises through nbgrader itself.

Everything here drives nbgrader's own Python classes (``GenerateAssignment``,
``Autograde``, the ``Gradebook``) with the settings in the repository's
``nbgrader_config.py``; nothing imitates them. What distlab adds:

* :class:`BudgetedExecute`, nbgrader's ``Execute`` with a time budget per notebook,
  shorter timeouts once a submission is known to hang, and a kernel that comes back
  (definitions replayed) after a submission kills or wedges it, so one bad submission
  can neither stall nor crash the grading of the others;
* :class:`HideHiddenTestTracebacks`, so feedback never quotes a hidden test;
* :class:`Grader`, which grades submissions in this process, in a scratch course
  directory or in the course itself, and reuses what can be reused: the prepared
  gradebook (cached between runs), and kernels started ahead of time
  (:class:`distlab.kernelpool.KernelPool`);
* :func:`check_notebook`, the student's friendly run of the visible tests;
* :func:`release`, which regenerates ``exercises/`` with ``generate_assignment``.

Layout of a course (see ``nbgrader_config.py``)::

    solutions/<exercise>/<notebook>.ipynb    instructor version
    exercises/<exercise>/<notebook>.ipynb    student version (generated, committed)
    _grading/submitted/<student>/<exercise>/<notebook>.ipynb
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils as nbgrader_utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, Execute, NbGraderPreprocessor
from traitlets import Float
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from distlab.errors import GradingError
from distlab.kernelpool import KernelPool
from distlab.notebooks import clean_notebook

__all__ = [
    "BudgetedExecute",
    "CheckReport",
    "Course",
    "GradeReport",
    "Grader",
    "HideHiddenTestTracebacks",
    "KernelPool",
    "TestResult",
    "autograde_kernel_pool",
    "check_notebook",
    "find_course_root",
    "read_notebook",
    "release",
    "submissions",
]

CONFIG_FILE = "nbgrader_config.py"
# What nbgrader's validator tells the kernel; `distlab check` does the same.
CHECK_ENV = {"NBGRADER_EXECUTION": "validate", "NBGRADER_VALIDATING": "1"}
DEFAULT_STUDENT = "student"

_log = logging.getLogger("distlab.grading")


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestResult:
    """The outcome of one graded test cell.

    Attributes:
        grade_id: the cell's nbgrader ``grade_id`` (a name such as ``test_opening``).
        points: points awarded.
        max_points: points the cell is worth.
        passed: True when the cell earned all its points.
        message: why it failed (``"AssertionError: ..."``), empty when it passed.
        description: the first line of the test's docstring.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    grade_id: str
    points: float
    max_points: float
    passed: bool
    message: str = ""
    description: str = ""


@dataclass(frozen=True)
class GradeReport:
    """The autograded result of one submitted notebook.

    Attributes:
        exercise: the exercise (nbgrader assignment) name.
        notebook: the notebook name, without ``.ipynb``.
        student: the student id used in the gradebook.
        score: points awarded in total.
        max_score: points available in total.
        tests: one entry per graded test cell, in notebook order.
        error: why nbgrader could not autograde the notebook (then no test counts as
            passed, and each says so), empty when it was graded.
    """

    exercise: str
    notebook: str
    student: str
    score: float
    max_score: float
    tests: tuple[TestResult, ...] = field(default_factory=tuple)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` shape of ``distlab grade``."""
        return {
            "exercise": self.exercise,
            "score": self.score,
            "max_score": self.max_score,
            "tests": [
                {
                    "grade_id": t.grade_id,
                    "points": t.points,
                    "max_points": t.max_points,
                    "passed": t.passed,
                }
                for t in self.tests
            ],
        }

    def lines(self) -> list[str]:
        """Return the human-readable report: one line per test, then the total."""
        out = []
        for t in self.tests:
            outcome = "passed" if t.passed else (t.message or "failed")
            out.append(f"{t.grade_id}  {_points(t.points)}/{_points(t.max_points)}  {outcome}")
        out.append(f"score: {_points(self.score)} / {_points(self.max_score)}")
        return out


@dataclass(frozen=True)
class CheckReport:
    """The outcome of running the visible tests of a notebook (``distlab check``).

    Attributes:
        notebook: the checked file.
        tests: one entry per graded test cell (points are the visible share only).
        edited: grade ids of test cells the student changed (the originals run when graded).
        problems: errors raised by non-test cells, first line each, in notebook order.
        missing: grade ids of the exercise's test cells the student deleted (they score 0
            when graded); known only when the course is.
    """

    notebook: Path
    tests: tuple[TestResult, ...]
    edited: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when no test cell is missing and every visible test passes (none: not passed)."""
        return bool(self.tests) and not self.missing and all(t.passed for t in self.tests)

    def lines(self) -> list[str]:
        """Return the friendly summary printed by ``distlab check``."""
        out = [f"Checking {self.notebook.name}: visible tests only (hidden tests run when graded)"]
        for cell in self.edited:
            out.append(
                f"  note: you edited the test cell {cell}; grading runs the original, "
                "so check with the original"
            )
        for t in self.tests:
            mark = "PASS" if t.passed else "FAIL"
            out.append(f"  {mark}  {t.grade_id}: {t.description}")
            if not t.passed:
                out.append(f"        -> {t.message}")
        for grade_id in self.missing:
            out.append(
                f"  MISSING  {grade_id}: you deleted this test cell; it scores 0 when graded "
                "(copy it back from a fresh copy of the exercise)"
            )
        passed = sum(t.passed for t in self.tests)
        out.append(f"{passed} of {len(self.tests) + len(self.missing)} test cells pass.")
        if self.problems and not self.passed:
            out.append("Errors in your own cells (fix these first, later tests depend on them):")
            out.extend(f"  - {p}" for p in self.problems)
        if self.passed:
            out.append("All visible tests pass. Hidden tests check more cases when you are graded.")
        else:
            out.append("Fix the first failing test, run your cells again, then check again.")
        return out


def _points(value: float) -> str:
    return f"{value:g}"


# --------------------------------------------------------------------------------------
# Preprocessors used by nbgrader_config.py
# --------------------------------------------------------------------------------------
def _drop(msg: Any) -> None:
    """Ignore a kernel message."""


def _error_output(ename: str, evalue: str) -> Any:
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class BudgetedExecute(Execute):  # type: ignore[misc]  # nbgrader is untyped
    """nbgrader's ``Execute`` with a time budget per notebook and a kernel that survives.

    * Each cell gets at most ``Execute.timeout`` seconds, and never more than what is
      left of ``notebook_budget``. Once the budget is spent the remaining code cells are
      not run: each gets an error output saying so, which scores it 0. A submission that
      loops forever in every test therefore costs about ``notebook_budget`` seconds,
      not one timeout per test cell.
    * When the kernel dies (``os._exit()`` in a cell, a crash), the cell gets an error
      output, a fresh kernel starts and grading carries on with the next cell.
    * While a :class:`Grader` with a :class:`KernelPool` runs it, the kernel comes from the pool
      (started ahead of time while the previous notebook ran) instead of being started
      here; it is moved into the notebook's folder first (set by :class:`Grader`).
    """

    notebook_budget = Float(
        30.0, help="Seconds of execution a whole notebook may use (<= 0: no budget)."
    ).tag(config=True)

    timeout_after_timeout = Float(
        2.0,
        help="Once a cell has timed out, later cells get at most this many seconds: "
        "the submission is known to hang, and honest tests take milliseconds.",
    ).tag(config=True)

    _started: float = 0.0
    _timed_out: bool = False
    _setup: list[str]
    _iopub_timeout: float = 4.0
    _cwd: str = ""

    def preprocess(self, nb: Any, resources: Any = None, km: Any = None) -> Any:
        """Execute the notebook's cells within the budget; see the class docstring."""
        self._started = time.monotonic()
        self._timed_out = False
        self._setup = []
        self._iopub_timeout = self.iopub_timeout
        self.timeout_func = self._cell_timeout
        path = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        self._cwd = os.path.abspath(path)
        pooled = None
        pool = _ACTIVE_POOL
        if km is None and pool is not None:
            pooled = km = pool.take(self._cwd)
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            if pooled is not None:
                self._stop_client()
                KernelPool.discard(pooled)
                self.km = None

    def _remaining(self) -> float:
        if self.notebook_budget <= 0:
            return math.inf
        return self.notebook_budget - (time.monotonic() - self._started)

    def _cell_timeout(self, cell: Any) -> float | None:
        caps = [self._remaining()]
        if self.timeout and self.timeout > 0:
            caps.append(self.timeout)
        if self._timed_out and self.timeout_after_timeout > 0:
            caps.append(self.timeout_after_timeout)
        cap = min(caps)
        return None if math.isinf(cap) else max(1.0, cap)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> Any:
        """Run one cell, or mark it skipped when the budget is spent."""
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        self.iopub_timeout = self._iopub_timeout
        if self._remaining() <= 0:
            cell.outputs = [
                _error_output(
                    "GradingBudgetExceeded",
                    f"not run: the notebook used up its {self.notebook_budget:g} s of "
                    "execution time (look for an infinite loop or a call that never returns)",
                )
            ]
            return cell, self.resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("Kernel died in cell %s; starting a fresh one", index)
            cell.outputs = [
                *cell.get("outputs", []),
                _error_output(
                    "KernelDied",
                    "the Python kernel stopped while running this cell (os._exit() or a "
                    "crash); later cells ran in a fresh kernel",
                ),
            ]
            self._restart_dead_kernel()
            return cell, self.resources
        except CellTimeoutError:
            # nbclient gave up waiting for the cell's output (threads still spinning).
            cell.outputs = [
                *cell.get("outputs", []),
                _error_output("CellTimeoutError", "the cell did not finish within its time limit"),
            ]
            resources = self.resources
        timeout_ename = (self.error_on_timeout or {}).get("ename", "CellTimeoutError")
        if any(o.get("ename") in (timeout_ename, "CellTimeoutError") for o in cell.outputs):
            self._timed_out = True
            if not self._kernel_responds():
                self.log.warning("Kernel still busy after cell %s timed out; restarting it", index)
                self._restart_dead_kernel()
        elif not nbgrader_utils.is_grade(cell):
            # Definitions (imports, solutions, helpers) that ran to the end: replayed into
            # a fresh kernel, so one bad cell costs only itself.
            self._setup.append(cell.source)
        return cell, resources

    async def _async_handle_timeout(self, *args: Any, **kwargs: Any) -> Any:
        # nbclient interrupts the kernel here, then waits up to iopub_timeout (4 s) for
        # the cell's last output. An interrupted kernel reports within milliseconds; one
        # that swallowed the interrupt never does, so waiting longer only wastes budget.
        # This overrides a private nbclient hook (nbclient 0.x, pinned through nbgrader).
        # It passes its arguments through untouched, and preprocess_cell restores
        # iopub_timeout for the next cell; if nbclient renames the hook, this is never
        # called and nbclient's own 4 s wait applies (slower, still correct).
        self.iopub_timeout = min(self.iopub_timeout, 1)
        return await super()._async_handle_timeout(*args, **kwargs)

    def _kernel_responds(self, timeout: float = 1.0) -> bool:
        """Return True when the kernel runs a trivial statement within ``timeout`` seconds.

        After a timeout the kernel was interrupted. Code that swallows
        KeyboardInterrupt keeps it busy, and every later cell would just queue up behind
        it, so such a kernel is restarted instead.
        """
        client: Any = getattr(self, "kc", None)
        if client is None:
            return False
        try:
            reply = run_sync(client.execute_interactive)(
                "pass", silent=True, store_history=False, timeout=timeout, output_hook=_drop
            )
        except Exception:
            return False
        return bool(reply and reply.get("content", {}).get("status") == "ok")

    def _stop_client(self) -> None:
        client: Any = getattr(self, "kc", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.stop_channels()
        self.kc = None

    def _restart_dead_kernel(self) -> None:
        assert self.km is not None
        self._stop_client()
        run_sync(self.km.restart_kernel)(now=True)
        self.start_new_kernel_client()
        self._replay_setup()

    def _replay_setup(self) -> None:
        """Run the definition cells that had finished again, quietly, in the new kernel.

        First back to the notebook's folder: a restarted kernel starts where it was first
        launched, which for a pooled kernel is the pool's folder, not the notebook's.
        """
        client: Any = getattr(self, "kc", None)
        chdir = f"import os as _o; _o.chdir({self._cwd!r}); del _o" if self._cwd else ""
        for source in [chdir, *self._setup]:
            if not source:
                continue
            if client is None or self._remaining() <= 0:
                return
            try:
                run_sync(client.execute_interactive)(
                    source,
                    silent=True,
                    store_history=False,
                    timeout=max(1.0, min(self.timeout_after_timeout, self._remaining())),
                    output_hook=_drop,
                )
            except Exception:
                return


class HideHiddenTestTracebacks(NbGraderPreprocessor):  # type: ignore[misc]
    """Replace the tracebacks of test cells that contain hidden tests by their message.

    A traceback quotes the failing line, and in a hidden test that line is hidden test
    source. The message (``AssertionError: state should be 'open', got 'closed'``) is
    written for students and stays. Run it before ``ClearHiddenTests``, which removes
    the hidden regions and with them the evidence that a cell had one.
    """

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> Any:
        """Shorten the error outputs of one grade cell with a hidden region."""
        if (
            cell.cell_type == "code"
            and nbgrader_utils.is_grade(cell)
            and "BEGIN HIDDEN TESTS" in cell.source
        ):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


# --------------------------------------------------------------------------------------
# The course
# --------------------------------------------------------------------------------------
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
    repo = Path(__file__).resolve().parents[2]
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
        """Return nbgrader's ``CourseDirectory`` for this course, with trait overrides."""
        config = Config(self.config)
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

    The notebooks are then cleaned with :func:`distlab.notebooks.clean_notebook` so
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


# --------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------
def read_notebook(path: Path) -> Any:
    """Read a notebook file for grading.

    Raises:
        GradingError: when the file is missing or is not a Jupyter notebook.
    """
    if not path.is_file():
        raise GradingError(f"no such file: {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises many kinds for a file that is not JSON
        raise GradingError(f"{path} is not a Jupyter notebook ({type(exc).__name__})") from exc
    if not isinstance(nb.get("cells"), list):
        raise GradingError(f"{path} is not a Jupyter notebook (no cells)")
    return nb


def _docstring_line(source: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _failure_message(cell: Any) -> str:
    for output in cell.get("outputs", []):
        if output.output_type == "error" and output.get("ename") == "CellTimeoutError":
            return (
                "CellTimeoutError: the test did not finish in time "
                "(an infinite loop, or a call that never returns?)"
            )
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            evalue = str(output.get("evalue", "")).strip().splitlines()
            first = evalue[0] if evalue else ""
            return f"{output.ename}: {first}" if first else str(output.ename)
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.get("name") == "stderr":
            lines = str(output.text).strip().splitlines()
            return "wrote to stderr: " + (lines[-1] if lines else "")
    return ""


class Grader:
    """Autograde submissions with nbgrader's ``Autograde`` and gradebook, in this process.

    A grader prepares each exercise once (``generate_assignment`` records its cells in
    the gradebook), then grades any number of submissions. With ``pool=True`` kernels
    are started ahead of time, which hides kernel start-up behind the execution of the
    previous notebook. Use it as a context manager.

    By default everything happens in a scratch course directory, so grading a single
    file touches nothing of the course. With ``in_place=True`` the course's own
    submitted/autograded folders and gradebook are used (``distlab grade-all``), so
    ``nbgrader generate_feedback`` and ``nbgrader export`` can follow.

    Args:
        course: the course whose solutions and settings are used.
        pool: start kernels ahead of time, the first one at once: pass the number of
            notebooks that will be graded (an int), True when unknown, or a
            :class:`KernelPool` already started (see :func:`autograde_kernel_pool`); the
            grader closes it.
        in_place: grade in the course folder itself instead of a scratch copy.
        workdir: keep the scratch course here instead of in a temporary folder.
    """

    def __init__(
        self,
        course: Course,
        *,
        pool: bool | int | KernelPool = False,
        in_place: bool = False,
        workdir: Path | None = None,
    ) -> None:
        self.course = course
        self.in_place = in_place
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="distlab-grade-")
            workdir = Path(self._tmp.name)
        self.scratch = Path(workdir).resolve()
        self.scratch.mkdir(parents=True, exist_ok=True)
        if in_place:
            self.root = course.root
            base = course.coursedir()
            self.db_url = str(base.db_url)
            self._dirs: dict[str, str] = {"release_directory": str(self.scratch / "exercises")}
        else:
            self.root = self.scratch
            self.db_url = f"sqlite:///{self.scratch}/gradebook.db"
            self._dirs = {
                "source_directory": "solutions",
                "release_directory": "exercises",
                "submitted_directory": "submitted",
                "autograded_directory": "autograded",
                "feedback_directory": "feedback",
            }
        self._prepared: set[str] = set()
        self._pool: KernelPool | None = None
        _quiet_logs()
        if isinstance(pool, KernelPool):
            self._pool = pool
        elif pool:
            # Started now, the first kernel boots while the assignment is prepared.
            self._pool = autograde_kernel_pool(None if pool is True else int(pool))

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down pooled kernels and remove the scratch folder."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def coursedir(self, exercise: str, student: str = ".") -> CourseDirectory:
        """Return the nbgrader ``CourseDirectory`` this grader uses for ``exercise``."""
        return self.course.coursedir(
            root=str(self.root),
            db_url=self.db_url,
            assignment_id=exercise,
            student_id=student,
            notebook_id="*",
            **self._dirs,
        )

    def _submission_folder(self, student: str, exercise: str) -> Path:
        """Return the empty folder a copied submission goes to (removed first if there).

        Raises:
            GradingError: when ``student`` is not a plain name (it is a path component
                and an nbgrader glob), or when grading in place would delete a
                submission already collected in the course.
        """
        if student in ("", ".", "..") or any(ch in student for ch in "/\\*?[]"):
            raise GradingError(f"student id {student!r} must be a plain name (no / \\ * ? [ ])")
        dest = self._path("submitted_directory", student, exercise)
        if dest.exists():
            if self.in_place:
                # Never replace what nbgrader collected: it is the student's work.
                raise GradingError(f"{dest} already holds a submission; not replacing it")
            shutil.rmtree(dest)
        return dest

    def _path(self, step: str, student: str, exercise: str) -> Path:
        coursedir = self.coursedir(exercise, student)
        return Path(coursedir.format_path(getattr(coursedir, step), student, exercise))

    def prepare(self, exercise: str) -> None:
        """Record ``exercise``'s solution notebooks in the gradebook (once per grader)."""
        if exercise in self._prepared:
            return
        self.course.notebooks(exercise)  # raises GradingError for an unknown exercise
        cached = None
        if not self.in_place:
            dst = self.root / "solutions" / exercise
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(
                self.course.solutions_dir / exercise,
                dst,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
            cached = self._cached_gradebook(exercise)
        gradebook = self.scratch / "gradebook.db"
        if cached is not None and cached.is_file() and not gradebook.exists():
            shutil.copyfile(cached, gradebook)
            self._prepared.add(exercise)
            return
        coursedir = self.coursedir(exercise)
        converter = GenerateAssignment(coursedir=coursedir, config=coursedir.config, log=_log)
        converter.force = True
        _run_converter(converter)
        if cached is not None and not self._prepared:
            # Only a gradebook that holds this one exercise and nothing else is reusable.
            # Written under a unique name, then renamed: a concurrent `distlab grade`
            # reads either no copy or a complete one; a failed copy leaves nothing behind.
            with contextlib.suppress(OSError):
                cached.parent.mkdir(parents=True, exist_ok=True)
                fd, partial = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
                os.close(fd)
                try:
                    shutil.copyfile(gradebook, partial)
                    os.replace(partial, cached)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(partial)
        self._prepared.add(exercise)

    def _cached_gradebook(self, exercise: str) -> Path:
        """Where a gradebook prepared for ``exercise`` alone is kept between runs.

        Preparing an exercise (generate_assignment into a new gradebook) costs seconds,
        the same seconds every time. The copy is keyed by everything it depends on: the
        solution files, the course configuration (``generate_assignment``'s settings
        shape the recorded cells) and the nbgrader version.
        """
        import nbgrader

        digest = hashlib.sha256()
        digest.update(f"{nbgrader.__version__}\0{self.course.course_id}\0".encode())
        digest.update((self.course.root / CONFIG_FILE).read_bytes())
        for path in sorted((self.course.solutions_dir / exercise).rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                digest.update(path.relative_to(self.course.solutions_dir).as_posix().encode())
                digest.update(path.read_bytes())
        return self.course.root / "_grading" / "cache" / f"{exercise}-{digest.hexdigest()[:16]}.db"

    def grade(
        self, exercise: str, notebook: Path | str, student: str = DEFAULT_STUDENT
    ) -> GradeReport:
        """Autograde one submitted notebook file and return its grades.

        The file may have any name when the exercise has one notebook (students rename
        downloads); otherwise its name picks the exercise's notebook.

        Raises:
            GradingError: unknown exercise, missing file, a file that is not a notebook,
                a notebook with none of the exercise's graded cells, a student id that
                is not a plain name, or (in place) a submission already collected for
                ``student``.
        """
        names = self.course.notebooks(exercise)
        path = Path(notebook)
        nb = read_notebook(path)
        if len(names) == 1:
            notebook_id = names[0]
        elif path.stem in names:
            notebook_id = path.stem
        else:
            raise GradingError(
                f"{path.name} is not one of {exercise}'s notebooks: {', '.join(names)}"
            )
        # A notebook without a single one of the exercise's nbgrader cells (solution,
        # test or locked) would score 0 with "was the test cell deleted?" on every line:
        # name the real problem instead.
        expected = self._cell_ids(exercise, notebook_id)
        found = {cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells}
        if expected and not expected & found:
            raise GradingError(
                f"{path.name} has none of the nbgrader cells of {exercise}/{notebook_id}.ipynb "
                "(another exercise's notebook, or a copy that lost its cell metadata)"
            )
        self.prepare(exercise)
        dest = self._submission_folder(student, exercise)
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{notebook_id}.ipynb")
        return self._autograde(exercise, student, [notebook_id])[0]

    def grade_submission(
        self, student: str, exercise: str, folder: Path | None = None
    ) -> list[GradeReport]:
        """Autograde the submission of ``student`` for ``exercise``, one report per notebook.

        Args:
            student: the student id.
            exercise: the exercise name.
            folder: a folder holding the submitted notebooks; default: the grader's own
                ``submitted/<student>/<exercise>/``.

        Raises:
            GradingError: unknown exercise; with ``folder``, a student id that is not a
                plain name, or (in place) a submission already collected for ``student``.
        """
        names = self.course.notebooks(exercise)
        self.prepare(exercise)
        dest = self._path("submitted_directory", student, exercise)
        if folder is not None and Path(folder).resolve() != dest.resolve():
            dest = self._submission_folder(student, exercise)
            shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        return self._autograde(exercise, student, names)

    def _autograde(self, exercise: str, student: str, notebook_ids: list[str]) -> list[GradeReport]:
        global _ACTIVE_POOL
        coursedir = self.coursedir(exercise, student)
        converter = Autograde(coursedir=coursedir, config=coursedir.config, log=_log)
        converter.force = True
        converter.create_student = True
        error = ""
        _ACTIVE_POOL = self._pool
        try:
            _run_converter(converter)
        except GradingError as exc:
            error = str(exc)
        finally:
            _ACTIVE_POOL = None
        autograded = self._path("autograded_directory", student, exercise)
        return [
            self._report(exercise, student, nb_id, autograded / f"{nb_id}.ipynb", error)
            for nb_id in notebook_ids
        ]

    def _cell_ids(self, exercise: str, notebook_id: str) -> set[str]:
        """Return the nbgrader cell ids (grade ids) of every nbgrader cell of a solution."""
        source = nbformat.read(
            self.course.solutions_dir / exercise / f"{notebook_id}.ipynb", as_version=4
        )
        ids = (c.metadata.get("nbgrader", {}).get("grade_id") for c in source.cells)
        return {str(i) for i in ids if i}

    def _report(
        self, exercise: str, student: str, notebook_id: str, autograded: Path, error: str
    ) -> GradeReport:
        source = nbformat.read(
            self.course.solutions_dir / exercise / f"{notebook_id}.ipynb", as_version=4
        )
        grade_cells = [
            c for c in source.cells if nbgrader_utils.is_grade(c) and c.cell_type == "code"
        ]
        order = [c.metadata.nbgrader.grade_id for c in grade_cells]
        descriptions = {
            c.metadata.nbgrader.grade_id: _docstring_line(c.source) for c in grade_cells
        }
        messages: dict[str, str] = {}
        if autograded.is_file():
            for cell in nbformat.read(autograded, as_version=4).cells:
                if nbgrader_utils.is_grade(cell):
                    messages[cell.metadata.nbgrader.grade_id] = _failure_message(cell)
        scores: dict[str, tuple[float, float]] = {}
        with Gradebook(self.db_url, self.course.course_id) as gb:
            try:
                submission = gb.find_submission_notebook(notebook_id, exercise, student)
            except MissingEntry:
                for cell in gb.find_notebook(notebook_id, exercise).grade_cells:
                    scores[cell.name] = (0.0, float(cell.max_score))
            else:
                for grade in submission.grades:
                    scores[grade.name] = (float(grade.score or 0.0), float(grade.max_score))
        tests = []
        for grade_id in order + sorted(set(scores) - set(order)):
            if grade_id not in scores:
                continue
            points, max_points = scores[grade_id]
            passed = points >= max_points and not error
            message = ""
            if not passed:
                message = messages.get(grade_id) or (
                    f"not graded: {error}" if error else "no output (was the test cell deleted?)"
                )
            tests.append(
                TestResult(
                    grade_id, points, max_points, passed, message, descriptions.get(grade_id, "")
                )
            )
        return GradeReport(
            exercise=exercise,
            notebook=notebook_id,
            student=student,
            score=sum(t.points for t in tests),
            max_score=sum(t.max_points for t in tests),
            tests=tuple(tests),
            error=error,
        )


def autograde_kernel_pool(limit: int | None = None) -> KernelPool:
    """Start a :class:`KernelPool` of kernels set up like nbgrader's autograde kernels.

    Args:
        limit: how many notebooks it will serve (None: unknown).
    """
    return KernelPool(1, env={"NBGRADER_EXECUTION": "autograde"}, limit=limit)


# The pool handed to BudgetedExecute: nbgrader instantiates preprocessors itself from
# the classes listed in the config, so a module-level slot is the one way to give them
# a shared object. Set only while Grader._autograde runs.
_ACTIVE_POOL: KernelPool | None = None


def submissions(course: Course) -> Iterator[tuple[str, str, Path]]:
    """Yield ``(student, exercise, folder)`` for every folder in the submitted directory.

    Only folders named after one of the course's exercises count, sorted by student
    then exercise; anything else in the submitted directory is left alone.
    """
    root = course.submitted_dir
    if not root.is_dir():
        return
    known = set(course.exercises())
    for student in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in student.iterdir() if p.is_dir()):
            if folder.name in known:
                yield student.name, folder.name, folder


# --------------------------------------------------------------------------------------
# Checking (students)
# --------------------------------------------------------------------------------------
def check_notebook(
    path: Path | str, course: Course | None = None, pool: KernelPool | None = None
) -> CheckReport:
    """Run the visible tests of a notebook and report each test cell's outcome.

    Hidden tests are removed first (the student's copy has none; an instructor's copy
    would otherwise leak them). Test cells the student edited are reported, and the
    edited version runs: ``check`` shows what the student sees in Jupyter.

    Args:
        path: the notebook.
        course: whose settings (timeouts) apply; default nbgrader's.
        pool: take the kernel from this pool (started early by the command line).

    Raises:
        GradingError: when the file is missing or not a notebook.
    """
    path = Path(path)
    nb = read_notebook(path)
    if not any(nbgrader_utils.is_grade(cell) for cell in nb.cells):
        # Otherwise "0 of 0 test cells pass" reads as success (a lesson, a blank notebook,
        # or a copy whose cell metadata an editor dropped).
        raise GradingError(
            f"{path.name} has no nbgrader test cells: check the notebook you opened "
            "from exercises/ (a copy keeps its cell metadata only in Jupyter)"
        )
    config = Config(course.config) if course is not None else Config()
    missing = _deleted_tests(course, nb) if course is not None else []
    edited = []
    for cell in nb.cells:
        checksum = cell.metadata.get("nbgrader", {}).get("checksum")
        if nbgrader_utils.is_grade(cell) and checksum not in (
            None,
            nbgrader_utils.compute_checksum(cell),
        ):
            edited.append(cell.metadata.nbgrader.grade_id)
    resources: dict[str, Any] = {"metadata": {"path": str(path.resolve().parent)}}
    for pp_class in (ClearOutput, ClearHiddenTests):
        pp = pp_class(config=config, log=_log)
        if isinstance(pp, ClearHiddenTests):
            pp.enforce_metadata = False
        nb, resources = pp.preprocess(nb, resources)
    global _ACTIVE_POOL
    executor = BudgetedExecute(config=config, log=_log)
    _ACTIVE_POOL = pool
    try:
        with nbgrader_utils.setenv(**CHECK_ENV):
            nb, resources = executor.preprocess(nb, resources)
    finally:
        _ACTIVE_POOL = None
    tests = []
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if nbgrader_utils.is_grade(cell):
            score, max_points = nbgrader_utils.determine_grade(cell, _log)
            passed = score is not None and score >= max_points
            tests.append(
                TestResult(
                    grade_id=cell.metadata.nbgrader.grade_id,
                    points=float(score or 0.0),
                    max_points=float(max_points),
                    passed=passed,
                    message="" if passed else (_failure_message(cell) or "failed"),
                    description=_docstring_line(cell.source),
                )
            )
        else:
            if any(o.output_type == "error" for o in cell.get("outputs", [])):
                problems.append(_failure_message(cell))
    return CheckReport(path, tuple(tests), tuple(edited), tuple(problems), tuple(missing))


def _deleted_tests(course: Course, nb: Any) -> list[str]:
    """Return the grade ids of test cells of ``nb``'s exercise that ``nb`` lacks.

    The exercise is the solution notebook that shares a graded cell with ``nb``.
    """
    found = {c.metadata.nbgrader.grade_id for c in nb.cells if nbgrader_utils.is_grade(c)}
    for exercise in course.exercises():
        for path in sorted((course.solutions_dir / exercise).glob("*.ipynb")):
            source = nbformat.read(path, as_version=4)
            expected = [
                c.metadata.nbgrader.grade_id for c in source.cells if nbgrader_utils.is_grade(c)
            ]
            if found & set(expected):
                return [grade_id for grade_id in expected if grade_id not in found]
    return []
