"""distlab: the support package of the Distributed Systems and Microservices course.

Virtual time, a seeded network simulator, HTTP fault injection, resilience patterns,
widget quizzes and nbgrader tooling, small and tested so the notebooks can show ideas.
"""

from distlab.errors import (
    CircuitOpenError,
    DeadlockError,
    DistlabError,
    GradingError,
    QuizDataError,
    SimulationError,
    VirtualTimeError,
)
from distlab.vtime import ManualClock, VirtualEventLoop, clock, current_loop, now, rng, run

__all__ = [
    "CircuitOpenError",
    "DeadlockError",
    "DistlabError",
    "GradingError",
    "ManualClock",
    "QuizDataError",
    "SimulationError",
    "VirtualEventLoop",
    "VirtualTimeError",
    "clock",
    "current_loop",
    "now",
    "rng",
    "run",
]

__version__ = "0.1.0"
