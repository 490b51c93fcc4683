"""Register a real service with the discovery registry while it runs (uvicorn lifespan).

When ``DISTLAB_REGISTRY_URL`` is set, a service started by uvicorn registers the address
``DISTLAB_SERVICE_URL`` under its name at startup and renews its lease every
``DISTLAB_HEARTBEAT_INTERVAL`` seconds (default 10; the registry's lease is 30 s) with
``distlab.patterns.discovery.Heartbeater``, and deregisters at shutdown. A registry that
is not up yet does not stop the service: it tries again every second, in the background.
In-process apps (``httpx.ASGITransport``) run no lifespan: ``Shop`` registers its
instances itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from distlab.patterns.discovery import Heartbeater
from distlab.services.ecommerce.common import Settings

__all__ = ["instance_id", "registration_lifespan"]

_log = logging.getLogger("distlab.services.registration")


def instance_id(settings: Settings) -> str:
    """Return this instance's id in the registry: ``<service>-<host>-<port>``."""
    parts = urlsplit(settings.service_url)
    return f"{settings.service}-{parts.hostname or 'local'}-{parts.port or settings.port}"


def registration_lifespan(settings: Settings) -> Callable[[FastAPI], AsyncIterator[None]] | None:
    """Return a lifespan that keeps ``settings.service`` registered, or None without a registry."""
    registry_url = settings.registry_url
    if registry_url is None:
        return None
    interval = float(os.environ.get("DISTLAB_HEARTBEAT_INTERVAL", "10") or 10)

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(base_url=registry_url, timeout=2.0) as http:
            beater = Heartbeater(
                http,
                settings.service,
                instance_id(settings),
                settings.service_url,
                interval=interval,
            )

            async def register_when_possible() -> None:
                while True:
                    try:
                        await beater.start()
                        app.state.registered = True
                        return
                    except httpx.HTTPError as exc:
                        _log.warning("registry %s not reached (%s); retrying", registry_url, exc)
                        await asyncio.sleep(1.0)

            app.state.registered = False
            registering = asyncio.create_task(register_when_possible())
            try:
                yield
            finally:
                registering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await registering
                await beater.stop()

    return lifespan
