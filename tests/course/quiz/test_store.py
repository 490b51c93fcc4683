"""ResultStore: the per-user results file survives restarts, concurrency and corruption.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import threading
from pathlib import Path

import pytest

from distlab.course.quiz import (
    ResultStore,
    SavedAnswer,
    build,
    default_results_path,
)
from tests import REPO
from tests.course.quiz.helpers import (
    SAMPLE,
    correct_texts,
    pick,
    results_file,
    write_quiz,
)

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"


# --- grading and feedback -------------------------------------------------------------


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

    monkeypatch.setattr("distlab.course.quiz._store.tempfile.mkstemp", refuse)
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
    import distlab.course.quiz._store as store_module

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


def test_results_path_is_not_the_real_home(distlab_home: Path) -> None:
    """Guard for this module: DISTLAB_HOME points into tmp, so no test writes to ~/.distlab."""
    assert os.environ["DISTLAB_HOME"] == str(distlab_home)
    assert default_results_path().parent == distlab_home
