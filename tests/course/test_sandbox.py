"""KernelSandbox: what a sandboxed kernel can see, reach and use, and that nothing outlives it.

One kernel answers the questions about what it sees (one round trip); the limits that
kill a kernel (memory, CPU time) are hit in a second one, with small limits.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_core.utils import run_sync

from distlab.course.kernelpool import KernelPool
from distlab.course.sandbox import (
    SANDBOX_WORKDIR,
    KernelSandbox,
    Limits,
    Sandbox,
    SandboxedKernelManager,
    _own_cgroup,
    _python_folders,
    sandbox_problem,
)
from distlab.errors import SandboxUnavailable
from tests import REPO

# Sandboxes need root and bubblewrap: without them these skip, except in CI (conftest).
pytestmark = pytest.mark.sandbox


def _run(km: Any, code: str, timeout: float = 30) -> tuple[str, list[str]]:
    """Run ``code`` in the kernel of ``km``: (reply status, printed text and errors)."""
    client = km.blocking_client()
    client.start_channels()
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{content['ename']}: {content['evalue']}")

    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(code, timeout=timeout, output_hook=hook)
        return str(reply["content"]["status"]), out
    except Exception as exc:  # the kernel died (a limit): no reply
        return type(exc).__name__, out
    finally:
        client.stop_channels()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_mb", 0),
        ("processes", 2),
        ("cpu_seconds", 0),
        ("open_files", 4),
        ("disk_mb", "1"),
        ("cores", 0),
    ],
)
def test_limits_name_the_bad_setting(field: str, value: Any) -> None:
    """A limit that cannot work is refused with its name and the allowed range."""
    with pytest.raises(ValueError, match=f"{field} must be an int >= "):
        Limits(**{field: value})


def test_a_hidden_module_must_be_a_module_file() -> None:
    """Hiding a package or an unknown module is a configuration error, named."""
    settings = Sandbox(hidden_modules={"x": ["distlab.patterns"]})
    with pytest.raises(ValueError, match="is a package"):
        settings.make("x")
    settings = Sandbox(hidden_modules={"x": ["distlab.no_such_module"]})
    with pytest.raises(ValueError, match="not an importable module"):
        settings.make("x")


def test_no_sandbox_means_a_refusal_that_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no sandbox can be made, making one raises SandboxUnavailable with the reason."""
    import distlab.course.sandbox as module

    monkeypatch.setattr(module, "sandbox_problem", lambda: "bubblewrap is not installed")
    with pytest.raises(SandboxUnavailable, match=r"bubblewrap is not installed.*--unsandboxed"):
        Sandbox().make("circuit_breaker")


PROBE = r"""
import json, os, socket, sys
facts = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd()}
facts["env"] = sorted(os.environ)
facts["files"] = sorted(os.listdir("."))
facts["root"] = sorted(os.listdir("/"))
facts["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
def attempt(name, action):
    try:
        facts[name] = repr(action())
    except BaseException as exc:
        facts[name] = f"{type(exc).__name__}: {exc}"
attempt("hidden", lambda: __import__("distlab.patterns.breaker"))
attempt("chapter", lambda: __import__("distlab.patterns.chapter").patterns.chapter.__name__)
attempt("net", lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
attempt("host_port", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2))
attempt("course", lambda: os.listdir(COURSE))
attempt("solutions", lambda: open(COURSE + "/solutions/circuit_breaker/circuit_breaker.ipynb"))
attempt("write_venv", lambda: open(sys.prefix + "/pwned", "w"))
package = os.path.dirname(__import__("distlab").__file__)
attempt("write_package", lambda: open(package + "/x.py", "w"))
attempt("home", lambda: open(os.path.expanduser("~/notes.txt"), "w").write("ok"))
attempt("tmp", lambda: open("/tmp/x", "w").write("ok"))
attempt("big_file", lambda: open("big", "wb").write(b"x" * (3 << 20)))
import subprocess
unshare = ["unshare", "--user", "true"]
attempt("userns", lambda: subprocess.run(unshare, capture_output=True).returncode)
attempt("open_files", lambda: [open("/dev/null") for _ in range(200)])
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What one sandboxed kernel sees and can do, with a server listening on the host."""
    import json

    staged = tmp_path_factory.mktemp("submission")
    (staged / "data.csv").write_text("a,b\n1,2\n")
    (staged / "circuit_breaker.ipynb").write_text("{}")  # notebooks are never staged
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    settings = Sandbox(
        hidden_modules={"circuit_breaker": ["distlab.patterns.breaker"]},
        file_size_mb=2,
        open_files=128,
    )
    pool = KernelPool(
        1,
        limit=1,
        sandbox=lambda: settings.make("circuit_breaker", env={"NBGRADER_EXECUTION": "autograde"}),
    )
    os.environ["DISTLAB_TEST_SECRET"] = "token-123"  # the grader's environment
    try:
        km = pool.take(str(staged))
        code = PROBE.replace("PORT", str(port)).replace("COURSE", repr(str(REPO)))
        status, out = _run(km, code)
        assert status == "ok", out
        result = json.loads("".join(out).strip().splitlines()[-1])
        result["box"] = km.sandbox
        result["host_pid"] = km.provisioner.process.pid
        KernelPool.discard(km)
        yield result
    finally:
        del os.environ["DISTLAB_TEST_SECRET"]
        pool.close()
        server.close()


def test_the_kernel_runs_as_an_unprivileged_user_in_its_work_folder(facts: dict[str, Any]) -> None:
    """uid/gid 60001 (first_uid + worker 1), no groups, in the work folder with the files."""
    assert (facts["uid"], facts["gid"], facts["groups"]) == (60001, 60001, [])
    assert facts["cwd"] == SANDBOX_WORKDIR
    assert facts["files"] == ["data.csv"]  # staged, without the notebook


def test_the_kernel_gets_none_of_the_graders_environment(facts: dict[str, Any]) -> None:
    """Only the variables the sandbox sets (and those ipykernel adds) are there."""
    assert "DISTLAB_TEST_SECRET" not in facts["env"]
    assert "NBGRADER_EXECUTION" in facts["env"]
    allowed = {
        "PATH", "LANG", "HOME", "TMPDIR", "MPLCONFIGDIR", "PYDEVD_DISABLE_FILE_VALIDATION",
        "JPY_PARENT_PID", "NBGRADER_EXECUTION",
        # set by ipykernel itself
        "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "GIT_PAGER", "PAGER", "TERM", "MPLBACKEND",
        "PWD", "PYDEVD_USE_FRAME_EVAL",
    }  # fmt: skip
    assert set(facts["env"]) <= allowed, set(facts["env"]) - allowed


def test_the_kernel_sees_its_own_processes_only(facts: dict[str, Any]) -> None:
    """A PID namespace of its own: a few processes, none of the host's."""
    assert max(facts["pids"]) < 20
    assert facts["host_pid"] not in facts["pids"] or facts["host_pid"] < 20


def test_the_course_folder_and_the_network_are_out_of_reach(facts: dict[str, Any]) -> None:
    """No network at all, not even the host's loopback; no course folder, no solutions."""
    assert facts["net"].startswith("OSError"), facts["net"]
    assert facts["host_port"].startswith(("ConnectionRefusedError", "OSError")), facts["host_port"]
    # Only the folders Python needs are bound, read-only (here the venv and src/ live
    # in the course folder); nothing else of it is there.
    assert facts["course"] in ("['.venv', 'src']", "['src', '.venv']") or facts[
        "course"
    ].startswith("FileNotFoundError"), facts["course"]
    assert facts["solutions"].startswith("FileNotFoundError")
    # At the root: the system's folders, and the first folder of each path bound for
    # Python (a course cloned to /check/course has /check there, holding only that path).
    system = {"bin", "dev", "etc", "home", "lib", "lib64", "proc", "root", "sbin", "tmp", "usr",
              "lib32", "libx32"}  # fmt: skip
    bound = {Path(folder).parts[1] for folder in _python_folders()}
    assert set(facts["root"]) <= system | bound, set(facts["root"]) - system - bound


def test_python_and_distlab_are_read_only(facts: dict[str, Any]) -> None:
    """The venv and the installed package cannot be written; home and /tmp can."""
    assert facts["write_venv"].startswith("OSError: [Errno 30]"), facts["write_venv"]
    assert facts["write_package"].startswith("OSError: [Errno 30]"), facts["write_package"]
    assert facts["home"] == "2" and facts["tmp"] == "2"


def test_a_hidden_module_raises_import_error_saying_why(facts: dict[str, Any]) -> None:
    """The exercise's reference module is a stub; the rest of distlab imports."""
    assert facts["hidden"].startswith("ImportError: distlab.patterns.breaker is not available")
    assert "circuit_breaker is graded" in facts["hidden"]
    assert facts["chapter"] == "'distlab.patterns.chapter'"


def test_file_size_open_files_and_user_namespaces_are_limited(facts: dict[str, Any]) -> None:
    """RLIMIT_FSIZE and RLIMIT_NOFILE apply; no nested user namespace can be made."""
    assert facts["big_file"] == "OSError: [Errno 27] File too large"
    assert facts["open_files"].startswith("OSError: [Errno 24] Too many open files")
    assert facts["userns"] == "1", facts["userns"]  # unshare: No space left on device


def test_nothing_of_the_sandbox_is_left(facts: dict[str, Any]) -> None:
    """After discard: no process in its cgroups, cgroups and folders removed."""
    box: KernelSandbox = facts["box"]
    assert box.closed
    assert box.processes() == []
    assert not box.root.exists()
    assert all(not folder.exists() for folder in box._cgroups.values())


def _wait_dead(km: Any, timeout: float = 60) -> int | None:
    """Wait for the kernel process of ``km`` to end; return its exit status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = km.provisioner.process.poll()
        if status is not None:
            return int(status)
        time.sleep(0.1)
    return None


@pytest.mark.slow
def test_memory_processes_and_cpu_limits_are_hit_and_named() -> None:
    """A memory bomb and a spinning loop kill the kernel; a fork bomb stops at the limit.

    A detached daemon (setsid, double fork) does not survive the sandbox either.
    """
    settings = Sandbox(memory_mb=160, processes=40, cpu_seconds=3)
    box = settings.make("x")
    km = SandboxedKernelManager(box)
    try:
        run_sync(km.start_kernel)(cwd=str(box.root))
        _run(km, "x = bytearray(400 << 20)", timeout=5)
        assert _wait_dead(km) == 128 + 9  # SIGKILL from the OOM killer, passed on by bwrap
        assert box.limits_hit() == ["memory limit (160 MiB)"]
        run_sync(km.restart_kernel)(now=True)
        _, out = _run(
            km,
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(600)\n"
            "    os._exit(0)\n"
            "for _ in range(60):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(600)\n",
        )
        assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in out, out
        assert len(box.processes()) >= 20  # the daemon and the forks are in the sandbox
        assert "process limit (40 processes and threads)" in box.limits_hit()
        run_sync(km.restart_kernel)(now=True)
        # Three CPU seconds (start-up included): more wall seconds on a busy machine.
        _run(km, "while True:\n    pass", timeout=5)
        assert _wait_dead(km, timeout=120) == 128 + 24  # SIGXCPU, passed on by bwrap
    finally:
        run_sync(km.shutdown_kernel)(now=True)
        box.close()
    assert box.processes() == []


SPIN = """
import os, time
start, children = time.monotonic(), []
for _ in range(3):
    child = os.fork()
    if child == 0:
        while time.monotonic() - start < SECONDS:
            pass
        os._exit(0)
    children.append(child)
for child in children:
    os.waitpid(child, 0)
print(os.times().children_user + os.times().children_system)
"""


@pytest.mark.slow
def test_a_sandbox_gets_one_core_of_cpu() -> None:
    """Its cgroup's CPU quota is one period per core; the cgroup goes with the sandbox."""
    box = Sandbox(cores=1).make("x")
    if _own_cgroup("cpu") is None:  # optional: without the controller, no quota
        box.close()
        assert "cpu" not in box._cgroups
        return
    km = SandboxedKernelManager(box)
    try:
        folder = box._cgroups["cpu"]
        period = int((folder / "cpu.cfs_period_us").read_text())
        assert int((folder / "cpu.cfs_quota_us").read_text()) == period
        # Three processes spin for 1.5 s of wall time: together they get one core's
        # worth (2 cores would give them 3 s); a busy machine only gives them less.
        run_sync(km.start_kernel)(cwd=str(box.root))
        status, out = _run(km, SPIN.replace("SECONDS", "1.5"), timeout=30)
        assert status == "ok", out
        spent = float(out[-1])
        assert spent <= 1.5 * 1.2 + 0.3, f"3 spinning processes used {spent:.2f} s of CPU in 1.5 s"
    finally:
        run_sync(km.shutdown_kernel)(now=True)
        box.close()
    assert not folder.exists()
    two = Sandbox(cores=2).make("x")
    try:
        folder = two._cgroups["cpu"]
        assert int((folder / "cpu.cfs_quota_us").read_text()) == 2 * period
    finally:
        two.close()


def test_the_sandbox_runs_as_root_only_where_it_can() -> None:
    """This machine can make sandboxes (CI installs bubblewrap and runs as root)."""
    assert sandbox_problem() is None
    assert os.geteuid() == 0
    assert Path(sys.executable).exists()


def test_the_readme_states_the_guarantees_and_the_limits_configured() -> None:
    """The instructor section says what the sandbox guarantees, what not, with the real limits."""
    from distlab.course.grading import Course

    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    section = readme.split("### The grading sandbox: what it guarantees, and what it does not")[1]
    section = section.split("## ")[0]
    assert "Forged results are detected, not prevented." in section
    assert "--unsandboxed" in section and "c.Sandbox.hidden_modules" in section
    config = Course(REPO).config.Sandbox
    for quoted in (
        f"{config.memory_mb} MiB of memory",
        f"{config.processes} processes and threads",
        f"{config.cpu_seconds} s of CPU per process",
        "one core for all of them together" if config.cores == 1 else f"{config.cores} cores",
        f"{config.file_size_mb} MiB per file",
        f"{config.open_files} open files",
    ):
        assert quoted in section, quoted
