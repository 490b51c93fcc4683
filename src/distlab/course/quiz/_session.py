"""Grading and scoring of one quiz for one student, without widgets.

Scoring rule: every Check replaces the question's answer, and the score counts the
questions whose *latest* checked answer is correct. Saved answers are graded again
against the quiz file when a session starts, so fixing an answer key fixes scores.
Predictions (the quiz's `predictions:`) are checked and saved the same way, under the
same quiz id, but never counted in the score, the progress or the summary.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from distlab.course.quiz._schema import Option, Question, Quiz
from distlab.course.quiz._store import ResultStore, SavedAnswer

__all__ = [
    "Answer",
    "CheckResult",
    "OptionFeedback",
    "QuizSession",
    "Summary",
    "option_feedback",
    "read_number",
]

CheckStatus = Literal["empty", "invalid", "correct", "incorrect"]


@dataclass(frozen=True)
class Answer:
    """A graded answer to one question.

    Attributes:
        selected: indices of the selected options, in file order (empty for numeric).
        correct: whether it matches the correct options exactly, or, for a numeric
            question, lies within the tolerance of the answer.
        attempts: how many times Check graded this question.
        value: the number given to a numeric question (None for the other types).
    """

    selected: frozenset[int]
    correct: bool
    attempts: int
    value: float | None = None


@dataclass(frozen=True)
class CheckResult:
    """What one press of Check did.

    Attributes:
        status: "empty" (nothing selected or typed, nothing changed), "invalid" (a numeric
            answer that is not a number, nothing changed), "correct" or "incorrect".
        question: the question checked.
        message: for "invalid", what is wrong with the input, for the student.
    """

    status: CheckStatus
    question: Question
    message: str = ""


@dataclass(frozen=True)
class OptionFeedback:
    """The feedback of one option, for one answer.

    Attributes:
        option: the option; its `feedback` is the text to show.
        chosen: whether the student chose it.
    """

    option: Option
    chosen: bool


def option_feedback(question: Question, selected: Iterable[int]) -> tuple[OptionFeedback, ...]:
    """Return the option feedback to show for an answer, in file order.

    One-answer questions show the feedback of the chosen option, right or wrong.
    A "select all that apply" question shows the feedback of every option the student
    got wrong: chosen but not correct, or correct but left out. Options without
    feedback are skipped.

    Args:
        question: the question answered.
        selected: indices of the selected options, in file order.
    """
    chosen = frozenset(selected)
    shown: list[OptionFeedback] = []
    for index, option in enumerate(question.options):
        if not option.feedback:
            continue
        picked = index in chosen
        if (question.type == "multiple" and picked != option.correct) or (
            question.type != "multiple" and picked
        ):
            shown.append(OptionFeedback(option, picked))
    return tuple(shown)


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+(,\d+)+")


def read_number(text: str, *, unit: str = "") -> float:
    """Read the number a student typed: "72.9", "-3", "1e-3", "72.9 %" when the unit is "%".

    Args:
        text: what was typed.
        unit: the question's unit; typing it after the number is allowed.

    Returns:
        The number.

    Raises:
        ValueError: the text is empty or not a plain decimal number; the message says
            what to type instead (a decimal comma, "72,9", is named as such).
    """
    raw = text.strip()
    if unit and raw.endswith(unit):
        raw = raw[: -len(unit)].strip()
    if not raw:
        raise ValueError("Enter a number first.")
    if _DECIMAL_COMMA.fullmatch(raw):
        raise ValueError(
            f"{raw!r} has a comma: use a point for decimals (72.9, not 72,9)"
            " and no thousands separator (1000, not 1,000)."
        )
    if not _NUMBER.fullmatch(raw):
        raise ValueError(f"{raw!r} is not a number: type digits only, such as 72.9.")
    value = float(raw)
    if not math.isfinite(value):  # e.g. "1e999"
        raise ValueError(f"{raw!r} is too large: type an ordinary number.")
    return value


@dataclass(frozen=True)
class Summary:
    """The result of a finished quiz.

    Attributes:
        score: questions answered correctly.
        total: questions in the quiz.
        to_review: (number, question) of every question answered wrongly, numbers from 1.
    """

    score: int
    total: int
    to_review: tuple[tuple[int, Question], ...]

    def text(self) -> str:
        """Return the summary as one plain sentence or two."""
        head = f"Quiz complete: {self.score} / {self.total} correct."
        if not self.to_review:
            return head + " Every answer is right."
        numbers = ", ".join(str(number) for number, _ in self.to_review)
        return f"{head} Read the explanations of question(s) {numbers} again."


def _grade(question: Question, selected: frozenset[int]) -> bool:
    # Multiple choice is all or nothing: exactly the correct options.
    return selected == question.correct_indices


def _grade_number(question: Question, value: float) -> bool:
    assert question.answer is not None
    # A hair of slack so that a tolerance of 0.1 accepts 72.8 for 72.9 despite binary floats.
    slack = 1e-9 * max(1.0, abs(question.answer))
    return abs(value - question.answer) <= question.tolerance + slack


class QuizSession:
    """One student's answers to one quiz: check, score, reset, persist.

    Args:
        quiz: the quiz.
        store: where answers are saved; default the per-user results file.
        shuffle: shuffle options of single and multiple questions; default `quiz.shuffle`.
        seed: seed of the shuffle; default `quiz.seed`. The order depends only on
            the seed, the quiz id and the question id.
    """

    def __init__(
        self,
        quiz: Quiz,
        *,
        store: ResultStore | None = None,
        shuffle: bool | None = None,
        seed: int | None = None,
    ) -> None:
        self.quiz = quiz
        self.store = store if store is not None else ResultStore()
        do_shuffle = quiz.shuffle if shuffle is None else shuffle
        shuffle_seed = quiz.seed if seed is None else seed
        self._order: dict[str, tuple[int, ...]] = {}
        for question in (*quiz.questions, *quiz.predictions):
            order = list(range(len(question.options)))
            if do_shuffle and question.type != "true_false":
                random.Random(f"{shuffle_seed}:{quiz.id}:{question.id}").shuffle(order)
            self._order[question.id] = tuple(order)
        self._answers: dict[str, Answer] = {}
        # Questions whose saved answer names options the quiz file no longer has. The old
        # answer stays in the file until the next Check; `notices` says why it is not shown.
        self._stale: set[str] = set()
        for qid, saved in self.store.load(quiz.id).items():
            answer = self._restore(qid, saved)
            if answer is not None:
                self._answers[qid] = answer
            elif any(question.id == qid for question in (*quiz.questions, *quiz.predictions)):
                self._stale.add(qid)  # an answer to a removed question is simply not shown

    def _restore(self, question_id: str, saved: SavedAnswer) -> Answer | None:
        try:
            question = self.quiz.question(question_id)
        except KeyError:
            return None  # the question was removed from the file
        if question.type == "numeric":
            if len(saved.selected) != 1:
                return None
            try:
                value = read_number(saved.selected[0])
            except ValueError:
                return None
            return Answer(frozenset(), _grade_number(question, value), saved.attempts, value)
        texts = [option.text for option in question.options]
        if not saved.selected or any(text not in texts for text in saved.selected):
            return None  # an option was renamed: the old answer means nothing now
        selected = frozenset(texts.index(text) for text in saved.selected)
        if question.type != "multiple" and len(selected) != 1:
            return None
        return Answer(selected, _grade(question, selected), saved.attempts)

    @property
    def notices(self) -> list[str]:
        """Messages for the student, oldest first.

        Problems with the results file (moved aside, not saved), then saved answers that
        no longer match the quiz file.
        """
        stale = [
            str(number)
            for number, question in enumerate(self.quiz.questions, start=1)
            if question.id in self._stale and question.id not in self._answers
        ]
        if not stale:
            return list(self.store.notices)
        return [
            *self.store.notices,
            f"This quiz was changed after you answered question(s) {', '.join(stale)}: "
            "your saved answer no longer matches its options, so answer it again.",
        ]

    def is_stale(self, question_id: str) -> bool:
        """Return whether the saved answer to this question no longer matches the quiz file."""
        return question_id in self._stale and question_id not in self._answers

    def display_order(self, question_id: str) -> tuple[int, ...]:
        """Return the option indices (file order) in the order they are shown."""
        return self._order[question_id]

    def display_options(self, question_id: str) -> tuple[Option, ...]:
        """Return the options of a question in the order they are shown."""
        question = self.quiz.question(question_id)
        return tuple(question.options[i] for i in self._order[question_id])

    def answer(self, question_id: str) -> Answer | None:
        """Return the latest checked answer to a question, or None."""
        self.quiz.question(question_id)  # KeyError for an unknown id
        return self._answers.get(question_id)

    def check(self, question_id: str, selected: Iterable[int]) -> CheckResult:
        """Grade a selection, remember it and save it.

        Args:
            question_id: the question.
            selected: indices of the selected options, in file order (not display order).

        Returns:
            The result; with nothing selected the status is "empty" and nothing changes.

        Raises:
            KeyError: unknown question id.
            ValueError: an index out of range, or several options for a one-answer question.
        """
        question = self.quiz.question(question_id)
        if question.type == "numeric":
            raise ValueError(f"question {question_id!r} is numeric: use check_number()")
        chosen = frozenset(selected)
        if not chosen:
            return CheckResult("empty", question)
        if any(not 0 <= i < len(question.options) for i in chosen):
            raise ValueError(
                f"option indices must be in 0..{len(question.options) - 1}, got {sorted(chosen)}"
            )
        if question.type != "multiple" and len(chosen) > 1:
            raise ValueError(f"question {question_id!r} takes one option, got {sorted(chosen)}")
        correct = _grade(question, chosen)
        previous = self._answers.get(question_id)
        attempts = (previous.attempts if previous else 0) + 1
        self._answers[question_id] = Answer(chosen, correct, attempts)
        self.store.save(
            self.quiz.id,
            question_id,
            SavedAnswer(
                selected=tuple(question.options[i].text for i in sorted(chosen)),
                correct=correct,
                attempts=attempts,
                checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
        return CheckResult("correct" if correct else "incorrect", question)

    def check_number(self, question_id: str, text: str) -> CheckResult:
        """Grade the number typed for a numeric question, remember it and save it.

        Args:
            question_id: a numeric question (or prediction).
            text: what the student typed (see `read_number`).

        Returns:
            The result: "empty" for blank input and "invalid" for text that is not a
            number (its `message` says what to type; nothing changes), else "correct"
            when the number is within the question's tolerance, else "incorrect".

        Raises:
            KeyError: unknown question id.
            ValueError: the question is not numeric.
        """
        question = self.quiz.question(question_id)
        if question.type != "numeric":
            raise ValueError(f"question {question_id!r} is {question.type}, not numeric")
        if not text.strip():
            return CheckResult("empty", question)
        try:
            value = read_number(text, unit=question.unit)
        except ValueError as exc:
            return CheckResult("invalid", question, str(exc))
        correct = _grade_number(question, value)
        previous = self._answers.get(question_id)
        attempts = (previous.attempts if previous else 0) + 1
        self._answers[question_id] = Answer(frozenset(), correct, attempts, value)
        self.store.save(
            self.quiz.id,
            question_id,
            SavedAnswer(
                selected=(repr(value),),
                correct=correct,
                attempts=attempts,
                checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )
        return CheckResult("correct" if correct else "incorrect", question)

    def reset(self) -> None:
        """Forget every answer to the quiz's questions, here and in the results file.

        Predictions are kept: they belong to the lesson, not to the quiz at its end.
        """
        ids = {question.id for question in self.quiz.questions}
        for qid in ids:
            self._answers.pop(qid, None)
        self._stale -= ids
        self.store.clear(self.quiz.id, keep=[p.id for p in self.quiz.predictions])

    def _scored(self) -> list[Answer]:
        return [
            self._answers[question.id]
            for question in self.quiz.questions
            if question.id in self._answers
        ]

    @property
    def total(self) -> int:
        """Return the number of questions."""
        return len(self.quiz.questions)

    @property
    def answered(self) -> int:
        """Return the number of questions with a checked answer (predictions not counted)."""
        return len(self._scored())

    @property
    def score(self) -> int:
        """Return the number of questions whose latest checked answer is correct."""
        return sum(answer.correct for answer in self._scored())

    @property
    def complete(self) -> bool:
        """Return whether every question has a checked answer."""
        return self.answered == self.total

    def score_text(self) -> str:
        """Return the score as "7 / 10 correct"."""
        return f"{self.score} / {self.total} correct"

    def progress_text(self) -> str:
        """Return the progress as "8 of 10 answered"."""
        return f"{self.answered} of {self.total} answered"

    def summary(self) -> Summary | None:
        """Return the final summary, or None while a question is unanswered."""
        if not self.complete:
            return None
        wrong = tuple(
            (number, question)
            for number, question in enumerate(self.quiz.questions, start=1)
            if not self._answers[question.id].correct
        )
        return Summary(self.score, self.total, wrong)
