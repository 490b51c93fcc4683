"""The widget view of a quiz: a thin layer over `QuizSession`.

Native inputs only (RadioButtons for one answer, one Checkbox per option for
"select all that apply", Button for Check and Reset), so every control is reachable
with Tab and works with Space or Enter. All text goes through `render_inline`
because the HTML widget does not escape.
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets

from distlab.course.quiz._schema import Question, load_quiz
from distlab.course.quiz._session import CheckStatus, QuizSession
from distlab.course.quiz._store import ResultStore
from distlab.course.quiz._text import render_inline

__all__ = ["QuestionView", "QuizView", "build", "show"]

_CHOOSE_FIRST = "Choose an answer first."
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


def _status_html(status: CheckStatus, question: Question) -> str:
    if status == "empty":
        return f'<div role="status">{_CHOOSE_FIRST}</div>'
    # The word carries the meaning; the colour is only a second cue.
    word, colour = ("Correct.", _GOOD) if status == "correct" else ("Incorrect.", _BAD)
    return (
        f'<div role="status"><strong style="color: {colour}">{word}</strong> '
        f"{render_inline(question.explanation)}</div>"
    )


_CONFIRM_RESET = "Confirm reset"


class QuestionView:
    """The widgets of one question.

    Args:
        quiz_view: the quiz the question belongs to (its session grades and saves).
        question: the question to show.
        number: its position in the quiz, from 1.

    Attributes:
        question: the question shown.
        number: its position in the quiz, from 1.
        prompt: HTML widget with the numbered prompt.
        choice: RadioButtons for single and true/false questions (None for multiple);
            each option's value is its index in file order.
        checkboxes: one Checkbox per option for multiple questions, in display order.
        check_button: grades the selection.
        feedback: HTML widget: "Correct."/"Incorrect." and the explanation, or the
            "Choose an answer first." prompt.
        widget: the box holding all of them.
    """

    def __init__(self, quiz_view: QuizView, question: Question, number: int) -> None:
        self._quiz_view = quiz_view
        session = quiz_view.session
        self.question = question
        self.number = number
        hint = " <em>(Select all that apply.)</em>" if question.type == "multiple" else ""
        self.prompt = widgets.HTML(
            f"<strong>{number}.</strong> {render_inline(question.prompt)}{hint}"
        )
        order = session.display_order(question.id)
        self.choice: widgets.RadioButtons | None = None
        self.checkboxes: list[widgets.Checkbox] = []
        self._checkbox_indices: list[int] = []
        if question.type == "multiple":
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
            inputs: widgets.Widget = widgets.VBox(self.checkboxes)
        else:
            # Option labels are set as text by the front end, so they need no escaping.
            self.choice = widgets.RadioButtons(
                options=[(question.options[index].text, index) for index in order],
                value=None,
                layout=widgets.Layout(width="auto"),
            )
            inputs = self.choice
        self.check_button = widgets.Button(
            description="Check", tooltip=f"Check your answer to question {number}"
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
        """Return the selected options as indices in file order."""
        if self.choice is not None:
            return [] if self.choice.value is None else [int(self.choice.value)]
        return [
            i for i, box in zip(self._checkbox_indices, self.checkboxes, strict=True) if box.value
        ]

    def _on_check(self) -> None:
        self._quiz_view.cancel_reset()
        result = self._quiz_view.session.check(self.question.id, self.selected())
        self.feedback.value = _status_html(result.status, self.question)
        self._quiz_view.refresh()

    def _show_saved(self) -> None:
        answer = self._quiz_view.session.answer(self.question.id)
        if answer is None:
            return
        if self.choice is not None:
            (self.choice.value,) = answer.selected
        else:
            for index, box in zip(self._checkbox_indices, self.checkboxes, strict=True):
                box.value = index in answer.selected
        status: CheckStatus = "correct" if answer.correct else "incorrect"
        self.feedback.value = _status_html(status, self.question)

    def clear(self) -> None:
        """Unselect every option and hide the feedback."""
        if self.choice is not None:
            self.choice.value = None
        for box in self.checkboxes:
            box.value = False
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
            QuestionView(self, question, number)
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
