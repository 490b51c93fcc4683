"""Real-browser smoke test: JupyterLab and Notebook 7 open lesson 00, run it, show its outputs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jupyter_browser import JupyterServer, open_notebook, run_all, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("ui", ["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def test_lesson_00_runs_in_the_browser(page: Any, jupyter_server: JupyterServer, ui: str):
    """Run All renders the virtual-time output and the quiz widget (Lab and Notebook 7)."""
    open_notebook(page, jupyter_server, "lessons/00_start_here.ipynb", ui=ui)
    run_all(page)
    outputs = page.locator(".jp-OutputArea-output")
    outputs.filter(has_text="virtual time passed: 60 s").first.wait_for()
    outputs.filter(has_text="attempts: 13, failures: 12").first.wait_for()
    # The quiz at the end is a live widget, not a text repr of one.
    quiz = page.locator(".jupyter-widgets", has_text="Check your understanding: start here")
    quiz.first.wait_for()
    assert (
        page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).count()
        == 0
    )
    screenshot(page, f"lesson_00_{ui}")
