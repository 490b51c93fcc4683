"""Tests for distlab.sim.queueing: a server with workers and a queue, on the simulator."""

from __future__ import annotations

import itertools
import math
import statistics
from typing import Any

import pytest

from distlab.sim.netsim import Context, Delay, Network
from distlab.sim.queueing import (
    OK,
    OVERLOADED,
    UNAVAILABLE,
    QueueingServer,
    mm1_mean_time_in_system,
    poisson_arrivals,
)


def batch_means_error(values: list[float], batches: int = 20) -> float:
    """Standard error of the mean of correlated ``values``, by the method of batch means.

    Waiting times in a queue are correlated (a request behind a long one waits long
    too), so the naive sd / sqrt(n) is far too small; the means of long consecutive
    batches are nearly independent, and their spread gives an honest error.
    """
    size = len(values) // batches
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    return statistics.stdev(means) / math.sqrt(batches)


def network(server: QueueingServer, seed: int = 1, delay: float = 0.0) -> tuple[Network, list]:
    """A network with ``server`` and a client that records the replies it gets."""
    replies: list[tuple[float, Any]] = []
    net = Network(seed=seed, delay=delay)
    net.add_node("server", server)
    net.add_node("client", lambda ctx, src, msg: replies.append((ctx.now, msg)))
    return net, replies


@pytest.mark.parametrize("busy", [0.5, 0.8])
def test_mm1_mean_time_in_system_matches_theory(busy: float) -> None:
    """Poisson arrivals, exponential service: mean time in system 1/(mu - lambda), 5 sigma."""
    mu = 100.0
    server = QueueingServer(service=Delay.exponential(1 / mu), reply=False)
    net, _ = network(server, seed=7)
    poisson_arrivals(net, "client", "server", rate=busy * mu, count=30_000)
    net.run(max_events=None)
    times = server.times_in_system()
    theory = mm1_mean_time_in_system(busy * mu, mu)
    assert abs(statistics.fmean(times) - theory) <= 5 * batch_means_error(times)
    assert server.mean_time_in_system() == pytest.approx(statistics.fmean(times))
    # In M/M/1 the time in system is exponential with rate mu - lambda: check its median too.
    median = statistics.median(times)
    assert median == pytest.approx(theory * math.log(2), rel=0.1)


def test_first_come_first_served_with_exact_waits() -> None:
    """Constant 1 s service, arrivals at 0, 0.5, 0.6: waits are 0, 0.5 and 1.4 s, in order."""
    server = QueueingServer(service=1.0)
    net, replies = network(server)
    for i, t in enumerate([0.0, 0.5, 0.6]):
        net.send("client", "server", i, at=t)
    net.run()
    assert [c.request for c in server.completed] == [0, 1, 2]
    assert [c.waited for c in server.completed] == pytest.approx([0.0, 0.5, 1.4])
    assert [c.time_in_system for c in server.completed] == pytest.approx([1.0, 1.5, 2.4])
    assert replies == [(1.0, (OK, 0)), (2.0, (OK, 1)), (3.0, (OK, 2))]
    assert server.arrivals == [0.0, 0.5, 0.6]


def test_workers_serve_in_parallel() -> None:
    """Two workers: two requests at t=0 both finish at t=1; the third waits for the first."""
    server = QueueingServer(service=1.0, workers=2)
    net, replies = network(server)
    for i in range(3):
        net.send("client", "server", i)
    net.run(until=0.5)
    assert (server.busy, server.queued) == (2, 1)
    net.run()
    assert [t for t, _ in replies] == [1.0, 1.0, 2.0]


def test_a_full_queue_refuses_at_once() -> None:
    """queue_limit=1 with one worker: the third simultaneous request is refused, overloaded."""
    server = QueueingServer(service=1.0, queue_limit=1)
    net, replies = network(server)
    for i in range(3):
        net.send("client", "server", i)
    net.run()
    assert replies[0] == (0.0, (OVERLOADED, 2))
    assert server.overloaded == 1
    assert [c.request for c in server.completed] == [0, 1]


def test_queue_limit_zero_is_a_loss_system() -> None:
    """With no queue, a request that finds every worker busy is refused, never queued."""
    server = QueueingServer(service=1.0, workers=2, queue_limit=0)
    net, replies = network(server)
    for i in range(5):
        net.send("client", "server", i)
    net.run()
    assert server.overloaded == 3
    assert sorted(msg for _, (status, msg) in replies if status == OK) == [0, 1]


def test_outage_windows_answer_unavailable_then_serve() -> None:
    """Arrivals in [1, 2) get 'unavailable' at once; before and after they are served."""
    server = QueueingServer(service=0.1, outages=[(1.0, 2.0)])
    net, replies = network(server)
    for i, t in enumerate([0.5, 1.0, 1.5, 2.0]):
        net.send("client", "server", i, at=t)
    net.run()
    assert [msg for _, msg in replies] == [(OK, 0), (UNAVAILABLE, 1), (UNAVAILABLE, 2), (OK, 3)]
    assert [t for t, _ in replies] == pytest.approx([0.6, 1.0, 1.5, 2.1])
    assert server.unavailable == 2
    assert server.in_outage(1.0) and not server.in_outage(2.0)


def test_a_crash_loses_the_queue_and_the_server_restarts_empty() -> None:
    """Requests queued or in service at the crash never complete; later ones do."""
    server = QueueingServer(service=1.0)
    net, replies = network(server)
    for i in range(3):
        net.send("client", "server", i)
    net.crash("server", at=0.5, restart_at=5.0)
    net.send("client", "server", 3, at=6.0)
    net.run()
    assert [c.request for c in server.completed] == [3]
    assert replies == [(7.0, (OK, 3))]


def test_same_seed_same_run() -> None:
    """Service times come from the network's generator: a seed replays the run."""

    def run(seed: int) -> list[float]:
        server = QueueingServer(service=Delay.exponential(0.01), reply=False)
        net, _ = network(server, seed=seed)
        poisson_arrivals(net, "client", "server", rate=50.0, count=200)
        net.run()
        return server.times_in_system()

    assert run(3) == run(3) != run(4)


def test_poisson_arrivals_have_the_requested_rate() -> None:
    """10,000 gaps average 1/rate within 5 standard errors; messages are built by `message`."""
    received: list[tuple[float, Any]] = []
    net = Network(seed=2)
    net.add_node("a", lambda ctx, src, msg: None)
    net.add_node("b", lambda ctx, src, msg: received.append((ctx.now, msg)))
    last = poisson_arrivals(net, "a", "b", rate=20.0, count=10_000, start=5.0, message=str)
    net.run()
    times = [t for t, _ in received]
    assert times[-1] == last and min(times) > 5.0
    assert [m for _, m in received[:3]] == ["0", "1", "2"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert abs(statistics.fmean(gaps) - 1 / 20) <= 5 * (1 / 20) / math.sqrt(len(gaps))


def test_mm1_formula_and_its_limits() -> None:
    """1/(mu - lambda), and a clear refusal at or beyond 100 % busy."""
    assert mm1_mean_time_in_system(90, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="grows forever"):
        mm1_mean_time_in_system(100, 100)
    with pytest.raises(ValueError, match="service_rate"):
        mm1_mean_time_in_system(1, 0)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: QueueingServer(service=1.0, workers=0), "workers"),
        (lambda: QueueingServer(service=1.0, queue_limit=-1), "queue_limit"),
        (lambda: QueueingServer(service=1.0, outages=[(2.0, 1.0)]), "outages"),
        (lambda: QueueingServer(service=-1.0), "delay"),
    ],
)
def test_bad_settings_name_the_parameter(build: Any, name: str) -> None:
    """Out-of-range settings raise ValueError naming the setting."""
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize(
    ("options", "name"), [({"rate": 0.0, "count": 1}, "rate"), ({"rate": 1.0, "count": 0}, "count")]
)
def test_poisson_arrivals_refuse_bad_settings(options: dict[str, Any], name: str) -> None:
    """A stream with no rate or no requests is a ValueError naming it."""
    net = Network()
    net.add_node("a", lambda ctx, src, msg: None)
    with pytest.raises(ValueError, match=name):
        poisson_arrivals(net, "a", "a", **options)


def test_the_sender_gets_every_status() -> None:
    """A client node sees ok, overloaded and unavailable replies as (status, request)."""
    seen: list[str] = []

    def client(ctx: Context, src: str, msg: Any) -> None:
        seen.append(msg[0])

    server = QueueingServer(service=1.0, queue_limit=0, outages=[(10.0, 11.0)])
    net = Network()
    net.add_node("server", server)
    net.add_node("client", client)
    for t in (0.0, 0.0, 10.5):
        net.send("client", "server", "x", at=t)
    net.run()
    assert sorted(seen) == sorted([OK, OVERLOADED, UNAVAILABLE])
