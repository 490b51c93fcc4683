"""Grade a class in parallel: worker processes, one sandbox per worker, one gradebook writer.

:func:`grade_all` is ``distlab grade-all``. Each worker process grades submissions with
a :class:`~distlab.course.grading.Grader` of its own, in a scratch course (a scratch
gradebook, so the integrity check "did the gradebook change while the student's code
ran?" sees that one submission only), its kernels in sandboxes that run as the
worker's own user. This process prepares the course gradebook, hands out the
submissions and, as each one comes back (its kernel gone), writes it into the course:
the autograded notebooks into ``autograded/``, the grades into the gradebook through
nbgrader's own ``SaveAutoGrades`` and ``AssignLatePenalties``, exactly as
``nbgrader autograde`` would, so ``generate_feedback`` and ``export`` follow as usual.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades

from distlab.course.grading.course import Course
from distlab.course.grading.grader import Grader, _log
from distlab.course.grading.reports import GradeReport
from distlab.course.sandbox import sandbox_default

__all__ = ["Graded", "default_workers", "grade_all"]


@dataclass(frozen=True)
class Graded:
    """The outcome of one submission in a batch.

    Attributes:
        student: the student id.
        exercise: the exercise.
        reports: one per notebook (empty when it could not be graded at all).
        error: why it could not be graded at all (empty when it was).
    """

    student: str
    exercise: str
    reports: tuple[GradeReport, ...] = ()
    error: str = ""

    @property
    def score(self) -> float:
        """Points awarded over the submission's notebooks."""
        return sum(r.score for r in self.reports)

    @property
    def max_score(self) -> float:
        """Points available over the submission's notebooks."""
        return sum(r.max_score for r in self.reports)

    @property
    def review(self) -> list[str]:
        """Reasons to review, over the submission's notebooks."""
        return [reason for r in self.reports if r.integrity for reason in r.integrity.review]

    @property
    def limits(self) -> list[str]:
        """Limits hit, over the submission's notebooks."""
        return [limit for r in self.reports if r.integrity for limit in r.integrity.limits]


def default_workers() -> int:
    """As many workers as this process may use cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def grade_all(
    course: Course,
    jobs: Sequence[tuple[str, str, Path]],
    *,
    workers: int | None = None,
    sandbox: bool | None = None,
    progress: Callable[[Graded], None] | None = None,
) -> list[Graded]:
    """Autograde ``jobs`` (``(student, exercise, submitted folder)``) into the course.

    Args:
        course: the course; its gradebook and ``autograded/`` receive the grades.
        jobs: the submissions, as :func:`~distlab.course.grading.submissions` yields them.
        workers: processes grading at once (default: :func:`default_workers`).
        sandbox: run student code in sandboxes (False: as this user, reports warn;
            None: yes, unless ``$DISTLAB_UNSANDBOXED`` is 1).
        progress: called with each :class:`Graded` as it is recorded.

    Returns:
        One :class:`Graded` per job, in the order of ``jobs``.

    Raises:
        SandboxUnavailable: with ``sandbox=True`` where no sandbox can be made.
        GradingError: an exercise that cannot be prepared.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    count = min(workers or default_workers(), max(1, len(jobs)))
    if sandbox is None:
        sandbox = sandbox_default()
    results: list[Graded | None] = [None] * len(jobs)
    with (
        Grader(course, in_place=True, sandbox=sandbox) as recorder,
        tempfile.TemporaryDirectory(prefix="distlab-grade-all-") as tmp,
    ):
        for exercise in sorted({exercise for _, exercise, _ in jobs}):
            recorder.prepare(exercise)  # the course gradebook knows the exercise
            # ...and the prepared scratch gradebook is cached before the workers need it.
            with Grader(course, sandbox=sandbox, workdir=Path(tmp) / "warm") as warm:
                warm.prepare(exercise)
        # Handed out exercise by exercise: a worker's kernels started ahead are for the
        # exercise it grades next.
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i][1], i))
        done = _run_workers([(i, jobs[i]) for i in order], count, sandbox, course, Path(tmp))
        for index, outcome in done:
            graded = _record(recorder, jobs[index], outcome)
            results[index] = graded
            if progress is not None:
                progress(graded)
    return [
        r if r is not None else Graded(jobs[i][0], jobs[i][1], error="the grading workers stopped")
        for i, r in enumerate(results)
    ]


# --- the workers --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    reports: tuple[GradeReport, ...]
    autograded: str  # the worker's autograded folder for the submission
    error: str


def _grade_one(grader: Grader, job: tuple[str, str, Path]) -> _Outcome:
    student, exercise, folder = job
    try:
        reports = grader.grade_submission(student, exercise, folder)
    except Exception as exc:  # one submission must never stop the grading of the rest
        return _Outcome((), "", f"{type(exc).__name__}: {exc}")
    autograded = grader._path("autograded_directory", student, exercise)
    return _Outcome(tuple(reports), str(autograded), "")


def _worker(
    number: int,
    course_root: str,
    sandbox: bool,
    workdir: str,
    jobs: Any,
    results: Any,
) -> None:
    """Grade jobs from ``jobs`` until a None arrives; put ``(index, outcome)`` on ``results``."""
    try:
        course = Course(course_root)
        with Grader(
            course, pool=True, sandbox=sandbox, worker=number, workdir=Path(workdir)
        ) as grader:
            while True:
                item = jobs.get()
                if item is None:
                    return
                index, job = item
                results.put(("start", number, index))
                grader.close_pools(keep=job[1])  # kernels started for another exercise
                # No kernel started ahead for a next submission that will not come.
                grader.prefetch = not jobs.empty()
                results.put(("done", number, (index, _grade_one(grader, job))))
    except BaseException as exc:
        results.put(("crash", number, "".join(traceback.format_exception_only(exc)).strip()))
        raise


def _run_workers(
    jobs: Sequence[tuple[int, tuple[str, str, Path]]],
    count: int,
    sandbox: bool,
    course: Course,
    tmp: Path,
) -> Any:
    """Yield ``(index, outcome)`` as the workers finish submissions."""
    if count == 1:
        # One worker: in this process (nothing to gain from another one).
        with Grader(course, pool=True, sandbox=sandbox, workdir=tmp / "w1") as grader:
            for position, (index, job) in enumerate(jobs):
                grader.close_pools(keep=job[1])
                grader.prefetch = position + 1 < len(jobs)
                yield index, _grade_one(grader, job)
        return
    # Forked before this process starts any thread (kernel pools, progress bars):
    # each worker inherits the loaded nbgrader and starts its own.
    context: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    todo: Any = context.Queue()
    done: Any = context.Queue()
    for item in jobs:
        todo.put(item)
    processes = []
    for number in range(1, count + 1):
        todo.put(None)
        process = context.Process(
            target=_worker,
            args=(number, str(course.root), sandbox, str(tmp / f"w{number}"), todo, done),
            name=f"distlab-grade-worker-{number}",
            daemon=True,
        )
        process.start()
        processes.append(process)
    running: dict[int, int] = {}  # worker -> index of the job it grades
    pending = {index for index, _ in jobs}
    died = _Outcome((), "", "the grading worker died")
    try:
        while pending:
            try:
                kind, number, payload = done.get(timeout=1.0)
            except queue.Empty:
                for number, process in enumerate(processes, start=1):
                    if not process.is_alive() and running.get(number) in pending:
                        index = running.pop(number)
                        pending.discard(index)
                        yield index, died
                if not any(p.is_alive() for p in processes):
                    # A worker that died before its "start" message got out took a job
                    # with it: whatever is left was lost with a worker.
                    for index in sorted(pending):
                        yield index, died
                    pending.clear()
                continue
            if kind == "start":
                running[number] = payload
            elif kind == "done":
                running.pop(number, None)
                pending.discard(payload[0])
                yield payload
            else:  # a worker could not start or crashed between jobs
                _log.error("grading worker %s stopped: %s", number, payload)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


# --- recording a submission in the course -----------------------------------------------------
def _record(recorder: Grader, job: tuple[str, str, Path], outcome: _Outcome) -> Graded:
    """Write a worker's result into the course: autograded folder, then the gradebook."""
    student, exercise, folder = job
    if outcome.error and not outcome.reports:
        return Graded(student, exercise, (), outcome.error)
    coursedir = recorder.coursedir(exercise, student)
    dest = Path(coursedir.format_path(coursedir.autograded_directory, student, exercise))
    source = Path(outcome.autograded)
    if dest.exists():
        shutil.rmtree(dest)
    if source.is_dir():
        shutil.copytree(source, dest)
    db_url = recorder.db_url
    names = recorder.course.notebooks(exercise)
    timestamp = coursedir.get_existing_timestamp(str(folder))
    with Gradebook(db_url, recorder.course.course_id) as gb:
        gb.update_or_create_student(student)
        if timestamp:
            gb.update_or_create_submission(exercise, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(exercise, student)
        for notebook in names:
            if not (folder / f"{notebook}.ipynb").exists():
                # What nbgrader's autograde does for a notebook not handed in.
                with contextlib.suppress(MissingEntry):
                    submitted = gb.find_submission_notebook(notebook, exercise, student)
                    for grade in submitted.grades:
                        grade.auto_score = 0
                        grade.needs_manual_grade = False
                    gb.db.commit()
    config = recorder.course.config
    by_notebook = {r.notebook: r for r in outcome.reports}
    reports = []
    for notebook in names:
        path = dest / f"{notebook}.ipynb"
        worker_report = by_notebook.get(notebook)
        if path.is_file():
            nb = nbformat.read(path, as_version=4)
            resources = {
                "nbgrader": {
                    "student": student,
                    "assignment": exercise,
                    "notebook": notebook,
                    "db_url": db_url,
                }
            }
            SaveAutoGrades(config=config, log=_log).preprocess(nb, resources)
            AssignLatePenalties(config=config, log=_log).preprocess(nb, resources)
        error = worker_report.error if worker_report else ""
        report = recorder._report(exercise, student, notebook, path, error)
        if worker_report is not None:
            report = dataclasses.replace(report, integrity=worker_report.integrity)
            if report.needs_review:
                _flag(db_url, recorder.course.course_id, notebook, exercise, student)
        reports.append(report)
    return Graded(student, exercise, tuple(reports), outcome.error)


def _flag(db_url: str, course_id: str, notebook: str, exercise: str, student: str) -> None:
    """Flag a notebook for review in the gradebook (the formgrader shows the flag)."""
    with contextlib.suppress(MissingEntry), Gradebook(db_url, course_id) as gb:
        gb.find_submission_notebook(notebook, exercise, student).flagged = True
        gb.db.commit()
