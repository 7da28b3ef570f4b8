"""Body formats: exact bytes per format, deterministic output."""

from __future__ import annotations

from typing import Any

import pytest

from hookd import bodies
from hookd.registry import Event, Registry


def _event(data: Any) -> Event:
    return Event(id="evt_1", type="task.updated", timestamp="2024-05-01T12:00:00Z", data=data)


SAMPLE = _event({"id": 7, "title": "Café ✓", "tags": ["a", "b"], "done": False, "due": None})


def test_register_adds_the_four_builtin_formats() -> None:
    registry = Registry()
    bodies.register(registry)
    assert set(registry.formats) == {"standard", "raw", "taskview", "taskee"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "standard",
            '{"type":"task.updated","timestamp":"2024-05-01T12:00:00Z","data":'
            '{"id":7,"title":"Café ✓","tags":["a","b"],"done":false,"due":null}}',
        ),
        ("raw", '{"id":7,"title":"Café ✓","tags":["a","b"],"done":false,"due":null}'),
        (
            "taskview",
            '{"event":"task.updated","timestamp":"2024-05-01T12:00:00Z",'
            '"id":7,"title":"Café ✓","tags":["a","b"],"done":false,"due":null}',
        ),
        (
            "taskee",
            '{"type":"task.updated","timestamp":"2024-05-01T12:00:00Z","webhookId":"evt_1","data":'
            '{"id":7,"title":"Café ✓","tags":["a","b"],"done":false,"due":null}}',
        ),
    ],
)
def test_format_exact_bytes(name: str, expected: str) -> None:
    """Compact JSON, UTF-8 with non-ASCII kept, keys in the event's order."""
    registry = Registry()
    bodies.register(registry)
    assert registry.formats[name](SAMPLE) == expected.encode("utf-8")


@pytest.mark.parametrize("name", ["standard", "raw", "taskview", "taskee"])
def test_formats_are_deterministic(name: str) -> None:
    """The same event, even rebuilt from equal parts, gives the same bytes."""
    registry = Registry()
    bodies.register(registry)
    fmt = registry.formats[name]
    rebuilt = _event({"id": 7, "title": "Café ✓", "tags": ["a", "b"], "done": False, "due": None})
    assert fmt(SAMPLE) == fmt(SAMPLE) == fmt(rebuilt)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([1, 2], b'"data":[1,2]}'),
        ("text", b'"data":"text"}'),
        (None, b'"data":null}'),
        (3.5, b'"data":3.5}'),
    ],
)
def test_taskview_puts_non_object_data_under_data(data: Any, expected: bytes) -> None:
    body = bodies.taskview(_event(data))
    assert body == b'{"event":"task.updated","timestamp":"2024-05-01T12:00:00Z",' + expected


def test_taskview_envelope_wins_over_data_keys() -> None:
    body = bodies.taskview(_event({"event": "spoof", "timestamp": "1999", "x": 1}))
    assert body == b'{"event":"task.updated","timestamp":"2024-05-01T12:00:00Z","x":1}'


def test_raw_keeps_scalars_as_posted() -> None:
    assert bodies.raw(_event("hello")) == b'"hello"'
    assert bodies.raw(_event(0)) == b"0"


def test_non_json_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="JSON"):
        bodies.standard(_event({"x": float("nan")}))
