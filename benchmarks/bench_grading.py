"""Benchmark autograding: distlab's in-process batch against the nbgrader command line.

Run it with ``.venv/bin/python benchmarks/bench_grading.py`` (or ``make bench``). It
grades the same batch of honest circuit breaker submissions, side by side in one run:

- ``distlab``: one :class:`distlab.course.grading.Grader` in this process (nbgrader's Autograde
  and gradebook through its Python API, kernels started ahead of time), as
  ``distlab grade-all`` does. Goal: at most 3 s per submission after start-up.
- ``nbgrader``: ``nbgrader autograde circuit_breaker`` over the same batch, then one
  ``nbgrader autograde --student`` call for a single submission.
- ``distlab grade``: one call of the command for a single submission (goal: <= 10 s).

Both sides use the course's ``nbgrader_config.py``, each in its own scratch copy of
the course. Figures are printed, not asserted: the machine is shared and noisy.
Set ``DISTLAB_BENCH_SUBMISSIONS`` to grade a smaller batch (default 30).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from distlab.course.grading import Course, Grader

REPO = Path(__file__).resolve().parent.parent
EXERCISE = "circuit_breaker"
SUBMISSIONS = int(os.environ.get("DISTLAB_BENCH_SUBMISSIONS", "30"))
GOAL_PER_SUBMISSION = 3.0  # seconds, after start-up
GOAL_SINGLE = 10.0  # seconds for one `distlab grade`


def _honest_submission() -> Any:
    """The released notebook with the reference answers typed in."""
    released = nbformat.read(REPO / "exercises" / EXERCISE / f"{EXERCISE}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / EXERCISE / f"{EXERCISE}.ipynb", as_version=4)
    answers = {
        c.metadata.nbgrader.grade_id: c.source
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in released.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            lines = answers[grade_id].splitlines()
            cell.source = "\n".join(line for line in lines if "### " not in line)
    return released


def _scratch_course(root: Path, students: int) -> Path:
    """Copy the course's config and solutions, and fill the submitted folder."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    notebook = _honest_submission()
    for i in range(students):
        folder = root / "_grading" / "submitted" / f"s{i:02d}" / EXERCISE
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{EXERCISE}.ipynb")
    return root


def _env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def _run(args: list[str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run(args, cwd=cwd, env=_env(), check=True, capture_output=True, timeout=3600)
    return time.monotonic() - started


def bench_distlab_batch(root: Path) -> dict[str, float]:
    """Grade every submission under ``root`` with one in-process Grader."""
    started = time.monotonic()
    course = Course(root)
    jobs = [(s.name, s / EXERCISE) for s in sorted((root / "_grading" / "submitted").iterdir())]
    with Grader(course, pool=len(jobs), in_place=True) as grader:
        grader.prepare(EXERCISE)
        ready = time.monotonic()
        scores = [
            sum(r.score for r in grader.grade_submission(student, EXERCISE)) for student, _ in jobs
        ]
        done = time.monotonic()
    assert all(score == 26 for score in scores), scores  # a benchmark of wrong grades is void
    return {
        "startup_s": ready - started,
        "total_s": done - started,
        "per_submission_s": (done - ready) / len(jobs),
    }


def bench_nbgrader_cli(root: Path) -> dict[str, float]:
    """Grade every submission under ``root`` with the nbgrader command, then one alone."""
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    generate = _run([nbgrader, "generate_assignment", EXERCISE, "--force"], root)
    batch = _run([nbgrader, "autograde", EXERCISE, "--force"], root)
    single = _run([nbgrader, "autograde", EXERCISE, "--student", "s00", "--force"], root)
    students = len(list((root / "_grading" / "submitted").iterdir()))
    return {
        "generate_assignment_s": generate,
        "batch_total_s": batch,
        "per_submission_s": batch / students,
        "single_submission_s": single,
    }


def bench_distlab_grade_command(root: Path) -> float:
    """One `distlab grade` call for one submitted notebook."""
    distlab = str(Path(sys.executable).parent / "distlab")
    notebook = root / "_grading" / "submitted" / "s00" / EXERCISE / f"{EXERCISE}.ipynb"
    return _run([distlab, "--course", str(root), "grade", EXERCISE, str(notebook)], root)


def main() -> dict[str, Any]:
    """Run the benchmark, print the figures side by side and return them."""
    with tempfile.TemporaryDirectory(prefix="distlab-bench-grading-") as tmp:
        ours = bench_distlab_batch(_scratch_course(Path(tmp) / "distlab", SUBMISSIONS))
        theirs = bench_nbgrader_cli(_scratch_course(Path(tmp) / "nbgrader", SUBMISSIONS))
        single = bench_distlab_grade_command(Path(tmp) / "distlab")
    figures: dict[str, Any] = {
        "submissions": SUBMISSIONS,
        "distlab_batch": ours,
        "nbgrader_cli": theirs,
        "distlab_grade_command_s": single,
        "speedup_per_submission": theirs["per_submission_s"] / ours["per_submission_s"],
    }
    print(f"batch of {SUBMISSIONS} honest submissions, same config, same machine, same run")
    print(
        f"  distlab (one process):   {ours['per_submission_s']:5.2f} s per submission "
        f"after {ours['startup_s']:.1f} s start-up (goal <= {GOAL_PER_SUBMISSION:g} s)"
    )
    print(
        f"  nbgrader autograde CLI:  {theirs['per_submission_s']:5.2f} s per submission "
        f"(batch {theirs['batch_total_s']:.0f} s, after generate_assignment "
        f"{theirs['generate_assignment_s']:.1f} s)"
    )
    print(f"  ratio nbgrader / distlab: {figures['speedup_per_submission']:.2f}x")
    print("one submission")
    print(f"  distlab grade:            {single:5.2f} s (goal <= {GOAL_SINGLE:g} s)")
    print(f"  nbgrader autograde:       {theirs['single_submission_s']:5.2f} s")
    return figures


if __name__ == "__main__":
    main()
