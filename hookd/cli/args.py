"""Argument types the client commands share: argparse calls them on the raw option text.

Each raises :class:`argparse.ArgumentTypeError`, which argparse prints as one usage line.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from hookd.units import parse_duration, parse_rate

CLEAR = "none"  # on update, --rate-limit none / --max-in-flight none remove the limit


def duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def since(text: str) -> str:
    try:
        parse_duration(text)
        return text
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 1h or an RFC 3339 time like 2026-01-02T03:04:05Z, "
            f"got {text!r}"
        )
    return text


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def patterns(text: str) -> list[str]:
    found = [p.strip() for p in text.split(",") if p.strip()]
    if not found:
        raise argparse.ArgumentTypeError(
            f"expected event type globs like 'task.*,order.*', got {text!r}"
        )
    return found


def header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE like X-Team:core, got {text!r}")
    return name.strip(), value.strip()


def rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def rate_or_none(text: str) -> str:
    return text if text == CLEAR else rate(text)


def positive_int_or_none(text: str) -> int | str:
    return text if text == CLEAR else positive_int(text)


def secret(text: str) -> str:
    """``--secret``: the text itself, or ``@FILE``'s content (an RSA private key PEM)."""
    if not text.startswith("@"):
        return text
    name = text[1:]
    try:
        return Path(name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise argparse.ArgumentTypeError(f"cannot read {name}: {reason}") from exc
