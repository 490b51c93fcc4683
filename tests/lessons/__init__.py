"""Tests of the lessons' modules; helpers every lesson's tests use to read its notebook."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def lesson_cells(lesson: Path, kind: str) -> list[str]:
    """The sources of the notebook ``lesson``'s cells of one kind (``"code"``, ``"markdown"``)."""
    return [
        "".join(c["source"])
        for c in json.loads(lesson.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == kind
    ]


def missing_calls(lesson: Path, calls: Iterable[str]) -> list[str]:
    """The ``calls`` that appear verbatim in none of ``lesson``'s code cells."""
    source = "\n".join(lesson_cells(lesson, "code"))
    return [call for call in calls if call not in source]
