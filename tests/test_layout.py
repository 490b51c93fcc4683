"""The repository's layout: one slug per topic, tests mirror the package, no upward import.

    errors < sim < patterns < services < lessons, exercises
                                    (a module imports only its own layer or lower ones)
    course                          (the tooling, beside the layers: errors, sim and itself)

A newcomer finds the code behind a lesson by its slug, and the test of a module by its path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests import REPO

PACKAGE = REPO / "src" / "distlab"
LESSON = re.compile(r"^(\d\d)_([a-z0-9_]+)\.ipynb$")
# Lesson modules that serve several lessons rather than one.
SHARED_LESSON_MODULES = {"plots", "checks"}
# Layers by rank: a module may import its own layer and the ones below it.
RANK = {"errors": 0, "sim": 1, "patterns": 2, "services": 3, "lessons": 4, "exercises": 4}
# The course's tooling sits beside the layers: it may use errors and sim (and itself).
COURSE_MAY_IMPORT = {"errors", "sim", "course"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _lessons() -> dict[str, str]:
    """``slug -> NN_slug`` for every lesson notebook."""
    found = {}
    for path in sorted((REPO / "lessons").glob("*.ipynb")):
        match = LESSON.match(path.name)
        assert match, f"lessons/{path.name} is not named NN_slug.ipynb"
        found[match.group(2)] = path.stem
    return found


def _layer(module: str) -> str:
    """The layer of a dotted distlab module name (``distlab.sim.vtime`` -> ``sim``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _distlab_imports(path: Path) -> list[str]:
    """Every distlab module imported anywhere in ``path`` (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [n for n in names if n == "distlab" or n.startswith("distlab.")]


def test_the_layout_checks_something() -> None:
    """The package and the lessons exist (guards against a vacuous pass)."""
    assert len(_modules()) > 20
    assert {"start_here", "unreliable_networks", "circuit_breaker"} <= set(_lessons())


def test_every_lesson_has_its_quiz_file() -> None:
    """lessons/NN_slug.ipynb -> quizzes/NN_slug.yaml."""
    missing = [f"{stem}.yaml" for stem in _lessons().values()]
    missing = [name for name in missing if not (REPO / "quizzes" / name).is_file()]
    assert missing == []


def test_lesson_modules_are_named_by_a_lesson_slug() -> None:
    """Every distlab/lessons/slug.py belongs to lessons/NN_slug.ipynb (or is shared)."""
    modules = {p.stem for p in (PACKAGE / "lessons").glob("*.py") if p.stem != "__init__"}
    orphans = sorted(modules - set(_lessons()) - SHARED_LESSON_MODULES)
    assert orphans == [], "lesson modules with no lesson of that slug"


@pytest.mark.parametrize("slug", sorted(_lessons()))
def test_a_lesson_uses_only_its_own_lesson_module(slug: str) -> None:
    """A lesson imports distlab.lessons.<its slug> (and shared modules), which must exist."""
    source = (REPO / "lessons" / f"{_lessons()[slug]}.ipynb").read_text(encoding="utf-8")
    used = set(re.findall(r"distlab\.lessons\.([a-z0-9_]+)", source))
    assert used <= {slug} | SHARED_LESSON_MODULES, f"lesson {slug} uses {sorted(used)}"
    if slug in used:
        assert (PACKAGE / "lessons" / f"{slug}.py").is_file()


def test_every_module_has_a_test_module_at_the_mirrored_path() -> None:
    """src/distlab/a/b.py -> tests/a/test_b.py (a private _b.py -> test_b.py)."""
    missing = []
    for path in _modules():
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(PACKAGE)
        test = REPO / "tests" / relative.parent / f"test_{path.stem.lstrip('_')}.py"
        if not test.is_file():
            missing.append(f"{relative} -> {test.relative_to(REPO)}")
    assert missing == []


def test_every_test_folder_mirrors_a_package_folder() -> None:
    """tests/<folder>/ exists only for a package folder (tests/exercises: the graded exercises)."""
    folders = {p.relative_to(REPO / "tests") for p in (REPO / "tests").rglob("*") if p.is_dir()}
    folders = {f for f in folders if "__pycache__" not in f.parts}
    stray = [str(f) for f in folders if f.parts[0] != "exercises" and not (PACKAGE / f).is_dir()]
    assert stray == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_goes_up_a_layer(path: Path) -> None:
    """sim imports no pattern, lesson or course code; patterns no lesson or course code..."""
    relative = path.relative_to(PACKAGE)
    layer = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    if layer == "__init__":
        return  # the package's front door re-exports from every layer
    bad = []
    for name in _distlab_imports(path):
        target = _layer(name)
        if target in ("", "__version__"):
            continue  # `import distlab`: the front door
        if layer == "course":
            if target not in COURSE_MAY_IMPORT:
                bad.append(name)
        elif target == "course" or RANK.get(target, 99) > RANK.get(layer, -1):
            bad.append(name)
    assert bad == [], f"{relative} ({layer}) imports a higher layer"


def test_the_lower_layers_never_import_the_front_door() -> None:
    """sim and patterns never `import distlab` (it would pull in every layer)."""
    bad = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        if p.relative_to(PACKAGE).parts[0] in ("sim", "patterns", "errors.py")
        and "distlab" in _distlab_imports(p)
    ]
    assert bad == []


def test_exercise_modules_are_named_by_an_exercise_slug() -> None:
    """Every distlab/exercises/slug.py belongs to solutions/slug/ (machinery its tests run on)."""
    folder = PACKAGE / "exercises"
    modules = (
        {p.stem for p in folder.glob("*.py") if p.stem != "__init__"} if folder.is_dir() else set()
    )
    exercises = {p.name for p in (REPO / "solutions").iterdir() if p.is_dir()}
    assert sorted(modules - exercises) == []


def test_every_exercise_has_its_release_and_its_tests() -> None:
    """solutions/slug/slug.ipynb -> exercises/slug/slug.ipynb and tests/exercises/test_slug.py."""
    problems = []
    for folder in sorted(p for p in (REPO / "solutions").iterdir() if p.is_dir()):
        slug = folder.name
        for need in (
            folder / f"{slug}.ipynb",
            REPO / "exercises" / slug / f"{slug}.ipynb",
            REPO / "tests" / "exercises" / f"test_{slug}.py",
        ):
            if not need.is_file():
                problems.append(str(need.relative_to(REPO)))
    assert problems == []
