"""PostgreSQL: the delivery path of :class:`~hookd.store.pg.PostgresStore` — due pages, jobs,
claims under leases and per-endpoint limits, and fenced records.

A claim is one short transaction (never open across the HTTP call). It takes the delivery rows
``FOR UPDATE SKIP LOCKED`` and gives them a lease: a fencing token from the ``leases`` sequence
(``lease``), this process (``locked_by``) and an expiry on the database clock
(``locked_until``). ``next_attempt_at`` moves to the expiry too, so a leased delivery is not due
for anyone else, and is due again by itself when a dead process's lease runs out: every process
finds it then (:meth:`ready`), without a sweep. The attempt's record applies only while the
lease token is unchanged and the delivery is still pending at ``n - 1`` attempts, and clears the
lease.

Limits across processes: with ``limits``, the claim first locks the endpoint's row ``FOR NO KEY
UPDATE SKIP LOCKED`` (ingest takes ``FOR KEY SHARE``, which does not conflict, so ingest is never
blocked; a process that finds the row locked retries in a few milliseconds). Holding it, it counts
the endpoint's live leases against ``max_in_flight`` (``fifo``: one, and only the oldest pending
delivery), and paces ``rate_limit`` with GCRA, whose theoretical arrival time ``tat`` lives in the
row. What the limits refuse comes back with ``retry_at``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from hookd.store import pg_conn as pg
from hookd.store import pg_schema as schema
from hookd.store import pg_stats, rules
from hookd.store import sql as shared_sql
from hookd.store.pg_batch import Batcher
from hookd.store.pg_ingest import insert_notices
from hookd.store.pg_schema import NOW
from hookd.store.records import AttemptResult, Claim, Job, Limits, Recorded

CONTENDED_S = 0.01  # another process is claiming for the endpoint: look again this soon
FULL_S = 0.05  # max_in_flight reached across processes: look again this soon

_CLAIM = f"""
UPDATE deliveries d SET lease = nextval('leases'), locked_by = %(node)s,
    locked_until = {NOW} + picked.lease, next_attempt_at = {NOW} + picked.lease
FROM (
    SELECT c.seq, j.lease FROM deliveries c
    JOIN endpoints e ON e.id = c.endpoint_id AND e.enabled
    JOIN unnest(%(ids)s::text[], %(counts)s::int[], %(leases)s::float8[]) AS j(id, n, lease)
        ON j.id = c.id
    WHERE c.status = 'pending' AND c.attempt_count = j.n
      AND (c.locked_until IS NULL OR c.locked_until <= {NOW})
    ORDER BY c.seq LIMIT %(limit)s FOR UPDATE OF c SKIP LOCKED
) AS picked
WHERE d.seq = picked.seq RETURNING d.id, d.lease
"""
_RECORD = """
UPDATE deliveries SET status = %s, attempt_count = %s, next_attempt_at = %s,
    last_status_code = %s, last_error = %s, updated_at = %s,
    lease = NULL, locked_by = NULL, locked_until = NULL
WHERE id = %s AND lease = %s AND status = 'pending' AND attempt_count = %s
"""
_UNLEASE = f"""
UPDATE deliveries SET lease = NULL, locked_by = NULL, locked_until = NULL,
    next_attempt_at = least(next_attempt_at, {NOW})
WHERE id = %s AND lease = %s AND status = 'pending'
"""
_ATTEMPT = """
INSERT INTO attempts (delivery_id, n, started_at, status_code, latency_ms, error,
    response_body, request_headers, endpoint_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (delivery_id, n) DO UPDATE SET started_at = excluded.started_at,
    status_code = excluded.status_code, latency_ms = excluded.latency_ms,
    error = excluded.error, response_body = excluded.response_body,
    request_headers = excluded.request_headers
"""


class PgDelivery:
    """The delivery path; the store supplies the pools, this node's id and the counters.

    Claims and releases go through ``claims_pool``, whose commits do not wait for the WAL flush
    (a claim lost in a crash is a lease that never was); records are group-committed, durably,
    through :attr:`records` (see :meth:`record_batch`).
    """

    pool: Any
    claims_pool: Any
    claims: Batcher[tuple[Job, float], int | None]
    records: Batcher[AttemptResult, Recorded]
    _limited: dict[str, Batcher[tuple[Job, float, Limits], tuple[int | None, float | None]]]
    _bump_pending: Callable[[int], None]

    @property
    def node_id(self) -> str:
        raise NotImplementedError

    async def _notify(self, conn: Any, topic: str, *, force: bool = False) -> None:
        raise NotImplementedError

    async def due(
        self, *, after: tuple[float, int], end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        sql = (
            "SELECT d.id, d.next_attempt_at, d.seq FROM deliveries d"
            " JOIN endpoints e ON e.id = d.endpoint_id AND e.enabled"
            " WHERE d.status = 'pending' AND (d.next_attempt_at, d.seq) > (%s, %s)"
            " AND d.next_attempt_at < %s ORDER BY d.next_attempt_at, d.seq LIMIT %s"
        )
        rows = await self._fetch(sql, (*after, end, limit))
        return [(row[0], row[1], row[2]) for row in rows]

    async def ready(self, *, per_endpoint: int, grace_s: float = 0.0) -> list[tuple[str, float]]:
        """Due for ``grace_s`` and unleased (leased ones are due at their lease's expiry)."""
        sql = (
            "SELECT r.id, r.next_attempt_at FROM endpoints e CROSS JOIN LATERAL ("
            " SELECT d.id, d.next_attempt_at FROM deliveries d"
            " WHERE d.endpoint_id = e.id AND d.status = 'pending'"
            " AND d.next_attempt_at <= %s ORDER BY d.next_attempt_at LIMIT %s) AS r"
            " WHERE e.enabled ORDER BY r.next_attempt_at"
        )
        rows = await self._fetch(sql, (time.time() - grace_s, per_endpoint))
        return [(row[0], row[1]) for row in rows]

    async def jobs(self, ids: Sequence[str]) -> list[Job]:
        if not ids:
            return []
        rows = await self._fetch(f"{schema.JOBS} WHERE d.id = ANY(%s) ORDER BY d.seq", (list(ids),))
        return [shared_sql.job(row) for row in rows]

    async def fifo_head(self, endpoint: str) -> Job | None:
        rows = await self._fetch(schema.FIFO_HEAD, (endpoint,))
        return shared_sql.job(rows[0]) if rows else None

    async def due_jobs(self, endpoint: str, *, now: float, limit: int) -> list[Job]:
        rows = await self._fetch(schema.DUE_JOBS, (endpoint, now, limit))
        return [shared_sql.job(row) for row in rows]

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                rows: list[tuple[Any, ...]] = await cur.fetchall()
                return rows
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database read failed") from exc

    # -- claims

    async def claim(
        self, jobs: Sequence[Job], *, lease_s: float, limits: Limits | None = None
    ) -> Claim:
        """Without limits, claims of concurrent attempts share one statement (:attr:`claims`)."""
        if not jobs:
            return Claim()
        if limits is None or limits == Limits():
            tokens = await asyncio.gather(*(self.claims.submit((j, lease_s)) for j in jobs))
            return _claimed(jobs, {j.id: t for j, t in zip(jobs, tokens, strict=True) if t})
        # Limited claims of one endpoint queue in this process and go together, one transaction
        # at a time: its lanes do not race each other for the endpoint's row
        batcher = self._limited.get(jobs[0].endpoint)
        if batcher is None:
            name = f"store.claims:{jobs[0].endpoint}"
            batcher = Batcher(name, self.claim_limited_batch, concurrency=1, max_batch=256)
            self._limited[jobs[0].endpoint] = batcher
            batcher.start()
        answers = await asyncio.gather(*(batcher.submit((j, lease_s, limits)) for j in jobs))
        leased = {j.id: token for j, (token, _) in zip(jobs, answers, strict=True) if token}
        waits = [retry_at for _, retry_at in answers if retry_at is not None]
        return _claimed(jobs, leased, min(waits) if waits else None)

    async def claim_limited_batch(
        self, items: Sequence[tuple[Job, float, Limits]]
    ) -> list[tuple[int | None, float | None]]:
        """The queued limited claims of one endpoint in one transaction (the newest limits):
        each one's token, or when to try again (None: not at all)."""
        jobs = [job for job, _, _ in items]
        leases = {job.id: lease for job, lease, _ in items}
        try:
            async with self.claims_pool.connection() as conn, conn.transaction():
                claim = await self._claim_limited(conn, jobs, leases, items[-1][2])
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "claim failed") from exc
        got = {job.id: job.lease for job in claim}
        answers: list[tuple[int | None, float | None]] = []
        for job in jobs:
            token = got.pop(job.id, None)
            answers.append((token, None if token else claim.retry_at))
        return answers

    async def claim_batch(self, items: Sequence[tuple[Job, float]]) -> list[int | None]:
        """One statement for the claims queued meanwhile: each one's token, or None."""
        jobs = [job for job, _ in items]
        try:
            async with self.claims_pool.connection() as conn:
                leased = await self._lease(conn, jobs, [lease for _, lease in items], len(jobs))
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "claim failed") from exc
        return [leased.pop(job.id, None) for job in jobs]  # (a repeated id: the first only)

    async def _lease(
        self, conn: Any, jobs: Sequence[Job], leases: Sequence[float], limit: int
    ) -> dict[str, int]:
        params = {
            "node": self.node_id,
            "ids": [j.id for j in jobs],
            "counts": [j.attempt_count for j in jobs],
            "leases": list(leases),
            "limit": limit,
        }
        cur = await conn.execute(_CLAIM, params)
        return {row[0]: int(row[1]) for row in await cur.fetchall()}

    async def _claim_limited(
        self, conn: Any, jobs: Sequence[Job], leases: dict[str, float], limits: Limits
    ) -> Claim:
        endpoint = jobs[0].endpoint
        cur = await conn.execute(
            f"SELECT enabled, tat, {NOW} FROM endpoints WHERE id = %s"
            " FOR NO KEY UPDATE SKIP LOCKED",
            (endpoint,),
        )
        row = await cur.fetchone()
        if row is None:  # another process is claiming for it (or it is gone)
            cur = await conn.execute("SELECT 1 FROM endpoints WHERE id = %s", (endpoint,))
            exists = await cur.fetchone() is not None
            return Claim(retry_at=time.time() + CONTENDED_S if exists else None)
        enabled, tat, now = bool(row[0]), float(row[1]), float(row[2])
        if not enabled:
            return Claim()
        candidates, wait = await self._allowed(conn, jobs, limits, endpoint, now)
        room = len(candidates)
        if limits.rate_limit and room:  # GCRA without burst: one start per interval
            if tat > now:
                room, wait = 0, tat - now
            elif room > 1:
                room, wait = 1, 1.0 / limits.rate_limit
        lease_of = [leases[j.id] for j in candidates]
        leased = await self._lease(conn, candidates, lease_of, room) if room else {}
        if leased and limits.rate_limit:
            await conn.execute(
                "UPDATE endpoints SET tat = %s WHERE id = %s",
                (max(tat, now) + 1.0 / limits.rate_limit, endpoint),
            )
        return _claimed(jobs, leased, None if wait is None else time.time() + wait)

    async def _allowed(
        self, conn: Any, jobs: Sequence[Job], limits: Limits, endpoint: str, now: float
    ) -> tuple[list[Job], float | None]:
        """Which jobs the fifo head and ``max_in_flight`` let through now, and, when they hold
        some back, how long to wait before asking again."""
        candidates = list(jobs)
        wait: float | None = None
        if limits.fifo:
            cur = await conn.execute(
                "SELECT id, locked_until FROM deliveries WHERE endpoint_id = %s"
                " AND status = 'pending' ORDER BY seq LIMIT 1",
                (endpoint,),
            )
            head = await cur.fetchone()
            candidates = [j for j in jobs if head is not None and j.id == head[0]]
            if head is not None and head[1] is not None and head[1] > now:
                return [], head[1] - now  # the head is being attempted (by us or another)
        cap = 1 if limits.fifo else limits.max_in_flight
        if cap is not None:
            cur = await conn.execute(
                "SELECT count(*) FROM deliveries WHERE endpoint_id = %s AND locked_until > %s",
                (endpoint, now),
            )
            row = await cur.fetchone()
            room = max(0, cap - int(row[0] if row else 0))
            if room < len(candidates):
                candidates, wait = candidates[:room], FULL_S
        return candidates, wait

    async def release(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            async with self.claims_pool.connection() as conn, conn.transaction():
                await conn.execute(
                    "UPDATE deliveries SET lease = NULL, locked_by = NULL, locked_until = NULL,"
                    f" next_attempt_at = {NOW} WHERE id = ANY(%s) AND locked_by = %s"
                    " AND status = 'pending'",
                    (list(ids), self.node_id),
                )
                await self._notify(conn, "due", force=True)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "release failed") from exc

    # -- records

    async def record(self, results: Sequence[AttemptResult]) -> list[Recorded]:
        """Group-committed with the attempts other lanes end meanwhile (one WAL flush)."""
        return list(await asyncio.gather(*(self.records.submit(r) for r in results)))

    async def record_batch(self, results: Sequence[AttemptResult]) -> list[Recorded]:
        """One transaction for the batch, rows taken in (endpoint, delivery) order so that
        concurrent batches lock endpoint rows in one order."""
        now = time.time()
        order = sorted(
            range(len(results)), key=lambda i: (results[i].endpoint, results[i].delivery_id)
        )
        out: dict[int, Recorded] = {}
        delta = 0
        try:
            async with self.pool.connection() as conn, conn.transaction():
                for i in order:
                    out[i] = await self._record_one(conn, results[i], now)
                    delta += len(out[i].emitted)
                    delta -= out[i].applied and results[i].status != "pending"
                await pg_stats.tally(conn, [results[i] for i in order if out[i].applied])
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "recording the attempt failed") from exc
        self._bump_pending(delta)
        return [out[i] for i in range(len(results))]

    async def _record_one(self, conn: Any, r: AttemptResult, now: float) -> Recorded:
        cur = await conn.execute(
            _RECORD,
            (
                r.status,
                r.n,
                r.next_attempt_at,
                r.status_code,
                r.error,
                now,
                r.delivery_id,
                r.lease,
                r.n - 1,
            ),
        )
        if cur.rowcount != 1:
            await conn.execute(_UNLEASE, (r.delivery_id, r.lease))  # the claim ends either way
            return Recorded(delivery_id=r.delivery_id, applied=False)
        await conn.execute(
            _ATTEMPT,
            shared_sql.attempt_row(r),
        )
        if r.status == "pending" and r.next_attempt_at is not None:
            await self._notify(conn, "due")
        failures, disabled = await self._count(conn, r, now)
        made = rules.attempt_notices(r, failures, disabled, now)
        emitted = await insert_notices(conn, made, now) if made else []
        return Recorded(
            delivery_id=r.delivery_id,
            applied=True,
            consecutive_failures=failures,
            disabled=disabled,
            emitted=tuple(emitted),
        )

    async def _count(
        self, conn: Any, r: AttemptResult, now: float
    ) -> tuple[int | None, str | None]:
        """The endpoint's failure counter after ``r`` (None: unchanged), and a disable it causes
        (which every process hears of: the endpoints version moves, with a NOTIFY)."""
        if r.status == "succeeded":
            cur = await conn.execute(
                "UPDATE endpoints SET consecutive_failures = 0, updated_at = %s"
                " WHERE id = %s AND consecutive_failures != 0",
                (now, r.endpoint),
            )
            return (0 if cur.rowcount else None), None
        if r.status == "failed":
            cur = await conn.execute(
                "UPDATE endpoints SET consecutive_failures = consecutive_failures + 1,"
                " updated_at = %s WHERE id = %s RETURNING consecutive_failures, enabled",
                (now, r.endpoint),
            )
        elif r.disable_reason is None:
            return None, None
        else:
            cur = await conn.execute(
                "SELECT consecutive_failures, enabled FROM endpoints WHERE id = %s", (r.endpoint,)
            )
        row = await cur.fetchone()
        if row is None:
            return None, None
        failures = int(row[0])
        reason = rules.endpoint_change(r, failures, bool(row[1]))
        if reason is not None:
            await conn.execute(
                "UPDATE endpoints SET enabled = false, disabled_reason = %s WHERE id = %s",
                (reason, r.endpoint),
            )
            await conn.execute(schema.BUMP_ENDPOINTS)
            await self._notify(conn, "endpoints", force=True)
        return (failures if r.status == "failed" else None), reason


def _claimed(jobs: Sequence[Job], leased: dict[str, int], retry_at: float | None = None) -> Claim:
    return Claim(
        (msgspec.structs.replace(j, lease=leased[j.id]) for j in jobs if j.id in leased),
        retry_at=retry_at,
    )
