"""Exceptions raised by distlab.

Every exception carries the context a user needs to act on it.

    DistlabError
    ├── VirtualTimeError          misuse of the virtual-time loop
    │   └── DeadlockError         nothing can ever run again (no timers, no I/O, no threads)
    ├── SimulationError           bad use of the network simulator (unknown node, ...)
    ├── HistoryError              a history cannot be checked for linearizability (names the op)
    ├── QuizDataError             a quiz file is invalid (names the file and the question)
    ├── GradingError              an exercise or submission cannot be graded (names it)
    │   └── SandboxUnavailable    no grading sandbox on this machine (says why)
    ├── CircuitOpenError          a circuit breaker refused a call (carries retry_after)
    ├── BulkheadFullError         a bulkhead refused a call: no slot, queue full or wait too long
    ├── BulkheadTimeoutError      (also TimeoutError) a thread-pool bulkhead call took too long
    ├── NoInstancesError          (also LookupError) service discovery knows no live instance
    ├── InvalidEvent              an event no retry can fix: dead-letter it (carries reason)
    └── ServiceStartError         a real server (redis-server, functions-framework) did not start

    BaseException
    └── ServiceCrash              raised inside an in-process service to kill it mid-request
                                  (a BaseException, like SystemExit: `except Exception` in the
                                  service's own code cannot swallow it)

Configuration mistakes (a probability outside [0, 1], a negative delay) raise
the built-in `ValueError` with a message that names the parameter.
"""

from __future__ import annotations

__all__ = [
    "BulkheadFullError",
    "BulkheadTimeoutError",
    "CircuitOpenError",
    "DeadlockError",
    "DistlabError",
    "GradingError",
    "HistoryError",
    "InvalidEvent",
    "NoInstancesError",
    "QuizDataError",
    "SandboxUnavailable",
    "ServiceCrash",
    "ServiceStartError",
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


class SandboxUnavailable(GradingError):
    """Student code cannot be run in a sandbox here; the message says what is missing."""


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


class InvalidEvent(DistlabError):
    """An event that no retry can fix (malformed, wrong type, invalid data).

    A serverless function raises it to say "do not retry me": the runtime moves the
    message to the dead-letter queue at once, with ``reason``, instead of redelivering it.

    Attributes:
        reason: what is wrong with the event, for whoever reads the dead-letter queue.
    """

    def __init__(self, reason: str) -> None:
        self.reason = str(reason)
        super().__init__(self.reason)


class ServiceStartError(DistlabError):
    """A real server that distlab starts (redis-server, functions-framework) did not start.

    The message names the program and ends with the last lines of its log.
    """


class ServiceCrash(BaseException):
    """Kill an in-process service in the middle of a request, as a crashed process would die.

    Raised by a test's or a lesson's hook inside a service (for example at one step of the
    orders saga, or in a serverless function instance mid-batch, see
    ``distlab.services.serverless.runtime``); the in-process server turns it into a dropped
    connection for the caller and stops until it is restarted. Nothing in the service gets
    to clean up.
    """


class BulkheadFullError(DistlabError):
    """A bulkhead refused a call: every slot was taken and the call could not wait.

    Attributes:
        name: the bulkhead's name (which dependency it isolates).
        max_concurrent: calls the bulkhead lets run at once.
        max_queue: callers it lets wait for a slot.
        max_wait: seconds a waiting caller waits at most.
        reason: ``"full"`` (no slot and no room to wait) or ``"timeout"`` (waited
            ``max_wait`` seconds and no slot came free).
    """

    def __init__(
        self, name: str, max_concurrent: int, max_queue: int, max_wait: float, reason: str
    ) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self.reason = reason
        if reason == "timeout":
            why = f"no slot came free within max_wait={max_wait:g} s"
        else:
            why = f"{max_concurrent} calls running" + (
                f" and {max_queue} waiting" if max_queue else " and no room to wait (max_queue=0)"
            )
        super().__init__(
            f"bulkhead {name!r} is full: {why} "
            f"(max_concurrent={max_concurrent}, max_queue={max_queue})"
        )


class BulkheadTimeoutError(DistlabError, TimeoutError):
    """A call through a thread-pool bulkhead did not finish within its timeout.

    The caller stops waiting; the thread cannot be stopped and keeps its slot until
    the function returns.

    Attributes:
        name: the bulkhead's name.
        timeout: the seconds the caller waited.
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        super().__init__(
            f"bulkhead {name!r}: the call did not finish within {timeout:g} s; its thread "
            "keeps running and holds its slot until the function returns"
        )


class NoInstancesError(DistlabError, LookupError):
    """Service discovery knows no live instance of a service.

    Attributes:
        service: the service name that could not be resolved.
        reason: why (the registry lists none, or it is unreachable and nothing is cached).
    """

    def __init__(self, service: str, reason: str = "the registry lists no live instance") -> None:
        self.service = service
        self.reason = reason
        super().__init__(f"no instance of service {service!r}: {reason}")
