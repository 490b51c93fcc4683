"""The chapter's naive circuit breaker, translated faithfully, for the lessons to dissect.

Lesson 06 runs it next to ``distlab.patterns.breaker.CircuitBreaker`` to show what it gets
wrong. Do not use it to protect anything.

The only change from the chapter is the ``clock`` keyword: the chapter calls
``time.time()`` directly, which is also the default here, and the lesson injects a
virtual clock in its place so that minutes of outage take microseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["ChapterCircuitBreaker"]


class ChapterCircuitBreaker:
    """The circuit breaker exactly as the chapter writes it (flaws included).

    Args:
        failure_threshold: failures counted before the breaker refuses calls.
        recovery_timeout: seconds after the last failure before calls go through again.
        clock: where the time comes from; the chapter hard-codes ``time.time``.
    """

    def __init__(
        self,
        failure_threshold: int,
        recovery_timeout: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.failure_count = 0
        self.last_failure_time: float | None = None
        self.clock = clock  # the chapter: time.time

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func`` unless the breaker is open (the chapter's code, line for line)."""
        if self.failure_count >= self.failure_threshold:
            # The chapter relies on last_failure_time being set once failures are counted.
            if self.clock() - self.last_failure_time < self.recovery_timeout:  # type: ignore[operator]
                raise Exception("Circuit breaker is open")
            else:
                self.failure_count = 0
        try:
            result = func(*args, **kwargs)
            self.failure_count = 0
            return result
        except Exception as e:
            self.failure_count += 1
            self.last_failure_time = self.clock()
            raise e
