"""The fast JSON paths (msgspec in, orjson out, bodies written around stored data text) give
exactly what the standard library's json gave: the same values, bytes and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookd import bodies, jsontext
from hookd.registry import Event

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _python(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_dumps_writes_the_bytes_python_writes(value: Any) -> None:
    """Floats (1e-05, not orjson's 0.00001), integers beyond 64 bits, every character alike."""
    assert jsontext.dumps(value) == _python(value)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_loads_reads_what_python_reads(value: Any) -> None:
    """Integers of any size stay exact; the value round-trips as Python's parser gives it."""
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert jsontext.dumps(jsontext.loads(raw)) == _python(json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [b'"\\ud800"', b'{"a": 1e400}', b"[" * 200 + b"]" * 200, b'"\xed\xa0\x80"'],
)
def test_what_hookd_cannot_keep_is_refused_as_before(raw: bytes) -> None:
    with pytest.raises(jsontext.Unfit):
        jsontext.loads(raw)


@pytest.mark.parametrize("raw", [b"NaN", b"[1,]", b"\xff", b""])
def test_what_is_not_json_is_refused_as_before(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"JSON|Expecting|codec"):
        jsontext.loads(raw)


def test_a_byte_order_mark_is_read_as_before() -> None:
    assert jsontext.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@settings(max_examples=300, deadline=None)
@given(json_values, st.text(min_size=1), st.text(min_size=1))
def test_spliced_bodies_are_the_bytes_the_formats_write(data: Any, kind: str, eid: str) -> None:
    """standard, raw and taskee written around the stored data text, byte for byte."""
    text = jsontext.dumps(data).decode()
    event = Event(id=eid, type=kind, timestamp="2026-01-02T03:04:05Z", data=json.loads(text))
    for fmt in (bodies.standard, bodies.raw, bodies.taskee):
        splice = bodies.splice_for(fmt, text)
        if splice is None:  # an escape an older writer might have used: parsed instead
            assert "\\u" in text
            continue
        assert splice(event.id, event.type, event.timestamp, text) == fmt(event)


def test_data_stored_with_ascii_escapes_is_not_spliced() -> None:
    assert bodies.splice_for(bodies.standard, '{"a":"caf\\u00e9"}') is None
    assert bodies.splice_for(bodies.taskview, '{"a":1}') is None


_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["order.paid", "a b", "", "hookd.x", "x" * 257, 7, "é"]),
        "data": json_values,
        "id": st.sampled_from(["evt_1", "", "a b", None, 3, "x" * 129]),
        "timestamp": st.sampled_from(
            ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05+02:00", "yesterday", None, 5]
        ),
        "tenant": st.sampled_from(["acme", "-bad", None, "a" * 65, 1]),
        "extra": st.integers(),
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_fields, min_size=0, max_size=4), st.booleans())
def test_envelopes_checked_by_msgspec_are_the_ones_python_accepts(
    events: list[dict[str, Any]], batch: bool
) -> None:
    """decode_events accepts exactly the bodies parse_event accepts, with the same result (and
    None for the rest, which the general path then answers as it always did)."""
    from hookd import ingest

    body: Any = events if batch else (events[0] if events else {})
    raw = json.dumps(body).encode()
    fast = ingest.decode_events(raw, batch=batch)
    items = body if batch else [body]
    try:
        slow = [ingest.parse_event(e, prefix=f"[{i}].") for i, e in enumerate(items)]
        if batch and not 1 <= len(items) <= ingest.MAX_BATCH:
            slow = None  # type: ignore[assignment]
    except ingest.InvalidEvent:
        slow = None  # type: ignore[assignment]
    assert fast == slow


@pytest.mark.parametrize(("depth", "kept"), [(126, True), (127, False)])
@pytest.mark.parametrize("shallow", [0, 200])
def test_a_batch_deeper_than_the_limit_is_left_to_the_general_path(
    depth: int, kept: bool, shallow: int
) -> None:
    """One event's data 126 arrays deep in a batch (128 levels with the batch's array and the
    event's object) is taken, 127 deep is not, however many shallow events surround it."""
    from hookd import ingest

    events = [b'{"type":"x","data":{"a":[1]}}'] * shallow
    events.append(b'{"type":"x","data":' + b"[" * depth + b"]" * depth + b"}")
    raw = b"[" + b",".join(events) + b"]"
    assert (ingest.decode_events(raw, batch=True) is not None) is kept
