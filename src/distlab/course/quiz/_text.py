"""Turn quiz text into safe HTML.

The ipywidgets `HTML` widget inserts its value as markup without escaping, so a
prompt such as "Is 1 < 2?" would lose everything after "<". Every text is escaped
first; the only markup authors get is `inline code` in single backticks.
"""

from __future__ import annotations

import html
import re

__all__ = ["render_inline"]

# Backticks survive html.escape, so the transform runs on already escaped text
# and can never let markup through.
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


def render_inline(text: str) -> str:
    """Return `text` as HTML: escaped, with `code` in single backticks as <code>.

    Args:
        text: plain text from a quiz file.

    Returns:
        An HTML fragment safe to put in an ipywidgets HTML widget.
    """
    escaped = html.escape(text, quote=True)
    return _INLINE_CODE.sub(r"<code>\1</code>", escaped)
