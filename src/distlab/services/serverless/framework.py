"""Google's functions-framework: run a CloudEvent function in this process or as a server.

A function for functions-framework is a module-level function taking one CloudEvent,
marked with ``@functions_framework.cloud_event``. The framework turns it into a Flask
app: an HTTP ``POST /`` carrying a CloudEvent calls the function; the answer is 200
``OK`` when it returns, 400 when the request is not a CloudEvent, 500 when the function
raises (unless the module registers an ``@functions_framework.errorhandler``).

* :class:`InProcessFunction` builds that app with ``functions_framework.create_app`` and
  talks to it through Flask's test client: no socket, no thread, a call per message
  in well under a millisecond. Calling it with a CloudEvent makes it a plain Python
  callable again, which a :class:`~distlab.services.serverless.runtime.QueueTrigger`
  can drive.
* :class:`FunctionServer` runs ``python -m functions_framework`` as a child process
  bound to 127.0.0.1 on a free port, for ``curl`` and real HTTP; ``stop`` ends it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from distlab.errors import InvalidEvent, ServiceStartError
from distlab.services.serverless.events import CONTENT_TYPE, CloudEvent, encode

__all__ = ["FunctionFailed", "FunctionServer", "InProcessFunction", "Reply", "free_port"]


class FunctionFailed(RuntimeError):
    """The function answered 5xx: it raised, and a retry may succeed."""

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"the function failed with HTTP {status}: {text[:200]}")


@dataclass(frozen=True)
class Reply:
    """What the function's HTTP endpoint answered.

    Attributes:
        status: the HTTP status code.
        text: the body, decoded.
    """

    status: int
    text: str


def _check_source(source: str | Path, target: str) -> Path:
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"source must be an existing Python file, got {str(source)!r}")
    if not isinstance(target, str) or not target.isidentifier():
        raise ValueError(f"target must be the name of a function in {path.name}, got {target!r}")
    return path


class InProcessFunction:
    """A CloudEvent function served by functions-framework's Flask app, in this process.

    Args:
        source: the Python file that defines the function.
        target: the function's name in that file.

    Raises:
        ValueError: when the file does not exist or ``target`` is not a name.
        functions_framework.exceptions.MissingTargetException: when the file defines no
            function called ``target``.
    """

    def __init__(self, source: str | Path, target: str) -> None:
        from functions_framework import create_app

        self.source = _check_source(source, target)
        self.target = target
        self.app: Any = create_app(target, str(self.source), "cloudevent")
        # The framework logs a traceback for every 500; the caller gets the status.
        self.app.logger.setLevel(logging.CRITICAL)
        self._client = self.app.test_client()

    def post(self, body: bytes | str, *, headers: dict[str, str] | None = None) -> Reply:
        """POST ``body`` to the function, as ``curl`` would, and return the reply.

        Args:
            body: the request body (structured-mode CloudEvent JSON, or anything else).
            headers: the request headers; default ``Content-Type:
                application/cloudevents+json``.
        """
        if headers is None:
            headers = {"Content-Type": CONTENT_TYPE}
        response = self._client.post("/", data=body, headers=headers)
        return Reply(response.status_code, response.get_data(as_text=True))

    def __call__(self, event: CloudEvent) -> None:
        """Deliver ``event``; return on 2xx.

        Raises:
            InvalidEvent: on a 4xx answer (the event will never be accepted), with the
                answer as the reason.
            FunctionFailed: on a 5xx answer (the function raised).
        """
        reply = self.post(encode(event))
        if 200 <= reply.status < 300:
            return
        if 400 <= reply.status < 500:
            raise InvalidEvent(reply.text.strip() or f"HTTP {reply.status}")
        raise FunctionFailed(reply.status, reply.text)

    def __repr__(self) -> str:
        return f"InProcessFunction({str(self.source)!r}, {self.target!r})"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FunctionServer:
    """``functions-framework`` serving a CloudEvent function on 127.0.0.1, as a child process.

    Args:
        source: the Python file that defines the function.
        target: the function's name in that file.
        port: the TCP port; default a free one.
        env: extra environment variables for the server (e.g. where the database is).
        start_timeout: real seconds to wait until the port accepts connections.

    Raises:
        ValueError: bad ``source`` or ``target``.
        ServiceStartError: the server exited or did not listen in time (with its log).
    """

    def __init__(
        self,
        source: str | Path,
        target: str,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.source = _check_source(source, target)
        self.target = target
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}/"
        command = [
            sys.executable, "-m", "functions_framework",
            "--source", str(self.source), "--target", target,
            "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        self.command = command
        # The log goes to a file: a pipe nobody reads could fill up and block the server.
        self._logfile = _temp_log()
        self.log_path = Path(self._logfile.name)
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        self._wait_until_listening(start_timeout)

    def _wait_until_listening(self, start_timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                self._fail(f"exited with status {code}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            time.sleep(0.05)  # real time: a real process is starting
        self._fail(f"not listening on port {self.port} after {start_timeout} s")

    def _fail(self, why: str) -> None:
        tail = self.log()[-2000:]
        self.stop()
        raise ServiceStartError(f"functions-framework did not start ({why}):\n{tail}")

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s) and wait for it. Twice is fine."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - gunicorn/flask exit on TERM
                process.kill()
                process.wait()
        if not self._logfile.closed:
            self._logfile.close()

    def __enter__(self) -> FunctionServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def __repr__(self) -> str:
        return f"FunctionServer({self.url!r}, target={self.target!r}, pid={self.pid})"


def _temp_log() -> Any:
    import tempfile

    return tempfile.NamedTemporaryFile(  # closed by FunctionServer.stop()
        prefix="distlab-function-", suffix=".log", delete=False
    )
