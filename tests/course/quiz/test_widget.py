"""The widgets: show() displays once; prompts, explanations and labels render as text.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from distlab.course.quiz import (
    PredictionView,
    QuizView,
    build,
    build_prediction,
    predict,
    show,
)
from tests import REPO
from tests.course.quiz.helpers import (
    RICH,
    pick,
    write_quiz,
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


def test_predict_displays_one_prediction_once_and_returns_none(
    rich_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict() shows the one prediction asked for, labelled, without a score or Reset."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    assert predict(rich_path, "guess") is None  # type: ignore[func-returns-value]
    assert len(shown) == 1
    view = build_prediction(rich_path, "guess")
    assert isinstance(view, PredictionView)
    assert "<strong>Predict:</strong> Will the healthy endpoint" in view.question_view.prompt.value
    assert "distlab-quiz-prediction" in view.widget._dom_classes
    texts = [child.value for child in view.widget.children if hasattr(child, "value")]
    assert not any("correct" in str(text) and "/" in str(text) for text in texts)
    question = view.question_view
    question.check_button.click()
    assert "Choose an answer first." in question.feedback.value
    pick(question, "Yes")
    question.check_button.click()
    assert "Incorrect." in question.feedback.value
    assert "Watch the worker pool." in question.feedback.value
    assert view.session.answered == 0


def test_numeric_prediction_takes_a_number(rich_path: Path) -> None:
    """A numeric prediction has the same text box as a numeric question."""
    view = build_prediction(rich_path, "how_many")
    question = view.question_view
    assert question.number_input is not None and question.unit is None
    question.number_input.value = "5"
    question.check_button.click()
    assert "Correct." in question.feedback.value
    assert "Correct." in build_prediction(rich_path, "how_many").question_view.feedback.value


@pytest.mark.parametrize("name", ["pick", "nope"])
def test_predict_with_an_unknown_id_lists_the_predictions(
    rich_path: Path, distlab_home: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id that is not a prediction (even a quiz question's) raises KeyError listing them all."""
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    with pytest.raises(KeyError, match=r"has no prediction .* \(predictions: guess, how_many\)"):
        predict(rich_path, name)
    assert shown == []
    assert not (distlab_home / "quiz_results.json").exists()


def test_a_changed_prediction_asks_to_be_answered_again(tmp_path: Path, rich_path: Path) -> None:
    """A saved prediction whose option was renamed is not shown, and the view says why."""
    view = build_prediction(rich_path, "guess")
    pick(view.question_view, "No")
    view.question_view.check_button.click()
    changed = copy.deepcopy(RICH)
    changed["predictions"][0]["options"][1]["text"] = "No, it starves"
    again = build_prediction(write_quiz(tmp_path, changed), "guess")
    assert again.question_view.selected() == []
    assert "This prediction was changed after you answered it" in again.notice.value
    assert build(write_quiz(tmp_path, changed)).notice.value == ""  # not the quiz's business
