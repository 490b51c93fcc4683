"""The users service: who may place orders (its own SQLite database, table ``users``).

Endpoints (the OpenAPI page is at ``/docs``)::

    POST /users          {"name": "Ada", "email": "ada@example.org"}  -> 201 the user
    GET  /users/{id}     -> 200 the user, 404 when there is no such user
    GET  /users          -> 200 every user (at most ``limit``, default 100)

Run it for real: ``uvicorn --factory distlab.services.ecommerce.users:create_app --port 8001``.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from distlab.services.ecommerce.common import (
    Database,
    Settings,
    error,
    open_database,
    service_app,
)
from distlab.services.ecommerce.registration import registration_lifespan

__all__ = ["NewUser", "create_app"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
"""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UserId = Annotated[int, Path(ge=1, le=2**62, description="the user's id")]


class NewUser(BaseModel):
    """The body of ``POST /users``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200, description="the user's name")
    email: str = Field(min_length=3, max_length=320, description="a unique e-mail address")

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("email")
    @classmethod
    def _looks_like_an_email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must look like name@example.org")
        return value.lower()


def _user(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "email": row["email"]}


def create_app(*, db: Database | str | None = None, register: bool = True) -> FastAPI:
    """Return the users service as a FastAPI app (a factory for ``uvicorn --factory``).

    Args:
        db: its database: a :class:`Database`, an SQLite path, or None to read
            ``DISTLAB_DB_PATH`` (``:memory:`` when unset).
        register: register with the discovery registry at startup when
            ``DISTLAB_REGISTRY_URL`` is set (real servers only; see ``registration``).
    """
    settings = Settings.from_env("users")
    database = open_database(db, settings, SCHEMA)
    app = service_app(
        "users",
        database,
        title="distlab users",
        description="Who may place orders. Part of the distlab e-commerce application.",
        lifespan=registration_lifespan(settings) if register else None,
    )

    @app.post("/users", status_code=201, tags=["users"], summary="Create a user")
    async def create_user(user: NewUser) -> JSONResponse:
        try:
            with database.transaction() as conn:
                cursor = conn.execute(
                    "INSERT INTO users (name, email) VALUES (?, ?)", (user.name, user.email)
                )
        except sqlite3.IntegrityError:
            return error(409, f"a user with e-mail {user.email} already exists")
        created = {"id": cursor.lastrowid, "name": user.name, "email": user.email}
        return JSONResponse(created, status_code=201)

    @app.get("/users/{user_id}", tags=["users"], summary="Read one user")
    async def get_user(user_id: UserId) -> JSONResponse:
        rows = database.query("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            return error(404, f"unknown user {user_id}", user_id=user_id)
        return JSONResponse(_user(rows[0]))

    @app.get("/users", tags=["users"], summary="List users")
    async def list_users(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return [
            _user(r) for r in database.query("SELECT * FROM users ORDER BY id LIMIT ?", (limit,))
        ]

    return app
