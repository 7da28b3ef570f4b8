"""Times as hookd writes them everywhere (answers, bodies, operational events): RFC 3339 in UTC
with milliseconds, ``2026-01-02T03:04:05.678Z``."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime


def format_timestamp(moment: datetime | float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-01-02T03:04:05.678Z``."""
    if not isinstance(moment, datetime):
        return _format_unix(moment)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _format_unix(seconds: float) -> str:
    """What ``format_timestamp(datetime.fromtimestamp(seconds, UTC))`` gives, with the date
    and time of day made once per second: every single-event ingest formats its own ``now``
    (timeit: 2.5 -> 1.2 us a call)."""
    frac, whole = math.modf(seconds)
    micros = round(frac * 1e6)  # as datetime.fromtimestamp rounds (half to even)
    if micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    elif micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return f"{_second(int(whole))}.{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).isoformat(timespec="seconds").removesuffix("+00:00")
