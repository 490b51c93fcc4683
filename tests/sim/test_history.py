"""distlab.sim.history: the linearizability checker on known and random histories."""

from __future__ import annotations

import itertools
import math
import random

import matplotlib.pyplot as plt
import pytest

from distlab.errors import HistoryError
from distlab.sim.history import (
    UNKNOWN,
    History,
    Operation,
    Register,
    check,
    plot_history,
    violations,
)


def history(*ops: tuple[str, str, object, object, float, float | None]) -> History:
    """Build a history from (client, kind, value, output, call, ret) tuples."""
    h = History()
    for client, kind, value, output, call, ret in ops:
        h.add(client, kind, value, output, call=call, ret=ret)
    return h


# --- known histories -------------------------------------------------------------------
LINEARIZABLE = {
    "empty": history(),
    "read of the initial value": history(("a", "read", None, None, 0, 1)),
    "sequential write then read": history(
        ("a", "write", 1, None, 0, 1), ("b", "read", None, 1, 2, 3)
    ),
    "read overlapping a write sees the old value": history(
        ("a", "write", 1, None, 0, 10), ("b", "read", None, None, 1, 2)
    ),
    "read overlapping a write sees the new value": history(
        ("a", "write", 1, None, 0, 10), ("b", "read", None, 1, 1, 2)
    ),
    "old then new during one long write": history(
        ("a", "write", 1, None, 0, 10),
        ("b", "read", None, None, 1, 2),
        ("c", "read", None, 1, 3, 4),
    ),
    "concurrent writes, reads agree on the later one": history(
        ("a", "write", 1, None, 0, 5),
        ("b", "write", 2, None, 0, 5),
        ("c", "read", None, 1, 6, 7),
        ("d", "read", None, 1, 8, 9),
    ),
    "a read may see either concurrent write while both are in flight": history(
        ("a", "write", 1, None, 0, 10),
        ("b", "write", 2, None, 0, 10),
        ("c", "read", None, 2, 1, 2),
        ("d", "read", None, 1, 3, 4),
    ),
    "equal timestamps overlap": history(
        ("a", "write", 1, None, 0, 5), ("b", "read", None, None, 5, 6)
    ),
    "a write that never returned may take effect late": history(
        ("a", "write", 1, None, 0, None),
        ("b", "read", None, None, 1, 2),
        ("c", "read", None, 1, 30, 31),
    ),
    "a write that never returned may never take effect": history(
        ("a", "write", 1, None, 0, None), ("b", "read", None, None, 30, 31)
    ),
    "cas succeeds on the expected value": history(
        ("a", "write", 1, None, 0, 1),
        ("b", "cas", (1, 2), True, 2, 3),
        ("c", "read", None, 2, 4, 5),
        ("d", "cas", (1, 3), False, 6, 7),
    ),
    "the order must interleave clients (a witness needs lookahead)": history(
        ("a", "write", 1, None, 0, 10),
        ("b", "write", 2, None, 1, 3),
        ("c", "read", None, 2, 4, 5),
        ("d", "read", None, 1, 11, 12),
    ),
}

NOT_LINEARIZABLE = {
    "stale read after a write returned": (
        history(("a", "write", 1, None, 0, 1), ("b", "read", None, None, 2, 3)),
        "read",
    ),
    "read of a value before anyone wrote it": (
        history(("b", "read", None, 1, 0, 1), ("a", "write", 1, None, 2, 3)),
        "read",
    ),
    "new then old during one long write (new-old inversion)": (
        history(
            ("a", "write", 1, None, 0, 10),
            ("b", "read", None, 1, 1, 2),
            ("c", "read", None, None, 3, 4),
        ),
        "read",
    ),
    "concurrent writes seen in different orders after both returned": (
        history(
            ("a", "write", 1, None, 0, 5),
            ("b", "write", 2, None, 0, 5),
            ("c", "read", None, 1, 6, 7),
            ("d", "read", None, 2, 8, 9),
        ),
        "read",
    ),
    "a write that never returned cannot be undone": (
        history(
            ("a", "write", 1, None, 0, None),
            ("b", "read", None, 1, 1, 2),
            ("c", "read", None, None, 3, 4),
        ),
        "read",
    ),
    "cas that reports success on the wrong value": (
        history(("a", "write", 1, None, 0, 1), ("b", "cas", (2, 3), True, 2, 3)),
        "cas",
    ),
    "two reads of a value written once, around an overwrite": (
        history(
            ("a", "write", 1, None, 0, 1),
            ("b", "read", None, 1, 2, 8),
            ("a", "write", 2, None, 3, 4),
            ("c", "read", None, 2, 5, 6),
            ("d", "read", None, 1, 7, 9),
        ),
        "read",
    ),
}


@pytest.mark.parametrize("name", LINEARIZABLE)
def test_known_linearizable_histories_pass_with_a_valid_witness(name: str) -> None:
    """The checker accepts each, and the order it returns replays every output."""
    h = LINEARIZABLE[name]
    result = check(h)
    assert result.linearizable, result.explain()
    assert bool(result)
    assert sorted(op.id for op in result.order) == sorted(op.id for op in h.operations)
    assert _is_witness(result.order)
    assert result.explain().startswith("linearizable")
    assert violations(h) == []


@pytest.mark.parametrize("name", NOT_LINEARIZABLE)
def test_known_non_linearizable_histories_fail_naming_the_stuck_operation(name: str) -> None:
    """The checker rejects each and names an operation of the expected kind."""
    h, kind = NOT_LINEARIZABLE[name]
    result = check(h)
    assert not result.linearizable
    assert not bool(result)
    assert result.stuck is not None and result.stuck.kind == kind
    assert result.stuck.id not in {op.id for op in result.order}
    assert _is_witness(result.order), "the longest prefix found must itself be explainable"
    text = result.explain()
    assert text.startswith("not linearizable") and result.stuck.describe() in text


def test_the_stale_read_is_the_one_marked() -> None:
    """In write, stale read, fresh read, violations() marks exactly the stale read."""
    h = history(
        ("a", "write", 1, None, 0, 1),
        ("b", "read", None, None, 2, 3),
        ("c", "read", None, 1, 4, 5),
    )
    assert [op.id for op in violations(h)] == [1]


def test_violations_mark_every_stale_read_and_what_is_left_passes() -> None:
    """Three stale reads among fresh ones: all three are marked, the rest is linearizable."""
    h = History()
    t = 0.0
    stale_ids = []
    for value in range(1, 7):
        h.add("w", "write", value, call=t, ret=t + 1)
        op = h.add("r", "read", None, value - 1 if value % 2 else value, call=t + 2, ret=t + 3)
        if value % 2:
            stale_ids.append(op)
        t += 4
    found = violations(h)
    assert sorted(op.id for op in found) == stale_ids
    rest = [op for op in h.operations if op.id not in stale_ids]
    assert check(rest).linearizable


def test_keys_are_checked_separately_and_the_failing_key_is_named() -> None:
    """Linearizability is local: key 'x' passes, key 'y' fails, the result says 'y'."""
    h = History()
    h.add("a", "write", 1, call=0, ret=1, key="x")
    h.add("b", "read", None, 1, call=2, ret=3, key="x")
    h.add("a", "write", 1, call=0, ret=1, key="y")
    h.add("b", "read", None, None, call=2, ret=3, key="y")
    result = check(h)
    assert (result.linearizable, result.key) == (False, "y")
    assert "r[y]" in result.explain()
    assert check([op for op in h.operations if op.key == "x"]).linearizable


def test_a_failed_operation_is_left_out() -> None:
    """A write the server refused (fail) cannot explain a read of its value."""
    h = History()
    w = h.invoke("a", "write", 1, at=0)
    h.fail(w, at=1)
    h.add("b", "read", None, 1, call=2, ret=3)
    assert len(h) == 1
    assert not check(h).linearizable


def test_an_open_operation_has_an_unknown_output() -> None:
    """An operation never closed is pending: output UNKNOWN, return at infinity."""
    h = History()
    h.invoke("a", "read", at=0)
    (op,) = h.operations
    assert op.pending and op.output is UNKNOWN and op.ret == math.inf
    assert repr(UNKNOWN) == "UNKNOWN"
    assert op.describe() == "r\N{RIGHTWARDS ARROW}?"
    assert "never returned" in str(op)


def test_descriptions_name_the_operation() -> None:
    """Labels read like the lesson's timeline: w(1), r→1, cas(1→2)✓."""
    h = history(
        ("a", "write", 1, None, 0, 1),
        ("b", "read", None, 1, 2, 3),
        ("c", "cas", (1, 2), True, 4, 5),
        ("c", "cas", (1, 2), False, 6, 7),
    )
    labels = [op.describe() for op in h.operations]
    assert labels == [
        "w(1)",
        "r\N{RIGHTWARDS ARROW}1",
        "cas(1\N{RIGHTWARDS ARROW}2)✓",
        "cas(1\N{RIGHTWARDS ARROW}2)✗",
    ]
    assert str(h.operations[0]) == "w(1) by a at [0, 1]"


# --- random histories against a brute-force oracle -------------------------------------
def _is_witness(order: tuple[Operation, ...] | list[Operation]) -> bool:
    """Replay ``order`` on a register and check real-time order and every output."""
    model = Register()
    state = model.init()
    for index, op in enumerate(order):
        ok, state = model.step(state, op)
        if not ok:
            return False
        if any(later.ret < op.call for later in order[index + 1 :]):
            return False
    return True


def _brute_force(ops: list[Operation]) -> bool:
    """Try every order that respects real time, depth first, with no memoization.

    The next operation may be any remaining one that no remaining operation finished
    before; an operation that never returned can always come last (i.e. not at all).
    """

    def extend(state: object, remaining: list[Operation]) -> bool:
        if not remaining:
            return True
        first_return = min(op.ret for op in remaining)
        for op in remaining:
            if op.call > first_return:
                continue  # some remaining operation returned before this one was called
            ok, after = model.step(state, op)
            if ok and extend(after, [o for o in remaining if o is not op]):
                return True
        return all(op.pending for op in remaining)

    model = Register()
    return extend(model.init(), ops)


def test_the_brute_force_oracle_tries_every_permutation_it_should() -> None:
    """The oracle equals a check of all permutations on a few random histories."""
    rng = random.Random(5)
    for _ in range(40):
        ops = _random_history(rng)[:6]
        everything = any(_is_witness(list(order)) for order in itertools.permutations(ops))
        assert _brute_force(ops) == everything


def _random_history(rng: random.Random) -> list[Operation]:
    h = History()
    for client in ("a", "b", "c")[: rng.randint(1, 3)]:
        t = rng.uniform(0, 3)
        for _ in range(rng.randint(0, 4)):
            call = t + rng.uniform(0, 2)
            ret = call + rng.choice([0.0, rng.uniform(0, 4)])
            kind = rng.choice(["read", "read", "write", "cas"])
            value = {"read": None, "write": rng.randint(0, 2)}.get(kind, (rng.randint(0, 2), 9))
            output = {
                "read": rng.choice([None, 0, 1, 2, 9]),
                "write": None,
                "cas": rng.choice([True, False]),
            }[kind]
            if rng.random() < 0.1:
                h.add(client, kind, value, call=call, ret=None)
                break  # a client whose operation never returned is gone
            h.add(client, kind, value, output, call=call, ret=ret)
            t = ret + rng.choice([0.0, rng.uniform(0, 1)])
    return list(h.operations)


def test_agrees_with_brute_force_on_random_small_histories() -> None:
    """On 3000 random histories of up to 12 operations the verdicts equal brute force."""
    rng = random.Random(11)
    verdicts = {True: 0, False: 0}
    for trial in range(3000):
        ops = _random_history(rng)
        expected = _brute_force(ops)
        result = check(ops)
        assert result.linearizable == expected, (trial, [str(op) for op in ops])
        if expected:
            assert _is_witness(result.order)
        verdicts[expected] += 1
    # Both verdicts are well represented, so the agreement means something.
    assert min(verdicts.values()) > 600, verdicts


def test_a_long_linearizable_history_is_checked_quickly() -> None:
    """500 operations of 5 clients on an atomic register: accepted, few states explored."""
    rng = random.Random(3)
    h = History()
    value = None
    # Each operation takes effect at a random instant inside its interval (an atomic register).
    pending: list[tuple[float, str, float, float]] = []
    for client in "abcde":
        t = 0.0
        for _ in range(100):
            call = t + rng.uniform(0, 1)
            ret = call + rng.uniform(0.1, 3)
            pending.append((rng.uniform(call, ret), client, call, ret))
            t = ret
    counter = 0
    for _point, client, call, ret in sorted(pending):
        if rng.random() < 0.4:
            counter += 1
            value = counter
            h.add(client, "write", value, call=call, ret=ret)
        else:
            h.add(client, "read", None, value, call=call, ret=ret)
    result = check(h)
    assert result.linearizable
    assert result.states < 50 * len(h)


# --- errors ------------------------------------------------------------------------------
def test_bad_recordings_are_refused_with_the_problem_named() -> None:
    """Return before call, double return, unknown id, bad time, bad client."""
    h = History()
    op = h.invoke("a", "read", at=5)
    with pytest.raises(HistoryError, match="before its call"):
        h.ok(op, 1, at=4)
    h.ok(op, 1, at=6)
    with pytest.raises(HistoryError, match="returned already"):
        h.ok(op, 1, at=7)
    with pytest.raises(HistoryError, match="no operation 9"):
        h.ok(9, at=7)
    with pytest.raises(HistoryError, match="at must be a finite time"):
        h.invoke("a", "read", at=math.nan)
    with pytest.raises(HistoryError, match="client must be a non-empty str"):
        h.invoke("", "read", at=1)


def test_unknown_operations_and_bad_cas_arguments_are_named() -> None:
    """The model's operations are listed; a cas needs (expected, new)."""
    h = history(("a", "append", 1, None, 0, 1))
    with pytest.raises(HistoryError, match=r"no operation 'append'.*\['cas', 'read', 'write'\]"):
        check(h)
    with pytest.raises(HistoryError, match=r"cas takes value=\(expected, new\)"):
        check(history(("a", "cas", 1, True, 0, 1)))
    with pytest.raises(HistoryError, match="Operation objects"):
        check(["w(1)"])  # type: ignore[list-item]
    bad = Operation(0, "a", "read", None, None, call=2.0, ret=1.0)
    with pytest.raises(HistoryError, match="returns before its call"):
        check([bad])


def test_the_search_gives_up_past_max_states() -> None:
    """A budget too small for the history raises, naming max_states."""
    h = history(*[(c, "write", i, None, 0, 10) for i, c in enumerate("abcdef")])
    h.add("g", "read", None, 99, call=11, ret=12)
    with pytest.raises(HistoryError, match="max_states=5"):
        check(h, max_states=5)
    with pytest.raises(ValueError, match="max_states"):
        check(h, max_states=0)
    with pytest.raises(ValueError, match="limit"):
        violations(h, limit=0)


# --- drawing --------------------------------------------------------------------------
def test_the_timeline_has_a_lane_per_client_and_marks_offending_reads_red() -> None:
    """Lanes are the clients, bars are labelled, marked operations are red, axes have units."""
    h = history(
        ("a", "write", 1, None, 0.0, 0.010),
        ("b", "read", None, None, 0.020, 0.030),
        ("c", "read", None, 1, 0.020, None),
    )
    ax = plot_history(h, marked=violations(h), title="stale read")
    try:
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
        assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "client"
        labels = {t.get_text() for t in ax.texts}
        assert {"w(1)", "r\N{RIGHTWARDS ARROW}None", "r\N{RIGHTWARDS ARROW}?"} <= labels
        reds = [
            p
            for p in ax.patches
            if p.get_facecolor()[:3]
            == (0.8392156862745098, 0.15294117647058825, 0.1568627450980392)
        ]
        assert len(reds) == 1
        assert "not explainable" in [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close("all")
    with pytest.raises(ValueError, match="unit"):
        plot_history(h, unit="h")
