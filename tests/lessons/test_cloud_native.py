"""The numbers lesson 09 (cloud-native) states, recomputed and checked against theory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import kubernetes_validate
import matplotlib.pyplot as plt
import pytest

from distlab.course.quiz import load_quiz
from distlab.lessons import cloud_native as cn
from distlab.lessons.cloud_native import (
    LIVENESS,
    READINESS,
    STATUS_DELAY,
    TERMINATION,
    Crash,
    DeletePod,
    Hang,
    LoseNode,
    PodView,
    Probe,
    Update,
    build_cache,
    check_reconcile,
    check_restart_delay,
    plot_run,
    reconcile_replicas,
    restart_delay,
    simulate,
)
from tests import REPO
from tests.lessons import lesson_cells, missing_calls

LESSON = REPO / "lessons" / "09_cloud_native.ipynb"
DOCKERFILE = (REPO / "deploy" / "Dockerfile").read_text()
RATE = 10.0
STARTUP = 8.0

# Source snippets of the lesson whose results the tests below recompute.
CALLS = [
    'Path("../deploy/Dockerfile").read_text()',
    'edit = ["src/distlab/services/ecommerce/orders.py"]\n'
    'show(build_cache(dockerfile, edit, stage="build"))',
    "show(build_cache(obvious, edit))",
    "steady = simulate(until=60)",
    'plain = simulate([Crash(30, "web-2")], orchestrator=False)',
    'replaced = simulate([DeletePod(30, "web-1")], reconcile=mine)',
    'healed = simulate([Crash(30, "web-2")])',
    'no_probes = simulate([Hang(32, "web-2")], readiness=None, liveness=None)',
    'readiness_only = simulate([Hang(32, "web-2")], liveness=None)',
    'both = simulate([Hang(32, "web-2")])',
    'lost = simulate([LoseNode(60, "node-2")], replicas=6, until=480)',
    'lost_plain = simulate([LoseNode(60, "node-2")], replicas=6, until=480, orchestrator=False)',
    'recreate = simulate([Update(20, "v2")], strategy="Recreate")',
    'unguarded = simulate([Update(20, "v2")], readiness=None)',
    'rolling = simulate([Update(20, "v2")])',
    'fast = simulate([Update(20, "v2")], max_surge=3)',
    "check_reconcile(reconcile)",
    "check_restart_delay(restart_delay)",
]


def test_lesson_makes_these_calls() -> None:
    """Every call recomputed here appears verbatim in the lesson."""
    missing = missing_calls(LESSON, CALLS)
    assert not missing, f"the lesson no longer makes these calls: {missing}"


def test_lesson_reads_the_real_dockerfile() -> None:
    """The notebook runs in lessons/, so ../deploy/Dockerfile is the repository's Dockerfile."""
    assert (LESSON.parent / "../deploy/Dockerfile").resolve() == REPO / "deploy" / "Dockerfile"


# 2. The image's layers -----------------------------------------------------------------------
def reruns(steps: list[cn.BuildStep]) -> list[str]:
    return [s.instruction for s in steps if s.rerun]


def test_editing_src_reruns_the_last_two_of_nine_steps() -> None:
    """Section 2: the dependency install stays cached when only src/ changes."""
    steps = build_cache(DOCKERFILE, ["src/distlab/services/ecommerce/orders.py"], stage="build")
    assert len(steps) == 9
    assert reruns(steps) == ["COPY src/ src/", "RUN pip install --no-cache-dir --no-deps ."]


def test_editing_requirements_reruns_five_of_nine_steps() -> None:
    """Section 2's Try it: a dependency change reinstalls the dependencies and all after."""
    steps = build_cache(DOCKERFILE, ["deploy/requirements.txt"], stage="build")
    assert len(reruns(steps)) == 5
    assert reruns(steps)[1] == "RUN pip install --no-cache-dir -r deploy/requirements.txt"


def test_copying_everything_first_reruns_the_dependency_install() -> None:
    """Section 2: with COPY . . first, 3 of 5 steps rerun, the dependency install among them."""
    source = next(c for c in lesson_cells(LESSON, "code") if c.startswith("obvious = "))
    obvious = source.split('"""')[1]
    steps = build_cache(obvious, ["src/distlab/services/ecommerce/orders.py"])
    assert len(steps) == 5
    assert len(reruns(steps)) == 3
    assert any("-r deploy/requirements.txt" in s for s in reruns(steps))


def test_nothing_reruns_when_an_uncopied_file_changes() -> None:
    """A file the Dockerfile never copies (a notebook) invalidates nothing."""
    steps = build_cache(DOCKERFILE, ["lessons/09_cloud_native.ipynb"], stage="build")
    assert reruns(steps) == []


def test_build_cache_names_the_missing_stage() -> None:
    """An unknown stage is an error that lists the stages."""
    with pytest.raises(ValueError, match=r"no stage 'nope'.*'build'"):
        build_cache(DOCKERFILE, [], stage="nope")


# 3. Load balancing and no orchestrator ------------------------------------------------------------
def test_round_robin_spreads_a_quiet_minute_evenly() -> None:
    """Section 3: 600 requests, 200 per pod, none failed."""
    steady = simulate(until=60)
    assert steady.outcomes() == {"ok": 600}
    assert steady.served_by() == {"web-1": 200, "web-2": 200, "web-3": 200}


def test_a_crash_with_no_orchestrator_fails_a_third_of_requests_for_ever() -> None:
    """Section 3: (120 - 30) s x 10 req/s / 3 pods = 300 refused, and 2 pods at the end."""
    plain = simulate([Crash(30, "web-2")], orchestrator=False)
    assert plain.failed() == pytest.approx((120 - 30) * RATE / 3, abs=1)
    assert plain.failed() == 300
    assert plain.serving_at(119) == 2
    assert plain.recovered(30) is None


# 4. The reconciliation loop -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("desired", "pods", "expected"),
    [
        (3, [PodView("a", True), PodView("b", True)], (1, [])),
        (3, [PodView("a", True), PodView("b", True), PodView("c", True, True)], (1, [])),
        (1, [PodView("a", True, created=0), PodView("b", True, created=5)], (0, ["b"])),
        (1, [PodView("a", False, created=0), PodView("b", True, created=5)], (0, ["a"])),
        (0, [], (0, [])),
        (2, [PodView("a", True), PodView("b", True)], (0, [])),
    ],
)
def test_reconcile_replicas(
    desired: int, pods: list[PodView], expected: tuple[int, list[str]]
) -> None:
    """Create what is missing; delete the surplus, unready first, then newest."""
    assert reconcile_replicas(desired, pods) == expected


def test_a_deleted_pod_is_replaced_without_a_failed_request() -> None:
    """Section 4: replacement created at once, ready 10 s later (first probe after 8 s startup)."""
    replaced = simulate([DeletePod(30, "web-1")])
    assert replaced.outcomes() == {"ok": 1200}
    assert "t =   30.0 s  web-4 (v1) created on node-1" in replaced.log()
    assert replaced.recovered(30) == 30 + math.ceil(STARTUP / READINESS.period) * READINESS.period


def test_the_students_reconcile_drives_the_controller() -> None:
    """A reconcile that never creates anything leaves the deleted pod unreplaced."""
    lazy = simulate([DeletePod(30, "web-1")], reconcile=lambda desired, pods: (0, []))
    assert lazy.recovered(30) is None
    assert lazy.ready_at(119) == 2


# 5. A crash, healed -------------------------------------------------------------------------------
def test_a_crash_costs_the_requests_of_one_status_delay() -> None:
    """Section 5: refused only until the kubelet notices (1 s x 10 req/s / 3), back at 41 s."""
    healed = simulate([Crash(30, "web-2")])
    assert healed.failed() == pytest.approx(STATUS_DELAY * RATE / 3, abs=1)
    assert healed.failed() == 3
    # exit noticed after 1 s, restarted at once, 8 s to start, then the next readiness probe
    start = 30 + STATUS_DELAY
    assert healed.recovered(30) == start + math.ceil(STARTUP / READINESS.period) * READINESS.period
    assert healed.recovered(30) == 41


def test_restart_delay_follows_the_kubelet_back_off() -> None:
    """0, 10, 20, 40, 80, 160, then 300 s (kubernetes.io, Pod Lifecycle)."""
    assert [restart_delay(n) for n in range(1, 10)] == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert restart_delay(10**6) == 300


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_restart_delay_refuses_what_is_not_a_restart_number(bad: object) -> None:
    """The message names the parameter."""
    with pytest.raises(ValueError, match="restart must be"):
        restart_delay(bad)  # type: ignore[arg-type]


def test_a_crash_loop_waits_longer_each_time() -> None:
    """A pod that crashes again as soon as it serves is restarted after 0, 10, 20, 40 s."""
    events = [Crash(10, "web-1"), Crash(25, "web-1"), Crash(50, "web-1"), Crash(90, "web-1")]
    run = simulate(events, until=200)
    delays = [text for _, text in run.events if "restarts the container in" in text]
    assert [d.split(" in ")[1] for d in delays] == ["0 s", "10 s", "20 s", "40 s"]


# 6. A hung pod ------------------------------------------------------------------------------------
def test_a_hung_pod_without_probes_fails_a_third_of_requests_for_ever() -> None:
    """Section 6: (120 - 32) s x 10 / 3 = 293 timeouts."""
    run = simulate([Hang(32, "web-2")], readiness=None, liveness=None)
    assert run.outcomes()["timeout"] == pytest.approx((120 - 32) * RATE / 3, abs=1)
    assert run.failed() == 293


def test_readiness_alone_stops_the_failures_but_never_restores_the_pod() -> None:
    """Section 6: detected after 2 misses 5 s apart (between 5 and 10 s), then 2 pods for ever."""
    run = simulate([Hang(32, "web-2")], liveness=None)
    low = (READINESS.failures - 1) * READINESS.period * RATE / 3
    high = READINESS.detects_within * RATE / 3
    assert low - 1 <= run.failed() <= high + 1
    assert run.failed() == 26
    assert run.serving_at(119) == 2 and run.recovered(32) is None
    assert "t =   40.0 s  web-2 not ready: 2 readiness probes failed" in run.log()


def test_liveness_restarts_the_hung_pod() -> None:
    """Section 6: killed within 20-30 s of the hang (t = 58 s), serving again at t = 69 s."""
    run = simulate([Hang(32, "web-2")])
    killed = next(t for t, text in run.events if "liveness probes failed" in text)
    assert (LIVENESS.failures - 1) * LIVENESS.period < killed - 32 <= LIVENESS.detects_within
    assert killed == 58
    assert run.failed() == 26
    assert run.recovered(32) == 69
    assert run.serving_at(119) == 3


# 7. A lost node -----------------------------------------------------------------------------------
def test_a_lost_node_times_out_its_share_until_the_grace_period_ends() -> None:
    """Section 7: 40 s x 10 req/s x 2/6 = 133 timeouts, none after; replaced after 300 s more."""
    lost = simulate([LoseNode(60, "node-2")], replicas=6, until=480)
    assert lost.failed(60, 100) == pytest.approx(cn.NODE_GRACE * RATE * 2 / 6, abs=1)
    assert lost.failed(60, 100) == 133
    assert lost.failed(100) == 0
    replaced = 60 + cn.NODE_GRACE + cn.EVICTION_AFTER
    assert replaced == 400
    assert lost.recovered(60) == replaced + math.ceil(STARTUP / READINESS.period) * READINESS.period
    assert lost.recovered(60) == 410
    assert lost.ready_at(200) == 4


def test_a_lost_node_without_orchestrator_fails_for_ever() -> None:
    """Section 7: (480 - 60) s x 10 x 2/6 = 1400 timeouts."""
    run = simulate([LoseNode(60, "node-2")], replicas=6, until=480, orchestrator=False)
    assert run.outcomes()["timeout"] == 1400


# 8. Rolling updates -------------------------------------------------------------------------------
def test_recreate_leaves_the_service_empty() -> None:
    """Section 8: empty from t = 20 s for termination + startup + probe wait: 11 s, 110 requests."""
    run = simulate([Update(20, "v2")], strategy="Recreate")
    gap = TERMINATION + math.ceil(STARTUP / READINESS.period) * READINESS.period
    assert run.outcomes()["no endpoints"] == gap * RATE == 110


def test_a_rolling_update_without_readiness_refuses_requests() -> None:
    """Section 8: each of 3 new pods gets 1/4 to 1/3 of 10 req/s during its 8 s start."""
    run = simulate([Update(20, "v2")], readiness=None)
    assert 3 * STARTUP * RATE / 4 <= run.failed() <= 3 * STARTUP * RATE / 3
    assert run.outcomes()["refused"] == 73


def test_a_rolling_update_gated_by_readiness_fails_nothing() -> None:
    """Section 8: 0 failures; the last old pod goes at t = 52 s (about 11 s a pod)."""
    run = simulate([Update(20, "v2")])
    assert run.outcomes() == {"ok": 1200}
    deleted = [t for t, text in run.events if "deleted (rolling update" in text]
    assert deleted == [30, 41, 52]
    assert all(s.ready >= 3 for s in run.samples)
    assert max(s.pods for s in run.samples) == 4  # maxSurge 1


def test_surge_of_three_replaces_every_pod_at_once() -> None:
    """Section 8's Try it: 0 failures, done at t = 30 s."""
    run = simulate([Update(20, "v2")], max_surge=3)
    assert run.outcomes() == {"ok": 1200}
    assert max(t for t, text in run.events if "deleted" in text) == 30


def test_max_unavailable_lets_the_update_go_below_the_desired_count() -> None:
    """maxSurge 0, maxUnavailable 1: never more than 3 pods, sometimes only 2 ready, no failure."""
    run = simulate([Update(20, "v2")], max_surge=0, max_unavailable=1)
    assert max(s.pods for s in run.samples) == 3
    assert min(s.ready for s in run.samples if s.t > 20) == 2
    assert run.failed() == 0


# Validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"replicas": 0}, "replicas"),
        ({"nodes": 0}, "nodes"),
        ({"max_surge": -1}, "max_surge"),
        ({"max_surge": 0, "max_unavailable": 0}, "max_surge and max_unavailable"),
        ({"until": 0}, "until"),
        ({"startup": float("nan")}, "startup"),
        ({"rate": -1}, "rate"),
        ({"strategy": "BlueGreen"}, "strategy"),
        ({"events": [Crash(500, "web-1")]}, "outside the run"),
        ({"events": ["crash"]}, "events must be"),
    ],
)
def test_simulate_names_the_bad_option(options: dict[str, object], name: str) -> None:
    """A bad option is a ValueError whose message names it."""
    with pytest.raises(ValueError, match=name):
        simulate(**options)  # type: ignore[arg-type]


def test_an_event_for_a_missing_pod_is_logged_not_fatal() -> None:
    """Crashing a pod that does not exist changes nothing and says so."""
    run = simulate([Crash(10, "web-9")], until=20)
    assert run.failed() == 0
    assert "web-9 does not exist" in run.log()


@pytest.mark.parametrize(
    ("options", "match"),
    [({"period": 0}, "period"), ({"failures": 0}, "failures"), ({"timeout": 20}, "timeout")],
)
def test_probe_names_the_bad_field(options: dict[str, float], match: str) -> None:
    """A probe with an impossible setting is refused."""
    with pytest.raises(ValueError, match=match):
        Probe(**options)  # type: ignore[arg-type]


# "Your turn" checkers -----------------------------------------------------------------------------
def stub(*args: object) -> object:
    raise NotImplementedError


def test_restart_delay_checker() -> None:
    """The reference passes, the stub is not done, and typical bugs get their own message."""
    assert check_restart_delay(restart_delay).passed
    assert check_restart_delay(stub).status == "not_done"
    no_cap = check_restart_delay(lambda n: 0 if n == 1 else 10 * 2 ** (n - 2))
    assert no_cap.status == "wrong" and "capped at 300" in no_cap.message
    from_ten = check_restart_delay(lambda n: min(10 * 2 ** (n - 1), 300))
    assert "first restart is immediate" in from_ten.message
    off_by_one = check_restart_delay(lambda n: 0 if n == 1 else min(10 * 2 ** (n - 1), 300))
    assert "restart_delay(2) should be 10" in off_by_one.message
    crashes = check_restart_delay(lambda n: [][n])
    assert crashes.status == "error" and "IndexError" in crashes.message


def test_reconcile_checker() -> None:
    """The reference passes, the stub is not done, and typical bugs get their own message."""
    assert check_reconcile(reconcile_replicas).passed
    assert check_reconcile(stub).status == "not_done"

    def counts_terminating(desired: int, pods: list[PodView]) -> tuple[int, list[str]]:
        return max(0, desired - len(pods)), [p.name for p in pods[desired:]]

    assert "terminating pod no longer counts" in check_reconcile(counts_terminating).message

    def oldest_first(desired: int, pods: list[PodView]) -> tuple[int, list[str]]:
        alive = [p for p in pods if not p.terminating]
        surplus = max(0, len(alive) - desired)
        return max(0, desired - len(alive)), [p.name for p in alive[:surplus]]

    assert "not ready first" in check_reconcile(oldest_first).message

    def returns_list(desired: int, pods: list[PodView]) -> object:
        return [desired - len(pods)]

    assert "return a pair" in check_reconcile(returns_list).message  # type: ignore[arg-type]


# Plot, lesson text, quiz, facts -------------------------------------------------------------------
def test_plot_has_labelled_axes_and_every_second() -> None:
    """Two panels: pods (4 lines, legend) and failed requests per second (one bar a second)."""
    run = simulate([Crash(30, "web-2")], orchestrator=False, until=60)
    top, bottom = plot_run(run, title="t")
    try:
        assert top.get_ylabel() == "pods"
        assert len(top.get_lines()) == 4 and top.get_legend() is not None
        assert bottom.get_xlabel() == "time (s)"
        assert bottom.get_ylabel() == "failed requests / s"
        heights = [p.get_height() for p in bottom.patches]
        assert len(heights) == 60 and sum(heights) == run.failed()
    finally:
        plt.close("all")


def test_lesson_prose_quotes_the_computed_numbers() -> None:
    """Every number the prose states appears in the lesson's markdown as tested above."""
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    for claim in [
        "Only the last 2 of 9 steps run again",
        "Now 3 of 5 steps run again",
        "5 of 9 steps run again",
        "All 600 requests succeed, and round-robin gives each pod exactly 200",
        "300 failed requests in 90 s",
        "joins the Service at t = 40 s",
        "Not one of the 1200 requests fails",
        "3 requests fail instead of 300",
        "lets it back in at t = 41 s",
        "(10s, 20s, 40s, …), that is capped at 300 seconds (5 minutes)",
        "Without probes, 293 requests time out",
        "With a readiness probe alone, 26 time out",
        "(at t = 40 s)",
        "killed at t = 58 s",
        "it serves again from t = 69 s",
        "between 5 and 10 s after the hang",
        "between 20 and 30 s",
        "133 of them",
        "At t = 100 s the node is declared NotReady",
        "The replacements start only at t = 400 s",
        "`tolerationSeconds=300`",
        "They serve from t = 410 s",
        "1400 failed requests in these 480 s",
        "`Recreate` leaves the Service empty for 11 s: 110 requests",
        "refuses 73 requests",
        "With the readiness probe, 0 requests fail",
        "The update takes until t = 52 s, one pod about every 11 s",
        "it finishes at t = 30 s",
    ]:
        assert claim in text, claim


def schema_description(definition: str, field: str) -> str:
    """A field's description in the Kubernetes 1.34 OpenAPI schema (kubernetes-validate's copy)."""
    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.34.0-local"
    defs = json.loads((folder / "_definitions.json").read_text())["$defs"]
    description: str = defs[definition]["properties"][field]["description"]
    return description


def test_kubernetes_defaults_in_the_lesson_match_the_v1_34_api() -> None:
    """The defaults table of section 9 says what the Kubernetes 1.34 API reference says."""
    probe = "io.k8s.api.core.v1.Probe"
    assert "Default to 10 seconds" in schema_description(probe, "periodSeconds")
    assert "Defaults to 1 second" in schema_description(probe, "timeoutSeconds")
    assert "Defaults to 3" in schema_description(probe, "failureThreshold")
    assert "Defaults to 1" in schema_description(probe, "successThreshold")
    rolling = "io.k8s.api.apps.v1.RollingUpdateDeployment"
    assert "Defaults to 25%" in schema_description(rolling, "maxSurge")
    assert "Defaults to 25%" in schema_description(rolling, "maxUnavailable")
    assert "Default to Always" in schema_description("io.k8s.api.core.v1.PodSpec", "restartPolicy")
    text = "\n".join(lesson_cells(LESSON, "markdown"))
    assert (
        "`periodSeconds` 10, `timeoutSeconds` 1, `failureThreshold` 3, `successThreshold` 1, "
        "`initialDelaySeconds` 0"
    ) in text
    assert "`RollingUpdate`, `maxSurge` 25 %, `maxUnavailable` 25 %" in text
    assert "`Always`; back-off 10 s, doubling, capped at 300 s" in text


def test_the_lessons_probes_are_those_of_the_manifests() -> None:
    """READINESS and LIVENESS are deploy/k8s's probes (period, failures, timeout)."""
    import yaml

    deployment = next(
        d
        for d in yaml.safe_load_all((REPO / "deploy" / "k8s" / "base" / "orders.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for probe, field in [(READINESS, "readinessProbe"), (LIVENESS, "livenessProbe")]:
        spec = container[field]
        assert (probe.period, probe.failures, probe.timeout) == (
            spec["periodSeconds"],
            spec["failureThreshold"],
            spec["timeoutSeconds"],
        )


def test_lesson_has_two_your_turn_cells_and_ends_with_its_quiz() -> None:
    """Two stubs checked on the spot; the last code cell shows quiz 09_cloud_native (4-6 qs)."""
    code = lesson_cells(LESSON, "code")
    stubs = [c for c in code if "raise NotImplementedError" in c]
    assert len(stubs) == 2
    assert all(c.rstrip().splitlines()[-1].startswith("check_") for c in stubs)
    assert code[-1].strip() == 'quiz.show("09_cloud_native")'
    assert 4 <= len(load_quiz("09_cloud_native").questions) <= 6


def test_every_prediction_comes_before_the_cell_that_reveals_it() -> None:
    """Each prediction of the quiz file is shown by quiz.predict, just before its reveal."""
    code = lesson_cells(LESSON, "code")
    reveals = {
        "layers_rerun": 'show(build_cache(dockerfile, edit, stage="build"))',
        "crash_healed": 'healed = simulate([Crash(30, "web-2")])',
        "hung_pod_back": 'both = simulate([Hang(32, "web-2")])',
        "rolling_failures": 'rolling = simulate([Update(20, "v2")])',
    }
    assert {p.id for p in load_quiz("09_cloud_native").predictions} == set(reveals)
    for prediction, reveal in reveals.items():
        shown = code.index(f'quiz.predict("09_cloud_native", "{prediction}")')
        assert reveal in code[shown + 1], prediction
