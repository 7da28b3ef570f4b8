"""Durations (``250ms``, ``7d``), sizes (``512KiB``) and rates (``50/s``) as YAML spells them."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_UNITS = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")


MAX_DURATION = 3650 * 86400.0  # ten years: past it a time no longer fits a calendar date


def parse_duration(value: object, *, limit: float = MAX_DURATION, shown: str = "3650d") -> float:
    """Seconds from ``"250ms"``, ``"10s"``, ``"10m"``, ``"1h"``, ``"7d"`` (a bare 0 is allowed),
    at most ``limit`` (spelled ``shown`` in the message): ten years unless told."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 10s, got {value!r}")
    if isinstance(value, int | float) and value == 0:
        return 0.0
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            if seconds > limit:
                raise ValueError(f"a duration is at most {shown}, got {value!r}")
            return seconds
    raise ValueError(f"expected a duration like 250ms, 10s, 10m, 1h or 7d, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes from ``"512KiB"``, ``"1MiB"`` or a plain integer."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 1MiB, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(m.group(1)) * _SIZE_UNITS[m.group(2) or "B"]
    raise ValueError(f"expected a size like 512KiB or 1MiB, got {value!r}")


def parse_rate(value: object) -> float:
    """Events per second from ``"50/s"``, ``"600/m"``, ``"1000/h"``."""
    if isinstance(value, str):
        m = _RATE.match(value)
        if m and float(m.group(1)) > 0:
            per = {"s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
            return float(m.group(1)) / per
    raise ValueError(f"expected a rate like 50/s or 600/m, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration, for messages and the CLI."""
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000)}ms"
