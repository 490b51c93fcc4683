"""Lesson 08, service discovery: the scenarios the lesson runs, so that tests can rerun them.

    Cluster              an httpx transport routing by host to in-process apps: the
                         registry and the instances of a service; it can crash or hang one
    orders_cluster       a consumer calls the orders service through a hard-coded list or
                         through the registry while an instance crashes and another joins
    stale_errors         the errors a consumer sees while a crashed instance's lease runs out
    balance              round-robin against least-outstanding-requests, one slow instance
    hung_instance        a hung instance under self-registration and third-party registration
    check_staleness_bound, check_pick_least_outstanding
                         the checkers of the lesson's "Your turn" cells

Everything runs on virtual time with the course's registry, its HTTP app, the
``DiscoveryClient`` and the ``Heartbeater`` (``distlab.patterns.discovery``), over
``httpx`` in-process: no socket is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from distlab.errors import NoInstancesError
from distlab.lessons.checks import checker, expect
from distlab.patterns.discovery import (
    DiscoveryClient,
    Heartbeater,
    ServiceRegistry,
    create_registry_app,
)
from distlab.sim.vtime import clock, now, rng, run

__all__ = [
    "BalanceRun",
    "Call",
    "Cluster",
    "DiscoveryRun",
    "balance",
    "check_pick_least_outstanding",
    "check_staleness_bound",
    "hung_instance",
    "instance_app",
    "orders_cluster",
    "plot_balance",
    "plot_discovery",
    "plot_stale_errors",
    "stale_errors",
]

Mode = Literal["hardcoded", "registry"]
REGISTRY = "http://registry"


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def instance_app(name: str, *, latency: float = 0.0) -> Starlette:
    """An instance of the orders service: ``GET /orders/{id}`` and ``GET /healthz``.

    Args:
        name: the instance's name, returned in every answer.
        latency: seconds each order request takes (virtual time).
    """

    async def order(request: Request) -> Response:
        if latency:
            await asyncio.sleep(latency)
        return JSONResponse({"instance": name, "order": request.path_params["order_id"]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance": name})

    return Starlette(routes=[Route("/orders/{order_id}", order), Route("/healthz", healthz)])


class Cluster(httpx.AsyncBaseTransport):
    """Route each request to the in-process app of its URL's host.

    A host can be crashed (its requests fail at once with ``httpx.ConnectError``, as
    when nothing listens any more) or hung (its requests never get an answer: the
    request's read timeout ends them with ``httpx.ReadTimeout``, in event-loop time).
    """

    def __init__(self) -> None:
        self._apps: dict[str, httpx.ASGITransport] = {}
        self._state: dict[str, str] = {}

    def add(self, host: str, app: Any) -> None:
        """Serve ``app`` at ``http://<host>``."""
        self._apps[host] = httpx.ASGITransport(app=app)
        self._state[host] = "up"

    def crash(self, host: str) -> None:
        """Make every request to ``host`` fail with a refused connection."""
        self._state[host] = "down"

    def hang(self, host: str) -> None:
        """Make every request to ``host`` wait forever (until the caller's timeout)."""
        self._state[host] = "hung"

    def state(self, host: str) -> str:
        """``"up"``, ``"down"`` or ``"hung"``."""
        return self._state[host]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        state = self._state.get(host)
        if state is None or state == "down":
            raise httpx.ConnectError(f"connection refused by {host}", request=request)
        # httpx leaves timeouts to the transport; enforce the request's read timeout here,
        # in event-loop time, as a socket would.
        limit = request.extensions.get("timeout", {}).get("read")
        try:
            async with asyncio.timeout(limit):
                if state == "hung":
                    await asyncio.Event().wait()
                return await self._apps[host].handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"{host} did not answer within {limit} s", request=request
            ) from None


@dataclass(frozen=True)
class Call:
    """One call of the consumer to the orders service.

    Attributes:
        at: virtual time the call started.
        instance: the instance it went to (None if no instance was known).
        ok: whether it got an answer.
        latency: seconds to the answer or the error.
        error: what went wrong (``"refused"``, ``"timeout"``, ``"no instance"``), or None.
    """

    at: float
    instance: str | None
    ok: bool
    latency: float
    error: str | None = None


@dataclass(frozen=True)
class DiscoveryRun:
    """Every call of one run, and what the registry listed over time.

    Attributes:
        calls: every call, in start order.
        mode: ``"hardcoded"`` or ``"registry"``.
        listed: ``(time, instances listed)`` sampled every second (registry mode).
        crash_at: when the instance broke.
    """

    calls: tuple[Call, ...]
    mode: str
    listed: tuple[tuple[float, tuple[str, ...]], ...]
    crash_at: float

    def errors(self, start: float = 0.0, end: float = math.inf) -> int:
        """Failed calls started in ``[start, end)``."""
        return sum(not c.ok for c in self.calls if start <= c.at < end)

    def error_share(self, start: float = 0.0, end: float = math.inf) -> float:
        """Share of failed calls among those started in ``[start, end)``."""
        chosen = [c for c in self.calls if start <= c.at < end]
        if not chosen:
            raise ValueError(f"no call started in [{start}, {end})")
        return sum(not c.ok for c in chosen) / len(chosen)

    def served_by(self, instance: str, start: float = 0.0, end: float = math.inf) -> int:
        """Calls answered by ``instance`` among those started in ``[start, end)``."""
        return sum(c.ok and c.instance == instance for c in self.calls if start <= c.at < end)

    @property
    def error_window(self) -> tuple[float, float] | None:
        """(first, last) start time of the failed calls, or None without failures."""
        failed = [c.at for c in self.calls if not c.ok]
        return (failed[0], failed[-1]) if failed else None

    def unlisted_at(self, instance: str) -> float | None:
        """The first sampled time after the crash at which ``instance`` was no longer listed."""
        for t, names in self.listed:
            if t >= self.crash_at and instance not in names:
                return t
        return None

    def listed_at(self, instance: str) -> float | None:
        """The first sampled time at which ``instance`` was listed."""
        for t, names in self.listed:
            if instance in names:
                return t
        return None

    def errors_per_second(self) -> list[int]:
        """Failed calls per second of start time."""
        last = int(max((c.at for c in self.calls), default=0)) + 1
        counts = [0] * last
        for c in self.calls:
            if not c.ok:
                counts[int(c.at)] += 1
        return counts


async def _consume(
    http: httpx.AsyncClient,
    pick: Callable[[], Any],
    calls: list[Call],
    *,
    timeout: float,
    retry_next: bool,
) -> None:
    """Make one call: pick an address, GET an order, record what happened."""
    started = now()
    attempts = 2 if retry_next else 1
    last: Call | None = None
    for _ in range(attempts):
        try:
            address = await pick()
        except NoInstancesError:
            last = Call(started, None, False, now() - started, "no instance")
            break
        name = httpx.URL(address).host
        try:
            response = await http.get(f"{address}/orders/42", timeout=timeout)
            response.raise_for_status()
        except httpx.ConnectError:
            last = Call(started, name, False, now() - started, "refused")
            continue
        except httpx.TimeoutException:
            last = Call(started, name, False, now() - started, "timeout")
            continue
        last = Call(started, name, True, now() - started)
        break
    assert last is not None
    calls.append(last)


def orders_cluster(
    *,
    mode: Mode = "registry",
    instances: int = 3,
    rate: float = 5.0,
    duration: float = 120.0,
    crash: str = "orders-2",
    crash_at: float = 30.0,
    join_at: float | None = 60.0,
    ttl: float = 15.0,
    heartbeat: float = 5.0,
    refresh: float = 0.0,
    retry_next: bool = False,
    timeout: float = 1.0,
) -> DiscoveryRun:
    """Run a consumer of the orders service while one instance crashes and a new one joins.

    Instances ``orders-1`` .. ``orders-<instances>`` start at t = 0 and register with the
    registry (lease ``ttl``, a heartbeat every ``heartbeat`` s); ``crash`` dies at
    ``crash_at`` without deregistering; ``orders-<instances + 1>`` starts at ``join_at``.
    The consumer makes ``rate`` calls a second, round-robin, either over the list of
    the first ``instances`` addresses (``"hardcoded"``) or over what the registry lists
    (``"registry"``, through ``DiscoveryClient(refresh=refresh)``). With ``retry_next`` a
    failed call is tried once more on the next instance.

    Returns:
        A ``DiscoveryRun``.

    Raises:
        ValueError: for a setting out of range (the message names it).
    """
    if mode not in ("hardcoded", "registry"):
        raise ValueError(f"mode must be 'hardcoded' or 'registry', got {mode!r}")
    if isinstance(instances, bool) or not isinstance(instances, int) or instances < 1:
        raise ValueError(f"instances must be an int >= 1, got {instances!r}")
    for name, value in [
        ("rate", rate),
        ("duration", duration),
        ("ttl", ttl),
        ("heartbeat", heartbeat),
        ("timeout", timeout),
    ]:
        _positive(name, value)
    if not 0 <= crash_at < duration:
        raise ValueError(f"crash_at must be in [0, duration), got {crash_at!r}")
    names = [f"orders-{k}" for k in range(1, instances + 1)]
    if crash not in names:
        raise ValueError(f"crash must be one of {names}, got {crash!r}")

    async def main() -> DiscoveryRun:
        cluster = Cluster()
        registry = ServiceRegistry(ttl, clock=clock())
        cluster.add("registry", create_registry_app(registry))
        calls: list[Call] = []
        listed: list[tuple[float, tuple[str, ...]]] = []
        async with httpx.AsyncClient(transport=cluster, base_url=REGISTRY) as http:
            beaters: dict[str, Heartbeater] = {}

            async def start(name: str) -> None:
                cluster.add(name, instance_app(name))
                beaters[name] = Heartbeater(
                    http, "orders", name, f"http://{name}", interval=heartbeat
                )
                await beaters[name].start()

            for name in names:
                await start(name)
            discovery = DiscoveryClient(http, refresh=refresh)
            fixed = [f"http://{name}" for name in names]
            turn = 0

            async def pick() -> str:
                nonlocal turn
                if mode == "registry":
                    return await discovery.resolve("orders")
                turn += 1
                return fixed[(turn - 1) % len(fixed)]

            async def crash_it() -> None:
                await asyncio.sleep(crash_at - now())
                cluster.crash(crash)
                await beaters[crash].stop(deregister=False)

            async def join() -> None:
                if join_at is None or join_at >= duration:
                    return
                await asyncio.sleep(join_at - now())
                await start(f"orders-{instances + 1}")

            async def watch() -> None:
                while now() < duration:
                    names_now = tuple(httpx.URL(a).host for a in registry.instances("orders"))
                    listed.append((now(), names_now))
                    await asyncio.sleep(1.0)

            side = [asyncio.create_task(f()) for f in (crash_it, join, watch)]
            tasks = []
            number = 0
            while (t := number / rate) < duration:
                await asyncio.sleep(t - now())
                tasks.append(
                    asyncio.create_task(
                        _consume(http, pick, calls, timeout=timeout, retry_next=retry_next)
                    )
                )
                number += 1
            await asyncio.gather(*tasks, *side)
            for beater in beaters.values():
                await beater.stop(deregister=False)
        ordered = sorted(calls, key=lambda c: c.at)
        return DiscoveryRun(tuple(ordered), mode, tuple(listed), crash_at)

    result: DiscoveryRun = run(main)
    return result


def plot_discovery(hardcoded: DiscoveryRun, registry: DiscoveryRun, *, axes: Any = None) -> Any:
    """Draw failed calls per second for both runs, and which instance answered each call.

    Returns:
        The two matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, layout="constrained")
    errors_ax, served_ax = axes
    for result, label, colour in [
        (hardcoded, "hard-coded list of addresses", "tab:red"),
        (registry, "registry with leases", "tab:blue"),
    ]:
        per_second = result.errors_per_second()
        errors_ax.step(range(len(per_second)), per_second, where="post", label=label, color=colour)
    errors_ax.axvline(registry.crash_at, color="black", linestyle=":", label="orders-2 crashes")
    gone = registry.unlisted_at("orders-2")
    if gone is not None:
        errors_ax.axvline(gone, color="tab:blue", linestyle="--", label="its lease has run out")
    errors_ax.set_ylabel("failed calls per second")
    errors_ax.legend(fontsize="small")
    names = sorted({c.instance for c in registry.calls if c.instance})
    for row, name in enumerate(names):
        ok = [c.at for c in registry.calls if c.instance == name and c.ok]
        bad = [c.at for c in registry.calls if c.instance == name and not c.ok]
        served_ax.plot(ok, [row] * len(ok), "|", color="tab:green", markersize=8)
        served_ax.plot(bad, [row] * len(bad), "x", color="tab:red", markersize=5)
    served_ax.set_yticks(range(len(names)), names)
    served_ax.set_xlabel("virtual time (s)")
    served_ax.set_title("registry run: each call, by the instance it went to (x: failed)")
    return axes


@dataclass(frozen=True)
class StaleErrors:
    """The errors a consumer saw while a crashed instance was still listed.

    Attributes:
        ttl: the lease, seconds.
        heartbeat: seconds between heartbeats.
        refresh: seconds the consumer reuses a fetched list.
        rate: calls per second.
        errors: failed calls.
        listed_for: seconds from the crash to the last failed call's start (0 if none).
    """

    ttl: float
    heartbeat: float
    refresh: float
    rate: float
    errors: int
    listed_for: float


def stale_errors(
    ttl: float,
    *,
    heartbeat: float | None = None,
    refresh: float = 0.0,
    rate: float = 3.0,
    crash_phase: float = 0.5,
) -> StaleErrors:
    """Crash one of 3 instances ``crash_phase`` of a heartbeat interval after a heartbeat.

    The lease of the crashed instance runs out ``ttl - crash_phase * heartbeat`` seconds
    after the crash; until then (plus up to ``refresh`` s of client cache) one call in
    three goes to it and fails. ``heartbeat`` defaults to ``ttl / 3``.
    """
    _positive("ttl", ttl)
    beat = ttl / 3 if heartbeat is None else heartbeat
    _positive("heartbeat", beat)
    if not 0 < crash_phase < 1:  # at 0 or 1 the crash and a heartbeat would coincide
        raise ValueError(f"crash_phase must be in (0, 1), got {crash_phase!r}")
    crash_at = 2 * beat + crash_phase * beat  # after the second heartbeat
    result = orders_cluster(
        rate=rate,
        duration=crash_at + ttl + refresh + 3.0,
        crash_at=crash_at,
        join_at=None,
        ttl=ttl,
        heartbeat=beat,
        refresh=refresh,
    )
    window = result.error_window
    listed_for = 0.0 if window is None else window[1] - crash_at
    return StaleErrors(ttl, beat, refresh, rate, result.errors(), listed_for)


def plot_stale_errors(
    results: Sequence[StaleErrors], *, theory: Callable[[float], float], ax: Any = None
) -> Any:
    """Draw the failed calls per TTL against the theory line ``theory(ttl)``.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    by_refresh: dict[float, list[StaleErrors]] = {}
    for r in results:
        by_refresh.setdefault(r.refresh, []).append(r)
    for refresh, group in sorted(by_refresh.items()):
        label = "measured" + (f", client refresh {refresh:g} s" if refresh else "")
        ax.plot([r.ttl for r in group], [r.errors for r in group], "o", label=label)
    ttls = sorted({r.ttl for r in results})
    xs = [ttls[0] + (ttls[-1] - ttls[0]) * k / 100 for k in range(101)]
    ax.plot(xs, [theory(x) for x in xs], "k--", label="rate / 3 × (ttl − heartbeat / 2)")
    ax.set_xlabel("lease TTL (s), heartbeat every TTL / 3")
    ax.set_ylabel("failed calls after the crash")
    ax.set_title("What consumers see while a dead instance is still listed")
    ax.legend(fontsize="small")
    return ax


# Load balancing --------------------------------------------------------------------------
@dataclass(frozen=True)
class BalanceRun:
    """Calls spread over instances by one strategy.

    Attributes:
        strategy: ``"round_robin"`` or ``"least_outstanding"``.
        latencies: every call's latency, seconds, in start order.
        to_slow: calls that went to the slow instance.
        calls: calls made.
    """

    strategy: str
    latencies: tuple[float, ...]
    to_slow: int
    calls: int

    def percentile(self, q: float) -> float:
        """The ``q``-quantile (0..1) of the latencies, seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def mean(self) -> float:
        """The mean latency, seconds."""
        return statistics.fmean(self.latencies)


def balance(
    strategy: Literal["round_robin", "least_outstanding"],
    *,
    rate: float = 20.0,
    duration: float = 60.0,
    latency: float = 0.05,
    slow_latency: float = 1.0,
    seed: int = 2,
) -> BalanceRun:
    """Spread Poisson calls over 3 instances, ``orders-3`` answering in ``slow_latency`` s.

    The consumer uses ``DiscoveryClient(strategy=strategy)`` and counts a call in flight
    while it runs (``client.instance(...)``), so least-outstanding sees the load.
    """
    if strategy not in ("round_robin", "least_outstanding"):
        raise ValueError(f"strategy must be 'round_robin' or 'least_outstanding', got {strategy!r}")
    for name, value in [
        ("rate", rate),
        ("duration", duration),
        ("latency", latency),
        ("slow_latency", slow_latency),
    ]:
        _positive(name, value)

    async def main() -> BalanceRun:
        random = rng()
        cluster = Cluster()
        registry = ServiceRegistry(3600.0, clock=clock())
        cluster.add("registry", create_registry_app(registry))
        for k in (1, 2, 3):
            name = f"orders-{k}"
            cluster.add(name, instance_app(name, latency=slow_latency if k == 3 else latency))
            registry.register("orders", name, f"http://{name}")
        latencies: list[float] = []
        to_slow = 0
        async with httpx.AsyncClient(transport=cluster, base_url=REGISTRY) as http:
            client = DiscoveryClient(http, strategy=strategy, refresh=60.0)

            async def one() -> None:
                nonlocal to_slow
                started = now()
                async with client.instance("orders") as address:
                    to_slow += address == "http://orders-3"
                    await http.get(f"{address}/orders/42", timeout=30.0)
                latencies.append(now() - started)

            tasks = []
            while True:
                await asyncio.sleep(random.expovariate(rate))
                if now() >= duration:
                    break
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        return BalanceRun(strategy, tuple(latencies), to_slow, len(latencies))

    result: BalanceRun = run(main)
    return result


def plot_balance(*runs: BalanceRun, ax: Any = None) -> Any:
    """Draw the survival curves of the latencies: the share of calls slower than t.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    for result in runs:
        ordered = sorted(result.latencies)
        n = len(ordered)
        ax.step(
            [x * 1000 for x in ordered],
            [100 * (n - k) / n for k in range(n)],
            where="post",
            label=f"{result.strategy}: {100 * result.to_slow / n:.0f} % to the slow instance",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("latency of a call (ms)")
    ax.set_ylabel("calls slower than that (%)")
    ax.set_title("One slow instance of three")
    ax.legend(fontsize="small")
    return ax


# Self-registration and third-party registration -----------------------------------------
def hung_instance(
    registration: Literal["self", "third_party"],
    *,
    rate: float = 3.0,
    duration: float = 120.0,
    hang_at: float = 30.0,
    ttl: float = 30.0,
    heartbeat: float = 10.0,
    probe_every: float = 10.0,
    probe_timeout: float = 1.0,
    failure_threshold: int = 3,
    timeout: float = 1.0,
) -> DiscoveryRun:
    """``orders-2`` hangs at ``hang_at``: its process lives on, its requests never finish.

    ``"self"``: each instance registers itself and a background task heartbeats every
    ``heartbeat`` s; the heartbeats go on while the request handling hangs.
    ``"third_party"``: a registrar probes every instance's ``GET /healthz`` every
    ``probe_every`` s with a ``probe_timeout`` s timeout, (re-)registers the instances that
    answer, and deregisters one after ``failure_threshold`` failed probes in a row (as
    Kubernetes takes a pod out of a Service's endpoints when its readiness probe fails).
    The consumer calls with a ``timeout`` s timeout, through the registry.
    """
    if registration not in ("self", "third_party"):
        raise ValueError(f"registration must be 'self' or 'third_party', got {registration!r}")
    for name, value in [
        ("rate", rate),
        ("duration", duration),
        ("ttl", ttl),
        ("heartbeat", heartbeat),
        ("probe_every", probe_every),
        ("probe_timeout", probe_timeout),
        ("timeout", timeout),
    ]:
        _positive(name, value)
    if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int):
        raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
    if failure_threshold < 1:
        raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")

    async def main() -> DiscoveryRun:
        cluster = Cluster()
        registry = ServiceRegistry(ttl, clock=clock())
        cluster.add("registry", create_registry_app(registry))
        names = ["orders-1", "orders-2", "orders-3"]
        for name in names:
            cluster.add(name, instance_app(name))
        calls: list[Call] = []
        listed: list[tuple[float, tuple[str, ...]]] = []
        async with httpx.AsyncClient(transport=cluster, base_url=REGISTRY) as http:
            background: list[asyncio.Task[None]] = []
            beaters = []
            if registration == "self":
                for name in names:
                    beater = Heartbeater(http, "orders", name, f"http://{name}", interval=heartbeat)
                    await beater.start()
                    beaters.append(beater)
            else:

                async def registrar() -> None:
                    failures = dict.fromkeys(names, 0)
                    while True:
                        for name in names:
                            try:
                                answer = await http.get(
                                    f"http://{name}/healthz", timeout=probe_timeout
                                )
                                answer.raise_for_status()
                            except httpx.HTTPError:
                                failures[name] += 1
                                if failures[name] == failure_threshold:
                                    with contextlib.suppress(KeyError):
                                        registry.deregister("orders", name)
                                continue
                            failures[name] = 0
                            registry.register("orders", name, f"http://{name}")
                        await asyncio.sleep(probe_every)

                background.append(asyncio.create_task(registrar()))
                await asyncio.sleep(0.5)  # the first round of probes registers everybody

            discovery = DiscoveryClient(http)

            async def hang() -> None:
                await asyncio.sleep(hang_at - now())
                cluster.hang("orders-2")

            async def watch() -> None:
                while True:
                    names_now = tuple(httpx.URL(a).host for a in registry.instances("orders"))
                    listed.append((now(), names_now))
                    await asyncio.sleep(1.0)

            background += [asyncio.create_task(hang()), asyncio.create_task(watch())]
            tasks = []
            number = 0
            first = now()
            while (t := first + number / rate) < duration:
                await asyncio.sleep(t - now())
                tasks.append(
                    asyncio.create_task(
                        _consume(
                            http,
                            lambda: discovery.resolve("orders"),
                            calls,
                            timeout=timeout,
                            retry_next=False,
                        )
                    )
                )
                number += 1
            await asyncio.gather(*tasks)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for beater in beaters:
                await beater.stop(deregister=False)
        ordered = sorted(calls, key=lambda c: c.at)
        return DiscoveryRun(tuple(ordered), registration, tuple(listed), hang_at)

    result: DiscoveryRun = run(main)
    return result


# The "Your turn" checkers ---------------------------------------------------------------------
@checker("the staleness bound")
def check_staleness_bound(staleness_bound: Callable[..., Any]) -> str:
    """Check ``staleness_bound(ttl, heartbeat, refresh)``: the worst case is ttl + refresh."""
    cases = [((30.0, 10.0, 0.0), 30.0), ((90.0, 30.0, 30.0), 120.0), ((15.0, 5.0, 1.0), 16.0)]
    for (ttl, beat, refresh), expected in cases:
        got = staleness_bound(ttl, beat, refresh)
        expect(
            isinstance(got, int | float) and not isinstance(got, bool),
            f"return a number of seconds, got {got!r}",
        )
        if math.isclose(got, expected):
            continue
        if math.isclose(got, ttl):
            hint = "add the client's refresh: a list fetched just before expiry is reused that long"
        elif math.isclose(got, ttl - beat / 2 + refresh) or math.isclose(got, ttl - beat + refresh):
            hint = (
                "that is a typical case, not the worst: the crash can come just after a "
                "heartbeat, so the lease runs a full ttl after the crash"
            )
        elif math.isclose(got, ttl + beat + refresh):
            hint = "the heartbeat interval does not add: the lease counts from the last heartbeat"
        else:
            hint = "the lease runs ttl seconds from the last heartbeat, then the client cache"
        expect(
            False,
            f"ttl={ttl:g}, heartbeat={beat:g}, refresh={refresh:g}: the longest a dead instance "
            f"can be returned is {expected:g} s, got {got!r}; {hint}",
        )
    return "ttl + refresh: 120 s with Eureka's 90 s lease and 30 s client refresh"


@checker("least-outstanding choice")
def check_pick_least_outstanding(pick: Callable[..., Any]) -> str:
    """Check ``pick(addresses, outstanding, turn)`` on loads, ties and unknown addresses."""
    a, b, c = "http://orders-1", "http://orders-2", "http://orders-3"
    cases = [
        (([a, b, c], {a: 3, b: 1, c: 2}, 0), b, "the fewest calls in flight"),
        (([a, b, c], {a: 0, b: 5, c: 0}, 0), a, "a tie, turn 0"),
        (([a, b, c], {a: 0, b: 5, c: 0}, 1), c, "a tie, turn 1: start looking at index 1"),
        (([a, b, c], {a: 2, b: 2, c: 2}, 5), c, "a three-way tie, turn 5 (5 % 3 = 2)"),
        (([a, b, c], {b: 4}, 0), a, "addresses missing from `outstanding` have 0 calls"),
        (([a], {a: 9}, 3), a, "a single address, however busy"),
    ]
    for (addresses, outstanding, turn), expected, what in cases:
        before = dict(outstanding)
        got = pick(list(addresses), outstanding, turn)
        expect(outstanding == before, "do not change the `outstanding` dict: only read it")
        if got == expected:
            continue
        if what.startswith("a tie") or what.startswith("a three"):
            detail = "break ties in turn: look at the addresses starting at index turn % n"
        elif what.startswith("addresses missing"):
            detail = "use outstanding.get(address, 0)"
        else:
            detail = "pick the minimum of the outstanding counts"
        expect(
            False,
            f"{what}: with addresses {addresses}, outstanding {outstanding} and turn {turn} "
            f"expected {expected!r}, got {got!r}; {detail}",
        )
    return "the least busy instance, ties taken in turn"
