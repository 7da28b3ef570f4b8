"""Attempt stats (SPEC §14): windows, latency buckets and percentiles as pure functions, and
every backend's rollups against seeded attempts (exact counts, exact percentiles up to
EXACT_LIMIT attempts, within 1 % beyond)."""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path

import pytest

from hookd.store import MIGRATIONS, SQLiteStore, Store
from hookd.store import stats as st
from tests.support import seed_attempts

NOW = 1_800_000_000.0 + 37.5  # 00:00:37.5 past an hour boundary (1_800_000_000 % 3600 == 0)

# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("latency", [0.0, 0.0004, 0.5, 1.0, 1.02, 7.3, 99.99, 250.0, 10_000.0])
def test_a_bucket_stands_for_its_latencies_within_one_percent(latency: float) -> None:
    shown = st.bucket_value(st.bucket(latency))
    real = max(latency, st.MIN_LATENCY_MS)
    assert abs(shown - real) <= (st.GAMMA - 1) / (st.GAMMA + 1) * real + 1e-12
    assert abs(shown - real) < 0.01 * real


def test_buckets_keep_latencies_in_order() -> None:
    values = [0.3, 0.9, 1.0, 1.5, 2.0, 10.0, 10.1, 500.0, 30_000.0]
    assert [st.bucket(v) for v in values] == sorted(st.bucket(v) for v in values)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0], 50, 1.0),
        ([float(i) for i in range(1, 101)], 50, 50.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 1001)], 99, 990.0),
    ],
)
def test_nearest_rank_percentiles(values: list[float], p: int, expected: float | None) -> None:
    assert st.nearest_rank(values, p) == expected


def test_a_histogram_percentile_is_the_bucket_of_the_ranked_attempt() -> None:
    values = [float(i) for i in range(1, 1001)]
    histogram: dict[int, int] = {}
    for v in values:
        histogram[st.bucket(v)] = histogram.get(st.bucket(v), 0) + 1
    for p, exact in ((50, 500.0), (99, 990.0)):
        got = st.histogram_rank(histogram, p)
        assert got is not None
        assert abs(got - exact) <= 0.01 * exact


LATER = 1_800_000_000.0 + 1234.5  # 00:20:34.5 past the hour


@pytest.mark.parametrize(
    ("seconds", "now", "parts"),
    [
        (60, NOW, [(60, 29_999_999, 29_999_999), (3600, 500_000, 500_000)]),
        (1800, NOW, [(60, 29_999_970, 29_999_999), (3600, 500_000, 500_000)]),
        (600, LATER, [(60, 30_000_010, 30_000_020)]),  # within this hour: minutes only
        (3600, NOW, [(3600, 499_999, 500_000)]),  # starts on an hour: hours only
        (3600, LATER, [(60, 29_999_960, 29_999_999), (3600, 500_000, 500_000)]),
        (86_400, LATER, [(60, 29_998_580, 29_998_619), (3600, 499_977, 500_000)]),
        (7 * 86_400, NOW, [(3600, 499_832, 500_000)]),  # over 24h: hours
        (30 * 86_400, NOW, [(3600, 499_280, 500_000)]),
    ],
)
def test_a_window_adds_up_minutes_and_whole_hours(
    seconds: float, now: float, parts: list[tuple[int, int, int]]
) -> None:
    win = st.window(seconds, now)
    assert [(p.span, p.first, p.last) for p in win.parts] == parts
    assert win.start == parts[0][1] * parts[0][0]
    assert win.end == now
    covered: list[int] = []  # every minute from the start to now, exactly once
    for p in win.parts:
        per = p.span // 60
        covered += range(p.first * per, (p.last + 1) * per)
    first = int(win.start // 60)
    assert covered == list(range(first, first + len(covered)))
    assert covered[-1] >= int(now // 60)
    assert win.by_minute == (seconds <= 86_400)
    latency: list[int] = []  # the latency rollups cover the same, from a 10-minute boundary
    for p in win.latency_parts:
        per = p.span // 60
        latency += range(p.first * per, (p.last + 1) * per)
    assert latency == list(range(latency[0], latency[0] + len(latency)))
    assert first - 9 <= latency[0] <= first
    assert latency[-1] >= covered[-1]
    assert len(win.latency_parts) <= 2
    assert all(p.span in (600, 3600) for p in win.latency_parts)


def test_an_hour_aligned_window_needs_no_minutes() -> None:
    win = st.window(3600, 1_800_003_600.0)  # exactly on an hour
    assert [(p.span, p.first, p.last) for p in win.parts] == [(3600, 500_000, 500_001)]
    assert len(win.minutes) == 61


@pytest.mark.parametrize("seconds", [0, 59, 30 * 86_400 + 1])
def test_a_window_is_one_minute_to_thirty_days(seconds: float) -> None:
    with pytest.raises(ValueError, match="1m to 30d"):
        st.window(seconds, NOW)


# --------------------------------------------------------------------------- every backend


async def test_stats_count_exactly_the_attempts_in_the_window(any_store: Store) -> None:
    now = time.time()
    win = st.window(3600, now)
    await seed_attempts(
        any_store,
        "a",
        [
            (win.start - 0.5, 10.0, True),  # just before the window: not counted
            (win.start + 0.5, 20.0, True),  # its first minute
            (now - 600, 30.0, False),
            (now - 1, 40.0, True),
        ],
    )
    await seed_attempts(any_store, "b", [(now - 5, 500.0, False)], tag="b")
    result = await any_store.attempt_stats(st.window(3600, now), endpoint="a")
    a = result.total
    assert (a.succeeded, a.failed, a.attempts) == (2, 1, 3)
    assert a.success_rate == pytest.approx(2 / 3)
    assert (a.p50, a.p99) == (30.0, 40.0)  # exact: nearest rank of 20, 30, 40
    assert a.last_success_at == pytest.approx(now - 1)
    assert a.last_failure_at == pytest.approx(now - 600)
    assert set(result.endpoints) == {"a"}
    series = result.by_minute
    assert series is not None
    assert len(series) == len(win.minutes) == 61
    assert [m.minute for m in series] == list(win.minutes)
    assert sum(m.succeeded for m in series) == 2
    assert sum(m.failed for m in series) == 1
    assert series[0].succeeded == 1  # the attempt half a second into the window
    failed_minute = int((now - 600) // 60)
    assert [m.failed for m in series if m.minute == failed_minute] == [1]


async def test_stats_of_every_endpoint_add_up(any_store: Store) -> None:
    now = time.time()
    await seed_attempts(any_store, "a", [(now - 30, 1.0, True), (now - 20, 3.0, False)])
    await seed_attempts(any_store, "b", [(now - 10, 2.0, True)], tag="b")
    result = await any_store.attempt_stats(st.window(600, now))
    assert {e: (t.succeeded, t.failed) for e, t in result.endpoints.items()} == {
        "a": (1, 1),
        "b": (1, 0),
    }
    assert (result.total.succeeded, result.total.failed) == (2, 1)
    assert (result.total.p50, result.total.p99) == (2.0, 3.0)
    assert result.total.last_success_at == pytest.approx(now - 10)


async def test_an_endpoint_without_attempts_has_empty_stats(any_store: Store) -> None:
    result = await any_store.attempt_stats(st.window(86_400, time.time()), endpoint="a")
    t = result.total
    assert (t.attempts, t.success_rate, t.p50, t.p99, t.last_success_at) == (
        0,
        None,
        None,
        None,
        None,
    )
    assert result.by_minute is not None
    assert len(result.by_minute) == 1441
    assert all(m.succeeded == m.failed == 0 for m in result.by_minute)


async def test_percentiles_past_the_exact_limit_come_from_the_histogram_within_one_percent(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    latencies = [1.0 + (i * 7919 % 1000) * 0.731 for i in range(1000)]
    await seed_attempts(
        any_store, "a", [(now - 1 - i * 0.01, v, True) for i, v in enumerate(latencies)]
    )
    exact = sorted(latencies)
    whole = await any_store.attempt_stats(st.window(3600, now), endpoint="a")
    assert (whole.total.p50, whole.total.p99) == (
        round(exact[499], 3),
        round(exact[989], 3),
    )
    monkeypatch.setattr(st, "EXACT_LIMIT", 100)
    sketched = await any_store.attempt_stats(st.window(3600, now), endpoint="a")
    assert sketched.total.attempts == 1000
    for got, want in ((sketched.total.p50, exact[499]), (sketched.total.p99, exact[989])):
        assert got is not None
        assert abs(got - want) <= 0.01 * want
        assert got != round(want, 3)  # really the histogram's value


async def test_windows_over_a_day_count_by_hour_without_by_minute(any_store: Store) -> None:
    now = time.time()
    await seed_attempts(
        any_store,
        "a",
        [(now - 3 * 86_400, 5.0, True), (now - 2 * 86_400, 5.0, False), (now - 60, 5.0, True)],
    )
    week = await any_store.attempt_stats(st.window(7 * 86_400, now), endpoint="a")
    assert (week.total.succeeded, week.total.failed) == (2, 1)
    assert week.by_minute is None
    day = await any_store.attempt_stats(st.window(86_400, now), endpoint="a")
    assert (day.total.succeeded, day.total.failed) == (1, 0)


async def test_purging_keeps_every_window_answer_and_drops_old_minutes(any_store: Store) -> None:
    now = time.time()
    await seed_attempts(
        any_store,
        "a",
        [(now - 26 * 3600, 5.0, True), (now - 10 * 86_400, 7.0, False), (now - 5, 9.0, True)],
    )
    windows = [st.window(s, now) for s in (3600, 86_400, 7 * 86_400, 30 * 86_400)]
    before = [await any_store.attempt_stats(w, endpoint="a") for w in windows]
    assert await any_store.purge_stats(now=now) > 0  # the minute rows 26 h and 10 d old
    after = [await any_store.attempt_stats(w, endpoint="a") for w in windows]
    assert after == before
    assert await any_store.purge_stats(now=now) == 0
    later = st.window(30 * 86_400, now + 29 * 86_400)  # holds only the recent attempt
    assert (await any_store.attempt_stats(later, endpoint="a")).total.attempts == 1
    assert await any_store.purge_stats(now=later.end) > 0  # the hour of the 10-day-old one
    assert (await any_store.attempt_stats(later, endpoint="a")).total.attempts == 1
    assert await any_store.purge_stats(now=now + 40 * 86_400) > 0
    assert await any_store.purge_stats(now=now + 40 * 86_400) == 0


async def test_deleting_an_endpoint_forgets_its_stats(any_store: Store) -> None:
    now = time.time()
    await any_store.create_endpoint("api1", {"url": "http://x"}, [])
    await seed_attempts(any_store, "api1", [(now - 5, 5.0, True)])
    assert (await any_store.attempt_stats(st.window(60, now), endpoint="api1")).total.attempts == 1
    await any_store.delete_endpoint("api1")
    await any_store.create_endpoint("api1", {"url": "http://x"}, [])
    assert (await any_store.attempt_stats(st.window(60, now), endpoint="api1")).total.attempts == 0


async def test_retrying_counts_pending_deliveries_that_were_attempted(any_store: Store) -> None:
    from tests.support import finish, new_event

    await any_store.ingest([new_event("e1", "a"), new_event("e2", "a"), new_event("e3", "b")])
    await finish(any_store, "dlv_e1_a", "pending", 500)  # waits for a retry
    await finish(any_store, "dlv_e2_a", "failed", 500)
    assert await any_store.count_retrying() == 1


# --------------------------------------------------------------------------- SQLite


async def test_the_migration_backfills_stats_from_the_attempts_on_record(tmp_path: Path) -> None:
    """A database from before stats (schema 4) gets its recent attempts' rollups."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:4]:
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
    db.execute("PRAGMA user_version=4")
    now = time.time()
    db.execute(
        "INSERT INTO endpoints (id, source, created_at, updated_at) VALUES ('a', 'config', ?, ?)",
        (now, now),
    )
    rows = [(f"d{i}", now - 60 * i, 10.0 + i, None if i % 3 else "HTTP 500") for i in range(10)]
    for delivery_id, at, latency, error in rows:
        db.execute(
            "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status, created_at,"
            " updated_at) VALUES (?, 'e', 'a', 't', 'failed', ?, ?)",
            (delivery_id, at, at),
        )
        db.execute(
            "INSERT INTO attempts (delivery_id, n, started_at, latency_ms, error)"
            " VALUES (?, 1, ?, ?, ?)",
            (delivery_id, at, latency, error),
        )
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        result = await store.attempt_stats(st.window(3600, time.time()), endpoint="a")
    finally:
        await store.close()
    assert (result.total.succeeded, result.total.failed) == (6, 4)
    assert result.total.p50 == 14.0  # exact: the 5th of 10..19
    assert result.total.last_failure_at == pytest.approx(now)
    assert math.isclose(result.total.last_success_at or 0, now - 60)


# --------------------------------------------------------------------------- PostgreSQL


async def test_the_postgres_migration_backfills_stats_from_the_attempts_on_record() -> None:
    """A PostgreSQL database from before stats (schema 2) gets its recent attempts' rollups,
    with the same buckets as Python's (the exact percentile of ten attempts, and the
    histogram's, agree with stats.bucket)."""
    from tests import pg_server

    dsn = pg_server.fresh_database()  # skips, saying why, without a server
    import psycopg

    from hookd.store.pg import PostgresStore
    from hookd.store.pg_schema import MIGRATIONS as PG_MIGRATIONS

    now = time.time()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "CREATE TABLE hookd_schema (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, script in enumerate(PG_MIGRATIONS[:2], start=1):
            db.execute(script)
            db.execute("INSERT INTO hookd_schema (version) VALUES (%s)", (number,))
        db.execute(
            "INSERT INTO endpoints (id, source, created_at, updated_at)"
            " VALUES ('a', 'config', %s, %s)",
            (now, now),
        )
        for i in range(10):
            at, latency = now - 60 * i, 10.0 + i * 3.7
            db.execute(
                "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
                " created_at, updated_at) VALUES (%s, 'e', 'a', 't', 'failed', %s, %s)",
                (f"d{i}", at, at),
            )
            db.execute(
                "INSERT INTO attempts (delivery_id, n, started_at, latency_ms, error)"
                " VALUES (%s, 1, %s, %s, %s)",
                (f"d{i}", at, latency, None if i % 3 else "HTTP 500"),
            )
    store = PostgresStore(dsn)
    await store.open()
    try:
        result = await store.attempt_stats(st.window(3600, time.time()), endpoint="a")
    finally:
        await store.close()
    assert (result.total.succeeded, result.total.failed) == (6, 4)
    assert result.total.p50 == round(10.0 + 4 * 3.7, 3)  # exact: the 5th of ten
    with psycopg.connect(dsn, autocommit=True) as db:
        rows = db.execute(
            "SELECT bucket, sum(n) FROM attempt_latency WHERE span = 3600 GROUP BY bucket"
        ).fetchall()
    expected: dict[int, int] = {}
    for i in range(10):
        expected[st.bucket(10.0 + i * 3.7)] = expected.get(st.bucket(10.0 + i * 3.7), 0) + 1
    assert {int(b): int(n) for b, n in rows} == expected
