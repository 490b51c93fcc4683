"""Python kernels started ahead of time, so grading a notebook never waits for one.

Kept apart from :mod:`distlab.course.grading` on purpose: it imports only ``jupyter_client``,
so the ``distlab`` command can start a kernel first and import nbgrader (seconds)
while the kernel boots.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

__all__ = ["KernelPool"]


class KernelPool:
    """Start Python kernels in the background so a notebook never waits for one.

    Kernel start-up is the main fixed cost of grading a notebook. While one notebook
    runs, the pool starts the next kernel. Each kernel serves one notebook and is then
    shut down, so no state leaks from one submission into the next.

    Args:
        size: kernels kept ready (1 is enough when notebooks take longer than a start-up).
        env: extra environment variables for the kernels.
        cwd: folder the kernels start in (they are moved to the notebook's folder later).
        limit: start at most this many kernels in total (None: no limit), so a pool that
            knows how many notebooks it serves never starts one for nothing.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        env: dict[str, str] | None = None,
        cwd: str = ".",
        limit: int | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        self._left = limit if limit is not None else -1
        self._env = {**os.environ, **(env or {})}
        self._cwd = os.path.abspath(cwd)
        self._ready: queue.Queue[Any] = queue.Queue()
        self._size = size
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._starting = 0  # kernels being started right now
        for _ in range(size):
            self._spawn()

    def _spawn(self, force: bool = False) -> None:
        def start() -> None:
            try:
                km = AsyncKernelManager(kernel_name="python3")
                run_sync(km.start_kernel)(
                    extra_arguments=["--HistoryManager.hist_file=:memory:"],
                    env=self._env,
                    cwd=self._cwd,
                    # ipykernel warns on stderr about unencrypted TCP, for every kernel.
                    stderr=subprocess.DEVNULL,
                )
            except Exception as exc:  # reported to the taker
                self._put(exc)
                return
            self._put(km)

        with self._lock:
            if self._closed or (self._left == 0 and not force):
                return
            self._left = max(0, self._left - 1) if self._left >= 0 else -1
            self._starting += 1
            thread = threading.Thread(target=start, name="distlab-kernel-pool", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _put(self, item: Any) -> None:
        with self._lock:
            self._starting -= 1
            closed = self._closed
        if closed and not isinstance(item, Exception):
            # Started after close() gave up waiting for it: nobody will take it.
            self.discard(item)
            return
        self._ready.put(item)

    def take(self, cwd: str) -> Any:
        """Return a started kernel manager whose kernel runs in ``cwd``; start another.

        Asked for more kernels than its ``limit``, the pool starts one on demand rather
        than wait for a kernel that will never come.

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
        self._spawn()
        if isinstance(item, Exception):
            raise item
        km = item
        client = km.blocking_client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive(
                f"import os as _o; _o.chdir({cwd!r}); del _o",
                silent=True,
                store_history=False,
                timeout=30,
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
        """Shut down a kernel that has served its notebook."""
        with contextlib.suppress(Exception):
            run_sync(km.shutdown_kernel)(now=True)

    def close(self) -> None:
        """Shut down every kernel still waiting in the pool."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=60)
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, Exception):
                self.discard(item)
