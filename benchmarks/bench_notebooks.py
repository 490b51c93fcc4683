"""Wall time to execute every course notebook (lessons, solutions, quizzes) in a fresh kernel."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from distlab.course.notebooks import find_notebooks

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ["lessons", "solutions", "quizzes"]


def main() -> dict[str, Any]:
    """Execute each notebook, print its time (with and without kernel start-up)."""
    os.environ.setdefault("DISTLAB_HOME", tempfile.mkdtemp(prefix="distlab-bench-"))
    results: dict[str, Any] = {}
    total = 0.0
    for path in find_notebooks(REPO / f for f in FOLDERS if (REPO / f).exists()):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=60,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        started = time.perf_counter()
        with client.setup_kernel():
            cells_started = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            cells = time.perf_counter() - cells_started
        wall = time.perf_counter() - started
        total += wall
        name = str(path.relative_to(REPO))
        results[name] = {"wall_s": wall, "cells_s": cells}
        print(f"notebook: {name:50} {wall:6.2f} s wall, {cells:6.2f} s in cells")
    print(f"notebook: all {len(results)} notebooks {total:6.2f} s wall")
    results["total_wall_s"] = total
    return results


if __name__ == "__main__":
    main()
