"""The widget view of a quiz: a thin layer over `QuizSession`.

Native inputs only (RadioButtons for one answer, one Checkbox per option for
"select all that apply", a Text box for a number, Button for Check and Reset), so every
control is reachable with Tab and works with Space or Enter. All text goes through
`render_inline` (or `html.escape`) because the HTML widget does not escape.

`show(slug)` displays the quiz's questions with a score; `predict(slug, id)` displays
one of its predictions, alone and unscored, before the lesson cell that reveals it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

from distlab.course.quiz._schema import Question, load_quiz
from distlab.course.quiz._session import CheckResult, CheckStatus, QuizSession, option_feedback
from distlab.course.quiz._store import ResultStore
from distlab.course.quiz._text import render_inline

__all__ = [
    "PredictionView",
    "QuestionView",
    "QuizView",
    "build",
    "build_prediction",
    "predict",
    "show",
]

_CHOOSE_FIRST = "Choose an answer first."
_ENTER_FIRST = "Enter a number first."
_GOOD = "var(--jp-success-color1, #2e7d32)"
_BAD = "var(--jp-error-color1, #c62828)"
# Scoped to the quiz so no other output changes. HTML widgets use the one-line widget
# height as line height, which spreads wrapped explanations far apart. ipywidgets gives a
# checkbox label one line, cut with an ellipsis, and a radio label a fixed height, so a
# long option would be cut off or drawn over the next one: let both wrap, the input
# (placed after the text in the DOM) first.
_STYLE = """<style>
.distlab-quiz .widget-html-content { line-height: 1.5; }
.distlab-quiz .widget-checkbox { height: auto; }
.distlab-quiz .widget-checkbox .widget-label-basic {
  white-space: normal; overflow: visible; display: flex; align-items: flex-start;
}
.distlab-quiz .widget-checkbox .widget-label-basic span { line-height: 1.5; }
.distlab-quiz .widget-checkbox input {
  flex: none; align-self: flex-start; height: auto; margin-top: 0.2em;
}
.distlab-quiz .widget-radio-box label {
  height: auto; line-height: 1.5; display: flex; align-items: baseline; margin-bottom: 0.25em;
}
.distlab-quiz .widget-radio-box input { order: -1; flex: none; height: auto; }
</style>"""


def _option_feedback_html(question: Question, selected: Iterable[int]) -> str:
    items = []
    for shown in option_feedback(question, selected):
        text = html.escape(shown.option.text)
        label = f"“{text}”" if shown.chosen else f"You left out “{text}”"
        items.append(f"<li><strong>{label}</strong>: {render_inline(shown.option.feedback)}</li>")
    if not items:
        return ""
    return f'<ul class="distlab-quiz-option-feedback">{"".join(items)}</ul>'


def _status_html(
    status: CheckStatus,
    question: Question,
    *,
    selected: Iterable[int] = (),
    message: str = "",
) -> str:
    if status == "empty":
        prompt = _ENTER_FIRST if question.type == "numeric" else _CHOOSE_FIRST
        return f'<div role="status">{prompt}</div>'
    if status == "invalid":
        return f'<div role="status" style="color: {_BAD}">{html.escape(message)}</div>'
    # The word carries the meaning; the colour is only a second cue.
    word, colour = ("Correct.", _GOOD) if status == "correct" else ("Incorrect.", _BAD)
    note = (
        f'<p class="distlab-quiz-note"><em>Course note:</em> {render_inline(question.note)}</p>'
        if question.note
        else ""
    )
    return (
        f'<div role="status"><strong style="color: {colour}">{word}</strong> '
        f"{_option_feedback_html(question, selected)}"
        f"{render_inline(question.explanation)}{note}</div>"
    )


_CONFIRM_RESET = "Confirm reset"


class QuestionView:
    """The widgets of one question (or prediction).

    Args:
        session: grades and saves the answers.
        question: the question to show.
        label: shown in bold before the prompt ("3." in a quiz, "Predict:" for a prediction).
        on_check: called after every press of Check (the quiz updates its score).
        number: its position in the quiz, from 1 (0 for a prediction).

    Attributes:
        question: the question shown.
        number: its position in the quiz, from 1 (0 for a prediction).
        prompt: HTML widget with the labelled prompt.
        choice: RadioButtons for single and true/false questions (None otherwise);
            each option's value is its index in file order.
        checkboxes: one Checkbox per option for multiple questions, in display order.
        number_input: Text box of a numeric question (None otherwise).
        unit: Label with the unit beside the Text box (None without a unit).
        check_button: grades the selection.
        feedback: HTML widget: "Correct."/"Incorrect.", the feedback of the options the
            answer got wrong, the explanation and the course note; or the "Choose an
            answer first." prompt, or what is wrong with a typed number.
        widget: the box holding all of them.
    """

    def __init__(
        self,
        session: QuizSession,
        question: Question,
        *,
        label: str,
        on_check: Callable[[], None] | None = None,
        number: int = 0,
    ) -> None:
        self._session = session
        self._on_checked = on_check
        self.question = question
        self.number = number
        hint = " <em>(Select all that apply.)</em>" if question.type == "multiple" else ""
        self.prompt = widgets.HTML(
            f"<strong>{html.escape(label)}</strong> {render_inline(question.prompt)}{hint}"
        )
        order = session.display_order(question.id)
        self.choice: widgets.RadioButtons | None = None
        self.checkboxes: list[widgets.Checkbox] = []
        self._checkbox_indices: list[int] = []
        self.number_input: widgets.Text | None = None
        self.unit: widgets.Label | None = None
        if question.type == "numeric":
            # A Text box, not FloatText: a student who types "72,9" gets a sentence
            # saying what to type, not a silently changed number.
            self.number_input = widgets.Text(
                value="",
                placeholder="a number, e.g. 12.5",
                description="Answer:",
                layout=widgets.Layout(width="16em"),
            )
            parts: list[widgets.Widget] = [self.number_input]
            if question.unit:
                self.unit = widgets.Label(question.unit)
                parts.append(self.unit)
            inputs: widgets.Widget = widgets.HBox(parts)
        elif question.type == "multiple":
            for index in order:
                self.checkboxes.append(
                    widgets.Checkbox(
                        value=False,
                        description=question.options[index].text,
                        indent=False,
                        layout=widgets.Layout(width="auto"),
                    )
                )
                self._checkbox_indices.append(index)
            inputs = widgets.VBox(self.checkboxes)
        else:
            # Option labels are set as text by the front end, so they need no escaping.
            self.choice = widgets.RadioButtons(
                options=[(question.options[index].text, index) for index in order],
                value=None,
                layout=widgets.Layout(width="auto"),
            )
            inputs = self.choice
        what = f"question {number}" if number else "this prediction"
        self.check_button = widgets.Button(
            description="Check", tooltip=f"Check your answer to {what}"
        )
        self.check_button.on_click(lambda _button: self._on_check())
        self.feedback = widgets.HTML("")
        self.widget = widgets.VBox(
            [self.prompt, inputs, self.check_button, self.feedback],
            layout=widgets.Layout(margin="0 0 1em 0"),
        )
        # Stable class names for styling and for the real-browser tests.
        self.widget.add_class("distlab-quiz-question")
        self.widget.add_class(f"distlab-quiz-question-{question.id}")
        self.feedback.add_class("distlab-quiz-feedback")
        self._show_saved()

    def selected(self) -> list[int]:
        """Return the selected options as indices in file order (empty for numeric)."""
        if self.choice is not None:
            return [] if self.choice.value is None else [int(self.choice.value)]
        return [
            i for i, box in zip(self._checkbox_indices, self.checkboxes, strict=True) if box.value
        ]

    def _on_check(self) -> None:
        result: CheckResult
        selected = self.selected()
        if self.number_input is not None:
            result = self._session.check_number(self.question.id, self.number_input.value)
        else:
            result = self._session.check(self.question.id, selected)
        self.feedback.value = _status_html(
            result.status, self.question, selected=selected, message=result.message
        )
        if self._on_checked is not None:
            self._on_checked()

    def _show_saved(self) -> None:
        answer = self._session.answer(self.question.id)
        if answer is None:
            return
        if self.number_input is not None:
            assert answer.value is not None
            self.number_input.value = f"{answer.value:.15g}"
        elif self.choice is not None:
            (self.choice.value,) = answer.selected
        else:
            for index, box in zip(self._checkbox_indices, self.checkboxes, strict=True):
                box.value = index in answer.selected
        status: CheckStatus = "correct" if answer.correct else "incorrect"
        self.feedback.value = _status_html(status, self.question, selected=answer.selected)

    def clear(self) -> None:
        """Unselect every option, empty the number box and hide the feedback."""
        if self.choice is not None:
            self.choice.value = None
        for box in self.checkboxes:
            box.value = False
        if self.number_input is not None:
            self.number_input.value = ""
        self.feedback.value = ""


class QuizView:
    """A whole quiz as widgets: header, questions, score, Reset and summary.

    Args:
        session: the quiz and the student's answers.

    Attributes:
        session: the logic behind the widgets.
        header: title and intro.
        location: says where answers are saved and how the score counts.
        notice: problems with the results file (empty when there are none).
        questions: one QuestionView per question, in quiz order.
        score: "7 / 10 correct" and "8 of 10 answered".
        reset_button: forgets every answer to this quiz; with answers to lose, the first
            press turns it into "Confirm reset" and only the second press forgets.
        reset_note: explains a pending reset (empty otherwise).
        summary: the final summary once every question has been checked.
        widget: the box to display.
    """

    def __init__(self, session: QuizSession) -> None:
        self.session = session
        quiz = session.quiz
        intro = f"<p>{render_inline(quiz.intro)}</p>" if quiz.intro else ""
        self.header = widgets.HTML(f"{_STYLE}<h3>{render_inline(quiz.title)}</h3>{intro}")
        path = html.escape(str(session.store.path))
        self.location = widgets.HTML(
            f"<p>Your answers are saved in <code>{path}</code>, so they survive a kernel restart."
            " The score counts your latest checked answer to each question.</p>"
        )
        self.notice = widgets.HTML("")
        self.questions = [
            QuestionView(
                session, question, label=f"{number}.", on_check=self._on_checked, number=number
            )
            for number, question in enumerate(quiz.questions, start=1)
        ]
        self.score = widgets.HTML("")
        self.reset_button = widgets.Button(
            description="Reset", tooltip="Forget every answer to this quiz", icon="undo"
        )
        self.reset_button.on_click(lambda _button: self._on_reset())
        # Reset is two-step when there is something to lose: the first press asks, the
        # second forgets. A stray click or Enter must not wipe a student's answers.
        self.reset_note = widgets.HTML("")
        self.summary = widgets.HTML("")
        self.widget = widgets.VBox(
            [
                self.header,
                self.location,
                self.notice,
                *(view.widget for view in self.questions),
                self.score,
                self.reset_button,
                self.reset_note,
                self.summary,
            ]
        )
        self.widget.add_class("distlab-quiz")
        self.score.add_class("distlab-quiz-score")
        self.summary.add_class("distlab-quiz-summary")
        self.notice.add_class("distlab-quiz-notice")
        self.reset_button.add_class("distlab-quiz-reset")
        self.refresh()

    def question_view(self, question_id: str) -> QuestionView:
        """Return the view of the question with this id.

        Raises:
            KeyError: no question has this id.
        """
        for view in self.questions:
            if view.question.id == question_id:
                return view
        raise KeyError(f"quiz {self.session.quiz.id!r} has no question {question_id!r}")

    def _on_checked(self) -> None:
        self.cancel_reset()
        self.refresh()

    def refresh(self) -> None:
        """Update score, summary and notices from the session."""
        session = self.session
        self.score.value = (
            f'<div role="status"><strong>{session.score_text()}</strong>'
            f" · {session.progress_text()}</div>"
        )
        summary = session.summary()
        self.summary.value = (
            "" if summary is None else f"<p><strong>{html.escape(summary.text())}</strong></p>"
        )
        self.notice.value = "".join(
            f'<p role="alert" style="color: {_BAD}">{html.escape(message)}</p>'
            for message in session.notices
        )

    @property
    def reset_pending(self) -> bool:
        """Return whether Reset was pressed once and waits for its confirmation."""
        return bool(self.reset_button.description == _CONFIRM_RESET)

    def cancel_reset(self) -> None:
        """Drop a pending reset: the button says Reset again and nothing is forgotten."""
        self.reset_button.description = "Reset"
        self.reset_button.button_style = ""
        self.reset_note.value = ""

    def _on_reset(self) -> None:
        answered = self.session.answered
        if answered and not self.reset_pending:
            self.reset_button.description = _CONFIRM_RESET
            self.reset_button.button_style = "danger"
            plural = "answer" if answered == 1 else "answers"
            self.reset_note.value = (
                f'<p role="alert">Reset forgets your {answered} checked {plural} to this quiz.'
                f" Press <strong>{_CONFIRM_RESET}</strong> to go on, or check any answer to"
                " keep them.</p>"
            )
            return
        self.cancel_reset()
        self.session.reset()
        for view in self.questions:
            view.clear()
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # Lets `build(...)` as the last line of a cell display the quiz.
        return self.widget._repr_mimebundle_(**kwargs)


def build(
    name: str | os.PathLike[str],
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    results_path: str | os.PathLike[str] | None = None,
) -> QuizView:
    """Load a quiz and return its widgets without displaying them.

    Args:
        name: a slug ("00_start_here") or a path to a quiz YAML file.
        shuffle: shuffle the options (seeded); default the quiz file's `shuffle`.
        seed: seed of the shuffle; default the quiz file's `seed`.
        results_path: the results file; default `$DISTLAB_HOME/quiz_results.json`
            or `~/.distlab/quiz_results.json`.

    Returns:
        The quiz view; display `view.widget`.

    Raises:
        FileNotFoundError: no such quiz; the message lists the quizzes that exist.
        QuizDataError: the quiz file does not follow the schema.
    """
    quiz = load_quiz(name)
    session = QuizSession(quiz, store=ResultStore(results_path), shuffle=shuffle, seed=seed)
    return QuizView(session)


def show(
    name: str | os.PathLike[str],
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    results_path: str | os.PathLike[str] | None = None,
) -> None:
    """Display a quiz in the notebook: `show("00_start_here")`.

    Takes the same arguments as `build`, and raises the same errors.
    Returns None, so the quiz is displayed once even as the last line of a cell.
    """
    from IPython.display import display

    display(build(name, shuffle=shuffle, seed=seed, results_path=results_path).widget)


class PredictionView:
    """One prediction of a quiz, alone: prompt, inputs, Check and feedback, no score.

    Args:
        session: the quiz's session (the prediction is saved under the quiz id).
        prediction_id: the id of one of the quiz's `predictions`.

    Attributes:
        session: the logic behind the widgets.
        question_view: the prediction's widgets (same controls as a quiz question).
        notice: problems with the results file, or a saved answer that no longer matches.
        widget: the box to display.

    Raises:
        KeyError: the quiz has no such prediction; the message lists the ones it has.
    """

    def __init__(self, session: QuizSession, prediction_id: str) -> None:
        self.session = session
        prediction = session.quiz.prediction(prediction_id)
        self.question_view = QuestionView(
            session, prediction, label="Predict:", on_check=self.refresh
        )
        self.notice = widgets.HTML("")
        note = widgets.HTML(
            "<em>Answer before you run the next cell; it is saved, and it does not count"
            " in the quiz score.</em>"
        )
        self.widget = widgets.VBox(
            [widgets.HTML(_STYLE), self.notice, self.question_view.widget, note]
        )
        self.widget.add_class("distlab-quiz")
        self.widget.add_class("distlab-quiz-prediction")
        self.notice.add_class("distlab-quiz-notice")
        self.refresh()

    def refresh(self) -> None:
        """Show problems with the results file and a saved answer that no longer matches."""
        messages = list(self.session.store.notices)
        if self.session.is_stale(self.question_view.question.id):
            messages.append("This prediction was changed after you answered it: answer it again.")
        self.notice.value = "".join(
            f'<p role="alert" style="color: {_BAD}">{html.escape(message)}</p>'
            for message in messages
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def build_prediction(
    name: str | os.PathLike[str],
    prediction_id: str,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    results_path: str | os.PathLike[str] | None = None,
) -> PredictionView:
    """Load a quiz and return the widgets of one of its predictions, without displaying them.

    Args:
        name: a slug ("06_circuit_breaker") or a path to a quiz YAML file.
        prediction_id: the id of a question under the quiz's `predictions:`.
        shuffle: shuffle the options (seeded); default the quiz file's `shuffle`.
        seed: seed of the shuffle; default the quiz file's `seed`.
        results_path: the results file; default as for `build`.

    Raises:
        FileNotFoundError: no such quiz; the message lists the quizzes that exist.
        QuizDataError: the quiz file does not follow the schema.
        KeyError: the quiz has no such prediction; the message lists its predictions.
    """
    quiz = load_quiz(name)
    quiz.prediction(prediction_id)  # fail before touching the results file
    session = QuizSession(quiz, store=ResultStore(results_path), shuffle=shuffle, seed=seed)
    return PredictionView(session, prediction_id)


def predict(
    name: str | os.PathLike[str],
    prediction_id: str,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    results_path: str | os.PathLike[str] | None = None,
) -> None:
    """Display one prediction of a quiz: `predict("06_circuit_breaker", "cascade")`.

    Takes the same arguments as `build_prediction`, and raises the same errors.
    Returns None, so the prediction is displayed once even as the last line of a cell.
    """
    from IPython.display import display

    display(
        build_prediction(
            name, prediction_id, shuffle=shuffle, seed=seed, results_path=results_path
        ).widget
    )
