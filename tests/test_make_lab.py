"""`make lab` serves the course in JupyterLab with the nbgrader extensions active."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import REPO
from tests.jupyter_browser import free_port


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.slow
def test_make_lab_serves_the_course(tmp_path: Path):
    """The exact `make lab` target starts JupyterLab at the course root, nbgrader on."""
    port, token = free_port(), secrets.token_hex(8)
    lab_args = (
        f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
        f"--ServerApp.port_retries=0 --IdentityProvider.token={token}"
    )
    log = (tmp_path / "lab.log").open("wb")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    process = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={lab_args}"],
        cwd=REPO,
        stdout=log,
        stderr=log,
        env=env,
        start_new_session=True,  # so the whole make -> jupyter tree can be stopped
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # first run may still be installing
        while True:
            assert process.poll() is None, (tmp_path / "lab.log").read_text()
            try:
                get(f"{base}/api/status?token={token}")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, (tmp_path / "lab.log").read_text()
                time.sleep(0.5)  # a real server process is starting
        contents = json.loads(get(f"{base}/api/contents?token={token}"))
        names = {item["name"] for item in contents["content"]}
        assert {"lessons", "exercises", "quizzes", "README.md"} <= names
        lab_page = get(f"{base}/lab?token={token}")
        assert "@jupyter/nbgrader" in lab_page, "nbgrader's lab extension is not active"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
