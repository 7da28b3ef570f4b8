"""Plain text output: aligned tables and fields, times, ages, sizes, and endpoints as text.

``--json`` output is the API's own answer, indented (:func:`print_json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain text columns, left-aligned, two spaces apart; ``None`` shows as ``-``."""
    grid = [list(headers), *([cell(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(headers))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in grid
    )


def fields(rows: list[tuple[str, object]]) -> str:
    """``name  value`` lines, the values aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {cell(value)}" for name, value in rows)


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def to_datetime(value: Any) -> datetime | None:
    """A timestamp the API gave (RFC 3339 text or unix seconds) as an aware datetime."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def format_time(value: Any) -> str:
    moment = to_datetime(value)
    if moment is None:
        return cell(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_age(seconds: Any) -> str:
    """``42s``, ``3m12s``, ``2h05m``, ``3d4h``."""
    if not isinstance(seconds, int | float):
        return "?"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def format_bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def pretty_payload(payload: Any) -> str:
    """JSON indented for people; a string holding JSON is decoded first."""
    if isinstance(payload, str):
        try:
            payload = json.loads(text := payload)
        except json.JSONDecodeError:
            return text
    return json.dumps(payload, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- endpoints


def endpoint_state(endpoint: dict[str, Any]) -> str:
    if endpoint.get("enabled"):
        return "enabled"
    reason = endpoint.get("disabled_reason")
    return f"disabled ({reason})" if reason else "disabled"


def endpoint_text(ep: dict[str, Any]) -> str:
    """One endpoint as aligned fields: the known ones first, then any others the API sent."""
    rows: list[tuple[str, object]] = [
        ("id", ep.get("id")),
        ("url", ep.get("url")),
        ("state", endpoint_state(ep)),
    ]
    rows += [
        ("failures", f"{ep.get('consecutive_failures', 0)} consecutive"),
        ("events", ", ".join(ep.get("events") or [])),
        ("signing", (ep.get("signing") or {}).get("scheme")),
        ("policy", ep.get("policy")),
        ("source", ep.get("source")),
    ]
    known = {"id", "url", "enabled", "disabled_reason", "consecutive_failures", "events"}
    known |= {"signing", "policy", "source"}
    for key, value in ep.items():
        if key not in known and value not in (None, {}, []):
            rows.append((key, json.dumps(value) if isinstance(value, dict | list) else value))
    return fields(rows)
