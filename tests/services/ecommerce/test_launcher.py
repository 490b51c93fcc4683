"""services.ecommerce.launcher: `make services` starts real processes and Ctrl-C stops them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from distlab.services.ecommerce.launcher import Services, free_port, main
from tests import REPO

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> list[str]:
    """Read the launcher's output lines until one contains ``marker``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in the launcher's output: {lines}")


def test_make_services_runs_the_launcher() -> None:
    """The Makefile's services target runs this module's `run` command."""
    makefile = (REPO / "Makefile").read_text()
    assert re.search(
        r"^services: install\n\t\$\(BIN\)/python -m distlab\.services\.ecommerce\.launcher run",
        makefile,
        re.MULTILINE,
    )


def test_the_launcher_serves_the_shop_and_ctrl_c_stops_every_process() -> None:
    """Addresses and OpenAPI pages printed, all registered, an order logged; SIGINT stops all."""
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distlab.services.ecommerce.launcher",
            "run",
            "--ports",
            "auto",
            "--verbose",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        lines = read_until(launcher, "press Ctrl-C")
        services = {
            m.group(1): (m.group(2), int(m.group(3)))
            for m in (
                re.match(r"^(\w+)\s+(http://127\.0\.0\.1:\d+)\s+pid (\d+)", line) for line in lines
            )
            if m
        }
        assert {"users", "catalog", "orders"} <= set(services)
        for name in ("users", "catalog", "orders"):
            assert f"OpenAPI: {services[name][0]}/docs" in "\n".join(lines)
        orders_url = services["orders"][0]
        with httpx.Client(timeout=10) as client:
            assert client.get(orders_url + "/docs").status_code == 200
            registry = services["registry"][0]
            assert client.get(registry + "/services").json()["services"] == [
                "catalog",
                "orders",
                "users",
            ]
            assert client.get(registry + "/services/catalog").json()["instances"] == [
                services["catalog"][0]
            ]
            placed = client.post(
                orders_url + "/orders",
                json={"user_id": 1, "items": [{"product_id": 1, "quantity": 1}]},
                headers={"Idempotency-Key": "launcher-test", "X-Request-ID": "launcher-req-1"},
            )
        assert placed.status_code == 201, placed.text
        logged = read_until(launcher, "request_id=launcher-req-1 POST /orders")
        assert any("distlab.services.users" in line and "launcher-req-1" in line for line in logged)
        launcher.send_signal(signal.SIGINT)
        rest, _ = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0
    assert "stopped every process" in rest
    left = [name for name, (_, pid) in services.items() if alive(pid)]
    assert left == []


def test_services_stops_everything_it_started_and_removes_its_folder() -> None:
    """The context manager used by the load test: ready on entry, nothing left on exit."""
    with Services(ports="auto", demo=True) as shop:
        pids = [p.pid for p in shop.processes.values()]
        folder = shop.data_dir
        with httpx.Client(timeout=5) as client:
            for name in ("users", "catalog", "orders"):
                assert client.get(shop.urls[name] + "/readyz").status_code == 200
            assert len(client.get(shop.urls["catalog"] + "/products").json()) == 3
        assert sorted(p.name for p in folder.glob("*.db")) == [
            "catalog.db",
            "orders.db",
            "users.db",
        ]
    assert not [pid for pid in pids if alive(pid)]
    assert not folder.exists()


def test_a_service_that_cannot_start_is_reported_and_the_others_are_stopped(tmp_path: Path) -> None:
    """A port already taken: RuntimeError naming the service; no process left behind."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        services = Services(
            ports={
                "users": free_port(),
                "catalog": port,
                "orders": free_port(),
                "registry": free_port(),
            },
            data_dir=tmp_path,
            ready_timeout=20,
        )
        with pytest.raises(RuntimeError, match="catalog"):
            services.start()
    assert all(p.poll() is not None for p in services.processes.values())


def test_bad_ports_are_refused_by_name() -> None:
    """An unknown service name or a port setting that is not 'auto' nor a mapping."""
    with pytest.raises(ValueError, match="ports"):
        Services(ports={"payments": 1})
    with pytest.raises(ValueError, match="ports"):
        Services(ports="everything")


def test_the_command_line_needs_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`launcher` with no command prints its usage and exits with code 2."""
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "run" in capsys.readouterr().err
