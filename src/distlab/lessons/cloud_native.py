"""Lesson 09 (cloud-native): an orchestrator's reconciliation loop, simulated in virtual time.

A tiny Kubernetes: nodes, pods of one Deployment, a kubelet per node (probes, restarts with
back-off), a controller that makes the actual replicas match the desired ones (and rolls out a
new version), and a Service that spreads requests over the ready pods. A client sends requests
at a steady rate, so every failure of the system shows up as failed requests, per second.

    simulate(...)            run a scenario; returns a Run (requests, replica counts, events)
    Crash, Hang, DeletePod, LoseNode, Update   what happens to the system, and when
    restart_delay(n)         the kubelet's back-off before the n-th restart of a container
    reconcile_replicas(...)  the controller's decision: which pods to create or delete
    check_restart_delay, check_reconcile      the lesson's "Your turn" checkers
    plot_run(run)            ready replicas and failed requests over time
    build_cache(...)         which Dockerfile steps a rebuild reruns after a change

The defaults are Kubernetes' (v1.34) where the lesson quotes them: probe period 10 s,
timeout 1 s, failure threshold 3; restart back-off 10 s doubling to 300 s; a node declared
lost after 40 s and its pods evicted 300 s later. Probes of the course's own manifests
(deploy/k8s/) are the lesson's scenarios: readiness every 5 s (2 failures), liveness every
10 s (3 failures).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import distlab
from distlab.lessons.checks import checker, expect

__all__ = [
    "BuildStep",
    "Crash",
    "DeletePod",
    "Hang",
    "LoseNode",
    "PodView",
    "Probe",
    "Request",
    "Run",
    "Sample",
    "Update",
    "build_cache",
    "check_reconcile",
    "check_restart_delay",
    "plot_run",
    "reconcile_replicas",
    "restart_delay",
    "simulate",
]

Outcome = Literal["ok", "refused", "timeout", "no endpoints"]
Process = Literal["starting", "serving", "hung", "crashed", "stopped"]

BACKOFF_START = 10.0
"""The kubelet's first back-off delay, in seconds (kubernetes.io, Pod Lifecycle)."""
BACKOFF_CAP = 300.0
"""The cap of the restart back-off, in seconds (5 minutes)."""
BACKOFF_RESET = 600.0
"""A container that runs this long (10 minutes) without a problem has its back-off reset."""
NODE_GRACE = 40.0
"""kube-controller-manager's --node-monitor-grace-period: a silent node is NotReady after it."""
EVICTION_AFTER = 300.0
"""The tolerationSeconds Kubernetes adds for not-ready and unreachable nodes (5 minutes)."""
STATUS_DELAY = 1.0
"""How long the kubelet takes to notice that a container exited (its relist period)."""
TERMINATION = 1.0
"""How long a deleted pod takes to stop once it has drained (graceful shutdown)."""


def restart_delay(restart: int) -> float:
    """Return how long the kubelet waits before a container's ``restart``-th restart.

    The first restart is immediate; then the delay is 10 s and doubles each time, capped at
    300 s: 0, 10, 20, 40, 80, 160, 300, 300, ... (kubernetes.io, "Pod Lifecycle":
    "exponential backoff delay (10s, 20s, 40s, ...), that is capped at 300 seconds").

    Args:
        restart: which restart, counting from 1.

    Raises:
        ValueError: ``restart`` is smaller than 1.
    """
    if isinstance(restart, bool) or not isinstance(restart, int) or restart < 1:
        raise ValueError(f"restart must be a whole number >= 1, got {restart!r}")
    if restart == 1:
        return 0.0
    return min(BACKOFF_START * 2.0 ** min(restart - 2, 64), BACKOFF_CAP)


@dataclass(frozen=True)
class Probe:
    """A kubelet probe: ask every ``period`` seconds; ``failures`` misses in a row fail it.

    Attributes:
        period: seconds between probes (Kubernetes' periodSeconds, default 10).
        failures: consecutive failures that fail the probe (failureThreshold, default 3).
        timeout: seconds a probe waits for an answer (timeoutSeconds, default 1).
    """

    period: float = 10.0
    failures: int = 3
    timeout: float = 1.0

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise ValueError(f"period must be > 0 seconds, got {self.period!r}")
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise ValueError(f"failures must be a whole number, got {self.failures!r}")
        if self.failures < 1:
            raise ValueError(f"failures must be >= 1, got {self.failures!r}")
        if not 0 < self.timeout <= self.period:
            raise ValueError(f"timeout must be > 0 and <= period, got {self.timeout!r}")

    @property
    def detects_within(self) -> float:
        """The longest a failure can go unnoticed: ``failures`` probes, ``period`` apart."""
        return self.failures * self.period


READINESS = Probe(period=5.0, failures=2, timeout=2.0)
"""The readiness probe of deploy/k8s/ (GET /readyz every 5 s, 2 failures)."""
LIVENESS = Probe(period=10.0, failures=3, timeout=2.0)
"""The liveness probe of deploy/k8s/ (GET /healthz every 10 s, 3 failures)."""


# What happens to the system --------------------------------------------------------------------
@dataclass(frozen=True)
class Crash:
    """At time ``at``, the process of pod ``pod`` exits (a bug, an out-of-memory kill)."""

    at: float
    pod: str


@dataclass(frozen=True)
class Hang:
    """At time ``at``, pod ``pod``'s process stops answering but keeps running (a deadlock)."""

    at: float
    pod: str


@dataclass(frozen=True)
class DeletePod:
    """At time ``at``, pod ``pod`` is deleted (``kubectl delete pod``, a node drained)."""

    at: float
    pod: str


@dataclass(frozen=True)
class LoseNode:
    """At time ``at``, node ``node`` goes silent (power cut, kernel panic, network gone)."""

    at: float
    node: str


@dataclass(frozen=True)
class Update:
    """At time ``at``, the Deployment's pod template changes to ``version`` (a new image)."""

    at: float
    version: str


Event = Crash | Hang | DeletePod | LoseNode | Update


# What the simulation records -------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One client request: when it was sent, which pod the Service chose, how it ended."""

    t: float
    pod: str | None
    outcome: Outcome


@dataclass(frozen=True)
class Sample:
    """The replica counts at time ``t``.

    Attributes:
        t: the time, in seconds.
        desired: the pods the Deployment asks for.
        pods: the pods that exist (not being deleted).
        ready: the pods in the Service (ready, as far as Kubernetes knows).
        serving: the pods in the Service that really answer (a hung pod is not one).
    """

    t: float
    desired: int
    pods: int
    ready: int
    serving: int


@dataclass(frozen=True)
class PodView:
    """What the controller sees of a pod: the input of :func:`reconcile_replicas`.

    Attributes:
        name: the pod's name.
        ready: whether the pod passes its readiness probe (is in the Service).
        terminating: whether the pod is being deleted (it no longer counts).
        created: when the pod was created (seconds).
    """

    name: str
    ready: bool
    terminating: bool = False
    created: float = 0.0


@dataclass
class _Pod:
    name: str
    node: str
    version: str
    created: float
    process: Process = "starting"
    serving_at: float = 0.0
    ready: bool = False
    terminating: bool = False
    restarts: int = 0
    started: float = 0.0
    served: int = 0
    ready_misses: int = 0
    live_misses: int = 0
    generation: int = 0

    def view(self) -> PodView:
        return PodView(self.name, self.ready, self.terminating, self.created)


@dataclass
class Run:
    """The record of one simulation.

    Attributes:
        requests: every client request, in order.
        samples: the replica counts, once a second.
        events: what happened, as ``(time, text)`` (pods created, restarted, deleted...).
        restarts: container restarts per pod.
        until: the simulated duration in seconds.
    """

    requests: list[Request] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    until: float = 0.0

    def failed(self, start: float = 0.0, end: float = math.inf) -> int:
        """Count the requests sent in ``[start, end)`` that failed."""
        return sum(1 for r in self.requests if r.outcome != "ok" and start <= r.t < end)

    def sent(self, start: float = 0.0, end: float = math.inf) -> int:
        """Count the requests sent in ``[start, end)``."""
        return sum(1 for r in self.requests if start <= r.t < end)

    def outcomes(self) -> Counter[str]:
        """How many requests ended each way (``ok``, ``refused``, ``timeout``, ``no endpoints``)."""
        return Counter(r.outcome for r in self.requests)

    def served_by(self, start: float = 0.0, end: float = math.inf) -> dict[str, int]:
        """Requests answered successfully by each pod, sent in ``[start, end)``."""
        counts = Counter(r.pod for r in self.requests if r.outcome == "ok" and start <= r.t < end)
        return {str(pod): n for pod, n in sorted(counts.items())}

    def ready_at(self, t: float) -> int:
        """The number of ready pods at the last sample at or before ``t``."""
        found = [s.ready for s in self.samples if s.t <= t]
        return found[-1] if found else 0

    def serving_at(self, t: float) -> int:
        """The number of pods that really answer, at the last sample at or before ``t``."""
        found = [s.serving for s in self.samples if s.t <= t]
        return found[-1] if found else 0

    def recovered(self, after: float) -> float | None:
        """When every desired pod answered again in the Service, after ``after`` (None: never).

        The first sample after ``after`` that is short of answering pods starts the outage;
        the first sample after it with ``serving == desired`` ends it.
        """
        short = [s.t for s in self.samples if s.t > after and s.serving < s.desired]
        if not short:
            return None
        for s in self.samples:
            if s.t > short[0] and s.serving >= s.desired:
                return s.t
        return None

    def log(self, start: float = 0.0, end: float = math.inf) -> str:
        """The events between ``start`` and ``end``, one per line."""
        return "\n".join(f"t = {t:6.1f} s  {text}" for t, text in self.events if start <= t <= end)


Reconcile = Callable[[int, list[PodView]], tuple[int, list[str]]]


def reconcile_replicas(desired: int, pods: list[PodView]) -> tuple[int, list[str]]:
    """Decide how to make the actual replicas match ``desired``: the ReplicaSet's rule.

    Pods being deleted (``terminating``) do not count. With too few pods, create the
    difference; with too many, delete the surplus, the pods that are not ready first, and
    among those the newest first (they have done the least work).

    Args:
        desired: how many pods the Deployment asks for.
        pods: the pods that exist.

    Returns:
        ``(how many pods to create, names of the pods to delete)``.
    """
    alive = [p for p in pods if not p.terminating]
    if len(alive) < desired:
        return desired - len(alive), []
    surplus = len(alive) - desired
    order = sorted(alive, key=lambda p: (p.ready, -p.created))
    return 0, [p.name for p in order[:surplus]]


class _Cluster:
    """The simulated cluster; :func:`simulate` is its front door."""

    def __init__(
        self,
        *,
        replicas: int,
        nodes: int,
        startup: float,
        readiness: Probe | None,
        liveness: Probe | None,
        orchestrator: bool,
        strategy: str,
        max_surge: int,
        max_unavailable: int,
        rate: float,
        sync: float,
        reconcile: Reconcile,
    ) -> None:
        self.desired = replicas
        self.version = "v1"
        self.nodes = {f"node-{i + 1}": True for i in range(nodes)}
        self.node_ready = dict(self.nodes)
        self.startup = startup
        # Without an orchestrator there is no kubelet to probe, restart or report anything.
        self.readiness = readiness if orchestrator else None
        self.liveness = liveness if orchestrator else None
        self.orchestrator = orchestrator
        self.strategy = strategy
        self.max_surge = max_surge
        self.max_unavailable = max_unavailable
        self.rate = rate
        self.sync = sync
        self.reconcile = reconcile
        self.pods: dict[str, _Pod] = {}
        self.tasks: set[asyncio.Future[None]] = set()
        self.counter = 0
        self.cursor = 0
        self.run = Run()

    # --- bookkeeping ---------------------------------------------------------------------------
    def now(self) -> float:
        return round(distlab.now(), 6)

    def note(self, text: str) -> None:
        self.run.events.append((self.now(), text))

    def alive(self) -> list[_Pod]:
        return [p for p in self.pods.values() if not p.terminating]

    def endpoints(self) -> list[_Pod]:
        return [p for p in self.pods.values() if p.ready and not p.terminating]

    # --- pods ----------------------------------------------------------------------------------
    def create_pod(self, *, warm: bool = False) -> None:
        candidates = [n for n, ok in self.node_ready.items() if ok]
        if not candidates:
            self.note("no node can take a new pod")
            return
        load = Counter(p.node for p in self.alive())
        node = min(candidates, key=lambda n: (load[n], n))
        self.counter += 1
        pod = _Pod(f"web-{self.counter}", node, self.version, created=self.now())
        self.pods[pod.name] = pod
        self.note(f"{pod.name} ({pod.version}) created on {node}")
        self.start_container(pod)
        if warm:  # the run starts from a steady state: this pod has been serving for a while
            pod.process, pod.ready, pod.serving_at = "serving", True, self.now()

    def start_container(self, pod: _Pod) -> None:
        pod.generation += 1
        pod.process = "starting"
        pod.started = self.now()
        pod.serving_at = self.now() + self.startup
        pod.ready_misses = pod.live_misses = 0
        # Without a readiness probe a pod is Ready as soon as its container runs.
        pod.ready = self.readiness is None
        generation = pod.generation
        distlab.current_loop().call_later(self.startup, self.serving, pod, generation)
        if self.readiness is not None:
            self.tasks.add(asyncio.ensure_future(self.probe_readiness(pod, generation)))
        if self.liveness is not None:
            self.tasks.add(asyncio.ensure_future(self.probe_liveness(pod, generation)))

    def serving(self, pod: _Pod, generation: int) -> None:
        if pod.generation == generation and pod.process == "starting":
            pod.process = "serving"

    def container_exited(self, pod: _Pod, why: str) -> None:
        pod.process = "crashed"
        pod.generation += 1
        generation = pod.generation
        self.note(f"{pod.name}: {why}")
        if not self.orchestrator:
            return  # a plain process: nobody notices, nobody restarts it
        loop = distlab.current_loop()
        loop.call_later(STATUS_DELAY, self.after_exit, pod, generation)

    def after_exit(self, pod: _Pod, generation: int) -> None:
        if pod.generation != generation or not self.nodes[pod.node]:
            return
        pod.ready = False
        if self.now() - pod.started >= BACKOFF_RESET:
            pod.restarts = 0
        pod.restarts += 1
        self.run.restarts[pod.name] = self.run.restarts.get(pod.name, 0) + 1
        delay = restart_delay(pod.restarts)
        self.note(f"{pod.name}: kubelet restarts the container in {delay:g} s")
        distlab.current_loop().call_later(delay, self.restart_now, pod, generation)

    def restart_now(self, pod: _Pod, generation: int) -> None:
        if pod.generation == generation and not pod.terminating and self.nodes[pod.node]:
            self.start_container(pod)

    def delete_pod(self, pod: _Pod, why: str) -> None:
        if pod.terminating:
            return
        pod.terminating = True
        pod.ready = False  # out of the Service's endpoints at once
        self.note(f"{pod.name} deleted ({why})")
        if self.nodes[pod.node]:
            distlab.current_loop().call_later(TERMINATION, self.remove, pod)

    def remove(self, pod: _Pod) -> None:
        pod.process = "stopped"
        pod.generation += 1
        self.pods.pop(pod.name, None)

    def answers(self, pod: _Pod) -> bool:
        return self.nodes[pod.node] and pod.process == "serving"

    # --- the kubelet's probes --------------------------------------------------------------
    async def probe_readiness(self, pod: _Pod, generation: int) -> None:
        probe = self.readiness
        assert probe is not None
        while True:
            await asyncio.sleep(probe.period)
            if pod.generation != generation or pod.terminating:
                return
            if not self.nodes[pod.node]:
                return  # the kubelet died with its node: nothing updates the pod any more
            if self.answers(pod):
                pod.ready_misses = 0
                if not pod.ready and self.node_ready[pod.node]:
                    pod.ready = True
                    self.note(f"{pod.name} ready")
            else:
                pod.ready_misses += 1
                if pod.ready and pod.ready_misses >= probe.failures:
                    pod.ready = False
                    self.note(f"{pod.name} not ready: {probe.failures} readiness probes failed")

    async def probe_liveness(self, pod: _Pod, generation: int) -> None:
        probe = self.liveness
        assert probe is not None
        # A startup probe holds liveness back until the application first answers.
        await asyncio.sleep(self.startup)
        while True:
            await asyncio.sleep(probe.period)
            if pod.generation != generation or pod.terminating or not self.nodes[pod.node]:
                return
            if self.answers(pod):
                pod.live_misses = 0
                continue
            pod.live_misses += 1
            if pod.live_misses >= probe.failures:
                pod.ready = False
                self.container_exited(
                    pod, f"{probe.failures} liveness probes failed: the kubelet kills it"
                )
                return

    # --- the control plane ------------------------------------------------------------------
    async def control_loop(self) -> None:
        lost_since: dict[str, float] = {}
        while True:
            await asyncio.sleep(self.sync)
            now = self.now()
            for node, up in self.nodes.items():
                if up:
                    continue
                since = lost_since.setdefault(node, now)
                if self.node_ready[node] and now - since >= NODE_GRACE:
                    self.node_ready[node] = False
                    self.note(f"{node} NotReady: its pods leave the Service")
                    for pod in self.pods.values():
                        if pod.node == node:
                            pod.ready = False
                if now - since >= NODE_GRACE + EVICTION_AFTER:
                    for pod in list(self.pods.values()):
                        if pod.node == node and not pod.terminating:
                            self.delete_pod(pod, f"evicted from {node}")
            self.reconcile_once()

    def reconcile_once(self) -> None:
        old = [p for p in self.alive() if p.version != self.version]
        if self.strategy == "Recreate" and any(
            p.version != self.version for p in self.pods.values()
        ):
            for pod in old:
                self.delete_pod(pod, "Recreate: old version")
            return  # new pods only once every old one has stopped
        if not old:
            create, delete = self.reconcile(self.desired, [p.view() for p in self.alive()])
            for name in delete:
                self.delete_pod(self.pods[name], "surplus")
            for _ in range(create):
                self.create_pod()
            return
        new = [p for p in self.alive() if p.version == self.version]
        room = self.desired + self.max_surge - len(old) - len(new)
        for _ in range(max(0, min(room, self.desired - len(new)))):
            self.create_pod()
        available = sum(p.ready for p in old + new)
        removable = available - (self.desired - self.max_unavailable)
        for pod in sorted(old, key=lambda p: (p.ready, -p.created)):
            if not pod.ready:
                self.delete_pod(pod, "rolling update: old version, not ready")
            elif removable > 0:
                removable -= 1
                self.delete_pod(pod, "rolling update: old version")

    # --- traffic and sampling ---------------------------------------------------------------
    async def traffic(self, until: float) -> None:
        interval = 1.0 / self.rate
        n = 0
        while True:
            t = round(n * interval, 6)
            if t >= until:
                return
            await asyncio.sleep(max(0.0, t - distlab.now()))
            self.send(t)
            n += 1

    def send(self, t: float) -> None:
        endpoints = sorted(self.endpoints(), key=lambda p: p.name)
        if not endpoints:
            self.run.requests.append(Request(t, None, "no endpoints"))
            return
        pod = endpoints[self.cursor % len(endpoints)]
        self.cursor += 1
        if self.answers(pod):
            pod.served += 1
            outcome: Outcome = "ok"
        elif not self.nodes[pod.node] or pod.process == "hung":
            outcome = "timeout"
        else:
            outcome = "refused"
        self.run.requests.append(Request(t, pod.name, outcome))

    async def sampler(self, until: float) -> None:
        t = 0.0
        while t <= until:
            await asyncio.sleep(max(0.0, t - distlab.now()))
            pods = self.alive()
            ready = self.endpoints()
            serving = sum(1 for p in ready if self.answers(p))
            self.run.samples.append(Sample(t, self.desired, len(pods), len(ready), serving))
            t += 1.0

    def apply(self, event: Event) -> None:
        if isinstance(event, Update):
            self.version = event.version
            self.note(f"Deployment updated to {event.version}")
            return
        if isinstance(event, LoseNode):
            if event.node not in self.nodes:
                raise ValueError(f"no node {event.node!r}; nodes: {sorted(self.nodes)}")
            self.nodes[event.node] = False
            self.note(f"{event.node} lost")
            for pod in self.pods.values():
                if pod.node == event.node:
                    pod.generation += 1  # its kubelet is gone with it
            return
        target = self.pods.get(event.pod)
        if target is None or target.terminating:
            self.note(f"{event.pod} does not exist at t = {event.at:g} s: nothing happens")
            return
        if isinstance(event, Crash):
            self.container_exited(target, "the process exited")
        elif isinstance(event, Hang):
            target.process = "hung"
            self.note(f"{target.name}: the process hangs (alive, answers nothing)")
        elif isinstance(event, DeletePod):
            self.delete_pod(target, "kubectl delete pod")

    async def main(self, events: Sequence[Event], until: float) -> Run:
        for _ in range(self.desired):
            self.create_pod(warm=True)
        loop = distlab.current_loop()
        for event in events:
            loop.call_later(event.at, self.apply, event)
        if self.orchestrator:
            self.tasks.add(asyncio.ensure_future(self.control_loop()))
        sampler = asyncio.ensure_future(self.sampler(until))
        await self.traffic(until)
        await sampler
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.run.until = until
        return self.run


def simulate(
    events: Sequence[Event] = (),
    *,
    until: float = 120.0,
    replicas: int = 3,
    nodes: int = 3,
    startup: float = 8.0,
    readiness: Probe | None = READINESS,
    liveness: Probe | None = LIVENESS,
    orchestrator: bool = True,
    strategy: Literal["RollingUpdate", "Recreate"] = "RollingUpdate",
    max_surge: int = 1,
    max_unavailable: int = 0,
    rate: float = 10.0,
    sync: float = 1.0,
    reconcile: Reconcile = reconcile_replicas,
) -> Run:
    """Run one Deployment behind one Service for ``until`` seconds of virtual time.

    At t = 0 the controller creates ``replicas`` pods of version v1, spread over the nodes.
    A client sends ``rate`` requests a second to the Service, which picks the next ready pod
    in turn (round-robin); a request to a pod that is starting or crashed is refused, one to a
    hung pod or a lost node times out, and with no ready pod there is no endpoint at all.

    Args:
        events: what happens, and when (:class:`Crash`, :class:`Hang`, :class:`DeletePod`,
            :class:`LoseNode`, :class:`Update`).
        until: seconds to simulate.
        replicas: desired pods.
        nodes: nodes in the cluster.
        startup: seconds from a container's start until the application answers.
        readiness: the readiness probe; None: a pod is in the Service as soon as it starts.
        liveness: the liveness probe; None: a hung process is never restarted.
        orchestrator: False runs the same pods as plain processes behind a load balancer:
            no kubelet (no probes, no restarts) and no controller (nothing replaced).
        strategy: how a new version rolls out.
        max_surge: pods allowed above ``replicas`` during a rolling update.
        max_unavailable: pods allowed below ``replicas`` (counted by readiness).
        rate: client requests per second.
        sync: seconds between two passes of the control loop.
        reconcile: the controller's decision (see :func:`reconcile_replicas`).

    Returns:
        The :class:`Run`: every request, the replica counts once a second, the events.

    Raises:
        ValueError: an option out of range; the message names it.
    """
    for name, value, low in [("replicas", replicas, 1), ("nodes", nodes, 1)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    for name, value in [("max_surge", max_surge), ("max_unavailable", max_unavailable)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if max_surge == 0 and max_unavailable == 0:
        raise ValueError(
            "max_surge and max_unavailable cannot both be 0: the update could not move"
        )
    for name, number in [("until", until), ("startup", startup), ("rate", rate), ("sync", sync)]:
        if not (isinstance(number, int | float) and math.isfinite(number) and number > 0):
            raise ValueError(f"{name} must be a number > 0, got {number!r}")
    if strategy not in ("RollingUpdate", "Recreate"):
        raise ValueError(f"strategy must be 'RollingUpdate' or 'Recreate', got {strategy!r}")
    for event in events:
        if not isinstance(event, Crash | Hang | DeletePod | LoseNode | Update):
            raise ValueError(
                f"events must be Crash, Hang, DeletePod, LoseNode or Update, got {event!r}"
            )
        if not 0 <= event.at < until:
            raise ValueError(f"event {event!r} is outside the run (0 <= at < until={until:g})")
    cluster = _Cluster(
        replicas=replicas,
        nodes=nodes,
        startup=startup,
        readiness=readiness,
        liveness=liveness,
        orchestrator=orchestrator,
        strategy=strategy,
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        rate=rate,
        sync=sync,
        reconcile=reconcile,
    )

    async def main() -> Run:
        return await cluster.main(list(events), float(until))

    return distlab.run(main)


# Plots --------------------------------------------------------------------------------------------
def plot_run(run: Run, *, title: str | None = None, axes: Any = None) -> Any:
    """Draw ready pods against desired (top) and failed requests per second (bottom).

    Args:
        run: a :class:`Run` from :func:`simulate`.
        title: the figure's title.
        axes: two matplotlib Axes to draw on; a new figure when None.

    Returns:
        The two Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, layout="constrained")
    top, bottom = axes
    times = [s.t for s in run.samples]
    for values, style, label in [
        ([s.desired for s in run.samples], {"color": "grey", "ls": "--"}, "desired"),
        ([s.pods for s in run.samples], {"color": "tab:blue"}, "pods"),
        ([s.ready for s in run.samples], {"color": "tab:orange"}, "in the Service"),
        ([s.serving for s in run.samples], {"color": "tab:green"}, "in the Service, answering"),
    ]:
        top.step(times, values, where="post", label=label, **style)
    top.set_ylabel("pods")
    top.set_ylim(0, max((s.desired for s in run.samples), default=0) + 1)
    top.legend(loc="lower left", fontsize="small")
    seconds = math.ceil(run.until)
    failed = [0] * seconds
    for r in run.requests:
        if r.outcome != "ok":
            failed[min(int(r.t), seconds - 1)] += 1
    bottom.bar(range(seconds), failed, width=1.0, align="edge", color="tab:red")
    bottom.set_ylabel("failed requests / s")
    bottom.set_xlabel("time (s)")
    bottom.set_ylim(0, run.sent(0, 1) + 1)
    if title:
        top.set_title(title)
    return axes


# Images: which build steps a change reruns ----------------------------------------------------
@dataclass(frozen=True)
class BuildStep:
    """One instruction of a Dockerfile stage, and whether a rebuild reruns it."""

    instruction: str
    rerun: bool


def build_cache(
    dockerfile: str, changed: Sequence[str], *, stage: str | None = None
) -> list[BuildStep]:
    """Replay Docker's build cache: which steps of ``stage`` rerun after ``changed`` files changed.

    Docker reuses a cached layer while the instruction and, for ``COPY``/``ADD``, the copied
    files are unchanged; once one step misses the cache, every later step of the stage
    reruns. (Base images, build arguments and ``--mount`` caches are left out.)

    Args:
        dockerfile: the Dockerfile's text.
        changed: paths of changed files, relative to the build context (``src/distlab/x.py``).
        stage: the ``AS`` name of the stage to replay; None: the first stage.

    Returns:
        The stage's instructions (``FROM`` excluded), each with ``rerun``.
    """
    stages: list[tuple[str | None, list[str]]] = []
    logical = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1].strip() + " "
            continue
        logical = re.sub(r"\s+", " ", logical + line)
        if logical.upper().startswith("FROM "):
            parts = re.split(r"\s+AS\s+", logical, flags=re.I)
            stages.append((parts[1] if len(parts) > 1 else None, []))
        elif stages:
            stages[-1][1].append(logical)
        logical = ""
    chosen = [steps for name, steps in stages if stage is None or name == stage]
    if not chosen:
        names = [name for name, _ in stages]
        raise ValueError(f"no stage {stage!r} in the Dockerfile; stages: {names}")
    steps = chosen[0]
    result = []
    missed = False
    for step in steps:
        keyword, _, argument = step.partition(" ")
        if not missed and keyword.upper() in ("COPY", "ADD") and not argument.startswith("--from"):
            sources = [s.rstrip("/") for s in argument.split()[:-1] if not s.startswith("--")]
            missed = any(
                source == "." or path == source or path.startswith(source + "/")
                for source in sources
                for path in changed
            )
        result.append(BuildStep(step, missed))
    return result


# "Your turn" checkers ---------------------------------------------------------------------------
@checker("the restart back-off")
def check_restart_delay(restart_delay: Callable[[int], float]) -> str:
    """Check a student's ``restart_delay(n)`` against the kubelet's back-off."""
    first = restart_delay(1)
    expect(isinstance(first, int | float), f"restart_delay(1) should return seconds, got {first!r}")
    expect(
        first == 0, f"the first restart is immediate: restart_delay(1) should be 0, got {first!r}"
    )
    second = restart_delay(2)
    expect(
        second == 10,
        f"the second restart waits 10 s: restart_delay(2) should be 10, got {second!r}",
    )
    for n, want in [(3, 20), (4, 40), (5, 80), (6, 160)]:
        got = restart_delay(n)
        expect(
            got == want,
            f"the delay doubles each time: restart_delay({n}) should be {want}, got {got!r}",
        )
    for n in (7, 8, 20, 100):
        got = restart_delay(n)
        expect(
            got == 300,
            f"the delay is capped at 300 s: restart_delay({n}) should be 300, got {got!r}",
        )
    return "0, 10, 20, 40, 80, 160, then 300 s for ever"


def _pods(*specs: tuple[str, bool, bool, float]) -> list[PodView]:
    return [
        PodView(name, ready, terminating, created) for name, ready, terminating, created in specs
    ]


@checker("the reconciliation step")
def check_reconcile(reconcile: Reconcile) -> str:
    """Check a student's ``reconcile(desired, pods)`` on the controller's cases."""
    three = _pods(("web-1", True, False, 0), ("web-2", True, False, 0), ("web-3", True, False, 0))

    def call(desired: int, pods: list[PodView]) -> tuple[int, list[str]]:
        result = reconcile(desired, pods)
        expect(
            isinstance(result, tuple) and len(result) == 2,
            f"return a pair (how many to create, names to delete), got {result!r}",
        )
        create, delete = result
        expect(
            isinstance(create, int), f"the first item is a count of pods to create, got {create!r}"
        )
        expect(
            isinstance(delete, list | tuple) and all(isinstance(n, str) for n in delete),
            f"the second item is a list of pod names, got {delete!r}",
        )
        return create, list(delete)

    expect(call(3, three) == (0, []), "3 pods wanted, 3 running: nothing to do")
    create, delete = call(3, three[:2])
    expect(delete == [], f"with too few pods, delete nothing (you deleted {delete})")
    expect(create == 1, f"3 wanted and 2 running: create 1, not {create}")
    expect(call(5, []) == (5, []), "5 wanted and none running: create 5")
    gone = [*three[:2], PodView("web-3", False, True, 0)]
    create, delete = call(3, gone)
    expect(
        create == 1, f"a terminating pod no longer counts: 2 of 3 remain, create 1, not {create}"
    )
    create, delete = call(1, three)
    expect(create == 0, f"with too many pods, create none (you asked for {create})")
    expect(len(delete) == 2, f"3 running and 1 wanted: delete 2 pods, not {len(delete)}")
    mixed = _pods(("web-1", True, False, 0), ("web-2", False, False, 5), ("web-3", True, False, 9))
    create, delete = call(2, mixed)
    expect(
        delete == ["web-2"],
        f"delete the pod that is not ready first (web-2), not {delete}: it serves nobody",
    )
    ready = _pods(("web-1", True, False, 0), ("web-2", True, False, 5), ("web-3", True, False, 9))
    create, delete = call(2, ready)
    expect(delete == ["web-3"], f"among ready pods, delete the newest (web-3), not {delete}")
    return "it creates what is missing and deletes the surplus, unready and newest first"
