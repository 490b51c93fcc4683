"""KernelPool: kernels started ahead, moved to the notebook's folder, never leaked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from distlab.course.kernelpool import KernelPool
from tests import REPO

SOLUTION = REPO / "solutions" / "circuit_breaker" / "circuit_breaker.ipynb"
EXERCISE = REPO / "exercises" / "circuit_breaker" / "circuit_breaker.ipynb"
BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_kernel_pool_moves_kernels_to_the_notebook_and_never_starves(tmp_path: Path) -> None:
    """A pooled kernel runs in the folder asked for; asking beyond the limit still works."""
    pool = KernelPool(1, limit=1)
    try:
        for _ in range(2):  # the second kernel is beyond the limit: started on demand
            km = pool.take(str(tmp_path))
            client = km.blocking_client()
            client.start_channels()
            printed: list[str] = []

            def collect(msg: dict[str, Any], printed: list[str] = printed) -> None:
                if msg["msg_type"] == "stream":
                    printed.append(msg["content"]["text"])

            try:
                client.execute_interactive(
                    "import os; print(os.getcwd())", timeout=30, output_hook=collect
                )
            finally:
                client.stop_channels()
                KernelPool.discard(km)
            assert "".join(printed).strip() == str(tmp_path)
    finally:
        pool.close()


@pytest.mark.slow
def test_a_pooled_kernel_that_cannot_be_moved_is_shut_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """take() into a missing folder raises, and the kernel it could not hand out is stopped."""
    from jupyter_core.utils import run_sync

    discarded: list[Any] = []
    discard = KernelPool.discard

    def recording_discard(km: Any) -> None:
        discarded.append(km)
        discard(km)

    monkeypatch.setattr(KernelPool, "discard", staticmethod(recording_discard))
    pool = KernelPool(1, limit=1)
    try:
        with pytest.raises(RuntimeError, match="could not move a pooled kernel"):
            pool.take(str(tmp_path / "missing"))
    finally:
        pool.close()
    assert len(discarded) == 1
    assert not run_sync(discarded[0].is_alive)()
