"""Value parsers shared by the YAML and the admin API: each takes a plain value, returns it checked
and converted, or raises ``ValueError`` with a message meant for the person who wrote the value.

The YAML reader (:mod:`hookd.config.sections`) records those messages under the key's path and
line; the API (:mod:`hookd.api.endpoint_settings`) answers them as ``invalid_field``. Durations,
sizes and rates come from :mod:`hookd.units` and are re-exported here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from hookd import units
from hookd.config.model import ListenAddress
from hookd.redact import redact_url
from hookd.units import parse_duration, parse_size

__all__ = [
    "DAY",
    "HOUR",
    "ID_PATTERN",
    "MAX_RATE",
    "MIN_RATE",
    "MIN_STANDARD_SECRET_BYTES",
    "SYNCHRONOUS",
    "TENANT_PATTERN",
    "at_most",
    "check_rate",
    "check_signing_secret",
    "choice",
    "duration_up_to",
    "float_at_least",
    "int_at_least",
    "int_between",
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
    "parse_proxy_url",
    "parse_rate",
    "parse_size",
    "parse_str",
    "parse_synchronous",
    "parse_tenant",
    "parse_timestamp",
    "parse_tokens",
    "parse_url",
    "positive",
]

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # endpoint ids, policy names
SYNCHRONOUS = ("off", "normal", "full", "extra")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding", "connection"}
HOUR, DAY = 3600.0, 86400.0
MAX_DELAY = 30 * DAY  # one wait between attempts, a Retry-After honoured, a backoff step
MIN_RATE, MAX_RATE = 1 / HOUR, 1_000_000.0  # requests per second
MIN_STANDARD_SECRET_BYTES = 24  # Standard Webhooks: secrets are 24 to 64 random bytes
_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


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


def int_between(low: int, high: int) -> Callable[[Any], int]:
    """A parser of whole numbers (not booleans) from ``low`` to ``high``."""

    def check(value: Any) -> int:
        number = int_at_least(low)(value)
        if number > high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return number

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


def duration_up_to(high: float, shown: str) -> Callable[[Any], float]:
    """A parser of durations of at most ``high`` seconds (spelled ``shown``: ``1h``)."""

    def check(value: Any) -> float:
        return parse_duration(value, limit=high, shown=shown)

    return check


def at_most(fn: Callable[[Any], float], high: float, shown: str) -> Callable[[Any], float]:
    """``fn``, refusing a result above ``high`` (which messages spell ``shown``: ``1h``)."""

    def check(value: Any) -> float:
        result = fn(value)
        if result > high:
            raise ValueError(f"must be at most {shown}, got {value!r}")
        return result

    return check


def parse_delays(value: Any) -> tuple[float, ...]:
    """Waits between attempts: a list of durations, each at most 30d."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of durations like [10s, 20s], got {kind_of(value)}")
    return tuple(parse_duration(item, limit=MAX_DELAY, shown="30d") for item in value)


def parse_rate(value: Any) -> float:
    """Requests per second from ``50/s``, ``600/m``, ``1/h``: at least 1/h, at most 1000000/s."""
    return check_rate(units.parse_rate(value), value)


def check_rate(rate: float, given: Any) -> float:
    """``rate`` (per second) if it is within range: slower than 1/h would hold deliveries for
    days (``1e-300`` forever)."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"a rate is at least 1/h and at most 1000000/s, got {given!r}")
    return rate


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 date-time in UTC: ``2026-01-02T03:04:05Z``, ``t``/``z`` in either case, an
    offset ``+01:00``, any fraction (kept to microseconds), a leap second (read as the last
    microsecond of its minute). Raises ValueError, saying ``out of range`` for a time that is
    valid but leaves the years 0001-9999 once in UTC."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"expected RFC 3339 with a zone, like 2026-01-02T03:04:05Z, got {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or ".")[1:7].ljust(6, "0"))
    if second == 60:  # a leap second: the end of its minute
        second, micro = 59, 999_999
    try:
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=_zone(m[8]))
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise ValueError(f"out of range: {value!r} is not in the years 0001-9999 in UTC") from exc
    except ValueError as exc:
        raise ValueError(f"not a valid time: {value!r} ({exc})") from exc


def _zone(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"the offset {text} is not a time zone offset")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(offset if text[0] == "+" else -offset)


def check_signing_secret(scheme: str, secret: str) -> str:
    """A signing secret someone gives (YAML or API): a standard-webhooks HMAC secret
    (``whsec_``, or bare base64) holds at least 24 bytes. Other problems are the signer's to
    name."""
    text = secret.strip()
    if scheme != "standard-webhooks" or text.startswith(("whsk_", "whpk_", "-----")):
        return secret
    body = text.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return secret
    if 0 < len(raw) < MIN_STANDARD_SECRET_BYTES:
        raise ValueError(
            f"a standard-webhooks secret holds at least {MIN_STANDARD_SECRET_BYTES} bytes "
            f"(this one {len(raw)}); make one with `hookd keygen standard-webhooks`"
        )
    return secret


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


def parse_proxy_url(value: Any) -> str:
    """``delivery.proxy``: ``http://host:port``, with ``user:password@`` if the proxy asks."""
    if not isinstance(value, str):
        raise ValueError(f"expected a proxy URL like http://proxy:3128, got {kind_of(value)}")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise ValueError(
            f"expected a proxy URL like http://proxy:3128 (http, a host and a port), "
            f"got {redact_url(value)!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"a proxy URL has no path, got {redact_url(value)!r}")
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
