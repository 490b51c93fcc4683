"""Run the e-commerce application as real processes: ``make services``.

``python -m distlab.services.ecommerce.launcher run`` starts the discovery registry (when
``distlab.patterns.discovery`` is installed) and the users, catalog and orders services,
each a uvicorn process on 127.0.0.1 with its own SQLite file, waits until every one
answers ``/readyz``, prints their addresses and OpenAPI pages, and runs until Ctrl-C
(SIGINT) or SIGTERM, when it stops every process it started and exits.

Options: ``--ports auto`` picks free ports (default: users 8001, catalog 8002, orders
8003, registry 8500); ``--data DIR`` keeps the databases in DIR (default: a temporary
folder, removed at exit); ``--no-demo`` starts with empty databases (default: one user
and three products, so ``POST /orders`` works at once).

Tests and benchmarks use :class:`Services`, the same thing as a context manager.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from distlab.services.ecommerce.common import DEFAULT_PORTS

__all__ = ["Services", "free_port", "main"]

SERVICES = ("users", "catalog", "orders")
DEMO_USER = {"name": "Ada Lovelace", "email": "ada@example.org"}
DEMO_PRODUCTS = (
    {"name": "Desk lamp", "price_cents": 2500, "stock": 100},
    {"name": "Notebook", "price_cents": 450, "stock": 500},
    {"name": "Fountain pen", "price_cents": 8900, "stock": 20},
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _has_registry() -> bool:
    return importlib.util.find_spec("distlab.patterns.discovery") is not None


class Services:
    """Start the application's processes; stop every one of them on exit.

    Args:
        ports: ``"auto"`` for free ports, or a mapping of service name to port
            (``users``, ``catalog``, ``orders``, ``registry``); missing names get the
            default ports.
        data_dir: folder for the SQLite files; None: a temporary folder, removed on exit.
        demo: put one user and three products in the databases once they are ready.
        env: extra environment for every service (e.g. ``{"DISTLAB_FAULTS": "..."}``).
        ready_timeout: seconds to wait for every ``/readyz``.
        quiet: send the services' output to log files in ``data_dir`` instead of the terminal.
        registry: start the discovery registry (False: services find each other at fixed
            addresses, ``DISTLAB_USERS_URL`` and ``DISTLAB_CATALOG_URL``).

    Attributes:
        urls: the base URL of each service, e.g. ``urls["orders"]``.
        processes: the ``subprocess.Popen`` of each service.

    Raises:
        ValueError: for an unknown service in ``ports``.
        RuntimeError: when a service exits or is not ready within ``ready_timeout``.
    """

    def __init__(
        self,
        *,
        ports: Mapping[str, int] | str = "auto",
        data_dir: str | Path | None = None,
        demo: bool = True,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 30.0,
        quiet: bool = True,
        registry: bool = True,
    ) -> None:
        names = [*SERVICES, *(("registry",) if registry and _has_registry() else ())]
        if ports == "auto":
            chosen = {name: free_port() for name in names}
        elif isinstance(ports, Mapping):
            unknown = sorted(set(ports) - {*SERVICES, "registry"})
            if unknown:
                raise ValueError(
                    f"ports names unknown services {unknown}: use {[*SERVICES, 'registry']}"
                )
            chosen = {name: int(ports.get(name, DEFAULT_PORTS[name])) for name in names}
        else:
            raise ValueError(f"ports must be 'auto' or a mapping of service to port, got {ports!r}")
        self.ports = chosen
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in chosen.items()}
        self._own_dir = data_dir is None
        self.data_dir = Path(
            tempfile.mkdtemp(prefix="distlab-shop-") if data_dir is None else data_dir
        )
        self.demo = demo
        self.env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.quiet = quiet
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def _command(self, name: str) -> list[str]:
        if name == "registry":
            return [
                sys.executable,
                "-m",
                "distlab.patterns.discovery",
                "serve",
                "--port",
                str(self.ports[name]),
            ]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            f"distlab.services.ecommerce.{name}:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[name]),
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    def _environment(self, name: str) -> dict[str, str]:
        env = {**os.environ, "DISTLAB_LOG_LEVEL": "INFO", **self.env, "PORT": str(self.ports[name])}
        env["DISTLAB_DB_PATH"] = str(self.data_dir / f"{name}.db")
        env["DISTLAB_SERVICE_URL"] = self.urls[name]
        env["DISTLAB_USERS_URL"] = self.urls["users"]
        env["DISTLAB_CATALOG_URL"] = self.urls["catalog"]
        if "registry" in self.urls:
            env["DISTLAB_REGISTRY_URL"] = self.urls["registry"]
        return env

    def start(self) -> Services:
        """Start every process and wait until each is ready (see the class docstring)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        order = [n for n in ("registry", *SERVICES) if n in self.urls]
        try:
            for name in order:
                log: IO[bytes] | None = None
                if self.quiet:
                    log = open(self.data_dir / f"{name}.log", "wb")  # noqa: SIM115  (closed in stop)
                    self._logs.append(log)
                self.processes[name] = subprocess.Popen(
                    self._command(name),
                    env=self._environment(name),
                    stdout=log,
                    stderr=subprocess.STDOUT if log is not None else None,
                    stdin=subprocess.DEVNULL,
                    # Its own session: Ctrl-C reaches the launcher only, which then stops
                    # the services in order, and a test can signal the launcher alone.
                    start_new_session=True,
                )
            self._wait_ready(order)
            if self.demo:
                self._add_demo_data()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, names: Sequence[str]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=1.0) as client:
            for name in names:
                path = "/readyz" if name != "registry" else "/healthz"
                while True:
                    process = self.processes[name]
                    if process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with code {process.returncode} before it was ready"
                            + self._log_tail(name)
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(self.urls[name] + path).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{name} was not ready within {self.ready_timeout} s"
                            + self._log_tail(name)
                        )
                    time.sleep(0.05)
            if "registry" in self.urls:
                # Services register in the background once they run: wait until the
                # registry lists each of them, so the first order finds its dependencies.
                for name in SERVICES:
                    while True:
                        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                            listed = client.get(f"{self.urls['registry']}/services/{name}")
                            if listed.json()["instances"]:
                                break
                        if time.monotonic() > deadline:
                            raise RuntimeError(
                                f"{name} did not register within {self.ready_timeout} s"
                                + self._log_tail(name)
                            )
                        time.sleep(0.05)

    def _log_tail(self, name: str) -> str:
        log = self.data_dir / f"{name}.log"
        if not log.is_file():
            return ""
        lines = log.read_text(errors="replace").splitlines()[-15:]
        return "; its log ends with:\n" + "\n".join(lines)

    def _add_demo_data(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            users = client.get(self.urls["users"] + "/users").json()
            if not users:
                client.post(self.urls["users"] + "/users", json=DEMO_USER).raise_for_status()
            if not client.get(self.urls["catalog"] + "/products").json():
                for product in DEMO_PRODUCTS:
                    client.post(self.urls["catalog"] + "/products", json=product).raise_for_status()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every process (SIGTERM, then SIGKILL after ``timeout`` s) and clean up."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def describe(self) -> Iterator[str]:
        """Yield the lines ``make services`` prints: addresses and OpenAPI pages."""
        for name, url in self.urls.items():
            pid = self.processes[name].pid if name in self.processes else "-"
            docs = f"   OpenAPI: {url}/docs" if name != "registry" else ""
            yield f"{name:<9} {url:<24} pid {pid}{docs}"


def _run(args: argparse.Namespace) -> int:
    ports: Mapping[str, int] | str = "auto" if args.ports == "auto" else dict(DEFAULT_PORTS)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    services = Services(
        ports=ports, data_dir=args.data, demo=not args.no_demo, quiet=not args.verbose
    )
    try:
        print("starting the distlab shop...", flush=True)
        services.start()
        for line in services.describe():
            print(line, flush=True)
        if services.demo:
            print(
                f"try: curl -X POST {services.urls['orders']}/orders"
                " -H 'Idempotency-Key: first-order'"
                " -H 'Content-Type: application/json'"
                ' -d \'{"user_id": 1, "items": [{"product_id": 1, "quantity": 1}]}\'',
                flush=True,
            )
        print("running; press Ctrl-C to stop everything", flush=True)
        while not stop.wait(0.2):
            for name, process in services.processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; stopping", flush=True)
                    stop.set()
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        services.stop()
        print("stopped every process", flush=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the launcher's command line (see the module docstring); return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m distlab.services.ecommerce.launcher",
        description="Run the distlab e-commerce application as real processes on 127.0.0.1.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything; Ctrl-C stops everything")
    run.add_argument("--ports", choices=["default", "auto"], default="default")
    run.add_argument("--data", default=None, help="folder for the databases (default: temporary)")
    run.add_argument("--no-demo", action="store_true", help="start with empty databases")
    run.add_argument("--verbose", action="store_true", help="show the services' logs")
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
