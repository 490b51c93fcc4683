"""services.ecommerce.remote: the resilience layer around one dependency."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import distlab
from distlab.errors import CircuitOpenError
from distlab.services.ecommerce.common import REQUEST_ID
from distlab.services.ecommerce.orders import loop_clock
from distlab.services.ecommerce.remote import (
    Remote,
    is_dependency_failure,
    never_sent,
    static_resolver,
)


def backend(status: int = 200, delay: float = 0.0, seen: list[httpx.Request] | None = None) -> Any:
    async def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        await asyncio.sleep(delay)
        return httpx.Response(status, json={"ok": status < 400})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_the_request_id_of_the_request_being_served_is_passed_on() -> None:
    """X-Request-ID is sent when REQUEST_ID is set, and not invented when it is not."""
    seen: list[httpx.Request] = []

    async def main() -> None:
        remote = Remote(
            "users", client=backend(seen=seen), resolve=static_resolver({"users": "http://u"})
        )
        await remote.call("GET", "/users/1")
        token = REQUEST_ID.set("req-7")
        try:
            await remote.call("GET", "/users/1")
        finally:
            REQUEST_ID.reset(token)

    distlab.run(main)
    assert [r.headers.get("x-request-id") for r in seen] == [None, "req-7"]
    assert str(seen[0].url) == "http://u/users/1"


def test_4xx_answers_are_returned_and_5xx_raised() -> None:
    """A 404 is an answer; a 503 is a failure of the dependency (HTTPStatusError)."""

    async def main() -> None:
        resolve = static_resolver({"catalog": "http://c"})
        answer = await Remote("catalog", client=backend(404), resolve=resolve).call("GET", "/x")
        assert answer.status_code == 404
        with pytest.raises(httpx.HTTPStatusError):
            await Remote("catalog", client=backend(503), resolve=resolve).call("GET", "/x")

    distlab.run(main)


def test_the_timeout_gives_up_in_virtual_time() -> None:
    """A dependency slower than the timeout raises ReadTimeout after exactly the timeout."""

    async def main() -> float:
        remote = Remote(
            "c", client=backend(delay=10), resolve=static_resolver({"c": "http://c"}), timeout=0.5
        )
        with pytest.raises(httpx.ReadTimeout, match=r"no answer from c within 0\.5 s"):
            await remote.call("GET", "/")
        return distlab.now()

    assert distlab.run(main) == pytest.approx(0.55)  # the backstop fires 10 % after httpx's


def test_the_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    """5 failures open it; the 6th call is refused without a request; 4xx never count."""
    seen: list[httpx.Request] = []

    async def main() -> None:
        remote = Remote.guarded(
            "c",
            client=backend(503, seen=seen),
            resolve=static_resolver({"c": "http://c"}),
            clock=loop_clock,
        )
        for _ in range(5):
            with pytest.raises(httpx.HTTPStatusError):
                await remote.call("GET", "/")
        with pytest.raises(CircuitOpenError):
            await remote.call("GET", "/")
        assert len(seen) == 5
        polite = Remote.guarded(
            "c", client=backend(404), resolve=static_resolver({"c": "http://c"}), clock=loop_clock
        )
        for _ in range(10):
            await polite.call("GET", "/")
        assert polite.breaker is not None and polite.breaker.state == "closed"

    distlab.run(main)


def test_an_unknown_service_is_a_lookup_error_that_counts_as_never_sent() -> None:
    """The static resolver names the missing service."""

    async def main() -> None:
        remote = Remote("payments", client=backend(), resolve=static_resolver({}))
        with pytest.raises(LookupError, match="payments") as info:
            await remote.call("GET", "/")
        assert never_sent(info.value) and is_dependency_failure(info.value)

    distlab.run(main)


def test_which_failures_prove_nothing_was_done() -> None:
    """Refused connections and open breakers: never sent. Read timeouts and 5xx: maybe done."""
    request = httpx.Request("GET", "http://c/")
    five_hundred = httpx.HTTPStatusError("x", request=request, response=httpx.Response(503))
    assert never_sent(httpx.ConnectError("refused", request=request))
    assert never_sent(httpx.ConnectTimeout("lost", request=request))
    assert never_sent(CircuitOpenError("c", 1.0))
    assert not never_sent(httpx.ReadTimeout("late", request=request))
    assert not never_sent(five_hundred)
    assert is_dependency_failure(five_hundred)
    assert not is_dependency_failure(ValueError("a bug"))


@pytest.mark.parametrize("timeout", [0, -1, True, "1"])
def test_the_timeout_is_validated_by_name(timeout: Any) -> None:
    """timeout must be a positive number of seconds or None."""
    with pytest.raises(ValueError, match="timeout"):
        Remote("c", client=httpx.AsyncClient(), resolve=static_resolver({}), timeout=timeout)
