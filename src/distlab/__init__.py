"""distlab: the support package of the Distributed Systems and Microservices course.

Virtual time, a seeded network simulator, HTTP fault injection, resilience patterns,
widget quizzes and nbgrader tooling, small and tested so the notebooks can show ideas.
"""

from distlab.breaker import CircuitBreaker, http_failure
from distlab.errors import (
    CircuitOpenError,
    DeadlockError,
    DistlabError,
    GradingError,
    QuizDataError,
    SimulationError,
    VirtualTimeError,
)
from distlab.faults import FaultEvent, FaultyTransport, SyncFaultyTransport
from distlab.netsim import Context, Delay, LatencySummary, Network, NetworkStats, Node, TraceEvent
from distlab.vtime import ManualClock, VirtualEventLoop, clock, current_loop, now, rng, run

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "Context",
    "DeadlockError",
    "Delay",
    "DistlabError",
    "FaultEvent",
    "FaultyTransport",
    "GradingError",
    "LatencySummary",
    "ManualClock",
    "Network",
    "NetworkStats",
    "Node",
    "QuizDataError",
    "SimulationError",
    "SyncFaultyTransport",
    "TraceEvent",
    "VirtualEventLoop",
    "VirtualTimeError",
    "clock",
    "current_loop",
    "http_failure",
    "now",
    "rng",
    "run",
]

__version__ = "0.1.0"
