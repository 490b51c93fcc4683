"""Exceptions raised by distlab.

Every exception carries the context a user needs to act on it.

    DistlabError
    ├── VirtualTimeError          misuse of the virtual-time loop
    │   └── DeadlockError         nothing can ever run again (no timers, no I/O, no threads)
    ├── SimulationError           bad use of the network simulator (unknown node, ...)
    ├── HistoryError              a history cannot be checked for linearizability (names the op)
    ├── QuizDataError             a quiz file is invalid (names the file and the question)
    ├── GradingError              an exercise or submission cannot be graded (names it)
    └── CircuitOpenError          a circuit breaker refused a call (carries retry_after)

    BaseException
    └── ServiceCrash              raised inside an in-process service to kill it mid-request
                                  (a BaseException, like SystemExit: `except Exception` in the
                                  service's own code cannot swallow it)

Configuration mistakes (a probability outside [0, 1], a negative delay) raise
the built-in `ValueError` with a message that names the parameter.
"""

from __future__ import annotations

__all__ = [
    "CircuitOpenError",
    "DeadlockError",
    "DistlabError",
    "GradingError",
    "HistoryError",
    "QuizDataError",
    "ServiceCrash",
    "SimulationError",
    "VirtualTimeError",
]


class DistlabError(Exception):
    """Base class of every error distlab raises on purpose."""


class VirtualTimeError(DistlabError):
    """The virtual-time loop was used in a way it cannot support."""


class DeadlockError(VirtualTimeError):
    """Nothing is scheduled, no I/O is registered and no thread is working.

    The awaited result can never arrive; a real event loop would hang forever.
    """


class SimulationError(DistlabError):
    """The network simulator was asked for something impossible."""


class HistoryError(DistlabError):
    """A history of operations cannot be checked: malformed, or too hard to search."""


class QuizDataError(DistlabError):
    """A quiz file does not follow the schema.

    Attributes:
        path: the file that failed to load.
        question: the id of the offending question, or None for file-level problems.
    """

    def __init__(self, path: str, message: str, question: str | None = None) -> None:
        self.path = path
        self.question = question
        where = f"{path}" + (f", question {question!r}" if question else "")
        super().__init__(f"{where}: {message}")


class GradingError(DistlabError):
    """An exercise or a submission cannot be graded; the message names it."""


class CircuitOpenError(DistlabError):
    """A circuit breaker refused the call without trying it.

    Attributes:
        name: the breaker's name (which dependency is protected).
        retry_after: seconds until a trial call will be let through (>= 0).
    """

    def __init__(self, name: str, retry_after: float) -> None:
        self.name = name
        self.retry_after = max(0.0, retry_after)
        super().__init__(
            f"circuit {name!r} is open; a trial call is allowed in {self.retry_after:.3f} s"
        )


class ServiceCrash(BaseException):
    """Kill an in-process service in the middle of a request, as a crashed process would die.

    Raised by a test's or a lesson's hook inside a service (for example at one step of the
    orders saga); the in-process server turns it into a dropped connection for the caller
    and stops until it is restarted. Nothing in the service gets to clean up.
    """
