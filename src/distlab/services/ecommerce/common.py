"""What the three e-commerce services share: settings, the database, request ids, errors.

Every service is built by :func:`service_app`, which gives it

* its own SQLite database (:class:`Database`): database per service, no service reads
  another's tables;
* ``GET /healthz`` (liveness: 200 while the process runs) and ``GET /readyz`` (readiness:
  200 when the database is open and the service's own ``ready`` check passes, else 503);
* a request id: the ``X-Request-ID`` header of the incoming request (or a new one) is
  kept in :data:`REQUEST_ID` while the request runs, sent back in the response, passed
  on by every outgoing call (:mod:`distlab.services.ecommerce.remote`), logged, and
  recorded with the request's start and end time as a :class:`Span` in ``app.state.spans``;
* a body limit: a body over ``max_body`` bytes gets ``413`` before the endpoint runs;
* JSON errors: every 4xx and 5xx answer is ``{"error": "<what is wrong>", ...}``;
  malformed JSON is ``400``, a body or parameter that breaks the schema ``422`` with
  ``problems`` naming each field.

Configuration comes from the environment when an argument is not given (see
:class:`Settings`), so ``uvicorn --factory distlab.services.ecommerce.users:create_app``
runs a service with no code of yours.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DEFAULT_PORTS",
    "MAX_BODY",
    "REQUEST_ID",
    "REQUEST_ID_HEADER",
    "Database",
    "Settings",
    "Span",
    "error",
    "loop_clock",
    "open_database",
    "service_app",
]

REQUEST_ID_HEADER = "X-Request-ID"
MAX_BODY = 64 * 1024
"""Default body limit in bytes: an order of 50 lines is about 3 KiB."""
DEFAULT_PORTS: Mapping[str, int] = {
    "users": 8001,
    "catalog": 8002,
    "orders": 8003,
    "registry": 8500,
}

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "distlab_request_id", default=None
)
"""The id of the request being served (None outside a request)."""

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Settings:
    """A service's configuration, read from the environment by :meth:`from_env`.

    Attributes:
        service: the service's name (``users``, ``catalog``, ``orders``).
        db_path: its SQLite file (``DISTLAB_DB_PATH``; ``:memory:`` when unset).
        registry_url: the discovery registry (``DISTLAB_REGISTRY_URL``; None: no registry).
        service_url: the address the service registers (``DISTLAB_SERVICE_URL``; default
            ``http://127.0.0.1:<port>``).
        port: its port (``PORT``; default 8001 users, 8002 catalog, 8003 orders).
    """

    service: str
    db_path: str
    registry_url: str | None
    service_url: str
    port: int

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings of ``service`` from ``env`` (default ``os.environ``).

        Raises:
            ValueError: when ``PORT`` is not a port number (the message names it).
        """
        env = os.environ if env is None else env
        raw_port = env.get("PORT", "").strip()
        if raw_port:
            if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
                raise ValueError(
                    f"PORT must be a port number between 1 and 65535, got {raw_port!r}"
                )
            port = int(raw_port)
        else:
            port = DEFAULT_PORTS[service]
        return cls(
            service=service,
            db_path=env.get("DISTLAB_DB_PATH") or ":memory:",
            registry_url=env.get("DISTLAB_REGISTRY_URL") or None,
            service_url=env.get("DISTLAB_SERVICE_URL") or f"http://127.0.0.1:{port}",
            port=port,
        )


class Database:
    """One service's SQLite database; the only code that touches its tables.

    Args:
        path: an SQLite file, or ``":memory:"`` (kept as long as this object lives: a
            service "restarted" in-process over the same ``Database`` finds its data,
            like a real one restarted over the same file).
        schema: SQL statements run once when the database opens (``CREATE TABLE IF NOT
            EXISTS ...``).

    A file database uses write-ahead logging and a 5 s busy timeout, so several
    processes of one service (instances sharing its database) can write to it.
    """

    def __init__(self, path: str = ":memory:", *, schema: str = "") -> None:
        if not isinstance(path, str) or not path:
            raise ValueError(f"path must be an SQLite file name or ':memory:', got {path!r}")
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=5.0
        )
        self._conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        if schema:
            self.apply(schema)

    def apply(self, schema: str) -> None:
        """Run ``schema`` (idempotent ``CREATE ... IF NOT EXISTS`` statements)."""
        with self._lock:
            self._connection().executescript(schema)

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._conn is not None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"the database {self.path!r} is closed")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one transaction: all its writes happen, or none (on an exception).

        ``BEGIN IMMEDIATE`` takes the write lock at once, so two instances of a service
        never both read a stock level and both decide to take the last item.
        """
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement and return every row."""
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection; :attr:`is_open` becomes False (readiness then fails)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_database(db: Database | str | None, settings: Settings, schema: str) -> Database:
    """Return the service's database: ``db`` itself, or a new one at ``db`` or the settings' path.

    Args:
        db: a :class:`Database` (shared with a previous app: an in-process restart), an
            SQLite path, or None for ``settings.db_path``.
        settings: the service's settings.
        schema: the service's tables, created if missing.
    """
    if isinstance(db, Database):
        db.apply(schema)
        return db
    return Database(db or settings.db_path, schema=schema)


@dataclass(frozen=True)
class Span:
    """One request as one service served it: the waterfall plot draws one bar per span.

    Attributes:
        request_id: the ``X-Request-ID`` it carried (or was given).
        service: the service that served it.
        method: the HTTP method.
        path: the URL path.
        start: event-loop time when it arrived, in seconds (virtual in ``distlab.run``).
        end: event-loop time when the answer was sent.
        status: the HTTP status of the answer.
    """

    request_id: str
    service: str
    method: str
    path: str
    start: float
    end: float
    status: int

    @property
    def duration(self) -> float:
        """Seconds between arrival and answer."""
        return self.end - self.start


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """Return the JSON error every service answers with: ``{"error": message, **extra}``."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def loop_clock() -> float:
    """Return the running event loop's time (virtual under ``distlab.run``), else monotonic."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _new_request_id() -> str:
    return secrets.token_hex(8)


class _ServiceMiddleware:
    """Request id, body limit, span and log line for every HTTP request (plain ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        max_body: int,
        spans: deque[Span],
        logger: logging.Logger,
    ) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body
        self.spans = spans
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_REQUEST_ID.match(given) else _new_request_id()
        token = REQUEST_ID.set(request_id)
        scope["distlab.request_id"] = request_id  # for the last-resort error handler
        status = 500
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", raw_id)]
            await send(message)

        try:
            body = await self._read_body(headers, receive)
            if body is None:
                too_big = error(
                    413,
                    f"the request body is larger than {self.max_body} bytes",
                    limit=self.max_body,
                )
                await too_big(scope, receive, send_with_id)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_with_id)
        finally:
            end = loop.time()
            span = Span(
                request_id, self.service, scope["method"], scope["path"], start, end, status
            )
            self.spans.append(span)
            self.logger.info(
                "request_id=%s %s %s -> %d in %.1f ms",
                request_id,
                scope["method"],
                scope["path"],
                status,
                1000 * (end - start),
            )
            REQUEST_ID.reset(token)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes | None:
        """Read the whole body, or return None as soon as it is over the limit."""
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _where(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def _problems(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {"where": _where(tuple(item.get("loc", ()))), "message": str(item.get("msg", "invalid"))}
        for item in exc.errors()
    ]


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _problems(exc)
    kinds = {item.get("type") for item in exc.errors()}
    if "json_invalid" in kinds:
        detail = next(
            (
                str(i.get("ctx", {}).get("error", ""))
                for i in exc.errors()
                if i["type"] == "json_invalid"
            ),
            "",
        )
        return error(400, f"the body is not valid JSON ({detail})".replace(" ()", ""))
    first = problems[0] if problems else {"where": "body", "message": "invalid"}
    summary = f"{first['where']}: {first['message']}"
    if len(problems) > 1:
        summary += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return error(422, summary, problems=problems)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    response = error(exc.status_code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("distlab.request_id")
    logging.getLogger("distlab.services").error(
        "request_id=%s unexpected error", request_id, exc_info=exc
    )
    return error(500, f"internal error ({type(exc).__name__})", request_id=request_id)


Lifespan = Callable[[FastAPI], AsyncIterator[None]]


def _configure_logging() -> None:
    """Log the services' lines to stderr when ``DISTLAB_LOG_LEVEL`` is set (real servers).

    Unset (lessons, tests), the package logs like a library: nothing is printed unless
    the application configures logging itself.
    """
    level = os.environ.get("DISTLAB_LOG_LEVEL", "").strip().upper()
    logger = logging.getLogger("distlab.services")
    if not level or logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def service_app(
    name: str,
    db: Database,
    *,
    title: str,
    description: str,
    max_body: int = MAX_BODY,
    ready: Callable[[], Awaitable[str | None]] | None = None,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """Return a FastAPI app with the parts every service shares (see the module docstring).

    Args:
        name: the service's name, used in logs, spans and health answers.
        db: its database; ``/readyz`` fails once it is closed.
        title: the OpenAPI page's title.
        description: the OpenAPI page's description.
        max_body: the largest request body accepted, in bytes (>= 1).
        ready: an extra readiness check returning None when ready, or the reason why not.
        lifespan: startup and shutdown work run by a real server (uvicorn); an in-process
            ``httpx.ASGITransport`` does not run it.

    Raises:
        ValueError: when ``max_body`` is not a positive int.
    """
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
    _configure_logging()
    spans: deque[Span] = deque(maxlen=10_000)

    @asynccontextmanager
    async def run_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            yield
            return
        async with asynccontextmanager(lifespan)(app):
            yield

    app = FastAPI(title=title, description=description, version="1.0", lifespan=run_lifespan)
    app.state.service = name
    app.state.db = db
    app.state.spans = spans
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
    app.add_middleware(
        _ServiceMiddleware,
        service=name,
        max_body=max_body,
        spans=spans,
        logger=logging.getLogger(f"distlab.services.{name}"),
    )

    @app.get("/healthz", tags=["health"], summary="Liveness: 200 while the process runs")
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": name}

    @app.get("/readyz", tags=["health"], summary="Readiness: 200 when it can serve requests")
    async def readyz() -> JSONResponse:
        reason = None if db.is_open else "the database is closed"
        if reason is None and ready is not None:
            reason = await ready()
        if reason is not None:
            return JSONResponse(
                {"status": "not ready", "service": name, "error": reason}, status_code=503
            )
        return JSONResponse({"status": "ready", "service": name})

    return app
