"""The ``distlab`` command: release, check and grade the course's exercises.

Usage::

    distlab release [EXERCISE ...]          regenerate exercises/ from solutions/
    distlab check NOTEBOOK                  run the visible tests, say what to fix
    distlab grade EXERCISE NOTEBOOK [--json]
                                            autograde one submitted notebook
    distlab student-edition DIR             the course without its answers, for students
    distlab grade-all [--exercise NAME] [--workers N]
                                            autograde _grading/submitted/*/*/ in parallel

Exit status: 0 when the command did its job (``grade`` exits 0 whatever the score;
``check`` exits 1 when a visible test fails; ``grade-all`` exits 1 when a submission
could not be graded, after grading all the others), 2 for a usage problem (unknown
exercise, missing file, not a notebook), with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distlab.errors import GradingError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distlab", description="Release, check and grade the distlab exercises."
    )
    parser.add_argument(
        "--course",
        type=Path,
        default=None,
        help="course folder (default: the nearest folder upwards with nbgrader_config.py)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    rel = sub.add_parser("release", help="regenerate exercises/ from solutions/ (nbgrader)")
    rel.add_argument("exercises", nargs="*", help="exercise names (default: all)")

    chk = sub.add_parser("check", help="run the visible tests of a notebook and say what to fix")
    chk.add_argument("notebook", type=Path)

    grd = sub.add_parser("grade", help="autograde one submitted notebook with nbgrader")
    grd.add_argument("exercise")
    grd.add_argument("notebook", type=Path)
    grd.add_argument("--json", action="store_true", help="print the result as JSON")
    grd.add_argument("--student", default="student", help="student id in the scratch gradebook")
    grd.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run the student's code as your own user, with your files and environment "
        "(only where no sandbox can be made, and only for code you trust)",
    )

    edition = sub.add_parser(
        "student-edition", help="write the course for students: no solutions, no hidden tests"
    )
    edition.add_argument("dest", type=Path, help="a new folder (outside the course)")

    gall = sub.add_parser("grade-all", help="autograde every submission in _grading/submitted/")
    gall.add_argument("--exercise", default=None, help="grade only this exercise")
    gall.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    gall.add_argument(
        "--workers",
        type=int,
        default=None,
        help="submissions graded at once, each worker in sandboxes of its own "
        "(default: one per core)",
    )
    gall.add_argument(
        "--unsandboxed",
        action="store_true",
        help="run the students' code as your own user, with your files and environment",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``distlab`` command line and return its exit status."""
    args = _parser().parse_args(argv)
    # jsonschema (imported by nbformat) imports rfc3987_syntax when it is installed, and
    # that module compiles a grammar at import time: 1-3 s of every start, for an IRI
    # format check that notebooks never use. jsonschema imports it inside
    # `suppress(ImportError)` and skips the check without it; a None entry in
    # sys.modules makes that import fail. Only while this command runs: a caller that
    # runs main() in its own process (the tests) gets sys.modules back as it was.
    blocked = "rfc3987_syntax" not in sys.modules
    if blocked:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        if args.command == "release":
            return _release(args)
        if args.command == "check":
            return _check(args)
        if args.command == "grade":
            return _grade(args)
        if args.command == "student-edition":
            return _student_edition(args)
        return _grade_all(args)
    except GradingError as exc:
        print(f"distlab {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if blocked and sys.modules.get("rfc3987_syntax", False) is None:
            del sys.modules["rfc3987_syntax"]


def _release(args: argparse.Namespace) -> int:
    from distlab.course.grading import Course, release

    course = Course(args.course)
    for path in release(course, args.exercises or None):
        print(f"wrote {path.relative_to(course.root)}")
    return EXIT_OK


def _student_edition(args: argparse.Namespace) -> int:
    from distlab.course.grading import Course, student_edition

    course = Course(args.course)
    written = student_edition(course, args.dest)
    print(f"wrote the student edition ({len(written)} files) to {args.dest}")
    print("no solutions/, hidden tests, gradebook, grading config, tests or git history in it")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():  # before anything slow starts
        raise GradingError(f"no such file: {args.notebook}")
    from distlab.course.kernelpool import KernelPool

    # The kernel boots while nbgrader is imported.
    env = {"NBGRADER_EXECUTION": "validate", "NBGRADER_VALIDATING": "1"}
    with contextlib.closing(KernelPool(1, env=env, limit=1)) as pool:
        from distlab.course.grading import Course, check_notebook, find_course_root, read_notebook

        read_notebook(args.notebook)
        try:
            course: Course | None = Course(args.course or find_course_root(args.notebook.parent))
        except GradingError:
            course = None  # checking works without a course: default settings
        report = check_notebook(args.notebook, course, pool)
    print("\n".join(report.lines()))
    return EXIT_OK if report.passed else EXIT_FAILED


def _grade(args: argparse.Namespace) -> int:
    if not args.notebook.is_file():  # before anything slow starts
        raise GradingError(f"no such file: {args.notebook}")
    from distlab.course.grading import Course, Grader, read_notebook

    course = Course(args.course)
    course.notebooks(args.exercise)  # unknown exercise: exit 2 before any work
    read_notebook(args.notebook)
    # One kernel, started (in its sandbox) when the exercise is prepared.
    with Grader(course, pool=1, sandbox=False if args.unsandboxed else None) as grader:
        report = grader.grade(args.exercise, args.notebook, student=args.student)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK


def _grade_all(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from distlab.course.grading import Course, grade_all, submissions

    course = Course(args.course)
    if args.exercise is not None:
        course.notebooks(args.exercise)
    jobs = [job for job in submissions(course) if args.exercise in (None, job[1])]
    if not jobs:
        print(f"nothing to grade in {course.submitted_dir}")
        return EXIT_OK
    bar: Any = None

    def progress(graded: Any) -> None:
        nonlocal bar
        if bar is None:  # created once the workers run: no thread before they fork
            bar = tqdm(
                total=len(jobs),
                desc="grading",
                unit="submission",
                disable=args.no_progress,
                file=sys.stderr,
            )
        bar.update(1)

    try:
        results = grade_all(
            course,
            jobs,
            workers=args.workers,
            sandbox=False if args.unsandboxed else None,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    lines: list[str] = []
    not_graded = 0
    for graded in results:
        if not graded.reports:
            not_graded += 1
            lines.append(f"{graded.student}  {graded.exercise}  not graded: {graded.error}")
            continue
        line = f"{graded.student}  {graded.exercise}  {graded.score:g} / {graded.max_score:g}"
        errors = [r.error for r in graded.reports if r.error]
        if errors:
            not_graded += 1
            line += f"  (not graded: {errors[0]})"
        if graded.limits:
            line += f"  (limit hit: {'; '.join(graded.limits)})"
        if graded.review:
            line += "  NEEDS REVIEW"
        lines.append(line)
    print("\n".join(lines))
    graded_count = len(jobs) - not_graded
    print(f"graded {graded_count} submissions; gradebook: {course.coursedir().db_url}")
    if not all(r.integrity is None or r.integrity.sandboxed for g in results for r in g.reports):
        print("warning: graded without a sandbox: the code ran as your user, with your files")
    flagged = [g for g in results if g.review]
    if flagged:
        print(f"{len(flagged)} need review (the score stands; flagged in the gradebook):")
        for graded in flagged:
            print(f"  {graded.student}  {graded.exercise}:")
            print("\n".join(f"    - {reason}" for reason in graded.review))
    if not_graded:
        print(f"{not_graded} not graded (see above)", file=sys.stderr)
    return EXIT_FAILED if not_graded else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
