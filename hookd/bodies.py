"""The built-in body formats: how an accepted event becomes the bytes that are POSTed.

Every format is a pure function of the event: compact JSON (``separators=(",", ":")``), UTF-8,
non-ASCII kept as is, keys in the order the event holds them, so the same event always gives the
same bytes (the RSA signature cache and receivers' dedupe rely on that). NaN and infinities are
not JSON and are refused with ``ValueError``. The body ``timestamp`` is the event's (RFC 3339, as
stored at ingest), not the attempt's. For an event ``id="evt_1", type="task.updated",
timestamp="2024-05-01T12:00:00Z", data={"id": 7, "title": "Café"}``:

``standard`` (default)
    ``{"type":"task.updated","timestamp":"2024-05-01T12:00:00Z","data":{"id":7,"title":"Café"}}``

``raw`` (the data exactly as posted)
    ``{"id":7,"title":"Café"}``

``taskview`` (data keys at the top level; ``event``/``timestamp`` in the data never override the
envelope; data that is not an object goes under ``"data"``)
    ``{"event":"task.updated","timestamp":"2024-05-01T12:00:00Z","id":7,"title":"Café"}``

    with ``data=[1, 2]``:
    ``{"event":"task.updated","timestamp":"2024-05-01T12:00:00Z","data":[1,2]}``

``taskee``
    ``{"type":"task.updated","timestamp":"2024-05-01T12:00:00Z","webhookId":"evt_1",``
    ``"data":{"id":7,"title":"Café"}}``
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from hookd.registry import BodyFormat, Event, Registry

_ENVELOPE_KEYS = frozenset({"event", "timestamp"})


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def standard(event: Event) -> bytes:
    """``{"type", "timestamp", "data"}``."""
    return _dump({"type": event.type, "timestamp": event.timestamp, "data": event.data})


def raw(event: Event) -> bytes:
    """The event data alone, as posted."""
    return _dump(event.data)


def taskview(event: Event) -> bytes:
    """``{"event", "timestamp", **data}``; non-object data goes under ``"data"``."""
    body: dict[str, Any] = {"event": event.type, "timestamp": event.timestamp}
    if isinstance(event.data, dict):
        body.update((k, v) for k, v in event.data.items() if k not in _ENVELOPE_KEYS)
    else:
        body["data"] = event.data
    return _dump(body)


def taskee(event: Event) -> bytes:
    """``{"type", "timestamp", "webhookId", "data"}``; ``webhookId`` is the stable event id."""
    return _dump(
        {
            "type": event.type,
            "timestamp": event.timestamp,
            "webhookId": event.id,
            "data": event.data,
        }
    )


# --------------------------------------------------------------------------- from stored text

# A format that can be written around the event's data as stored (compact JSON, the text these
# formats would write for it) without parsing it: (id, type, timestamp, data text) -> body.
Splice = Callable[[str, str, str, str], bytes]


def _standard_text(event_id: str, kind: str, timestamp: str, data: str) -> bytes:
    head = b'{"type":' + orjson.dumps(kind) + b',"timestamp":' + orjson.dumps(timestamp)
    return head + b',"data":' + data.encode() + b"}"


def _raw_text(event_id: str, kind: str, timestamp: str, data: str) -> bytes:
    return data.encode()


def _taskee_text(event_id: str, kind: str, timestamp: str, data: str) -> bytes:
    head = b'{"type":' + orjson.dumps(kind) + b',"timestamp":' + orjson.dumps(timestamp)
    head += b',"webhookId":' + orjson.dumps(event_id)
    return head + b',"data":' + data.encode() + b"}"


_SPLICES: dict[BodyFormat, Splice] = {
    standard: _standard_text,
    raw: _raw_text,
    taskee: _taskee_text,
}


def splice_for(fmt: BodyFormat, data: str) -> Splice | None:
    """How to write ``fmt`` straight from the stored ``data`` text, when that gives the same
    bytes as ``fmt(event)``: a built-in format, and text as compact JSON writes it (data stored
    with ``\\u`` escapes, which an older writer or an ASCII-only one may have used, is parsed
    and written again instead)."""
    splice = _SPLICES.get(fmt)
    if splice is None or "\\u" in data:
        return None
    return splice


def register(registry: Registry) -> None:
    """Add the built-in body formats to ``registry``."""
    registry.add_format("standard", standard)
    registry.add_format("raw", raw)
    registry.add_format("taskview", taskview)
    registry.add_format("taskee", taskee)
