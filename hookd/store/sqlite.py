"""The SQLite backend: the whole outbox in one file, owned by one hookd process.

Writes go through the group-commit :class:`~hookd.store.sqlite_writer.Writer` (one connection,
one thread, one transaction per batch); reads use two aiosqlite connections beside it (WAL lets
them run while the writer writes): ``reader`` for the delivery path, ``admin`` for the API and
retention, so a slow history query never delays a due delivery.

One process owns the file (an exclusive lock on ``<path>.lock``; several processes share
PostgreSQL instead), so leases live in the process (:mod:`hookd.store.leases`) and coordination
is trivial (:mod:`hookd.store.single`). History queries: :mod:`hookd.store.sqlite_history`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from hookd.errors import StoreError
from hookd.store import rules
from hookd.store import sql as shared_sql
from hookd.store import sqlite_ops as writes
from hookd.store import sqlite_schema as schema
from hookd.store.leases import Leases
from hookd.store.records import (
    ENDPOINT_REMOVED,
    Accepted,
    AttemptResult,
    Claim,
    CommitStats,
    EndpointRow,
    Job,
    Limits,
    NewEvent,
    Notices,
    Recorded,
    Toggled,
)
from hookd.store.single import SingleProcess
from hookd.store.sqlite_history import SQLiteHistory
from hookd.store.sqlite_schema import chunks, marks
from hookd.store.sqlite_stats import SQLiteStats, Tallies, forget_endpoint
from hookd.store.sqlite_writer import WRITE_BUSY_TIMEOUT_MS, Op, Writer

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux: no lock
    fcntl = None  # type: ignore[assignment]


class SQLiteStore(SQLiteHistory, SQLiteStats, SingleProcess):
    """The outbox on one SQLite file. ``open()`` locks and migrates; ``close()`` drains."""

    def __init__(self, path: Path, *, synchronous: str = "full", max_pending: int = 1_000_000):
        self.path = path
        self.synchronous = synchronous
        self.max_pending = max_pending
        self.stats = CommitStats()
        self._writer = Writer(stats=self.stats, ingest=self._apply_ingests)
        self._leases = Leases()
        self._live = writes.LiveEndpoints()  # the writer's; forgotten by each endpoint write
        self._read: aiosqlite.Connection | None = None
        self._admin: aiosqlite.Connection | None = None
        self._lock_fd: int | None = None

    @property
    def pending(self) -> int:
        return self._writer.pending

    # -- lifecycle

    async def open(self) -> None:
        try:
            self._lock()
            await self._writer.start(self._connect_writer)
            self._read = await self._connect()
            self._admin = await self._connect()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        self._writer.pending = await self.count_pending()
        self._writer.begin()

    def _lock(self) -> None:
        """Own the file: an exclusive, non-blocking lock on ``<path>.lock`` for our lifetime."""
        if str(self.path) == ":memory:" or fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(
                f"database {self.path} is in use by another hookd process; one process owns a "
                "SQLite database (run several processes with storage.backend: postgres)"
            ) from None
        self._lock_fd = fd

    def _connect_writer(self) -> sqlite3.Connection:
        """In the writer thread: connect, WAL, ``synchronous``, migrations."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout={WRITE_BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        try:
            schema.migrate(db, self.path)
        except BaseException:
            db.close()
            raise
        return db

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout=5000")
        return db

    async def close(self) -> None:
        await self._writer.close()
        for attr in ("_read", "_admin"):
            conn = getattr(self, attr)
            if conn is not None:
                setattr(self, attr, None)
                with contextlib.suppress(Exception):
                    await conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._read is None:
            raise StoreError("the store is not open")
        return self._read

    @property
    def admin(self) -> aiosqlite.Connection:
        if self._admin is None:
            raise StoreError("the store is not open")
        return self._admin

    async def ping(self) -> None:
        """A real write (an empty transaction commits on a full disk): Writer.heartbeat."""
        await self._writer.heartbeat(schema.heartbeat)

    def db_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    # -- ingest

    async def ingest(self, events: Sequence[NewEvent]) -> list[Accepted]:
        answers: list[Accepted] = await self._writer.ingest(events)
        return answers

    def _apply_ingests(self, db: sqlite3.Connection, ops: list[Op]) -> dict[int, Any]:
        """In the writer thread: look up what the rules need, apply them, insert."""
        batches = [op.events for op in ops]
        lookup = rules.Lookup(
            known=writes.known_keys(db, rules.idempotency_keys(batches)),
            taken=writes.taken_ids(db, rules.explicit_ids(batches)),
            live=self._live.of(db, rules.routed_endpoints(batches)),
            pending=self._writer.pending,
            max_pending=self.max_pending,
        )
        plan = rules.plan_ingest(batches, lookup)
        if plan.repeats:
            plan.resolve_repeats(writes.deliveries_of(db, sorted({r[2] for r in plan.repeats})))
        now = time.time()
        if plan.new:
            writes.insert_rows(
                db,
                "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key,"
                " created_at, tenant)",
                "(?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.id, e.type, e.timestamp, e.data, e.content_hash, e.idem_key, now, e.tenant)
                    for e, _ in plan.new
                ],
            )
            writes.insert_rows(
                db,
                "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
                " next_attempt_at, created_at, updated_at, tenant)",
                "(?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                [
                    (d.id, e.id, d.endpoint, e.type, now, now, now, e.tenant)
                    for e, kept in plan.new
                    for d in kept
                ],
            )
            writes.note_tenants(db, {e.tenant for e, _ in plan.new}, now)
        for op, delta in zip(ops, plan.deltas, strict=True):
            op.pending_delta = delta
        return {id(op): result for op, result in zip(ops, plan.results, strict=True)}

    # -- the delivery path

    async def due(
        self, *, after: tuple[float, int], end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        sql = (
            "SELECT d.id, d.next_attempt_at, d.seq FROM deliveries d INDEXED BY deliveries_due"
            " JOIN endpoints e ON e.id = d.endpoint_id AND e.enabled = 1"
            " WHERE d.status = 'pending' AND (d.next_attempt_at, d.seq) > (?, ?)"
            " AND d.next_attempt_at < ? ORDER BY d.next_attempt_at, d.seq LIMIT ?"
        )
        async with self.reader.execute(sql, (*after, end, limit)) as cur:
            return [(row[0], row[1], row[2]) for row in await cur.fetchall()]

    async def jobs(self, ids: Sequence[str]) -> list[Job]:
        rows: list[sqlite3.Row] = []
        for chunk in chunks(list(ids)):
            sql = f"{schema.JOBS} WHERE d.id IN ({marks(chunk)})"
            async with self.reader.execute(sql, chunk) as cur:
                rows.extend(await cur.fetchall())
        rows.sort(key=lambda r: int(r["seq"]))
        return [shared_sql.job(row) for row in rows]

    async def fifo_head(self, endpoint: str) -> Job | None:
        async with self.reader.execute(schema.FIFO_HEAD, (endpoint,)) as cur:
            row = await cur.fetchone()
        return shared_sql.job(row) if row else None

    async def due_jobs(self, endpoint: str, *, now: float, limit: int) -> list[Job]:
        async with self.reader.execute(schema.DUE_JOBS, (now, endpoint, limit)) as cur:
            return [shared_sql.job(row) for row in await cur.fetchall()]

    async def claim(
        self, jobs: Sequence[Job], *, lease_s: float, limits: Limits | None = None
    ) -> Claim:
        """In-process leases (the file has one owner, whose lanes keep ``limits``). A job that
        is no longer pending may be claimed here; its record then applies nothing."""
        take, replace = self._leases.take, msgspec.structs.replace
        claimed = Claim()
        for job in jobs:  # (one job per call, once per attempt: a plain loop, no generators)
            token = take(job.id, lease_s)
            if token is not None:
                claimed.append(replace(job, lease=token))
        return claimed

    async def release(self, ids: Sequence[str]) -> None:
        self._leases.end_all(ids)

    async def record(self, results: Sequence[AttemptResult]) -> list[Recorded]:
        """Fenced twice: by the live claim, and by the attempt number (the delivery must still
        be pending at ``n - 1`` attempts), so a stale attempt never overwrites a newer one.
        The operational events a result causes are written in the same transaction."""
        now = time.time()
        leases = self._leases

        def apply(db: sqlite3.Connection) -> tuple[list[Recorded], int]:
            out: list[Recorded] = []
            delta = 0
            tallies = Tallies()
            zeroed: set[str] = set()  # endpoints whose counter is known to be 0 here
            held = [leases.holds(r.delivery_id, r.lease) for r in results]
            applied = writes.record_attempts(db, results, held, now, tallies)
            for r, ok in zip(results, applied, strict=True):
                if not ok:
                    out.append(Recorded(delivery_id=r.delivery_id, applied=False))
                    continue
                failures, disabled = writes.count(db, r, now, zeroed)
                if disabled is not None:
                    self._live.forget()
                made = rules.attempt_notices(r, failures, disabled, now)
                emitted = writes.insert_notices(db, made, now) if made else []
                delta += len(emitted) - (r.status != "pending")
                out.append(
                    Recorded(
                        delivery_id=r.delivery_id,
                        applied=True,
                        consecutive_failures=failures,
                        disabled=disabled,
                        emitted=tuple(emitted),
                    )
                )
            tallies.write(db)
            return out, delta

        recorded = await self._writer.run_counted(apply)
        for r in results:  # a write that failed keeps its claims: it may be made again
            leases.end(r.delivery_id, r.lease)
        return recorded

    # -- endpoints

    async def endpoints(self) -> list[EndpointRow]:
        async with self.admin.execute("SELECT * FROM endpoints ORDER BY created_at, id") as cur:
            return [schema.endpoint(row) for row in await cur.fetchall()]

    async def endpoint(self, endpoint_id: str) -> EndpointRow | None:
        async with self.admin.execute(
            "SELECT * FROM endpoints WHERE id = ?", (endpoint_id,)
        ) as cur:
            row = await cur.fetchone()
        return schema.endpoint(row) if row else None

    async def reconcile_config_endpoints(self, tenants: Mapping[str, str | None]) -> dict[str, int]:
        """State (enabled, failures) of ids that stay is kept. A YAML id that an API endpoint
        already uses takes that row over as ``config``. A removed endpoint's pending deliveries
        become ``failed`` (their history stays)."""
        wanted = list(tenants)

        def apply(db: sqlite3.Connection) -> tuple[dict[str, int], int]:
            self._live.forget()
            now = time.time()
            db.executemany(
                "INSERT INTO endpoints (id, source, created_at, updated_at, tenant)"
                " VALUES (?, 'config', ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET source = 'config', spec = '{}', secrets = '[]',"
                " tenant = excluded.tenant",
                [(i, now, now, tenants[i]) for i in wanted],
            )
            writes.note_tenants(db, set(tenants.values()), now)
            sql = "SELECT id FROM endpoints WHERE source = 'config'"
            if wanted:  # (``NOT IN (NULL)`` would match nothing: an empty YAML removes them all)
                sql += f" AND id NOT IN ({marks(wanted)})"
            with contextlib.closing(db.execute(sql, wanted)) as cur:
                removed = [str(row[0]) for row in cur.fetchall()]
            failed: dict[str, int] = {}
            for endpoint_id in removed:
                db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
                cur = db.execute(
                    "UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,"
                    " last_error = ?, updated_at = ? WHERE endpoint_id = ? AND status = 'pending'",
                    (ENDPOINT_REMOVED, now, endpoint_id),
                )
                failed[endpoint_id] = cur.rowcount
            return failed, -sum(failed.values())

        return await self._writer.run_counted(apply)

    async def set_endpoint_enabled(
        self,
        endpoint_id: str,
        enabled: bool,
        reason: str | None = None,
        *,
        notices: Notices | None = None,
    ) -> Toggled:
        def apply(db: sqlite3.Connection) -> tuple[Toggled, int]:
            self._live.forget()
            toggled = writes.toggle(db, endpoint_id, enabled, reason, notices, time.time())
            return toggled, len(toggled.emitted)

        return await self._writer.run_counted(apply)

    async def create_endpoint(
        self,
        endpoint_id: str,
        spec: dict[str, Any],
        secrets: list[dict[str, Any]],
        *,
        tenant: str | None = None,
    ) -> EndpointRow | None:
        def apply(db: sqlite3.Connection) -> bool:
            self._live.forget()
            now = time.time()
            cur = db.execute(
                "INSERT INTO endpoints (id, source, spec, secrets, created_at, updated_at, tenant)"
                " VALUES (?, 'api', ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (endpoint_id, schema.dumps(spec), schema.dumps(secrets), now, now, tenant),
            )
            if cur.rowcount > 0:
                writes.note_tenants(db, {tenant}, now)
            return cur.rowcount > 0

        return await self.endpoint(endpoint_id) if await self._writer.run(apply) else None

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        spec: dict[str, Any] | None = None,
        secrets: list[dict[str, Any]] | None = None,
    ) -> bool:
        def apply(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE endpoints SET spec = COALESCE(?, spec), secrets = COALESCE(?, secrets),"
                " updated_at = ? WHERE id = ? AND source = 'api'",
                (
                    None if spec is None else schema.dumps(spec),
                    None if secrets is None else schema.dumps(secrets),
                    time.time(),
                    endpoint_id,
                ),
            )
            return cur.rowcount > 0

        return await self._writer.run(apply)

    async def delete_endpoint(self, endpoint_id: str) -> int | None:
        def apply(db: sqlite3.Connection) -> tuple[int | None, int]:
            self._live.forget()
            with contextlib.closing(
                db.execute(
                    "SELECT count(*), coalesce(sum(status = 'pending'), 0) FROM deliveries"
                    " WHERE endpoint_id = ?",
                    (endpoint_id,),
                )
            ) as cur:
                row = cur.fetchone()
            total, pending = (int(row[0]), int(row[1])) if row else (0, 0)
            db.execute(
                "DELETE FROM attempts WHERE delivery_id IN"
                " (SELECT id FROM deliveries WHERE endpoint_id = ?)",
                (endpoint_id,),
            )
            db.execute("DELETE FROM deliveries WHERE endpoint_id = ?", (endpoint_id,))
            forget_endpoint(db, endpoint_id)
            cur = db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
            return (total if cur.rowcount > 0 else None), -pending

        return await self._writer.run_counted(apply)


# --------------------------------------------------------------------------- writer-thread parts
