"""QuizSession and the quiz view: checking answers, feedback, score, reset, summary, shuffle.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from distlab.course.quiz import (
    QuizSession,
    build,
    load_quiz,
    read_number,
)
from tests import REPO
from tests.course.quiz.helpers import (
    SAMPLE,
    correct_texts,
    pick,
    results_file,
    write_quiz,
    wrong_text,
)

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"


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


# --- text -----------------------------------------------------------------------------


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
        "from distlab.course.quiz import QuizSession, load_quiz\n"
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


# --- validation -----------------------------------------------------------------------


# --- the extended format: option feedback, numeric questions, predictions --------------


def _feedback_items(html_text: str) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", html_text)


def test_a_chosen_option_shows_its_own_feedback_before_the_explanation(rich_path: Path) -> None:
    """A wrong single answer shows why that option is wrong, then the question's explanation."""
    view = build(rich_path)
    question = view.question_view("pick")
    pick(question, "The server never got it")
    question.check_button.click()
    value = question.feedback.value
    assert "Incorrect." in value
    (item,) = _feedback_items(value)
    assert "“The server never got it”" in item
    assert "could have been lost instead: <code>timeout</code> hides which." in item
    assert value.index("could have been lost") < value.index("A timeout says only")
    assert "a timeout is silence" not in value  # another option's feedback stays hidden


def test_the_right_option_shows_its_feedback_and_an_option_without_one_shows_none(
    rich_path: Path,
) -> None:
    """A right single answer shows its own feedback; an option without feedback adds no list."""
    view = build(rich_path)
    question = view.question_view("pick")
    pick(question, "Nothing about whether it ran")
    question.check_button.click()
    assert "Correct." in question.feedback.value
    assert "a timeout is silence" in question.feedback.value
    pick(question, "It ran twice")
    question.check_button.click()
    assert _feedback_items(question.feedback.value) == []
    assert "A timeout says only" in question.feedback.value


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (("Delay it", "Lose it", "Duplicate it"), []),
        (("Delay it", "Duplicate it"), ["You left out “Lose it”"]),
        (
            ("Delay it", "Lose it", "Duplicate it", "Fix its typos"),
            ["“Fix its typos”"],
        ),
        (
            ("Fix its typos",),
            ["You left out “Delay it”", "You left out “Lose it”", "“Fix its typos”"],
        ),
    ],
    ids=["right", "missed-one", "one-too-many", "all-wrong"],
)
def test_multiple_choice_explains_each_option_chosen_or_missed_wrongly(
    rich_path: Path, selection: tuple[str, ...], expected: list[str]
) -> None:
    """Select-all-that-apply shows the feedback of each wrongly chosen or wrongly missed option."""
    view = build(rich_path)
    question = view.question_view("all")
    pick(question, *selection)
    question.check_button.click()
    labels = [
        re.sub(r"</?strong>", "", item).split(":")[0]
        for item in _feedback_items(question.feedback.value)
    ]
    assert labels == expected  # "Duplicate it" has no feedback: never listed


@pytest.mark.parametrize(
    ("typed", "status"),
    [
        ("99.3", "correct"),
        ("99.2", "correct"),  # the edge of the tolerance counts, despite binary floats
        ("99.4", "correct"),
        (" 99.3 % ", "correct"),  # the unit may be typed too
        ("+99.25", "correct"),
        ("9.93e1", "correct"),
        ("99.1", "incorrect"),
        ("72.9", "incorrect"),
        ("-99.3", "incorrect"),
    ],
)
def test_numeric_answer_within_the_tolerance_is_right(
    rich_path: Path, typed: str, status: str
) -> None:
    """A number is right within answer ± tolerance, inclusive; the unit may follow it."""
    session = QuizSession(load_quiz(rich_path))
    assert session.check_number("share", typed).status == status
    answer = session.answer("share")
    assert answer is not None
    assert answer.correct == (status == "correct")
    assert answer.selected == frozenset()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("72,9", "'72,9' has a comma: use a point for decimals (72.9, not 72,9)"),
        ("1,000", "no thousands separator (1000, not 1,000)"),
        ("about 70", "'about 70' is not a number: type digits only"),
        ("nan", "'nan' is not a number"),
        ("inf", "'inf' is not a number"),
        ("1e999", "'1e999' is too large"),
        ("99.3 s", "'99.3 s' is not a number"),
    ],
)
def test_numeric_input_that_is_not_a_number_says_what_to_type(
    rich_path: Path, distlab_home: Path, typed: str, message: str
) -> None:
    """Text that is not a plain number is "invalid" with a message; nothing is saved or counted."""
    session = QuizSession(load_quiz(rich_path))
    result = session.check_number("share", typed)
    assert result.status == "invalid"
    assert message in result.message
    assert session.answer("share") is None
    assert not results_file(distlab_home).exists()


def test_read_number_reads_plain_numbers_and_refuses_empty_input() -> None:
    """read_number is the parser behind numeric questions."""
    assert read_number("72.9") == 72.9
    assert read_number(" -.5 ") == -0.5
    assert read_number("12 %", unit="%") == 12
    assert read_number("3.") == 3
    with pytest.raises(ValueError, match="Enter a number first"):
        read_number("   ")
    with pytest.raises(ValueError, match="Enter a number first"):
        read_number("%", unit="%")


def test_numeric_question_in_the_view(rich_path: Path, distlab_home: Path) -> None:
    """Empty input asks for a number; a comma is explained; a right number scores and is saved."""
    view = build(rich_path)
    question = view.question_view("share")
    assert question.choice is None and question.checkboxes == []
    assert question.number_input is not None and question.unit is not None
    assert question.unit.value == "%"
    question.check_button.click()
    assert "Enter a number first." in question.feedback.value
    question.number_input.value = "99,3"
    question.check_button.click()
    assert "has a comma" in question.feedback.value
    assert view.session.answered == 0
    question.number_input.value = "50"
    question.check_button.click()
    assert "Incorrect." in question.feedback.value
    assert "0.19^3" in question.feedback.value
    assert "<em>Course note:</em> Only if losses are independent." in question.feedback.value
    question.number_input.value = "99.3"
    question.check_button.click()
    assert "Correct." in question.feedback.value
    assert "1 / 3 correct" in view.score.value
    saved = json.loads(results_file(distlab_home).read_text())["quizzes"]["rich_quiz"]
    assert saved["answers"]["share"]["selected"] == ["99.3"]
    assert saved["answers"]["share"]["attempts"] == 2  # invalid and empty checks do not count

    again = build(rich_path).question_view("share")
    assert again.number_input is not None
    assert again.number_input.value == "99.3"
    assert "Correct." in again.feedback.value


def test_choice_methods_refuse_the_wrong_question_type(rich_path: Path) -> None:
    """check() is for options and check_number() for numbers; mixing them is a programming error."""
    session = QuizSession(load_quiz(rich_path))
    with pytest.raises(ValueError, match="is numeric: use check_number"):
        session.check("share", [0])
    with pytest.raises(ValueError, match="is single, not numeric"):
        session.check_number("pick", "1")


def test_a_saved_number_that_cannot_be_read_is_answered_again(
    rich_path: Path, distlab_home: Path
) -> None:
    """A damaged saved number is not shown, and the quiz asks for that question again."""
    session = QuizSession(load_quiz(rich_path))
    session.check_number("share", "99.3")
    path = results_file(distlab_home)
    data = json.loads(path.read_text())
    data["quizzes"]["rich_quiz"]["answers"]["share"]["selected"] = ["lots"]
    path.write_text(json.dumps(data))
    again = build(rich_path)
    assert again.session.answer("share") is None
    assert "answered question(s) 3:" in again.notice.value


def test_predictions_are_saved_but_never_scored(rich_path: Path, distlab_home: Path) -> None:
    """A checked prediction is saved under the quiz id and not counted in score or progress."""
    session = QuizSession(load_quiz(rich_path))
    assert session.check("guess", [1]).status == "correct"
    assert session.check_number("how_many", "5").status == "correct"
    assert (session.score, session.answered, session.total) == (0, 0, 3)
    saved = json.loads(results_file(distlab_home).read_text())["quizzes"]["rich_quiz"]["answers"]
    assert sorted(saved) == ["guess", "how_many"]
    view = build(rich_path)
    assert "0 / 3 correct" in view.score.value
    assert "0 of 3 answered" in view.score.value
    for question in view.questions:
        if question.number_input is not None:
            question.number_input.value = "99.3"
        else:
            pick(question, *correct_texts(question))
        question.check_button.click()
    assert "Quiz complete: 3 / 3 correct." in view.summary.value


def test_reset_of_the_quiz_keeps_the_predictions(rich_path: Path, distlab_home: Path) -> None:
    """Reset forgets the quiz's questions; the predictions made during the lesson stay."""
    session = QuizSession(load_quiz(rich_path))
    session.check("guess", [0])
    session.check("pick", [1])
    session.reset()
    assert session.answer("pick") is None
    assert session.answer("guess") is not None
    saved = json.loads(results_file(distlab_home).read_text())["quizzes"]["rich_quiz"]["answers"]
    assert sorted(saved) == ["guess"]
    assert QuizSession(load_quiz(rich_path)).answer("guess") is not None
