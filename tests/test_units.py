"""Durations, sizes and rates as the YAML spells them (SPEC §5)."""

from __future__ import annotations

import pytest

from hookd.units import format_duration, parse_duration, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("10s", 10.0),
        ("1.5s", 1.5),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        (" 30s ", 30.0),
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_durations_read_every_unit(text: object, seconds: float) -> None:
    """Each SPEC unit (ms, s, m, h, d) converts to seconds; a bare 0 means no time."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10", "10x", "s", "-1s", "1 week", 10, 1.5, True, None, "1h30m"])
def test_durations_without_a_unit_are_refused(bad: object) -> None:
    """A number without a unit (other than 0) or an unknown unit is an error naming the value."""
    with pytest.raises(ValueError, match="expected a duration like"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 512 * 1024),
        ("1MiB", 1024 * 1024),
        ("2GiB", 2 * 1024**3),
        ("4KB", 4000),
        ("1MB", 1_000_000),
        ("100B", 100),
        ("100", 100),
        (4096, 4096),
        (0, 0),
    ],
)
def test_sizes_read_binary_and_decimal_units(text: object, size: int) -> None:
    """KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000; a plain number is bytes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["1 TiB", "1.5MiB", "-1", -5, "lots", True, 1.5, None])
def test_bad_sizes_are_refused(bad: object) -> None:
    """Fractions, negatives and unknown units are refused."""
    with pytest.raises(ValueError, match="expected a size like"):
        parse_size(bad)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("50/s", 50.0), ("600/m", 10.0), ("3600/h", 1.0), ("0.5/s", 0.5), ("1 / m", 1 / 60)],
)
def test_rates_become_events_per_second(text: str, per_second: float) -> None:
    """``N/s``, ``N/m`` and ``N/h`` are all normalised to events per second."""
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["0/s", "50", "50/d", "fast", 50, None])
def test_bad_rates_are_refused(bad: object) -> None:
    """A rate needs a positive number and a per-unit of s, m or h."""
    with pytest.raises(ValueError, match="expected a rate like"):
        parse_rate(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (10.0, "10s"), (90.0, "90s"), (600.0, "10m"), (7200.0, "2h"), (86400, "1d")],
)
def test_format_duration_gives_the_shortest_exact_spelling(seconds: float, text: str) -> None:
    """format_duration is the inverse of parse_duration for exact values."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
