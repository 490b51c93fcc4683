"""The reliable-messaging exercise: its harness, its structure, and grading real submissions.

The harness (``distlab.exercises.reliable_messaging``) is tested on the reference
solution, executed from the instructor notebook, and on small hand-written nodes; the
exercise is graded through nbgrader (``distlab.course.grading.Grader``) in one batch:
the solution gets full marks, the release 0, and each realistic bug loses exactly the
points of the properties it breaks.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.validator import Validator

from distlab import Context, Node
from distlab.course.grading import Course, Grader, GradeReport, release
from distlab.course.notebooks import clean_notebook, notebook_problems
from distlab.exercises.reliable_messaging import (
    PROPERTIES,
    SCENARIOS,
    Scenario,
    StreamRun,
    check_stream,
    judge,
    replay,
    run_stream,
    talks_only_over_the_network,
)
from tests import REPO
from tests.submissions import answer, edit_cell, honest, release_path, solution_path

SLUG = "reliable_messaging"
SOLUTION = solution_path(SLUG)
EXERCISE = release_path(SLUG)
PART_HEADING = re.compile(r"^#+\s*Part\s+(\w+)\b.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)
TESTS = ["test_delivery", "test_no_duplicates", "test_order", "test_budget", "test_crash_recovery"]
FULL_MARKS = 20.0


def _nb(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def _grade_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if nbgrader_utils.is_grade(c)]


def _reference() -> tuple[type[Node], type[Node]]:
    """The solution's Sender and Receiver, executed from the instructor notebook."""
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", "impl_sender", "impl_receiver"):
        exec(answer(SLUG, grade_id), namespace)
    return namespace["Sender"], namespace["Receiver"]


Sender, Receiver = _reference()


# --- the harness ---------------------------------------------------------------------------
def test_the_reference_passes_every_property_in_every_scenario() -> None:
    """The solution's classes pass all properties on every scenario the tests use."""
    for name, seeds in (
        ("calm", [0]),
        ("lossy", range(10)),
        ("partition", range(5)),
        ("crash", range(5)),
    ):
        report = check_stream(Sender, Receiver, seeds=seeds, scenario=name)
        for prop in PROPERTIES:
            assert report.passed(prop), report.explain(prop)
        assert report.sends_per_message < SCENARIOS[name].budget
    assert talks_only_over_the_network(Sender, Receiver) is None


def test_a_run_replays_exactly_and_seeds_differ() -> None:
    """Same seed, same run (deliveries, times, sends, trace); another seed, another run."""
    first = run_stream(Sender, Receiver, seed=4, trace=True)
    again = run_stream(Sender, Receiver, seed=4, trace=True)
    other = run_stream(Sender, Receiver, seed=5)
    assert (first.processed, first.sent, first.trace) == (again.processed, again.sent, again.trace)
    assert first.stream == [p for _, p in first.processed]
    assert (other.stream, other.sent) != (first.stream, first.sent)


def test_the_stream_repeats_some_payloads() -> None:
    """Payloads are 4-letter strings; about one in eight repeats an earlier one."""
    stream = run_stream(Sender, Receiver, seed=0).stream
    assert len(stream) == 100 and all(isinstance(p, str) and len(p) == 4 for p in stream)
    assert 3 <= len(stream) - len(set(stream)) <= 25


def _run(*processed: str, stream: list[str] | None = None, sent: int = 8) -> StreamRun:
    """A hand-made run: the stream a b c d (or ``stream``) and these deliver() calls."""
    run = StreamRun(
        seed=9,
        scenario=SCENARIOS["lossy"],
        stream=stream or ["a", "b", "c", "d"],
        processed=[(0.1 * i, p) for i, p in enumerate(processed)],
        sent=sent,
        ended=5.0,
    )
    judge(run)
    return run


@pytest.mark.parametrize(
    ("processed", "failing", "words"),
    [
        (("a", "b", "c", "d"), set(), ""),
        (("a", "b", "b", "c", "d"), {"no_duplicates"}, "processed 2 times"),
        (
            ("a", "c", "b", "d"),
            {"order"},
            "message #1 ('b') was processed at t = 0.200 s, after message #2",
        ),
        (
            ("a", "c", "d"),
            {"delivery"},
            "1 of 4 messages were never processed, the first message #1 ('b')",
        ),
        (("a", "x", "b", "c", "d"), {"no_duplicates", "order"}, "never submitted"),
        ((), {"delivery"}, "4 of 4 messages"),
    ],
)
def test_the_checker_reads_deliver_calls(
    processed: tuple[str, ...], failing: set[str], words: str
) -> None:
    """Each kind of wrong sequence fails exactly its properties, with a precise complaint."""
    run = _run(*processed)
    assert set(run.failures) == failing
    assert all(words in f.complaint for f in run.failures.values())


def test_repeated_payloads_are_matched_in_order() -> None:
    """With payloads a b a, processing a b a is right; a a b is out of order, not a duplicate."""
    assert _run("a", "b", "a", stream=["a", "b", "a"]).ok
    run = _run("a", "a", "b", stream=["a", "b", "a"])
    assert set(run.failures) == {"order"}
    assert "message #1 ('b')" in run.failures["order"].complaint


def test_the_budget_counts_sends_and_the_deadline() -> None:
    """More than 4 sends per message, or a message processed after 10 s, fails the budget."""
    assert set(_run("a", "b", "c", "d", sent=17).failures) == {"budget"}
    assert _run("a", "b", "c", "d", sent=16).ok
    late = StreamRun(9, SCENARIOS["lossy"], ["a"], [(10.5, "a")], 2, 11.0)
    judge(late)
    assert "after the deadline of 10 s" in late.failures["budget"].complaint


class _Fragile(Node):
    """A receiver that raises on its third message."""

    def __init__(self, deliver: Callable[[Any], None]) -> None:
        self.count = 0

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.count += 1
        if self.count == 3:
            raise KeyError("missing")


def test_an_exception_in_student_code_fails_everything_and_names_the_method() -> None:
    """The run stops, every property fails, the complaint names Class.method and line."""
    run = run_stream(Sender, _Fragile, seed=0)
    assert set(run.failures) == set(PROPERTIES)
    complaint = run.failures["order"].complaint
    assert "your code raised KeyError: 'missing'" in complaint
    assert "in _Fragile.on_message, line" in complaint and 'raise KeyError("missing")' in complaint
    explained = check_stream(Sender, _Fragile, seeds=[0]).explain("order")
    assert "The run, around" not in explained and "replay(Sender, Receiver, seed=0" in explained


def test_unwritten_methods_and_wrong_types_are_named() -> None:
    """NotImplementedError says what is not written; a non-Node or missing submit is named."""

    class Stub(Node):
        def __init__(self, receiver: str) -> None:
            raise NotImplementedError()

    assert "Stub.__init__ is not written yet" in run_stream(Stub, Receiver, seed=0).error
    assert "must be a distlab Node" in run_stream(lambda r: object(), Receiver, seed=0).error
    assert "submit(self, ctx, payload)" in run_stream(lambda r: Node(), Receiver, seed=0).error


class _Spinner(Node):
    """A receiver whose timer re-arms at zero delay: the run can never advance."""

    def __init__(self, deliver: Callable[[Any], None]) -> None:
        pass

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(0.0, "spin")

    def on_timer(self, ctx: Context, payload: Any) -> None:
        ctx.set_timer(0.0, "spin")


def test_a_run_that_cannot_advance_is_stopped_and_reported() -> None:
    """A zero-delay timer loop hits the event limit and is reported, not hung on."""
    run = run_stream(Sender, _Spinner, seed=0)
    assert run.error is not None and "could not go on" in run.error
    assert set(run.failures) == set(PROPERTIES)


class _Chatty(Node):
    """A sender that never stops retransmitting (it ignores acknowledgements)."""

    def __init__(self, receiver: str) -> None:
        self.receiver = receiver
        self.sent: list[tuple[int, str]] = []

    def submit(self, ctx: Context, payload: Any) -> None:
        self.sent.append((len(self.sent), payload))
        ctx.set_timer(0.0, len(self.sent) - 1)

    def on_timer(self, ctx: Context, index: Any) -> None:
        ctx.send(self.receiver, ("data", *self.sent[index]))
        ctx.set_timer(0.25, index)


def test_a_sender_that_never_stops_is_cut_short_and_fails_only_the_budget() -> None:
    """Once everything is processed and the budget is blown, the run stops early."""
    run = run_stream(_Chatty, Receiver, seed=0)
    assert set(run.failures) == {"budget"}
    assert run.ended < 10.0 < SCENARIOS["lossy"].horizon
    report = check_stream(_Chatty, Receiver, seeds=[0])
    explained = report.explain("budget")
    assert "per message, over the budget of 4, still sending" in explained
    assert re.search(r"The sender sent \d+ messages and the receiver \d+", explained)


def test_explain_tells_the_story_of_the_missing_message() -> None:
    """A delivery failure lists what happened to that payload: submit, sends, drops."""

    class Forgetful(Receiver):  # type: ignore[misc, valid-type]
        """Buffers by sequence number but skips a payload it has processed before."""

        def __init__(self, deliver: Callable[[Any], None]) -> None:
            seen: set[str] = set()

            def once(payload: str) -> None:
                if payload not in seen:
                    seen.add(payload)
                    deliver(payload)

            super().__init__(once)

    report = check_stream(Sender, Forgetful, seeds=range(2))
    text = report.explain("delivery")
    assert "delivery failed on seed 0 of scenario 'lossy' (2 seeds run)" in text
    assert "Everything that happened to" in text and " submit    message #" in text
    assert (
        " PROCESSED deliver(" in text
        and "replay(Sender, Receiver, seed=0, scenario='lossy')" in text
    )
    assert report.explain("order") == "order held on all 2 seeds of 'lossy'"


def test_check_stream_reuses_runs_of_the_same_classes() -> None:
    """The grader's five test cells share runs; a redefined class gets new ones."""
    first = check_stream(Sender, Receiver, seeds=range(2))
    second = check_stream(Sender, Receiver, seeds=range(2))
    assert all(a is b for a, b in zip(first.runs, second.runs, strict=True))
    Again, _ = _reference()
    third = check_stream(Again, Receiver, seeds=range(2))
    assert third.runs[0] is not first.runs[0]
    assert third.runs[0].processed == first.runs[0].processed


def test_a_receiver_fed_through_a_back_channel_is_caught() -> None:
    """Sharing a list between sender and receiver bypasses the network: the cut run says so."""
    shared: list[Any] = []

    class Leaky(Sender):  # type: ignore[misc, valid-type]
        def submit(self, ctx: Context, payload: Any) -> None:
            shared.append(payload)

    class Reader(Node):
        def __init__(self, deliver: Callable[[Any], None]) -> None:
            self.deliver = deliver

        def on_start(self, ctx: Context) -> None:
            ctx.set_timer(0.1, None)

        def on_timer(self, ctx: Context, payload: Any) -> None:
            while shared:
                self.deliver(shared.pop(0))
            ctx.set_timer(0.1, None)

    complaint = talks_only_over_the_network(Leaky, Reader)
    assert complaint is not None and "may talk only through ctx.send" in complaint


def test_replay_prints_the_verdicts_and_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """replay() prints the scenario, the verdicts and the first lines; returns the run."""
    run = replay(Sender, Receiver, seed=3, scenario="crash", show=5)
    out = capsys.readouterr().out
    assert "receiver down 0.8-3.8 s" in out and "seed 3: 100 deliver() calls" in out
    assert "delivery      ok" in out and f"{len(run.trace) - 5} more lines in run.trace" in out
    assert any(" crash " in line for line in run.trace)
    assert any(" restart " in line for line in run.trace)
    replay(Sender, Receiver, seed=3, show=0)
    assert "more lines" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: run_stream(Sender, Receiver, seed=0, scenario="stormy"),
            "scenario must be one of",
        ),
        (lambda: run_stream(Sender, Receiver, seed=1.5), "seed must be an int"),  # type: ignore[arg-type]
        (lambda: check_stream(Sender, Receiver, seeds=[]), "at least one seed"),
        (lambda: check_stream(Sender, Receiver, seeds=[0]).passed("speed"), "prop must be one of"),
    ],
)
def test_bad_arguments_are_refused_by_name(call: Callable[[], Any], message: str) -> None:
    """Unknown scenario or property, a float seed, no seeds: ValueError naming it."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_the_scenarios_cannot_be_replaced_from_a_notebook() -> None:
    """SCENARIOS is read-only: a submission cannot make the tests' network kinder."""
    with pytest.raises(TypeError):
        SCENARIOS["lossy"] = SCENARIOS["calm"]  # type: ignore[index]


def test_a_custom_scenario_can_be_run() -> None:
    """run_stream accepts a Scenario object; describe() names its faults and limits."""
    tiny = Scenario("tiny", messages=5, loss=0.0, duplicate=0.5, budget=9, deadline=2, horizon=3)
    assert run_stream(Sender, Receiver, seed=0, scenario=tiny).ok
    text = SCENARIOS["partition"].describe()
    assert "partition 0.8-3.8 s" in text and "budget 12 sends per message" in text


# --- the notebook ---------------------------------------------------------------------------
def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Each "Part X (N points)" heading equals the points of the test cells under it."""
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
    assert parts == heading == {"A": 12.0, "B": 4.0, "C": 4.0}


def test_points_are_split_by_property() -> None:
    """One test cell per property (delivery, duplicates, order, budget, crash), 4 points each."""
    cells = _grade_cells(_nb(SOLUTION))
    assert [c.metadata.nbgrader.grade_id for c in cells] == TESTS
    assert {float(c.metadata.nbgrader.points) for c in cells} == {4.0}


def test_every_test_cell_has_a_docstring_visible_tests_and_hidden_tests() -> None:
    """One-line docstring, asserts left after hiding, a hidden region with more seeds."""
    hider = ClearHiddenTests()
    for cell in _grade_cells(_nb(SOLUTION)):
        grade_id = cell.metadata.nbgrader.grade_id
        doc = ast.get_docstring(ast.parse(cell.source))
        assert doc and "\n" not in doc.strip(), grade_id
        visible = nbformat.from_dict(dict(cell))
        hider._remove_hidden_test_region(visible)
        body = ast.parse(visible.source).body[1:]
        assert any(isinstance(node, ast.Assert | ast.For) for node in body), grade_id
        hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1]
        assert "range(100, 130)" in hidden or "range(300, 320)" in hidden, grade_id
        # every hidden region checks the nodes talk only over the network, through the
        # harness module (a submission may have redefined the names the visible tests use)
        assert "_harness.talks_only_over_the_network(Sender, Receiver)" in hidden, grade_id
        assert "_harness.check_stream(" in hidden and " check_stream(" not in hidden, grade_id


def test_solution_regions_sit_inside_the_methods() -> None:
    """Signatures and docstrings stay visible: every solution region is inside a method."""
    nb = _nb(SOLUTION)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            markers = [line for line in cell.source.splitlines() if "### BEGIN SOLUTION" in line]
            assert markers and all(line.startswith("        ") for line in markers)
    released = "\n".join(c.source for c in _nb(EXERCISE).cells)
    assert "def submit(self, ctx: Context, payload: Any) -> None:" in released
    assert "def on_restart(self, ctx: Context) -> None:" in released
    assert "self.unacked" not in released and "self.early" not in released


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3, nbgrader metadata kept."""
    for path in (SOLUTION, EXERCISE):
        assert notebook_problems(path) == [], path
        assert _nb(path).metadata.kernelspec.name == "python3"


def test_the_sandbox_hides_nothing_for_this_exercise() -> None:
    """nbgrader_config.py registers the exercise (no reference module exists to hide)."""
    text = (REPO / "nbgrader_config.py").read_text()
    assert '"reliable_messaging": []' in text


@pytest.mark.slow
def test_committed_exercise_matches_a_fresh_release(tmp_path: Path) -> None:
    """exercises/reliable_messaging is exactly what nbgrader generates from solutions/."""
    written = release(Course(REPO), [SLUG], dest=tmp_path)
    assert [p.relative_to(tmp_path) for p in written] == [Path(f"{SLUG}/{SLUG}.ipynb")]
    fresh = nbformat.writes(clean_notebook(_nb(written[0])))
    assert nbformat.writes(clean_notebook(_nb(EXERCISE))) == fresh, (
        "exercises/ is out of date: run `distlab release reliable_messaging` and commit"
    )
    assert "BEGIN SOLUTION" not in fresh and "BEGIN HIDDEN TESTS" not in fresh


def _validator(**traits: Any) -> Validator:
    validator = Validator(config=Course(REPO).config)
    for name, value in traits.items():
        setattr(validator, name, value)
    return validator


@pytest.mark.slow
def test_nbgraders_validator_passes_the_solution_and_fails_every_test_of_the_release() -> None:
    """validate: the solution has no failing cell; --invert: no release test passes."""
    assert _validator().validate(str(SOLUTION)) == {}
    inverted = _validator(invert=True).validate(str(EXERCISE))
    assert inverted.get("passed", []) == []


# --- grading real submissions ----------------------------------------------------------------
def _receiver_body(nb: Any, old: str, new: str) -> Any:
    return edit_cell(nb, "impl_receiver", old, new)


BUFFER = (
    "        if seq >= self.expected:\n"
    "            self.early.setdefault(seq, payload)\n"
    "        while self.expected in self.early:\n"
    "            self.deliver(self.early.pop(self.expected))\n"
    "            self.expected += 1\n"
)


def no_dedup() -> Any:
    """The receiver processes every copy as it arrives."""
    return _receiver_body(honest(SLUG), BUFFER, "        self.deliver(payload)\n")


def arrival_order() -> Any:
    """The receiver drops copies it has seen but processes messages as they arrive."""
    return _receiver_body(
        honest(SLUG),
        BUFFER,
        "        if seq not in self.early:\n"
        "            self.early[seq] = payload\n"
        "            self.deliver(payload)\n",
    )


def payload_dedup() -> Any:
    """The receiver skips a payload it has already processed (payloads are not unique)."""
    nb = _receiver_body(
        honest(SLUG),
        "            self.deliver(self.early.pop(self.expected))\n",
        "            payload = self.early.pop(self.expected)\n"
        "            if payload not in self.seen:\n"
        "                self.seen.add(payload)\n"
        "                self.deliver(payload)\n",
    )
    return _receiver_body(
        nb, "        self.early: dict", "        self.seen = set()\n        self.early: dict"
    )


def no_reack() -> Any:
    """The receiver acknowledges only new messages, so a lost acknowledgement is never repaired."""
    return _receiver_body(
        honest(SLUG),
        "        _, seq, payload = msg\n",
        "        _, seq, payload = msg\n"
        "        if seq < self.expected or seq in self.early:\n"
        "            return\n",
    )


def reset_on_restart() -> Any:
    """The receiver forgets everything when it restarts."""
    return _receiver_body(
        honest(SLUG),
        "        # Nothing to do: the state on self survived, and this receiver sets no timers.",
        "        self.expected = 0\n        self.early = {}",
    )


def gives_up() -> Any:
    """The sender stops retransmitting after three retries."""
    return edit_cell(
        honest(SLUG),
        "impl_sender",
        "        if seq in self.unacked:\n",
        "        if seq in self.unacked and waited < 1.0:\n",
    )


def ignores_acks() -> Any:
    """The sender never takes anything off its list: it retransmits forever."""
    return edit_cell(honest(SLUG), "impl_sender", "if s < expected or s == seq]", "if False]")


def back_channel() -> Any:
    """The sender hands payloads straight to the receiver's deliver, bypassing the network."""
    nb = edit_cell(
        honest(SLUG),
        "impl_sender",
        '        ctx.send(self.receiver, ("data", seq, payload))\n',
        "        BACKDOOR[0](payload)\n",
    )
    nb = edit_cell(nb, "impl_sender", "        if seq in self.unacked:\n", "        if False:\n")
    nb = edit_cell(
        nb, "impl_sender", "class Sender(Node):", "BACKDOOR = []\n\n\nclass Sender(Node):"
    )
    return edit_cell(
        nb,
        "impl_receiver",
        "        self.deliver = deliver\n",
        "        self.deliver = deliver\n        BACKDOOR[:] = [deliver]\n",
    )


def unanswered() -> Any:
    """The untouched student copy."""
    return nbformat.read(EXERCISE, as_version=4)


# Each crafted submission and the tests it must fail (and only those).
SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: honest(SLUG), set()),
    "release": (unanswered, set(TESTS)),
    "no_dedup": (no_dedup, {"test_no_duplicates", "test_order", "test_crash_recovery"}),
    "arrival_order": (arrival_order, {"test_order", "test_crash_recovery"}),
    "payload_dedup": (payload_dedup, {"test_delivery", "test_crash_recovery"}),
    "no_reack": (no_reack, {"test_budget"}),
    "reset_on_restart": (reset_on_restart, {"test_crash_recovery"}),
    "gives_up": (gives_up, {"test_delivery", "test_crash_recovery"}),
    "ignores_acks": (ignores_acks, {"test_budget", "test_crash_recovery"}),
    "back_channel": (back_channel, set(TESTS)),
}


@pytest.fixture(scope="module")
def graded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[GradeReport, float]]]:
    """Grade every crafted submission in one batch with a kernel pool."""
    folder = tmp_path_factory.mktemp("reliable_messaging_submissions")
    results: dict[str, tuple[GradeReport, float]] = {}
    with Grader(Course(REPO), pool=4) as grader:
        for name, (craft, _) in SUBMISSIONS.items():
            path = folder / f"{SLUG}.ipynb"
            nbformat.write(craft(), path)
            started = time.monotonic()
            results[name] = (grader.grade(SLUG, path, student=name), time.monotonic() - started)
    yield results


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBMISSIONS)
def test_each_submission_loses_exactly_the_points_of_the_properties_it_breaks(
    graded: dict[str, tuple[GradeReport, float]], name: str
) -> None:
    """Honest 20/20, release 0/20, and each bug fails exactly its tests (4 points each)."""
    report, seconds = graded[name]
    _, failing = SUBMISSIONS[name]
    tests = {t.grade_id: t for t in report.tests}
    assert set(tests) == set(TESTS), report.lines()
    assert {g for g, t in tests.items() if not t.passed} == failing, report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - 4 * len(failing), report.lines()
    for grade_id in failing:
        assert tests[grade_id].message, grade_id
    assert seconds < 40, f"grading {name} took {seconds:.1f} s"


@pytest.mark.slow
def test_a_failing_hidden_test_names_the_seed_and_how_to_replay_it(
    graded: dict[str, tuple[GradeReport, float]],
) -> None:
    """no_reack passes the visible budget seeds but fails a hidden one, named with its seed."""
    report, _ = graded["no_reack"]
    budget = next(t for t in report.tests if t.grade_id == "test_budget")
    assert re.search(r"budget failed on seed 1\d\d of scenario 'lossy'", budget.message)
    assert "replay(Sender, Receiver, seed=1" in budget.message
