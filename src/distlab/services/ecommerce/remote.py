"""How one service calls another: find it, guard it, time it out, pass the request id on.

A :class:`Remote` is one dependency of a service (the orders service has two: users
and catalog). Every call goes through the resilience layer, outermost first::

    bulkhead      at most ``max_concurrent`` calls in flight to this dependency; more fail at once
    breaker       after ``failure_threshold`` failures in a row, fail fast for a while
    discovery     ask the resolver for an instance's address (a ``DiscoveryClient``'s
                  ``resolve``, or fixed URLs)
    timeout       give up on an answer after ``timeout`` seconds
    request id    send the ``X-Request-ID`` of the request being served

Each layer can be switched off (``None``): the benchmark compares the layer on and off.
What counts as a failure of the dependency (for the breaker, and for the saga that
decides to compensate): transport errors (lost requests and answers, refused
connections, timeouts) and 5xx answers. A 4xx answer is an answer: the dependency
worked and said no, and :meth:`Remote.call` returns it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from distlab.errors import DistlabError
from distlab.patterns.breaker import CircuitBreaker, http_failure
from distlab.patterns.bulkhead import Bulkhead
from distlab.services.ecommerce.common import REQUEST_ID, REQUEST_ID_HEADER

__all__ = [
    "Remote",
    "Resolver",
    "is_dependency_failure",
    "never_sent",
    "static_resolver",
]

Resolver = Callable[[str], Awaitable[str]]
"""``await resolve("catalog")`` returns a base URL of one instance of the service.

``distlab.patterns.discovery.DiscoveryClient(...).resolve`` is one.
"""


def static_resolver(addresses: Mapping[str, str]) -> Resolver:
    """Return a resolver with fixed addresses (no registry), e.g. ``{"users": "http://users"}``.

    Raises (when awaited):
        LookupError: for a service that is not in ``addresses``.
    """
    table = dict(addresses)

    async def resolve(service: str) -> str:
        try:
            return table[service]
        except KeyError:
            raise LookupError(f"no address known for service {service!r}") from None

    return resolve


class Remote:
    """One dependency of a service, called through the resilience layer.

    Args:
        name: the dependency's service name, as the resolver knows it (``"catalog"``).
        client: the ``httpx.AsyncClient`` that sends the requests (its transport decides
            whether they go to a real socket or to an in-process app).
        resolve: finds an instance's base URL; see :func:`static_resolver`.
        timeout: seconds to wait for an answer (connect and read), or None for no limit.
        breaker: a circuit breaker for this dependency, or None.
        bulkhead: a bulkhead for this dependency, or None.

    Raises:
        ValueError: when ``timeout`` is not a positive number or None.
    """

    def __init__(
        self,
        name: str,
        *,
        client: httpx.AsyncClient,
        resolve: Resolver,
        timeout: float | None = 1.0,
        breaker: CircuitBreaker | None = None,
        bulkhead: Bulkhead | None = None,
    ) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        self.name = name
        self.client = client
        self.resolve = resolve
        self.timeout = timeout
        self.breaker = breaker
        self.bulkhead = bulkhead

    @classmethod
    def guarded(
        cls,
        name: str,
        *,
        client: httpx.AsyncClient,
        resolve: Resolver,
        clock: Callable[[], float],
        timeout: float = 1.0,
        failure_threshold: int = 5,
        recovery_timeout: float = 5.0,
        bulkhead: Bulkhead | None = None,
    ) -> Remote:
        """Return a Remote with a breaker (``http_failure`` decides failures) on ``clock``."""
        breaker = CircuitBreaker(
            failure_threshold,
            recovery_timeout,
            clock=clock,
            is_failure=http_failure,
            name=name,
        )
        return cls(
            name,
            client=client,
            resolve=resolve,
            timeout=timeout,
            breaker=breaker,
            bulkhead=bulkhead,
        )

    async def call(self, method: str, path: str, *, json: Any = None) -> httpx.Response:
        """Send one request to the dependency and return its answer (2xx or 4xx).

        Returns:
            The response; ``response.json()`` is already readable.

        Raises:
            httpx.HTTPStatusError: for a 5xx answer (a failure of the dependency).
            httpx.TransportError: when no answer came (lost, refused, timed out).
            distlab.CircuitOpenError: when the breaker refused the call.
            DistlabError: when the bulkhead refused it, or no instance could be found.
        """

        async def attempt() -> httpx.Response:
            base = await self.resolve(self.name)
            headers = {}
            request_id = REQUEST_ID.get()
            if request_id is not None:
                headers[REQUEST_ID_HEADER] = request_id
            url = base.rstrip("/") + path
            if self.timeout is None:
                response = await self.client.request(method, url, json=json, headers=headers)
            else:
                # httpx enforces its timeouts on real sockets only; asyncio.timeout makes
                # the limit hold over any transport (in-process ones too), in virtual time.
                # It fires a little after httpx's own, so that a transport that can tell a
                # connect timeout (nothing sent) from a read timeout gets to say which.
                try:
                    async with asyncio.timeout(self.timeout * 1.1):
                        response = await self.client.request(
                            method, url, json=json, headers=headers, timeout=self.timeout
                        )
                except TimeoutError:
                    raise httpx.ReadTimeout(
                        f"no answer from {self.name} within {self.timeout} s",
                        request=httpx.Request(method, url),
                    ) from None
            if response.status_code >= 500:
                response.raise_for_status()
            return response

        guarded: Callable[[], Awaitable[httpx.Response]] = attempt
        breaker = self.breaker
        if breaker is not None:
            inner = guarded

            async def through_breaker() -> httpx.Response:
                return await breaker.acall(inner)

            guarded = through_breaker
        bulkhead = self.bulkhead
        if bulkhead is not None:
            inner_b = guarded

            async def through_bulkhead() -> httpx.Response:
                return await bulkhead.execute(inner_b)

            guarded = through_bulkhead
        return await guarded()


def is_dependency_failure(exc: BaseException) -> bool:
    """Tell whether ``exc`` (raised by :meth:`Remote.call`) means "no usable answer came"."""
    return isinstance(exc, httpx.HTTPError | DistlabError | LookupError)


def never_sent(exc: BaseException) -> bool:
    """Tell whether ``exc`` (raised by :meth:`Remote.call`) proves the request never arrived.

    A refused or timed-out connection, a breaker or bulkhead that refused the call, or no
    instance to send it to: the dependency did nothing, so there is nothing to undo. A
    read timeout or a 5xx proves nothing: the request may have been executed.
    """
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | DistlabError | LookupError)
