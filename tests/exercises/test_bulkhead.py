"""The bulkhead exercise: structure, graded API, release in sync, nbgrader validation, grading.

Crafted submissions carry the bugs students really write (the chapter's JavaScript ported
line by line; waking a waiter after freeing its slot, which lets newcomers barge in and
the limit be exceeded; losing a slot handed to a waiter that is cancelled at that moment)
and one different correct design (asyncio.Semaphore); each loses exactly the points it
should. All are graded through nbgrader in one batch with kernels started ahead.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

import distlab
from distlab.course.grading import GradeReport, check_notebook
from distlab.errors import BulkheadFullError as ReferenceFullError
from distlab.exercises import run
from distlab.exercises.bulkhead import StormReport, storm
from distlab.patterns.bulkhead import Bulkhead as ReferenceBulkhead
from tests import submissions
from tests.exercises import nbgrader_checks as checks
from tests.submissions import cell_index, edit_cell, release_path, solution_path

SLUG = "bulkhead"
PART_A = ["test_limit", "test_pass_through", "test_counters", "test_validation"]
PART_B = ["test_bounded_wait", "test_queue_full", "test_fifo"]
PART_C = ["test_cancel_running", "test_cancel_waiting", "test_storm"]
FULL_MARKS = 22.0

HEADER = '\nclass BulkheadFullError(Exception):\n    """No slot."""\n\n'

CHAPTER_PORT = (
    HEADER
    + """
class Bulkhead:
    '''The chapter's JavaScript, translated line by line: no queue, no wait.'''

    def __init__(self, max_concurrent, *, max_queue=0, max_wait=0.0):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.max_concurrent = max_concurrent
        self.current_requests = 0
        self._rejected = 0

    @property
    def active(self):
        return self.current_requests

    @property
    def queued(self):
        return 0

    @property
    def rejected(self):
        return self._rejected

    async def execute(self, task):
        if self.current_requests >= self.max_concurrent:
            self._rejected += 1
            raise BulkheadFullError("Bulkhead limit reached")
        self.current_requests += 1
        try:
            return await task()
        finally:
            self.current_requests -= 1
"""
)

WAKE_AND_BARGE = (
    HEADER
    + """
class Bulkhead:
    '''Waiters wait on futures; release frees the slot, then wakes the first waiter.'''

    def __init__(self, max_concurrent, *, max_queue=0, max_wait=0.0):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self._active = 0
        self._waiters = deque()
        self._rejected = 0

    @property
    def active(self):
        return self._active

    @property
    def queued(self):
        return len(self._waiters)

    @property
    def rejected(self):
        return self._rejected

    async def execute(self, task):
        if self._active >= self.max_concurrent:
            if len(self._waiters) >= self.max_queue or self.max_wait <= 0:
                self._rejected += 1
                raise BulkheadFullError("full")
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, self.max_wait)
            except asyncio.TimeoutError:
                self._waiters.remove(fut)
                self._rejected += 1
                raise BulkheadFullError("timed out")
        self._active += 1
        try:
            return await task()
        finally:
            self._active -= 1
            if self._waiters:
                self._waiters.popleft().set_result(None)
"""
)

SEMAPHORE = (
    HEADER
    + """
class Bulkhead:
    '''A different correct design: asyncio.Semaphore for the slots, a counter for the queue.'''

    def __init__(self, max_concurrent, *, max_queue=0, max_wait=0.0):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self._semaphore = None
        self._active = 0
        self._queued = 0
        self._rejected = 0

    @property
    def active(self):
        return self._active

    @property
    def queued(self):
        return self._queued

    @property
    def rejected(self):
        return self._rejected

    async def execute(self, task):
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        if self._semaphore.locked():
            if self._queued >= self.max_queue or self.max_wait <= 0:
                self._rejected += 1
                raise BulkheadFullError("full")
            self._queued += 1
            try:
                async with asyncio.timeout(self.max_wait):
                    await self._semaphore.acquire()
            except TimeoutError:
                self._rejected += 1
                raise BulkheadFullError("no slot in time") from None
            finally:
                self._queued -= 1
        else:
            await self._semaphore.acquire()
        self._active += 1
        try:
            return await task()
        finally:
            self._active -= 1
            self._semaphore.release()
"""
)


# Structure --------------------------------------------------------------------------------
def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Parts A, B, C: 8 + 6 + 8 = 22 points, as the headings say."""
    assert checks.points_by_part(SLUG) == {"A": 8.0, "B": 6.0, "C": 8.0}


def test_cells_are_named_split_documented_and_have_visible_and_hidden_tests() -> None:
    """Names not hashes, <= 3 points a cell, docstrings, visible tests first, hidden tests after."""
    checks.check_cells(SLUG)
    ids = [
        c.metadata.nbgrader.grade_id
        for c in checks.grade_cells(checks.notebook(solution_path(SLUG)))
    ]
    assert ids == PART_A + PART_B + PART_C


def test_every_test_cell_checks_the_bulkhead_is_the_students_own() -> None:
    """Every cell's hidden tests refuse a Bulkhead imported, aliased or subclassed from distlab."""
    for c in checks.grade_cells(checks.notebook(solution_path(SLUG))):
        hidden = c.source.split("### BEGIN HIDDEN TESTS")[1]
        assert "__mro__" in hidden and '"distlab"' in hidden, c.metadata.nbgrader.grade_id


def test_solution_regions_sit_inside_the_methods() -> None:
    """Signatures and docstrings stay visible in the release; the bodies are stubs."""
    checks.check_solution_regions(SLUG, ["impl_bulkhead"])
    impl = checks.cell(checks.notebook(release_path(SLUG)), "impl_bulkhead").source
    for signature in (
        "def __init__(self, max_concurrent: int, *, max_queue: int = 0, max_wait: float = 0.0)",
        "async def execute(self, task: Callable[[], Awaitable[Any]]) -> Any:",
        "class BulkheadFullError(Exception):",
    ):
        assert signature in impl
    assert "set_result" not in impl and "_waiters" not in impl


def _solution_namespace() -> dict[str, Any]:
    nb = checks.notebook(solution_path(SLUG))
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", "impl_bulkhead"):
        exec(checks.without_markers(checks.cell(nb, grade_id).source), namespace)
    return namespace


def test_the_graded_api_is_exactly_the_issues() -> None:
    """Bulkhead(max_concurrent, *, max_queue=0, max_wait=0.0), async execute(task), 3 properties."""
    ns = _solution_namespace()
    bulkhead, full = ns["Bulkhead"], ns["BulkheadFullError"]
    params = inspect.signature(bulkhead.__init__).parameters
    assert list(params) == ["self", "max_concurrent", "max_queue", "max_wait"]
    assert (params["max_queue"].default, params["max_wait"].default) == (0, 0.0)
    assert params["max_queue"].kind is params["max_wait"].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(bulkhead.execute)
    assert list(inspect.signature(bulkhead.execute).parameters) == ["self", "task"]
    for name in ("active", "queued", "rejected"):
        assert isinstance(inspect.getattr_static(bulkhead, name), property), name
    assert issubclass(full, Exception) and full.__bases__ == (Exception,)


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3, nbgrader metadata kept."""
    checks.check_clean(SLUG)


@pytest.mark.slow
def test_committed_exercise_matches_a_fresh_release(tmp_path: Path) -> None:
    """exercises/bulkhead/ is exactly what nbgrader generate_assignment makes from solutions/."""
    checks.check_release_is_fresh(SLUG, tmp_path)


@pytest.mark.slow
def test_nbgraders_validator_passes_the_solution_and_fails_every_test_of_the_release() -> None:
    """nbgrader validate passes the solution (hidden tests included); --invert: nothing passes."""
    assert checks.validator().validate(str(solution_path(SLUG))) == {}
    inverted = checks.validator(invert=True).validate(str(release_path(SLUG)))
    assert inverted.get("passed", []) == [], [c["source"][:80] for c in inverted["passed"]]


@pytest.mark.slow
def test_distlab_check_passes_the_visible_tests_of_an_honest_submission(tmp_path: Path) -> None:
    """The visible tests pass on their own (nothing they need hides in a hidden region)."""
    path = tmp_path / "bulkhead.ipynb"
    nbformat.write(submissions.honest(SLUG), path)
    report = check_notebook(path)
    assert report.passed, report.lines()
    assert len(report.tests) == len(PART_A + PART_B + PART_C)


# Grading crafted submissions ------------------------------------------------------------
def _with_bulkhead(source: str) -> Callable[[], Any]:
    def craft() -> Any:
        nb = submissions.honest(SLUG)
        nb.cells[cell_index(nb, "impl_bulkhead")].source = source
        return nb

    return craft


def _leak_on_handoff_cancel() -> Any:
    """The reference answer, minus passing on a slot handed to a waiter cancelled that instant."""
    return edit_cell(
        submissions.honest(SLUG),
        "impl_bulkhead",
        "self._give_back()  # handed a slot just as we were cancelled: pass it on",
        "pass",
    )


SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: submissions.honest(SLUG), set()),
    "release": (lambda: submissions.released(SLUG), set(PART_A + PART_B + PART_C)),
    "semaphore": (_with_bulkhead(SEMAPHORE), set()),
    "chapter_port": (_with_bulkhead(CHAPTER_PORT), {*PART_B, "test_cancel_waiting", "test_storm"}),
    "wake_and_barge": (
        _with_bulkhead(WAKE_AND_BARGE),
        {"test_fifo", "test_cancel_waiting", "test_storm"},
    ),
    "leak_on_handoff_cancel": (_leak_on_handoff_cancel, {"test_cancel_waiting", "test_storm"}),
    # The grading sandbox hides the course's bulkhead (nbgrader_config.py): importing it fails.
    "reference_import": (
        _with_bulkhead(
            "from distlab.patterns.bulkhead import Bulkhead\n"
            "from distlab.errors import BulkheadFullError\n"
        ),
        set(PART_A + PART_B + PART_C),
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """Every crafted submission graded in one batch: ``name -> report``."""
    crafted = {name: craft for name, (craft, _) in SUBMISSIONS.items()}
    folder = tmp_path_factory.mktemp("bulkhead_submissions")
    return submissions.grade_crafted(SLUG, crafted, folder, pool=len(SUBMISSIONS))


def _messages(report: GradeReport) -> dict[str, str]:
    return {t.grade_id: t.message for t in report.tests}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_loses_exactly_the_points_of_its_bugs(
    graded: dict[str, GradeReport], name: str
) -> None:
    """Full marks for the reference and for a Semaphore design; each bug fails its tests only."""
    report = graded[name]
    failing = SUBMISSIONS[name][1]
    tests = {t.grade_id: t for t in report.tests}
    assert set(tests) == set(PART_A + PART_B + PART_C)
    assert {g for g, t in tests.items() if not t.passed} == failing, report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - sum(tests[g].max_points for g in failing)


@pytest.mark.slow
def test_the_failures_say_what_went_wrong(graded: dict[str, GradeReport]) -> None:
    """The messages name the broken rule, and the storm names its seed."""
    barge = _messages(graded["wake_and_barge"])
    assert "newcomer must queue behind it" in barge["test_fifo"]
    assert "tasks ran at once" in barge["test_storm"] and "seed 0" in barge["test_storm"]
    assert "queued should be 1, got 2" in barge["test_cancel_waiting"]
    leak = _messages(graded["leak_on_handoff_cancel"])
    assert "must pass it on to the next waiter" in leak["test_cancel_waiting"]
    assert "storm with seed 101: slots leaked" in leak["test_storm"]
    port = _messages(graded["chapter_port"])
    assert "it waited 0 s" in port["test_bounded_wait"]
    assert "ever got a slot" in port["test_storm"]
    assert "NotImplementedError" in _messages(graded["release"])["test_limit"]
    # The sandbox refused the import itself (without it, the MRO check would fail them).
    assert (
        "NameError: name 'Bulkhead' is not defined"
        in _messages(graded["reference_import"])["test_limit"]
    )


# The storm and the test runner -------------------------------------------------------------
class _NoLimit:
    """A 'bulkhead' that never limits anything (every call runs at once)."""

    def __init__(self, max_concurrent: int, *, max_queue: int = 0, max_wait: float = 0.0) -> None:
        self.active = self.queued = self.rejected = 0

    async def execute(self, task: Callable[[], Any]) -> Any:
        self.active += 1
        try:
            return await task()
        finally:
            self.active -= 1


class _LeakOnError(ReferenceBulkhead):
    """The reference bulkhead, except that a failing task keeps its slot forever."""

    async def execute(self, task: Callable[[], Any]) -> Any:
        async def wrapped() -> Any:
            try:
                return await task()
            except Exception:
                self._active += 1  # the slot given back in execute's finally is taken again
                raise

        return await super().execute(wrapped)


def test_the_storm_passes_the_reference_bulkhead() -> None:
    """The course's Bulkhead survives three storms; the storm did make callers wait and cancel."""
    for seed in (1, 2, 3):
        report = storm(ReferenceBulkhead, ReferenceFullError, seed=seed, tasks=800)
        assert report.ok, (seed, report.violations)
        assert report.peak_running == 4 and report.queued_callers > 20
        assert report.rejected > 0 and report.cancelled > 0 and report.completed > 250
        assert report.calls == 800


def test_the_storm_catches_an_exceeded_limit_and_a_leak_and_replays_by_seed() -> None:
    """No limit: 'tasks ran at once'; a leak: 'slots leaked' or a storm that never ends."""
    report = storm(_NoLimit, ReferenceFullError, seed=5, tasks=300)
    assert any("tasks ran at once" in v for v in report.violations), report.violations
    again = storm(_NoLimit, ReferenceFullError, seed=5, tasks=300)
    assert (again.violations, again.completed) == (report.violations, report.completed)
    leak = storm(_LeakOnError, ReferenceFullError, seed=5, tasks=300)
    assert any("leaked" in v or "never finished" in v for v in leak.violations), leak.violations


def test_the_storm_refuses_settings_it_cannot_test() -> None:
    """A storm needs a queue and a wait, or FIFO and leaks cannot be exercised."""
    with pytest.raises(ValueError, match="max_queue"):
        storm(ReferenceBulkhead, ReferenceFullError, seed=0, max_queue=0)
    assert isinstance(StormReport(seed=1).ok, bool)


def test_run_trims_the_traceback_to_the_callers_frames() -> None:
    """An error keeps the frames of this file, and drops asyncio's and distlab's."""

    async def student_code() -> None:
        await asyncio.sleep(1)
        raise KeyError("from the student's code")

    with pytest.raises(KeyError) as caught:
        run(student_code)
    files = [str(entry.path) for entry in caught.traceback]
    assert __file__ in files
    assert not [f for f in files if "asyncio" in f or "vtime" in f], files


def test_run_keeps_tasks_left_behind_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    """A task that failed and was never awaited writes nothing to stderr, even once collected."""

    async def main() -> float:
        async def fails() -> None:
            raise RuntimeError("nobody awaits me")

        asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(2.5)
        return distlab.now()

    assert run(main) == 2.5
    gc.collect()
    assert "never retrieved" not in capfd.readouterr().err
