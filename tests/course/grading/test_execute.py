"""The preprocessors nbgrader_config.py plugs in: BudgetedExecute, HideHiddenTestTracebacks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import nbformat
import pytest

from distlab.course.grading import execute
from distlab.course.grading.execute import (
    BudgetedExecute,
    HideHiddenTestTracebacks,
    kernels_from,
)


def _grade_cell(source: str, grade_id: str = "test_x") -> Any:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": grade_id,
        "locked": True,
        "points": 1,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    cell.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="state should be 'open'",
            traceback=["Traceback", "  assert secret_hidden_line()", "AssertionError: ..."],
        )
    ]
    return cell


def test_tracebacks_of_cells_with_hidden_tests_are_cut_to_the_message() -> None:
    """A failed hidden test shows its message, never the hidden line it failed on."""
    hidden = _grade_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS")
    visible = _grade_cell("visible()", "test_y")
    nb = nbformat.v4.new_notebook(cells=[hidden, visible])
    nb, _ = HideHiddenTestTracebacks().preprocess(nb, {})
    assert nb.cells[0].outputs[0].traceback == ["AssertionError: state should be 'open'"]
    assert len(nb.cells[1].outputs[0].traceback) == 3  # visible tests keep their traceback


def test_feedback_shows_one_short_line_of_a_hidden_tests_message() -> None:
    """Student code chooses what its exceptions say: a long message cannot carry much away."""
    cell = _grade_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret()\n### END HIDDEN TESTS")
    cell.outputs[0].evalue = "got " + "x" * 1000 + "\nline two of a leak"
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = HideHiddenTestTracebacks().preprocess(nb, {})
    shown = nb.cells[0].outputs[0]
    short = ("got " + "x" * 1000)[:299] + "…"  # 300 characters
    assert (shown.evalue, shown.traceback) == (short, [f"AssertionError: {short}"])


def test_kernels_from_sets_the_pool_only_inside_the_block() -> None:
    """The slot BudgetedExecute reads is reset afterwards, even when the block raises."""
    pool: Any = SimpleNamespace(sandboxed=True)
    with pytest.raises(RuntimeError), kernels_from(pool):
        assert execute._ACTIVE is not None
        assert execute._ACTIVE.pool is pool
        assert execute._ACTIVE.sandboxed is True  # the pool decides
        raise RuntimeError("grading failed")
    assert execute._ACTIVE is None
    with kernels_from(None, sandboxed=False):
        assert execute._ACTIVE.sandboxed is False  # type: ignore[union-attr]
    assert execute._ACTIVE is None


@pytest.mark.parametrize(
    ("timed_out", "spent", "expected"),
    [
        (False, 0.0, 5.0),  # a fresh notebook: the per-cell timeout
        (True, 0.0, 2.0),  # known to hang: timeout_after_timeout
        (False, 38.5, 1.5),  # near the end of the budget: what is left of it
        (True, 39.9, 1.0),  # never less than a second (a kernel needs that to answer)
    ],
)
def test_each_cell_gets_the_smallest_of_its_limits(
    timed_out: bool, spent: float, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cell's timeout: the per-cell limit, 2 s once a cell timed out, the budget's rest."""
    executor = BudgetedExecute(timeout=5, timeout_after_timeout=2, notebook_budget=40)
    monkeypatch.setattr(execute.time, "monotonic", lambda: 1000.0 + spent)
    executor._started = 1000.0
    executor._timed_out = timed_out
    assert executor._cell_timeout(None) == pytest.approx(expected)


def _run(sources: list[str], **limits: float) -> list[list[str]]:
    """Execute a notebook of these cells; return the error names of each cell's outputs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb, _ = BudgetedExecute(**limits).preprocess(nb, {"metadata": {"path": "."}})
    return [[o.get("ename") or o.get("text", "") for o in cell.outputs] for cell in nb.cells]


@pytest.mark.slow
def test_a_hanging_cell_is_interrupted_and_the_kernel_lives_on() -> None:
    """A cell past its timeout is stopped; the next cell runs in the same kernel."""
    names = _run(["x = 41", "while True:\n    pass", "print(x + 1)"], timeout=2, notebook_budget=0)
    assert "CellTimeoutError" in names[1]
    assert names[2] == ["42\n"]


@pytest.mark.slow
def test_past_the_budget_no_cell_runs() -> None:
    """A notebook that hangs in every cell costs its budget, not a timeout per cell.

    Only outcomes are checked, never durations: on a loaded machine interrupts take
    longer, so which cell the budget stops at may change; that it stops may not.
    """
    hang = "import time\ntime.sleep(30)"
    names = _run([hang] * 6 + ["print('never')"], timeout=1, notebook_budget=3)
    for hanging in names[:-1]:  # each one interrupted, or not run once the budget was spent
        assert "CellTimeoutError" in hanging or hanging == ["GradingBudgetExceeded"], names
    assert names[-1] == ["GradingBudgetExceeded"]  # 6 s of hanging > 3 s: never run
