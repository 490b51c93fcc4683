"""Real-browser test: the chapter's diagram in lesson 08 renders as a Mermaid diagram.

JupyterLab 4 and Notebook 7 render a ```mermaid block of a Markdown cell as an image
(an SVG in a ``data:`` URL) inside a ``.jp-RenderedMermaid`` element; the test decodes
that SVG and looks for the chapter's boxes and arrows in it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from tests.jupyter_browser import JupyterServer, open_notebook, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("ui", ["lab", "notebook"], ids=["jupyterlab", "notebook7"])
def test_the_chapters_diagram_renders_as_a_diagram(
    page: Any, jupyter_server: JupyterServer, ui: str
) -> None:
    """The first Markdown cell's mermaid block becomes an SVG with the chapter's three boxes."""
    open_notebook(page, jupyter_server, "lessons/08_service_discovery.ipynb", ui=ui)
    first_cell = page.locator(".jp-MarkdownCell").first
    image = first_cell.locator(".jp-RenderedMermaid img").first
    image.wait_for(timeout=60_000)
    source = image.get_attribute("src") or ""
    assert source.startswith("data:image/svg+xml"), source[:80]
    svg = urllib.parse.unquote(source)
    assert "<svg" in svg
    for label in ("Service Consumer", "Service Registry", "Service Provider"):
        assert label in svg, label
    for label in ("Request", "Response", "Connect"):
        assert label in svg, label
    assert image.bounding_box()["height"] > 100, "the diagram should be drawn, not collapsed"
    # Rendered, not shown as source: any copy of the source sits inside the rendered
    # diagram (JupyterLab keeps it there for screen readers), none is a code block of its own.
    sources = first_cell.locator("pre code").filter(has_text="graph TD;")
    kept = first_cell.locator(".jp-RenderedMermaid pre code").filter(has_text="graph TD;")
    assert sources.count() == kept.count()
    screenshot(page, f"lesson_08_diagram_{ui}")
