"""Stand-ins for the service discovery exercise, so that each part is graded on its own.

- :class:`FakeRegistry` has the registry's four methods without leases: Part B's tests
  put the student's HTTP app in front of it (a broken Part A costs Part A only).
- :class:`FakeRegistryServer` answers ``GET /services/{service}`` like the registry's app
  and can be cut off or made to fail: Part C's tests point the student's client at it.
- :func:`capture_log` collects what a logger says, to check the client's log line.

Nothing here imports the course's reference registry (the grading sandbox hides it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal

import httpx

__all__ = ["BASE_URL", "FakeRegistry", "FakeRegistryServer", "capture_log"]

BASE_URL = "http://registry"
"""The base URL of the stand-in registry (any URL would do: nothing leaves the process)."""

Mode = Literal["up", "down", "error"]


def _check(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")


class FakeRegistry:
    """The registry's API (register, heartbeat, deregister, instances) with no leases.

    It records every call in ``calls`` as a tuple, e.g. ``("register", "orders",
    "orders-1", "http://a")``, and follows the registry's contract otherwise: empty
    names or addresses raise ``ValueError``, unknown instances ``KeyError``.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self._services: dict[str, dict[str, str]] = {}

    def register(self, service: str, instance_id: str, address: str) -> None:
        """Add or update an instance."""
        self.calls.append(("register", service, instance_id, address))
        _check("service", service)
        _check("instance_id", instance_id)
        _check("address", address)
        self._services.setdefault(service, {})[instance_id] = address

    def heartbeat(self, service: str, instance_id: str) -> None:
        """Accept a heartbeat of a registered instance; KeyError otherwise."""
        self.calls.append(("heartbeat", service, instance_id))
        if instance_id not in self._services.get(service, {}):
            raise KeyError(f"{service}/{instance_id} is not registered")

    def deregister(self, service: str, instance_id: str) -> None:
        """Remove a registered instance; KeyError otherwise."""
        self.calls.append(("deregister", service, instance_id))
        if self._services.get(service, {}).pop(instance_id, None) is None:
            raise KeyError(f"{service}/{instance_id} is not registered")

    def instances(self, service: str) -> list[str]:
        """The addresses of ``service``, in registration order."""
        self.calls.append(("instances", service))
        return list(self._services.get(service, {}).values())


class FakeRegistryServer:
    """An in-process stand-in for the registry's ``GET /services/{service}``.

    Args:
        services: service name -> addresses; tests change ``server.services`` at will.

    Attributes:
        mode: ``"up"`` (answers), ``"down"`` (every request fails with
            ``httpx.ConnectError``, as if nothing listened) or ``"error"`` (503).
        requests: how many requests reached it (refused ones included).
    """

    def __init__(self, services: dict[str, list[str]] | None = None) -> None:
        self.services: dict[str, list[str]] = dict(services or {})
        self.mode: Mode = "up"
        self.requests = 0

    def client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose base URL is this registry."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle), base_url=BASE_URL)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "error":
            return httpx.Response(503, json={"error": "the registry is overloaded"})
        parts = request.url.path.strip("/").split("/")
        if request.method != "GET" or len(parts) != 2 or parts[0] != "services":
            route = f"{request.method} {request.url.path}"
            return httpx.Response(404, json={"error": f"no route for {route}"})
        service = parts[1]
        return httpx.Response(
            200, json={"service": service, "instances": list(self.services.get(service, []))}
        )


@contextlib.contextmanager
def capture_log(name: str, level: int = logging.WARNING) -> Iterator[list[logging.LogRecord]]:
    """Collect the records logged to logger ``name`` (and its children) at ``level`` or above.

    Yields:
        The list the records are appended to, as they are logged.
    """
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(name)
    handler = _Collect(level)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
