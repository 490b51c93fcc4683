"""distlab.errors: one hierarchy, and messages that carry what the user needs."""

from __future__ import annotations

import pytest

import distlab
from distlab.errors import (
    CircuitOpenError,
    DeadlockError,
    DistlabError,
    GradingError,
    QuizDataError,
    SimulationError,
    VirtualTimeError,
)


@pytest.mark.parametrize(
    "error", [VirtualTimeError, DeadlockError, SimulationError, QuizDataError, GradingError]
)
def test_every_error_is_a_distlab_error(error: type[Exception]) -> None:
    """One except clause catches everything distlab raises on purpose."""
    assert issubclass(error, DistlabError)
    assert issubclass(DeadlockError, VirtualTimeError)


def test_circuit_open_error_names_the_breaker_and_never_a_negative_wait() -> None:
    """retry_after is clamped at 0 and the message says which circuit and how long."""
    err = CircuitOpenError("orders", -1.5)
    assert err.retry_after == 0.0
    assert "'orders'" in str(err) and "0.000 s" in str(err)
    assert isinstance(err, DistlabError)


def test_quiz_data_error_names_the_file_and_the_question() -> None:
    """The message starts with the file, then the question id when there is one."""
    err = QuizDataError("quizzes/x.yaml", "missing field(s): prompt", question="q1")
    assert str(err) == "quizzes/x.yaml, question 'q1': missing field(s): prompt"
    assert (err.path, err.question) == ("quizzes/x.yaml", "q1")
    assert str(QuizDataError("a.yaml", "empty")) == "a.yaml: empty"


def test_the_errors_are_exported_at_the_top_level() -> None:
    """distlab.CircuitOpenError and friends are the same classes as in distlab.errors."""
    assert distlab.CircuitOpenError is CircuitOpenError
    assert distlab.DistlabError is DistlabError


def test_a_service_crash_cannot_be_swallowed_by_except_exception() -> None:
    """ServiceCrash kills an in-process service like a dead process: not an Exception."""
    from distlab.errors import ServiceCrash

    assert issubclass(ServiceCrash, BaseException)
    assert not issubclass(ServiceCrash, Exception)
