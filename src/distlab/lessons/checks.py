"""Checkers for the lessons' "Your turn" cells: say what is right or what is wrong, never raise.

A "Your turn" cell asks the student to write a few lines: a function with a stub body.
The last line of the cell hands that function to a checker from the lesson's module::

    def send_with_retries(send, max_tries):
        # Your turn: call send() until it returns, at most max_tries times.
        raise NotImplementedError

    check_retry_loop(send_with_retries)

A lesson module builds its checkers with :func:`checker` and :func:`expect`::

    @checker("the retry loop")
    def check_retry_loop(func):
        result = func(flaky(fails=2), max_tries=3)
        expect(result == "ok", f"2 losses and 3 tries should end in 'ok', got {result!r}")
        return "it survives 2 losses in 3 tries"          # optional detail for the success line

The wrapped checker returns a :class:`Feedback`, which Jupyter shows as the cell's result
(so the checker call must be the cell's last line). It never raises: the notebook still
runs top to bottom when a student skips a "Your turn" cell.

* the untouched stub (``NotImplementedError``) gives "Not done yet";
* a failed :func:`expect` (or :class:`Wrong`) gives "Not yet:" and the checker's message,
  which says specifically what is wrong;
* any other exception raised by the student's code is named, with the line it came from;
* success gives a check mark, the checker's title and its detail.
"""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec

__all__ = ["Feedback", "Wrong", "checker", "expect"]

P = ParamSpec("P")
Status = Literal["passed", "wrong", "not_done", "error"]

_STYLE = {
    "passed": ("✓", "#1b7f3b"),
    "wrong": ("✗", "#b3261e"),
    "not_done": ("…", "#6b6b6b"),
    "error": ("✗", "#b3261e"),
}


class Wrong(Exception):
    """Raised by a checker when the student's code does something wrong; the message says what."""


def expect(condition: object, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` is true.

    Raises:
        Wrong: when ``condition`` is false.
    """
    if not condition:
        raise Wrong(message)


@dataclass(frozen=True)
class Feedback:
    """The outcome of one "Your turn" check.

    Attributes:
        title: what was checked ("the retry loop").
        status: ``"passed"``, ``"wrong"``, ``"not_done"`` or ``"error"`` (the code raised).
        message: the line shown to the student.
    """

    title: str
    status: Status
    message: str

    @property
    def passed(self) -> bool:
        """True when the check passed."""
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{_STYLE[self.status][0]} {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        mark, colour = _STYLE[self.status]
        return (
            f'<div style="border-left: 4px solid {colour}; padding: 4px 10px; '
            f'color: {colour}"><b>{mark}</b> {html.escape(self.message)}</div>'
        )


def _where(exc: BaseException) -> str:
    """The last frame of the traceback that is not in distlab, as ``line N: source``."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "distlab" not in f.filename.split("/")
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (line {frame.lineno}: {frame.line.strip()})" if frame.line else ""


def checker(title: str) -> Callable[[Callable[P, str | None]], Callable[P, Feedback]]:
    """Turn a function that raises :class:`Wrong` into a checker that returns :class:`Feedback`.

    Args:
        title: what the checker checks, as the success line names it ("the retry loop").

    Returns:
        A decorator. The checked function may return a detail for the success line.
    """

    def decorate(check: Callable[P, str | None]) -> Callable[P, Feedback]:
        @functools.wraps(check)
        def run(*args: P.args, **kwargs: P.kwargs) -> Feedback:
            try:
                detail = check(*args, **kwargs)
            except NotImplementedError:
                return Feedback(
                    title,
                    "not_done",
                    "Not done yet: replace `raise NotImplementedError` with your code "
                    f"for {title}, then run the cell again.",
                )
            except Wrong as exc:
                return Feedback(title, "wrong", f"Not yet: {exc}")
            except Exception as exc:  # the student's code raised: name it, never re-raise
                name = type(exc).__name__
                return Feedback(title, "error", f"Your code raised {name}: {exc}{_where(exc)}")
            suffix = f": {detail}" if detail else ""
            return Feedback(title, "passed", f"Correct, {title} works{suffix}.")

        return run

    return decorate
