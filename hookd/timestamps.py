"""Times as hookd writes them everywhere (answers, bodies, operational events): RFC 3339 in UTC
with milliseconds, ``2026-01-02T03:04:05.678Z``."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


def format_timestamp(moment: datetime | float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-01-02T03:04:05.678Z``."""
    if not isinstance(moment, datetime):
        return _format_unix(moment)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=64)
def _format_unix(seconds: float) -> str:
    # a batch formats one `now` for every event in it
    return format_timestamp(datetime.fromtimestamp(seconds, UTC))
