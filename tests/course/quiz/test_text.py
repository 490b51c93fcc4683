"""render_inline: quiz text is escaped, then backticks become code.

ipywidgets work headless: set `.value`, call `button.click()`, read the HTML widgets.
DISTLAB_HOME points at each test's own folder (tests/conftest.py), so no test sees a
real results file.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from distlab.course.quiz import (
    build,
    render_inline,
)
from tests import REPO

CHAPTER_QUIZ = REPO / "quizzes" / "14_3_2_chapter_quiz.yaml"


# --- grading and feedback -------------------------------------------------------------


def test_render_inline_escapes_then_marks_code() -> None:
    """HTML in quiz text is shown as text; `backticks` become <code>, escaped inside too."""
    assert render_inline("1 < 2 & 3 > 2") == "1 &lt; 2 &amp; 3 &gt; 2"
    assert render_inline("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert render_inline("call `time.time()` now") == "call <code>time.time()</code> now"
    assert render_inline("`<div>`") == "<code>&lt;div&gt;</code>"
    assert render_inline("a lone ` stays") == "a lone ` stays"


def test_results_path_and_notices_are_escaped(
    tmp_path: Path, sample_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A results folder named with markup shows as text in the location line and in notices."""
    home = tmp_path / "<b>x & y"
    home.mkdir()
    (home / "quiz_results.json").write_text("{not json")
    monkeypatch.setenv("DISTLAB_HOME", str(home))
    view = build(sample_path)
    assert html.escape(str(home)) in view.location.value
    assert "damaged" in view.notice.value
    assert html.escape(str(home)) in view.notice.value
    for value in (view.location.value, view.notice.value):
        assert "<b>" not in value
        assert "& y" not in value
