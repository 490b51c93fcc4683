"""The preprocessors ``nbgrader_config.py`` plugs into nbgrader's pipelines.

* :class:`BudgetedExecute`, nbgrader's ``Execute`` with a time budget per notebook,
  shorter timeouts once a submission is known to hang, and a kernel that comes back
  (definitions replayed) after a submission kills or wedges it, so one bad submission
  can neither stall nor crash the grading of the others;
* :class:`HideHiddenTestTracebacks`, so feedback never quotes a hidden test, and
  :class:`HideStudentOutputs`, so feedback shows nothing a student's code printed once
  hidden tests had run (a hook could have printed their source).

While autograding, :class:`BudgetedExecute` also runs the kernel in a sandbox (see
:mod:`distlab.course.sandbox`) and checks the integrity of the result
(:mod:`distlab.course.grading.integrity`); what it finds is kept as an
:class:`~distlab.course.grading.reports.Integrity` for :func:`pop_integrity`.
"""

from __future__ import annotations

import ast
import contextlib
import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader import utils as nbgrader_utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float, Int

from distlab.course.grading.integrity import (
    canary_cells,
    canary_verdict,
    gradebook_changes,
    gradebook_fingerprint,
    scan_cells,
)
from distlab.course.grading.reports import Integrity, _docstring_line
from distlab.course.kernelpool import KernelPool
from distlab.course.sandbox import (
    SANDBOX_WORKDIR,
    KernelSandbox,
    Sandbox,
    SandboxedKernelManager,
)

__all__ = [
    "BudgetedExecute",
    "HideHiddenTestTracebacks",
    "HideStudentOutputs",
    "kernels_from",
    "pop_integrity",
]


@dataclass(frozen=True)
class _Kernels:
    pool: KernelPool | None
    sandboxed: bool | None  # None: as the configuration says (c.Sandbox.enabled)
    prefetch: bool


# Where BudgetedExecute gets its kernels: nbgrader instantiates preprocessors itself
# from the classes listed in the config, so a module-level slot is the one way to give
# them a shared object. Set only inside `kernels_from` (while a Grader autogrades or a
# check runs); nbgrader's own commands leave it empty.
_ACTIVE: _Kernels | None = None
# What autograding found, per (student, assignment, notebook), until pop_integrity().
_INTEGRITY: dict[tuple[str, str, str], Integrity] = {}
_INTEGRITY_LOCK = threading.Lock()


@contextlib.contextmanager
def kernels_from(
    pool: KernelPool | None, *, sandboxed: bool | None = None, prefetch: bool = True
) -> Iterator[None]:
    """Make every :class:`BudgetedExecute` run in this block take its kernel from ``pool``.

    Args:
        pool: where kernels come from (None: each executor starts its own).
        sandboxed: without a pool, whether an executor's own kernel runs in a sandbox
            (None: ``c.Sandbox.enabled``). With a pool, the pool decides.
        prefetch: let the pool start a kernel for the next notebook.
    """
    global _ACTIVE
    _ACTIVE = _Kernels(pool, pool.sandboxed if pool is not None else sandboxed, prefetch)
    try:
        yield
    finally:
        _ACTIVE = None


def pop_integrity(student: str, assignment: str, notebook: str) -> Integrity | None:
    """Return (and forget) what autograding found about one notebook, if it ran."""
    with _INTEGRITY_LOCK:
        return _INTEGRITY.pop((student, assignment, notebook), None)


def _instructor_cells(info: dict[str, Any]) -> dict[str, tuple[bool, str]] | None:
    """``grade_id -> (locked, source)`` of a notebook's recorded cells, from the gradebook."""
    try:
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_notebook(info["notebook"], info["assignment"])
            return {c.name: (bool(c.locked), str(c.source)) for c in notebook.source_cells}
    except (KeyError, MissingEntry):
        return None


def _exit_status(km: Any) -> int | None:
    """The exit status of the kernel process of ``km`` (None: running or unknown)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    with contextlib.suppress(Exception):
        return process.poll() if process is not None else None
    return None


# Errors a limit shows up as, in a cell's output, and the limit's name.
_LIMIT_ERRORS = {
    "[Errno 27] File too large": "file_size_mb",
    "[Errno 24] Too many open files": "open_files",
}


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
    * The kernel runs in a sandbox (:mod:`distlab.course.sandbox`): the pool's, or one
      made here from ``c.Sandbox`` when nbgrader's own ``autograde`` runs it. Without
      one (``c.Sandbox.enabled = False``, ``distlab grade --unsandboxed``) it runs as
      this process's user, and every report says so.
    * While autograding (not while checking), the student's cells are scanned, two
      canary cells run after the last cell, and the gradebook is read before and
      after: see :mod:`distlab.course.grading.integrity`. A notebook with findings is
      flagged in the gradebook; :func:`pop_integrity` returns them.
    """

    notebook_budget = Float(
        30.0, help="Seconds of execution a whole notebook may use (<= 0: no budget)."
    ).tag(config=True)

    timeout_after_timeout = Float(
        2.0,
        help="Once a cell has timed out, later cells get at most this many seconds: "
        "the submission is known to hang, and honest tests take milliseconds.",
    ).tag(config=True)

    output_limit_kb = Int(
        1024,
        help="KiB of output a whole notebook may produce (<= 0: no limit). Past it, "
        "printed and displayed output is dropped (errors are kept, shortened), and the "
        "report names the limit.",
    ).tag(config=True)

    _started: float = 0.0
    _timed_out: bool = False
    _setup: list[str]
    _iopub_timeout: float = 4.0
    _cwd: str = ""
    _deaths: list[int]
    _budget_running: bool = False
    _guarded: frozenset[int] = frozenset()
    _forged: list[str]
    _output_used: int = 0
    _output_capped: bool = False

    def preprocess(self, nb: Any, resources: Any = None, km: Any = None) -> Any:
        """Execute the notebook's cells within the budget; see the class docstring."""
        self._started = time.monotonic()
        self._budget_running = False
        self._timed_out = False
        self._setup = []
        self._iopub_timeout = self.iopub_timeout
        self.timeout_func = self._cell_timeout
        self._deaths = []
        self._forged = []
        self._guarded = frozenset()
        self._output_used = 0
        self._output_capped = False
        resources = resources if resources is not None else {}
        path = resources.get("metadata", {}).get("path") or os.getcwd()
        self._cwd = os.path.abspath(path)
        info = resources.get("nbgrader", {})
        grading = "db_url" in info and "student" in info
        active = _ACTIVE
        pool = active.pool if active is not None else None
        sandboxed = active.sandboxed if active is not None else None
        if sandboxed is None:
            sandboxed = bool(Sandbox(config=self.config).enabled) and km is None
        box: KernelSandbox | None = None
        pooled = None
        owned = None
        if km is None and pool is not None:
            pooled = km = pool.take(self._cwd, prefetch=active is None or active.prefetch)
            box = getattr(km, "sandbox", None)
        elif km is None and sandboxed:
            settings = Sandbox(config=self.config)
            box = settings.make(str(info.get("assignment", "")), env=self._kernel_env())
            box.stage(self._cwd)
            owned = km = SandboxedKernelManager(box)
        if box is not None:
            self._cwd = SANDBOX_WORKDIR  # where a restarted kernel goes back to
        review: list[str] = []
        before = None
        canary = None
        instructor: dict[str, tuple[bool, str]] | None = None
        if grading:
            instructor = _instructor_cells(info) or {}
            review += scan_cells(nb, {k: src for k, (locked, src) in instructor.items() if locked})
            before = gradebook_fingerprint(str(info["db_url"]))
            tests = [c for c in nb.cells if nbgrader_utils.is_grade(c) and c.cell_type == "code"]
            canary = canary_cells(_docstring_line(tests[-1].source) if tests else "")
            nb.cells.extend(canary.cells)
            # The test cells (their source is the gradebook's, restored by nbgrader) and
            # the canary cells: student code must not shape what they show.
            first_canary = len(nb.cells) - len(canary.cells)
            self._guarded = frozenset(
                i
                for i, c in enumerate(nb.cells)
                if c.cell_type == "code"
                and (i >= first_canary or (nbgrader_utils.is_grade(c) and not _is_solution(c)))
            )
        limits: list[str] = []
        try:
            try:
                nb, resources = super().preprocess(nb, resources, km=km)
            finally:
                executed = nb.cells[-len(canary.cells) :] if canary is not None else []
                if canary is not None:
                    del nb.cells[-len(canary.cells) :]
                current: Any = getattr(self, "km", None)
                status = _exit_status(current) if current is not None else None
                if status is not None:
                    self._deaths.append(status)
                self._stop_client()
                if box is not None:
                    box.kill()  # every process of the sandbox, before reading its counters
                    limits += box.limits_hit()
                if pooled is not None:
                    KernelPool.discard(pooled)
                elif owned is not None:
                    with contextlib.suppress(Exception):
                        run_sync(owned.shutdown_kernel)(now=True)
                if box is not None:
                    box.close()
                self.km = None
        finally:
            if box is not None and not box.closed:
                box.close()
        if grading:
            _defang(nb, {k: src for k, (locked, src) in (instructor or {}).items() if locked})
            review += self._forged
            if canary is not None:
                review += canary_verdict(canary, executed)
            review += gradebook_changes(before, gradebook_fingerprint(str(info["db_url"])))
            limits += self._limits_from(nb, box)
            if self._output_capped:
                limits.append(f"output limit ({self.output_limit_kb} KiB per notebook)")
            integrity = Integrity(
                sandboxed=box is not None, review=tuple(review), limits=tuple(limits)
            )
            key = (str(info["student"]), str(info["assignment"]), str(info["notebook"]))
            with _INTEGRITY_LOCK:
                _INTEGRITY[key] = integrity
            self._record(info, integrity)
        return nb, resources

    async def async_start_new_kernel_client(self) -> Any:
        """Connect to the kernel; the notebook's budget starts once the first one is ready.

        Booting a kernel (in its sandbox) is the grader's cost, not the submission's.
        A kernel restarted after the submission killed it does not restart the budget.
        """
        client = await super().async_start_new_kernel_client()
        if not self._budget_running:
            self._budget_running = True
            self._started = time.monotonic()
        return client

    # nbclient binds its sync wrapper to its own coroutine: rebind it to the override.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _kernel_env(self) -> dict[str, str]:
        """What nbgrader tells a kernel it starts (NBGRADER_EXECUTION, ...)."""
        return {k: v for k, v in os.environ.items() if k.startswith("NBGRADER_")}

    def _limits_from(self, nb: Any, box: KernelSandbox | None) -> list[str]:
        """The limits that the outputs and the kernel's deaths show were hit."""
        if box is None:
            return []
        hits = []
        if any(s in (-signal.SIGXCPU, 128 + signal.SIGXCPU) for s in self._deaths):
            hits.append(f"CPU time limit ({box.limits.cpu_seconds} s per process)")
        texts = [
            str(o.get("evalue", ""))
            for cell in nb.cells
            if cell.get("cell_type") == "code"
            for o in cell.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        names = {
            "file_size_mb": f"file size limit ({box.limits.file_size_mb} MiB)",
            "open_files": f"open files limit ({box.limits.open_files})",
        }
        for marker, limit in _LIMIT_ERRORS.items():
            if any(marker in text for text in texts):
                hits.append(names[limit])
        return hits

    def _record(self, info: dict[str, Any], integrity: Integrity) -> None:
        """Log what was found, and flag the notebook in the gradebook for review."""
        where = f"{info['student']}/{info['assignment']}/{info['notebook']}"
        if not integrity.sandboxed:
            self.log.warning("%s was graded without a sandbox", where)
        for limit in integrity.limits:
            self.log.warning("%s hit the %s", where, limit)
        if not integrity.review:
            return
        self.log.warning("%s needs review: %s", where, "; ".join(integrity.review))
        # Written by the grader, after the kernel is gone: the formgrader shows the flag.
        with contextlib.suppress(Exception), Gradebook(info["db_url"]) as gb:
            submitted = gb.find_submission_notebook(
                info["notebook"], info["assignment"], info["student"]
            )
            submitted.flagged = True
            gb.db.commit()

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        """Handle one message from the kernel: outputs capped, test cells guarded.

        Test cells (and the canary cells) never take ``clear_output`` or display
        updates, which only student code could send there (a thread can clear a failed
        test's error before the cell ends). Past ``output_limit_kb`` of output in the
        notebook, streams and displays are dropped and errors shortened.
        """
        kind = msg.get("msg_type", "")
        guarded = cell_index in self._guarded
        if guarded and kind in ("clear_output", "update_display_data"):
            self._forge_found(f"{kind} sent into a test cell")
            return None
        content = msg.get("content") or {}
        if guarded and kind in ("display_data", "execute_result"):
            transient = content.get("transient") or {}
            if transient.get("display_id"):  # could be updated later from anywhere
                self._forge_found(f"{kind} with a display id sent into a test cell")
                return None
        if kind in ("stream", "display_data", "execute_result", "error"):
            size = _output_size(content)
            limit = self.output_limit_kb << 10
            if self.output_limit_kb > 0 and self._output_used + size > limit:
                self._output_capped = True
                if kind != "error":
                    if not (guarded and content.get("name") == "stderr"):
                        return None
                    # nbgrader scores a test that wrote to stderr 0: keep that fact.
                    msg = {**msg, "content": {**content, "text": "[output limit]\n"}}
                else:
                    msg = {**msg, "content": _shortened_error(content)}
                size = _output_size(msg["content"])
            self._output_used += size
        return super().process_message(msg, cell, cell_index)

    def _forge_found(self, what: str) -> None:
        reason = (
            "a test cell got outputs its test does not produce, sent by student code "
            f"({what}): results are being forged"
        )
        if reason not in self._forged:
            self._forged.append(reason)

    def _check_results(self, cell: Any, index: int) -> None:
        """Drop results student code showed in a test cell; nbgrader would score them.

        nbgrader scores a test cell by its first error, stderr or result output, and a
        result that is not a number between 0 and the cell's points gives full points.
        A test's own result comes last, from a last line that is an expression, and only
        when nothing failed; any other result in a test cell was shown by student code
        (``sys.displayhook`` from a thread, or from code the test calls).
        """
        if index not in self._guarded:
            return
        outputs = list(cell.get("outputs", []))
        results = [o for o in outputs if o.get("output_type") == "execute_result"]
        if not results:
            return
        failed = any(
            o.get("output_type") == "error"
            or (o.get("output_type") == "stream" and o.get("name") == "stderr")
            for o in outputs
        )
        legit = not failed and len(results) == 1 and _ends_with_expression(cell.source)
        if not legit:
            cell.outputs = [o for o in outputs if o.get("output_type") != "execute_result"]
            self._forge_found("a result shown while the test ran")

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
        cell, resources = self._run_cell(cell, resources, index)
        self._check_results(cell, index)
        return cell, resources

    def _run_cell(self, cell: Any, resources: Any, index: int) -> Any:
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
        status = _exit_status(self.km)
        if status is not None:
            self._deaths.append(status)
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


# What an output may show in the autograded notebook, the formgrader and feedback: no
# HTML, JavaScript, SVG or Markdown (they run script in the instructor's browser).
_SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
_SCRIPT_URL = re.compile(r"(?i)(java|vb)script:")


def _defang(nb: Any, instructor: dict[str, str]) -> None:
    """Make the graded notebook safe to open in a browser (formgrader, feedback).

    Outputs keep only plain text and bitmaps (any cell's: student code ran in the
    instructor's cells too); the student's Markdown cells show ``<`` literally, so the
    markup in them is text, and a script URL gets a space (no longer a link).
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if isinstance(data, dict) and set(data) - set(_SAFE_MIME):
                kept = {k: v for k, v in data.items() if k in _SAFE_MIME}
                output["data"] = kept or {"text/plain": "(output not shown: not plain text)"}
                output.get("metadata", {}).clear()
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        mine = grade_id in instructor and instructor[grade_id] == cell.source
        if cell.get("cell_type") == "markdown" and not mine:
            source = cell.source.replace("<", "&lt;")
            cell.source = _SCRIPT_URL.sub(lambda m: m.group(0)[:-1] + " :", source)


def _is_solution(cell: Any) -> bool:
    return bool(nbgrader_utils.is_solution(cell))


def _ends_with_expression(source: str) -> bool:
    """True when the last statement of ``source`` is an expression (it may show a result)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and isinstance(body[-1], ast.Expr)


def _output_size(content: dict[str, Any]) -> int:
    """About how many bytes an output message carries (its text, data and traceback)."""
    size = len(str(content.get("text", ""))) + len(str(content.get("evalue", "")))
    size += sum(len(str(line)) for line in content.get("traceback") or [])
    data = content.get("data") or {}
    if isinstance(data, dict):
        size += sum(len(str(value)) for value in data.values())
    return size


def _shortened_error(content: dict[str, Any], keep: int = 2000) -> dict[str, Any]:
    """An error output's content cut to ``keep`` characters of message, no traceback."""
    ename = str(content.get("ename", ""))[:200]
    evalue = str(content.get("evalue", ""))[:keep]
    return {**content, "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


class HideHiddenTestTracebacks(NbGraderPreprocessor):  # type: ignore[misc]
    """Replace the tracebacks of test cells that contain hidden tests by their message.

    A traceback quotes the failing line, and in a hidden test that line is hidden test
    source. The message (``AssertionError: state should be 'open', got 'closed'``) is
    written for students and stays, cut to its first line and 300 characters: it may
    quote values student code chose, and those could carry what the code saw. Run it
    before ``ClearHiddenTests``, which removes the hidden regions and with them the
    evidence that a cell had one.
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
                    output.evalue = _one_short_line(str(output.get("evalue", "")))
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


def _one_short_line(text: str, limit: int = 300) -> str:
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


_MARKER_NOTE = "# (a line with an nbgrader marker was taken out of this feedback)"


class HideStudentOutputs(NbGraderPreprocessor):  # type: ignore[misc]
    """Keep feedback free of anything a student's code could have printed about hidden tests.

    Student code runs in the kernel that runs the hidden tests, and a hook it installs
    (``pre_run_cell``) sees every cell's source. So in feedback:

    * the outputs of cells the student added are dropped (and their nbgrader
      metadata, which only the gradebook's cells may carry);
    * from the first test cell with hidden tests on, every output is dropped except
      the error messages of test cells (tracebacks are cut by
      :class:`HideHiddenTestTracebacks`);
    * lines of the student's cells that carry nbgrader's hidden-test markers are taken
      out, so ``ClearHiddenTests`` neither fails on them nor removes the student's code.

    Put it first in ``GenerateFeedback.preprocessors``. Which cells are the student's
    is read from the gradebook (a cell whose id and source match a locked cell there
    is the instructor's).
    """

    def preprocess(self, nb: Any, resources: Any) -> Any:
        """Filter the outputs and sources of every cell; see the class docstring."""
        recorded = _instructor_cells(resources.get("nbgrader", {})) or {}
        hidden_seen = False
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            grade_id = meta.get("grade_id")
            entry = recorded.get(grade_id) if grade_id else None
            instructor = entry is not None and entry[0] and entry[1] == cell.source
            if entry is None and "nbgrader" in cell.get("metadata", {}):
                del cell.metadata["nbgrader"]  # a cell the gradebook does not know
            if not instructor:
                lines = cell.source.split("\n")
                if any(_is_marker(line) for line in lines):
                    cell.source = "\n".join(
                        _MARKER_NOTE if _is_marker(line) else line for line in lines
                    )
            if cell.cell_type != "code":
                continue
            is_test = instructor and nbgrader_utils.is_grade(cell)
            if is_test and "BEGIN HIDDEN TESTS" in cell.source:
                hidden_seen = True
            if entry is None:
                cell.outputs = []
            elif hidden_seen:
                keep = is_test or (instructor and not nbgrader_utils.is_solution(cell))
                cell.outputs = [
                    o for o in cell.get("outputs", []) if keep and o.output_type == "error"
                ]
        return nb, resources


def _is_marker(line: str) -> bool:
    return "HIDDEN TESTS" in line
