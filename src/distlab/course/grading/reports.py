"""What grading and checking report: one result per test cell, per notebook.

``distlab grade`` prints a :class:`GradeReport`, ``distlab check`` a :class:`CheckReport`;
both are built from nbgrader's graded cells by the helpers at the bottom.
"""

from __future__ import annotations

import ast
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CheckReport", "GradeReport", "Integrity", "TestResult"]


@dataclass(frozen=True)
class Integrity:
    """How far a grade can be trusted: the sandbox, the limits hit, reasons to review.

    Attributes:
        sandboxed: the student's code ran in a sandbox.
        review: why a person should look at the submission (empty: nothing found);
            never changes the score.
        limits: the sandbox limits the submission hit (its later tests may have failed
            because of them).
    """

    sandboxed: bool = True
    review: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        """True when something was found."""
        return bool(self.review)

    def lines(self) -> list[str]:
        """Return the report lines: a warning, the limits hit, the reasons to review."""
        out = []
        if not self.sandboxed:
            out.append(
                "warning: graded without a sandbox (the code ran as the grader's user, "
                "with its files and environment)"
            )
        out += [f"limit hit: {limit}" for limit in self.limits]
        out += [f"needs review: {reason}" for reason in self.review]
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the ``integrity`` part of ``distlab grade --json``."""
        return {
            "sandboxed": self.sandboxed,
            "needs_review": self.needs_review,
            "review": list(self.review),
            "limits": list(self.limits),
        }


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
        integrity: the sandbox, limits hit and reasons to review (None: the notebook
            was not executed, e.g. nbgrader failed before it ran).
    """

    exercise: str
    notebook: str
    student: str
    score: float
    max_score: float
    tests: tuple[TestResult, ...] = field(default_factory=tuple)
    error: str = ""
    integrity: Integrity | None = None

    @property
    def needs_review(self) -> bool:
        """True when the integrity checks found something (the score stands)."""
        return self.integrity is not None and self.integrity.needs_review

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
            "integrity": (self.integrity or Integrity()).to_json(),
        }

    def lines(self) -> list[str]:
        """Return the human-readable report: one line per test, then the total."""
        out = []
        for t in self.tests:
            outcome = "passed" if t.passed else (t.message or "failed")
            out.append(f"{t.grade_id}  {_points(t.points)}/{_points(t.max_points)}  {outcome}")
        out.append(f"score: {_points(self.score)} / {_points(self.max_score)}")
        if self.integrity is not None:
            out += self.integrity.lines()
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


def _docstring_line(source: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _printable(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\u202e``).

    Messages come from student code: an escape sequence or a bidirectional override in
    one would otherwise redraw the report in the grader's terminal.
    """
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch != "\t"
        else ch
        for ch in text
    )


def _failure_message(cell: Any) -> str:
    """The one line a report shows for a test cell that failed ("" when it passed)."""
    return _printable(_raw_failure_message(cell))


def _raw_failure_message(cell: Any) -> str:
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
