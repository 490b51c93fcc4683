"""The reports grading and checking print."""

from __future__ import annotations

import sys
from pathlib import Path

from distlab.course.grading import CheckReport
from tests import REPO

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


def test_a_check_without_tests_has_not_passed() -> None:
    """A report with no test cells never reads as "all visible tests pass"."""
    report = CheckReport(Path("lesson.ipynb"), ())
    assert not report.passed
    assert "All visible tests pass" not in "\n".join(report.lines())
