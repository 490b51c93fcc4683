"""Autograde submissions through nbgrader's own ``Autograde`` and gradebook.

:class:`Grader` grades in this process, in a scratch course directory or in the course
itself, and reuses what can be reused: the prepared gradebook (cached between runs,
outside the course folder, checked against its hash) and kernels started ahead of time
(:class:`distlab.course.kernelpool.KernelPool`), each in a sandbox of its own
(:mod:`distlab.course.sandbox`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
from nbgrader import utils as nbgrader_utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from distlab.course.grading.course import (
    CONFIG_FILE,
    Course,
    _quiet_logs,
    _run_converter,
    check_notebook_size,
    read_notebook,
)
from distlab.course.grading.execute import kernels_from, pop_integrity
from distlab.course.grading.reports import (
    GradeReport,
    TestResult,
    _docstring_line,
    _failure_message,
)
from distlab.course.kernelpool import KernelPool
from distlab.course.sandbox import KernelSandbox, Sandbox, sandbox_default, sandbox_problem
from distlab.errors import GradingError, SandboxUnavailable

__all__ = [
    "AUTOGRADE_ENV",
    "DEFAULT_STUDENT",
    "Grader",
    "autograde_kernel_pool",
    "cache_dir",
    "submissions",
]

DEFAULT_STUDENT = "student"

_log = logging.getLogger("distlab.course.grading")


class Grader:
    """Autograde submissions with nbgrader's ``Autograde`` and gradebook, in this process.

    A grader prepares each exercise once (``generate_assignment`` records its cells in
    the gradebook), then grades any number of submissions. With ``pool=True`` kernels
    are started ahead of time, which hides kernel start-up behind the execution of the
    previous notebook. Use it as a context manager.

    By default everything happens in a scratch course directory, so grading a single
    file touches nothing of the course. With ``in_place=True`` the course's own
    submitted/autograded folders and gradebook are used, so ``nbgrader
    generate_feedback`` and ``nbgrader export`` can follow.

    Every kernel runs in a sandbox of its own, set up from the course's ``c.Sandbox``
    settings (the modules the exercise asks students to write are hidden there).

    Args:
        course: the course whose solutions and settings are used.
        pool: start kernels ahead of time: pass the number of notebooks that will be
            graded (an int), True when unknown, or a :class:`KernelPool` already
            started (see :func:`autograde_kernel_pool`); the grader closes it. An int or
            True starts the first kernel when an exercise is first prepared.
        in_place: grade in the course folder itself instead of a scratch copy.
        workdir: keep the scratch course here instead of in a temporary folder.
        sandbox: run student code in sandboxes (False: as this process's user, which
            every report then says; None: yes, unless ``$DISTLAB_UNSANDBOXED`` is 1).
        worker: this grader's number among graders running at once (its sandboxes
            run as user ``c.Sandbox.first_uid + worker``).

    Raises:
        SandboxUnavailable: with ``sandbox=True`` on a machine that cannot make sandboxes.
    """

    def __init__(
        self,
        course: Course,
        *,
        pool: bool | int | KernelPool = False,
        in_place: bool = False,
        workdir: Path | None = None,
        sandbox: bool | None = None,
        worker: int = 1,
    ) -> None:
        if sandbox is None:
            sandbox = sandbox_default()
        if sandbox:
            problem = sandbox_problem()
            if problem is not None:
                if isinstance(pool, KernelPool):
                    pool.close()
                raise SandboxUnavailable(
                    f"cannot grade in a sandbox: {problem}; to grade anyway, trusting the "
                    "code with your files and environment: --unsandboxed"
                )
        if worker < 1:
            raise ValueError(f"worker must be >= 1, got {worker!r}")
        self.course = course
        self.in_place = in_place
        self.sandboxed = sandbox
        self.worker = worker
        self.settings = Sandbox(config=Config(course.config))
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
        self._pool: KernelPool | None = None  # given: serves every exercise
        self._pools: dict[str, KernelPool] = {}  # started here: one per exercise
        self.prefetch = True  # let a pool start a kernel for the next notebook
        self._pool_wanted = False  # start pools here, one per exercise
        self._pool_limit: int | None = None
        _quiet_logs()
        if isinstance(pool, KernelPool):
            self._pool = pool
        elif pool:
            self._pool_wanted = True
            self._pool_limit = None if pool is True else int(pool)

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut down pooled kernels and remove the scratch folder."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        for started in self._pools.values():
            started.close()
        self._pools.clear()
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

    def close_pools(self, keep: str | None = None) -> None:
        """Shut down the kernels started ahead for every exercise but ``keep``."""
        for exercise in [e for e in self._pools if e != keep]:
            self._pools.pop(exercise).close()

    def sandbox_factory(self, exercise: str) -> Callable[[], KernelSandbox]:
        """Return what makes one sandbox for a kernel that grades ``exercise``."""
        settings = self.settings
        worker = self.worker

        def make() -> KernelSandbox:
            return settings.make(exercise, worker=worker, env=AUTOGRADE_ENV)

        return make

    def _pool_for(self, exercise: str) -> KernelPool | None:
        if self._pool is not None:
            return self._pool
        if not self._pool_wanted:
            return None
        if exercise not in self._pools:
            factory = self.sandbox_factory(exercise) if self.sandboxed else None
            self._pools[exercise] = autograde_kernel_pool(self._pool_limit, sandbox=factory)
        return self._pools[exercise]

    def prepare(self, exercise: str) -> None:
        """Record ``exercise``'s solution notebooks in the gradebook (once per grader).

        With a pool of kernels, the first kernel for ``exercise`` starts first, so it
        boots while the exercise is prepared.
        """
        if exercise in self._prepared:
            return
        self.course.notebooks(exercise)  # raises GradingError for an unknown exercise
        self._pool_for(exercise)
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
        verified = _verified_cache(cached) if cached is not None else None
        if verified is not None and not gradebook.exists():
            shutil.copyfile(verified, gradebook)
            self._prepared.add(exercise)
            return
        coursedir = self.coursedir(exercise)
        converter = GenerateAssignment(coursedir=coursedir, config=coursedir.config, log=_log)
        converter.force = True
        _run_converter(converter)
        if cached is not None and not self._prepared:
            # Only a gradebook that holds this one exercise and nothing else is reusable.
            _store_cache(gradebook, cached)
        self._prepared.add(exercise)

    def _cached_gradebook(self, exercise: str) -> Path:
        """Where a gradebook prepared for ``exercise`` alone is kept between runs.

        Preparing an exercise (generate_assignment into a new gradebook) costs seconds,
        the same seconds every time. The copy is keyed by everything it depends on: the
        solution files, the course configuration (``generate_assignment``'s settings
        shape the recorded cells) and the nbgrader version. It lives outside the course
        folder (``$XDG_CACHE_HOME/distlab/gradebooks``), and the name of the file holding
        it also carries the hash of its content, checked before every use.
        """
        import nbgrader

        digest = hashlib.sha256()
        digest.update(f"{nbgrader.__version__}\0{self.course.course_id}\0".encode())
        digest.update((self.course.root / CONFIG_FILE).read_bytes())
        for path in sorted((self.course.solutions_dir / exercise).rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                digest.update(path.relative_to(self.course.solutions_dir).as_posix().encode())
                digest.update(path.read_bytes())
        return cache_dir() / f"{exercise}-{digest.hexdigest()[:16]}"

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
            GradingError: unknown exercise, a notebook too large to grade; with
                ``folder``, a student id that is not a plain name, or (in place) a
                submission already collected for ``student``.
        """
        names = self.course.notebooks(exercise)
        source = Path(folder) if folder is not None else None
        for path in sorted(
            (source or self._path("submitted_directory", student, exercise)).glob("*.ipynb")
        ):
            check_notebook_size(path)
        self.prepare(exercise)
        dest = self._path("submitted_directory", student, exercise)
        if folder is not None and Path(folder).resolve() != dest.resolve():
            dest = self._submission_folder(student, exercise)
            shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        return self._autograde(exercise, student, names)

    def _autograde(self, exercise: str, student: str, notebook_ids: list[str]) -> list[GradeReport]:
        coursedir = self.coursedir(exercise, student)
        converter = Autograde(coursedir=coursedir, config=coursedir.config, log=_log)
        converter.force = True
        converter.create_student = True
        error = ""
        try:
            pool = self._pool_for(exercise)
            with kernels_from(pool, sandboxed=self.sandboxed, prefetch=self.prefetch):
                _run_converter(converter)
        except GradingError as exc:
            error = str(exc)
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
            integrity=pop_integrity(student, exercise, notebook_id),
        )


# What nbgrader tells the kernels it autogrades with.
AUTOGRADE_ENV = {"NBGRADER_EXECUTION": "autograde"}


def autograde_kernel_pool(
    limit: int | None = None, *, sandbox: Callable[[], KernelSandbox] | None = None
) -> KernelPool:
    """Start a :class:`KernelPool` of kernels set up like nbgrader's autograde kernels.

    Args:
        limit: how many notebooks it will serve (None: unknown).
        sandbox: makes the sandbox of each kernel (see :meth:`Grader.sandbox_factory`);
            None: unsandboxed kernels.
    """
    return KernelPool(1, env=AUTOGRADE_ENV, limit=limit, sandbox=sandbox)


def cache_dir() -> Path:
    """The folder of distlab's caches: ``$XDG_CACHE_HOME/distlab`` (``~/.cache/distlab``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "distlab" / "gradebooks"


def _content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _verified_cache(key: Path) -> Path | None:
    """Return a cached gradebook for ``key`` whose content matches its hash, if any.

    A copy whose content no longer matches the hash in its name (changed after it was
    written, by accident or on purpose) is never used, and is removed.
    """
    for candidate in sorted(key.parent.glob(f"{key.name}-*.db")):
        expected = candidate.stem.rsplit("-", 1)[-1]
        try:
            ok = _content_hash(candidate) == expected
        except OSError:
            continue
        if ok:
            return candidate
        _log.warning("ignoring %s: its content does not match its hash", candidate)
        with contextlib.suppress(OSError):
            candidate.unlink()
    return None


def _store_cache(gradebook: Path, key: Path) -> None:
    """Keep a copy of ``gradebook`` for ``key``, named with its content hash.

    Written under a unique name, then renamed: a concurrent `distlab grade` reads
    either no copy or a complete one; a failed copy leaves nothing behind.
    """
    with contextlib.suppress(OSError):
        key.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=key.parent, suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(gradebook, partial)
            os.replace(partial, key.parent / f"{key.name}-{_content_hash(Path(partial))}.db")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


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
