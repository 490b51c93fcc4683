"""What the reliable-messaging exercise's tests run on: workloads, faults, the checker, replay.

Students write two ``distlab.Node`` classes: a ``Sender``, to which the application
hands a stream of messages (``submit``), and a ``Receiver``, which must call
``deliver(payload)`` exactly once per message, in the order they were submitted, over
a network that loses, duplicates, delays and reorders (and, in some scenarios, is cut
by a partition or loses the receiver to a crash; its state survives the restart).

``run_stream`` runs one seed of one scenario and checks it; ``check_stream`` runs many
seeds and says, per property, whether it held and where it first failed::

    report = check_stream(Sender, Receiver, seeds=range(5), scenario="lossy")
    report.passed("order")          # False if any seed processed messages out of order
    print(report.explain("order"))  # seed, the checker's complaint, a trace excerpt
    replay(Sender, Receiver, seed=3, scenario="lossy")   # the same run, traced

The properties, each checked on every seed (as Maelstrom's checkers do for its
challenges):

* ``delivery``: every submitted message was processed, by the end of the run;
* ``no_duplicates``: no message was processed more often than it was submitted;
* ``order``: messages were processed in the order they were submitted;
* ``budget``: at most ``Scenario.budget`` messages were sent per submitted message
  (both directions, retransmissions included), and every message was processed
  within ``Scenario.deadline`` seconds of virtual time.

Runs are seeded: the same classes, seed and scenario replay the same run, event for
event. Payloads are short random strings, some repeated on purpose (two messages can
say the same thing), so neither a payload's value nor its uniqueness gives away its
position in the stream.
"""

from __future__ import annotations

import linecache
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from distlab.errors import SimulationError
from distlab.sim.netsim import Context, Delay, Network, Node, TraceEvent

__all__ = [
    "PROPERTIES",
    "SCENARIOS",
    "Failure",
    "Scenario",
    "StreamReport",
    "StreamRun",
    "check_stream",
    "judge",
    "replay",
    "run_stream",
    "talks_only_over_the_network",
]

SENDER: Final = "sender"
RECEIVER: Final = "receiver"
PROPERTIES: Final = ("delivery", "no_duplicates", "order", "budget")
"""The properties checked on every run, in the order they are reported."""


@dataclass(frozen=True)
class Scenario:
    """One kind of run: the network's faults, the stream, and the limits.

    Attributes:
        name: how tests and messages refer to it.
        messages: how many messages the application submits.
        interval: seconds between two submissions (the first at ``interval``).
        loss: probability that a message is lost.
        duplicate: probability that a message arrives twice.
        delay: the one-way delay (exponential: most messages quick, some very late,
            so messages overtake each other).
        partition: ``(start, heal)``: sender and receiver cut apart in that window.
        crash: ``(at, restart_at)``: the receiver is down in that window (its state
            on ``self`` is kept; its timers are lost; ``on_restart`` runs).
        budget: sends per submitted message allowed, both directions together.
        deadline: every message must be processed by this virtual time (s).
        horizon: the run stops at this virtual time (s), whatever is pending.
    """

    name: str
    messages: int = 100
    interval: float = 0.02
    loss: float = 0.2
    duplicate: float = 0.1
    delay: Delay = field(default_factory=lambda: Delay.exponential(0.030, minimum=0.005))
    partition: tuple[float, float] | None = None
    crash: tuple[float, float] | None = None
    budget: float = 4.0
    deadline: float = 10.0
    horizon: float = 30.0

    def describe(self) -> str:
        """One line: the stream, the faults and the limits."""
        faults = [f"{self.loss:.0%} loss", f"{self.duplicate:.0%} duplicates", f"{self.delay!r}"]
        if self.partition:
            faults.append(f"partition {self.partition[0]:g}-{self.partition[1]:g} s")
        if self.crash:
            faults.append(f"receiver down {self.crash[0]:g}-{self.crash[1]:g} s")
        return (
            f"{self.name}: {self.messages} messages every {self.interval * 1000:g} ms; "
            f"{', '.join(faults)}; budget {self.budget:g} sends per message, "
            f"all processed by t = {self.deadline:g} s"
        )


# Read-only, so a submission cannot make the tests' scenarios easier.
SCENARIOS: Final[Mapping[str, Scenario]] = MappingProxyType(
    {
        "calm": Scenario("calm", loss=0.0, duplicate=0.0, delay=Delay.constant(0.010)),
        "lossy": Scenario("lossy"),
        # Every message outstanding during a 3 s outage is retried: a generous budget, which
        # only a sender that never stops (or a receiver that stops acknowledging) exceeds.
        "partition": Scenario("partition", partition=(0.8, 3.8), budget=12.0, deadline=20.0),
        "crash": Scenario("crash", crash=(0.8, 3.8), budget=12.0, deadline=20.0),
        # Sender and receiver cut apart for the whole run: nothing can be processed.
        "cut": Scenario("cut", messages=20, partition=(0.0, 5.0), horizon=5.0, deadline=5.0),
    }
)
"""The scenarios the exercise's tests run; ``run_stream`` also accepts a ``Scenario``."""


# --------------------------------------------------------------------------------------
# Running one seed
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Submit:
    """The harness's own timer payload: hand message ``index`` to the student's sender."""

    index: int


class _Application(Node):
    """Wraps the student's sender: submits the stream, passes everything else through."""

    def __init__(
        self, sender: Node, stream: list[str], interval: float, note: Callable[..., None]
    ) -> None:
        self.sender = sender
        self.stream = stream
        self.interval = interval
        self.note = note

    def on_start(self, ctx: Context) -> None:
        for index in range(len(self.stream)):
            ctx.set_timer((index + 1) * self.interval, _Submit(index))
        self.sender.on_start(ctx)

    def on_timer(self, ctx: Context, payload: Any) -> None:
        if isinstance(payload, _Submit):
            self.note("submit", payload.index, self.stream[payload.index])
            self.sender.submit(ctx, self.stream[payload.index])  # type: ignore[attr-defined]
        else:
            self.sender.on_timer(ctx, payload)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.sender.on_message(ctx, src, msg)

    def on_restart(self, ctx: Context) -> None:
        self.sender.on_restart(ctx)


class _Raised(Exception):
    """The student's code raised: carries where and what."""


@dataclass(frozen=True)
class Failure:
    """The first violation of one property in one run.

    Attributes:
        prop: the property (one of ``PROPERTIES``).
        seed: the run's seed.
        scenario: the scenario's name.
        time: virtual time of the first wrong event (s).
        complaint: what went wrong, in one sentence.
        focus: the payload concerned, if one is (its trace lines tell its story).
    """

    prop: str
    seed: int
    scenario: str
    time: float
    complaint: str
    focus: str | None = None
    error: bool = False


@dataclass
class StreamRun:
    """One seeded run: what was submitted, what was processed, and the verdicts.

    Attributes:
        seed: the seed.
        scenario: the scenario.
        stream: the payloads in the order they were submitted.
        processed: ``(time, payload)`` per call to ``deliver``, in order.
        sent: messages sent by both nodes together.
        ended: virtual time at which the run stopped (s).
        failures: the first failure of each property that failed, by property.
        error: what the student's code raised, if it raised (every property fails).
        still_sending: every message had been processed, yet the nodes were still
            sending when the run stopped (something is retransmitted forever).
        trace: the network's events with the harness's own lines, when traced.
    """

    seed: int
    scenario: Scenario
    stream: list[str]
    processed: list[tuple[float, str]]
    sent: int
    ended: float
    failures: dict[str, Failure] = field(default_factory=dict)
    error: str | None = None
    still_sending: bool = False
    trace: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when every property held."""
        return not self.failures

    @property
    def sends_per_message(self) -> float:
        """Messages sent (both directions) per submitted message."""
        return self.sent / len(self.stream)


def _stream(seed: int, count: int) -> list[str]:
    """The payloads: random 4-letter words, about one in eight a repeat of an earlier one."""
    rng = random.Random(f"stream:{seed}")
    words: list[str] = []
    for _ in range(count):
        if words and rng.random() < 0.125:
            words.append(rng.choice(words))
        else:
            words.append("".join(rng.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(4)))
    return words


def _resolve(scenario: str | Scenario) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(
            f"scenario must be one of {sorted(SCENARIOS)} or a Scenario, got {scenario!r}"
        )
    return SCENARIOS[scenario]


def run_stream(
    make_sender: Callable[[str], Node],
    make_receiver: Callable[[Callable[[Any], None]], Node],
    *,
    seed: int,
    scenario: str | Scenario = "lossy",
    trace: bool = False,
) -> StreamRun:
    """Run one seed of ``scenario`` with the student's classes, and check it.

    Args:
        make_sender: called as ``make_sender("receiver")``: the sender node (the class).
        make_receiver: called as ``make_receiver(deliver)``: the receiver node.
        seed: seeds the network and the stream.
        scenario: a name from ``SCENARIOS`` or a ``Scenario``.
        trace: keep the network's trace, with the harness's lines, in ``run.trace``.

    Returns:
        The run with its verdicts; never raises for what the student's code does.

    Raises:
        ValueError: for an unknown scenario.
    """
    spec = _resolve(scenario)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    stream = _stream(seed, spec.messages)
    processed: list[tuple[float, str]] = []
    net = Network(
        seed=seed, loss=spec.loss, duplicate=spec.duplicate, delay=spec.delay, trace=trace
    )
    # The harness's own lines (submit, processed) and where they fall in the network's
    # trace: after that many trace entries (read from the simulator's private list,
    # which a traced Network appends to as events happen).
    log: list[tuple[int, float, str, int, Any]] = []

    def note(kind: str, index: int, payload: Any) -> None:
        mark = len(net._trace) if net._trace is not None else 0
        log.append((mark, net.now, kind, index, payload))

    def deliver(payload: Any) -> None:
        processed.append((net.now, payload))
        note("processed", len(processed) - 1, payload)

    error = None
    still_sending = False
    try:
        sender = make_sender(RECEIVER)
        receiver = make_receiver(deliver)
        for name, node in ((SENDER, sender), (RECEIVER, receiver)):
            if not isinstance(node, Node):
                raise TypeError(
                    f"the {name} must be a distlab Node (class ...(Node)), "
                    f"got {type(node).__name__}"
                )
        if not callable(getattr(sender, "submit", None)):
            raise TypeError("the sender needs a method submit(self, ctx, payload)")
        net.add_node(SENDER, _Application(sender, stream, spec.interval, note))
        net.add_node(RECEIVER, receiver)
        if spec.partition is not None:
            net.partition(SENDER, RECEIVER, start=spec.partition[0], heal=spec.partition[1])
        if spec.crash is not None:
            net.crash(RECEIVER, at=spec.crash[0], restart_at=spec.crash[1])
        still_sending = _run(net, spec, stream, processed)
    except SimulationError as exc:
        error = f"the run could not go on at t = {net.now:.3f} s: {exc}"
    except Exception as exc:  # the student's code raised: report it, never re-raise
        error = _describe_error(exc, net.now)
    run = StreamRun(
        seed=seed,
        scenario=spec,
        stream=stream,
        processed=processed,
        sent=net.stats.sent,
        ended=net.now,
        error=error,
        still_sending=still_sending,
    )
    judge(run)
    if trace:
        run.trace = _trace_lines(net.trace, log)
    return run


def _run(net: Network, spec: Scenario, stream: list[str], processed: list[Any]) -> bool:
    """Run until the horizon, or earlier once nothing more can change the verdicts.

    The run goes on in one-second slices and stops when every message has been
    processed and either the network has gone quiet (nothing sent for a second,
    nothing in flight) or the budget is blown anyway (a sender that never stops
    would otherwise cost the grader minutes of simulated retransmissions).

    Returns:
        True when, with every message processed, the nodes were still sending at the end.
    """
    wanted = Counter(stream)
    limit = spec.budget * len(stream)
    busy = False
    while net.now < spec.horizon:
        before = net.stats.sent
        net.run(until=min(spec.horizon, net.now + 1.0), max_events=100_000)
        stats = net.stats
        if wanted - Counter(p for _, p in processed if isinstance(p, str)):
            continue  # some message is still missing
        busy = stats.sent > before or stats.in_flight > 0
        if stats.sent > limit or not busy:
            break
    return busy


def _describe_error(exc: BaseException, now: float) -> str:
    """Say what the student's code raised, where (Class.method, line) and when."""
    where = ""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        if "distlab" not in tb.tb_frame.f_code.co_filename.split("/"):
            last = tb
        tb = tb.tb_next
    if last is not None:
        frame = last.tb_frame
        owner = frame.f_locals.get("self")
        name = frame.f_code.co_name
        if owner is not None:
            name = f"{type(owner).__name__}.{name}"
        line = linecache.getline(frame.f_code.co_filename, last.tb_lineno).strip()
        if isinstance(exc, NotImplementedError):
            return f"{name} is not written yet (it still raises NotImplementedError)"
        where = f" in {name}, line {last.tb_lineno}" + (f": {line}" if line else "")
    text = f": {exc}" if str(exc) else ""
    return f"your code raised {type(exc).__name__}{text} at t = {now:.3f} s{where}"


def judge(run: StreamRun) -> None:
    """Fill ``run.failures`` with the first violation of each property of ``run``.

    ``run_stream`` calls it; call it again on a ``StreamRun`` built by hand to see how
    the checker reads a sequence of ``deliver`` calls.
    """
    spec = run.scenario
    failures = run.failures

    def fail(prop: str, time: float, complaint: str, focus: str | None = None) -> None:
        failures.setdefault(prop, Failure(prop, run.seed, spec.name, time, complaint, focus))

    if run.error is not None:
        for prop in PROPERTIES:
            failures[prop] = Failure(prop, run.seed, spec.name, run.ended, run.error, error=True)
        return
    stream = run.stream
    sent_count = Counter(stream)
    seen: Counter[str] = Counter()
    matched = [False] * len(stream)
    position = 0  # the stream index after the last message matched in order
    last: tuple[int, float] | None = None  # (index, time) of the last message matched
    for time, payload in run.processed:
        if not isinstance(payload, str) or payload not in sent_count:
            complaint = (
                f"processed {payload!r} at t = {time:.3f} s, which the application never "
                "submitted (call deliver with the payload itself)"
            )
            fail("no_duplicates", time, complaint)
            fail("order", time, complaint)
            continue
        seen[payload] += 1
        if seen[payload] > sent_count[payload]:
            times = [t for t, p in run.processed if p == payload][: seen[payload]]
            fail(
                "no_duplicates",
                time,
                f"message {payload!r} was submitted {sent_count[payload]} time(s) but processed "
                f"{seen[payload]} times, at t = {', '.join(f'{t:.3f}' for t in times)} s",
                payload,
            )
            continue
        unmatched = [i for i, p in enumerate(stream) if p == payload and not matched[i]]
        ahead = [i for i in unmatched if i >= position]
        index = ahead[0] if ahead else unmatched[0]
        matched[index] = True
        if not ahead and last is not None:
            fail(
                "order",
                time,
                f"message #{index} ({payload!r}) was processed at t = {time:.3f} s, after "
                f"message #{last[0]} ({stream[last[0]]!r}), processed at t = {last[1]:.3f} s",
                payload,
            )
        else:
            position = index + 1
            last = (index, time)
    missing = [i for i, done in enumerate(matched) if not done]
    if missing:
        first = missing[0]
        fail(
            "delivery",
            (first + 1) * spec.interval,
            f"{len(missing)} of {len(stream)} messages were never processed, the first "
            f"message #{first} ({stream[first]!r}); the run ended at t = {run.ended:g} s",
            stream[first],
        )
    late = [(t, p) for t, p in run.processed if t > spec.deadline]
    if late:
        fail(
            "budget",
            late[0][0],
            f"{len(late)} message(s) processed after the deadline of {spec.deadline:g} s, the "
            f"first at t = {late[0][0]:.3f} s: retransmit sooner, and do not wait for each "
            "acknowledgement before sending the next message",
        )
    if run.sends_per_message > spec.budget:
        still = ""
        if run.still_sending and run.processed:
            idle = run.ended - max(t for t, _ in run.processed)
            still = f", still sending {idle:.1f} s after the last message was processed"
        fail(
            "budget",
            run.ended,
            f"{run.sent} messages sent for {len(stream)} submitted: "
            f"{run.sends_per_message:.2f} per message, over the budget of {spec.budget:g}{still}; "
            "the usual causes: retransmitting faster than a round trip (about 60 ms here), "
            "retransmitting what was acknowledged, not acknowledging duplicates",
        )


def _trace_lines(
    events: list[TraceEvent], log: list[tuple[int, float, str, int, Any]]
) -> list[str]:
    """The network's events with the harness's submit and processed lines, in order."""
    rows: list[tuple[int, int, str]] = []
    for index, event in enumerate(events):
        if isinstance(event.msg, _Submit):
            continue  # the harness's own timer: its "submit" line follows
        where = f"{event.src} -> {event.dst}" if event.dst else event.src
        detail = f" ({event.detail})" if event.detail else ""
        text = f"{event.time:8.4f} s  {event.kind:9} {where:20} {event.msg!r}{detail}"
        rows.append((index, 0, text))
    for mark, time, kind, index, payload in log:
        if kind == "submit":
            text = f"{time:8.4f} s  submit    message #{index} {payload!r}"
        else:
            text = f"{time:8.4f} s  PROCESSED deliver({payload!r})  (call #{index})"
        rows.append((mark, -1, text))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [text for _, _, text in rows]


# --------------------------------------------------------------------------------------
# Many seeds
# --------------------------------------------------------------------------------------
_CACHE: dict[tuple[Any, Any, int, Scenario], StreamRun] = {}


@dataclass(frozen=True)
class StreamReport:
    """The verdicts of ``check_stream`` over several seeds of one scenario.

    Attributes:
        scenario: the scenario.
        runs: one run per seed, in seed order.
    """

    scenario: Scenario
    runs: list[StreamRun] = field(repr=False)
    make_sender: Callable[[str], Node] = field(repr=False)
    make_receiver: Callable[[Callable[[Any], None]], Node] = field(repr=False)

    def passed(self, prop: str) -> bool:
        """Whether ``prop`` held on every seed."""
        _check_prop(prop)
        return all(prop not in run.failures for run in self.runs)

    def first_failure(self, prop: str) -> Failure | None:
        """The failure of ``prop`` on the first seed where it failed, or None."""
        _check_prop(prop)
        for run in self.runs:
            if prop in run.failures:
                return run.failures[prop]
        return None

    @property
    def sends_per_message(self) -> float:
        """Sends per submitted message over all seeds together."""
        return sum(r.sent for r in self.runs) / sum(len(r.stream) for r in self.runs)

    def explain(self, prop: str, *, lines: int = 14) -> str:
        """Say where ``prop`` first failed: seed, complaint, a trace excerpt, how to replay.

        Returns:
            A few lines for an assertion message ("... held on every seed" if it held).
        """
        failure = self.first_failure(prop)
        if failure is None:
            return f"{prop} held on all {len(self.runs)} seeds of {self.scenario.name!r}"
        # The first line says it all (graders' reports show only the first line):
        # the property, the seed, the complaint, and how to replay it.
        first = (
            f"{prop} failed on seed {failure.seed} of scenario {failure.scenario!r} "
            f"({len(self.runs)} seeds run): {failure.complaint}; replay it with "
            f"replay(Sender, Receiver, seed={failure.seed}, scenario={failure.scenario!r})"
        )
        if failure.error:
            return first
        run = run_stream(
            self.make_sender,
            self.make_receiver,
            seed=failure.seed,
            scenario=self.scenario,
            trace=True,
        )
        if failure.focus is not None:
            story = [line for line in run.trace if repr(failure.focus) in line]
            excerpt = "\n".join(f"    {line}" for line in story[:lines])
            more = f" ({len(story) - lines} more lines)" if len(story) > lines else ""
            heading = f"Everything that happened to {failure.focus!r}{more}:"
        else:
            excerpt = _excerpt(run.trace, failure.time, lines)
            heading = f"The run, around t = {failure.time:.3f} s:"
        if prop == "budget" and run.sends_per_message > run.scenario.budget:
            by_sender = sum(" send " in line and f" {SENDER} -> " in line for line in run.trace)
            heading = (
                f"The sender sent {by_sender} messages and the receiver "
                f"{run.sent - by_sender}. {heading}"
            )
        return f"{first}\n{heading}\n{excerpt}"


def _excerpt(trace: list[str], time: float, lines: int) -> str:
    """``lines`` trace lines ending just after ``time``."""
    after = [i for i, line in enumerate(trace) if float(line.split(" s ")[0]) > time + 1e-9]
    end = after[0] + 2 if after else len(trace)
    chosen = trace[max(0, end - lines) : end]
    return "\n".join(f"    {line}" for line in chosen) or "    (nothing happened)"


def _check_prop(prop: str) -> None:
    if prop not in PROPERTIES:
        raise ValueError(f"prop must be one of {PROPERTIES}, got {prop!r}")


def check_stream(
    make_sender: Callable[[str], Node],
    make_receiver: Callable[[Callable[[Any], None]], Node],
    *,
    seeds: Iterable[int],
    scenario: str | Scenario = "lossy",
) -> StreamReport:
    """Run ``seeds`` of ``scenario`` with the student's classes; a run is cached per class.

    Args:
        make_sender: the sender class (or any ``f(receiver_name) -> Node``).
        make_receiver: the receiver class (or any ``f(deliver) -> Node``).
        seeds: the seeds to run.
        scenario: a name from ``SCENARIOS`` or a ``Scenario``.

    Returns:
        The report: ``passed(prop)``, ``explain(prop)``.
    """
    spec = _resolve(scenario)
    runs = []
    for seed in seeds:
        key = (make_sender, make_receiver, seed, spec)
        run = _CACHE.get(key)
        if run is None:
            run = run_stream(make_sender, make_receiver, seed=seed, scenario=spec)
            if len(_CACHE) > 5000:
                _CACHE.clear()
            _CACHE[key] = run
        runs.append(run)
    if not runs:
        raise ValueError("seeds must hold at least one seed")
    return StreamReport(spec, runs, make_sender, make_receiver)


def talks_only_over_the_network(
    make_sender: Callable[[str], Node],
    make_receiver: Callable[[Callable[[Any], None]], Node],
) -> str | None:
    """Return a complaint if the receiver processed anything while cut off from the sender.

    Sender and receiver are separate machines: the only way from one to the other is
    ``ctx.send``. With a partition between them for the whole run, a receiver that
    still processes messages got them some other way (a shared object, a global).

    Returns:
        None when nothing was processed, else what went wrong.
    """
    run = run_stream(make_sender, make_receiver, seed=1, scenario="cut")
    if run.error is not None:
        return run.error
    if run.processed:
        return (
            f"with the network cut between sender and receiver for the whole run, the receiver "
            f"still processed {len(run.processed)} message(s): sender and receiver are separate "
            "machines and may talk only through ctx.send (no shared objects or globals)"
        )
    return None


def replay(
    make_sender: Callable[[str], Node],
    make_receiver: Callable[[Callable[[Any], None]], Node],
    *,
    seed: int,
    scenario: str | Scenario = "lossy",
    show: int | None = 60,
) -> StreamRun:
    """Rerun one seed exactly, traced, print its verdicts and the start of its trace.

    Args:
        make_sender: the sender class.
        make_receiver: the receiver class.
        seed: the seed a failure message named.
        scenario: the scenario it named.
        show: how many trace lines to print (None: all; 0: none).

    Returns:
        The run; ``run.trace`` holds every line.
    """
    run = run_stream(make_sender, make_receiver, seed=seed, scenario=scenario, trace=True)
    print(run.scenario.describe())
    print(
        f"seed {seed}: {len(run.processed)} deliver() calls for {len(run.stream)} messages, "
        f"{run.sent} sends ({run.sends_per_message:.2f} per message), ended at t = {run.ended:g} s"
    )
    for prop in PROPERTIES:
        failure = run.failures.get(prop)
        print(f"  {prop:13} {'ok' if failure is None else 'FAILED: ' + failure.complaint}")
    if show != 0:
        lines = run.trace if show is None else run.trace[:show]
        print("\n".join(lines))
        if show is not None and len(run.trace) > show:
            print(f"... {len(run.trace) - show} more lines in run.trace")
    return run
