"""Tests for distlab.quiz without a kernel: schema, grading, scoring, results file, widgets.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
Every test points DISTLAB_HOME at its own tmp_path, so no test sees a real results file.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from distlab.errors import QuizDataError
from distlab.quiz import (
    QuestionView,
    QuizSession,
    QuizView,
    ResultStore,
    SavedAnswer,
    build,
    course_root,
    default_results_path,
    find_quiz,
    load_quiz,
    render_inline,
    show,
)

REPO = Path(__file__).resolve().parent.parent
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


# --- grading and feedback -------------------------------------------------------------


def test_correct_answer_says_correct_and_explains(sample_path: Path) -> None:
    """A correct answer shows "Correct." followed by the explanation."""
    view = build(sample_path)
    question = view.question_view("one")
    pick(question, "b")
    question.check_button.click()
    assert "Correct." in question.feedback.value
    assert "Incorrect" not in question.feedback.value
    assert "Only <code>b</code> is right" in question.feedback.value


def test_incorrect_answer_says_incorrect_and_explains(sample_path: Path) -> None:
    """A wrong answer shows "Incorrect." followed by the explanation."""
    view = build(sample_path)
    question = view.question_view("one")
    pick(question, "c")
    question.check_button.click()
    assert "Incorrect." in question.feedback.value
    assert "Only <code>b</code> is right" in question.feedback.value
    assert view.session.score == 0
    assert view.session.answered == 1


def test_check_with_nothing_selected_prompts_and_changes_nothing(
    sample_path: Path, distlab_home: Path
) -> None:
    """Check with nothing selected asks for an answer; score, progress and file stay put."""
    view = build(sample_path)
    question = view.question_view("one")
    score_before = view.score.value
    question.check_button.click()
    assert "Choose an answer first" in question.feedback.value
    assert view.score.value == score_before
    assert view.session.answered == 0
    assert not results_file(distlab_home).exists()


def test_empty_check_after_an_answer_keeps_the_saved_answer(
    sample_path: Path, distlab_home: Path
) -> None:
    """Unticking every box and pressing Check does not erase or change the saved answer."""
    view = build(sample_path)
    question = view.question_view("many")
    pick(question, "a", "e")
    question.check_button.click()
    saved = results_file(distlab_home).read_bytes()
    pick(question)
    question.check_button.click()
    assert "Choose an answer first" in question.feedback.value
    assert results_file(distlab_home).read_bytes() == saved
    assert view.session.score_text() == "1 / 3 correct"


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (("a", "e"), "Correct."),
        (("a",), "Incorrect."),
        (("a", "e", "b"), "Incorrect."),
        (("b", "d"), "Incorrect."),
    ],
)
def test_multiple_choice_needs_exactly_the_correct_options(
    sample_path: Path, selection: tuple[str, ...], expected: str
) -> None:
    """Multiple choice is all or nothing: a subset or a superset of the right options is wrong."""
    view = build(sample_path)
    question = view.question_view("many")
    assert question.choice is None
    assert [box.description for box in question.checkboxes] == ["a", "b", "e", "d"]
    pick(question, *selection)
    question.check_button.click()
    assert expected in question.feedback.value
    assert view.session.score == (1 if expected == "Correct." else 0)


def test_true_false_question_offers_true_then_false(sample_path: Path) -> None:
    """A true/false question shows radio buttons "True" and "False" and grades them."""
    view = build(sample_path)
    question = view.question_view("tf")
    assert question.choice is not None
    assert [label for label, _ in question.choice.options] == ["True", "False"]
    pick(question, "False")
    question.check_button.click()
    assert "Correct." in question.feedback.value


def test_session_rejects_impossible_selections(sample_path: Path) -> None:
    """The logic refuses two options for a one-answer question and indices out of range."""
    session = QuizSession(load_quiz(sample_path))
    with pytest.raises(ValueError, match="takes one option"):
        session.check("one", [0, 1])
    with pytest.raises(ValueError, match=r"must be in 0\.\.2"):
        session.check("one", [3])
    with pytest.raises(KeyError, match="nope"):
        session.check("nope", [0])
    assert session.answered == 0


# --- score, progress, reset, summary ----------------------------------------------------


def test_score_and_progress_text_on_the_chapter_quiz() -> None:
    """Seven right and three wrong answers read "7 / 10 correct" and "10 of 10 answered"."""
    view = build(CHAPTER_QUIZ)
    assert "0 / 10 correct" in view.score.value
    assert "0 of 10 answered" in view.score.value
    for number, question in enumerate(view.questions, start=1):
        if number <= 7:
            pick(question, *correct_texts(question))
        else:
            pick(question, wrong_text(question))
        question.check_button.click()
        assert f"{number} of 10 answered" in view.score.value
    assert "7 / 10 correct" in view.score.value
    assert view.session.score_text() == "7 / 10 correct"


def test_summary_appears_only_when_every_question_is_answered(sample_path: Path) -> None:
    """The summary stays empty until the last question is checked, then names the wrong ones."""
    view = build(sample_path)
    pick(view.question_view("one"), "c")
    view.question_view("one").check_button.click()
    pick(view.question_view("many"), "a", "e")
    view.question_view("many").check_button.click()
    assert view.summary.value == ""
    assert view.session.summary() is None
    pick(view.question_view("tf"), "False")
    view.question_view("tf").check_button.click()
    assert "Quiz complete: 2 / 3 correct." in view.summary.value
    assert "question(s) 1 again" in view.summary.value


def test_summary_of_a_perfect_quiz(sample_path: Path) -> None:
    """All answers right: the summary says so."""
    view = build(sample_path)
    for question in view.questions:
        pick(question, *correct_texts(question))
        question.check_button.click()
    assert "Quiz complete: 3 / 3 correct. Every answer is right." in view.summary.value


def test_reset_clears_answers_widgets_and_only_this_quiz_in_the_file(
    tmp_path: Path, sample_path: Path, distlab_home: Path
) -> None:
    """Reset empties selections, feedback, score and summary, and keeps other quizzes' results."""
    other = copy.deepcopy(SAMPLE)
    other["id"] = "other_quiz"
    other_view = build(write_quiz(tmp_path, other))
    pick(other_view.question_view("tf"), "True")
    other_view.question_view("tf").check_button.click()

    view = build(sample_path)
    for question in view.questions:
        pick(question, *correct_texts(question))
        question.check_button.click()
    assert view.summary.value != ""
    view.reset_button.click()  # asks first
    view.reset_button.click()  # confirmed: forgets
    assert "0 / 3 correct" in view.score.value
    assert "0 of 3 answered" in view.score.value
    assert view.summary.value == ""
    for question in view.questions:
        assert question.feedback.value == ""
        assert question.selected() == []
    saved = json.loads(results_file(distlab_home).read_text())
    assert "sample_quiz" not in saved["quizzes"]
    assert "tf" in saved["quizzes"]["other_quiz"]["answers"]
    assert "0 / 3 correct" in build(sample_path).score.value


def test_first_reset_press_only_asks(sample_path: Path, distlab_home: Path) -> None:
    """With answers to lose, one press of Reset forgets nothing and asks for confirmation."""
    view = build(sample_path)
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    saved = results_file(distlab_home).read_text()
    view.reset_button.click()
    assert view.reset_pending
    assert view.reset_button.description == "Confirm reset"
    assert "forgets your 1 checked answer" in view.reset_note.value
    assert "1 of 3 answered" in view.score.value
    assert view.question_view("one").feedback.value != ""
    assert results_file(distlab_home).read_text() == saved


def test_checking_an_answer_cancels_a_pending_reset(sample_path: Path, distlab_home: Path) -> None:
    """Check after a first Reset press keeps every answer; the next Reset asks again."""
    view = build(sample_path)
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    view.reset_button.click()
    pick(view.question_view("tf"), "True")
    view.question_view("tf").check_button.click()
    assert not view.reset_pending
    assert view.reset_button.description == "Reset"
    assert view.reset_note.value == ""
    view.reset_button.click()
    assert "2 of 3 answered" in view.score.value
    assert "forgets your 2 checked answers" in view.reset_note.value


def test_reset_with_nothing_answered_needs_no_confirmation(
    sample_path: Path, distlab_home: Path
) -> None:
    """With nothing to lose, Reset acts at once (and a restored answer makes it ask)."""
    view = build(sample_path)
    view.reset_button.click()
    assert not view.reset_pending
    assert "0 of 3 answered" in view.score.value
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    restored = build(sample_path)  # as after a kernel restart
    restored.reset_button.click()
    assert restored.reset_pending


# --- persistence ----------------------------------------------------------------------


def test_answers_survive_a_fresh_instance(sample_path: Path, distlab_home: Path) -> None:
    """A new view (as after a kernel restart) shows the saved selections, feedback and score."""
    view = build(sample_path)
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    pick(view.question_view("many"), "a", "b")
    view.question_view("many").check_button.click()

    again = build(sample_path)
    assert "1 / 3 correct" in again.score.value
    assert "2 of 3 answered" in again.score.value
    assert again.question_view("one").selected() == [1]
    assert "Correct." in again.question_view("one").feedback.value
    assert again.question_view("many").selected() == [0, 1]
    assert "Incorrect." in again.question_view("many").feedback.value
    assert again.question_view("tf").selected() == []
    assert again.question_view("tf").feedback.value == ""
    assert str(results_file(distlab_home)) in again.location.value


@pytest.mark.parametrize(
    ("first", "second", "score"),
    [("c", "b", 1), ("b", "c", 0)],
    ids=["wrong-then-right", "right-then-wrong"],
)
def test_latest_checked_answer_counts_after_restart(
    sample_path: Path, distlab_home: Path, first: str, second: str, score: int
) -> None:
    """The score counts the latest checked answer; attempts count every graded check."""
    view = build(sample_path)
    question = view.question_view("one")
    for text in (first, second):
        pick(question, text)
        question.check_button.click()
    again = build(sample_path)
    assert again.session.score == score
    answer = again.session.answer("one")
    assert answer is not None
    assert answer.attempts == 2
    saved = json.loads(results_file(distlab_home).read_text())
    record = saved["quizzes"]["sample_quiz"]["answers"]["one"]
    assert record["selected"] == [second]
    assert record["attempts"] == 2


def test_saved_answers_are_graded_again_against_the_file(tmp_path: Path, sample_path: Path) -> None:
    """A fixed answer key fixes the score; an answer naming a vanished option is not shown.

    The quiz names that question until it is answered again.
    """
    view = build(sample_path)
    pick(view.question_view("one"), "c")
    view.question_view("one").check_button.click()
    pick(view.question_view("many"), "a", "e")
    view.question_view("many").check_button.click()

    changed = copy.deepcopy(SAMPLE)
    changed["questions"][0]["options"] = [
        {"text": "a < b"},
        {"text": "b"},
        {"text": "c", "correct": True},
    ]
    changed["questions"][1]["options"][2]["text"] = "i"
    again = build(write_quiz(tmp_path, changed))
    assert again.session.score == 1
    assert again.session.answer("many") is None
    assert "1 of 3 answered" in again.score.value
    assert "changed after you answered question(s) 2:" in again.notice.value
    assert build(write_quiz(tmp_path, SAMPLE)).notice.value == ""  # the old file again
    pick(again.question_view("many"), "a", "i")
    again.question_view("many").check_button.click()
    assert again.notice.value == ""


def test_answer_to_a_removed_question_is_ignored_but_kept(
    tmp_path: Path, sample_path: Path, distlab_home: Path
) -> None:
    """A question deleted from the file no longer counts, but its saved answer stays in the file."""
    view = build(sample_path)
    for question in view.questions:
        pick(question, *correct_texts(question))
        question.check_button.click()

    changed = copy.deepcopy(SAMPLE)
    del changed["questions"][1]
    again = build(write_quiz(tmp_path, changed))
    assert again.notice.value == ""
    assert "2 / 2 correct" in again.score.value
    assert "2 of 2 answered" in again.score.value
    assert "Quiz complete: 2 / 2 correct." in again.summary.value
    pick(again.question_view("one"), "c")
    again.question_view("one").check_button.click()
    saved = json.loads(results_file(distlab_home).read_text())["quizzes"]["sample_quiz"]
    assert saved["answers"]["many"]["selected"] == ["a", "e"]
    assert saved["answers"]["one"]["selected"] == ["c"]


def test_unicode_text_round_trips_through_the_results_file(
    tmp_path: Path, distlab_home: Path
) -> None:
    """Non-ASCII prompts and options (accents, CJK, emoji) render, save and restore."""
    data = copy.deepcopy(SAMPLE)
    data["questions"][0]["prompt"] = "Quel nœud répond ? 🛰️ `café`"
    data["questions"][0]["options"] = [
        {"text": "東京"},
        {"text": "Zürich ✓", "correct": True},
        {"text": "São Paulo"},
    ]
    path = write_quiz(tmp_path, data)
    view = build(path)
    assert "Quel nœud répond ? 🛰️ <code>café</code>" in view.question_view("one").prompt.value
    pick(view.question_view("one"), "Zürich ✓")
    view.question_view("one").check_button.click()
    again = build(path)
    assert again.question_view("one").selected() == [1]
    assert "Correct." in again.question_view("one").feedback.value
    record = json.loads(results_file(distlab_home).read_text(encoding="utf-8"))
    assert record["quizzes"]["sample_quiz"]["answers"]["one"]["selected"] == ["Zürich ✓"]


def test_results_are_written_atomically_as_json(sample_path: Path, distlab_home: Path) -> None:
    """After checks the folder holds only the results file (no temporary files), and it is JSON."""
    view = build(sample_path)
    for question in view.questions:
        pick(question, *correct_texts(question))
        question.check_button.click()
    names = sorted(p.name for p in distlab_home.iterdir())
    assert [name for name in names if name != ".quiz_results.json.lock"] == ["quiz_results.json"]
    saved = json.loads(results_file(distlab_home).read_text())
    assert saved["format"] == 1
    assert set(saved["quizzes"]["sample_quiz"]["answers"]) == {"one", "many", "tf"}


def test_two_notebooks_saving_at_once_keep_every_answer(distlab_home: Path) -> None:
    """Two stores on one file (two open notebooks) save 2 x 40 answers at once: none is lost.

    Each save reads the file and writes it back; without the lock one writer's answers
    overwrite the other's (about half are lost). A barrier starts both at the same moment.
    """
    path = results_file(distlab_home)
    start = threading.Barrier(2)
    stores = {quiz_id: ResultStore(path) for quiz_id in ("quiz_a", "quiz_b")}

    def student(quiz_id: str) -> None:
        start.wait()
        for number in range(40):
            stores[quiz_id].save(quiz_id, f"q{number}", SavedAnswer(("b",), True, 1, "t"))

    threads = [threading.Thread(target=student, args=(quiz_id,)) for quiz_id in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [store.notices for store in stores.values()] == [[], []]
    store = ResultStore(path)
    assert len(store.load("quiz_a")) == 40
    assert len(store.load("quiz_b")) == 40
    assert store.notices == []


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2, 3]",
        '{"format": 1, "quizzes": {"sample_quiz": {"answers": {"one": {"selected": "b"}}}}}',
        '{"quizzes": {}}',
        '{"format": 0, "quizzes": {}}',
    ],
    ids=["not-json", "not-an-object", "bad-answer", "no-format", "format-zero"],
)
def test_corrupt_results_file_is_moved_aside_with_a_message(
    sample_path: Path, distlab_home: Path, content: str
) -> None:
    """A damaged results file is renamed with a timestamp, the quiz says so and still works."""
    distlab_home.mkdir()
    results_file(distlab_home).write_text(content)
    view = build(sample_path)
    moved = list(distlab_home.glob("quiz_results.json.corrupt-*"))
    assert len(moved) == 1
    assert re.fullmatch(r"quiz_results\.json\.corrupt-\d{8}T\d{6}Z", moved[0].name)
    assert moved[0].read_text() == content
    assert "damaged" in view.notice.value
    assert moved[0].name in view.notice.value
    assert "0 of 3 answered" in view.score.value
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert json.loads(results_file(distlab_home).read_text())["format"] == 1


def test_results_file_of_a_newer_format_is_kept_and_not_overwritten(
    sample_path: Path, distlab_home: Path
) -> None:
    """A file from a newer distlab is not moved aside or rewritten; the quiz says to update."""
    distlab_home.mkdir()
    content = '{"format": 2, "quizzes": {"sample_quiz": {"responses": []}}}'
    results_file(distlab_home).write_text(content)
    view = build(sample_path)
    assert "newer version of distlab" in view.notice.value
    assert "0 of 3 answered" in view.score.value
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert "Correct." in view.question_view("one").feedback.value
    assert "1 / 3 correct" in view.score.value
    view.reset_button.click()
    view.reset_button.click()
    assert "0 / 3 correct" in view.score.value
    assert results_file(distlab_home).read_text() == content
    assert list(distlab_home.glob("quiz_results.json.corrupt-*")) == []


@pytest.mark.parametrize("below", ["", "home"], ids=["home-is-a-file", "file-above-home"])
def test_distlab_home_that_is_a_file_is_reported_not_raised(
    tmp_path: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch, below: str
) -> None:
    """DISTLAB_HOME naming a file: the quiz says so on display, Check still grades, once."""
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    monkeypatch.setenv("DISTLAB_HOME", str(blocker / below))
    view = build(sample_path)
    message = f"{html.escape(str(blocker))} is a file, not a folder"
    assert message in view.notice.value
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert "Correct." in view.question_view("one").feedback.value
    pick(view.question_view("tf"), "False")
    view.question_view("tf").check_button.click()
    assert "2 / 3 correct" in view.score.value
    assert view.notice.value.count("cannot be saved") == 1
    assert blocker.read_text() == "keep me"


def test_unwritable_results_folder_is_reported_not_raised(
    tmp_path: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the temporary file cannot be written, Check still grades and the quiz says why."""

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("distlab.quiz._store.tempfile.mkstemp", refuse)
    view = build(sample_path)
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert "Correct." in view.question_view("one").feedback.value
    assert "could not be saved" in view.notice.value
    assert "Permission denied" in view.notice.value
    pick(view.question_view("tf"), "False")
    view.question_view("tf").check_button.click()
    assert view.notice.value.count("could not be saved") == 1


def test_an_answer_whose_save_failed_is_written_with_the_next_save(
    sample_path: Path, distlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One failed write (file briefly locked, disk full) loses nothing: the next save has it."""
    import distlab.quiz._store as store_module

    real_replace = os.replace
    failures = iter([PermissionError(13, "Permission denied")])

    def flaky_replace(source: str, target: str | Path) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_replace(source, target)

    monkeypatch.setattr(store_module.os, "replace", flaky_replace)
    view = build(sample_path)
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert "could not be saved" in view.notice.value
    assert not results_file(distlab_home).exists()
    pick(view.question_view("tf"), "False")
    view.question_view("tf").check_button.click()
    saved = json.loads(results_file(distlab_home).read_text())["quizzes"]["sample_quiz"]
    assert sorted(saved["answers"]) == ["one", "tf"]
    assert [p.name for p in distlab_home.glob("*.tmp")] == []
    assert view.notice.value == ""


def test_results_path_that_is_a_folder_is_kept_and_reported(
    sample_path: Path, distlab_home: Path
) -> None:
    """A folder in place of the results file is left alone; the quiz says answers are not saved."""
    results_file(distlab_home).mkdir(parents=True)
    view = build(sample_path)
    assert "could not be read" in view.notice.value
    pick(view.question_view("one"), "b")
    view.question_view("one").check_button.click()
    assert "Correct." in view.question_view("one").feedback.value
    assert results_file(distlab_home).is_dir()
    assert list(results_file(distlab_home).iterdir()) == []


def test_default_results_path_follows_distlab_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$DISTLAB_HOME/quiz_results.json if set, else ~/.distlab/quiz_results.json."""
    monkeypatch.setenv("DISTLAB_HOME", str(tmp_path / "dh"))
    assert default_results_path() == tmp_path / "dh" / "quiz_results.json"
    monkeypatch.delenv("DISTLAB_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_results_path() == tmp_path / "user" / ".distlab" / "quiz_results.json"
    assert ResultStore().path == default_results_path()


# --- text -----------------------------------------------------------------------------


def test_render_inline_escapes_then_marks_code() -> None:
    """HTML in quiz text is shown as text; `backticks` become <code>, escaped inside too."""
    assert render_inline("1 < 2 & 3 > 2") == "1 &lt; 2 &amp; 3 &gt; 2"
    assert render_inline("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert render_inline("call `time.time()` now") == "call <code>time.time()</code> now"
    assert render_inline("`<div>`") == "<code>&lt;div&gt;</code>"
    assert render_inline("a lone ` stays") == "a lone ` stays"


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


def test_results_path_and_notices_are_escaped(
    tmp_path: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results folder named with markup shows as text in the location line and in notices."""
    home = tmp_path / "<b>x & y"
    home.mkdir()
    (home / "quiz_results.json").write_text("{not json")
    monkeypatch.setenv("DISTLAB_HOME", str(home))
    view = build(sample_path)
    assert html.escape(str(home)) in view.location.value
    assert "damaged" in view.notice.value
    assert html.escape(str(home)) in view.notice.value
    for value in (view.location.value, view.notice.value):
        assert "<b>" not in value
        assert "& y" not in value


def test_option_labels_are_passed_as_plain_text(sample_path: Path) -> None:
    """Radio labels go to the front end unescaped, since it sets them as text, not markup."""
    view = build(sample_path)
    choice = view.question_view("one").choice
    assert choice is not None
    assert [label for label, _ in choice.options] == ["a < b", "b", "c"]


# --- shuffle --------------------------------------------------------------------------


def long_quiz() -> dict[str, Any]:
    data = copy.deepcopy(SAMPLE)
    data["id"] = "long_quiz"
    data["questions"][0]["options"] = [{"text": f"option {i}"} for i in range(8)]
    data["questions"][0]["options"][5]["correct"] = True
    return data


def test_shuffle_is_off_by_default_and_keeps_file_order(tmp_path: Path) -> None:
    """Without shuffle the options appear in file order."""
    session = QuizSession(load_quiz(write_quiz(tmp_path, long_quiz())))
    assert session.display_order("one") == tuple(range(8))


def test_shuffle_is_deterministic_by_seed(tmp_path: Path) -> None:
    """The same seed gives the same order every time; another seed gives another order."""
    quiz = load_quiz(write_quiz(tmp_path, long_quiz()))
    first = QuizSession(quiz, shuffle=True, seed=7).display_order("one")
    again = QuizSession(quiz, shuffle=True, seed=7).display_order("one")
    other = QuizSession(quiz, shuffle=True, seed=8).display_order("one")
    assert first == again
    assert sorted(first) == list(range(8))
    assert first != tuple(range(8))
    assert other != first
    assert QuizSession(quiz, shuffle=True, seed=7).display_order("tf") == (0, 1)


def test_shuffle_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Each student's kernel is a new process: the order must not hang on hash randomisation."""
    path = write_quiz(tmp_path, long_quiz())
    here = QuizSession(load_quiz(path), shuffle=True, seed=7).display_order("one")
    script = (
        "import sys\n"
        "from distlab.quiz import QuizSession, load_quiz\n"
        "session = QuizSession(load_quiz(sys.argv[1]), shuffle=True, seed=7)\n"
        "print(list(session.display_order('one')))\n"
    )
    orders = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        orders.add(tuple(json.loads(done.stdout)))
    assert orders == {here}


def test_shuffle_from_the_file_and_grading_of_shuffled_options(tmp_path: Path) -> None:
    """`shuffle: true` in the file shuffles the widgets; grading follows the option itself."""
    data = long_quiz()
    data["shuffle"] = True
    data["seed"] = 3
    view = build(write_quiz(tmp_path, data))
    choice = view.question_view("one").choice
    assert choice is not None
    labels = [label for label, _ in choice.options]
    assert labels != [f"option {i}" for i in range(8)]
    assert labels == [f"option {i}" for i in view.session.display_order("one")]
    pick(view.question_view("one"), "option 5")
    view.question_view("one").check_button.click()
    assert "Correct." in view.question_view("one").feedback.value


def test_chapter_quiz_is_not_shuffled() -> None:
    """The chapter quiz keeps the chapter's option order."""
    quiz = load_quiz(CHAPTER_QUIZ)
    assert quiz.shuffle is False
    session = QuizSession(quiz)
    for question in quiz.questions:
        assert session.display_order(question.id) == tuple(range(len(question.options)))


# --- finding quiz files ---------------------------------------------------------------


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


# --- validation -----------------------------------------------------------------------


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


def test_results_path_is_not_the_real_home(distlab_home: Path) -> None:
    """Guard for this module: DISTLAB_HOME points into tmp, so no test writes to ~/.distlab."""
    assert os.environ["DISTLAB_HOME"] == str(distlab_home)
    assert default_results_path().parent == distlab_home
