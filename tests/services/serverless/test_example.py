"""The example function: what it accepts, what it refuses and why (run through HTTP in
test_framework.py)."""

from __future__ import annotations

import pytest

from distlab.errors import InvalidEvent
from distlab.services.serverless.events import make_event
from distlab.services.serverless.example import READING_TYPE, validate_reading


def _event(data: object, type: str = READING_TYPE) -> object:
    return make_event(data, id="e", type=type)


def test_a_valid_reading_gives_the_sensor_and_the_temperature() -> None:
    """Names are stripped; ints become floats."""
    assert validate_reading(_event({"sensor": " s1 ", "celsius": 20})) == ("s1", 20.0)


@pytest.mark.parametrize(
    ("data", "type", "reason"),
    [
        ({"sensor": "s", "celsius": 1}, "com.other", "type must be com.example.sensor.reading"),
        ([1, 2], READING_TYPE, "data must be a JSON object, got list"),
        ({"celsius": 1}, READING_TYPE, "sensor must be a non-empty string, got None"),
        ({"sensor": " ", "celsius": 1}, READING_TYPE, "sensor must be a non-empty string"),
        ({"sensor": "s", "celsius": "21"}, READING_TYPE, "celsius must be a number, got '21'"),
        ({"sensor": "s", "celsius": True}, READING_TYPE, "celsius must be a number, got True"),
        ({"sensor": "s", "celsius": -91}, READING_TYPE, "between -90 and 60, got -91"),
        ({"sensor": "s", "celsius": float("nan")}, READING_TYPE, "between -90 and 60, got nan"),
    ],
)
def test_an_invalid_reading_raises_invalid_event_with_the_reason(
    data: object,
    type: str,
    reason: str,
) -> None:
    """Each refusal says exactly what is wrong."""
    with pytest.raises(InvalidEvent) as caught:
        validate_reading(_event(data, type))  # type: ignore[arg-type]
    assert reason in caught.value.reason
