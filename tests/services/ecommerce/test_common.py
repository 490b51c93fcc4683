"""services.ecommerce.common: settings, the database, request ids, body limits, JSON errors."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

import distlab
from distlab.services.ecommerce.common import (
    REQUEST_ID,
    Database,
    Settings,
    service_app,
)


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    count: int = Field(gt=0)


def make_app(**options: Any) -> tuple[FastAPI, Database]:
    db = Database(schema="CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    app = service_app("demo", db, title="demo", description="a demo", **options)

    @app.post("/things")
    async def things(thing: Thing) -> dict[str, Any]:
        return {"count": thing.count, "request_id": REQUEST_ID.get()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    return app, db


def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.request(method, path, **kwargs)

    return distlab.run(main)


def test_settings_come_from_the_environment_with_the_contract_defaults() -> None:
    """DISTLAB_DB_PATH, DISTLAB_REGISTRY_URL, DISTLAB_SERVICE_URL, PORT; default ports 8001-8003."""
    assert Settings.from_env("users", {}) == Settings(
        "users", ":memory:", None, "http://127.0.0.1:8001", 8001
    )
    assert Settings.from_env("catalog", {}).port == 8002
    assert Settings.from_env("orders", {}).port == 8003
    env = {
        "DISTLAB_DB_PATH": "/data/o.db",
        "DISTLAB_REGISTRY_URL": "http://registry:8500",
        "DISTLAB_SERVICE_URL": "http://orders:9000",
        "PORT": "9000",
    }
    assert Settings.from_env("orders", env) == Settings(
        "orders", "/data/o.db", "http://registry:8500", "http://orders:9000", 9000
    )


@pytest.mark.parametrize("port", ["0", "70000", "abc", "-1"])
def test_a_bad_port_is_refused_by_name(port: str) -> None:
    """PORT must be 1..65535; the message names PORT."""
    with pytest.raises(ValueError, match="PORT"):
        Settings.from_env("users", {"PORT": port})


def test_a_failed_transaction_writes_nothing() -> None:
    """An exception inside transaction() rolls every write of the block back."""
    db = Database(schema="CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    with pytest.raises(ZeroDivisionError), db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        _ = 1 / 0
    assert db.query("SELECT COUNT(*) AS n FROM t")[0]["n"] == 0
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
    assert [r["x"] for r in db.query("SELECT x FROM t")] == [2]
    db.close()
    assert not db.is_open
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.query("SELECT 1")


def test_a_file_database_survives_a_new_connection(tmp_path: Any) -> None:
    """A service restarted over the same file finds its rows (write-ahead log on)."""
    path = str(tmp_path / "s.db")
    db = Database(path, schema="CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (7)")
    db.close()
    again = Database(path, schema="CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    assert [r["x"] for r in again.query("SELECT x FROM t")] == [7]
    assert again.query("PRAGMA journal_mode")[0][0] == "wal"


def test_the_request_id_is_kept_during_the_request_and_sent_back() -> None:
    """A valid X-Request-ID is used as is, visible to the endpoint, echoed, and spanned."""
    app, _ = make_app()
    response = call(app, "POST", "/things", json={"count": 2}, headers={"X-Request-ID": "abc-1"})
    assert response.status_code == 200
    assert response.json() == {"count": 2, "request_id": "abc-1"}
    assert response.headers["x-request-id"] == "abc-1"
    (span,) = app.state.spans
    assert (span.request_id, span.service, span.method, span.path, span.status) == (
        "abc-1",
        "demo",
        "POST",
        "/things",
        200,
    )


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon"])
def test_a_missing_or_unsafe_request_id_is_replaced(given: str | None) -> None:
    """No header, or one that could forge log lines, gets a fresh 16-hex-digit id."""
    app, _ = make_app()
    headers = {} if given is None else {"X-Request-ID": given}
    response = call(app, "POST", "/things", json={"count": 1}, headers=headers)
    new = response.headers["x-request-id"]
    assert new != given and len(new) == 16 and int(new, 16) >= 0
    assert response.json()["request_id"] == new


def test_every_request_is_logged_with_its_request_id(caplog: pytest.LogCaptureFixture) -> None:
    """The service's logger writes one line per request naming the request id."""
    app, _ = make_app()
    with caplog.at_level(logging.INFO, logger="distlab.services.demo"):
        call(app, "POST", "/things", json={"count": 1}, headers={"X-Request-ID": "log-me"})
    assert any("request_id=log-me POST /things -> 200" in r.getMessage() for r in caplog.records)


def test_malformed_json_is_a_400_that_says_so() -> None:
    """A body that is not JSON gets 400 and an error naming the problem."""
    app, _ = make_app()
    response = call(
        app, "POST", "/things", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the body is not valid JSON")


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ({}, "body.count", "Field required"),
        ({"count": 0}, "body.count", "greater than 0"),
        ({"count": "3"}, "body.count", "valid integer"),
        ({"count": True}, "body.count", "valid integer"),
        ({"count": 1, "extra": 2}, "body.extra", "Extra inputs are not permitted"),
        ([1], "body", "valid dictionary"),
    ],
)
def test_a_schema_violation_is_a_422_naming_the_field(body: Any, where: str, message: str) -> None:
    """Missing, zero, string, boolean or unknown fields: 422, error and problems name the field."""
    app, _ = make_app()
    response = call(app, "POST", "/things", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"].startswith(where) and message in answer["error"]
    assert answer["problems"][0]["where"] == where


@pytest.mark.parametrize("declared", [True, False])
def test_an_oversized_body_is_refused_before_the_endpoint_runs(declared: bool) -> None:
    """Over max_body bytes: 413, with or without Content-Length (a streamed body)."""
    app, _ = make_app(max_body=100)
    payload = b'{"count": 1, "pad": "' + b"x" * 200 + b'"}'

    async def stream() -> Any:
        for i in range(0, len(payload), 50):
            yield payload[i : i + 50]

    content: Any = payload if declared else stream()
    response = call(
        app, "POST", "/things", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"error": "the request body is larger than 100 bytes", "limit": 100}
    ok = call(app, "POST", "/things", json={"count": 1})
    assert ok.status_code == 200


def test_max_body_is_validated_by_name() -> None:
    """max_body must be a positive int."""
    with pytest.raises(ValueError, match="max_body"):
        make_app(max_body=0)


def test_unknown_endpoints_methods_and_crashes_answer_json() -> None:
    """404 names the endpoint, 405 the method, an unexpected exception is a 500 with the id."""
    app, _ = make_app()
    missing = call(app, "GET", "/nothing")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "no such endpoint: GET /nothing"},
    )
    wrong = call(app, "DELETE", "/things")
    assert wrong.status_code == 405 and "DELETE" in wrong.json()["error"]
    boom = call(app, "GET", "/boom", headers={"X-Request-ID": "r-9"})
    assert boom.status_code == 500
    assert boom.json() == {"error": "internal error (RuntimeError)", "request_id": "r-9"}


def test_health_endpoints_follow_the_database_and_the_ready_check() -> None:
    """/healthz is 200 while running; /readyz is 503 with a reason when the db is closed."""
    reasons: list[str | None] = [None]

    async def ready() -> str | None:
        return reasons[0]

    app, db = make_app(ready=ready)
    assert call(app, "GET", "/healthz").json() == {"status": "alive", "service": "demo"}
    assert call(app, "GET", "/readyz").status_code == 200
    reasons[0] = "the registry was never reached"
    not_ready = call(app, "GET", "/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["error"] == reasons[0]
    reasons[0] = None
    db.close()
    closed = call(app, "GET", "/readyz")
    assert closed.status_code == 503 and closed.json()["error"] == "the database is closed"
    assert call(app, "GET", "/healthz").status_code == 200


def test_spans_use_the_event_loop_clock() -> None:
    """In virtual time a span lasts exactly the virtual seconds the endpoint waited."""
    db = Database()
    app = service_app("slow", db, title="slow", description="slow")

    @app.get("/wait")
    async def wait() -> dict[str, str]:
        await asyncio.sleep(2.5)
        return {}

    call(app, "GET", "/wait")
    (span,) = app.state.spans
    assert (span.start, span.end, span.duration) == (0.0, 2.5, 2.5)
