"""Time-ordered identifiers: ``dlv_0j6…`` sort by creation time, like ULIDs."""

from __future__ import annotations

import base64
import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 26 base32hex characters: 48 bits of milliseconds then 80 random bits."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return f"{prefix}_{base64.b32hexencode(raw).decode('ascii').rstrip('=').lower()}"
