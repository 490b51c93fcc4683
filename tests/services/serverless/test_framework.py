"""functions-framework in this process (Flask test client) and as a server on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from distlab.errors import InvalidEvent, ServiceStartError
from distlab.services.serverless import example
from distlab.services.serverless.events import encode, make_event
from distlab.services.serverless.framework import (
    FunctionFailed,
    FunctionServer,
    InProcessFunction,
    free_port,
)

EXAMPLE = Path(example.__file__)


def _reading(event_id: str, celsius: object = 21.5) -> bytes:
    data = {"sensor": "greenhouse-3", "celsius": celsius}
    return encode(make_event(data, id=event_id, type=example.READING_TYPE, source="/sensors"))


def _rows(db: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT event_id, sensor, celsius FROM readings ORDER BY 1").fetchall()


def test_in_process_the_framework_answers_200_400_and_stores_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reading is stored; its duplicate changes nothing; garbage is 400; bad data is 400."""
    db = tmp_path / "readings.db"
    monkeypatch.setenv("DISTLAB_DB", str(db))
    function = InProcessFunction(EXAMPLE, "store_reading")
    assert function.post(_reading("r-1")).status == 200
    assert function.post(_reading("r-1")).status == 200  # redelivered: no second row
    garbage = function.post(b"garbage")
    assert garbage.status == 400 and "Bad Request" in garbage.text
    too_hot = function.post(_reading("r-2", celsius=400))
    assert (too_hot.status, too_hot.text) == (
        400,
        "invalid event: celsius must be between -90 and 60, got 400",
    )
    assert _rows(db) == [("r-1", "greenhouse-3", 21.5)]


def test_called_with_an_event_it_raises_what_a_trigger_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2xx returns, 4xx raises InvalidEvent with the answer, 5xx raises FunctionFailed."""
    monkeypatch.setenv("DISTLAB_DB", str(tmp_path / "r.db"))
    function = InProcessFunction(EXAMPLE, "store_reading")
    function(make_event({"sensor": "s", "celsius": 1}, id="a", type=example.READING_TYPE))
    with pytest.raises(InvalidEvent, match="type must be"):
        function(make_event({"sensor": "s", "celsius": 1}, id="b", type="other"))
    crashing = tmp_path / "crash.py"
    crashing.write_text(
        "import functions_framework\n\n"
        "@functions_framework.cloud_event\n"
        "def handler(cloud_event):\n"
        "    raise RuntimeError('database is locked')\n"
    )
    with pytest.raises(FunctionFailed) as caught:
        InProcessFunction(crashing, "handler")(make_event({}, id="c"))
    assert caught.value.status == 500


def test_each_in_process_function_is_a_fresh_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_app loads the module anew: module state (the connection) is per instance."""
    monkeypatch.setenv("DISTLAB_DB", str(tmp_path / "r.db"))
    first = InProcessFunction(EXAMPLE, "store_reading")
    second = InProcessFunction(EXAMPLE, "store_reading")
    assert first.app is not second.app


def test_bad_source_or_target_is_named() -> None:
    """A missing file or a target that is not a name is refused before anything starts."""
    with pytest.raises(ValueError, match="source must be an existing Python file"):
        InProcessFunction("no/such/file.py", "f")
    with pytest.raises(ValueError, match="target must be the name"):
        FunctionServer(EXAMPLE, "not a name")


def test_the_readme_recipe_a_server_on_127_0_0_1_and_curl(tmp_path: Path) -> None:
    """The README's commands: the server answers curl, writes the row, and stops by pid."""
    db = tmp_path / "readings.db"
    body = json.dumps(
        {
            "specversion": "1.0",
            "type": "com.example.sensor.reading",
            "source": "/sensors/greenhouse-3",
            "id": "reading-0001",
            "data": {"sensor": "greenhouse-3", "celsius": 21.5},
        }
    )
    with FunctionServer(EXAMPLE, "store_reading", env={"DISTLAB_DB": str(db)}) as server:
        assert server.url.startswith("http://127.0.0.1:")
        pid = server.pid
        assert pid is not None
        listening = {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")}
        assert listening <= {"127.0.0.1"}
        curl = subprocess.run(
            ["curl", "-sS", "-X", "POST", server.url,
             "-H", "Content-Type: application/cloudevents+json", "-d", body],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert (curl.returncode, curl.stdout) == (0, "OK"), curl.stderr
        again = httpx.post(
            server.url,
            content=body,
            headers={"Content-Type": "application/cloudevents+json"},
            timeout=30,
        )
        assert again.status_code == 200
        server.stop()
        assert server.pid is None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert _rows(db) == [("reading-0001", "greenhouse-3", 21.5)]


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    """A function file that raises on import: ServiceStartError with the traceback's end."""
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('no module named nowhere')\n")
    with pytest.raises(ServiceStartError, match="no module named nowhere"):
        FunctionServer(broken, "handler", start_timeout=30)


def test_free_port_is_bindable_on_loopback() -> None:
    """free_port() returns a port in the user range."""
    assert 1024 < free_port() < 65536


def test_the_readme_shows_these_commands() -> None:
    """The README's recipe names the same source, target, host and event as the test above."""
    from tests import REPO

    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert (
        "DISTLAB_DB=readings.db .venv/bin/functions-framework --source "
        "src/distlab/services/serverless/example.py \\ --target store_reading "
        "--signature-type cloudevent --host 127.0.0.1 --port 8080"
    ) in readme
    assert (
        'curl -X POST http://127.0.0.1:8080/ -H "Content-Type: application/cloudevents+json"'
        in (readme)
    )
    assert '"id": "reading-0001", "data": {"sensor": "greenhouse-3", "celsius": 21.5}' in readme
    assert "400 invalid event: celsius must be between -90 and 60, got 400" in readme
