"""Quiz data: the dataclasses, the YAML loader and the schema checks.

The schema is documented for authors in `quizzes/README.md`; keep the two in step.
Everything here is pure data and validation: no widgets, no results file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

import distlab
from distlab.errors import QuizDataError

__all__ = [
    "Option",
    "Question",
    "QuestionType",
    "Quiz",
    "available_quizzes",
    "course_root",
    "find_quiz",
    "load_quiz",
    "parse_quiz",
]

QuestionType = Literal["single", "multiple", "true_false", "numeric"]
_QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
_ID_PATTERN = re.compile(r"^[a-z0-9_]+$")

_QUIZ_REQUIRED = ("id", "title", "questions")
_QUIZ_OPTIONAL = ("intro", "shuffle", "seed", "predictions")
_QUESTION_REQUIRED = ("id", "type", "prompt", "explanation")
_QUESTION_OPTIONAL = ("options", "answer", "tolerance", "unit", "note")
_NUMERIC_ONLY = ("tolerance", "unit")
_OPTION_REQUIRED = ("text",)
_OPTION_OPTIONAL = ("correct", "feedback")


@dataclass(frozen=True)
class Option:
    """One answer a student can pick.

    Attributes:
        text: the option as shown (plain text).
        correct: whether picking it is (part of) the right answer.
        feedback: why this option is right or wrong, shown when the student's choice
            about it is wrong (and, for one-answer questions, whenever it is chosen);
            "" when the option has none.
    """

    text: str
    correct: bool = False
    feedback: str = ""


@dataclass(frozen=True)
class Question:
    """One question of a quiz, options in file order.

    Attributes:
        id: unique in the quiz (questions and predictions together); results are saved under it.
        type: "single", "multiple", "true_false" or "numeric".
        prompt: the question (plain text, `inline code` in backticks).
        options: every option in file order; a true/false question has "True" then "False";
            a numeric question has none.
        explanation: shown after every check.
        answer: the right number of a numeric question (None for the other types).
        tolerance: a numeric answer within `answer ± tolerance` is right (absolute, >= 0).
        unit: shown beside the input of a numeric question ("%", "s"; "" for none).
        note: an optional course note, shown after the explanation ("" for none).
    """

    id: str
    type: QuestionType
    prompt: str
    options: tuple[Option, ...]
    explanation: str
    answer: float | None = None
    tolerance: float = 0.0
    unit: str = ""
    note: str = ""

    @property
    def correct_indices(self) -> frozenset[int]:
        """Return the indices (in file order) of the correct options."""
        return frozenset(i for i, option in enumerate(self.options) if option.correct)


@dataclass(frozen=True)
class Quiz:
    """A validated quiz.

    Attributes:
        id: the quiz id, equal to the file name without ".yaml".
        title: heading of the quiz.
        questions: in file order; the score counts these.
        intro: optional text shown under the title ("" if absent).
        shuffle: whether options are shuffled (seeded) by default.
        seed: seed of the shuffle.
        path: the file it was loaded from ("" when built from a mapping).
        predictions: questions asked inside the lesson, one at a time, before the cell
            that reveals the answer (`quiz.predict`); saved like questions, never scored.
    """

    id: str
    title: str
    questions: tuple[Question, ...]
    intro: str = ""
    shuffle: bool = False
    seed: int = 0
    path: str = ""
    predictions: tuple[Question, ...] = ()

    def question(self, question_id: str) -> Question:
        """Return the question or the prediction with this id.

        Raises:
            KeyError: neither a question nor a prediction has this id.
        """
        for question in (*self.questions, *self.predictions):
            if question.id == question_id:
                return question
        raise KeyError(f"quiz {self.id!r} has no question {question_id!r}")

    def prediction(self, prediction_id: str) -> Question:
        """Return the prediction with this id.

        Raises:
            KeyError: no prediction has this id; the message lists the ones there are.
        """
        for question in self.predictions:
            if question.id == prediction_id:
                return question
        known = ", ".join(question.id for question in self.predictions) or "none"
        where = f" ({self.path})" if self.path else ""
        raise KeyError(
            f"quiz {self.id!r}{where} has no prediction {prediction_id!r} (predictions: {known})"
        )


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping.

    PyYAML silently keeps the last of two equal keys, so a second `correct:`
    or `options:` would hide the first without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_keys(
    data: object,
    *,
    what: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    path: str,
    question: str | None,
) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise QuizDataError(path, f"{what} must be a mapping, got {_type_name(data)}", question)
    unknown = sorted(str(key) for key in data if key not in required + optional)
    if unknown:
        allowed = ", ".join(required + optional)
        raise QuizDataError(
            path, f"unknown field(s) in {what}: {', '.join(unknown)} (allowed: {allowed})", question
        )
    missing = [key for key in required if key not in data]
    if missing:
        raise QuizDataError(path, f"{what} is missing field(s): {', '.join(missing)}", question)
    return cast("Mapping[str, object]", data)


def _string(data: Mapping[str, object], key: str, *, what: str, path: str, q: str | None) -> str:
    value = data[key]
    if not isinstance(value, str):
        hint = " (quote it in YAML)" if isinstance(value, bool | int | float) else ""
        raise QuizDataError(
            path, f"{what} field {key!r} must be a string, got {_type_name(value)}{hint}", q
        )
    if not value.strip():
        raise QuizDataError(path, f"{what} field {key!r} must not be empty", q)
    return value


def _bool(data: Mapping[str, object], key: str, *, what: str, path: str, q: str | None) -> bool:
    value = data[key]
    if not isinstance(value, bool):
        raise QuizDataError(
            path, f"{what} field {key!r} must be true or false, got {_type_name(value)}", q
        )
    return value


def _number(data: Mapping[str, object], key: str, *, path: str, q: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (write it without quotes)" if isinstance(value, str) else ""
        raise QuizDataError(
            path, f"question field {key!r} must be a number, got {_type_name(value)}{hint}", q
        )
    if not math.isfinite(value):
        raise QuizDataError(path, f"question field {key!r} must be a finite number", q)
    return float(value)


def _parse_options(raw: object, *, path: str, qid: str) -> tuple[Option, ...]:
    if not isinstance(raw, list):
        raise QuizDataError(path, f"field 'options' must be a list, got {_type_name(raw)}", qid)
    if len(raw) < 2:
        raise QuizDataError(path, f"a question needs at least 2 options, got {len(raw)}", qid)
    options: list[Option] = []
    for number, item in enumerate(raw, start=1):
        what = f"option {number}"
        data = _check_keys(
            item,
            what=what,
            required=_OPTION_REQUIRED,
            optional=_OPTION_OPTIONAL,
            path=path,
            question=qid,
        )
        text = _string(data, "text", what=what, path=path, q=qid)
        correct = (
            _bool(data, "correct", what=what, path=path, q=qid) if "correct" in data else False
        )
        feedback = (
            _string(data, "feedback", what=what, path=path, q=qid) if "feedback" in data else ""
        )
        options.append(Option(text=text, correct=correct, feedback=feedback))
    texts = [option.text for option in options]
    duplicates = sorted({text for text in texts if texts.count(text) > 1})
    if duplicates:
        raise QuizDataError(path, f"duplicate option text(s): {', '.join(duplicates)}", qid)
    return tuple(options)


def _parse_question(raw: object, *, number: int, path: str, what: str = "question") -> Question:
    # Find the id first, so that every later message can name the question.
    qid: str | None = None
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        qid = raw["id"]
    label = qid if qid is not None else f"#{number}"
    data = _check_keys(
        raw,
        what=f"{what} {number}",
        required=_QUESTION_REQUIRED,
        optional=_QUESTION_OPTIONAL,
        path=path,
        question=label,
    )
    qid = _string(data, "id", what="question", path=path, q=label)
    if not _ID_PATTERN.match(qid):
        raise QuizDataError(
            path, "a question id may hold only lowercase letters, digits and _", qid
        )
    qtype = _string(data, "type", what="question", path=path, q=qid)
    if qtype not in _QUESTION_TYPES:
        raise QuizDataError(
            path, f"unknown type {qtype!r} (allowed: {', '.join(_QUESTION_TYPES)})", qid
        )
    prompt = _string(data, "prompt", what="question", path=path, q=qid)
    explanation = _string(data, "explanation", what="question", path=path, q=qid)
    note = _string(data, "note", what="question", path=path, q=qid) if "note" in data else ""
    if qtype != "numeric":
        misplaced = [key for key in _NUMERIC_ONLY if key in data]
        if misplaced:
            raise QuizDataError(
                path,
                f"{' and '.join(repr(key) for key in misplaced)}"
                f" {'applies' if len(misplaced) == 1 else 'apply'} only to numeric"
                f" questions, not to a {qtype} question",
                qid,
            )
    numeric_answer: float | None = None
    tolerance = 0.0
    unit = ""

    if qtype == "numeric":
        if "options" in data:
            raise QuizDataError(
                path, "a numeric question takes 'answer' and 'tolerance', not 'options'", qid
            )
        missing = [key for key in ("answer", "tolerance") if key not in data]
        if missing:
            raise QuizDataError(
                path, f"a numeric question is missing field(s): {', '.join(missing)}", qid
            )
        numeric_answer = _number(data, "answer", path=path, q=qid)
        tolerance = _number(data, "tolerance", path=path, q=qid)
        if tolerance < 0:
            raise QuizDataError(
                path, f"question field 'tolerance' must be >= 0, got {tolerance:g}", qid
            )
        unit = _string(data, "unit", what="question", path=path, q=qid) if "unit" in data else ""
        options: tuple[Option, ...] = ()
    elif qtype == "true_false":
        if "options" in data:
            raise QuizDataError(
                path, "a true_false question takes 'answer: true|false', not 'options'", qid
            )
        if "answer" not in data:
            raise QuizDataError(path, "a true_false question is missing field(s): answer", qid)
        answer = _bool(data, "answer", what="question", path=path, q=qid)
        options = (
            Option("True", correct=answer),
            Option("False", correct=not answer),
        )
    else:
        if "answer" in data:
            raise QuizDataError(
                path,
                f"'answer' is only for true_false and numeric questions; a {qtype} question "
                "marks options with 'correct: true'",
                qid,
            )
        if "options" not in data:
            raise QuizDataError(path, f"a {qtype} question is missing field(s): options", qid)
        options = _parse_options(data["options"], path=path, qid=qid)
        correct = sum(option.correct for option in options)
        if correct == 0:
            raise QuizDataError(path, "no option is marked 'correct: true'", qid)
        if qtype == "single" and correct > 1:
            raise QuizDataError(
                path,
                f"a single choice question needs exactly one correct option, got {correct}"
                " (use type: multiple for 'select all that apply')",
                qid,
            )
    return Question(
        id=qid,
        type=cast("QuestionType", qtype),
        prompt=prompt,
        options=options,
        explanation=explanation,
        answer=numeric_answer,
        tolerance=tolerance,
        unit=unit,
        note=note,
    )


def _parse_questions(
    raw_questions: object, *, key: str, path: str, required: bool
) -> tuple[Question, ...]:
    if not isinstance(raw_questions, list):
        raise QuizDataError(
            path, f"quiz field {key!r} must be a list, got {_type_name(raw_questions)}"
        )
    if required and not raw_questions:
        raise QuizDataError(path, "a quiz needs at least one question")
    return tuple(
        _parse_question(
            raw, number=number, path=path, what="prediction" if key == "predictions" else "question"
        )
        for number, raw in enumerate(raw_questions, start=1)
    )


def parse_quiz(
    data: object, path: str | os.PathLike[str], *, expected_id: str | None = None
) -> Quiz:
    """Validate quiz data already read from YAML and build a `Quiz`.

    Args:
        data: the parsed YAML document.
        path: the file it came from, used in error messages.
        expected_id: if given, the quiz `id` must equal it (the file name without ".yaml").

    Returns:
        The validated quiz.

    Raises:
        QuizDataError: the data does not follow the schema; the message names the file
            and, where there is one, the question id.
    """
    where = str(path)
    top = _check_keys(
        data,
        what="the quiz",
        required=_QUIZ_REQUIRED,
        optional=_QUIZ_OPTIONAL,
        path=where,
        question=None,
    )
    quiz_id = _string(top, "id", what="quiz", path=where, q=None)
    if expected_id is not None and quiz_id != expected_id:
        raise QuizDataError(
            where, f"quiz id {quiz_id!r} must equal the file name without .yaml ({expected_id!r})"
        )
    title = _string(top, "title", what="quiz", path=where, q=None)
    intro = _string(top, "intro", what="quiz", path=where, q=None) if "intro" in top else ""
    shuffle = _bool(top, "shuffle", what="quiz", path=where, q=None) if "shuffle" in top else False
    seed = 0
    if "seed" in top:
        raw_seed = top["seed"]
        if not isinstance(raw_seed, int) or isinstance(raw_seed, bool):
            raise QuizDataError(
                where, f"quiz field 'seed' must be an integer, got {_type_name(raw_seed)}"
            )
        seed = raw_seed
    questions = _parse_questions(top["questions"], key="questions", path=where, required=True)
    predictions = (
        _parse_questions(top["predictions"], key="predictions", path=where, required=False)
        if "predictions" in top
        else ()
    )
    # Questions and predictions share the quiz's results, so one id names one thing.
    seen: set[str] = set()
    for question in questions:
        if question.id in seen:
            raise QuizDataError(where, "duplicate question id", question.id)
        seen.add(question.id)
    for prediction in predictions:
        if prediction.id in seen:
            raise QuizDataError(
                where,
                "duplicate question id (questions and predictions share one set of ids)",
                prediction.id,
            )
        seen.add(prediction.id)
    return Quiz(
        id=quiz_id,
        title=title,
        questions=tuple(questions),
        intro=intro,
        shuffle=shuffle,
        seed=seed,
        path=where,
        predictions=predictions,
    )


def course_root() -> Path:
    """Return the folder of the course whose `quizzes/` folder slugs resolve in.

    `$DISTLAB_COURSE_ROOT` if set; else the nearest folder at or above the current
    directory that holds both `quizzes/` and `pyproject.toml`; else the course that
    the installed `distlab` package sits in (`src/distlab/../../`).
    """
    env = os.environ.get("DISTLAB_COURSE_ROOT")
    if env:
        return Path(env).expanduser()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "quizzes").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(distlab.__file__).resolve().parent.parent.parent


def available_quizzes(root: Path | None = None) -> list[str]:
    """Return the slugs of the quiz files in the course's `quizzes/` folder, sorted.

    Args:
        root: the course folder; default `course_root()`.

    Returns:
        The file names without ".yaml"; empty if the folder does not exist.
    """
    folder = (root if root is not None else course_root()) / "quizzes"
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.yaml"))


def _looks_like_path(name: str) -> bool:
    return "/" in name or os.sep in name or name.endswith((".yaml", ".yml"))


def find_quiz(name: str | os.PathLike[str]) -> Path:
    """Return the file of a quiz given by slug ("00_start_here") or by path.

    Args:
        name: a slug, looked up in the course's `quizzes/` folder, or a path
            (anything with a "/" or ending in ".yaml" or ".yml").

    Raises:
        FileNotFoundError: no such file; for a slug the message lists the quizzes that exist.
    """
    if isinstance(name, os.PathLike) or _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"quiz file {str(path)!r} does not exist")
        return path
    root = course_root()
    path = root / "quizzes" / f"{name}.yaml"
    if path.is_file():
        return path
    known = available_quizzes(root)
    listing = ", ".join(known) if known else "none"
    raise FileNotFoundError(
        f"no quiz named {name!r} in {root / 'quizzes'} (available: {listing}); "
        "set DISTLAB_COURSE_ROOT to the course folder if this is the wrong course"
    )


def load_quiz(name: str | os.PathLike[str]) -> Quiz:
    """Find, read and validate a quiz.

    Args:
        name: a slug ("00_start_here", looked up in the course's `quizzes/` folder)
            or a path to a YAML file (anything with a "/" or ending in ".yaml").

    Returns:
        The validated quiz.

    Raises:
        FileNotFoundError: no such quiz; for a slug the message lists the quizzes that exist.
        QuizDataError: the file is not valid YAML or does not follow the schema.
    """
    path = find_quiz(name)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_StrictLoader)  # SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        raise QuizDataError(str(path), f"not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise QuizDataError(str(path), f"not UTF-8 text: {exc}") from exc
    return parse_quiz(data, path, expected_id=path.stem)
