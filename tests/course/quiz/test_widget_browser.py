"""Real-browser tests of the chapter quiz in JupyterLab and in Notebook 7.

Headless Debian Chromium through Playwright, on the shared Jupyter server fixture
(scratch copy of the course, its own DISTLAB_HOME). Each test resets the quiz first,
because the server, and so the results file, is shared by the tests of a session.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from distlab.course.quiz import Question, load_quiz
from tests.jupyter_browser import (
    KERNEL_READY_JS,
    REPO,
    JupyterServer,
    open_notebook,
    run_all,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK = "quizzes/14_3_2_chapter_quiz.ipynb"
# has_text="Correct." would also match "Incorrect." (case-insensitive substring).
CORRECT = re.compile(r"^\s*Correct\.")
INCORRECT = re.compile(r"^\s*Incorrect\.")


def _whole(text: str) -> re.Pattern[str]:
    """Match `text` not preceded by a digit: "0 / 10 correct" must not match "10 / 10 correct"."""
    return re.compile(rf"(?<!\d){re.escape(text)}")


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
    score = page.locator(".distlab-quiz-score")
    score.filter(has_text=re.compile(r"of 10 answered")).wait_for()
    if not _whole("0 of 10 answered").search(score.inner_text()):
        # Answers saved by an earlier test: Reset asks first, then forgets.
        reset = quiz.locator(".distlab-quiz-reset")
        reset.click()
        confirm = reset.filter(has_text="Confirm reset")
        confirm.wait_for()
        assert _whole("of 10 answered").search(score.inner_text())
        assert "Reset forgets your" in quiz.inner_text()
        confirm.click()
    score.filter(has_text=_whole("0 / 10 correct")).wait_for()
    return score


@pytest.mark.parametrize("ui", ["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def test_chapter_quiz_in_the_browser(page: Any, jupyter_server: JupyterServer, ui: str) -> None:
    """Empty check prompts, a wrong answer explains, ten right answers score 10 / 10."""
    score = _start(page, jupyter_server, ui)
    first, last = QUIZ.questions[0], QUIZ.questions[-1]

    feedback = _check(page, first)
    feedback.filter(has_text="Choose an answer first.").wait_for()
    assert _whole("0 of 10 answered").search(score.inner_text())

    wrong = next(option.text for option in first.options if not option.correct)
    _option(page, first, wrong).check()
    feedback = _check(page, first)
    feedback.filter(has_text=INCORRECT).wait_for()
    assert first.explanation in feedback.inner_text()
    score.filter(has_text=_whole("1 of 10 answered")).wait_for()
    assert _whole("0 / 10 correct").search(score.inner_text())

    for question in QUIZ.questions[:-1]:
        right = next(option.text for option in question.options if option.correct)
        _option(page, question, right).check()
        feedback = _check(page, question)
        feedback.filter(has_text=CORRECT).wait_for()
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
    _question(page, last).locator(".distlab-quiz-feedback").filter(has_text=CORRECT).wait_for()

    score.filter(has_text=_whole("10 / 10 correct")).wait_for()
    assert _whole("10 of 10 answered").search(score.inner_text())
    summary = page.locator(".distlab-quiz-summary")
    summary.filter(has_text="Quiz complete: 10 / 10 correct.").wait_for()
    assert "quiz_results.json" in page.locator(".distlab-quiz").inner_text()
    summary.scroll_into_view_if_needed()
    screenshot(page, f"chapter_quiz_{ui}")


LONG_OPTION = "A long option " + "that wraps onto more lines " * 12 + "and ends here."

# Every option label in the quiz, read whole: not cut (checkbox labels are one
# ellipsised line in ipywidgets) and not drawn over the next control (radio labels
# have a fixed height there). Returns the labels that fail, with their boxes.
_LABEL_PROBLEMS_JS = """() => {
  const problems = [];
  for (const box of document.querySelectorAll('.distlab-quiz-question')) {
    const labels = Array.from(box.querySelectorAll(
      'label.widget-label-basic, .widget-radio-box label'));
    const check = box.querySelector('button').getBoundingClientRect();
    labels.forEach((label, i) => {
      const rect = label.getBoundingClientRect();
      const next = i + 1 < labels.length ? labels[i + 1].getBoundingClientRect() : check;
      if (label.scrollWidth > label.clientWidth || label.scrollHeight > label.clientHeight
          || rect.bottom > next.top + 1) {
        problems.push([label.textContent.slice(0, 30), rect.bottom, next.top,
                       label.scrollWidth, label.clientWidth]);
      }
    });
  }
  return problems;
}"""


MARKUP_QUIZ = {
    "id": "99_markup_check",
    "title": "Markup <i>check</i>",
    "questions": [
        {
            "id": "tags",
            "type": "multiple",
            "prompt": "Is `x < y` true when <b>x</b> is 1? <script>window.pwned = 1</script>",
            "options": [
                {"text": "Lose it <b>entirely</b>", "correct": True},
                {"text": "a < b & c", "correct": True},
                {"text": "Plain"},
                {"text": LONG_OPTION},
            ],
            "explanation": "Use `<timeouts>` & retries.",
        },
        {
            "id": "radio",
            "type": "single",
            "prompt": "Pick <em>one</em>.",
            "options": [
                {"text": "<img src=x onerror=window.pwned=2>", "correct": True},
                {"text": LONG_OPTION},
                {"text": "b"},
            ],
            "explanation": "It is the first.",
        },
    ],
}


def test_markup_in_quiz_text_is_shown_as_text(page: Any, jupyter_server: JupyterServer) -> None:
    """Tags in prompts, options and explanations show as typed; a long option shows whole."""
    import nbformat
    import yaml

    folder = jupyter_server.root / "quizzes"
    (folder / "99_markup_check.yaml").write_text(yaml.safe_dump(MARKUP_QUIZ), encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell('from distlab import quiz\nquiz.show("99_markup_check")')]
    nbformat.write(nb, folder / "99_markup_check.ipynb")

    open_notebook(page, jupyter_server, "quizzes/99_markup_check.ipynb", ui="lab")
    run_all(page)
    quiz = page.locator(".distlab-quiz")
    quiz.wait_for()
    tags = page.locator(".distlab-quiz-question-tags")
    text = tags.inner_text()
    assert "Is x < y true when <b>x</b> is 1? <script>window.pwned = 1</script>" in text
    assert tags.locator("code").first.inner_text() == "x < y"
    # The only markup in the quiz is the engine's own: no tag from the quiz file got through.
    assert quiz.locator("b, script, img, .widget-html-content i").count() == 0
    assert "Pick <em>one</em>." in quiz.inner_text()
    assert "Markup <i>check</i>" in quiz.inner_text()
    tags.get_by_role("checkbox", name="Lose it <b>entirely</b>", exact=True).check()
    tags.get_by_role("checkbox", name="a < b & c", exact=True).check()
    tags.get_by_role("button", name="Check").click()
    feedback = tags.locator(".distlab-quiz-feedback")
    feedback.filter(has_text=CORRECT).wait_for()
    assert "Use <timeouts> & retries." in feedback.inner_text()
    radio = page.locator(".distlab-quiz-question-radio")
    radio.get_by_role("radio", name="<img src=x onerror=window.pwned=2>", exact=True).check()
    radio.get_by_role("button", name="Check").click()
    radio.locator(".distlab-quiz-feedback").filter(has_text=CORRECT).wait_for()
    assert page.evaluate("() => window.pwned") is None
    assert LONG_OPTION in tags.inner_text()
    assert page.evaluate(_LABEL_PROBLEMS_JS) == []
    screenshot(page, "quiz_markup_jupyterlab")


FEEDBACK_QUIZ = {
    "id": "98_feedback_check",
    "title": "Feedback and numbers",
    "questions": [
        {
            "id": "timeout",
            "type": "single",
            "prompt": "A request timed out. What do you know?",
            "options": [
                {
                    "text": "The server never got it",
                    "feedback": "The reply may have been lost: <b>silence</b> says no more.",
                },
                {"text": "Nothing about whether it ran", "correct": True},
            ],
            "explanation": "A timeout says only that no reply came in time.",
        },
        {
            "id": "share",
            "type": "numeric",
            "prompt": "With 10 % loss each way and 3 tries, what share of requests get an answer?",
            "answer": 99.3,
            "tolerance": 0.1,
            "unit": "%",
            "explanation": "Three independent tries all fail with 0.19^3.",
        },
    ],
    "predictions": [
        {
            "id": "guess",
            "type": "numeric",
            "prompt": "How many calls reach the dead backend?",
            "answer": 5,
            "tolerance": 0,
            "unit": "calls",
            "explanation": "Five, then the breaker opens.",
        }
    ],
}


def _write_notebook(folder: Any, name: str, sources: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, folder / name)


@pytest.mark.parametrize("ui", ["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def test_option_feedback_and_numeric_answers_in_the_browser(
    page: Any, jupyter_server: JupyterServer, ui: str
) -> None:
    """A wrong option shows its own explanation; a number is typed, refused with a comma, graded."""
    import yaml

    folder = jupyter_server.root / "quizzes"
    slug = f"98_feedback_check_{ui}"  # its own results per UI: the server is shared
    data = dict(FEEDBACK_QUIZ, id=slug)
    (folder / f"{slug}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    _write_notebook(
        folder,
        f"{slug}.ipynb",
        [
            f'from distlab import quiz\nquiz.predict("{slug}", "guess")',
            f'quiz.show("{slug}")',
        ],
    )
    open_notebook(page, jupyter_server, f"quizzes/{slug}.ipynb", ui=ui)
    run_all(page)
    page.locator(".distlab-quiz-score").wait_for()

    timeout = page.locator(".distlab-quiz-question-timeout")
    timeout.get_by_role("radio", name="The server never got it", exact=True).check()
    timeout.get_by_role("button", name="Check").click()
    feedback = timeout.locator(".distlab-quiz-feedback")
    feedback.filter(has_text=INCORRECT).wait_for()
    own = feedback.locator(".distlab-quiz-option-feedback")
    assert "“The server never got it”: The reply may have been lost: <b>silence</b>" in (
        own.inner_text()
    )
    assert feedback.locator("b").count() == 0  # the markup in the feedback is shown as text
    assert "A timeout says only" in feedback.inner_text()

    share = page.locator(".distlab-quiz-question-share")
    assert "%" in share.inner_text()  # the unit beside the box
    box = share.get_by_role("textbox")
    check = share.get_by_role("button", name="Check")
    check.click()
    feedback = share.locator(".distlab-quiz-feedback")
    feedback.filter(has_text="Enter a number first.").wait_for()
    box.fill("99,3")
    check.click()
    feedback.filter(has_text="use a point for decimals").wait_for()
    score = page.locator(".distlab-quiz-score")
    assert _whole("1 of 2 answered").search(score.inner_text())
    box.fill("99.3")
    check.click()
    feedback.filter(has_text=CORRECT).wait_for()
    score.filter(has_text=_whole("1 / 2 correct")).wait_for()

    prediction = page.locator(".distlab-quiz-prediction")
    assert "Predict:" in prediction.inner_text()
    assert "calls" in prediction.inner_text()
    prediction.get_by_role("textbox").fill("30")
    prediction.get_by_role("button", name="Check").click()
    prediction.locator(".distlab-quiz-feedback").filter(has_text=INCORRECT).wait_for()
    assert "Five, then the breaker opens." in prediction.inner_text()
    assert _whole("1 / 2 correct").search(score.inner_text())  # a prediction is not scored
    assert _whole("2 of 2 answered").search(score.inner_text())
    screenshot(page, f"quiz_feedback_numeric_{ui}")


def _menu(page: Any, menu: str, command: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(f'li.lm-Menu-item[data-command="{command}"]').click()


def test_score_survives_a_kernel_restart(page: Any, jupyter_server: JupyterServer) -> None:
    """Answer two questions, restart the kernel, run again: the score is still there."""
    score = _start(page, jupyter_server, "lab")
    first, second = QUIZ.questions[0], QUIZ.questions[1]
    right = next(option.text for option in first.options if option.correct)
    _option(page, first, right).check()
    _check(page, first).filter(has_text=CORRECT).wait_for()
    wrong = next(option.text for option in second.options if not option.correct)
    _option(page, second, wrong).check()
    _check(page, second).filter(has_text=INCORRECT).wait_for()
    score.filter(has_text=_whole("1 / 10 correct")).wait_for()

    _menu(page, "Kernel", "kernelmenu:restart")
    page.locator(".jp-Dialog .jp-mod-accept").click()  # confirm "Restart Kernel?"
    page.wait_for_function(KERNEL_READY_JS)
    # Clear the old outputs first, so only the re-run's widget can match below.
    _menu(page, "Edit", "editmenu:clear-all")
    assert page.locator(".distlab-quiz").count() == 0
    run_all(page)

    score = page.locator(".distlab-quiz-score")
    score.filter(has_text=_whole("1 / 10 correct")).wait_for()
    assert _whole("2 of 10 answered").search(score.inner_text())
    screenshot(page, "chapter_quiz_after_restart")
