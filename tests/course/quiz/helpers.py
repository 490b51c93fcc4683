"""Quiz test helpers: a sample quiz, writing quiz files, picking options in a view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from distlab.course.quiz import (
    QuestionView,
)
from tests import REPO

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"

SAMPLE: dict[str, Any] = {
    "id": "sample_quiz",
    "title": "Sample <quiz>",
    "intro": "Three questions & one `intro`.",
    "questions": [
        {
            "id": "one",
            "type": "single",
            "prompt": "Is 1 < 2 and is <b>this</b> bold? Call `f(x) < 3`.",
            "options": [{"text": "a < b"}, {"text": "b", "correct": True}, {"text": "c"}],
            "explanation": "Only `b` is right; <i>not</i> italic.",
        },
        {
            "id": "many",
            "type": "multiple",
            "prompt": "Pick every vowel.",
            "options": [
                {"text": "a", "correct": True},
                {"text": "b"},
                {"text": "e", "correct": True},
                {"text": "d"},
            ],
            "explanation": "a and e are vowels.",
        },
        {
            "id": "tf",
            "type": "true_false",
            "prompt": "True or False: the sky is green.",
            "answer": False,
            "explanation": "The sky is blue.",
        },
    ],
}


# The extended format: per-option feedback, a numeric question, a course note, predictions.
RICH: dict[str, Any] = {
    "id": "rich_quiz",
    "title": "Rich quiz",
    "questions": [
        {
            "id": "pick",
            "type": "single",
            "prompt": "A request timed out. What do you know?",
            "options": [
                {
                    "text": "The server never got it",
                    "feedback": "The reply could have been lost instead: `timeout` hides which.",
                },
                {
                    "text": "Nothing about whether it ran",
                    "correct": True,
                    "feedback": "Right: a timeout is silence, not a no.",
                },
                {"text": "It ran twice"},
            ],
            "explanation": "A timeout says only that no reply came in time.",
        },
        {
            "id": "all",
            "type": "multiple",
            "prompt": "Which can a network do to a message?",
            "options": [
                {"text": "Delay it", "correct": True, "feedback": "Queues delay messages."},
                {"text": "Lose it", "correct": True, "feedback": "Buffers overflow."},
                {
                    "text": "Fix its typos",
                    "feedback": "Networks carry bytes, they do not edit them.",
                },
                {"text": "Duplicate it", "correct": True},
            ],
            "explanation": "Delay, loss and duplication all happen.",
        },
        {
            "id": "share",
            "type": "numeric",
            "prompt": "With 10 % loss each way and 3 tries, what share of requests get an answer?",
            "answer": 99.3,
            "tolerance": 0.1,
            "unit": "%",
            "explanation": "One try fails with 1 - 0.9 * 0.9 = 0.19; three fail with 0.19^3.",
            "note": "Only if losses are independent.",
        },
    ],
    "predictions": [
        {
            "id": "guess",
            "type": "single",
            "prompt": "Will the healthy endpoint keep answering?",
            "options": [
                {"text": "Yes", "feedback": "Watch the worker pool."},
                {"text": "No", "correct": True},
            ],
            "explanation": "The pool fills with calls waiting on the hung backend.",
        },
        {
            "id": "how_many",
            "type": "numeric",
            "prompt": "How many calls reach the dead backend?",
            "answer": 5,
            "tolerance": 0,
            "explanation": "Five: then the breaker opens.",
        },
    ],
}


@pytest.fixture(autouse=True)
def distlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test its own DISTLAB_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("DISTLAB_HOME", str(home))
    return home


def results_file(home: Path) -> Path:
    return home / "quiz_results.json"


def write_quiz(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    path = folder / f"{name or data['id']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def sample_path(tmp_path: Path) -> Path:
    """The SAMPLE quiz written to a YAML file."""
    return write_quiz(tmp_path, SAMPLE)


def pick(view: QuestionView, *texts: str) -> None:
    """Select the options with these texts (and only them)."""
    options = [option.text for option in view.question.options]
    if view.choice is not None:
        assert len(texts) <= 1
        view.choice.value = options.index(texts[0]) if texts else None
    else:
        for box in view.checkboxes:
            box.value = box.description in texts


def correct_texts(view: QuestionView) -> list[str]:
    return [option.text for option in view.question.options if option.correct]


def wrong_text(view: QuestionView) -> str:
    return next(option.text for option in view.question.options if not option.correct)


@pytest.fixture
def rich_path(tmp_path: Path) -> Path:
    """The RICH quiz written to a YAML file."""
    return write_quiz(tmp_path, RICH)
