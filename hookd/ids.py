"""Time-ordered identifiers: ``dlv_0193…`` sort by creation time, like ULIDs."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 30 hex digits: 48 bits of milliseconds, then 72 random bits."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(9)
    return f"{prefix}_{raw.hex()}"
