"""Times as hookd writes them (RFC 3339, UTC, milliseconds): a unix time formats exactly as the
datetime it stands for, rounding included."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hookd.timestamps import format_timestamp


def _via_datetime(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize(
    "seconds",
    [
        0.0,
        0.0005,
        0.9995,
        0.9999995,  # rounds up to the next second
        1_700_000_000.123,  # 0.123 is 0.12299990654 in binary: still .123
        1_700_000_000.9999996,
        1_700_000_000.0000004,
        2**31 - 0.0000001,
        -0.5,
        -1.0000004,
        4_102_444_800.999,
    ],
)
def test_a_unix_time_formats_as_its_datetime(seconds: float) -> None:
    assert format_timestamp(seconds) == _via_datetime(seconds)


def test_many_unix_times_format_as_their_datetimes() -> None:
    rnd = random.Random(13)
    times = [rnd.uniform(0, 4e9) for _ in range(20_000)]
    times += [rnd.randrange(4_000_000_000) + rnd.randrange(1_000_000) / 1e6 for _ in range(20_000)]
    assert [format_timestamp(t) for t in times] == [_via_datetime(t) for t in times]


def test_a_datetime_is_written_in_utc_with_milliseconds() -> None:
    moment = datetime(2026, 1, 2, 4, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2026-01-02T03:04:05.678Z"
