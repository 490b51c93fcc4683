"""A small serverless platform on virtual time: instances, cold starts, a queue trigger.

:class:`FunctionRuntime` runs one function the way FaaS platforms do:

* an *instance* (a process with the function's code loaded) serves one invocation at a
  time; an invocation that finds no idle instance starts a new one and waits for its
  *cold start* (``cold_start`` seconds) before it runs;
* an instance idle for ``idle_timeout`` seconds is shut down: with no traffic the
  function *scales to zero* and costs nothing, and the next request is cold again;
* ``provisioned`` instances are started up front and never shut down (AWS calls this
  provisioned concurrency, Azure the always-ready instances of its Premium plan);
* at most ``max_concurrency`` instances exist at once; an invocation beyond that is
  *throttled* (refused at once).

:class:`QueueTrigger` connects a :class:`~distlab.services.serverless.queue.DurableQueue`
to a runtime, like an event source mapping: pollers receive batches, each batch runs on
one instance, message by message. A message whose function returns is acknowledged; one
that is not a CloudEvent, or whose function raises
:class:`~distlab.errors.InvalidEvent`, goes to the dead-letter queue with the reason;
any other exception leaves it unacknowledged, so it comes back after the visibility
timeout (and is dead after ``max_deliveries``). A :class:`~distlab.errors.ServiceCrash`
kills the instance: the rest of its batch is left unacknowledged.

Everything runs on ``distlab.run``: durations are drawn from seeded distributions and
waited in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from distlab.errors import InvalidEvent, ServiceCrash
from distlab.services.serverless.events import decode
from distlab.services.serverless.queue import DurableQueue

__all__ = [
    "Duration",
    "FunctionRuntime",
    "Instance",
    "Invocation",
    "QueueTrigger",
    "Throttled",
    "TriggerReport",
]

Duration = float | Callable[[random.Random], float]
"""Seconds, fixed (``0.2``) or drawn from the runtime's seeded generator (``lambda r: ...``)."""

Outcome = Literal["ok", "error", "throttled", "crashed"]


class Throttled(RuntimeError):
    """No instance is free and ``max_concurrency`` instances already exist."""


@dataclass
class Instance:
    """One instance of the function (a process with its code loaded).

    Attributes:
        number: 1, 2, ... in order of creation.
        born: virtual time it was started.
        ready_at: when its cold start ended (``born`` for provisioned instances).
        provisioned: started up front and never shut down for idleness.
        busy: serving an invocation now.
        last_used: when it last finished an invocation.
        died: when it was shut down (idle) or crashed; None while it lives.
        invocations: how many invocations it served.
        state: whatever the function keeps between warm invocations of this instance.
    """

    number: int
    born: float
    ready_at: float
    provisioned: bool = False
    busy: bool = False
    last_used: float = 0.0
    died: float | None = None
    invocations: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    def lifetime(self, until: float) -> float:
        """Seconds it existed between its birth and ``until`` (or its death)."""
        end = until if self.died is None else min(self.died, until)
        return max(0.0, end - self.born)


@dataclass(frozen=True)
class Invocation:
    """One call of the function, as the caller saw it.

    Attributes:
        arrived: when the request arrived (virtual seconds).
        started: when the function began to run (after a cold start, if any).
        finished: when the answer was ready.
        cold: it waited for a new instance.
        instance: the instance's number (None when throttled).
        outcome: ``"ok"``, ``"error"`` (the function raised), ``"throttled"`` or ``"crashed"``.
        error: what the function raised, if anything.
    """

    arrived: float
    started: float
    finished: float
    cold: bool
    instance: int | None
    outcome: Outcome
    error: BaseException | None = None

    @property
    def latency(self) -> float:
        """Seconds from arrival to answer."""
        return self.finished - self.arrived


def _check_duration(name: str, value: object) -> Duration:
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be seconds >= 0 or a function of an rng, got {value!r}")
    return float(value)


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class FunctionRuntime:
    """Instances of one function on virtual time: cold starts, reuse, scale to zero.

    Create it inside ``distlab.run`` (it reads the virtual clock).

    Args:
        function: called with each event (one argument); None for a function whose
            work is only its ``duration`` (latency and cost experiments).
        cold_start: seconds to start an instance (load the runtime and the code).
        duration: seconds one invocation runs.
        max_concurrency: most instances at once (>= 1).
        provisioned: instances started now and kept warm for ever (>= 0, <= max_concurrency).
        idle_timeout: seconds an idle instance lives before it is shut down (> 0).
        rng: draws the durations; default ``distlab.rng()`` (seeded by ``distlab.run``).

    Raises:
        ValueError: for an option out of range, naming it.
    """

    def __init__(
        self,
        function: Callable[[Any], Any] | None = None,
        *,
        cold_start: Duration = 0.5,
        duration: Duration = 0.05,
        max_concurrency: int = 1000,
        provisioned: int = 0,
        idle_timeout: float = 600.0,
        rng: random.Random | None = None,
    ) -> None:
        if function is not None and not callable(function):
            raise ValueError(f"function must be callable or None, got {function!r}")
        self.function = function
        self.cold_start = _check_duration("cold_start", cold_start)
        self.duration = _check_duration("duration", duration)
        self.max_concurrency = _check_count("max_concurrency", max_concurrency, 1)
        self.provisioned = _check_count("provisioned", provisioned, 0)
        if provisioned > max_concurrency:
            raise ValueError(
                f"provisioned must be <= max_concurrency ({max_concurrency}), got {provisioned}"
            )
        if isinstance(idle_timeout, bool) or not (
            isinstance(idle_timeout, int | float) and 0 < idle_timeout < math.inf
        ):
            raise ValueError(f"idle_timeout must be seconds > 0, got {idle_timeout!r}")
        self.idle_timeout = float(idle_timeout)
        if rng is None:
            from distlab.sim.vtime import rng as current_rng

            rng = current_rng()
        self.rng = rng
        self._loop = asyncio.get_running_loop()
        self.instances: list[Instance] = []
        self._alive: list[Instance] = []  # kept in step by _spawn and _retire
        self.invocations: list[Invocation] = []
        self.timeline: list[tuple[float, int]] = [(self.now, 0)]
        self.billed_seconds = 0.0
        for _ in range(provisioned):
            self._spawn(provisioned=True)

    # --- reading -----------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The virtual time, in seconds."""
        return self._loop.time()

    @property
    def alive(self) -> list[Instance]:
        """The instances that exist now."""
        return list(self._alive)

    @property
    def cold_starts(self) -> int:
        """How many instances were started on demand (each made one request wait)."""
        return sum(1 for i in self.instances if not i.provisioned)

    def instance_seconds(self, until: float | None = None) -> float:
        """Seconds of instance lifetime, summed over every instance, up to ``until``."""
        end = self.now if until is None else until
        return sum(i.lifetime(end) for i in self.instances)

    def draw(self, duration: Duration) -> float:
        """One value of ``duration`` (seconds), drawn with the runtime's generator."""
        value = duration(self.rng) if callable(duration) else duration
        return max(0.0, float(value))

    # --- instances ----------------------------------------------------------------------
    def _spawn(self, *, provisioned: bool = False) -> Instance:
        now = self.now
        instance = Instance(len(self.instances) + 1, now, now, provisioned, last_used=now)
        self.instances.append(instance)
        self._alive.append(instance)
        self._record()
        return instance

    def _record(self) -> None:
        self.timeline.append((self.now, len(self._alive)))

    def _retire(self, instance: Instance) -> None:
        if instance.died is None:
            instance.died = self.now
            self._alive.remove(instance)
            self._record()

    def _schedule_reap(self, instance: Instance) -> None:
        if instance.provisioned:
            return
        stamp = instance.last_used

        def reap() -> None:
            if not instance.busy and instance.died is None and instance.last_used == stamp:
                self._retire(instance)

        self._loop.call_later(self.idle_timeout, reap)

    @contextlib.asynccontextmanager
    async def instance(self) -> AsyncIterator[tuple[Instance, bool]]:
        """Hold an instance for one invocation: ``async with runtime.instance() as (inst, cold)``.

        An idle warm instance is reused (the most recently used one, so the others can
        reach their idle timeout); otherwise a new one is started and its cold start is
        waited. A :class:`~distlab.errors.ServiceCrash` raised inside kills the instance
        and propagates.

        Raises:
            Throttled: ``max_concurrency`` instances exist and all are busy.
        """
        idle = [i for i in self._alive if not i.busy]
        cold = not idle
        if idle:
            instance = max(idle, key=lambda i: (i.last_used, i.number))
            instance.busy = True
        else:
            if len(self._alive) >= self.max_concurrency:
                raise Throttled(f"all {self.max_concurrency} instances are busy")
            instance = self._spawn()
            instance.busy = True
            await asyncio.sleep(self.draw(self.cold_start))
            instance.ready_at = self.now
        try:
            yield instance, cold
        except ServiceCrash:
            self._retire(instance)
            raise
        finally:
            instance.busy = False
            if instance.died is None:
                instance.last_used = self.now
                self._schedule_reap(instance)

    async def run_function(self, instance: Instance, event: Any) -> None:
        """Run the function on ``instance`` and wait its ``duration``; bill the time.

        Exceptions from the function propagate (after the duration has passed).
        """
        started = self.now
        instance.invocations += 1
        try:
            if self.function is not None:
                self.function(event)
        finally:
            await asyncio.sleep(self.draw(self.duration))
            self.billed_seconds += self.now - started

    async def invoke(self, event: Any = None) -> Invocation:
        """Invoke the function once, synchronously (like an HTTP request), and record it.

        Never raises for the function's sake: the outcome says what happened.
        """
        arrived = self.now
        try:
            async with self.instance() as (instance, cold):
                started = self.now
                try:
                    await self.run_function(instance, event)
                except Exception as exc:
                    number = instance.number
                    result = Invocation(arrived, started, self.now, cold, number, "error", exc)
                else:
                    result = Invocation(arrived, started, self.now, cold, instance.number, "ok")
        except Throttled as exc:
            result = Invocation(arrived, arrived, arrived, False, None, "throttled", exc)
        except ServiceCrash as exc:
            result = Invocation(arrived, arrived, self.now, False, None, "crashed", exc)
        self.invocations.append(result)
        return result


@dataclass
class TriggerReport:
    """What a :class:`QueueTrigger` did.

    Attributes:
        acked: messages whose function returned, acknowledged.
        dead_lettered: messages it moved to the dead-letter queue (with a reason).
        failed: function calls that raised (the message will come back).
        crashes: instances that crashed mid-batch.
        polls: receive calls, empty ones included.
        batches: non-empty batches processed.
        finished_at: virtual time the trigger stopped.
    """

    acked: int = 0
    dead_lettered: int = 0
    failed: int = 0
    crashes: int = 0
    polls: int = 0
    batches: int = 0
    finished_at: float = 0.0
    errors: list[str] = field(default_factory=list)


class QueueTrigger:
    """Pull messages from a queue and invoke a runtime's function with each CloudEvent.

    Args:
        queue: where the messages come from.
        runtime: the function and its instances.
        batch_size: messages per receive (1..100), processed one by one on one instance.
        pollers: concurrent pollers, each holding at most one instance (>= 1; a poller
            that finds every instance busy and ``max_concurrency`` reached waits a poll).
        poll_interval: virtual seconds a poller waits after an empty receive.

    Raises:
        ValueError: for an option out of range, naming it.
    """

    def __init__(
        self,
        queue: DurableQueue,
        runtime: FunctionRuntime,
        *,
        batch_size: int = 10,
        pollers: int = 1,
        poll_interval: float = 1.0,
    ) -> None:
        if not isinstance(queue, DurableQueue):
            raise ValueError(f"queue must be a DurableQueue, got {type(queue).__name__}")
        if not isinstance(runtime, FunctionRuntime):
            raise ValueError(f"runtime must be a FunctionRuntime, got {type(runtime).__name__}")
        self.queue = queue
        self.runtime = runtime
        self.batch_size = _check_count("batch_size", batch_size, 1)
        if batch_size > 100:
            raise ValueError(f"batch_size must be an int in [1, 100], got {batch_size}")
        self.pollers = _check_count("pollers", pollers, 1)
        if isinstance(poll_interval, bool) or not (
            isinstance(poll_interval, int | float) and 0 < poll_interval < math.inf
        ):
            raise ValueError(f"poll_interval must be seconds > 0, got {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        self.report = TriggerReport()

    async def run(self, *, until: float | None = None) -> TriggerReport:
        """Poll until the queue has nothing left to deliver (or until virtual time ``until``).

        "Nothing left" means no message ready or in flight: failed messages are waited
        for until they are acknowledged or dead.
        """
        await asyncio.gather(*(self._poller(until) for _ in range(self.pollers)))
        self.report.finished_at = self.runtime.now
        return self.report

    async def _poller(self, until: float | None) -> None:
        while until is None or self.runtime.now < until:
            batch = self.queue.receive(self.batch_size)
            self.report.polls += 1
            if not batch:
                if until is None and self.queue.counts().live == 0:
                    return
                await asyncio.sleep(self.poll_interval)
                continue
            self.report.batches += 1
            try:
                async with self.runtime.instance() as (instance, _cold):
                    for message in batch:
                        await self._process(instance, message)
            except Throttled:
                for message in batch:
                    self.queue.release(message)
                await asyncio.sleep(self.poll_interval)
            except ServiceCrash:
                self.report.crashes += 1  # the rest of the batch stays unacknowledged

    async def _process(self, instance: Instance, message: Any) -> None:
        try:
            event = decode(message.body)
        except InvalidEvent as exc:
            self._dead(message, exc.reason)
            return
        try:
            await self.runtime.run_function(instance, event)
        except InvalidEvent as exc:
            self._dead(message, exc.reason)
        except Exception as exc:
            self.report.failed += 1
            self.report.errors.append(f"{type(exc).__name__}: {exc}")
        else:
            if self.queue.ack(message):
                self.report.acked += 1

    def _dead(self, message: Any, reason: str) -> None:
        if self.queue.dead_letter(message, reason):
            self.report.dead_lettered += 1
