"""CloudEvents as queue messages: build one, encode it to bytes, decode bytes back.

A queue carries bytes; the course's messages are CloudEvents 1.0 in *structured mode*
(the whole event, attributes and data, as one JSON object), the format that
functions-framework reads from a request with ``Content-Type:
application/cloudevents+json``. Decoding a body that is not a valid CloudEvent raises
:class:`distlab.errors.InvalidEvent` with the reason, so a trigger can dead-letter it.
"""

from __future__ import annotations

from typing import Any

from cloudevents.conversion import to_json
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_json

from distlab.errors import InvalidEvent

__all__ = ["CONTENT_TYPE", "CloudEvent", "decode", "encode", "make_event"]

CONTENT_TYPE = "application/cloudevents+json"


def make_event(
    data: Any,
    *,
    id: str,
    type: str = "com.example.event",
    source: str = "/distlab",
    time: str = "2026-01-01T00:00:00Z",
    **extensions: str,
) -> CloudEvent:
    """Build a CloudEvent 1.0.

    Args:
        data: the payload (anything JSON can hold).
        id: the event's id; with ``source`` it identifies the event, so a consumer can
            recognise a duplicate by it.
        type: what happened, reverse-DNS style (``com.example.order.placed``).
        source: who says so (a URI reference).
        time: when it happened, RFC 3339; fixed by default so that encoded events are
            reproducible (the SDK would stamp the wall clock).
        extensions: further attributes (lowercase letters and digits).

    Raises:
        ValueError: when ``id``, ``type`` or ``source`` is empty.
    """
    for name, value in (("id", id), ("type", type), ("source", source)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    attributes = {"id": id, "type": type, "source": source, "time": time, **extensions}
    return CloudEvent(attributes, data)


def encode(event: CloudEvent) -> bytes:
    """The event as structured-mode JSON bytes (what a queue message carries)."""
    return bytes(to_json(event))


def decode(body: bytes | str) -> CloudEvent:
    """Parse structured-mode JSON bytes into a CloudEvent.

    Raises:
        InvalidEvent: when the body is not JSON, or not a CloudEvent 1.0 (a required
            attribute missing, an unknown specversion); the reason says which.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    try:
        return from_json(raw)
    except GenericException as exc:
        raise InvalidEvent(f"not a CloudEvent: {_short(exc)}") from exc
    except (ValueError, TypeError, AttributeError) as exc:  # odd JSON the SDK chokes on
        raise InvalidEvent(f"not a CloudEvent: {type(exc).__name__}: {_short(exc)}") from exc


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
