"""The PostgreSQL backend: one outbox shared by any number of ``hookd run`` processes.

``storage: {backend: postgres, dsn: ...}``. Each process opens a pool (psycopg 3, an optional
extra: :mod:`hookd.store.pg_conn`), migrates the schema under an advisory lock
(:mod:`hookd.store.pg_schema`), registers itself in ``nodes`` and listens for the others
(:mod:`hookd.store.pg_listen`). What is coordinated how:

- ingest: group commit per process, idempotency by unique constraints
  (:mod:`hookd.store.pg_ingest`);
- attempts: claims with leases, fencing and per-endpoint limits on the database
  (:mod:`hookd.store.pg_claims`); counters (``consecutive_failures``, the disable) in the rows;
- wakeups: ``NOTIFY`` (at most every ``NOTIFY_GAP_S`` per process for new work) plus each
  process's one-second poll of what is due and unclaimed (:meth:`ready`);
- endpoint changes: every change moves ``meta.endpoints`` and NOTIFYs; each process reloads its
  table on the notice or when its periodic check sees the version move
  (:mod:`hookd.cluster`);
- history, operator actions, retention: :mod:`hookd.store.pg_history`.

``pending`` is the count last read (at open and with each heartbeat) plus what this process
changed since: exact for one process, close for several; ``limits.max_pending`` is checked
against it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from hookd.errors import StoreError
from hookd.ids import new_id
from hookd.store import pg_conn as pg
from hookd.store import pg_schema as schema
from hookd.store import rules
from hookd.store.pg_batch import Batcher
from hookd.store.pg_claims import PgDelivery
from hookd.store.pg_history import PgHistory
from hookd.store.pg_ingest import IngestBatcher, insert_notices, note_tenants
from hookd.store.pg_listen import Listener
from hookd.store.pg_schema import CHANNEL, NOW
from hookd.store.pg_stats import PgStats, forget_endpoint
from hookd.store.records import (
    ENDPOINT_REMOVED,
    Accepted,
    AttemptResult,
    Changes,
    CommitStats,
    EndpointRow,
    Job,
    Limits,
    NewEvent,
    NodeRow,
    Notices,
    Recorded,
    Toggled,
)

log = structlog.get_logger("hookd.store")
NOTIFY_GAP_S = 0.1  # a process NOTIFYs new work at most this often
NODE_TTL_S = 15.0  # a node unseen for this long is not listed as live
NODE_FORGET_S = 3600.0  # and is deleted after this long
PENDING_REFRESH_S = 5.0


class PostgresStore(PgDelivery, PgHistory, PgStats):
    """The outbox on PostgreSQL (see the module docstring). ``open()`` connects and migrates."""

    def __init__(self, dsn: str, *, max_pending: int = 1_000_000) -> None:
        self.dsn = dsn
        self.where = pg.describe(dsn)
        self.max_pending = max_pending
        self.stats = CommitStats()
        self._node_id = new_id("node")
        self._pool: Any = None
        self._listener = Listener(dsn, self._node_id)
        self._ingest = IngestBatcher(
            pool=lambda: self.pool,
            stats=self.stats,
            max_pending=lambda: self.max_pending,
            notify=lambda conn: self._notify(conn, "due"),
        )
        self.records: Batcher[AttemptResult, Recorded] = Batcher(
            "store.records", self.record_batch, concurrency=2, max_batch=500
        )
        self.claims: Batcher[tuple[Job, float], int | None] = Batcher(
            "store.claims", self.claim_batch, concurrency=2, max_batch=500
        )
        self._claims_pool: Any = None
        self._limited: dict[
            str, Batcher[tuple[Job, float, Limits], tuple[int | None, float | None]]
        ] = {}
        self._notified = 0.0
        self._db_bytes = 0
        self._pending_read = 0.0

    @property
    def shared(self) -> bool:
        return True

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def pending(self) -> int:
        return self._ingest.pending

    def _bump_pending(self, delta: int) -> None:
        self._ingest.pending += delta

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    @property
    def claims_pool(self) -> Any:
        if self._claims_pool is None:
            raise StoreError("the store is not open")
        return self._claims_pool

    # -- lifecycle

    async def open(self) -> None:
        conn = await pg.connect(self.dsn)
        try:
            await schema.migrate(conn, self.where)
        except pg.DB_ERRORS as exc:
            raise StoreError(f"cannot migrate PostgreSQL ({self.where}): {pg.reason(exc)}") from exc
        finally:
            await conn.close()
        self._pool = await pg.open_pool(self.dsn)
        try:
            self._claims_pool = await pg.open_pool(self.dsn, ephemeral=True)
            await self._register()
            self._ingest.pending = await self.count_pending()
            self._pending_read = time.monotonic()
            await self._listener.start()
        except BaseException:
            await self.close()
            raise
        self._ingest.start()
        self.records.start()
        self.claims.start()

    async def _register(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO nodes (id, host, pid, started_at, last_seen_at)"
                f" VALUES (%s, %s, %s, {NOW}, {NOW})",
                (self._node_id, socket.gethostname(), os.getpid()),
            )
            cur = await conn.execute("SELECT pg_database_size(current_database())")
            row = await cur.fetchone()
            self._db_bytes = int(row[0]) if row else 0

    async def close(self) -> None:
        await self._ingest.close()
        await self.records.close()
        await self.claims.close()
        for batcher in self._limited.values():
            await batcher.close()
        self._limited.clear()
        await self._listener.close()
        claims, self._claims_pool = self._claims_pool, None
        if claims is not None:
            await claims.close(timeout=5)
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                async with pool.connection(timeout=5) as conn:
                    await conn.execute("DELETE FROM nodes WHERE id = %s", (self._node_id,))
            await pool.close(timeout=5)

    async def ping(self) -> None:
        """A write: this node's ``last_seen_at``."""
        await self._beat()

    def db_bytes(self) -> int:
        return self._db_bytes

    # -- coordination

    async def _notify(self, conn: Any, topic: str, *, force: bool = False) -> None:
        """Add a NOTIFY to ``conn``'s transaction (sent at commit). ``due`` is rate-limited."""
        now = time.monotonic()
        if not force and now - self._notified < NOTIFY_GAP_S:
            return
        if topic == "due":
            self._notified = now
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{topic}:{self._node_id}"))

    async def wait_changes(self, wait_s: float) -> Changes:
        return await self._listener.wait(wait_s)

    async def endpoints_version(self) -> int:
        rows = await self._fetch("SELECT value FROM meta WHERE key = 'endpoints'", ())
        return int(rows[0][0]) if rows else 0

    async def heartbeat(self) -> None:
        await self._beat()
        if time.monotonic() - self._pending_read >= PENDING_REFRESH_S:
            self._pending_read = time.monotonic()
            self._ingest.pending = await self.count_pending()
            rows = await self._fetch("SELECT pg_database_size(current_database())", ())
            self._db_bytes = int(rows[0][0])

    async def _beat(self) -> None:
        """Seen now (registered again if a long outage made the others forget us)."""
        try:
            async with self.claims_pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    f"UPDATE nodes SET last_seen_at = {NOW} WHERE id = %s", (self._node_id,)
                )
                if cur.rowcount == 0:
                    await conn.execute(
                        "INSERT INTO nodes (id, host, pid, started_at, last_seen_at)"
                        f" VALUES (%s, %s, %s, {NOW}, {NOW})",
                        (self._node_id, socket.gethostname(), os.getpid()),
                    )
                await conn.execute(
                    f"DELETE FROM nodes WHERE last_seen_at < {NOW} - %s", (NODE_FORGET_S,)
                )
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc

    async def nodes(self) -> list[NodeRow]:
        rows = await self._fetch(
            "SELECT id, host, started_at, last_seen_at FROM nodes"
            f" WHERE last_seen_at >= {NOW} - %s ORDER BY started_at, id",
            (NODE_TTL_S,),
        )
        return [NodeRow(id=r[0], host=r[1], started_at=r[2], last_seen_at=r[3]) for r in rows]

    # -- ingest

    async def ingest(self, events: Sequence[NewEvent]) -> list[Accepted]:
        return await self._ingest.ingest(events)

    # -- endpoints: every change moves the version and tells the others

    async def endpoints(self) -> list[EndpointRow]:
        rows = await self._fetch(
            f"SELECT {schema.ENDPOINT_COLUMNS} FROM endpoints ORDER BY created_at, id", ()
        )
        return [schema.endpoint(row) for row in rows]

    async def endpoint(self, endpoint_id: str) -> EndpointRow | None:
        rows = await self._fetch(
            f"SELECT {schema.ENDPOINT_COLUMNS} FROM endpoints WHERE id = %s", (endpoint_id,)
        )
        return schema.endpoint(rows[0]) if rows else None

    async def _change(self, sql: str, params: Sequence[Any]) -> int:
        """One endpoint change in its own transaction; its row count (the version moves and
        the others hear of it only when something changed)."""
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(sql, params)
                count = int(cur.rowcount)
                if count:
                    await self._changed(conn)
                return count
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc

    async def _changed(self, conn: Any) -> None:
        await conn.execute(schema.BUMP_ENDPOINTS)
        await self._notify(conn, "endpoints", force=True)

    async def reconcile_config_endpoints(self, tenants: Mapping[str, str | None]) -> dict[str, int]:
        """As on SQLite; several processes starting at once each reconcile the same YAML."""
        wanted = sorted(tenants)
        now = time.time()
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO endpoints (id, source, tenant, created_at, updated_at)"
                    " SELECT i, 'config', t, %s, %s FROM unnest(%s::text[], %s::text[]) AS u(i, t)"
                    " ON CONFLICT (id) DO UPDATE SET source = 'config', spec = '{}',"
                    " secrets = '[]', tenant = excluded.tenant"
                    " WHERE (endpoints.source, endpoints.spec, endpoints.secrets, endpoints.tenant)"
                    " IS DISTINCT FROM ('config', '{}', '[]', excluded.tenant)",
                    (now, now, wanted, [tenants[i] for i in wanted]),
                )
                changed = cur.rowcount
                await note_tenants(conn, set(tenants.values()), now)
                cur = await conn.execute(
                    "DELETE FROM endpoints WHERE source = 'config' AND NOT (id = ANY(%s))"
                    " RETURNING id",
                    (wanted,),
                )
                removed = sorted(str(row[0]) for row in await cur.fetchall())
                failed = {i: await _fail_pending(conn, i, now) for i in removed}
                if changed or removed:
                    await self._changed(conn)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc
        self._bump_pending(-sum(failed.values()))
        return failed

    async def set_endpoint_enabled(
        self,
        endpoint_id: str,
        enabled: bool,
        reason: str | None = None,
        *,
        notices: Notices | None = None,
    ) -> Toggled:
        """The operational event of a change of state is written in the same transaction."""
        now = time.time()
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "SELECT enabled, consecutive_failures FROM endpoints WHERE id = %s"
                    " FOR NO KEY UPDATE",
                    (endpoint_id,),
                )
                row = await cur.fetchone()
                if row is None:
                    return Toggled(found=False)
                await conn.execute(
                    "UPDATE endpoints SET enabled = %s, disabled_reason = %s,"
                    " consecutive_failures = CASE WHEN %s THEN 0 ELSE consecutive_failures END,"
                    " updated_at = %s WHERE id = %s",
                    (enabled, None if enabled else reason, enabled, now, endpoint_id),
                )
                await self._changed(conn)
                if bool(row[0]) == enabled:
                    return Toggled(found=True)
                made = rules.toggle_notice(endpoint_id, enabled, reason, int(row[1]), notices, now)
                jobs = await insert_notices(conn, [made], now) if made else []
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc
        self._bump_pending(len(jobs))
        return Toggled(found=True, changed=True, emitted=tuple(jobs))

    async def create_endpoint(
        self,
        endpoint_id: str,
        spec: dict[str, Any],
        secrets: list[dict[str, Any]],
        *,
        tenant: str | None = None,
    ) -> EndpointRow | None:
        now = time.time()
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "INSERT INTO endpoints (id, source, spec, secrets, tenant, created_at,"
                    " updated_at) VALUES (%s, 'api', %s, %s, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    (endpoint_id, schema.dumps(spec), schema.dumps(secrets), tenant, now, now),
                )
                if cur.rowcount == 0:
                    return None
                await note_tenants(conn, {tenant}, now)
                await self._changed(conn)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc
        return await self.endpoint(endpoint_id)

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        spec: dict[str, Any] | None = None,
        secrets: list[dict[str, Any]] | None = None,
    ) -> bool:
        count = await self._change(
            "UPDATE endpoints SET spec = COALESCE(%s, spec), secrets = COALESCE(%s, secrets),"
            " updated_at = %s WHERE id = %s AND source = 'api'",
            (
                None if spec is None else schema.dumps(spec),
                None if secrets is None else schema.dumps(secrets),
                time.time(),
                endpoint_id,
            ),
        )
        return count > 0

    async def delete_endpoint(self, endpoint_id: str) -> int | None:
        try:
            async with self.pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "DELETE FROM endpoints WHERE id = %s RETURNING id", (endpoint_id,)
                )
                if await cur.fetchone() is None:
                    return None
                cur = await conn.execute(
                    "DELETE FROM deliveries WHERE endpoint_id = %s RETURNING id, status",
                    (endpoint_id,),
                )
                gone = await cur.fetchall()
                await conn.execute(
                    "DELETE FROM attempts WHERE delivery_id = ANY(%s)", ([r[0] for r in gone],)
                )
                await forget_endpoint(conn, endpoint_id)
                await self._changed(conn)
        except pg.DB_ERRORS as exc:
            raise pg.wrap(exc, "database write failed") from exc
        self._bump_pending(-sum(1 for r in gone if r[1] == "pending"))
        return len(gone)


async def _fail_pending(conn: Any, endpoint_id: str, now: float) -> int:
    cur = await conn.execute(
        "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = %s,"
        " updated_at = %s, lease = NULL, locked_by = NULL, locked_until = NULL"
        " WHERE endpoint_id = %s AND status = 'pending'",
        (ENDPOINT_REMOVED, now, endpoint_id),
    )
    return int(cur.rowcount)
