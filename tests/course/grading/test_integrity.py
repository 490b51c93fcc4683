"""The integrity checks: the static scan, the canary cells, the gradebook fingerprint.

The scan must flag what forgeries need and never what honest work does: every solution
of the course, and a set of ordinary honest answers written the ways students write
them, are scanned and must come out clean.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import nbformat
import pytest

from distlab.course.grading.integrity import (
    canary_cells,
    canary_verdict,
    gradebook_changes,
    gradebook_fingerprint,
    scan_cells,
    scan_source,
)
from tests import REPO
from tests.submissions import answer

# --- the static scan ------------------------------------------------------------------
FORGERIES = {
    "input transformer": (
        "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
        "reaches into the kernel or IPython (get_ipython)",
    ),
    "event hook": (
        "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))",
        "events.register",
    ),
    "ast transformer": (
        "import IPython\nIPython.get_ipython().ast_transformers.append(T())",
        "ast_transformers",
    ),
    "kernel session": (
        "import ipykernel\nk = ipykernel.kernelbase.Kernel.instance()\nk.session.send = f",
        "imports ipykernel",
    ),
    "history": ("leak = In[-1]", "reaches into the kernel or IPython (In)"),
    "globals lookup": ("ip = globals()['get_ipython']()", "globals()"),
    "builtins": ("import builtins\nbuiltins.AssertionError = Exception", "imports builtins"),
    "dunder builtins": ("__builtins__['print'] = lambda *a: None", "__builtins__"),
    "obfuscated exec": ("getattr(__import__('built' + 'ins'), 'ex' + 'ec')(code)", "__import__"),
    "exec": ("exec(bytes.fromhex(payload).decode())", "runs code built at run time (exec)"),
    "sys.modules": ("import sys\nsys.modules['distlab.patterns.breaker'] = fake", "sys.modules"),
    "__module__": ("CircuitBreaker.__module__ = '__main__'", "__module__"),
    "__class__": ("obj.__class__ = Other", "assigns __class__"),
    "setattr class": ("setattr(obj, '__class__', Other)", "setattr(..., '__class__')"),
    "type copy": (
        "CircuitBreaker = type('CircuitBreaker', (), dict(vars(Base)))",
        "type(name, bases",
    ),
    "frames": ("import sys\nsys._getframe(1).f_globals['x'] = 1", "_getframe"),
    "inspect stack": ("import inspect\ncaller = inspect.stack()[1]", "inspect.stack"),
    "ctypes": ("import ctypes\nctypes.CDLL(None)", "imports ctypes"),
    "proc": ("open('/proc/1/environ').read()", "'/proc' in a string"),
    "gradebook": (
        "import sqlite3\nsqlite3.connect('../../gradebook.db')",
        "'gradebook' in a string",
    ),
    "config": ("open('nbgrader_config.py', 'a').write('c.X = 1')", "'nbgrader' in a string"),
    "launcher": ("open('ipykernel_launcher.py', 'w').write(payload)", "'ipykernel' in a string"),
    "python file": ("open('helpers.py', 'w').write(payload)", "the file name 'helpers.py'"),
    "solutions": ("open('solutions/circuit_breaker/circuit_breaker.ipynb')", "'solutions/'"),
    "subprocess": ("import subprocess\nsubprocess.Popen(['sleep', '600'])", "imports subprocess"),
    "os.fork": ("import os\nif os.fork() == 0:\n    pass", "os.fork"),
    "os.system": ("import os\nos.system('curl example.com')", "os.system"),
    "from os import": ("from os import system as run\nrun('ls')", "os.system"),
    "multiprocessing": ("from multiprocessing import Process", "imports multiprocessing"),
    "asyncio subprocess": ("await asyncio.create_subprocess_exec('ls')", "create_subprocess_exec"),
    "shell escape": ("!ls ../..", "shell escape !ls"),
    "writefile": ("%%writefile ipykernel_launcher.py\nprint('hi')", "magic %%writefile"),
    "run magic": ("%run other.py", "magic %run"),
    "course tooling": ("from distlab.course.grading import Grader", "imports distlab.course"),
    "importlib": ("import importlib\nimportlib.reload(distlab)", "imports importlib"),
    "trace": ("import sys\nsys.settrace(tracer)", "settrace"),
    "gc": ("import gc\n[o for o in gc.get_objects() if type(o).__name__ == 'X']", "get_objects"),
    "__main__": (
        "import __main__\nshell = getattr(__main__, 'get_' + 'ipython')()",
        "imports __main__",
    ),
    "computed name on a module": (
        "import threading as t\nf = getattr(t, ''.join(['_', 'shutdown']))",
        "getattr(t, <computed name>)",
    ),
    "computed name from an import": (
        "from os import path\nsetattr(path, name, fake)",
        "setattr(path, <computed name>)",
    ),
    "__getattribute__": (
        "shell = object.__getattribute__(ip, 'input_' + 'transformers_post')",
        "__getattribute__",
    ),
    # Found by the red team of issue 9: ways round the name lists above.
    "a module's namespace": (
        "import sys\nshow = vars(sys)['display' + 'hook']",
        "vars(sys)",
    ),
    "a module's __dict__": (
        "import sys\nshow = sys.__dict__['display' + 'hook']",
        "sys.__dict__",
    ),
    "a module under another name": (
        "import sys\nm = sys\nshow = getattr(m, 'display' + 'hook')",
        "getattr(m, <computed name>)",
    ),
    "a class's namespace": ("method = type(sys.stdout).__dict__[name]", "type(...).__dict__"),
    "attrgetter": (
        "from operator import attrgetter\nip = attrgetter('get_' + 'ipython')",
        "attrgetter(<computed name>)",
    ),
    "a builtin's module": ("b = print.__self__\nb.AssertionError = Exception", "__self__"),
    "format string traversal": (
        "leak = '{0.__init__.__globals__}'.format(breaker)",
        "attribute lookup in a format string",
    ),
    "frames from traceback": (
        "import traceback\nfor frame, line in traceback.walk_stack(None):\n    pass",
        "walk_stack",
    ),
    "source of the cells": ("import linecache\nleak = str(linecache.cache)", "imports linecache"),
    "source of a test's function": (
        "import inspect\nleak = inspect.getsource(func)",
        "getsource",
    ),
    "bytecode": ("import dis\ndis.dis(func)", "imports dis"),
    "input history": (
        "def leak():\n    return _ii + _i12",
        "reaches into the kernel or IPython (_ii)",
    ),
    "output stream internals": (
        "import sys\nsession = sys.stdout.session\nsession.send = forged",
        "sys.stdout.session",
    ),
    "patching a module the tests use": (
        "import time\ntime.monotonic = lambda: 0.0",
        "patches time.monotonic",
    ),
    "mock.patch": (
        "from unittest import mock\nmock.patch('time.monotonic', return_value=0).start()",
        "imports unittest.mock",
    ),
    "object.__setattr__ on a class the tests use": (
        "from distlab import ManualClock\nobject.__setattr__(ManualClock, name, fake)",
        "patches ManualClock with __setattr__",
    ),
    "computed name on a builtin": (
        "owner = getattr(print, '__se' + 'lf__')",
        "getattr(print, <computed name>)",
    ),
    "patching a class the tests use": (
        "import threading\nthreading.Thread.start = lambda self: None",
        "patches threading.Thread.start",
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_the_scan_flags_what_forgeries_need(name: str) -> None:
    """Each tool a forgery needs is found, and the reason names it."""
    source, expected = FORGERIES[name]
    reasons = scan_source(source)
    assert any(expected in reason for reason in reasons), reasons


HONEST = {
    "threads and time": (
        "import threading\nimport time\n\nclass CircuitBreaker:\n"
        "    def __init__(self, failure_threshold=5, recovery_timeout=30.0, *,\n"
        "                 clock=time.monotonic, is_failure=None):\n"
        "        self._lock = threading.Lock()\n        self._clock = clock\n"
    ),
    "names and types": (
        "def describe(exc):\n    return f'{type(exc).__name__}: {exc.__class__.__name__}'\n"
        "print(type(self).__qualname__, CircuitOpenError.__name__, __name__)"
    ),
    "regex compile": "import re\nPATTERN = re.compile(r'^5\\d\\d$')\nok = PATTERN.match('503')",
    "timing magics": "%timeit sum(range(100))\n%time fetch_json(client, '/x', breaker)",
    "cell timing magic": "%%time\nresult = [fetch_json(client, '/x', breaker) for _ in range(3)]",
    "matplotlib": "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])",
    "httpx": (
        "import httpx\n\ndef fetch_json(client, url, breaker):\n"
        "    def attempt():\n        response = client.get(url)\n"
        "        if response.status_code >= 500:\n            response.raise_for_status()\n"
        "        return response\n    response = breaker.call(attempt)\n"
        "    response.raise_for_status()\n    return response.json()\n"
    ),
    "dataclasses and enum": (
        "from dataclasses import dataclass, field\nfrom enum import Enum\nimport functools\n"
        "class State(str, Enum):\n    CLOSED = 'closed'\n@dataclass\nclass Stats:\n"
        "    calls: int = 0\n    seen: list = field(default_factory=list)\n"
        "@functools.wraps(print)\ndef log(*args):\n    pass\n"
    ),
    "asyncio and json": (
        "import asyncio, json, random, uuid, collections, logging, math, sqlite3\n"
        "async def handler(message):\n    await asyncio.sleep(0)\n"
        "    db = sqlite3.connect(':memory:')\n    return json.dumps({'id': str(uuid.uuid4())})\n"
    ),
    "own kill and system methods": (
        "class Worker:\n    def kill(self):\n        self.alive = False\n"
        "w = Worker()\nw.kill()\nsystem = 'billing'\nmodules = ['a']\n"
    ),
    "getattr of ordinary attributes": "x = getattr(obj, 'state', None)\nsetattr(obj, 'count', 3)",
    "dispatch by a computed name": (
        "import time\nclass Machine:\n    def step(self, state):\n"
        "        return getattr(self, f'_on_{state}')(time.monotonic())\n"
        "handler = getattr(Machine(), 'on_' + kind, None)"
    ),
    "help and introspection": "help(CircuitBreaker)\nprint(dir(breaker), vars(breaker))",
    "a syntax error": "def broken(:\n    pass",
    "os basics": "import os\nprint(os.getcwd(), os.path.join('a', 'b'), os.getpid())",
    "printing files": "with open('notes.txt', 'w') as f:\n    f.write('tried 3 thresholds')",
    "tracebacks of its own errors": (
        "import traceback\ntry:\n    breaker.call(fail)\nexcept Exception:\n"
        "    traceback.print_exc()\n    message = traceback.format_exc()"
    ),
    "inspect for coroutines": (
        "import inspect\nif inspect.iscoroutinefunction(func):\n    pass\n"
        "params = inspect.signature(func).parameters"
    ),
    "underscores": "for _ in range(3):\n    pass\n_, second = (1, 2)\n_private = 1",
    "its own objects' dicts": "print(self.__dict__, breaker.__dict__, type(self).__name__)",
    "settings of imported modules": (
        "import matplotlib.pyplot as plt\nimport logging\nimport random\n"
        "plt.rcParams['figure.figsize'] = (8, 3)\nlogging.basicConfig(level=logging.INFO)\n"
        "random.seed(1)\nlog = logging.getLogger('breaker')\nlog.level = logging.DEBUG"
    ),
    "format strings": "print('{0} of {1}'.format(1, 2), '{x.state}'.format(x=breaker), f'{a.b}')",
    "an alias that is not a module": "state = 'open'\ncurrent = state\nx = getattr(current, name)",
}


@pytest.mark.parametrize("name", list(HONEST))
def test_the_scan_leaves_honest_code_alone(name: str) -> None:
    """Ordinary answers, scratch cells and timing magics raise no flag."""
    assert scan_source(HONEST[name]) == []


def _solutions() -> list[Path]:
    return sorted((REPO / "solutions").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", _solutions(), ids=lambda p: p.parent.name)
def test_no_solution_of_the_course_is_flagged(path: Path) -> None:
    """Every exercise's reference answers, as a student would type them, scan clean."""
    nb = nbformat.read(path, as_version=4)
    instructor = {
        c.metadata.nbgrader.grade_id: c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("locked")
    }
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answer(path.parent.name, meta["grade_id"])
    assert scan_cells(nb, instructor) == []


def test_scan_cells_scans_the_student_cells_only() -> None:
    """Instructor cells (recorded id and source) are trusted; edited or added cells are not."""
    locked = nbformat.v4.new_code_cell("import sys\nsys.modules")  # instructor's own code
    locked.metadata["nbgrader"] = {"grade_id": "helpers", "locked": True}
    forged = nbformat.v4.new_code_cell("get_ipython()")
    forged.metadata["nbgrader"] = {"grade_id": "helpers", "locked": True}  # copied metadata
    added = nbformat.v4.new_code_cell("import ctypes")
    nb = nbformat.v4.new_notebook(cells=[locked, forged, added])
    reasons = scan_cells(nb, {"helpers": "import sys\nsys.modules"})
    assert reasons == [
        "cell helpers reaches into the kernel or IPython (get_ipython)",
        "cell 3 (added) uses low-level interpreter access (imports ctypes)",
    ]


def test_redefining_a_name_the_tests_use_is_flagged() -> None:
    """A test helper an instructor cell defines, rebound by a later student cell, is flagged."""
    helpers = nbformat.v4.new_code_cell(
        "import time\nimport httpx\nfrom distlab import ManualClock\n"
        "def check_state(breaker, expected, when):\n    assert breaker.state == expected\n"
        "class Boom(Exception):\n    pass\nbreaker = None"
    )
    helpers.metadata["nbgrader"] = {"grade_id": "test_helpers", "locked": True}
    early = nbformat.v4.new_code_cell("def trip(b, n):\n    pass")  # before: overwritten anyway
    rebinding = nbformat.v4.new_code_cell(
        "import time\nfrom distlab import ManualClock\nbreaker = CircuitBreaker()\n"
        "def check_state(*args):\n    pass\nBoom = Exception\n"
        "def mine(trip=3):\n    Boom = 1\n    return [check_state for check_state in 'ab']"
        "\nhttpx.Response.raise_for_status = lambda self: None"
    )
    # Earlier than the helpers, but run later: a thread (or a hook) that rebinds a global.
    deferred = nbformat.v4.new_code_cell(
        "import threading\ndef later():\n    global check_state\n"
        "    check_state = lambda *args: None\nthreading.Timer(0.1, later).start()"
    )
    nb = nbformat.v4.new_notebook(cells=[early, deferred, helpers, rebinding])
    reasons = scan_cells(nb, {"test_helpers": helpers.source})
    assert reasons == [
        "cell 2 (added) redefines what the tests use (check_state)",
        "cell 4 (added) changes code the tests rely on (patches httpx.Response.raise_for_status)",
        "cell 4 (added) redefines what the tests use (check_state)",
        "cell 4 (added) redefines what the tests use (Boom)",
    ]


def test_cells_too_large_to_scan_are_flagged_not_parsed() -> None:
    """Parsing megabytes of source costs the grader minutes and gigabytes: it is not done.

    (Before this limit a 2.6 MiB cell took 42 s and 1.2 GiB in the grader's process.) A
    cell over the scan's budget is flagged unread, and so is every cell once the
    notebook's is spent; honest cells are a few KiB.
    """
    big = nbformat.v4.new_code_cell("x = [1, 2, 3]\n" * 40_000)  # 547 KiB
    small = [nbformat.v4.new_code_cell("y = [4, 5, 6]\n" * 4_000) for _ in range(6)]  # 55 KiB
    nb = nbformat.v4.new_notebook(cells=[big, *small])
    reasons = scan_cells(nb, {})
    assert reasons == [
        "cell 1 (added) is too large to scan (546 KiB): read it yourself",
        "cell 6 (added) is too large to scan (the notebook's 256 KiB are used up)",
        "cell 7 (added) is too large to scan (the notebook's 256 KiB are used up)",
    ]  # cells 2-5 fit in the notebook's budget, and are clean


# --- the canary -------------------------------------------------------------------------
def _stream(text: str) -> Any:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _error(ename: str, evalue: str) -> Any:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def test_canary_cells_look_like_tests_and_differ_every_time() -> None:
    """The failing cell has a docstring and a hidden region; numbers are fresh each time."""
    first, second = canary_cells("The breaker opens."), canary_cells("The breaker opens.")
    assert first.cells[1].source.startswith('"""The breaker opens."""\n### BEGIN HIDDEN TESTS')
    assert first.printed != second.printed and first.failure != second.failure
    assert first.printed not in first.cells[0].source  # only a kernel that runs it knows


def test_the_canary_verdict_flags_missing_output_and_hidden_failures() -> None:
    """Right outputs pass; a silent print, a passing failure or a wrong message are flagged."""
    canary = canary_cells()
    printing, failing = (nbformat.from_dict(dict(c)) for c in canary.cells)
    printing.outputs = [_stream(canary.printed + "\n")]
    failing.outputs = [_error("AssertionError", canary.failure)]
    assert canary_verdict(canary, [printing, failing]) == []
    printing.outputs = []
    failing.outputs = [_error("AssertionError", "something else")]
    reasons = canary_verdict(canary, [printing, failing])
    assert [r.split(" (")[1] for r in reasons] == [
        "the kernel's input or output is being rewritten)",
        "failed tests are being hidden)",
    ]


def test_a_canary_the_budget_did_not_let_run_is_not_a_finding() -> None:
    """A notebook that spent its time budget never ran the canary: nothing to conclude."""
    canary = canary_cells()
    skipped = [nbformat.from_dict(dict(c)) for c in canary.cells]
    for cell in skipped:
        cell.outputs = [_error("GradingBudgetExceeded", "not run")]
    assert canary_verdict(canary, skipped) == []


# --- the gradebook ----------------------------------------------------------------------
def _gradebook(path: Path) -> str:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE grade (id TEXT, auto_score REAL, manual_score REAL)")
    db.execute("CREATE TABLE source_cell (id TEXT, source TEXT)")
    db.execute("INSERT INTO grade VALUES ('a', 0, NULL), ('b', 2, NULL)")
    db.execute("INSERT INTO source_cell VALUES ('t', 'assert ok')")
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def test_a_manual_score_set_while_the_code_ran_is_tampering(tmp_path: Path) -> None:
    """nbgrader prefers manual_score: one set during autograding is reported by name."""
    url = _gradebook(tmp_path / "gradebook.db")
    before = gradebook_fingerprint(url)
    assert gradebook_changes(before, gradebook_fingerprint(url)) == []
    db = sqlite3.connect(tmp_path / "gradebook.db")
    db.execute("UPDATE grade SET manual_score = 2 WHERE id = 'a'")
    db.commit()
    db.close()
    assert gradebook_changes(before, gradebook_fingerprint(url)) == [
        "tampering: grade.manual_score was set in the gradebook while the code ran"
    ]


def test_any_other_gradebook_change_is_tampering_too(tmp_path: Path) -> None:
    """A test cell's recorded source rewritten (every later grade would pass) is named."""
    url = _gradebook(tmp_path / "gradebook.db")
    before = gradebook_fingerprint(url)
    db = sqlite3.connect(tmp_path / "gradebook.db")
    db.execute("UPDATE source_cell SET source = 'pass'")
    db.commit()
    db.close()
    assert gradebook_changes(before, gradebook_fingerprint(url)) == [
        "tampering: the gradebook changed while the code ran (tables: source_cell)"
    ]


def test_a_gradebook_that_is_not_an_sqlite_file_is_not_checked() -> None:
    """Another database (postgres) or a missing file: no fingerprint, no finding."""
    assert gradebook_fingerprint("postgresql://grader@db/gradebook") is None
    assert gradebook_fingerprint("sqlite:////no/such/gradebook.db") is None
    assert gradebook_changes(None, None) == []
