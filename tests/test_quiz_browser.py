"""Real-browser tests of the chapter quiz in JupyterLab and in Notebook 7.

Headless Debian Chromium through Playwright, on the shared Jupyter server fixture
(scratch copy of the course, its own DISTLAB_HOME). Each test presses Reset first,
because the server, and so the results file, is shared by the tests of a session.
"""

from __future__ import annotations

from typing import Any

import pytest

from distlab.quiz import Question, load_quiz
from tests.jupyter_browser import REPO, JupyterServer, open_notebook, run_all, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "quizzes/14_3_2_chapter_quiz.ipynb"
QUIZ = load_quiz(REPO / "quizzes" / "14_3_2_chapter_quiz.yaml")


def _question(page: Any, question: Question) -> Any:
    return page.locator(f".distlab-quiz-question-{question.id}")


def _option(page: Any, question: Question, text: str) -> Any:
    # Option texts repeat across questions ("Scalability"), so look inside the question.
    return _question(page, question).get_by_role("radio", name=text, exact=True)


def _check(page: Any, question: Question) -> Any:
    box = _question(page, question)
    box.get_by_role("button", name="Check").click()
    return box.locator(".distlab-quiz-feedback")


def _focused_label(page: Any) -> str:
    text: str = page.evaluate(
        """() => {
          const element = document.activeElement;
          const label = element && (element.closest('label') || element);
          return label ? label.textContent.trim() : '';
        }"""
    )
    return text


def _start(page: Any, server: JupyterServer, ui: str) -> Any:
    open_notebook(page, server, NOTEBOOK, ui=ui)
    run_all(page)
    quiz = page.locator(".distlab-quiz")
    quiz.wait_for()
    quiz.get_by_role("button", name="Reset").click()
    score = page.locator(".distlab-quiz-score")
    score.filter(has_text="0 / 10 correct").wait_for()
    return score


@pytest.mark.parametrize("ui", ["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def test_chapter_quiz_in_the_browser(page: Any, jupyter_server: JupyterServer, ui: str) -> None:
    """Empty check prompts, a wrong answer explains, ten right answers score 10 / 10."""
    score = _start(page, jupyter_server, ui)
    first, last = QUIZ.questions[0], QUIZ.questions[-1]

    feedback = _check(page, first)
    feedback.filter(has_text="Choose an answer first.").wait_for()
    assert "0 of 10 answered" in score.inner_text()

    wrong = next(option.text for option in first.options if not option.correct)
    _option(page, first, wrong).check()
    feedback = _check(page, first)
    feedback.filter(has_text="Incorrect.").wait_for()
    assert first.explanation in feedback.inner_text()
    score.filter(has_text="1 of 10 answered").wait_for()
    assert "0 / 10 correct" in score.inner_text()

    for question in QUIZ.questions[:-1]:
        right = next(option.text for option in question.options if option.correct)
        _option(page, question, right).check()
        feedback = _check(page, question)
        feedback.filter(has_text="Correct.").wait_for()
        assert "Incorrect" not in feedback.inner_text()

    # The last question by keyboard only, starting from the Check button before it:
    # Tab reaches each option, Space selects one, Tab reaches Check, Enter presses it.
    _question(page, QUIZ.questions[-2]).get_by_role("button", name="Check").focus()
    for option in last.options:
        page.keyboard.press("Tab")
        assert _focused_label(page) == option.text
        if option.correct:
            page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert _focused_label(page) == "Check"
    page.keyboard.press("Enter")
    _question(page, last).locator(".distlab-quiz-feedback").filter(has_text="Correct.").wait_for()

    score.filter(has_text="10 / 10 correct").wait_for()
    assert "10 of 10 answered" in score.inner_text()
    summary = page.locator(".distlab-quiz-summary")
    summary.filter(has_text="Quiz complete: 10 / 10 correct.").wait_for()
    assert "quiz_results.json" in page.locator(".distlab-quiz").inner_text()
    summary.scroll_into_view_if_needed()
    screenshot(page, f"chapter_quiz_{ui}")
