"""Tests for distlab.delivery: streams, retries with dedup, replicated registers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from distlab.delivery import deliver_with_retries, replicated_register, send_stream
from distlab.netsim import Delay


def test_same_arguments_same_reports() -> None:
    """Every experiment is a pure function of its arguments."""
    assert send_stream(300, loss=0.2, duplicate=0.1, delay=Delay.uniform(0, 0.1), seed=5) == (
        send_stream(300, loss=0.2, duplicate=0.1, delay=Delay.uniform(0, 0.1), seed=5)
    )
    first = deliver_with_retries(300, seed=5)
    again = deliver_with_retries(300, seed=5)
    assert (first.attempts, first.executed, first.acknowledged) == (
        again.attempts,
        again.executed,
        again.acknowledged,
    )
    assert replicated_register(seed=5) == replicated_register(seed=5)


def test_different_seeds_lose_different_messages() -> None:
    """Another seed loses another set of messages."""
    assert (
        send_stream(300, loss=0.3, seed=1).arrivals != send_stream(300, loss=0.3, seed=2).arrivals
    )


def test_stream_without_faults_arrives_in_order() -> None:
    """A constant delay and no loss deliver every message once, in order."""
    stream = send_stream(100, delay=0.05)
    assert stream.arrivals == list(range(100))
    assert stream.arrived_fraction == 1.0


def test_one_try_never_retries() -> None:
    """max_tries=1 sends each request exactly once and never executes one twice."""
    report = deliver_with_retries(500, max_tries=1, loss=0.3, seed=2)
    assert report.attempts == 500
    assert report.extra_executions == 0
    assert report.executed == report.delivered < 500


def test_lossless_network_with_long_timeout_needs_no_retry() -> None:
    """Without loss every request is executed once and acknowledged on the first try."""
    report = deliver_with_retries(500, loss=0.0, seed=2)
    assert (report.attempts, report.delivered, report.executed, report.acknowledged) == (
        500,
        500,
        500,
        500,
    )


@pytest.mark.parametrize("dedup", [False, True])
def test_timeout_shorter_than_round_trip_retries_slow_requests(dedup: bool) -> None:
    """A 10 ms timeout with a 20 ms minimum round trip uses all 3 tries, loss or not.

    Try k leaves at 10 (k - 1) ms and its timer fires 10 ms later; the first ack comes
    back after more than 20 ms, so tries 2 and 3 always go out before it arrives.
    """
    report = deliver_with_retries(
        200, loss=0.0, timeout=0.01, max_tries=3, delay=Delay.uniform(0.01, 0.05), dedup=dedup
    )
    assert report.attempts == 3 * 200
    assert (report.delivered, report.acknowledged) == (200, 200)
    assert report.executed == (200 if dedup else 3 * 200)


def test_partitioned_replica_misses_the_writes_of_the_window() -> None:
    """Replica b misses exactly the writes sent while it is cut off."""
    replicas = replicated_register(40, interval=0.25, delay=0.05, partition=(2.0, 4.0))
    assert replicas.missed("b") == list(range(9, 17))
    assert replicas.missed("a") == []
    assert replicas.final == {"a": 40, "b": 40}


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: send_stream(0), "count"),
        (lambda: send_stream(10, interval=0), "interval"),
        (lambda: send_stream(10, loss=1.5), "loss"),
        (lambda: send_stream(10, partition=(1.0,)), "partition"),  # type: ignore[arg-type]
        (lambda: send_stream(10, partition=(math.nan, 1.0)), "partition"),
        (lambda: send_stream(10, interval=math.inf), "interval"),
        (lambda: deliver_with_retries(0), "requests"),
        (lambda: deliver_with_retries(10, max_tries=0), "max_tries"),
        (lambda: deliver_with_retries(10, timeout=-1), "timeout"),
        (lambda: deliver_with_retries(10, duplicate=-0.1), "duplicate"),
        (lambda: replicated_register(0), "writes"),
        (lambda: replicated_register(5, partition=(3.0, 1.0)), "heal"),
    ],
)
def test_bad_arguments_name_the_parameter(call: Any, name: str) -> None:
    """Out-of-range arguments raise ValueError naming the parameter."""
    with pytest.raises(ValueError, match=name):
        call()
