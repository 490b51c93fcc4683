"""One throwaway sandbox per graded notebook: the kernel that runs student code.

A :class:`KernelSandbox` is what one kernel (and everything it starts) lives in:

* Linux namespaces from bubblewrap (``bwrap``): its own PID namespace (everything the
  kernel starts dies with it), network namespace (a loopback of its own, nothing else),
  mount, IPC, UTS and cgroup namespaces, and a user namespace that cannot nest another;
* a filesystem made of read-only binds only: the system folders, the Python install, the
  virtual environment and the installed ``distlab`` package (with the modules the
  exercise asks students to build replaced by stubs that raise ImportError); a private
  size-capped ``/tmp`` and home (``/home/student``), the work folder being a copy of the
  submission's files; a few generated ``/etc`` files; nothing of the course folder, the
  gradebook, the grader's home or other submissions;
* its own unprivileged user (``first_uid + worker``) and a cleared environment;
* limits: a cgroup (v1 ``memory`` and ``pids`` controllers, one per sandbox, removed
  afterwards) for memory and tasks, and ``prlimit`` for CPU time, file size and open files;
* a kernel that talks to the grader over ZeroMQ ``ipc`` sockets in a folder bound into
  that sandbox alone (connection file written by the grader).

:class:`Sandbox` holds the settings (``c.Sandbox.*`` in ``nbgrader_config.py``) and makes
sandboxes; :func:`sandbox_problem` says why none can be made on this machine.
:class:`SandboxedKernelManager` is the ``jupyter_client`` kernel manager that launches a
kernel in one. This module imports only the standard library, traitlets and
jupyter_client, so the command line can start a sandboxed kernel before nbgrader loads.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Int, List, Unicode, default
from traitlets.config import LoggingConfigurable

from distlab.errors import SandboxUnavailable

__all__ = [
    "SANDBOX_HOME",
    "SANDBOX_WORKDIR",
    "UNSANDBOXED_ENV",
    "KernelSandbox",
    "Limits",
    "Sandbox",
    "SandboxedKernelManager",
    "sandbox_default",
    "sandbox_problem",
]

# Set to 1, grading runs student code without a sandbox unless told otherwise (every
# report says so): for a machine that cannot make sandboxes, e.g. the test suite on a
# laptop without root. The same as `--unsandboxed` on every command.
UNSANDBOXED_ENV = "DISTLAB_UNSANDBOXED"
# Where the kernel runs, seen from inside: the same path whatever the submission.
SANDBOX_HOME = "/home/student"
SANDBOX_WORKDIR = "/home/student/work"

_BWRAP = "/usr/bin/bwrap"
_CGROUP_ROOT = Path("/sys/fs/cgroup")
# System folders bound read-only (a symlink on the host, /bin -> usr/bin, stays a symlink).
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The only /etc files a Python kernel needs (the host's /etc may hold tokens: pip.conf...).
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/fonts",
    "/etc/mime.types",
    "/etc/ssl/openssl.cnf",
)
# The run folder (the kernel's sockets and connection file) is on the grader's disk,
# writable by the sandbox: a tmpfs this small is mounted there, so that the sandbox cannot
# fill the grader's disk through it (its other writable folders are capped tmpfs too).
_RUN_TMPFS = "size=256k,nr_inodes=64"
_counter = itertools.count(1)
# The outer bwrap's namespaces: all but the user namespace (it runs as root, so that
# its binds can reach a Python under /root and the user can then be changed).
_NAMESPACES = (
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
)
# The inner bwrap: a user namespace that forbids making more, over the same filesystem.
_INNER = ("--unshare-user", "--disable-userns", "--dev-bind", "/", "/", "--die-with-parent")
# The sandbox's private writable folders (tmpfs).
_TMPFS = ("/dev/shm", "/tmp", SANDBOX_HOME, SANDBOX_WORKDIR)
# Never copied into a sandbox's work folder.
_NOT_STAGED = {".ipynb_checkpoints", "__pycache__", ".git", ".venv", "venv", "node_modules"}
# The work folder ("") goes last on the kernel's path: a module handed in next to the
# notebook (httpx.py, distlab/) can add to what the tests import, never replace it.
# IPython leaves a path that already holds "" as it is.
_KERNEL_BOOTSTRAP = (
    "import sys; sys.path.pop(0); sys.path.append(''); "
    "from ipykernel import kernelapp; kernelapp.launch_new_instance()"
)


@dataclass(frozen=True)
class Limits:
    """What one sandbox may use.

    Attributes:
        memory_mb: memory of every process in the sandbox together, its tmpfs files
            included (cgroup ``memory.limit_in_bytes``); over it the kernel is killed.
        processes: tasks (processes and threads) at once (cgroup ``pids.max``).
        cpu_seconds: CPU time of each process (``RLIMIT_CPU``); a backstop for the
            notebook's wall-clock budget.
        file_size_mb: size of any file written (``RLIMIT_FSIZE``).
        open_files: file descriptors per process (``RLIMIT_NOFILE``).
        disk_mb: size of each private writable folder (``/tmp``, the home, the work
            folder, ``/dev/shm``).
        cores: CPU cores the sandbox's processes may use together (cgroup
            ``cpu.cfs_quota_us``, where the v1 cpu controller is mounted): a submission
            that spins many threads cannot slow the sandbox grading the next one.
    """

    memory_mb: int = 512
    processes: int = 128
    cpu_seconds: int = 60
    file_size_mb: int = 64
    open_files: int = 256
    disk_mb: int = 128
    cores: int = 1

    def __post_init__(self) -> None:
        minimum = {"memory_mb": 64, "processes": 16, "open_files": 32}
        for name, value in vars(self).items():
            low = minimum.get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


def _run_quietly(args: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _own_cgroup(controller: str) -> Path | None:
    """The folder of this process's cgroup for a v1 ``controller``, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = _CGROUP_ROOT / controller / path.lstrip("/")
            if folder.is_dir():
                return folder
    return None


def sandbox_default() -> bool:
    """Whether grading sandboxes student code when not told: yes, unless $DISTLAB_UNSANDBOXED=1."""
    return os.environ.get(UNSANDBOXED_ENV, "") != "1"


@functools.cache
def sandbox_problem() -> str | None:
    """Return why no sandbox can be made here, or None when sandboxes work.

    Checked once per process: bubblewrap installed, running as root (a user per
    sandbox and cgroups need it), the v1 memory and pids cgroup controllers writable,
    and a trial ``bwrap`` run with every namespace.
    """
    if not Path(_BWRAP).is_file():
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    version = _run_quietly([_BWRAP, "--version"]).stdout.split()[-1:]
    numbers = tuple(int(n) for n in re.findall(r"\d+", version[0])[:2]) if version else ()
    if numbers < (0, 8):
        found = version[0] if version else "unknown"
        return f"bubblewrap {found} is too old: the sandbox needs 0.8 or newer (--disable-userns)"
    for tool in ("/usr/bin/setpriv", "/usr/bin/prlimit", "/usr/bin/mount", "/usr/bin/umount"):
        if not Path(tool).is_file():
            return f"{tool} (util-linux) is not installed"
    if os.geteuid() != 0:
        return (
            "grading in a sandbox needs root (a user of its own and cgroup limits per "
            "submission); run the grader as root, e.g. in the course's container or CI"
        )
    for controller in ("memory", "pids"):
        folder = _own_cgroup(controller)
        if folder is None or not os.access(folder, os.W_OK):
            return f"the cgroup v1 {controller} controller is not mounted writable"
    # The same chain as a real sandbox, with nothing in it.
    trial = _run_quietly(
        [
            _BWRAP,
            *_NAMESPACES,
            "--die-with-parent",
            *_symlinks_or_binds(_SYSTEM_DIRS),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",  # the inner bwrap builds its root there
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--",
            "/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
            _BWRAP,
            *_INNER,
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--",
            "/bin/true",
        ]
    )
    if trial.returncode != 0:
        why = (trial.stderr or trial.stdout).strip().splitlines()
        return f"bubblewrap cannot create namespaces here: {why[-1] if why else trial.returncode}"
    folder = Path(tempfile.mkdtemp(prefix=f"distlab-sbx-{os.getpid()}-trial-"))
    try:
        _mount_run_folder(folder, 65534)
    except SandboxUnavailable as exc:
        return f"a tmpfs cannot be mounted here ({exc})"
    finally:
        _unmount(folder)
        with contextlib.suppress(OSError):
            folder.rmdir()
    return None


def _symlinks_or_binds(paths: Iterable[str]) -> list[str]:
    args: list[str] = []
    for path in paths:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _module_files(name: str) -> list[Path]:
    """The source file of module ``name`` and its compiled copies in ``__pycache__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin or not spec.has_location:
        raise ValueError(f"hidden module {name!r} is not an importable module file")
    origin = Path(spec.origin)
    if origin.name == "__init__.py":
        raise ValueError(f"hidden module {name!r} is a package: hide its modules one by one")
    cached = origin.parent / "__pycache__"
    return [origin, *sorted(cached.glob(f"{origin.stem}.*.pyc"))]


def _stub(name: str, exercise: str) -> str:
    message = (
        f"{name} is not available while {exercise or 'this exercise'} is graded: "
        "the exercise asks you to write it yourself"
    )
    return f'"""Hidden while grading."""\n\nraise ImportError({message!r}, name={name!r})\n'


class KernelSandbox:
    """One throwaway sandbox: private folders, a user, cgroups, the launch command.

    Made by :meth:`Sandbox.make`; launch a kernel in it with
    :class:`SandboxedKernelManager`. :meth:`close` kills whatever still runs in it and
    removes its folders and cgroups.

    Args:
        limits: what it may use.
        uid: the unprivileged user (and group) it runs as.
        hidden: modules replaced by a stub that raises ImportError.
        exercise: named in the stubs' message.
        env: environment variables of the kernel (the only ones it gets, with PATH,
            LANG, HOME and TMPDIR).
    """

    def __init__(
        self,
        *,
        limits: Limits,
        uid: int,
        hidden: Sequence[str] = (),
        exercise: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not 1000 <= uid < 2**31:
            raise ValueError(f"uid must be an unprivileged user id (1000..2**31), got {uid!r}")
        self.limits = limits
        self.uid = uid
        self.exercise = exercise
        self.hidden = tuple(hidden)
        self.env = dict(env or {})
        self._closed = False
        _sweep_stale()
        self.root = Path(tempfile.mkdtemp(prefix=f"distlab-sbx-{os.getpid()}-"))
        self.run_dir = self.root / "run"
        self.files_dir = self.root / "files"
        self.log_path = self.root / "kernel.log"
        self._cgroups: dict[str, Path] = {}
        try:
            self.run_dir.mkdir(mode=0o700)
            _mount_run_folder(self.run_dir, uid)
            self.files_dir.mkdir(mode=0o755)
            self._binds = self._hidden_binds()
            self._etc = self._etc_binds()
            self._make_cgroups()
        except BaseException:
            self.close()
            raise

    # --- set-up ---------------------------------------------------------------------
    def _hidden_binds(self) -> list[str]:
        args: list[str] = []
        if not self.hidden:
            return args
        stubs = self.root / "stubs"
        stubs.mkdir()
        empty = stubs / "empty"
        empty.write_bytes(b"")
        for i, name in enumerate(self.hidden):
            source, *compiled = _module_files(name)
            stub = stubs / f"{i}.py"
            stub.write_text(_stub(name, self.exercise))
            args += ["--ro-bind", str(stub), str(source)]
            for pyc in compiled:
                args += ["--ro-bind", str(empty), str(pyc)]
        return args

    def _etc_binds(self) -> list[str]:
        etc = self.root / "etc"
        etc.mkdir()
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"student:x:{self.uid}:{self.uid}:student:{SANDBOX_HOME}:/usr/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text(f"root:x:0:\nstudent:x:{self.uid}:\nnogroup:x:65534:\n")
        (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n")
        args: list[str] = []
        for name in ("passwd", "group", "hosts"):
            args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
        for path in _ETC_FILES:
            args += ["--ro-bind-try", path, path]
        return args

    def _make_cgroups(self) -> None:
        name = f"distlab-{os.getpid()}-{next(_counter)}"  # see _sweep_stale
        settings = {
            "memory": [
                ("memory.limit_in_bytes", self.limits.memory_mb << 20),
                ("memory.memsw.limit_in_bytes", self.limits.memory_mb << 20),
                ("memory.swappiness", 0),
            ],
            "pids": [("pids.max", self.limits.processes)],
        }
        for controller, values in settings.items():
            parent = _own_cgroup(controller)
            if parent is None:
                raise SandboxUnavailable(f"no cgroup v1 {controller} controller")
            folder = parent / name
            folder.mkdir()
            self._cgroups[controller] = folder
            for key, value in values:
                with contextlib.suppress(FileNotFoundError):  # memsw: no swap accounting
                    (folder / key).write_text(str(value))
        self._cpu_quota(name)

    def _cpu_quota(self, name: str) -> None:
        """Give the sandbox ``limits.cores`` of CPU, where the cpu controller allows it.

        Optional, unlike memory and pids: without the controller the notebook's time
        budget and ``RLIMIT_CPU`` still bound what one submission costs.
        """
        parent = _own_cgroup("cpu")
        if parent is None:
            return
        folder = parent / name
        try:
            folder.mkdir()
        except OSError:
            return
        self._cgroups["cpu"] = folder
        with contextlib.suppress(OSError, ValueError):
            period = int((folder / "cpu.cfs_period_us").read_text())
            (folder / "cpu.cfs_quota_us").write_text(str(period * self.limits.cores))

    # --- the kernel's command line -------------------------------------------------
    def command(self, argv: Sequence[str]) -> list[str]:
        """Return the command that runs ``argv`` inside this sandbox.

        The outer shell moves itself into the sandbox's cgroups (so every process it
        becomes and starts is counted), then execs ``prlimit``, ``setpriv`` (the
        sandbox's user, no capabilities, no new privileges) and ``bwrap``. Inside,
        another shell copies the submission's files into the work folder and execs
        ``argv``.
        """
        limits = self.limits
        join = " && ".join(
            f"echo $$ > {shlex.quote(str(folder / 'cgroup.procs'))}"
            for folder in self._cgroups.values()
        )
        python = Path(sys.executable)
        binds: list[str] = []
        for folder in _python_folders():
            binds += ["--ro-bind", folder, folder]
        env = {
            "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": SANDBOX_HOME,
            "TMPDIR": "/tmp",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            # The kernel's parent is out of sight in the sandbox's PID namespace: 1
            # says so (no parent poller, no connection banner on the grader's stdout).
            "JPY_PARENT_PID": "1",
            **self.env,
        }
        env_args: list[str] = ["--clearenv"]
        for key, value in env.items():
            env_args += ["--setenv", key, value]
        disk = str(limits.disk_mb << 20)
        copy_in = f'cp -R {shlex.quote(str(self.files_dir))}/. . 2>/dev/null; exec "$@"'
        binds += self._binds
        binds += ["--ro-bind", str(self.files_dir), str(self.files_dir)]
        binds += ["--bind", str(self.run_dir), str(self.run_dir)]
        return [
            "/bin/sh",
            "-c",
            f'{join} && exec "$@"',
            "sandbox-launch",
            "/usr/bin/prlimit",
            f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
            f"--fsize={limits.file_size_mb << 20}",
            f"--nofile={limits.open_files}",
            "--core=0",
            "--",
            # Run as root, so the binds can reach what only root can read (a Python
            # under /root); no user namespace, so the user can then be changed.
            _BWRAP,
            *_NAMESPACES,
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            *_symlinks_or_binds(_SYSTEM_DIRS),
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            # Private writable folders, size-capped (their files count as the
            # sandbox's memory too); writable by the sandbox's user.
            "--perms",
            "1777",
            "--size",
            disk,
            "--tmpfs",
            "/dev/shm",
            "--perms",
            "1777",
            "--size",
            disk,
            "--tmpfs",
            "/tmp",
            "--perms",
            "0777",
            "--size",
            disk,
            "--tmpfs",
            SANDBOX_HOME,
            "--perms",
            "0777",
            "--size",
            disk,
            "--tmpfs",
            SANDBOX_WORKDIR,
            *self._etc,
            *binds,
            *_open_parents([*self._etc, *binds], keep=_TMPFS),
            "--chdir",
            SANDBOX_WORKDIR,
            *env_args,
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--",
            # The sandbox's own user: no capabilities, none to gain.
            "/usr/bin/setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
            # A user namespace that forbids creating more (a nested namespace would
            # give the student code capabilities over namespaces of its own).
            _BWRAP,
            *_INNER,
            "--uid",
            str(self.uid),
            "--gid",
            str(self.uid),
            "--",
            "/bin/sh",
            "-c",
            copy_in,
            "sandbox-kernel",
            *argv,
        ]

    # --- files in, limits out, clean-up --------------------------------------------
    def stage(self, folder: Path | str) -> list[str]:
        """Copy the files of ``folder`` (not its notebooks) for the kernel's work folder.

        Returns the names copied. Notebooks stay out: the one being graded holds the
        hidden tests once nbgrader has restored them. So do symbolic links (they could
        point anywhere on this machine), caches and environments (``__pycache__``,
        ``.git``, ``.venv``...), and whatever would take the files past half of the
        work folder's size.
        """
        source = Path(folder)
        budget = (self.limits.disk_mb << 20) // 2
        copied: list[str] = []
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.suffix == ".ipynb" or any(part in _NOT_STAGED for part in rel.parts):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size > budget:
                continue
            budget -= size
            dest = self.files_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            copied.append(rel.as_posix())
        return copied

    def log_tail(self, lines: int = 3) -> str:
        """The last lines the sandbox's processes wrote to stderr (set-up errors)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def limits_hit(self) -> list[str]:
        """Return the cgroup limits this sandbox ran into, as report phrases."""
        hits = []
        memory = self._cgroups.get("memory")
        if memory is not None:
            stats = _keyed(memory / "memory.oom_control")
            if stats.get("oom_kill", 0) > 0:
                hits.append(f"memory limit ({self.limits.memory_mb} MiB)")
        pids = self._cgroups.get("pids")
        if pids is not None and _keyed(pids / "pids.events").get("max", 0) > 0:
            hits.append(f"process limit ({self.limits.processes} processes and threads)")
        return hits

    def processes(self) -> list[int]:
        """Return the host pids of every process still in this sandbox's cgroups."""
        pids: set[int] = set()
        for folder in self._cgroups.values():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return sorted(pids)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the sandbox, until none is left (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.processes()
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def close(self) -> None:
        """Kill what still runs, remove the cgroups and the folders (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.kill()
        for folder in self._cgroups.values():
            for _ in range(100):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a killed process not reaped yet
                    time.sleep(0.01)
        _unmount(self.run_dir)
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed


def _mount_run_folder(folder: Path, uid: int) -> None:
    """Mount a tiny tmpfs owned by ``uid`` on ``folder`` (see ``_RUN_TMPFS``)."""
    options = f"{_RUN_TMPFS},mode=0700,uid={uid},gid={uid}"
    done = _run_quietly(
        ["/usr/bin/mount", "-t", "tmpfs", "-o", options, "distlab-run", str(folder)]
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise SandboxUnavailable(f"cannot mount the sandbox's run folder {folder}: {why}")


def _unmount(folder: Path) -> None:
    """Detach what is mounted on ``folder`` (nothing: nothing happens)."""
    if os.path.ismount(folder):
        _run_quietly(["/usr/bin/umount", "--lazy", str(folder)])


def _open_parents(binds: Sequence[str], keep: Iterable[str] = ()) -> list[str]:
    """``--chmod 0755`` the folders bwrap made to hold the destinations of ``binds``.

    Run as root, bwrap gives them the mode of the host's folder (``/root`` is 0700),
    which the sandbox's user could not cross. Folders in ``keep`` (the private
    writable ones) keep their mode.
    """
    kinds = {"--bind", "--ro-bind", "--bind-try", "--ro-bind-try"}
    destinations = {binds[i + 2] for i, arg in enumerate(binds) if arg in kinds}
    parents: set[str] = set()
    for dest in destinations:
        for parent in Path(dest).parents:
            text = str(parent)
            inside_a_bind = any(text == d or text.startswith(d + "/") for d in destinations)
            if text in keep or text == "/" or inside_a_bind or text.startswith(_SYSTEM_DIRS):
                continue
            parents.add(text)
    args: list[str] = []
    for folder in sorted(parents, key=lambda f: f.count("/")):
        args += ["--chmod", "0755", folder]
    return args


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _sweep_stale() -> None:
    """Remove what sandboxes of graders that died left behind (once per process).

    A grader killed outright cannot clean up; its sandboxes die with it (bwrap's
    --die-with-parent), but their empty cgroups and folders stay. Both are named after
    the grader's pid; those of a pid that no longer runs are removed.
    """
    stale = re.compile(r"^distlab-(?:sbx-)?(\d+)-")
    folders = [Path(tempfile.gettempdir())]
    folders += [f for f in (_own_cgroup(c) for c in ("memory", "pids", "cpu")) if f is not None]
    for parent in folders:
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                match = stale.match(entry.name)
                if not match or not entry.is_dir() or _alive(int(match.group(1))):
                    continue
                if parent == Path(tempfile.gettempdir()):
                    _unmount(entry / "run")
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        entry.rmdir()  # an empty cgroup; one with processes stays


def _keyed(path: Path) -> dict[str, int]:
    """Parse a cgroup file of ``key value`` lines."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                values[key] = int(value)
    return values


@functools.cache
def _python_folders() -> tuple[str, ...]:
    """Folders the kernel's Python needs, read-only: the install, the venv, distlab."""
    import distlab

    folders = {
        os.path.realpath(sys.base_prefix),
        os.path.realpath(sys.prefix),
        os.path.realpath(Path(distlab.__file__).parent),
    }
    # Skip what /usr already covers, and folders inside another one of the list.
    kept = sorted(f for f in folders if not f.startswith("/usr/"))
    return tuple(
        f for f in kept if not any(f != o and f.startswith(o.rstrip("/") + "/") for o in kept)
    )


class Sandbox(LoggingConfigurable):
    """The sandbox settings of a course (``c.Sandbox.*`` in ``nbgrader_config.py``).

    Every setting can be changed there; :meth:`make` builds a :class:`KernelSandbox`.
    """

    enabled = Bool(
        help="Run student code in a sandbox while autograding. Without one, student code "
        "runs as the grader's user, with the grader's files and environment: set False "
        "only on a machine that cannot make sandboxes, for trusted submissions.",
    ).tag(config=True)
    hidden_modules = Dict(
        value_trait=List(Unicode()),
        help="Modules hidden while an exercise is graded: exercise -> dotted module names "
        "(the reference implementations the exercise asks students to build).",
    ).tag(config=True)
    memory_mb = Int(Limits.memory_mb, help="Memory of one sandbox, MiB.").tag(config=True)
    processes = Int(Limits.processes, help="Tasks (processes+threads) at once.").tag(config=True)
    cpu_seconds = Int(Limits.cpu_seconds, help="CPU seconds per process.").tag(config=True)
    file_size_mb = Int(Limits.file_size_mb, help="Largest file written, MiB.").tag(config=True)
    open_files = Int(Limits.open_files, help="Open files per process.").tag(config=True)
    disk_mb = Int(Limits.disk_mb, help="Size of /tmp and of the home, MiB each.").tag(config=True)
    cores = Int(Limits.cores, help="CPU cores of one sandbox (cgroup cpu quota).").tag(config=True)
    first_uid = Int(
        60000, help="Sandboxes run as first_uid + worker number (an unused range)."
    ).tag(config=True)

    @default("enabled")
    def _enabled_default(self) -> bool:
        return sandbox_default()

    def limits(self) -> Limits:
        """The configured :class:`Limits` (raises ValueError naming a bad setting)."""
        return Limits(
            memory_mb=self.memory_mb,
            processes=self.processes,
            cpu_seconds=self.cpu_seconds,
            file_size_mb=self.file_size_mb,
            open_files=self.open_files,
            disk_mb=self.disk_mb,
            cores=self.cores,
        )

    def hidden_for(self, exercise: str) -> list[str]:
        """The modules hidden while ``exercise`` is graded."""
        return list(self.hidden_modules.get(exercise, []))

    def make(
        self, exercise: str = "", *, worker: int = 1, env: Mapping[str, str] | None = None
    ) -> KernelSandbox:
        """Make a sandbox for grading ``exercise`` in worker number ``worker``.

        Raises:
            SandboxUnavailable: when sandboxes cannot be made here (says why).
        """
        problem = sandbox_problem()
        if problem is not None:
            raise SandboxUnavailable(
                f"cannot grade in a sandbox: {problem} (to grade anyway, trusting the code: "
                "distlab grade --unsandboxed, or c.Sandbox.enabled = False for nbgrader)"
            )
        return KernelSandbox(
            limits=self.limits(),
            uid=self.first_uid + worker,
            hidden=self.hidden_for(exercise),
            exercise=exercise,
            env=env,
        )


class SandboxedKernelManager(AsyncKernelManager):
    """A ``jupyter_client`` kernel manager whose kernel runs in a :class:`KernelSandbox`.

    ZeroMQ runs over ``ipc`` sockets in the sandbox's own run folder; interrupts are
    sent as messages (a signal cannot cross into the sandbox's PID namespace). The
    manager does not own the sandbox: close it after the kernel is shut down (a
    restarted kernel starts again in the same sandbox).
    """

    def __init__(self, sandbox: KernelSandbox, **kwargs: Any) -> None:
        super().__init__(
            kernel_name="python3",
            transport="ipc",
            ip=str(sandbox.run_dir / "kernel"),
            connection_file=str(sandbox.run_dir / "kernel.json"),
            **kwargs,
        )
        self.sandbox = sandbox
        spec = self.kernel_spec
        if spec is None:
            raise RuntimeError("no python3 kernel spec is installed (pip install ipykernel)")
        spec.interrupt_mode = "message"
        self._lock = threading.Lock()

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """Return the sandboxed command line of the kernel."""
        extra = list(extra_arguments or [])
        if not any(arg.startswith("--HistoryManager.hist_file") for arg in extra):
            extra.append("--HistoryManager.hist_file=:memory:")
        argv = [
            sys.executable,
            "-s",
            "-E",
            "-c",
            # Not `-m ipykernel_launcher`: that puts the work folder first on sys.path,
            # and a submission that wrote ipykernel_launcher.py or ipykernel/ there
            # would run its own "kernel" after a restart. The folder goes last instead.
            _KERNEL_BOOTSTRAP,
            "-f",
            str(self.connection_file),
            *extra,
        ]
        return self.sandbox.command(argv)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # The sandbox's stderr (bwrap's errors, the kernel's crashes) goes to its log, a
        # file opened anew for every launch: a restart launches again with the same
        # arguments, and a file object closed since would fail it.
        with open(self.sandbox.log_path, "ab") as log:
            kw["stdout"] = subprocess.DEVNULL
            kw["stderr"] = log
            await super()._async_launch_kernel(kernel_cmd, **kw)

    def write_connection_file(self, **kwargs: Any) -> None:
        """Write the connection file, readable by the sandbox's user only."""
        super().write_connection_file(**kwargs)
        with contextlib.suppress(FileNotFoundError):
            os.chown(self.connection_file, self.sandbox.uid, self.sandbox.uid)
