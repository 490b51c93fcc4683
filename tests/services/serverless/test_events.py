"""CloudEvents as queue messages: round trip, reproducible bytes, malformed bodies named."""

from __future__ import annotations

import json

import pytest

from distlab.errors import InvalidEvent
from distlab.services.serverless.events import decode, encode, make_event


def test_an_event_survives_encode_and_decode() -> None:
    """id, type, source, time and data come back as they were."""
    event = make_event({"celsius": 21.5}, id="e-1", type="com.example.t", source="/s")
    back = decode(encode(event))
    assert (back["id"], back["type"], back["source"], back["time"]) == (
        "e-1",
        "com.example.t",
        "/s",
        "2026-01-01T00:00:00Z",
    )
    assert back.data == {"celsius": 21.5}
    assert json.loads(encode(event))["specversion"] == "1.0"


def test_encoding_is_reproducible() -> None:
    """The same event gives the same bytes (no wall-clock stamp), so seeded runs replay."""
    assert encode(make_event([1, 2], id="x")) == encode(make_event([1, 2], id="x"))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json at all", "can not be parsed as json"),
        (b"\xff\xfe\x00", "UnicodeDecodeError"),
        (b"[1, 2, 3]", "no 'get' method"),
        (b"{}", "specversion"),
        (b'{"specversion": "1.0", "id": "x"}', "Missing required attributes"),
        (b'{"specversion": "0.1", "id": "x", "type": "t", "source": "s"}', "specversion"),
    ],
)
def test_a_body_that_is_not_a_cloudevent_raises_invalid_event_with_the_reason(
    body: bytes, words: str
) -> None:
    """decode names what is wrong, prefixed with 'not a CloudEvent'."""
    with pytest.raises(InvalidEvent, match="not a CloudEvent") as caught:
        decode(body)
    assert words in caught.value.reason


def test_make_event_refuses_an_empty_id_by_name() -> None:
    """id, type and source must be non-empty strings."""
    with pytest.raises(ValueError, match="id must be"):
        make_event({}, id="")
    with pytest.raises(ValueError, match="type must be"):
        make_event({}, id="x", type="")


def test_the_package_exports_its_names_lazily() -> None:
    """Every name in __all__ resolves; importing the package loads no Flask and no runtime."""
    import subprocess
    import sys

    import distlab.services.serverless as package

    for name in package.__all__:
        assert getattr(package, name) is not None
    probe = (
        "import sys, distlab.services.serverless as s; s.SQLiteQueue; "
        "print(sorted(m for m in ('flask', 'redis', 'distlab.services.serverless.runtime') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
