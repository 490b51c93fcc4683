"""services.ecommerce.users: create, read and list users; validation; unique e-mail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import distlab
from distlab.services.ecommerce import users
from distlab.services.ecommerce.common import Database


def exchange(*requests: tuple[str, str, Any]) -> list[httpx.Response]:
    """Send requests in order to one fresh users service; return the answers."""
    app = users.create_app(db=Database(), register=False)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://users"
        ) as client:
            return [await client.request(m, p, json=j) for m, p, j in requests]

    return distlab.run(main)


def test_a_user_is_created_read_and_listed() -> None:
    """POST /users answers 201 with the id; GET reads it back; the e-mail is lower-cased."""
    created, read, listed = exchange(
        ("POST", "/users", {"name": " Ada ", "email": "Ada@Example.org"}),
        ("GET", "/users/1", None),
        ("GET", "/users", None),
    )
    assert created.status_code == 201
    assert created.json() == {"id": 1, "name": "Ada", "email": "ada@example.org"}
    assert read.json() == created.json()
    assert listed.json() == [created.json()]


def test_an_unknown_user_is_a_404_naming_it() -> None:
    """GET /users/42 on an empty service: 404 'unknown user 42'."""
    (missing,) = exchange(("GET", "/users/42", None))
    assert missing.status_code == 404
    assert missing.json() == {"error": "unknown user 42", "user_id": 42}


def test_a_second_user_with_the_same_email_is_a_409() -> None:
    """E-mail addresses are unique (case-insensitively); nothing is written the second time."""
    first, second, listed = exchange(
        ("POST", "/users", {"name": "Ada", "email": "ada@example.org"}),
        ("POST", "/users", {"name": "Other", "email": "ADA@example.org"}),
        ("GET", "/users", None),
    )
    assert (first.status_code, second.status_code) == (201, 409)
    assert "ada@example.org" in second.json()["error"]
    assert len(listed.json()) == 1


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "", "email": "a@b.org"}, "body.name"),
        ({"name": "   ", "email": "a@b.org"}, "body.name"),
        ({"name": "Ada", "email": "not-an-email"}, "body.email"),
        ({"name": "Ada"}, "body.email"),
        ({"name": "Ada", "email": "a@b.org", "admin": True}, "body.admin"),
        ({"name": 5, "email": "a@b.org"}, "body.name"),
    ],
)
def test_invalid_users_are_refused_and_nothing_is_written(body: Any, where: str) -> None:
    """422 naming the field; the service still has no user."""
    refused, listed = exchange(("POST", "/users", body), ("GET", "/users", None))
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["where"] == where
    assert listed.json() == []


@pytest.mark.parametrize("path", ["/users/0", "/users/-3", "/users/abc"])
def test_a_malformed_user_id_is_a_422(path: str) -> None:
    """Ids are positive integers."""
    (answer,) = exchange(("GET", path, None))
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["where"] == "path.user_id"
