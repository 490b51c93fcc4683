"""distlab: the support package of the Distributed Systems and Microservices course.

The package shows its layers; a lower layer never imports a higher one:

    distlab.errors     every exception distlab raises on purpose (the hierarchy is drawn there)
    distlab.sim        the simulated world: virtual time, the network simulator, HTTP faults
    distlab.patterns   reference implementations of the patterns (the breaker, ...)
    distlab.lessons    one module per lesson, named by the lesson's slug
    distlab.course     the course's tooling: quizzes, grading, the ``distlab`` command

The names most lessons use are re-exported here (``distlab.run``, ``distlab.Network``,
``distlab.CircuitBreaker``, ...). ``from distlab import quiz`` gives the quiz engine.
The patterns and the quiz engine are imported on first use: ``import distlab`` stays
light, and works where a pattern is hidden (the grading sandbox hides the ones an
exercise asks students to build).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from distlab.sim.faults import FaultEvent, FaultyTransport, SyncFaultyTransport
from distlab.sim.netsim import (
    Context,
    Delay,
    LatencySummary,
    Network,
    NetworkStats,
    Node,
    TraceEvent,
)
from distlab.sim.vtime import ManualClock, VirtualEventLoop, clock, current_loop, now, rng, run

if TYPE_CHECKING:
    from distlab.course import quiz
    from distlab.patterns.breaker import CircuitBreaker, http_failure
    from distlab.patterns.bulkhead import Bulkhead, ThreadPoolBulkhead
    from distlab.patterns.discovery import DiscoveryClient, ServiceRegistry

__all__ = [
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "Context",
    "DeadlockError",
    "Delay",
    "DiscoveryClient",
    "DistlabError",
    "FaultEvent",
    "FaultyTransport",
    "GradingError",
    "LatencySummary",
    "ManualClock",
    "Network",
    "NetworkStats",
    "NoInstancesError",
    "Node",
    "QuizDataError",
    "ServiceRegistry",
    "SimulationError",
    "SyncFaultyTransport",
    "ThreadPoolBulkhead",
    "TraceEvent",
    "VirtualEventLoop",
    "VirtualTimeError",
    "clock",
    "current_loop",
    "http_failure",
    "now",
    "quiz",
    "rng",
    "run",
]

__version__ = "0.1.0"

# Names imported on first use: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "CircuitBreaker": ("distlab.patterns.breaker", "CircuitBreaker"),
    "http_failure": ("distlab.patterns.breaker", "http_failure"),
    "Bulkhead": ("distlab.patterns.bulkhead", "Bulkhead"),
    "ThreadPoolBulkhead": ("distlab.patterns.bulkhead", "ThreadPoolBulkhead"),
    "DiscoveryClient": ("distlab.patterns.discovery", "DiscoveryClient"),
    "ServiceRegistry": ("distlab.patterns.discovery", "ServiceRegistry"),
    "quiz": ("distlab.course.quiz", None),
}


def __getattr__(name: str) -> Any:
    """Import the lazily exported names (patterns, the quiz engine) on first use."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'distlab' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
