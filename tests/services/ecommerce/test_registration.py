"""services.ecommerce.registration: no registry, no registration."""

from __future__ import annotations

from distlab.services.ecommerce.common import Settings
from distlab.services.ecommerce.registration import instance_id, registration_lifespan


def test_without_a_registry_url_there_is_no_lifespan() -> None:
    """DISTLAB_REGISTRY_URL unset: the service starts without registering."""
    assert registration_lifespan(Settings.from_env("users", {})) is None


def test_with_a_registry_url_the_instance_registers_under_its_service_address() -> None:
    """The instance id names the service, host and port of DISTLAB_SERVICE_URL."""
    settings = Settings.from_env(
        "catalog",
        {
            "DISTLAB_REGISTRY_URL": "http://127.0.0.1:8500",
            "DISTLAB_SERVICE_URL": "http://10.0.0.7:9002",
        },
    )
    assert registration_lifespan(settings) is not None
    assert instance_id(settings) == "catalog-10.0.0.7-9002"
