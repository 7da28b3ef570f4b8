"""PostgreSQL: the history, operator and retention queries of :class:`~hookd.store.pg.
PostgresStore` (which supplies the pool and the pending counter).

History pages are keyset pages on the delivery's ``seq`` (an identity, never reused), newest
first, with opaque cursors (:func:`hookd.store.rules.encode_cursor`), as on SQLite. Retention
deletes by key in batches of a few hundred rows, each its own short transaction under a
transaction-level advisory lock, so one process purges at a time and ingest (which never
touches old rows) is not held up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hookd.store import pg_conn as pg
from hookd.store import pg_schema as schema
from hookd.store import sql as shared_sql
from hookd.store.records import (
    AttemptRow,
    DeliveryFilter,
    DeliveryRow,
    EventRow,
    Page,
    Purged,
    TenantRow,
)
from hookd.store.rules import decode_cursor, encode_cursor

# deliveries to an endpoint whose tenant is exactly the scope's (a tenant sees nothing else)
_SCOPE = shared_sql.SCOPE.replace("?", "%s")


class PgHistory:
    pool: Any
    _bump_pending: Callable[[int], None]

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _notify(self, conn: Any, topic: str, *, force: bool = False) -> None:
        raise NotImplementedError

    async def _write(self, sql: str, params: Sequence[Any], *, due: bool = False) -> int:
        """One statement in its own transaction; its row count. ``due``: tell the others."""
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(sql, params)
                count = int(cur.rowcount)
                if due and count:
                    await self._notify(conn, "due", force=True)
                return count
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc

    # -- history

    async def deliveries(
        self, where: DeliveryFilter, *, limit: int, cursor: str | None = None
    ) -> Page[DeliveryRow]:
        where_sql, params = shared_sql.delivery_where(
            where,
            cursor,
            glob=lambda pattern: ("event_type ~ ?", schema.glob_regex(pattern)),
            mark="%s",
        )
        sql_text = f"SELECT {schema.DELIVERY_COLUMNS}, seq FROM deliveries" + where_sql
        sql_text += " ORDER BY seq DESC LIMIT %s"
        params.append(limit + 1)
        rows = await self._fetch(sql_text, params)
        page = rows[:limit]
        return Page(
            items=[schema.delivery(row) for row in page],
            next_cursor=encode_cursor("d", int(page[-1][-1])) if len(rows) > limit else None,
        )

    async def delivery(self, delivery_id: str, *, scope: str | None = None) -> DeliveryRow | None:
        sql = f"SELECT {schema.DELIVERY_COLUMNS} FROM deliveries WHERE id = %s"
        params: list[Any] = [delivery_id]
        if scope is not None:  # one query either way: absent and out of scope look the same
            sql += f" AND {_SCOPE}"
            params += [scope, scope]
        rows = await self._fetch(sql, params)
        return schema.delivery(rows[0]) if rows else None

    async def attempts(self, delivery_id: str) -> list[AttemptRow]:
        rows = await self._fetch(
            "SELECT n, started_at, status_code, latency_ms, error, response_body,"
            " request_headers FROM attempts WHERE delivery_id = %s ORDER BY n",
            (delivery_id,),
        )
        return [schema.attempt(row) for row in rows]

    async def event(self, event_id: str, *, scope: str | None = None) -> EventRow | None:
        sql = f"SELECT {schema.EVENT_COLUMNS} FROM events WHERE id = %s"
        params: list[Any] = [event_id]
        if scope is not None:
            sql += " AND tenant = %s"
            params.append(scope)
        rows = await self._fetch(sql, params)
        return schema.event(rows[0]) if rows else None

    async def event_deliveries(
        self, event_id: str, *, scope: str | None = None
    ) -> list[DeliveryRow]:
        sql = f"SELECT {schema.DELIVERY_COLUMNS} FROM deliveries WHERE event_id = %s"
        params: list[Any] = [event_id]
        if scope is not None:
            sql += f" AND {_SCOPE}"
            params += [scope, scope]
        rows = await self._fetch(sql + " ORDER BY seq", params)
        return [schema.delivery(row) for row in rows]

    # -- tenants

    async def tenants(self, *, limit: int, cursor: str | None = None) -> Page[TenantRow]:
        (after,) = decode_cursor("t", cursor, str) if cursor else ("",)
        rows = await self._fetch(
            "SELECT id FROM tenants WHERE id > %s ORDER BY id LIMIT %s", (after, limit + 1)
        )
        names = [str(row[0]) for row in rows[:limit]]
        items = [await self._tenant(name) for name in names]
        more = len(rows) > limit
        return Page(items=items, next_cursor=encode_cursor("t", names[-1]) if more else None)

    async def _tenant(self, tenant: str) -> TenantRow:
        rows = await self._fetch("SELECT count(*) FROM endpoints WHERE tenant = %s", (tenant,))
        counts = {"pending": 0, "succeeded": 0, "failed": 0}
        for status, count in await self._fetch(
            "SELECT status, count(*) FROM deliveries WHERE tenant = %s GROUP BY status", (tenant,)
        ):
            counts[status] = int(count)
        return TenantRow(tenant=tenant, endpoints=int(rows[0][0]), deliveries=counts)

    async def token_generation(self, tenant: str) -> int:
        rows = await self._fetch(
            "SELECT generation FROM tenant_tokens WHERE tenant = %s", (tenant,)
        )
        return int(rows[0][0]) if rows else 0

    async def revoke_tokens(self, tenant: str, now: float) -> int:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO tenant_tokens (tenant, generation) VALUES (%s, 1)"
                    " ON CONFLICT (tenant) DO UPDATE"
                    " SET generation = tenant_tokens.generation + 1 RETURNING generation",
                    (tenant,),
                )
                row = await cur.fetchone()
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc
        return int(row[0]) if row else 0

    # -- operator actions: retry, replay

    async def retry_failed(self, delivery_id: str, now: float) -> str | None:
        rows = await self._fetch("SELECT status FROM deliveries WHERE id = %s", (delivery_id,))
        if not rows or rows[0][0] != "failed":
            return str(rows[0][0]) if rows else None
        count = await self._write(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = %s, updated_at = %s"
            " WHERE id = %s AND status = 'failed'"
            " AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = endpoint_id)",
            (now, now, delivery_id),
            due=True,
        )
        self._bump_pending(count)
        return "failed" if count == 1 else "orphaned"

    async def requeue(
        self, endpoint_id: str, *, since: float, statuses: Sequence[str], now: float
    ) -> int:
        wanted = [s for s in statuses if s in ("succeeded", "failed")]
        if not wanted:
            return 0
        count = await self._write(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = %s, updated_at = %s"
            " WHERE endpoint_id = %s AND created_at >= %s AND status = ANY(%s)",
            (now, now, endpoint_id, since, wanted),
            due=True,
        )
        self._bump_pending(count)
        return count

    async def missed_events(
        self, endpoint_id: str, *, since: float, limit: int, cursor: str | None = None
    ) -> Page[EventRow]:
        (after,) = decode_cursor("e", cursor, int) if cursor else (0,)
        rows = await self._fetch(
            f"SELECT {schema.EVENT_COLUMNS}, seq FROM events e"
            " WHERE e.seq > %s AND e.created_at >= %s AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.event_id = e.id AND d.endpoint_id = %s) ORDER BY e.seq LIMIT %s",
            (after, since, endpoint_id, limit),
        )
        return Page(
            items=[schema.event(row) for row in rows],
            next_cursor=encode_cursor("e", int(rows[-1][-1])) if len(rows) == limit else None,
        )

    async def add_deliveries(
        self, endpoint_id: str, items: Sequence[tuple[str, str]], *, origin: str, now: float
    ) -> int:
        if not items:
            return 0
        count = await self._write(
            "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
            " next_attempt_at, origin, created_at, updated_at, tenant)"
            " SELECT i.d, e.id, %s, e.type, 'pending', %s, %s, %s, %s, e.tenant"
            " FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS i(d, e_id, o)"
            " JOIN events e ON e.id = i.e_id"
            " WHERE NOT EXISTS (SELECT 1 FROM deliveries x"
            " WHERE x.event_id = e.id AND x.endpoint_id = %s) ORDER BY i.o",
            (
                endpoint_id,
                now,
                origin,
                now,
                now,
                [d for d, _ in items],
                [e for _, e in items],
                endpoint_id,
            ),
            due=True,
        )
        self._bump_pending(count)
        return count

    # -- retention

    async def purge_deliveries(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        (after,) = decode_cursor("pd", cursor, int) if cursor else (0,)
        rows = await self._fetch(
            "SELECT seq, id FROM deliveries WHERE seq > %s AND status != 'pending'"
            " AND updated_at < %s ORDER BY seq LIMIT %s",
            (after, before, limit),
        )
        if not rows:
            return Purged(rows=0, attempts=0, resume=None)
        ids = [str(r[1]) for r in rows]
        try:
            async with self.pool.connection() as conn, conn.transaction():
                if not await _purge_lock(conn):
                    return Purged(rows=0, attempts=0, resume=None)  # another process purges
                cur = await conn.execute(
                    "DELETE FROM deliveries WHERE id = ANY(%s) AND status != 'pending'"
                    " AND updated_at < %s RETURNING id",
                    (ids, before),
                )
                gone = [r[0] for r in await cur.fetchall()]
                cur = await conn.execute(
                    "DELETE FROM attempts WHERE delivery_id = ANY(%s)", (gone,)
                )
                attempts = int(cur.rowcount)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "retention failed") from exc
        resume = encode_cursor("pd", int(rows[-1][0])) if len(rows) == limit else None
        return Purged(rows=len(gone), attempts=attempts, resume=resume)

    async def purge_events(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        (after,) = decode_cursor("pe", cursor, int) if cursor else (0,)
        rows = await self._fetch(
            "SELECT e.seq, e.id FROM events e WHERE e.seq > %s AND e.created_at < %s"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)"
            " ORDER BY e.seq LIMIT %s",
            (after, before, limit),
        )
        if not rows:
            return Purged(rows=0, attempts=0, resume=None)
        try:
            async with self.pool.connection() as conn, conn.transaction():
                if not await _purge_lock(conn):
                    return Purged(rows=0, attempts=0, resume=None)
                cur = await conn.execute(
                    "DELETE FROM events WHERE id = ANY(%s) AND created_at < %s"
                    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                    ([str(r[1]) for r in rows], before),
                )
                deleted = int(cur.rowcount)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "retention failed") from exc
        resume = encode_cursor("pe", int(rows[-1][0])) if len(rows) == limit else None
        return Purged(rows=deleted, attempts=0, resume=resume)

    # -- counts

    async def count_pending(self) -> int:
        rows = await self._fetch("SELECT count(*) FROM deliveries WHERE status = 'pending'", ())
        return int(rows[0][0])

    async def counts_by_status(self) -> dict[str, int]:
        out = {"pending": 0, "succeeded": 0, "failed": 0}
        for status, count in await self._fetch(
            "SELECT status, count(*) FROM deliveries GROUP BY status", ()
        ):
            out[status] = int(count)
        return out

    async def count_due(self, now: float) -> int:
        rows = await self._fetch(
            "SELECT count(*) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
            " AND e.enabled WHERE d.status = 'pending' AND d.next_attempt_at <= %s",
            (now,),
        )
        return int(rows[0][0])


async def _purge_lock(conn: Any) -> bool:
    """One purger at a time across processes (held until this transaction ends)."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (schema.PURGE_LOCK,))
    row = await cur.fetchone()
    return bool(row and row[0])
