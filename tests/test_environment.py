"""environment.yml (conda) and pyproject.toml (pip) describe the same environment."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests import REPO


def normalise(requirement: str) -> tuple[str, str]:
    """Split 'Name>=1,<2' into ('name', '>=1,<2') with PEP 503 name normalisation."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).replace(" ", "")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def conda_env() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def test_environment_has_the_course_name_and_python():
    """The conda env is called distlab and asks for the same Python as pyproject."""
    env = conda_env()
    assert env["name"] == "distlab"
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert python == ["python" + pyproject()["project"]["requires-python"]]


def test_environment_and_pyproject_list_the_same_dependencies():
    """Same packages, same version ranges, in both files."""
    conda = dict(
        normalise(d)
        for d in conda_env()["dependencies"]
        if isinstance(d, str) and not d.startswith(("python", "pip"))
    )
    pip = dict(normalise(d) for d in pyproject()["project"]["dependencies"])
    assert conda == pip


def test_environment_installs_the_course_package():
    """The pip section installs distlab itself (editable), so lessons can import it."""
    pip_section = [d for d in conda_env()["dependencies"] if isinstance(d, dict)]
    assert pip_section == [{"pip": ["-e ."]}]


def test_required_packages_are_declared():
    """The course's required packages (jupyter, nbgrader, ipywidgets, httpx) are there."""
    names = {normalise(d)[0] for d in pyproject()["project"]["dependencies"]}
    assert {"jupyterlab", "notebook", "nbgrader", "ipywidgets", "httpx"} <= names
