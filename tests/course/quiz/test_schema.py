"""load_quiz and find_quiz: every schema violation names the file and the question.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from distlab.course.quiz import (
    course_root,
    find_quiz,
    load_quiz,
)
from distlab.errors import QuizDataError
from tests import REPO
from tests.course.quiz.helpers import (
    RICH,
    SAMPLE,
    write_quiz,
)

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"


# --- grading and feedback -------------------------------------------------------------


def make_course(root: Path, *slugs: str) -> Path:
    (root / "quizzes").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    for slug in slugs:
        data = copy.deepcopy(SAMPLE)
        data["id"] = slug
        write_quiz(root / "quizzes", data)
    return root


def test_slug_resolves_in_distlab_course_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DISTLAB_COURSE_ROOT wins over the current directory."""
    course = make_course(tmp_path / "course", "00_start_here")
    monkeypatch.setenv("DISTLAB_COURSE_ROOT", str(course))
    assert course_root() == course
    assert find_quiz("00_start_here") == course / "quizzes" / "00_start_here.yaml"
    assert load_quiz("00_start_here").id == "00_start_here"


def test_slug_resolves_by_walking_up_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From lessons/ inside a course, the course's quizzes/ folder is found."""
    monkeypatch.delenv("DISTLAB_COURSE_ROOT", raising=False)
    course = make_course(tmp_path / "course", "01_walk_up")
    (course / "lessons").mkdir()
    monkeypatch.chdir(course / "lessons")
    assert course_root() == course.resolve()
    assert load_quiz("01_walk_up").id == "01_walk_up"


def test_slug_falls_back_to_the_package_course(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside any course folder, slugs resolve in the course the package is installed from."""
    monkeypatch.delenv("DISTLAB_COURSE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert course_root() == REPO
    assert load_quiz("14_3_2_chapter_quiz").id == "14_3_2_chapter_quiz"


def test_unknown_slug_lists_the_available_quizzes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown slug raises FileNotFoundError naming the folder and every quiz in it."""
    course = make_course(tmp_path / "course", "00_start_here", "02_retries")
    monkeypatch.setenv("DISTLAB_COURSE_ROOT", str(course))
    with pytest.raises(FileNotFoundError) as info:
        load_quiz("99_nope")
    message = str(info.value)
    assert "'99_nope'" in message
    assert "00_start_here, 02_retries" in message
    assert str(course / "quizzes") in message


def test_missing_path_is_reported(tmp_path: Path) -> None:
    """A path that does not exist raises FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        load_quiz(str(tmp_path / "missing.yaml"))


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: tuple[Any, ...]) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _duplicate_question(data: dict[str, Any]) -> None:
    data["questions"].append(copy.deepcopy(data["questions"][1]))


INVALID: list[tuple[str, Any, str | None, str]] = [
    # (case id, change to SAMPLE, question id named in the error, message fragment)
    (
        "no-correct-single",
        _set(("questions", 0, "options", 1, "correct"), False),
        "one",
        "no option is marked",
    ),
    (
        "no-correct-multiple",
        _set(("questions", 1, "options"), [{"text": "x"}, {"text": "y"}]),
        "many",
        "no option is marked",
    ),
    (
        "two-correct-single",
        _set(("questions", 0, "options", 0, "correct"), True),
        "one",
        "exactly one correct option, got 2",
    ),
    ("duplicate-question-id", _duplicate_question, "many", "duplicate question id"),
    (
        "unknown-question-field",
        _set(("questions", 1, "hint"), "x"),
        "many",
        "unknown field(s) in question 2: hint",
    ),
    (
        "unknown-option-field",
        _set(("questions", 0, "options", 2, "points"), 1),
        "one",
        "unknown field(s) in option 3: points",
    ),
    ("unknown-quiz-field", _set(("author",), "me"), None, "unknown field(s) in the quiz: author"),
    ("missing-prompt", _delete(("questions", 0, "prompt")), "one", "missing field(s): prompt"),
    (
        "missing-explanation",
        _delete(("questions", 2, "explanation")),
        "tf",
        "missing field(s): explanation",
    ),
    ("missing-options", _delete(("questions", 1, "options")), "many", "missing field(s): options"),
    ("missing-answer", _delete(("questions", 2, "answer")), "tf", "missing field(s): answer"),
    (
        "missing-option-text",
        _set(("questions", 0, "options", 2), {"correct": False}),
        "one",
        "option 3 is missing field(s): text",
    ),
    ("missing-question-id", _delete(("questions", 1, "id")), "#2", "missing field(s): id"),
    ("missing-title", _delete(("title",)), None, "missing field(s): title"),
    (
        "prompt-not-string",
        _set(("questions", 0, "prompt"), 42),
        "one",
        "'prompt' must be a string, got int",
    ),
    (
        "option-text-bool",
        _set(("questions", 0, "options", 2, "text"), False),
        "one",
        "'text' must be a string, got bool (quote it in YAML)",
    ),
    (
        "correct-not-bool",
        _set(("questions", 0, "options", 1, "correct"), "yes"),
        "one",
        "'correct' must be true or false, got str",
    ),
    (
        "answer-not-bool",
        _set(("questions", 2, "answer"), "no"),
        "tf",
        "'answer' must be true or false, got str",
    ),
    (
        "options-not-list",
        _set(("questions", 0, "options"), "a, b"),
        "one",
        "'options' must be a list, got str",
    ),
    ("question-not-mapping", _set(("questions", 1), "what?"), "#2", "question 2 must be a mapping"),
    ("questions-not-list", _set(("questions",), {"one": 1}), None, "'questions' must be a list"),
    ("no-questions", _set(("questions",), []), None, "at least one question"),
    ("seed-not-int", _set(("seed",), "7"), None, "'seed' must be an integer"),
    ("shuffle-not-bool", _set(("shuffle",), "yes"), None, "'shuffle' must be true or false"),
    ("unknown-type", _set(("questions", 0, "type"), "essay"), "one", "unknown type 'essay'"),
    (
        "one-option",
        _set(("questions", 0, "options"), [{"text": "a", "correct": True}]),
        "one",
        "at least 2 options",
    ),
    (
        "duplicate-option-text",
        _set(("questions", 0, "options", 2, "text"), "b"),
        "one",
        "duplicate option text(s): b",
    ),
    (
        "options-on-true-false",
        _set(("questions", 2, "options"), [{"text": "x"}]),
        "tf",
        "not 'options'",
    ),
    (
        "answer-on-single",
        _set(("questions", 0, "answer"), True),
        "one",
        "'answer' is only for true_false",
    ),
    (
        "empty-explanation",
        _set(("questions", 0, "explanation"), "  "),
        "one",
        "'explanation' must not be empty",
    ),
    (
        "bad-question-id",
        _set(("questions", 0, "id"), "Question One"),
        "Question One",
        "lowercase letters, digits and _",
    ),
    (
        "id-not-file-name",
        _set(("id",), "another_quiz"),
        None,
        "must equal the file name without .yaml",
    ),
]


def _numeric(data: dict[str, Any]) -> dict[str, Any]:
    question = {
        "id": "num",
        "type": "numeric",
        "prompt": "How many?",
        "answer": 3,
        "tolerance": 0.5,
        "explanation": "Three.",
    }
    data["questions"].append(question)
    return question


def _numeric_with(**changes: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        question = _numeric(data)
        for key, value in changes.items():
            if value is _DELETE:
                del question[key]
            else:
                question[key] = value

    return change


_DELETE = object()


def _prediction(**changes: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        prediction = copy.deepcopy(data["questions"][0])
        prediction["id"] = "guess"
        prediction.update(changes)
        data["predictions"] = [prediction]

    return change


INVALID += [
    # the extended format: option feedback, numeric questions, notes, predictions
    (
        "feedback-not-string",
        _set(("questions", 0, "options", 0, "feedback"), 3),
        "one",
        "option 1 field 'feedback' must be a string, got int",
    ),
    (
        "feedback-empty",
        _set(("questions", 1, "options", 1, "feedback"), " "),
        "many",
        "option 2 field 'feedback' must not be empty",
    ),
    (
        "note-empty",
        _set(("questions", 2, "note"), ""),
        "tf",
        "field 'note' must not be empty",
    ),
    (
        "numeric-without-answer",
        _numeric_with(answer=_DELETE),
        "num",
        "numeric question is missing field(s): answer",
    ),
    (
        "numeric-without-tolerance",
        _numeric_with(tolerance=_DELETE),
        "num",
        "numeric question is missing field(s): tolerance",
    ),
    (
        "numeric-answer-quoted",
        _numeric_with(answer="3"),
        "num",
        "'answer' must be a number, got str (write it without quotes)",
    ),
    (
        "numeric-answer-bool",
        _numeric_with(answer=True),
        "num",
        "'answer' must be a number, got bool",
    ),
    (
        "numeric-answer-infinite",
        _numeric_with(answer=float("inf")),
        "num",
        "'answer' must be a finite number",
    ),
    (
        "negative-tolerance",
        _numeric_with(tolerance=-0.1),
        "num",
        "'tolerance' must be >= 0, got -0.1",
    ),
    ("unit-not-string", _numeric_with(unit=5), "num", "'unit' must be a string, got int"),
    (
        "numeric-with-options",
        _numeric_with(options=[{"text": "a", "correct": True}, {"text": "b"}]),
        "num",
        "a numeric question takes 'answer' and 'tolerance', not 'options'",
    ),
    (
        "tolerance-on-single",
        _set(("questions", 0, "tolerance"), 1),
        "one",
        "'tolerance' applies only to numeric questions, not to a single question",
    ),
    (
        "unit-on-true-false",
        _set(("questions", 2, "unit"), "%"),
        "tf",
        "'unit' applies only to numeric questions",
    ),
    (
        "predictions-not-list",
        _set(("predictions",), {"guess": 1}),
        None,
        "quiz field 'predictions' must be a list, got dict",
    ),
    (
        "prediction-missing-prompt",
        _prediction(prompt=None),
        "guess",
        "'prompt' must be a string, got null",
    ),
    (
        "prediction-unknown-field",
        _prediction(points=2),
        "guess",
        "unknown field(s) in prediction 1: points",
    ),
    (
        "prediction-id-of-a-question",
        _prediction(id="many"),
        "many",
        "questions and predictions share one set of ids",
    ),
]


@pytest.mark.parametrize(
    ("change", "question", "fragment"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_quiz_data_fails_naming_file_and_question(
    tmp_path: Path, change: Any, question: str | None, fragment: str
) -> None:
    """Each schema violation raises QuizDataError naming the file, the question and the problem."""
    data = copy.deepcopy(SAMPLE)
    change(data)
    path = write_quiz(tmp_path, data, name="sample_quiz")
    with pytest.raises(QuizDataError) as info:
        load_quiz(path)
    error = info.value
    message = str(error)
    assert error.path == str(path)
    assert message.startswith(str(path))
    assert error.question == question
    if question is not None:
        assert f"question {question!r}" in message
    assert fragment in message


def test_sample_quiz_is_valid(sample_path: Path) -> None:
    """The base of the invalid cases loads, so each case fails for its own change only."""
    quiz = load_quiz(sample_path)
    assert [q.id for q in quiz.questions] == ["one", "many", "tf"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("id: x\nid: y\n", "duplicate key 'id'"),
        (
            "id: sample_quiz\ntitle: t\nquestions:\n  - id: q\n    type: single\n"
            "    prompt: p\n    explanation: e\n    options:\n"
            "      - text: a\n        correct: true\n        correct: false\n      - text: b\n",
            "duplicate key 'correct'",
        ),
        ("id: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "the quiz must be a mapping, got list"),
    ],
    ids=["duplicate-top-key", "duplicate-option-key", "bad-yaml", "not-a-mapping"],
)
def test_malformed_yaml_fails_naming_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    """Broken YAML, a key given twice or a document that is not a mapping raise QuizDataError."""
    path = tmp_path / "sample_quiz.yaml"
    path.write_text(text)
    with pytest.raises(QuizDataError) as info:
        load_quiz(path)
    assert info.value.path == str(path)
    assert fragment in str(info.value)


def test_extended_format_loads(rich_path: Path) -> None:
    """Option feedback, a numeric question with unit and note, and predictions load as written."""
    quiz = load_quiz(rich_path)
    assert [q.id for q in quiz.questions] == ["pick", "all", "share"]
    assert [q.id for q in quiz.predictions] == ["guess", "how_many"]
    pick = quiz.question("pick")
    assert pick.options[0].feedback.startswith("The reply could have been lost")
    assert quiz.question("all").options[3].feedback == ""
    share = quiz.question("share")
    assert (share.type, share.answer, share.tolerance, share.unit) == ("numeric", 99.3, 0.1, "%")
    assert share.options == ()
    assert share.note == "Only if losses are independent."
    how_many = quiz.prediction("how_many")
    assert (how_many.answer, how_many.tolerance, how_many.unit) == (5.0, 0.0, "")
    assert quiz.question("how_many") is how_many  # one namespace for results


def test_a_quiz_without_predictions_has_none(sample_path: Path) -> None:
    """`predictions:` is optional, and an empty list is allowed."""
    assert load_quiz(sample_path).predictions == ()
    data = copy.deepcopy(RICH)
    data["predictions"] = []
    assert load_quiz(write_quiz(sample_path.parent, data)).predictions == ()


def test_unknown_prediction_lists_the_known_ones(rich_path: Path) -> None:
    """Quiz.prediction names the quiz, its file and every prediction it has."""
    quiz = load_quiz(rich_path)
    with pytest.raises(KeyError) as info:
        quiz.prediction("pick")  # a question, not a prediction
    message = str(info.value)
    assert "has no prediction 'pick'" in message
    assert "(predictions: guess, how_many)" in message
    assert str(rich_path) in message
