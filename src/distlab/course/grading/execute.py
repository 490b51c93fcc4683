"""The preprocessors ``nbgrader_config.py`` plugs into nbgrader's pipelines.

* :class:`BudgetedExecute`, nbgrader's ``Execute`` with a time budget per notebook,
  shorter timeouts once a submission is known to hang, and a kernel that comes back
  (definitions replayed) after a submission kills or wedges it, so one bad submission
  can neither stall nor crash the grading of the others;
* :class:`HideHiddenTestTracebacks`, so feedback never quotes a hidden test.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float

from distlab.course.kernelpool import KernelPool

__all__ = ["BudgetedExecute", "HideHiddenTestTracebacks", "kernels_from"]


# The pool handed to BudgetedExecute: nbgrader instantiates preprocessors itself from
# the classes listed in the config, so a module-level slot is the one way to give them
# a shared object. Set only inside `kernels_from` (while a Grader autogrades or a
# check runs).
_ACTIVE_POOL: KernelPool | None = None


@contextlib.contextmanager
def kernels_from(pool: KernelPool | None) -> Iterator[None]:
    """Make every :class:`BudgetedExecute` run in this block take its kernel from ``pool``."""
    global _ACTIVE_POOL
    _ACTIVE_POOL = pool
    try:
        yield
    finally:
        _ACTIVE_POOL = None


def _drop(msg: Any) -> None:
    """Ignore a kernel message."""


def _error_output(ename: str, evalue: str) -> Any:
    return nbformat.v4.new_output(
        "error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]
    )


class BudgetedExecute(Execute):  # type: ignore[misc]  # nbgrader is untyped
    """nbgrader's ``Execute`` with a time budget per notebook and a kernel that survives.

    * Each cell gets at most ``Execute.timeout`` seconds, and never more than what is
      left of ``notebook_budget``. Once the budget is spent the remaining code cells are
      not run: each gets an error output saying so, which scores it 0. A submission that
      loops forever in every test therefore costs about ``notebook_budget`` seconds,
      not one timeout per test cell.
    * When the kernel dies (``os._exit()`` in a cell, a crash), the cell gets an error
      output, a fresh kernel starts and grading carries on with the next cell.
    * While a :class:`Grader` with a :class:`KernelPool` runs it, the kernel comes from the pool
      (started ahead of time while the previous notebook ran) instead of being started
      here; it is moved into the notebook's folder first (set by :class:`Grader`).
    """

    notebook_budget = Float(
        30.0, help="Seconds of execution a whole notebook may use (<= 0: no budget)."
    ).tag(config=True)

    timeout_after_timeout = Float(
        2.0,
        help="Once a cell has timed out, later cells get at most this many seconds: "
        "the submission is known to hang, and honest tests take milliseconds.",
    ).tag(config=True)

    _started: float = 0.0
    _timed_out: bool = False
    _setup: list[str]
    _iopub_timeout: float = 4.0
    _cwd: str = ""

    def preprocess(self, nb: Any, resources: Any = None, km: Any = None) -> Any:
        """Execute the notebook's cells within the budget; see the class docstring."""
        self._started = time.monotonic()
        self._timed_out = False
        self._setup = []
        self._iopub_timeout = self.iopub_timeout
        self.timeout_func = self._cell_timeout
        path = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        self._cwd = os.path.abspath(path)
        pooled = None
        pool = _ACTIVE_POOL
        if km is None and pool is not None:
            pooled = km = pool.take(self._cwd)
        try:
            return super().preprocess(nb, resources, km=km)
        finally:
            if pooled is not None:
                self._stop_client()
                KernelPool.discard(pooled)
                self.km = None

    def _remaining(self) -> float:
        if self.notebook_budget <= 0:
            return math.inf
        return self.notebook_budget - (time.monotonic() - self._started)

    def _cell_timeout(self, cell: Any) -> float | None:
        caps = [self._remaining()]
        if self.timeout and self.timeout > 0:
            caps.append(self.timeout)
        if self._timed_out and self.timeout_after_timeout > 0:
            caps.append(self.timeout_after_timeout)
        cap = min(caps)
        return None if math.isinf(cap) else max(1.0, cap)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> Any:
        """Run one cell, or mark it skipped when the budget is spent."""
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        self.iopub_timeout = self._iopub_timeout
        if self._remaining() <= 0:
            cell.outputs = [
                _error_output(
                    "GradingBudgetExceeded",
                    f"not run: the notebook used up its {self.notebook_budget:g} s of "
                    "execution time (look for an infinite loop or a call that never returns)",
                )
            ]
            return cell, self.resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("Kernel died in cell %s; starting a fresh one", index)
            cell.outputs = [
                *cell.get("outputs", []),
                _error_output(
                    "KernelDied",
                    "the Python kernel stopped while running this cell (os._exit() or a "
                    "crash); later cells ran in a fresh kernel",
                ),
            ]
            self._restart_dead_kernel()
            return cell, self.resources
        except CellTimeoutError:
            # nbclient gave up waiting for the cell's output (threads still spinning).
            cell.outputs = [
                *cell.get("outputs", []),
                _error_output("CellTimeoutError", "the cell did not finish within its time limit"),
            ]
            resources = self.resources
        timeout_ename = (self.error_on_timeout or {}).get("ename", "CellTimeoutError")
        if any(o.get("ename") in (timeout_ename, "CellTimeoutError") for o in cell.outputs):
            self._timed_out = True
            if not self._kernel_responds():
                self.log.warning("Kernel still busy after cell %s timed out; restarting it", index)
                self._restart_dead_kernel()
        elif not nbgrader_utils.is_grade(cell):
            # Definitions (imports, solutions, helpers) that ran to the end: replayed into
            # a fresh kernel, so one bad cell costs only itself.
            self._setup.append(cell.source)
        return cell, resources

    async def _async_handle_timeout(self, *args: Any, **kwargs: Any) -> Any:
        # nbclient interrupts the kernel here, then waits up to iopub_timeout (4 s) for
        # the cell's last output. An interrupted kernel reports within milliseconds; one
        # that swallowed the interrupt never does, so waiting longer only wastes budget.
        # This overrides a private nbclient hook (nbclient 0.x, pinned through nbgrader).
        # It passes its arguments through untouched, and preprocess_cell restores
        # iopub_timeout for the next cell; if nbclient renames the hook, this is never
        # called and nbclient's own 4 s wait applies (slower, still correct).
        self.iopub_timeout = min(self.iopub_timeout, 1)
        return await super()._async_handle_timeout(*args, **kwargs)

    def _kernel_responds(self, timeout: float = 1.0) -> bool:
        """Return True when the kernel runs a trivial statement within ``timeout`` seconds.

        After a timeout the kernel was interrupted. Code that swallows
        KeyboardInterrupt keeps it busy, and every later cell would just queue up behind
        it, so such a kernel is restarted instead.
        """
        client: Any = getattr(self, "kc", None)
        if client is None:
            return False
        try:
            reply = run_sync(client.execute_interactive)(
                "pass", silent=True, store_history=False, timeout=timeout, output_hook=_drop
            )
        except Exception:
            return False
        return bool(reply and reply.get("content", {}).get("status") == "ok")

    def _stop_client(self) -> None:
        client: Any = getattr(self, "kc", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.stop_channels()
        self.kc = None

    def _restart_dead_kernel(self) -> None:
        assert self.km is not None
        self._stop_client()
        run_sync(self.km.restart_kernel)(now=True)
        self.start_new_kernel_client()
        self._replay_setup()

    def _replay_setup(self) -> None:
        """Run the definition cells that had finished again, quietly, in the new kernel.

        First back to the notebook's folder: a restarted kernel starts where it was first
        launched, which for a pooled kernel is the pool's folder, not the notebook's.
        """
        client: Any = getattr(self, "kc", None)
        chdir = f"import os as _o; _o.chdir({self._cwd!r}); del _o" if self._cwd else ""
        for source in [chdir, *self._setup]:
            if not source:
                continue
            if client is None or self._remaining() <= 0:
                return
            try:
                run_sync(client.execute_interactive)(
                    source,
                    silent=True,
                    store_history=False,
                    timeout=max(1.0, min(self.timeout_after_timeout, self._remaining())),
                    output_hook=_drop,
                )
            except Exception:
                return


class HideHiddenTestTracebacks(NbGraderPreprocessor):  # type: ignore[misc]
    """Replace the tracebacks of test cells that contain hidden tests by their message.

    A traceback quotes the failing line, and in a hidden test that line is hidden test
    source. The message (``AssertionError: state should be 'open', got 'closed'``) is
    written for students and stays. Run it before ``ClearHiddenTests``, which removes
    the hidden regions and with them the evidence that a cell had one.
    """

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> Any:
        """Shorten the error outputs of one grade cell with a hidden region."""
        if (
            cell.cell_type == "code"
            and nbgrader_utils.is_grade(cell)
            and "BEGIN HIDDEN TESTS" in cell.source
        ):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
