"""Tests for the quiz files in quizzes/: the chapter quiz matches the chapter, every file is valid.

The chapter text lives outside the repository, in `shared/seed/` beside it (CI clones the
repository with `shared/` next to it). Without it the comparison is skipped with a reason
on a developer's machine (`-ra` prints it) and fails in CI, where it must run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from distlab.course.quiz import available_quizzes, load_quiz
from tests import REPO

QUIZZES = REPO / "quizzes"
SEED = REPO.parent / "shared" / "seed"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHAPTER_HEADING = "14.3.2 Distributed Systems and Microservices"
CHAPTER_QUIZ = "14_3_2_chapter_quiz"


@dataclass
class ChapterQuestion:
    prompt: str
    options: list[tuple[str, bool]]
    explanation: str = ""


def parse_chapter_quiz(text: str) -> list[ChapterQuestion]:
    """Parse the "### question / - [x] / - [ ] / > **Explanation:**" blocks after "Quiz Time!".

    Any other non-blank line inside a block fails, so a change of format in the chapter
    is noticed instead of silently dropping an option.
    """
    _, found, section = text.partition("Quiz Time!")
    assert found, "the chapter has no 'Quiz Time!' section"
    questions: list[ChapterQuestion] = []
    current: ChapterQuestion | None = None
    for line in section.splitlines():
        line = line.strip()
        if line.startswith("### "):
            assert current is None, (
                f"question {line!r} starts before the last one has an explanation"
            )
            current = ChapterQuestion(prompt=line[4:].strip(), options=[])
        elif current is None:
            continue  # prose between or after the questions
        elif match := re.fullmatch(r"- \[( |x)\] (.+)", line):
            current.options.append((match.group(2).strip(), match.group(1) == "x"))
        elif line.startswith("> **Explanation:**"):
            current.explanation = line.removeprefix("> **Explanation:**").strip()
            questions.append(current)
            current = None
        else:
            assert not line, f"unexpected line in question {current.prompt!r}: {line!r}"
    assert current is None, f"question {current.prompt!r} has no explanation"
    return questions


def chapter_text() -> str:
    """Return the chapter's text from the seed folder; fail in CI, skip elsewhere, if absent."""
    candidates = sorted(SEED.glob("*.txt")) if SEED.is_dir() else []
    matches = [
        path
        for path in candidates
        if path.read_text(encoding="utf-8").lstrip().startswith(CHAPTER_HEADING)
    ]
    if len(matches) == 1:
        return matches[0].read_text(encoding="utf-8")
    reason = (
        f"the chapter text ({CHAPTER_HEADING!r}) was not found as exactly one file in {SEED} "
        f"(found {len(matches)}); the chapter quiz cannot be compared with the chapter"
    )
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def test_parser_reads_questions_options_answers_and_explanations() -> None:
    """The chapter parser itself: order, [x] marks and explanations, prose ignored."""
    text = (
        "Intro prose.\nQuiz Time!\n### First?\n- [ ] a\n- [x] b\n"
        "> **Explanation:** Because b.\n### True or False: c.\n- [x] True\n- [ ] False\n"
        "> **Explanation:** It is.\nClosing prose with - [x] inside.\n"
    )
    assert parse_chapter_quiz(text) == [
        ChapterQuestion("First?", [("a", False), ("b", True)], "Because b."),
        ChapterQuestion("True or False: c.", [("True", True), ("False", False)], "It is."),
    ]
    with pytest.raises(AssertionError, match="unexpected line"):
        parse_chapter_quiz("Quiz Time!\n### Q?\n- [x] a\n* b\n> **Explanation:** e\n")
    with pytest.raises(AssertionError, match="has no explanation"):
        parse_chapter_quiz("Quiz Time!\n### Q?\n- [x] a\n")


def test_chapter_quiz_matches_the_chapter() -> None:
    """Every question, option (in order), answer and explanation is the chapter's, word for word."""
    chapter = parse_chapter_quiz(chapter_text())
    quiz = load_quiz(QUIZZES / f"{CHAPTER_QUIZ}.yaml")
    assert len(chapter) == 10
    assert [q.prompt for q in quiz.questions] == [q.prompt for q in chapter]
    for ours, theirs in zip(quiz.questions, chapter, strict=True):
        assert [(o.text, o.correct) for o in ours.options] == theirs.options, ours.id
        assert ours.explanation == theirs.explanation, ours.id
        texts = [text for text, _ in theirs.options]
        correct = sum(flag for _, flag in theirs.options)
        expected_type = (
            "true_false" if texts == ["True", "False"] else "single" if correct == 1 else "multiple"
        )
        assert ours.type == expected_type, ours.id


def test_chapter_quiz_notes_are_the_course_s_own_and_only_on_question_10() -> None:
    """Question 10 keeps the chapter's words; a course note adds that swarm mode orchestrates."""
    quiz = load_quiz(QUIZZES / f"{CHAPTER_QUIZ}.yaml")
    noted = [question.id for question in quiz.questions if question.note]
    assert noted == [quiz.questions[-1].id]
    note = quiz.questions[-1].note
    assert "swarm mode" in note
    assert "orchestrator too" in note
    assert "division of labour" in note


def test_chapter_quiz_keeps_the_chapter_order() -> None:
    """The chapter quiz is not shuffled, so students see the chapter's option order."""
    quiz = load_quiz(QUIZZES / f"{CHAPTER_QUIZ}.yaml")
    assert quiz.shuffle is False
    assert len(quiz.questions) == 10
    assert quiz.questions[-1].type == "true_false"


QUIZ_FILES = sorted(QUIZZES.glob("*.yaml"))


def test_the_chapter_quiz_is_among_the_quiz_files() -> None:
    """The list below is not empty: it holds at least the chapter quiz."""
    assert QUIZZES / f"{CHAPTER_QUIZ}.yaml" in QUIZ_FILES
    assert CHAPTER_QUIZ in available_quizzes(REPO)


@pytest.mark.parametrize("path", QUIZ_FILES, ids=[path.stem for path in QUIZ_FILES])
def test_every_quiz_file_loads_and_validates(path: Path) -> None:
    """Each quizzes/*.yaml follows the schema in quizzes/README.md and is named for its id."""
    quiz = load_quiz(path)
    assert quiz.id == path.stem
    assert re.fullmatch(r"\d\d(_[a-z0-9]+)+", quiz.id), "quiz files are named NN_topic_words"


def test_no_quiz_file_uses_another_extension() -> None:
    """Slugs resolve to NAME.yaml only, so a .yml file would never be found."""
    assert sorted(p.name for p in QUIZZES.glob("*.yml")) == []


def _notebook_quiz_slugs() -> list[tuple[str, str]]:
    # Every `show("...")` with a literal string, in any code cell: the house style puts
    # `from distlab import quiz` in the lesson's imports cell, away from the call.
    found: list[tuple[str, str]] = []
    for folder in ("lessons", "quizzes"):
        for path in sorted((REPO / folder).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    for slug in re.findall(r"""\bshow\(\s*["']([^"']+)["']""", cell.source):
                        found.append((f"{folder}/{path.name}", slug))
    return found


def _notebook_predictions() -> list[tuple[str, str, str]]:
    # Every `predict("slug", "id")` with literal strings, in any code cell of a lesson.
    found: list[tuple[str, str, str]] = []
    for path in sorted((REPO / "lessons").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                pattern = r"""\bpredict\(\s*["']([^"']+)["']\s*,\s*["']([^"']+)["']"""
                for slug, prediction in re.findall(pattern, cell.source):
                    found.append((f"lessons/{path.name}", slug, prediction))
    return found


def test_every_prediction_a_lesson_asks_exists() -> None:
    """Each `predict("slug", "id")` in lessons/ names a prediction of that quiz file."""
    missing = []
    for notebook, slug, prediction in _notebook_predictions():
        try:
            load_quiz(QUIZZES / f"{slug}.yaml").prediction(prediction)
        except (FileNotFoundError, KeyError) as exc:
            missing.append((notebook, slug, prediction, str(exc)))
    assert missing == []


def test_every_prediction_is_asked_by_a_lesson() -> None:
    """No prediction is orphaned: each one under `predictions:` is shown by a lesson."""
    asked = {(slug, prediction) for _, slug, prediction in _notebook_predictions()}
    orphans = [
        (slug, p.id)
        for slug in available_quizzes(REPO)
        for p in load_quiz(QUIZZES / f"{slug}.yaml").predictions
        if (slug, p.id) not in asked
    ]
    assert orphans == []


def test_every_quiz_a_notebook_shows_exists() -> None:
    """Each `show("slug")` in lessons/ and quizzes/ names a quiz file that exists."""
    known = set(available_quizzes(REPO))
    uses = _notebook_quiz_slugs()
    assert ("quizzes/14_3_2_chapter_quiz.ipynb", CHAPTER_QUIZ) in uses
    missing = [(notebook, slug) for notebook, slug in uses if slug not in known]
    assert missing == []


def test_every_quiz_file_is_shown_by_a_notebook() -> None:
    """No quiz file is orphaned: a lesson whose quiz cell was lost fails here."""
    shown = {slug for _, slug in _notebook_quiz_slugs()}
    assert sorted(set(available_quizzes(REPO)) - shown) == []


def test_chapter_quiz_notebook_is_an_intro_and_one_show_cell() -> None:
    """The chapter quiz notebook: an intro saying where results go, then one clean show() cell."""
    nb = nbformat.read(QUIZZES / f"{CHAPTER_QUIZ}.ipynb", as_version=4)
    assert [cell.cell_type for cell in nb.cells] == ["markdown", "code"]
    intro, code = nb.cells
    assert "quiz_results.json" in intro.source
    assert "DISTLAB_HOME" in intro.source
    assert code.source == f'from distlab import quiz\n\nquiz.show("{CHAPTER_QUIZ}")'
    assert code.outputs == []
    assert code.execution_count is None
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize(
    ("in_ci", "outcome"),
    [(True, pytest.fail.Exception), (False, pytest.skip.Exception)],
    ids=["ci-fails", "local-skips"],
)
def test_missing_chapter_text_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_ci: bool, outcome: type[BaseException]
) -> None:
    """Without the seed folder the comparison fails when CI=true, else skips with a reason."""
    monkeypatch.setitem(globals(), "SEED", tmp_path / "no_seed")
    monkeypatch.setitem(globals(), "IN_CI", in_ci)
    with pytest.raises(outcome, match="was not found as exactly one file"):
        chapter_text()


def test_the_readme_example_loads_and_behaves_as_documented(tmp_path: Path) -> None:
    """The example in quizzes/README.md is valid, and its numeric and feedback notes hold."""
    from distlab.course.quiz import QuizSession, option_feedback

    readme = (QUIZZES / "README.md").read_text(encoding="utf-8")
    example = re.search(r"## Example\n\n```yaml\n(.*?)```", readme, re.DOTALL)
    assert example is not None, "quizzes/README.md lost its ## Example yaml block"
    path = tmp_path / "00_start_here.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    quiz = load_quiz(path)
    assert [q.type for q in quiz.questions] == ["single", "multiple", "numeric", "true_false"]
    assert [p.id for p in quiz.predictions] == ["retries_vs_partition"]
    session = QuizSession(quiz, store=None)
    assert session.check_number("delivery_share", "99.2").status == "correct"  # 99.2 to 99.4
    assert session.check_number("delivery_share", "99.4 %").status == "correct"
    assert session.check_number("delivery_share", "99.45").status == "incorrect"
    assert session.check_number("delivery_share", "72,9").status == "invalid"
    assert round(100 * (1 - (1 - 0.9 * 0.9) ** 3), 1) == quiz.question("delivery_share").answer
    all_chosen = option_feedback(quiz.question("failure_modes"), [0, 1, 2, 3])
    assert all_chosen == ()  # right answers stay quiet in a multiple question
