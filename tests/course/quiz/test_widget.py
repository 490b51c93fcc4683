"""The widgets: show() displays once; prompts, explanations and labels render as text.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distlab.course.quiz import (
    QuizView,
    build,
    show,
)
from tests import REPO
from tests.course.quiz.helpers import (
    pick,
)

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"


# --- grading and feedback -------------------------------------------------------------


def test_prompts_and_explanations_render_whole_and_escaped(sample_path: Path) -> None:
    """A prompt containing "<" renders whole; tags in quiz text never reach the page as markup."""
    view = build(sample_path)
    question = view.question_view("one")
    assert "Is 1 &lt; 2 and is &lt;b&gt;this&lt;/b&gt; bold?" in question.prompt.value
    assert "<code>f(x) &lt; 3</code>" in question.prompt.value
    assert "<b>this" not in question.prompt.value
    pick(question, "b")
    question.check_button.click()
    assert "&lt;i&gt;not&lt;/i&gt; italic" in question.feedback.value
    assert "Sample &lt;quiz&gt;" in view.header.value
    assert "<code>intro</code>" in view.header.value


def test_option_labels_are_passed_as_plain_text(sample_path: Path) -> None:
    """Radio labels go to the front end unescaped, since it sets them as text, not markup."""
    view = build(sample_path)
    choice = view.question_view("one").choice
    assert choice is not None
    assert [label for label, _ in choice.options] == ["a < b", "b", "c"]


def test_show_displays_the_quiz_once_and_returns_none(
    sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """show() hands one widget box to IPython's display and returns None (no second copy)."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    assert show(sample_path) is None  # type: ignore[func-returns-value]
    assert len(shown) == 1
    assert type(shown[0]).__name__ == "VBox"
    assert isinstance(build(sample_path), QuizView)
