"""distlab.errors: one hierarchy, and messages that carry what the user needs."""

from __future__ import annotations

import pytest

import distlab
from distlab.errors import (
    BulkheadFullError,
    BulkheadTimeoutError,
    CircuitOpenError,
    DeadlockError,
    DistlabError,
    GradingError,
    NoInstancesError,
    QuizDataError,
    SimulationError,
    VirtualTimeError,
)


@pytest.mark.parametrize(
    "error",
    [
        VirtualTimeError,
        DeadlockError,
        SimulationError,
        QuizDataError,
        GradingError,
        BulkheadFullError,
        BulkheadTimeoutError,
        NoInstancesError,
    ],
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
    assert distlab.BulkheadFullError is BulkheadFullError
    assert distlab.NoInstancesError is NoInstancesError
    assert distlab.DistlabError is DistlabError


def test_a_service_crash_cannot_be_swallowed_by_except_exception() -> None:
    """ServiceCrash kills an in-process service like a dead process: not an Exception."""
    from distlab.errors import ServiceCrash

    assert issubclass(ServiceCrash, BaseException)
    assert not issubclass(ServiceCrash, Exception)


def test_bulkhead_full_error_names_the_bulkhead_its_limits_and_why() -> None:
    """'full' says how many run and wait; 'timeout' says how long it waited."""
    full = BulkheadFullError("payments", 10, 5, 0.5, "full")
    assert (full.name, full.max_concurrent, full.max_queue, full.max_wait) == (
        "payments",
        10,
        5,
        0.5,
    )
    assert str(full) == (
        "bulkhead 'payments' is full: 10 calls running and 5 waiting "
        "(max_concurrent=10, max_queue=5)"
    )
    assert "no room to wait (max_queue=0)" in str(BulkheadFullError("p", 2, 0, 0.0, "full"))
    late = BulkheadFullError("payments", 10, 5, 0.5, "timeout")
    assert late.reason == "timeout" and "no slot came free within max_wait=0.5 s" in str(late)


def test_bulkhead_timeout_error_is_a_timeout_error_that_says_the_thread_runs_on() -> None:
    """except TimeoutError catches it; the message warns that the thread keeps its slot."""
    err = BulkheadTimeoutError("legacy", 2.0)
    assert isinstance(err, TimeoutError) and (err.name, err.timeout) == ("legacy", 2.0)
    assert "2 s" in str(err) and "keeps running" in str(err)


def test_no_instances_error_is_a_lookup_error_naming_the_service() -> None:
    """except LookupError catches it; the message names the service and the reason."""
    err = NoInstancesError("orders")
    assert isinstance(err, LookupError) and err.service == "orders"
    assert str(err) == "no instance of service 'orders': the registry lists no live instance"
    assert (
        str(NoInstancesError("x", "registry down")) == "no instance of service 'x': registry down"
    )


def test_invalid_event_carries_its_reason_and_is_a_distlab_error() -> None:
    """The dead-letter queue shows the reason a function gave."""
    from distlab.errors import InvalidEvent, ServiceStartError

    err = InvalidEvent("total is negative: -3")
    assert err.reason == "total is negative: -3" == str(err)
    assert isinstance(err, DistlabError) and issubclass(ServiceStartError, DistlabError)
