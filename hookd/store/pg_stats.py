"""PostgreSQL: attempt stats (SPEC §14) from the same rollups as SQLite's
(:mod:`hookd.store.sqlite_stats`; what they hold and how a window reads them is in
:mod:`hookd.store.stats`).

Several processes record attempts at once, so a batch's rollups are summed in Python first
(:func:`rollup_rows`) and upserted in one sorted order at the end of the batch's transaction:
two batches never take the same rollup rows in opposite orders (no deadlock), and a busy
minute costs one upsert a batch, not one an attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookd.store import pg_conn as pg
from hookd.store import sql as shared_sql
from hookd.store import stats
from hookd.store.records import AttemptResult

CountKey = tuple[str, int, int]  # endpoint, span, slot
LatencyKey = tuple[str, int, int, int]  # endpoint, span, slot, bucket
Counted = tuple[int, int, float | None, float | None]  # succeeded, failed, last of each

_COUNT = """
INSERT INTO attempt_counts (endpoint_id, span, slot, succeeded, failed, last_success_at,
    last_failure_at) VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (endpoint_id, span, slot) DO UPDATE SET
    succeeded = attempt_counts.succeeded + excluded.succeeded,
    failed = attempt_counts.failed + excluded.failed,
    last_success_at = greatest(attempt_counts.last_success_at, excluded.last_success_at),
    last_failure_at = greatest(attempt_counts.last_failure_at, excluded.last_failure_at)
"""
_LATENCY = """
INSERT INTO attempt_latency (endpoint_id, span, slot, bucket, n) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (endpoint_id, span, slot, bucket) DO UPDATE SET n = attempt_latency.n + excluded.n
"""
_TABLES = ("attempt_counts", "attempt_latency")


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def rollup_rows(
    results: Sequence[AttemptResult],
) -> tuple[list[tuple[CountKey, Counted]], list[tuple[LatencyKey, int]]]:
    """The rollup increments of recorded attempts, one per row, in key order."""
    counts: dict[CountKey, Counted] = {}
    latency: dict[LatencyKey, int] = {}
    for r in results:
        ok = r.status == "succeeded"
        for span in stats.COUNT_SPANS:
            key = (r.endpoint, span, int(r.started_at // span))
            s, f, last_ok, last_bad = counts.get(key, (0, 0, None, None))
            counts[key] = (
                s + ok,
                f + (not ok),
                _later(last_ok, r.started_at if ok else None),
                _later(last_bad, None if ok else r.started_at),
            )
        index = stats.bucket(r.latency_ms)
        for span in stats.LATENCY_SPANS:
            lkey = (r.endpoint, span, int(r.started_at // span), index)
            latency[lkey] = latency.get(lkey, 0) + 1
    return sorted(counts.items()), sorted(latency.items())


async def tally(conn: Any, results: Sequence[AttemptResult]) -> None:
    """In the batch's transaction: add the recorded attempts to their rollups."""
    if not results:
        return
    counts, latency = rollup_rows(results)
    async with conn.cursor() as cur:
        await cur.executemany(_COUNT, [(*key, *value) for key, value in counts])
        await cur.executemany(_LATENCY, [(*key, n) for key, n in latency])


async def forget_endpoint(conn: Any, endpoint_id: str) -> None:
    """In the endpoint's delete transaction: its rollups go with it."""
    for table in _TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE endpoint_id = %s", (endpoint_id,))


class PgStats:
    pool: Any

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def attempt_stats(
        self, win: stats.Window, *, endpoint: str | None = None
    ) -> stats.AttemptStats:
        rows, params = shared_sql.stats_parts("attempt_counts", win.parts, endpoint, "%s")
        counts = {
            str(e): stats.Counts(
                succeeded=int(ok),
                failed=int(bad),
                last_success_at=last_ok,
                last_failure_at=last_bad,
            )
            for e, ok, bad, last_ok, last_bad in await self._fetch(
                "SELECT endpoint_id, sum(succeeded), sum(failed), max(last_success_at),"
                f" max(last_failure_at) FROM ({rows}) AS c GROUP BY endpoint_id",
                params,
            )
        }
        rows, params = shared_sql.stats_parts("attempt_latency", win.latency_parts, endpoint, "%s")
        histograms: dict[str, dict[int, int]] = {}
        for e, index, n in await self._fetch(
            f"SELECT endpoint_id, bucket, sum(n) FROM ({rows}) AS l GROUP BY endpoint_id, bucket",
            params,
        ):
            histograms.setdefault(str(e), {})[int(index)] = int(n)
        exact: dict[str, stats.Ranked] | None = None
        exact_total: stats.Ranked | None = None
        if sum(c.succeeded + c.failed for c in counts.values()) <= stats.EXACT_LIMIT:
            exact, exact_total = await self._ranked(win, endpoint)
        minutes = await self._minutes(win, endpoint) if win.by_minute else None
        return stats.summarize(
            win, counts, histograms, exact=exact, exact_total=exact_total, minutes=minutes
        )

    async def _ranked(
        self, win: stats.Window, endpoint: str | None
    ) -> tuple[dict[str, stats.Ranked], stats.Ranked | None]:
        """Exact p50 and p99 of the window's attempts on record: per endpoint, and together."""
        where, params = shared_sql.stats_selection(endpoint, "%s")
        values: dict[str, list[float]] = {}
        for e, latency in await self._fetch(
            f"SELECT endpoint_id, latency_ms FROM attempts WHERE {where} AND started_at >= %s",
            [*params, win.start],
        ):
            values.setdefault(str(e), []).append(float(latency))
        every = sorted(v for found in values.values() for v in found)
        return (
            {key: _rank_all(sorted(found)) for key, found in values.items()},
            _rank_all(every) if every else None,
        )

    async def _minutes(self, win: stats.Window, endpoint: str | None) -> dict[int, tuple[int, int]]:
        where, params = shared_sql.stats_selection(endpoint, "%s")
        minutes = win.minutes
        return {
            int(slot): (int(ok), int(bad))
            for slot, ok, bad in await self._fetch(
                "SELECT slot, sum(succeeded), sum(failed) FROM attempt_counts"
                f" WHERE {where} AND span = %s AND slot BETWEEN %s AND %s GROUP BY slot",
                [*params, stats.MINUTE, minutes.start, minutes.stop - 1],
            )
        }

    async def count_retrying(self) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM deliveries WHERE status = 'pending' AND attempt_count > 0", ()
        )
        return int(rows[0][0])

    async def purge_stats(self, *, now: float) -> int:
        """Rollups too old for any window, and those of endpoints that are gone, by primary-key
        ranges (one endpoint at a time)."""
        seen = await self._fetch(
            "SELECT c.endpoint_id, e.id IS NOT NULL FROM (SELECT DISTINCT endpoint_id"
            " FROM attempt_counts) AS c LEFT JOIN endpoints e ON e.id = c.endpoint_id",
            (),
        )
        spans = sorted({*stats.COUNT_SPANS, *stats.LATENCY_SPANS})
        deleted = 0
        try:
            async with self.pool.connection() as conn:
                for endpoint_id, live in seen:
                    for table in _TABLES:
                        if not live:
                            cur = await conn.execute(
                                f"DELETE FROM {table} WHERE endpoint_id = %s", (endpoint_id,)
                            )
                            deleted += int(cur.rowcount)
                            continue
                        for span in spans:
                            keep = stats.KEEP_HOURS_S if span == stats.HOUR else stats.KEEP_FINE_S
                            cur = await conn.execute(
                                f"DELETE FROM {table} WHERE endpoint_id = %s AND span = %s"
                                " AND slot < %s",
                                (endpoint_id, span, int((now - keep) // span)),
                            )
                            deleted += int(cur.rowcount)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "retention failed") from exc
        return deleted


def _rank_all(values: list[float]) -> stats.Ranked:
    return stats.Ranked(
        count=len(values),
        p50=values[stats.rank(50, len(values)) - 1],
        p99=values[stats.rank(99, len(values)) - 1],
    )
