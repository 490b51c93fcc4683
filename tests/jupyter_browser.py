"""Real-browser test support: a Jupyter server on 127.0.0.1 and headless Debian Chromium.

Used by the browser tests through fixtures in ``conftest.py``:

- ``jupyter_server``: one server per test session, serving a scratch copy of the course
  (JupyterLab autosaves, so tests never touch the committed notebooks), on a random
  free port with a random token. The same server serves JupyterLab (``/lab``) and
  Notebook 7 (``/notebooks``).
- ``page``: a fresh Playwright page in headless Chromium from Debian's package
  (``/usr/bin/chromium``; never a browser download).

Known pitfalls handled here: root needs ``--allow-root``; JupyterLab's news and update
checks are switched off so no toast covers the notebook; the kernel is ready only when
the execution indicator is idle AND a kernel name is shown.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import REPO

CHROMIUM = Path(os.environ.get("DISTLAB_CHROMIUM", "/usr/bin/chromium"))
# Flags for a sandboxed, offline machine: without the background-networking ones Chromium
# keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
COURSE_FOLDERS = ["lessons", "quizzes", "exercises", "solutions"]
ARTIFACTS = REPO / "test-artifacts"


def browser_missing_reason() -> str | None:
    """Return why browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return (
            f"headless Chromium not found at {CHROMIUM}: install Debian's package "
            "(apt-get install chromium) or set DISTLAB_CHROMIUM"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    return None


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_scratch_course(root: Path) -> Path:
    """Copy the course's notebooks and data into ``root`` and return it."""
    for folder in COURSE_FOLDERS:
        if (REPO / folder).exists():
            shutil.copytree(
                REPO / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
            )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@dataclass
class JupyterServer:
    """A running Jupyter server; ``url(path)`` builds an authenticated address."""

    base: str
    token: str
    root: Path
    home: Path

    def url(self, path: str) -> str:
        """Return the full URL of ``path`` (e.g. ``lab/tree/x.ipynb``) with the token."""
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"


def _lab_settings(settings_dir: Path) -> None:
    # Switch off the news/update toasts that would cover cells in a fresh profile.
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@contextmanager
def jupyter_server(scratch: Path) -> Iterator[JupyterServer]:
    """Start ``jupyter server`` (JupyterLab and Notebook 7) on 127.0.0.1 in ``scratch``."""
    root = make_scratch_course(scratch / "course")
    home = scratch / "home"
    settings = scratch / "lab-settings"
    workspaces = scratch / "lab-workspaces"
    for folder in (home, settings, workspaces):
        folder.mkdir(parents=True, exist_ok=True)
    _lab_settings(settings)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        DISTLAB_COURSE_ROOT=str(root),
        DISTLAB_HOME=str(home),
        JUPYTER_CONFIG_DIR=str(scratch / "jupyter-config"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workspaces}",
        "--LabApp.news_url=",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = scratch / "jupyter.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
        server = JupyterServer(f"http://127.0.0.1:{port}", token, root, home)
        try:
            _wait_until_up(server, process, log_path)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: JupyterServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # real wait for a real server process starting up
    raise RuntimeError(f"jupyter did not answer within 60 s:\n{log.read_text()}")


# Page helpers --------------------------------------------------------------------------

KERNEL_READY_JS = """
() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const name = document.querySelector('.jp-Toolbar-kernelName, .jp-KernelName');
  const kernel = name ? name.textContent.trim() : '';
  return indicator !== null
      && indicator.getAttribute('data-status') === 'idle'
      && kernel !== '' && !/no kernel|starting/i.test(kernel);
}
"""

IDLE_JS = """
() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return indicator !== null && indicator.getAttribute('data-status') === 'idle';
}
"""


def open_notebook(page: Any, server: JupyterServer, path: str, *, ui: str = "lab") -> None:
    """Open ``path`` in JupyterLab (``ui="lab"``) or Notebook 7 (``ui="notebook"``).

    Returns once the kernel is ready: execution indicator idle and a kernel name shown.
    """
    if ui == "lab":
        # JupyterLab reopens the tabs of earlier tests from its saved workspace; their
        # cells never run, which would stall run_all. Start from an empty workspace.
        response = page.request.delete(server.url("lab/api/workspaces/default"))
        assert response.status in {204, 404}, f"cannot reset the workspace: {response.status}"
    route = f"lab/tree/{path}" if ui == "lab" else f"notebooks/{path}"
    page.goto(server.url(route))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_READY_JS, timeout=60_000)


def run_all(page: Any, *, timeout_ms: int = 60_000) -> None:
    """Run every cell from the Run menu, then wait until the kernel is idle again."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
    # Execution starts asynchronously: wait for every code cell to get its prompt number.
    page.wait_for_function(
        """() => {
          const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
          return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_ms,
    )
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
