"""The course's tests; they mirror the package (tests/sim, tests/patterns, ...)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
"""The course repository's root folder."""
