"""Benchmark autograding: distlab's batches, with and without sandboxes, against nbgrader.

Run it with ``.venv/bin/python benchmarks/bench_grading.py`` (or ``make bench``). It
grades the same batch of honest circuit breaker submissions, side by side in one run:

- ``distlab, 1 worker, unsandboxed``: what ``distlab grade-all`` did before the sandbox
  (one process, kernels started ahead, as this user);
- ``distlab, 1 worker, sandboxed``: the same with every kernel in its sandbox. The
  difference per submission is what the sandbox costs (goal: at most 0.3 s);
- ``distlab, N workers, sandboxed``: ``distlab grade-all`` as it runs now, one worker
  per core (goal: the batch in at most half the nbgrader command's time);
- ``nbgrader``: ``nbgrader autograde circuit_breaker`` over the same batch (the course's
  config, so its kernels are sandboxed too), then one ``nbgrader autograde --student``;
- ``distlab grade``: one call of the command for a single submission (goal: <= 10 s).

Every side uses the course's ``nbgrader_config.py``, each in its own scratch copy of
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

from distlab.course.grading import Course, default_workers, grade_all, submissions

REPO = Path(__file__).resolve().parent.parent
EXERCISE = "circuit_breaker"
SUBMISSIONS = int(os.environ.get("DISTLAB_BENCH_SUBMISSIONS", "30"))
GOAL_SANDBOX_COST = 0.3  # seconds per submission, sandboxed minus unsandboxed
GOAL_BATCH_RATIO = 0.5  # distlab grade-all / nbgrader autograde, same batch
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


def bench_distlab_batch(root: Path, *, workers: int, sandbox: bool) -> dict[str, float]:
    """Grade every submission under ``root`` into the course, as ``distlab grade-all``."""
    course = Course(root)
    jobs = list(submissions(course))
    started = time.monotonic()
    results = grade_all(course, jobs, workers=workers, sandbox=sandbox)
    total = time.monotonic() - started
    scores = [g.score for g in results]
    # A benchmark of wrong grades is void: every honest submission gets full marks.
    assert results and all(g.max_score > 0 and g.score == g.max_score for g in results), scores
    return {"workers": workers, "total_s": total, "per_submission_s": total / len(jobs)}


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
    workers = default_workers()
    with tempfile.TemporaryDirectory(prefix="distlab-bench-grading-") as tmp:
        base = Path(tmp)
        plain = bench_distlab_batch(
            _scratch_course(base / "plain", SUBMISSIONS), workers=1, sandbox=False
        )
        boxed = bench_distlab_batch(
            _scratch_course(base / "boxed", SUBMISSIONS), workers=1, sandbox=True
        )
        parallel = bench_distlab_batch(
            _scratch_course(base / "parallel", SUBMISSIONS), workers=workers, sandbox=True
        )
        theirs = bench_nbgrader_cli(_scratch_course(base / "nbgrader", SUBMISSIONS))
        single = bench_distlab_grade_command(base / "boxed")
    cost = boxed["per_submission_s"] - plain["per_submission_s"]
    ratio = parallel["total_s"] / theirs["batch_total_s"]
    figures: dict[str, Any] = {
        "submissions": SUBMISSIONS,
        "distlab_1_worker_unsandboxed": plain,
        "distlab_1_worker_sandboxed": boxed,
        "distlab_grade_all": parallel,
        "nbgrader_cli": theirs,
        "distlab_grade_command_s": single,
        "sandbox_cost_per_submission_s": cost,
        "grade_all_over_nbgrader": ratio,
    }
    print(f"batch of {SUBMISSIONS} honest submissions, same config, same machine, same run")
    print(
        f"  distlab, 1 worker, unsandboxed:  {plain['per_submission_s']:5.2f} s per submission"
        f" (batch {plain['total_s']:.0f} s, preparation included)"
    )
    print(
        f"  distlab, 1 worker, sandboxed:    {boxed['per_submission_s']:5.2f} s per submission"
        f" (batch {boxed['total_s']:.0f} s)"
    )
    print(f"  sandbox cost: {cost:+.2f} s per submission (goal <= {GOAL_SANDBOX_COST:g} s)")
    print(
        f"  distlab grade-all, {workers} workers: {parallel['per_submission_s']:5.2f} s per "
        f"submission (batch {parallel['total_s']:.0f} s)"
    )
    print(
        f"  nbgrader autograde CLI:          {theirs['per_submission_s']:5.2f} s per submission"
        f" (batch {theirs['batch_total_s']:.0f} s, after generate_assignment "
        f"{theirs['generate_assignment_s']:.1f} s)"
    )
    print(f"  grade-all / nbgrader: {ratio:.2f} of the time (goal <= {GOAL_BATCH_RATIO:g})")
    print("one submission")
    print(f"  distlab grade:            {single:5.2f} s (goal <= {GOAL_SINGLE:g} s)")
    print(f"  nbgrader autograde:       {theirs['single_submission_s']:5.2f} s")
    return figures


if __name__ == "__main__":
    main()
