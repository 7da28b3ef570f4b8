"""Placeholder: filled in by the operator-surface work."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    return None
