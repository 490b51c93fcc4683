"""distlab.lessons.checks: "Your turn" checkers say what is wrong and never raise."""

from __future__ import annotations

import pytest

from distlab.lessons.checks import Feedback, Wrong, checker, expect


@checker("the doubler")
def check_doubler(func):  # type: ignore[no-untyped-def]
    """A checker as a lesson writes one."""
    for x in (0, 1, 21):
        got = func(x)
        expect(got == 2 * x, f"double({x}) should be {2 * x}, got {got!r}")
    return "0, 1 and 21 come back doubled"


def stub(x: int) -> int:
    raise NotImplementedError


def test_a_right_answer_passes_with_the_detail() -> None:
    """Success names what was checked and the checker's detail."""
    feedback = check_doubler(lambda x: x * 2)
    assert feedback.passed and bool(feedback)
    assert feedback.message == "Correct, the doubler works: 0, 1 and 21 come back doubled."


def test_the_untouched_stub_is_not_done_yet() -> None:
    """NotImplementedError is 'not done yet', not an error."""
    feedback = check_doubler(stub)
    assert feedback.status == "not_done" and not feedback
    assert "Not done yet" in feedback.message and "the doubler" in feedback.message


def test_a_wrong_answer_gets_the_specific_message() -> None:
    """The first failed expectation is what the student reads."""
    feedback = check_doubler(lambda x: x + 2)
    assert feedback.status == "wrong"
    assert feedback.message == "Not yet: double(0) should be 0, got 2"


def test_an_exception_in_the_students_code_is_named_with_its_line() -> None:
    """Other exceptions never escape: their type, message and source line are shown."""

    def broken(x: int) -> int:
        return {}[x]  # KeyError

    feedback = check_doubler(broken)
    assert feedback.status == "error"
    assert feedback.message.startswith("Your code raised KeyError: 0")
    assert "return {}[x]" in feedback.message


def test_wrong_can_be_raised_directly_and_expect_passes_on_truth() -> None:
    """expect() is a shorthand for raising Wrong."""
    expect(True, "never shown")
    with pytest.raises(Wrong, match="nope"):
        expect(0, "nope")


def test_feedback_renders_as_escaped_html_and_text() -> None:
    """Jupyter shows the HTML; markup in a message is shown as text."""
    feedback = Feedback("x", "wrong", "Not yet: <b>1</b> & 2")
    assert "&lt;b&gt;1&lt;/b&gt; &amp; 2" in feedback._repr_html_()
    assert str(feedback) == "✗ Not yet: <b>1</b> & 2"
    assert repr(feedback) == str(feedback)
