"""Helpers for plugin authors: a safe text template over an event, JSON in short form.

``render("Task {data.task.id} was {type}", event)`` replaces each ``{path}`` with the value at
that path of ``{"id", "type", "timestamp", "tenant", "data"}`` (dotted, with list indexes:
``{data.items.0.sku}``); strings go in as they are, other values as compact JSON, a missing path
as an empty string, and ``{{``/``}}`` are literal braces. There is no attribute access, no
expression and no format spec, so a template from a config file cannot run code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hookd.registry import Event

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z0-9_.-]+)\}")


def lookup(event: Event, path: str) -> Any:
    """The value at a dotted path of the event, or None when there is none."""
    current: Any = {
        "id": event.id,
        "type": event.type,
        "timestamp": event.timestamp,
        "data": event.data,
    }
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def text(value: Any) -> str:
    """A value as text: strings as they are, None as empty, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def render(template: str, event: Event, escape: Callable[[str], str] = lambda s: s) -> str:
    """Fill ``{path}`` fields from the event; ``escape`` is applied to each inserted value."""

    def field(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        return escape(text(lookup(event, match.group(1))))

    return _FIELD.sub(field, template)


def check_template(template: Any, name: str) -> str:
    """A template option checked at load: a string with balanced, well-formed fields."""
    if not isinstance(template, str) or not template:
        raise ValueError(f"option {name!r} must be a non-empty string")
    leftover = _FIELD.sub("", template)
    if "{" in leftover or "}" in leftover:
        raise ValueError(
            f"option {name!r}: fields look like {{type}} or {{data.task.id}}; "
            "write {{ and }} for literal braces"
        )
    return template


def clip(value: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut."""
    return value if len(value) <= limit else value[: limit - 1] + "…"
