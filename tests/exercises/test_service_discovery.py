"""The service discovery exercise: structure, graded API, release in sync, validation, grading.

Crafted submissions carry the bugs students really write: a lease that is still live at
exactly ttl seconds, a heartbeat that revives an expired instance, an app that trusts
the request body, a 204 with a body, one round-robin turn shared by every service, a
client that gives up when the registry is down. Each loses exactly the points it should.
The stand-ins the tests use (distlab.exercises.service_discovery) are tested here too.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from distlab.course.grading import GradeReport, check_notebook
from distlab.exercises import run
from distlab.exercises.service_discovery import (
    BASE_URL,
    FakeRegistry,
    FakeRegistryServer,
    capture_log,
)
from tests import submissions
from tests.exercises import nbgrader_checks as checks
from tests.submissions import cell_index, edit_cell, release_path, solution_path

SLUG = "service_discovery"
PART_A = [
    "test_register_and_list",
    "test_expiry",
    "test_heartbeat",
    "test_deregister",
    "test_registry_validation",
]
PART_B = [
    "test_app_register_and_list",
    "test_app_heartbeat_and_delete",
    "test_app_bad_requests",
    "test_app_with_your_registry",
]
PART_C = ["test_round_robin", "test_no_instances", "test_registry_unreachable", "test_end_to_end"]
ALL = PART_A + PART_B + PART_C
FULL_MARKS = 22.0
IMPL = ["impl_registry", "impl_registry_app", "impl_client"]


# Structure --------------------------------------------------------------------------------
def test_part_headings_show_the_points_in_the_metadata() -> None:
    """Parts A, B, C: 8 + 7 + 7 = 22 points, as the headings say."""
    assert checks.points_by_part(SLUG) == {"A": 8.0, "B": 7.0, "C": 7.0}


def test_cells_are_named_split_documented_and_have_visible_and_hidden_tests() -> None:
    """Names not hashes, <= 3 points a cell, docstrings, visible tests first, hidden tests after."""
    checks.check_cells(SLUG)
    cells = checks.grade_cells(checks.notebook(solution_path(SLUG)))
    assert [c.metadata.nbgrader.grade_id for c in cells] == ALL


def test_every_test_cell_checks_the_code_is_the_students_own() -> None:
    """Every cell's hidden tests refuse classes imported, aliased or subclassed from distlab."""
    for c in checks.grade_cells(checks.notebook(solution_path(SLUG))):
        hidden = c.source.split("### BEGIN HIDDEN TESTS")[1]
        assert "__mro__" in hidden and '"distlab"' in hidden, c.metadata.nbgrader.grade_id


def test_solution_regions_sit_inside_the_functions() -> None:
    """Signatures and docstrings stay visible in the release; the bodies are stubs."""
    checks.check_solution_regions(SLUG, IMPL)
    released = checks.notebook(release_path(SLUG))
    registry = checks.cell(released, "impl_registry").source
    assert "def register(self, service: str, instance_id: str, address: str) -> None:" in registry
    assert "_services" not in registry
    client = checks.cell(released, "impl_client").source
    assert 'log = logging.getLogger("discovery")' in client
    assert "async def resolve(self, service: str) -> str:" in client


def _solution_namespace() -> dict[str, Any]:
    nb = checks.notebook(solution_path(SLUG))
    namespace: dict[str, Any] = {}
    for grade_id in ("imports", *IMPL):
        exec(checks.without_markers(checks.cell(nb, grade_id).source), namespace)
    return namespace


def test_the_graded_api_is_exactly_the_issues() -> None:
    """ServiceRegistry(ttl=30.0, *, clock=time.monotonic) and its 4 methods; the app; the client."""
    ns = _solution_namespace()
    registry = ns["ServiceRegistry"]
    params = inspect.signature(registry.__init__).parameters
    assert list(params) == ["self", "ttl", "clock"]
    assert params["ttl"].default == 30.0 and params["clock"].default is time.monotonic
    assert params["clock"].kind is inspect.Parameter.KEYWORD_ONLY
    for method, args in {
        "register": ["self", "service", "instance_id", "address"],
        "heartbeat": ["self", "service", "instance_id"],
        "deregister": ["self", "service", "instance_id"],
        "instances": ["self", "service"],
    }.items():
        assert list(inspect.signature(getattr(registry, method)).parameters) == args, method
    assert list(inspect.signature(ns["create_registry_app"]).parameters) == ["registry"]
    client = ns["DiscoveryClient"]
    assert list(inspect.signature(client.__init__).parameters) == ["self", "http"]
    assert inspect.iscoroutinefunction(client.resolve)


def test_committed_notebooks_are_clean() -> None:
    """No outputs, no execution counts, kernelspec python3, nbgrader metadata kept."""
    checks.check_clean(SLUG)


def test_the_chapter_diagram_opens_the_exercise() -> None:
    """The intro keeps the chapter's Mermaid diagram, as Mermaid source."""
    intro = checks.cell(checks.notebook(release_path(SLUG)), "intro").source
    assert "```mermaid\ngraph TD;\nA[Service Consumer] -->|Request| B[Service Registry];" in intro


@pytest.mark.slow
def test_committed_exercise_matches_a_fresh_release(tmp_path: Path) -> None:
    """exercises/service_discovery/ is exactly what nbgrader generates from solutions/."""
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
    path = tmp_path / "service_discovery.ipynb"
    nbformat.write(submissions.honest(SLUG), path)
    report = check_notebook(path)
    assert report.passed, report.lines()
    assert len(report.tests) == len(ALL)


# Grading crafted submissions ------------------------------------------------------------
def _edit(grade_id: str, old: str, new: str) -> Callable[[], Any]:
    return lambda: edit_cell(submissions.honest(SLUG), grade_id, old, new)


def _reference_import() -> Any:
    """Every solution cell replaced by an import of the course's reference."""
    nb = submissions.honest(SLUG)
    for grade_id, names in [
        ("impl_registry", "ServiceRegistry"),
        ("impl_registry_app", "create_registry_app"),
        ("impl_client", "DiscoveryClient"),
    ]:
        nb.cells[
            cell_index(nb, grade_id)
        ].source = f"from distlab.patterns.discovery import {names}\n"
    return nb


SUBMISSIONS: dict[str, tuple[Callable[[], Any], set[str]]] = {
    "honest": (lambda: submissions.honest(SLUG), set()),
    "release": (lambda: submissions.released(SLUG), set(ALL)),
    # live while elapsed <= ttl: the boundary is tested once, in test_expiry
    "expiry_inclusive": (
        _edit("impl_registry", "if not now - renewed < self.ttl", "if now - renewed > self.ttl"),
        {"test_expiry"},
    ),
    # heartbeat looks the instance up without dropping expired ones: it revives them
    "heartbeat_revives": (
        _edit(
            "impl_registry",
            "        live = self._live(service)\n        if instance_id not in live:\n"
            "            raise KeyError(\n",
            "        live = self._services.get(service, {})\n        if instance_id not in live:\n"
            "            raise KeyError(\n",
        ),
        {"test_heartbeat"},
    ),
    # the body parsed with request.json() and trusted
    "no_json_validation": (
        _edit(
            "impl_registry_app",
            "        try:\n            body = json.loads(await request.body())\n"
            "        except ValueError:\n",
            "        body = await request.json()\n        if False:\n",
        ),
        {"test_app_bad_requests"},
    ),
    "json_204": (
        _edit(
            "impl_registry_app",
            "        return Response(status_code=204)",
            "        return JSONResponse(None, status_code=204)",
        ),
        {"test_app_heartbeat_and_delete"},
    ),
    "global_turn": (
        _edit(
            "impl_client",
            "        turn = self._turns.get(service, 0)\n        self._turns[service] = turn + 1",
            '        turn = self._turns.get("all", 0)\n        self._turns["all"] = turn + 1',
        ),
        {"test_round_robin"},
    ),
    # only the registry's 5xx answers are handled; a refused connection escapes
    "no_fallback": (
        _edit(
            "impl_client",
            "        except (httpx.TransportError, httpx.HTTPStatusError) as exc:",
            "        except httpx.HTTPStatusError as exc:",
        ),
        {"test_registry_unreachable"},
    ),
    # The grading sandbox hides the course's discovery module (nbgrader_config.py).
    "reference_import": (_reference_import, set(ALL)),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """Every crafted submission graded in one batch: ``name -> report``."""
    crafted = {name: craft for name, (craft, _) in SUBMISSIONS.items()}
    folder = tmp_path_factory.mktemp("discovery_submissions")
    return submissions.grade_crafted(SLUG, crafted, folder, pool=len(SUBMISSIONS))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUBMISSIONS))
def test_each_submission_loses_exactly_the_points_of_its_bugs(
    graded: dict[str, GradeReport], name: str
) -> None:
    """Full marks for the reference answer; each bug fails its own tests and no other."""
    report = graded[name]
    failing = SUBMISSIONS[name][1]
    tests = {t.grade_id: t for t in report.tests}
    assert set(tests) == set(ALL)
    assert {g for g, t in tests.items() if not t.passed} == failing, report.lines()
    assert report.max_score == FULL_MARKS
    assert report.score == FULL_MARKS - sum(tests[g].max_points for g in failing)


@pytest.mark.slow
def test_the_failures_say_what_to_fix(graded: dict[str, GradeReport]) -> None:
    """Each failing test's message points at the rule that was broken."""
    message = {n: {t.grade_id: t.message for t in r.tests} for n, r in graded.items()}
    assert "less than ttl seconds ago" in message["expiry_inclusive"]["test_expiry"]
    assert "should raise KeyError" in message["heartbeat_revives"]["test_heartbeat"]
    assert "JSONDecodeError" in message["no_json_validation"]["test_app_bad_requests"]
    assert "a 204 answer has no body" in message["json_204"]["test_app_heartbeat_and_delete"]
    assert "keep one turn per service" in message["global_turn"]["test_round_robin"]
    assert (
        "should serve the last list it got, not raise ConnectError"
        in (message["no_fallback"]["test_registry_unreachable"])
    )
    # The sandbox refused the import itself (without it, the MRO checks would fail them).
    assert "NameError" in message["reference_import"]["test_register_and_list"]
    assert "NameError" in message["reference_import"]["test_round_robin"]


# The stand-ins ----------------------------------------------------------------------------
def test_the_fake_registry_follows_the_contract_and_records_calls() -> None:
    """Registration order, KeyError for unknown instances, ValueError for empty names."""
    registry = FakeRegistry()
    registry.register("orders", "o1", "http://a")
    registry.register("orders", "o2", "http://b")
    registry.heartbeat("orders", "o1")
    assert registry.instances("orders") == ["http://a", "http://b"]
    registry.deregister("orders", "o1")
    with pytest.raises(KeyError):
        registry.deregister("orders", "o1")
    with pytest.raises(KeyError):
        registry.heartbeat("payments", "o2")
    with pytest.raises(ValueError, match="address"):
        registry.register("orders", "o3", "")
    assert registry.calls[:3] == [
        ("register", "orders", "o1", "http://a"),
        ("register", "orders", "o2", "http://b"),
        ("heartbeat", "orders", "o1"),
    ]


def test_the_fake_registry_server_answers_fails_and_counts() -> None:
    """up: the lists; down: ConnectError; error: 503; other routes: 404."""

    async def main() -> list[Any]:
        server = FakeRegistryServer({"orders": ["http://a"]})
        seen: list[Any] = []
        async with server.client() as http:
            assert str(http.base_url).rstrip("/") == BASE_URL
            seen.append((await http.get("/services/orders")).json())
            seen.append((await http.get("/services/none")).json()["instances"])
            seen.append((await http.put("/services/orders/o1")).status_code)
            server.mode = "error"
            seen.append((await http.get("/services/orders")).status_code)
            server.mode = "down"
            with pytest.raises(httpx.ConnectError):
                await http.get("/services/orders")
        seen.append(server.requests)
        return seen

    assert run(main) == [{"service": "orders", "instances": ["http://a"]}, [], 404, 503, 5]


def test_capture_log_collects_warnings_of_a_logger_and_its_children_then_lets_go() -> None:
    """Records at WARNING and above; nothing after the block; the logger's level restored."""
    logger = logging.getLogger("discovery.test")
    with capture_log("discovery") as records:
        logger.warning("serving the cached list of %r", "orders")
        logger.info("not collected")
    logger.warning("after the block")
    assert [r.getMessage() for r in records] == ["serving the cached list of 'orders'"]
    assert logging.getLogger("discovery").level == logging.NOTSET
