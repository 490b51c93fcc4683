"""Linearizability: record what clients saw, check it, draw it.

A *history* lists operations as clients saw them: each one was invoked at some time,
returned at a later time with some output (or never returned). A history is
**linearizable** when every operation can be given one instant between its call and
its return such that, replayed one at a time in the order of those instants, the
operations produce exactly the outputs the clients saw (Herlihy and Wing, 1990). That
is what "strongly consistent" means for a single register: it behaves as one copy.

Typical use::

    from distlab.sim.history import History, check, plot_history, violations

    h = History()
    w = h.invoke("alice", "write", 1, at=0.0)
    h.ok(w, at=1.0)
    r = h.invoke("bob", "read", at=2.0)
    h.ok(r, 0, at=3.0)              # bob read 0 after alice's write of 1 had returned
    result = check(h)
    result.linearizable             # False
    result.explain()                # "no order explains read -> 0 by bob at [2, 3] ..."
    plot_history(h, marked=violations(h))

The checker is the Wing and Gong search (1993) with Lowe's memoization (2017), as
Jepsen's Knossos and Porcupine (github.com/anishathalye/porcupine, ``checker.go``,
commit 55508eb) implement it: call and return events sit in a doubly linked list in
time order; the search walks it, tentatively *linearizing* an operation whose call it
meets (if the model accepts its output, the operation is lifted out of the list and
the search starts again at the head) and *backtracking* when it meets a return (that
operation had to take effect before its return, and no choice did). A cache of
``(set of linearized operations, model state)`` pairs already explored prunes
the search from exponential to fast on real histories.

Also as in Porcupine:

* an operation that never returned (a timeout, a crash) has an unknown output and may
  take effect at any time after its call, or never;
* operations on different keys are checked separately (linearizability is *local*:
  a history is linearizable iff its restriction to each object is);
* equal timestamps count as overlapping (a call at the very instant another operation
  returns may be ordered either way).

When a history is not linearizable, ``CheckResult`` names the operation the search
could not get past and the longest linearizable prefix it found; ``violations``
removes such operations one at a time until what is left is linearizable, which marks
the stale reads of a history for ``plot_history``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from distlab.errors import HistoryError

__all__ = [
    "UNKNOWN",
    "CheckResult",
    "History",
    "Model",
    "Operation",
    "Register",
    "check",
    "plot_history",
    "violations",
]


class _Unknown:
    """The output of an operation that never returned: any output is possible."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""The output of an operation whose result was never seen (timed out, or its client crashed)."""

_ARROW = "\N{RIGHTWARDS ARROW}"


@dataclass(frozen=True)
class Operation:
    """One operation of a history, as its client saw it.

    Attributes:
        id: the operation's number in its history (0, 1, ... in order of invocation).
        client: who invoked it; one client runs one operation at a time.
        kind: what it does: ``"read"``, ``"write"`` or ``"cas"`` for a ``Register``.
        value: the argument: the value written, ``(expected, new)`` for a cas, None
            for a read.
        output: what it returned (the value read; True or False for a cas; None for a
            write), or ``UNKNOWN`` when it never returned.
        call: the time it was invoked, in seconds.
        ret: the time it returned, in seconds; ``math.inf`` when it never returned.
        key: the object it acted on; operations on different keys are independent.
    """

    id: int
    client: str
    kind: str
    value: Any
    output: Any
    call: float
    ret: float
    key: Hashable = None

    @property
    def pending(self) -> bool:
        """True when the operation never returned (its output is ``UNKNOWN``)."""
        return self.output is UNKNOWN

    def describe(self) -> str:
        """Return a short label such as ``w(1)``, ``r→1`` or ``cas(1→2)✓``."""
        at = "" if self.key is None else f"[{self.key}]"
        if self.kind == "read":
            shown = "?" if self.pending else repr(self.output)
            return f"r{at}{_ARROW}{shown}"
        if self.kind == "write":
            return f"w{at}({self.value!r})" + ("?" if self.pending else "")
        if self.kind == "cas" and isinstance(self.value, tuple) and len(self.value) == 2:
            mark = "?" if self.pending else ("\N{CHECK MARK}" if self.output else "\N{BALLOT X}")
            return f"cas{at}({self.value[0]!r}{_ARROW}{self.value[1]!r}){mark}"
        return f"{self.kind}{at}({self.value!r}){_ARROW}{self.output!r}"

    def __str__(self) -> str:
        end = "never returned" if self.pending else f"{self.ret:g}"
        return f"{self.describe()} by {self.client} at [{self.call:g}, {end}]"


# --------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------
class History:
    """Record operations as clients invoke them and see them return.

    ``invoke`` opens an operation and returns its id; ``ok`` closes it with its output;
    ``fail`` says it certainly did not take effect (it is then left out of the
    history); an operation still open when the history is checked never returned, so
    its output is unknown (Jepsen calls it ``:info``). ``add`` records a whole
    operation at once, for histories written by hand.
    """

    def __init__(self) -> None:
        self._ops: list[dict[str, Any]] = []
        self._failed: set[int] = set()

    def invoke(
        self, client: str, kind: str, value: Any = None, *, at: float, key: Hashable = None
    ) -> int:
        """Record that ``client`` invoked ``kind(value)`` at time ``at``; return the op id.

        Raises:
            HistoryError: when ``at`` is not a finite number, or ``client`` or ``kind``
                is not a non-empty str.
        """
        for name, text in (("client", client), ("kind", kind)):
            if not isinstance(text, str) or not text:
                raise HistoryError(f"{name} must be a non-empty str, got {text!r}")
        when = _time("at", at)
        self._ops.append({"client": client, "kind": kind, "value": value, "key": key, "call": when})
        return len(self._ops) - 1

    def ok(self, op: int, output: Any = None, *, at: float) -> None:
        """Record that operation ``op`` returned ``output`` at time ``at``.

        Raises:
            HistoryError: when ``op`` is unknown or closed already, or ``at`` is before
                its call.
        """
        record = self._open(op)
        when = _time("at", at)
        if when < record["call"]:
            raise HistoryError(
                f"operation {op} returned at {when!r} s, before its call at {record['call']!r} s"
            )
        record["output"] = output
        record["ret"] = when

    def fail(self, op: int, *, at: float) -> None:
        """Record that operation ``op`` certainly did not take effect (it is left out).

        Only say so when it is certain (the server refused the request): a request
        that timed out may have taken effect, so leave it open instead.

        Raises:
            HistoryError: when ``op`` is unknown or closed already.
        """
        record = self._open(op)
        record["ret"] = _time("at", at)
        self._failed.add(op)

    def add(
        self,
        client: str,
        kind: str,
        value: Any = None,
        output: Any = None,
        *,
        call: float,
        ret: float | None,
        key: Hashable = None,
    ) -> int:
        """Record a whole operation; ``ret=None`` means it never returned. Return its id.

        Raises:
            HistoryError: as ``invoke`` and ``ok``.
        """
        op = self.invoke(client, kind, value, at=call, key=key)
        if ret is not None:
            self.ok(op, output, at=ret)
        return op

    @property
    def operations(self) -> tuple[Operation, ...]:
        """Every operation that may have taken effect, in order of invocation."""
        ops = []
        for index, record in enumerate(self._ops):
            if index in self._failed:
                continue
            done = "ret" in record
            ops.append(
                Operation(
                    id=index,
                    client=record["client"],
                    kind=record["kind"],
                    value=record["value"],
                    output=record["output"] if done else UNKNOWN,
                    call=record["call"],
                    ret=record["ret"] if done else math.inf,
                    key=record["key"],
                )
            )
        return tuple(ops)

    def __len__(self) -> int:
        return len(self._ops) - len(self._failed)

    def __iter__(self) -> Any:
        return iter(self.operations)

    def _open(self, op: int) -> dict[str, Any]:
        if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(self._ops):
            raise HistoryError(f"no operation {op!r} in this history (ids 0..{len(self._ops) - 1})")
        record = self._ops[op]
        if "ret" in record:
            raise HistoryError(f"operation {op} has returned already; an operation returns once")
        return record


def _time(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HistoryError(f"{name} must be a finite time in seconds, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
class Model(Protocol):
    """What one object (a register, a queue...) does, one operation at a time.

    ``step`` returns whether the object, in ``state``, could have produced ``op.output``
    for ``op``, and the state after it. States must be hashable and compare by value:
    the checker caches them.
    """

    kinds: frozenset[str]

    def init(self) -> Hashable:
        """Return the state before any operation."""
        ...

    def step(self, state: Any, op: Operation) -> tuple[bool, Hashable]:
        """Return (could ``op`` return ``op.output`` in ``state``, the next state)."""
        ...


class Register:
    """A read/write register with compare-and-set, holding ``initial`` at first.

    Operations: ``read`` (output: the value), ``write`` (value: what to write),
    ``cas`` (value: ``(expected, new)``; output: True when it swapped, else False).
    """

    kinds: frozenset[str] = frozenset({"read", "write", "cas"})

    def __init__(self, initial: Hashable = None) -> None:
        self.initial = initial

    def init(self) -> Hashable:
        """Return the initial value."""
        return self.initial

    def step(self, state: Any, op: Operation) -> tuple[bool, Hashable]:
        """Apply ``op`` to the value ``state``."""
        kind = op.kind
        if kind == "read":
            return (op.output is UNKNOWN or op.output == state), state
        if kind == "write":
            return True, op.value
        if not (isinstance(op.value, tuple) and len(op.value) == 2):
            raise HistoryError(
                f"a cas takes value=(expected, new), got {op.value!r} (operation {op.id})"
            )
        expected, new = op.value
        if state == expected:
            return (op.output is UNKNOWN or op.output is True), new
        return (op.output is UNKNOWN or op.output is False), state

    def __repr__(self) -> str:
        return f"Register(initial={self.initial!r})"


# --------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """What ``check`` found.

    Attributes:
        linearizable: whether some order of the operations explains every output.
        order: when linearizable, one such order (operations of each key together);
            otherwise the longest linearizable prefix found for the failing key.
        stuck: when not linearizable, the operation the search could not get past: it
            returned before any order could explain it (often a stale read).
        key: the key whose operations are not linearizable (None when linearizable,
            or for a history without keys).
        states: how many (linearized set, state) pairs the search explored (its effort).
    """

    linearizable: bool
    order: tuple[Operation, ...] = field(repr=False)
    stuck: Operation | None
    key: Hashable
    states: int

    def __bool__(self) -> bool:
        return self.linearizable

    def explain(self) -> str:
        """Say in one or two sentences why the history is (not) linearizable."""
        if self.linearizable:
            steps = ", ".join(op.describe() for op in self.order[:8])
            more = ", ..." if len(self.order) > 8 else ""
            return f"linearizable: the order {steps}{more} explains every output"
        assert self.stuck is not None
        prefix = ", ".join(op.describe() for op in self.order[-4:])
        before = f" after {'..., ' if len(self.order) > 4 else ''}{prefix}" if prefix else ""
        return (
            f"not linearizable: no order of the operations explains {self.stuck}; "
            f"the longest explainable prefix has {len(self.order)} operation(s){before}"
        )


def check(
    history: History | Iterable[Operation],
    model: Model | None = None,
    *,
    max_states: int = 2_000_000,
) -> CheckResult:
    """Check whether ``history`` is linearizable for ``model`` (a ``Register()`` by default).

    Args:
        history: a ``History`` or its operations.
        model: what each keyed object does; the default is a register holding None.
        max_states: give up after exploring this many (linearized set, state) pairs.

    Returns:
        The verdict, with a witness order or the operation that could not be placed.

    Raises:
        HistoryError: for an operation the model does not know, an operation that
            returns before its call, or when the search needs more than ``max_states``.
    """
    model = Register() if model is None else model
    if isinstance(max_states, bool) or not isinstance(max_states, int) or max_states < 1:
        raise ValueError(f"max_states must be an int >= 1, got {max_states!r}")
    ops = _operations(history, model)
    by_key: dict[Hashable, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    order: list[Operation] = []
    explored = 0
    for key, group in by_key.items():
        ok, seq, stuck, states = _check_one(group, model, max_states - explored)
        explored += states
        if not ok:
            return CheckResult(False, tuple(seq), stuck, key, explored)
        order.extend(seq)
    return CheckResult(True, tuple(order), None, None, explored)


def _operations(history: History | Iterable[Operation], model: Model) -> list[Operation]:
    ops = list(history.operations if isinstance(history, History) else history)
    for op in ops:
        if not isinstance(op, Operation):
            raise HistoryError(f"a history holds Operation objects, got {type(op).__name__}")
        if op.kind not in model.kinds:
            raise HistoryError(
                f"{model!r} has no operation {op.kind!r} (operation {op.id}); "
                f"it knows {sorted(model.kinds)}"
            )
        if not math.isfinite(op.call):
            raise HistoryError(f"operation {op.id} has no finite call time: {op.call!r}")
        if not op.ret >= op.call:
            raise HistoryError(f"operation {op.id} returns before its call: {op}")
    return ops


def _check_one(
    ops: Sequence[Operation], model: Model, max_states: int, *, memo: bool = True
) -> tuple[bool, list[Operation], Operation | None, int]:
    """The Wing and Gong search with memoization over the operations of one key.

    ``memo=False`` turns the cache off (plain Wing and Gong), for the benchmark that
    measures what the cache is worth; the result is the same, only slower.
    """
    n = len(ops)
    if n == 0:
        return True, [], None, 0
    # Events in time order; at equal times calls come first (so the operations overlap).
    events = sorted(
        [(op.call, 0, i) for i, op in enumerate(ops)] + [(op.ret, 1, i) for i, op in enumerate(ops)]
    )
    # Nodes: 0 is the head, 1..2n the events, 2n+1 the tail. A call node knows its return.
    size = 2 * n + 2
    tail = size - 1
    nxt = [*range(1, size), -1]
    prv = [-1, *range(size - 1)]
    op_of = [-1] * size
    match = [-1] * size  # for a call node: its return node; -1 for a return node
    call_node = [0] * n
    for position, (_, is_return, i) in enumerate(events, start=1):
        op_of[position] = i
        if is_return:
            match[call_node[i]] = position
        else:
            call_node[i] = position

    step = model.step
    state: Hashable = model.init()
    linearized = 0  # a bitset of operation indexes, as a Python int
    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[int, Hashable]] = []  # (call node, state before it)
    longest: list[int] = []
    stuck = -1
    entry = nxt[0]
    while nxt[0] != tail:
        ret_node = match[entry]
        if ret_node >= 0:  # a call: try to linearize its operation here
            i = op_of[entry]
            ok, new_state = step(state, ops[i])
            if ok:
                bits = linearized | (1 << i)
                key = (bits, new_state)
                if not memo or key not in cache:
                    cache.add(key)
                    if len(cache) > max_states:
                        raise HistoryError(
                            f"the search explored more than max_states={max_states} states for "
                            f"{n} operations; pass a larger max_states, or check a shorter history"
                        )
                    stack.append((entry, state))
                    state = new_state
                    linearized = bits
                    # lift the call and its return out of the list
                    p, q = prv[entry], nxt[entry]
                    nxt[p], prv[q] = q, p
                    p, q = prv[ret_node], nxt[ret_node]
                    nxt[p], prv[q] = q, p
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue
        # A return: its operation had to take effect before now, and no choice made it.
        if len(stack) > len(longest) or stuck < 0:
            longest = [op_of[node] for node, _ in stack]
            stuck = op_of[entry]
        if not stack:
            break
        entry, state = stack.pop()
        linearized &= ~(1 << op_of[entry])
        # unlift: put the return, then the call, back where they were
        ret_node = match[entry]
        nxt[prv[ret_node]] = ret_node
        prv[nxt[ret_node]] = ret_node
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        entry = nxt[entry]
    if nxt[0] == tail:
        return True, [ops[op_of[node]] for node, _ in stack], None, len(cache)
    return False, [ops[i] for i in longest], ops[stuck], len(cache)


def violations(
    history: History | Iterable[Operation],
    model: Model | None = None,
    *,
    limit: int = 100,
    max_states: int = 2_000_000,
) -> list[Operation]:
    """Return operations whose removal, one at a time, leaves a linearizable history.

    Each round checks the history and removes the operation the search could not get
    past (``CheckResult.stuck``), until the rest is linearizable. In a register history
    these are the stale reads. The set is small but not always the smallest possible.

    Args:
        history: a ``History`` or its operations.
        model: as for ``check``.
        limit: stop after this many operations (the history is badly broken).
        max_states: as for ``check``, per round.

    Returns:
        The removed operations, in the order they were found (empty when linearizable).

    Raises:
        HistoryError: as ``check``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")
    model = Register() if model is None else model
    ops = _operations(history, model)
    found: list[Operation] = []
    while len(found) < limit:
        result = check(ops, model, max_states=max_states)
        if result.linearizable:
            break
        assert result.stuck is not None
        found.append(result.stuck)
        ops = [op for op in ops if op.id != result.stuck.id]
    return found


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------
def plot_history(
    history: History | Iterable[Operation],
    *,
    marked: Iterable[Operation] = (),
    ax: Any = None,
    title: str | None = None,
    unit: str = "ms",
) -> Any:
    """Draw a history as a timeline: one lane per client, one bar per operation.

    A bar runs from the operation's call to its return and is labelled ``w(1)``,
    ``r→1``...; an operation that never returned is drawn hatched to the right edge.
    Marked operations (``violations(history)``) are drawn red with a cross.

    Args:
        history: a ``History`` or its operations.
        marked: operations to mark as offending.
        ax: a matplotlib ``Axes`` to draw on; a new figure is made when None.
        title: the plot title.
        unit: ``"ms"`` or ``"s"``: the unit of the time axis.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if unit not in ("ms", "s"):
        raise ValueError(f"unit must be 'ms' or 's', got {unit!r}")
    scale = 1000.0 if unit == "ms" else 1.0
    ops = list(history.operations if isinstance(history, History) else history)
    bad = {op.id for op in marked}
    clients = sorted({op.client for op in ops})
    lane = {client: index for index, client in enumerate(clients)}
    finite = [t for op in ops for t in (op.call, op.ret) if math.isfinite(t)]
    end = (max(finite) if finite else 1.0) * scale
    start = (min(finite) if finite else 0.0) * scale
    pad = max(end - start, 1e-9) * 0.04
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.55 * len(clients) + 1.6), layout="constrained")
    for op in ops:
        y = lane[op.client]
        left = op.call * scale
        right = (op.ret * scale) if math.isfinite(op.ret) else end + pad
        is_bad = op.id in bad
        colour = "tab:red" if is_bad else ("tab:blue" if op.kind == "write" else "tab:green")
        ax.barh(
            y,
            max(right - left, pad * 0.05),
            left=left,
            height=0.5,
            color=colour,
            alpha=0.85 if is_bad else 0.55,
            edgecolor="black",
            hatch="//" if op.pending else None,
        )
        ax.text((left + right) / 2, y - 0.4, op.describe(), ha="center", va="center", fontsize=8)
        if is_bad:
            ax.plot([right], [y], marker="X", color="tab:red", markersize=10, markeredgecolor="k")
    ax.set_yticks(range(len(clients)), clients)
    ax.set_ylim(-0.75, len(clients) - 0.45)
    ax.set_xlim(start - pad, end + 2 * pad)
    ax.invert_yaxis()
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("client")
    handles: list[Any] = [
        Patch(facecolor="tab:blue", alpha=0.55, edgecolor="black", label="write"),
        Patch(facecolor="tab:green", alpha=0.55, edgecolor="black", label="read"),
    ]
    if bad:
        handles.append(
            Line2D([], [], marker="X", color="tab:red", linestyle="", label="not explainable")
        )
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    if title is not None:
        ax.set_title(title)
    return ax
