"""The serverless_pipeline exercise: its harness, its notebook, and grades that fit the bugs.

The harness (``distlab.exercises.serverless_pipeline``) is tested in-process with the
solution's own cells and with the bugs students write; the notebook's structure and its
release are checked like every exercise's; crafted submissions are graded by nbgrader in
one batch, and each realistic bug loses exactly the points of the tests it should fail.
"""

from __future__ import annotations

import ast
import inspect
import random
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.validator import Validator

from distlab.course.grading import Course, GradeReport, release
from distlab.course.notebooks import clean_notebook, notebook_problems
from distlab.errors import InvalidEvent, ServiceCrash
from distlab.exercises.serverless_pipeline import (
    Order,
    connect,
    order_event,
    run_pipeline,
)
from tests import REPO, submissions
from tests.submissions import edit_cell

SLUG = "serverless_pipeline"
SOLUTION = REPO / "solutions" / SLUG / f"{SLUG}.ipynb"
EXERCISE = REPO / "exercises" / SLUG / f"{SLUG}.ipynb"
PART_HEADING = re.compile(r"^#+\s*Part\s+(\w+)\b.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)
FULL_MARKS = 12.0
TESTS = {
    "test_parse_valid": 2,
    "test_parse_invalid": 2,
    "test_save_idempotent": 2,
    "test_save_values": 1,
    "test_consume_settles": 1,
    "test_consume_leaves_failures": 1,
    "test_consume_commit_then_ack": 1,
    "test_pipeline": 2,
}


def _nb(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def _grade_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if nbgrader_utils.is_grade(c)]


def _without_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if "### " not in line)


def _solution() -> dict[str, Any]:
    """The solution's imports and functions, run in this process."""
    nb = _nb(SOLUTION)
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", "impl_parse_order", "impl_save_order", "process_order"):
        exec(_without_markers(nb.cells[submissions.cell_index(nb, grade_id)].source), namespace)
    exec(_without_markers(nb.cells[submissions.cell_index(nb, "impl_consume")].source), namespace)
    return namespace


# --- the harness, in-process ------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_reference_passes_every_seed_and_the_faults_happen(seed: int) -> None:
    """Every valid order once, every malformed message dead, with lost acks and 2 crashes."""
    report = run_pipeline(_solution()["consume"], seed=seed)
    assert report.ok, report.summary()
    assert len(report.stored) == len(report.expected) >= 50
    assert len(report.dead) == report.malformed == 12
    assert report.lost_acks > 0 and report.crashes == 2 and report.locked > 0
    assert {what for what, _ in report.dead} >= {"not JSON", "a negative total"}


def test_a_run_replays_exactly_from_its_seed() -> None:
    """The same seed gives the same report; the seed is printed in the summary."""
    consume = _solution()["consume"]
    first, again = run_pipeline(consume, seed=9), run_pipeline(consume, seed=9)
    assert (first.expected, first.dead, first.lost_acks, first.rounds) == (
        again.expected,
        again.dead,
        again.lost_acks,
        again.rounds,
    )
    assert first.summary().startswith("seed 9: ")


def _variant(**replace: str) -> Callable[..., Any]:
    """The solution with source edits (old -> new) applied to its cells, as a consume."""
    nb = _nb(SOLUTION)
    namespace: dict[str, Any] = {}
    unused = set(replace)
    for grade_id in (
        "imports",
        "impl_parse_order",
        "impl_save_order",
        "process_order",
        "impl_consume",
    ):
        source = _without_markers(nb.cells[submissions.cell_index(nb, grade_id)].source)
        for old, new in replace.items():
            if old in source:
                unused.discard(old)
                source = source.replace(old, new)
        exec(source, namespace)
    assert not unused, f"edits that match no cell of the solution: {unused}"
    return namespace["consume"]  # type: ignore[no-any-return]


FLOAT_MONEY = {"int(cents))": "int(float(total) * 100))"}
PLAIN_INSERT = {'"ON CONFLICT (event_id) DO NOTHING",': '"",'}
ACK_FIRST = {
    "        try:\n            process_order": "        queue.ack(message)\n        try:\n"
    "            process_order",
}
DEAD_LETTER_ALL = {
    "        except Exception:\n            continue": "        except Exception as exc:\n"
    "            queue.dead_letter(message, repr(exc))\n            continue",
}
SWALLOW = {"            continue  # a transient": "            queue.ack(message)  # a transient"}
NO_DEAD_LETTER = {"            queue.dead_letter(message, exc.reason)": "            continue"}
LAX = {"    if not amount.is_finite() or amount <= 0:": "    if False:"}


@pytest.mark.parametrize(
    ("bug", "expected"),
    [
        (FLOAT_MONEY, "stored orders differ from their events"),
        (PLAIN_INSERT, "valid events ended in the dead-letter queue"),
        (ACK_FIRST, "valid orders are not in the database"),
        (DEAD_LETTER_ALL, "valid events ended in the dead-letter queue"),
        (SWALLOW, "valid orders are not in the database"),
        (NO_DEAD_LETTER, "reached the dead-letter queue only after every delivery failed"),
        (LAX, "rows come from malformed events"),
    ],
    ids=["float", "plain_insert", "ack_first", "dead_letter_all", "swallow", "no_dlq", "lax"],
)
def test_each_real_bug_is_caught_and_named(bug: dict[str, str], expected: str) -> None:
    """The report names the bug's consequence, with the seed, on the first seed that shows it."""
    consume = _variant(**bug)
    reports = [run_pipeline(consume, seed=seed) for seed in (1, 2)]
    assert not all(r.ok for r in reports)
    problems = [p for r in reports for p in r.problems()]
    assert any(expected in p and "(seed " in p for p in problems), problems


def test_a_consumer_that_raises_stops_the_run_and_is_named() -> None:
    """An exception out of consume (not a crash) ends the run with the error and the seed."""

    def broken(queue: Any, db: Any, *, batch_size: int) -> int:
        raise KeyError("total")

    report = run_pipeline(broken, seed=3)
    assert report.rounds == 1 and report.error == "KeyError: 'total'"
    assert report.problems()[0].startswith("consume raised KeyError: 'total' (seed 3)")


def test_a_consumer_that_never_acks_leaves_messages_and_says_so() -> None:
    """Receiving and doing nothing: every message goes dead after 10 deliveries, none stored."""
    report = run_pipeline(lambda queue, db, batch_size: len(queue.receive(batch_size)), seed=1)
    assert not report.ok and report.stored == {}
    assert any("not in the database" in p for p in report.problems())


def test_the_database_fails_commits_as_planned(tmp_path: Path) -> None:
    """crash_at_commits kills the 2nd commit and loses its write; locked fails and rolls back."""
    db = connect(tmp_path / "o.db", crash_at_commits={2})
    with db:
        db.execute("INSERT INTO orders VALUES ('e1', 'A', 'ada', 1)")
    with pytest.raises(ServiceCrash, match="commit #2"), db:
        db.execute("INSERT INTO orders VALUES ('e2', 'A', 'ada', 1)")
    db.execute("INSERT INTO orders VALUES ('e3', 'A', 'ada', 1)")
    db.commit()  # the 3rd commit, through commit() this time
    locked = connect(tmp_path / "o.db", locked=1.0, rng=random.Random(0))
    locked.execute("INSERT INTO orders VALUES ('e4', 'A', 'ada', 1)")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        locked.commit()
    assert not locked.in_transaction  # rolled back
    with sqlite3.connect(tmp_path / "o.db") as other:
        assert [r[0] for r in other.execute("SELECT event_id FROM orders ORDER BY 1")] == [
            "e1",
            "e3",
        ]
    with pytest.raises(ValueError, match="locked"):
        connect(tmp_path / "o.db", locked=2)


def test_order_event_and_order_are_what_the_notebook_describes() -> None:
    """Order is (order_id, customer, total_cents); order_event builds the CloudEvent."""
    assert Order._fields == ("order_id", "customer", "total_cents")
    event = order_event({"total": "1"}, event_id="x")
    assert (event["id"], event["type"], event.data) == (
        "x",
        "com.example.shop.order.placed",
        {"total": "1"},
    )
    parse = _solution()["parse_order"]
    with pytest.raises(InvalidEvent, match="total must have at most two decimals"):
        parse(order_event({"order_id": "A", "customer": "b", "total": "1.001"}))


# --- the notebook ---------------------------------------------------------------------
def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Each "Part X (N points)" heading equals the points of its test cells; 12 in all."""
    parts: dict[str, float] = {}
    heading: dict[str, float] = {}
    current = None
    for cell in _nb(SOLUTION).cells:
        if cell.cell_type == "markdown" and (match := PART_HEADING.search(cell.source)):
            current = match.group(1)
            heading[current] = float(match.group(2))
            parts[current] = 0.0
        elif nbgrader_utils.is_grade(cell):
            assert current is not None
            parts[current] += float(cell.metadata.nbgrader.points)
    assert parts == heading == {"A": 4.0, "B": 3.0, "C": 5.0}
    points = {
        c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points
        for c in _grade_cells(_nb(SOLUTION))
    }
    assert points == TESTS


def test_every_test_cell_opens_with_a_docstring_and_keeps_visible_tests() -> None:
    """A one-line docstring, visible asserts after hiding, and hidden tests in every cell."""
    for cell in _grade_cells(_nb(SOLUTION)):
        grade_id = cell.metadata.nbgrader.grade_id
        doc = ast.get_docstring(ast.parse(cell.source))
        assert doc and "\n" not in doc.strip(), grade_id
        assert "### BEGIN HIDDEN TESTS" in cell.source, grade_id
        visible = nbformat.from_dict(dict(cell))
        ClearHiddenTests()._remove_hidden_test_region(visible)
        assert any(isinstance(n, ast.Assert) for n in ast.walk(ast.parse(visible.source))), grade_id


def test_solution_regions_sit_inside_the_functions() -> None:
    """Signatures and docstrings stay visible in the release; the answers do not."""
    released = _nb(EXERCISE)
    for grade_id, signature in [
        ("impl_parse_order", "def parse_order(event: CloudEvent) -> Order:"),
        ("impl_save_order", "def save_order(db: sqlite3.Connection, event_id: str, order: Order)"),
        ("impl_consume", "def consume(queue: DurableQueue, db: sqlite3.Connection, *,"),
    ]:
        source = released.cells[submissions.cell_index(released, grade_id)].source
        assert signature in source and "raise NotImplementedError()" in source, grade_id
        assert "ON CONFLICT" not in source and "Decimal(" not in source, grade_id


def test_the_graded_functions_have_the_specified_signatures() -> None:
    """parse_order(event), save_order(db, event_id, order), consume(queue, db, *, batch_size=10)."""
    ns = _solution()
    assert list(inspect.signature(ns["parse_order"]).parameters) == ["event"]
    assert list(inspect.signature(ns["save_order"]).parameters) == ["db", "event_id", "order"]
    consume = inspect.signature(ns["consume"]).parameters
    assert list(consume) == ["queue", "db", "batch_size"]
    assert consume["batch_size"].kind is inspect.Parameter.KEYWORD_ONLY
    assert consume["batch_size"].default == 10


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3."""
    for path in (SOLUTION, EXERCISE):
        assert notebook_problems(path) == [], path
        assert _nb(path).metadata.kernelspec.name == "python3"


def test_the_sandbox_hides_the_modules_that_hold_the_answer() -> None:
    """nbgrader_config.py registers the runtime, the example function and lesson 10's module."""
    hidden = Course(REPO).config.Sandbox.hidden_modules[SLUG]
    assert set(hidden) == {
        "distlab.services.serverless.runtime",
        "distlab.services.serverless.example",
        "distlab.lessons.serverless",
    }
    imported = " ".join(
        _nb(SOLUTION).cells[submissions.cell_index(_nb(SOLUTION), "imports")].source.split()
    )
    assert not any(module in imported for module in hidden)


@pytest.mark.slow
def test_committed_exercise_matches_a_fresh_release(tmp_path: Path) -> None:
    """exercises/serverless_pipeline is exactly what nbgrader generates from the solution."""
    (written,) = release(Course(REPO), [SLUG], dest=tmp_path)
    fresh = nbformat.writes(clean_notebook(_nb(written)))
    assert nbformat.writes(clean_notebook(_nb(EXERCISE))) == fresh, (
        "exercises/ is out of date: run `distlab release serverless_pipeline` and commit"
    )
    assert "BEGIN SOLUTION" not in fresh and "BEGIN HIDDEN TESTS" not in fresh


def _validator(**traits: Any) -> Validator:
    validator = Validator(config=Course(REPO).config)
    for name, value in traits.items():
        setattr(validator, name, value)
    return validator


@pytest.mark.slow
def test_nbgraders_validator_passes_the_solution_and_fails_every_test_of_the_release() -> None:
    """nbgrader validate: no failure in the solution; --invert: nothing passes in the release."""
    assert _validator().validate(str(SOLUTION)) == {}
    inverted = _validator(invert=True).validate(str(EXERCISE))
    assert inverted.get("passed", []) == []


# --- grading crafted submissions ----------------------------------------------------
def _edited(**replace: str) -> Callable[[], Any]:
    def craft() -> Any:
        nb = submissions.honest(SLUG)
        unused = set(replace)
        for grade_id in ("impl_parse_order", "impl_save_order", "impl_consume"):
            for old, new in replace.items():
                if old in nb.cells[submissions.cell_index(nb, grade_id)].source:
                    unused.discard(old)
                    edit_cell(nb, grade_id, old, new)
        assert not unused, f"edits that match no cell of the release: {unused}"
        return nb

    return craft


SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: submissions.honest(SLUG), set()),
    "untouched": (lambda: submissions.released(SLUG), set(TESTS)),
    "float_money": (_edited(**FLOAT_MONEY), {"test_parse_valid", "test_pipeline"}),
    "plain_insert": (
        _edited(**PLAIN_INSERT),
        {"test_save_idempotent", "test_consume_commit_then_ack", "test_pipeline"},
    ),
    "ack_first": (
        _edited(**ACK_FIRST),
        {
            "test_consume_settles",
            "test_consume_leaves_failures",
            "test_consume_commit_then_ack",
            "test_pipeline",
        },
    ),
    "dead_letter_all": (
        _edited(**DEAD_LETTER_ALL),
        {"test_consume_leaves_failures", "test_pipeline"},
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """Every crafted submission, graded by nbgrader in one batch with kernels started ahead."""
    crafted = {name: craft for name, (craft, _) in SUBMISSIONS.items()}
    folder = tmp_path_factory.mktemp("submissions")
    return submissions.grade_crafted(SLUG, crafted, folder, pool=len(SUBMISSIONS))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_loses_exactly_the_points_of_its_bug(
    graded: dict[str, GradeReport], name: str
) -> None:
    """Honest: 12/12; the release: 0; each bug fails exactly the tests it should."""
    report = graded[name]
    failing = {t.grade_id for t in report.tests if not t.passed}
    assert failing == SUBMISSIONS[name][1], report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - sum(TESTS[t] for t in failing)
