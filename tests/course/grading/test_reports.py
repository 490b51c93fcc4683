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


def test_a_failure_message_cannot_drive_the_instructors_terminal() -> None:
    """Student code chooses its exceptions' messages: control characters are shown escaped.

    An escape sequence in a message (cursor up, erase line, colours) or a right-to-left
    override would otherwise redraw the report in the grader's terminal, e.g. as a pass.
    """
    import nbformat

    from distlab.course.grading.reports import _failure_message

    cell = nbformat.v4.new_code_cell("assert ok")
    evalue = "\x1b[1A\x1b[2K\x1b[32mpassed\x1b[0m \u202eliaf\x07"
    cell.outputs = [
        nbformat.v4.new_output("error", ename="Runtime\x1bError", evalue=evalue, traceback=[])
    ]
    message = _failure_message(cell)
    assert message == (
        "Runtime\\x1bError: \\x1b[1A\\x1b[2K\\x1b[32mpassed\\x1b[0m \\u202eliaf\\x07"
    )
