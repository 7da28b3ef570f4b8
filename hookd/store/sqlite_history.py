"""SQLite: the history, operator and retention queries of :class:`~hookd.store.sqlite.
SQLiteStore` (which supplies the connections and the writer).

History pages are keyset pages on the delivery's ``seq`` (AUTOINCREMENT, never reused), newest
first; their cursors are opaque (:func:`hookd.store.rules.encode_cursor`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence

import aiosqlite

from hookd.store import sql as shared_sql
from hookd.store import sqlite_schema as schema
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
from hookd.store.sqlite_schema import marks
from hookd.store.sqlite_writer import Writer

# deliveries to an endpoint whose tenant is exactly the scope's (a tenant sees nothing else)
_SCOPE = shared_sql.SCOPE


class SQLiteHistory:
    _writer: Writer

    @property
    def reader(self) -> aiosqlite.Connection:
        raise NotImplementedError

    @property
    def admin(self) -> aiosqlite.Connection:
        raise NotImplementedError

    # -- history

    async def deliveries(
        self, where: DeliveryFilter, *, limit: int, cursor: str | None = None
    ) -> Page[DeliveryRow]:
        where_sql, params = shared_sql.delivery_where(
            where, cursor, glob=lambda pattern: ("event_type GLOB ?", pattern)
        )
        sql_text = "SELECT * FROM deliveries" + where_sql
        sql_text += " ORDER BY seq DESC LIMIT ?"
        params.append(limit + 1)
        async with self.admin.execute(sql_text, params) as cur:
            rows = list(await cur.fetchall())
        more = len(rows) > limit
        page = rows[:limit]
        return Page(
            items=[schema.delivery(row) for row in page],
            next_cursor=encode_cursor("d", int(page[-1]["seq"])) if more else None,
        )

    async def delivery(self, delivery_id: str, *, scope: str | None = None) -> DeliveryRow | None:
        sql, params = "SELECT * FROM deliveries WHERE id = ?", [delivery_id]
        if scope is not None:  # one query either way: absent and out of scope look the same
            sql += f" AND {_SCOPE}"
            params += [scope, scope]
        async with self.admin.execute(sql, params) as cur:
            row = await cur.fetchone()
        return schema.delivery(row) if row else None

    async def attempts(self, delivery_id: str) -> list[AttemptRow]:
        async with self.admin.execute(
            "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY n", (delivery_id,)
        ) as cur:
            return [schema.attempt(row) for row in await cur.fetchall()]

    async def event(self, event_id: str, *, scope: str | None = None) -> EventRow | None:
        sql, params = "SELECT * FROM events WHERE id = ?", [event_id]
        if scope is not None:
            sql += " AND tenant = ?"
            params.append(scope)
        async with self.admin.execute(sql, params) as cur:
            row = await cur.fetchone()
        return schema.event(row) if row else None

    async def event_deliveries(
        self, event_id: str, *, scope: str | None = None
    ) -> list[DeliveryRow]:
        sql, params = "SELECT * FROM deliveries WHERE event_id = ?", [event_id]
        if scope is not None:
            sql += f" AND {_SCOPE}"
            params += [scope, scope]
        async with self.admin.execute(sql + " ORDER BY seq", params) as cur:
            return [schema.delivery(row) for row in await cur.fetchall()]

    # -- tenants

    async def tenants(self, *, limit: int, cursor: str | None = None) -> Page[TenantRow]:
        (after,) = decode_cursor("t", cursor, str) if cursor else ("",)
        async with self.admin.execute(
            "SELECT id FROM tenants WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1)
        ) as cur:
            names = [str(row[0]) for row in await cur.fetchall()]
        more = len(names) > limit
        names = names[:limit]
        rows = [await self._tenant(name) for name in names]
        return Page(items=rows, next_cursor=encode_cursor("t", names[-1]) if more else None)

    async def _tenant(self, tenant: str) -> TenantRow:
        async with self.admin.execute(
            "SELECT count(*) FROM endpoints WHERE tenant = ?", (tenant,)
        ) as cur:
            row = await cur.fetchone()
        counts = {"pending": 0, "succeeded": 0, "failed": 0}
        async with self.admin.execute(
            "SELECT status, count(*) FROM deliveries INDEXED BY deliveries_tenant"
            " WHERE tenant = ? GROUP BY status",
            (tenant,),
        ) as cur:
            for status, count in await cur.fetchall():
                counts[status] = int(count)
        return TenantRow(tenant=tenant, endpoints=int(row[0]) if row else 0, deliveries=counts)

    async def token_generation(self, tenant: str) -> int:
        async with self.reader.execute(
            "SELECT generation FROM tenant_tokens WHERE tenant = ?", (tenant,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def revoke_tokens(self, tenant: str, now: float) -> int:
        def apply(db: sqlite3.Connection) -> int:
            db.execute(
                "INSERT INTO tenant_tokens (tenant, generation) VALUES (?, 1)"
                " ON CONFLICT(tenant) DO UPDATE SET generation = generation + 1",
                (tenant,),
            )
            with contextlib.closing(
                db.execute("SELECT generation FROM tenant_tokens WHERE tenant = ?", (tenant,))
            ) as cur:
                return int(cur.fetchone()[0])

        return await self._writer.run(apply)

    # -- operator actions: retry, replay

    async def retry_failed(self, delivery_id: str, now: float) -> str | None:
        def apply(db: sqlite3.Connection) -> tuple[str | None, int]:
            with contextlib.closing(
                db.execute("SELECT status FROM deliveries WHERE id = ?", (delivery_id,))
            ) as cur:
                row = cur.fetchone()
            if row is None or row[0] != "failed":
                return (row[0] if row else None), 0
            cur = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?"
                " WHERE id = ? AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = endpoint_id)",
                (now, now, delivery_id),
            )
            return ("failed", 1) if cur.rowcount == 1 else ("orphaned", 0)

        return await self._writer.run_counted(apply)

    async def requeue(
        self, endpoint_id: str, *, since: float, statuses: Sequence[str], now: float
    ) -> int:
        wanted = [s for s in statuses if s in ("succeeded", "failed")]
        if not wanted:
            return 0

        def apply(db: sqlite3.Connection) -> tuple[int, int]:
            cur = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?"
                f" WHERE endpoint_id = ? AND created_at >= ? AND status IN ({marks(wanted)})",
                (now, now, endpoint_id, since, *wanted),
            )
            return cur.rowcount, cur.rowcount

        return await self._writer.run_counted(apply)

    async def missed_events(
        self, endpoint_id: str, *, since: float, limit: int, cursor: str | None = None
    ) -> Page[EventRow]:
        (after,) = decode_cursor("e", cursor, int) if cursor else (0,)
        sql = (
            "SELECT rowid, * FROM events e WHERE e.rowid > ? AND e.created_at >= ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.event_id = e.id AND d.endpoint_id = ?)"
            " ORDER BY e.rowid LIMIT ?"
        )
        async with self.admin.execute(sql, (after, since, endpoint_id, limit)) as cur:
            rows = list(await cur.fetchall())
        more = len(rows) == limit
        return Page(
            items=[schema.event(row) for row in rows],
            next_cursor=encode_cursor("e", int(rows[-1]["rowid"])) if more else None,
        )

    async def add_deliveries(
        self, endpoint_id: str, items: Sequence[tuple[str, str]], *, origin: str, now: float
    ) -> int:
        def apply(db: sqlite3.Connection) -> tuple[int, int]:
            created = 0
            for delivery_id, event_id in items:
                cur = db.execute(
                    "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
                    " next_attempt_at, origin, created_at, updated_at)"
                    " SELECT ?, e.id, ?, e.type, 'pending', ?, ?, ?, ? FROM events e"
                    " WHERE e.id = ? AND NOT EXISTS (SELECT 1 FROM deliveries d"
                    " WHERE d.event_id = e.id AND d.endpoint_id = ?)",
                    (delivery_id, endpoint_id, now, origin, now, now, event_id, endpoint_id),
                )
                created += cur.rowcount
            return created, created

        return await self._writer.run_counted(apply)

    # -- retention

    async def purge_deliveries(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        """Candidates are found on a read connection (scanning ``seq`` upward), so the write
        transaction only deletes by key and stays short."""
        (after,) = decode_cursor("pd", cursor, int) if cursor else (0,)
        async with self.admin.execute(
            "SELECT seq, id FROM deliveries WHERE seq > ? AND status != 'pending'"
            " AND updated_at < ? ORDER BY seq LIMIT ?",
            (after, before, limit),
        ) as cur:
            rows = [(int(r[0]), str(r[1])) for r in await cur.fetchall()]
        if not rows:
            return Purged(rows=0, attempts=0, resume=None)
        ids = [i for _, i in rows]

        def apply(db: sqlite3.Connection) -> tuple[int, int]:
            cur = db.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries"
                f" WHERE id IN ({marks(ids)}) AND status != 'pending' AND updated_at < ?)",
                (*ids, before),
            )
            attempts = cur.rowcount
            cur = db.execute(
                f"DELETE FROM deliveries WHERE id IN ({marks(ids)})"
                " AND status != 'pending' AND updated_at < ?",
                (*ids, before),
            )
            return cur.rowcount, attempts

        deleted, attempts = await self._writer.run(apply)
        resume = encode_cursor("pd", rows[-1][0]) if len(rows) == limit else None
        return Purged(rows=deleted, attempts=attempts, resume=resume)

    async def purge_events(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        (after,) = decode_cursor("pe", cursor, int) if cursor else (0,)
        async with self.admin.execute(
            "SELECT e.rowid, e.id FROM events e WHERE e.rowid > ? AND e.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)"
            " ORDER BY e.rowid LIMIT ?",
            (after, before, limit),
        ) as cur:
            rows = [(int(r[0]), str(r[1])) for r in await cur.fetchall()]
        if not rows:
            return Purged(rows=0, attempts=0, resume=None)
        ids = [i for _, i in rows]

        def apply(db: sqlite3.Connection) -> int:
            cur = db.execute(
                f"DELETE FROM events WHERE id IN ({marks(ids)}) AND created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                (*ids, before),
            )
            return cur.rowcount

        deleted = await self._writer.run(apply)
        resume = encode_cursor("pe", rows[-1][0]) if len(rows) == limit else None
        return Purged(rows=deleted, attempts=0, resume=resume)

    # -- counts

    async def count_pending(self) -> int:
        async with self.reader.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counts_by_status(self) -> dict[str, int]:
        out = {"pending": 0, "succeeded": 0, "failed": 0}
        async with self.admin.execute(
            "SELECT status, count(*) FROM deliveries GROUP BY status"
        ) as cur:
            for row in await cur.fetchall():
                out[row[0]] = int(row[1])
        return out

    async def count_due(self, now: float) -> int:
        async with self.admin.execute(
            "SELECT count(*) FROM deliveries d INDEXED BY deliveries_due"
            " JOIN endpoints e ON e.id = d.endpoint_id"
            " AND e.enabled = 1 WHERE d.status = 'pending' AND d.next_attempt_at <= ?",
            (now,),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0
