"""Python kernels started ahead of time, so grading a notebook never waits for one.

Kept apart from :mod:`distlab.course.grading` on purpose: it imports only ``jupyter_client``
(and :mod:`distlab.course.sandbox`, which imports nothing heavier), so the ``distlab``
command can start a kernel first and import nbgrader (seconds) while the kernel boots.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from distlab.course.sandbox import SANDBOX_WORKDIR, KernelSandbox, SandboxedKernelManager

__all__ = ["KernelPool"]


class KernelPool:
    """Start Python kernels in the background so a notebook never waits for one.

    Kernel start-up is the main fixed cost of grading a notebook. While one notebook
    runs, the pool starts the next kernel. Each kernel serves one notebook and is then
    shut down, so no state leaks from one submission into the next.

    With ``sandbox``, each kernel starts in a sandbox of its own (made by calling
    ``sandbox()``), which :meth:`discard` removes with the kernel. A sandboxed kernel
    runs in :data:`~distlab.course.sandbox.SANDBOX_WORKDIR`; :meth:`take` copies the
    files of the notebook's folder (not its notebooks) there.

    Args:
        size: kernels kept ready (1 is enough when notebooks take longer than a start-up).
        env: extra environment variables for the kernels (unsandboxed kernels also get
            this process's own; a sandbox sets its kernel's environment itself).
        cwd: folder the kernels start in (they are moved to the notebook's folder later).
        limit: start at most this many kernels in total (None: no limit), so a pool that
            knows how many notebooks it serves never starts one for nothing.
        sandbox: makes one :class:`~distlab.course.sandbox.KernelSandbox` per kernel
            (None: kernels run as this process's user, in its environment).
    """

    def __init__(
        self,
        size: int = 1,
        *,
        env: dict[str, str] | None = None,
        cwd: str = ".",
        limit: int | None = None,
        sandbox: Callable[[], KernelSandbox] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        self._left = limit if limit is not None else -1
        self._env = {**os.environ, **(env or {})}
        self._cwd = os.path.abspath(cwd)
        self._sandbox = sandbox
        self._ready: queue.Queue[Any] = queue.Queue()
        self._size = size
        self._closed = False
        self._lock = threading.Lock()
        self._starting = 0  # kernels asked for and not ready yet
        # Every kernel is launched from this one thread, which lives as long as the
        # pool: a sandbox dies with the thread that launched it (bwrap's
        # --die-with-parent is the kernel's parent-death signal, which fires when the
        # launching *thread* ends), so a thread per launch would kill its kernel.
        self._requests: queue.Queue[bool] = queue.Queue()
        self._launcher = threading.Thread(
            target=self._launch_loop, name="distlab-kernel-pool", daemon=True
        )
        self._launcher.start()
        for _ in range(size):
            self._spawn()

    def _launch_loop(self) -> None:
        while self._requests.get():
            self._start_one()

    def _start_one(self) -> None:
        box: KernelSandbox | None = None
        km: Any = None
        try:
            if self._sandbox is not None:
                box = self._sandbox()
                km = SandboxedKernelManager(box)
                run_sync(km.start_kernel)(cwd=str(box.root))
            else:
                km = AsyncKernelManager(kernel_name="python3")
                run_sync(km.start_kernel)(
                    extra_arguments=["--HistoryManager.hist_file=:memory:"],
                    env=self._env,
                    cwd=self._cwd,
                    # ipykernel warns on stderr about unencrypted TCP, for every kernel.
                    stderr=subprocess.DEVNULL,
                )
        except Exception as exc:  # reported to the taker
            if km is not None:
                self.discard(km)
            elif box is not None:
                box.close()
            self._put(exc)
            return
        self._put(km)

    def _spawn(self, force: bool = False) -> None:
        with self._lock:
            if self._closed or (self._left == 0 and not force):
                return
            self._left = max(0, self._left - 1) if self._left >= 0 else -1
            self._starting += 1
            self._requests.put(True)

    def _put(self, item: Any) -> None:
        with self._lock:
            self._starting -= 1
            closed = self._closed
        if closed and not isinstance(item, Exception):
            # Started after close() gave up waiting for it: nobody will take it.
            self.discard(item)
            return
        self._ready.put(item)

    def take(self, cwd: str, *, prefetch: bool = True) -> Any:
        """Return a started kernel manager whose kernel runs in ``cwd``; start another.

        A sandboxed kernel stays in its sandbox's work folder, where the files of
        ``cwd`` (not its notebooks) are copied. Asked for more kernels than its
        ``limit``, the pool starts one on demand rather than wait for a kernel that
        will never come. With ``prefetch=False`` no kernel is started for the next
        notebook (the caller knows there is none).

        Raises:
            RuntimeError: when no kernel starts within 120 s, or the kernel cannot be
                moved to ``cwd`` (that kernel is shut down, not leaked).
            Exception: whatever starting the kernel raised.
        """
        with self._lock:
            starved = self._ready.empty() and self._starting == 0
        if starved:
            self._spawn(force=True)
        try:
            item = self._ready.get(timeout=120)
        except queue.Empty:
            raise RuntimeError("no Python kernel started within 120 s") from None
        if prefetch:
            self._spawn()
        if isinstance(item, Exception):
            raise item
        km = item
        box: KernelSandbox | None = getattr(km, "sandbox", None)
        if box is not None:
            if not Path(cwd).is_dir():
                self.discard(km)
                raise RuntimeError(f"could not move a pooled kernel to {cwd}: no such folder")
            staged = box.stage(cwd)
            # Staged after the kernel started: copied in now (a restart copies them
            # again, before the kernel starts).
            code = (
                "import os as _o, shutil as _s\n"
                f"for _f in {staged!r}:\n"
                f"    _t = _o.path.join({SANDBOX_WORKDIR!r}, _f)\n"
                "    _o.makedirs(_o.path.dirname(_t), exist_ok=True)\n"
                f"    _s.copyfile(_o.path.join({str(box.files_dir)!r}, _f), _t)\n"
                "del _o, _s, _f, _t"
                if staged
                else ""
            )
        else:
            code = f"import os as _o; _o.chdir({cwd!r}); del _o"
        client = km.blocking_client()
        try:
            client.start_channels()
            try:
                client.wait_for_ready(timeout=60)
            except RuntimeError as exc:
                why = box.log_tail() if box is not None else ""
                raise RuntimeError(f"{exc}{': ' + why if why else ''}") from exc
            reply = client.execute_interactive(
                code or "pass", silent=True, store_history=False, timeout=30
            )
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"could not move a pooled kernel to {cwd}")
        except BaseException:
            self.discard(km)  # the caller never gets it: no orphan kernel process
            raise
        finally:
            client.stop_channels()
        return km

    @staticmethod
    def discard(km: Any) -> None:
        """Shut down a kernel that has served its notebook (and remove its sandbox)."""
        with contextlib.suppress(Exception):
            run_sync(km.shutdown_kernel)(now=True)
        box: KernelSandbox | None = getattr(km, "sandbox", None)
        if box is not None:
            box.close()

    @property
    def sandboxed(self) -> bool:
        """True when the pool's kernels run in sandboxes."""
        return self._sandbox is not None

    def close(self) -> None:
        """Shut down every kernel still waiting in the pool."""
        with self._lock:
            self._closed = True
            # Kernels asked for and not started yet are never started.
            while True:
                try:
                    self._requests.get_nowait()
                except queue.Empty:
                    break
            self._requests.put(False)
        self._launcher.join(timeout=60)
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, Exception):
                self.discard(item)
