"""The preprocessors nbgrader_config.py plugs in: BudgetedExecute, HideHiddenTestTracebacks."""

from __future__ import annotations

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


def test_kernels_from_sets_the_pool_only_inside_the_block() -> None:
    """The slot BudgetedExecute reads is reset afterwards, even when the block raises."""
    pool: Any = object()
    with pytest.raises(RuntimeError), kernels_from(pool):
        assert execute._ACTIVE_POOL is pool
        raise RuntimeError("grading failed")
    assert execute._ACTIVE_POOL is None


@pytest.mark.slow
def test_a_hanging_notebook_costs_its_budget_not_a_timeout_per_cell() -> None:
    """After a timeout later cells get timeout_after_timeout; past the budget none runs."""
    hang = "import time\ntime.sleep(30)"
    sources = ["x = 41", "while True:\n    pass", "print(x + 1)", hang, hang, hang, "print('no')"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    executor = BudgetedExecute(timeout=2, timeout_after_timeout=1, notebook_budget=4)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": "."}})
    names = [[o.get("ename") for o in cell.outputs] for cell in nb.cells]
    assert "CellTimeoutError" in names[1]  # interrupted after its 2 s
    assert nb.cells[2].outputs[0].text == "42\n"  # the kernel survived and kept x
    assert "CellTimeoutError" in names[3]  # 1 s now, not 2
    assert names[-1] == ["GradingBudgetExceeded"]  # 4 s spent: not run at all
