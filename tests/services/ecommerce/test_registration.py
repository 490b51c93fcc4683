"""services.ecommerce.registration: no registry, no registration."""

from __future__ import annotations

from distlab.services.ecommerce.common import Settings
from distlab.services.ecommerce.registration import registration_lifespan


def test_without_a_registry_url_there_is_no_lifespan() -> None:
    """DISTLAB_REGISTRY_URL unset: the service starts without registering."""
    assert registration_lifespan(Settings.from_env("users", {})) is None
