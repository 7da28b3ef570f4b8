"""Value parsers shared by the YAML and the admin API: each takes a plain value, returns it checked
and converted, or raises ``ValueError`` with a message meant for the person who wrote the value.

The YAML reader (:mod:`hookd.config.sections`) records those messages under the key's path and
line; the API (:mod:`hookd.api.endpoint_settings`) answers them as ``invalid_field``. Durations,
sizes and rates come from :mod:`hookd.units` and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hookd.config.model import ListenAddress
from hookd.redact import redact_url
from hookd.units import parse_duration, parse_rate, parse_size

__all__ = [
    "ID_PATTERN",
    "SYNCHRONOUS",
    "TENANT_PATTERN",
    "choice",
    "float_at_least",
    "int_at_least",
    "kind_of",
    "nonneg",
    "parse_bool",
    "parse_delays",
    "parse_duration",
    "parse_endpoint_id",
    "parse_endpoint_tenant",
    "parse_header_name",
    "parse_headers",
    "parse_listen",
    "parse_mapping",
    "parse_nonempty_str",
    "parse_patterns",
    "parse_rate",
    "parse_size",
    "parse_str",
    "parse_synchronous",
    "parse_tenant",
    "parse_tokens",
    "parse_url",
    "positive",
]

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # endpoint ids, policy names
SYNCHRONOUS = ("off", "normal", "full", "extra")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding", "connection"}


def kind_of(value: Any) -> str:
    """What a value is, in words for messages: ``a mapping``, ``a list``, ``nothing``…"""
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def parse_listen(value: Any) -> ListenAddress:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"127.0.0.1:{value}"
    if not isinstance(value, str):
        raise ValueError(f"expected host:port, got {kind_of(value)}")
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\s]+):(\d+)$", value)
    if not m:
        raise ValueError(f"expected host:port (or [v6]:port), got {value!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return ListenAddress(host=m.group(1), port=port)


def parse_tokens(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError("expected a list of token strings")
    tokens = tuple(t.strip() for t in value)
    if any(len(t) < 16 for t in tokens):
        raise ValueError("every token needs at least 16 characters")
    return tokens


def parse_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {kind_of(value)}")
    return value


def parse_nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def parse_mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {kind_of(value)}")
    return value


def choice(*choices: str) -> Callable[[Any], str]:
    """A parser that takes exactly one of ``choices``."""

    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def parse_synchronous(value: Any) -> str:
    if value is False:  # YAML 1.1 reads a bare `off` as false
        return "off"
    return choice(*SYNCHRONOUS)(value)


def int_at_least(low: int) -> Callable[[Any], int]:
    """A parser of whole numbers (not booleans) of at least ``low``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"expected a whole number >= {low}, got {value!r}")
        return value

    return check


def float_at_least(low: float) -> Callable[[Any], float]:
    """A parser of numbers (not booleans) of at least ``low``, as floats."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise ValueError(f"expected a number >= {low}, got {value!r}")
        return float(value)

    return check


def positive(fn: Callable[[Any], float]) -> Callable[[Any], float]:
    """``fn``, refusing a result of zero or less."""

    def check(value: Any) -> float:
        result = fn(value)
        if result <= 0:
            raise ValueError(f"must be greater than zero, got {value!r}")
        return result

    return check


def nonneg(fn: Callable[[Any], float]) -> Callable[[Any], float]:
    """``fn``, refusing a negative result."""

    def check(value: Any) -> float:
        result = fn(value)
        if result < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return result

    return check


def parse_delays(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of durations like [10s, 20s], got {kind_of(value)}")
    return tuple(parse_duration(item) for item in value)


TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")  # SPEC §8


def parse_tenant(value: Any) -> str:
    """A tenant id (an event's, an endpoint's, a token's): 1-64 of A-Z a-z 0-9 . _ : -."""
    if not isinstance(value, str) or not TENANT_PATTERN.match(value):
        raise ValueError(
            "a tenant id is 1-64 letters, digits, '.', '_', ':', '-', starting with a letter or "
            f"digit (got {value!r})"
        )
    return value


def parse_endpoint_tenant(value: Any) -> str:
    """An endpoint's tenant: a tenant id, or ``*`` (the events of every tenant)."""
    return "*" if value == "*" else parse_tenant(value)


def parse_endpoint_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ValueError(
            f"an endpoint id is 1-64 letters, digits, '_', '-', '.', ':' (got {value!r})"
        )
    return value


def parse_url(value: Any) -> str:
    """An http(s) URL with a host; a password in it never reaches the message."""
    if not isinstance(value, str):
        raise ValueError(f"expected an http(s) URL, got {kind_of(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"expected an http:// or https:// URL with a host, got {redact_url(value)!r}"
        )
    return value


def parse_patterns(value: Any) -> tuple[str, ...]:
    """Event type globs: one string, or a non-empty list of them."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of event type patterns like ['task.*']")
    if not all(isinstance(p, str) and p for p in value):
        raise ValueError("every event type pattern is a non-empty string")
    return tuple(value)


def parse_header_name(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER.match(value):
        raise ValueError(f"not a valid HTTP header name: {value!r}")
    return value


def parse_headers(value: Any) -> dict[str, str]:
    """Extra request headers: valid names, none that hookd sets itself, one-line values."""
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of header names to values, got {kind_of(value)}")
    out = {}
    for name, item in value.items():
        parse_header_name(name)
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name} is set by hookd and cannot be overridden")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"header {name}: expected a string value")
        text = str(item)
        if "\n" in text or "\r" in text:
            raise ValueError(f"header {name}: value must not contain line breaks")
        out[name] = text
    return out
