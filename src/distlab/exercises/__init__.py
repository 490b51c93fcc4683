"""What the graded exercises' tests run on when they need machinery, one module per exercise.

    bulkhead              storm(): a seeded storm of calls, cancellations and timeouts that
                          checks a student's Bulkhead for the limit, leaks and FIFO order
    reliable_messaging    run_stream()/check_stream(): a sender and a receiver on the simulated
                          network over many seeds; delivery, duplicates, order, budget; replay
    serverless_pipeline   orders, a database whose commits fail, the faulty pipeline run
    service_discovery     FakeRegistry and FakeRegistryServer: stand-ins that let each part
                          of the discovery exercise be graded on its own

A module is named by its exercise's slug (``solutions/<slug>/``). Nothing here imports
the reference patterns: the grading sandbox hides the ones an exercise asks students to build.

Shared by every exercise: :func:`run`, the way a test cell runs a coroutine in virtual time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sysconfig
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from distlab.sim.vtime import run as _vrun

__all__ = ["run"]

T = TypeVar("T")

# Frames from these folders are machinery (the standard library's asyncio and threading,
# distlab itself); a failed test shows the student's frames only.
_MACHINERY = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
    sysconfig.get_paths()["stdlib"] + os.sep,
)


def run(main: Callable[[], Awaitable[T]], *, seed: int = 0) -> T:
    """Run the coroutine function ``main`` in virtual time for a test cell; return its result.

    Like ``distlab.run``, with two differences that keep one failed test from costing
    more than itself:

    - tasks a failed test leaves behind stay quiet (no "Task exception was never
      retrieved" on stderr later, which nbgrader would count against another cell);
    - the traceback of an error keeps the frames of the notebook (the student's code
      and the test) and drops those of asyncio and distlab, which are noise to a
      student and take IPython about a second to format.

    Raises:
        Exception: whatever ``main`` raises, with the shortened traceback.
    """

    async def quiet() -> T:
        asyncio.get_running_loop().set_exception_handler(_ignore)
        return await main()

    try:
        return _vrun(quiet, seed=seed)
    except BaseException as exc:
        raise exc.with_traceback(_own_frames(exc.__traceback__)) from exc.__cause__


def _ignore(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A loop exception handler that drops reports of tasks a failed test left behind."""


def _own_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """Relink ``tb`` so that it skips the frames of asyncio, threading and distlab."""
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
            kept.append(tb)
        tb = tb.tb_next
    for earlier, later in itertools.pairwise(kept):
        earlier.tb_next = later
    if kept:
        kept[-1].tb_next = None
        return kept[0]
    return None
