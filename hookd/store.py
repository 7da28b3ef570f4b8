"""The durable outbox: events, deliveries, attempts and endpoint state in one SQLite file.

All writes go through one connection and one task, the *writer*: callers queue an operation and
await its future; the writer takes everything queued, runs it in one ``BEGIN IMMEDIATE``
transaction and commits once, so concurrent requests share one fsync (group commit). Reads use
separate connections (WAL lets them run beside the writer). Every SQL statement of hookd lives in
this module, behind the methods of :class:`SQLiteStore`; a PostgreSQL store would implement the
same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import structlog

from hookd.errors import StoreError

log = structlog.get_logger("hookd.store")

T = TypeVar("T")
MAX_BATCH_OPS = 2000  # operations folded into one transaction at most
ENDPOINT_REMOVED = "endpoint removed from the configuration"  # last_error of what it left pending
_CHUNK = 500  # bound parameters per IN (...) list

MIGRATIONS: tuple[str, ...] = (
    # 1: the outbox
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        idem_key TEXT UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE INDEX events_created ON events(created_at);
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL CHECK (source IN ('config', 'api')),
        spec TEXT NOT NULL DEFAULT '{}',
        secrets TEXT NOT NULL DEFAULT '[]',
        enabled INTEGER NOT NULL DEFAULT 1,
        disabled_reason TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempt_count INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        last_status_code INTEGER,
        last_error TEXT,
        origin TEXT NOT NULL DEFAULT 'ingest',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, seq);
    CREATE INDEX deliveries_event ON deliveries(event_id);
    CREATE TABLE attempts (
        delivery_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        started_at REAL NOT NULL,
        status_code INTEGER,
        latency_ms REAL NOT NULL,
        error TEXT,
        response_body TEXT,
        request_headers TEXT,
        PRIMARY KEY (delivery_id, n)
    ) WITHOUT ROWID;
    """,
    # 2: delivery history filtered by status, newest first (and counts by status)
    """
    CREATE INDEX deliveries_status ON deliveries(status, seq);
    """,
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class NewDelivery:
    id: str
    endpoint: str


@dataclass(frozen=True, kw_only=True, slots=True)
class NewEvent:
    id: str
    type: str
    timestamp: str
    data: str  # JSON text
    content_hash: str
    idem_key: str | None
    deliveries: tuple[NewDelivery, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Accepted:
    """The answer for one event: new (``created``) or the original one (a repeat)."""

    id: str
    deliveries: tuple[NewDelivery, ...]
    created: bool


class Conflict(StoreError):
    """An event id (or Idempotency-Key) was reused with different content."""

    def __init__(self, index: int, key: str) -> None:
        self.index = index
        self.key = key
        super().__init__(f"event {key!r} was already accepted with different content")


class OverCapacity(StoreError):
    """Accepting the events would pass ``limits.max_pending``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """A due delivery with its event, as the dispatcher needs it."""

    id: str
    event_id: str
    endpoint: str
    event_type: str
    event_timestamp: str
    data: str
    status: str
    attempt_count: int
    next_attempt_at: float | None
    seq: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptResult:
    """One finished attempt with the delivery's new state (and the endpoint's), written together."""

    delivery_id: str
    n: int
    started_at: float
    status_code: int | None
    latency_ms: float
    error: str | None
    response_body: str | None
    request_headers: str | None
    status: Literal["pending", "succeeded", "failed"]
    next_attempt_at: float | None
    endpoint: str
    endpoint_failures: int | None = None  # new consecutive_failures, when it changed
    disable_reason: str | None = None  # set when this result disables the endpoint


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointRow:
    id: str
    source: str
    spec: dict[str, Any]
    secrets: list[dict[str, Any]]
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryRow:
    seq: int
    id: str
    event_id: str
    endpoint: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    origin: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptRow:
    n: int
    started_at: float
    status_code: int | None
    latency_ms: float
    error: str | None
    response_body: str | None
    request_headers: str | None  # JSON text, credentials already redacted


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRow:
    rowid: int
    id: str
    type: str
    timestamp: str
    data: str  # JSON text
    created_at: float


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryFilter:
    """What ``GET /v1/deliveries`` may filter on; ``None`` means any."""

    endpoint: str | None = None
    status: str | None = None
    type_glob: str | None = None  # GLOB syntax (``task.*``); a plain name matches exactly
    event: str | None = None
    code_range: tuple[int, int] | None = None  # last_status_code, inclusive


@dataclass(frozen=True, kw_only=True, slots=True)
class Purged:
    """One retention batch: rows deleted, and where the next batch resumes its scan."""

    rows: int
    attempts: int
    resume_after: int | None  # None when the scan reached the end


@dataclass(kw_only=True, slots=True)
class _Op:
    kind: Literal["ingest", "fn"]
    future: asyncio.Future[Any]
    events: Sequence[NewEvent] = ()
    fn: Callable[[sqlite3.Connection], Any] | None = None
    pending_delta: int = 0


@dataclass(kw_only=True, slots=True)
class CommitStats:
    commits: int = 0
    ops: int = 0
    last_batch: int = 0
    batch_sizes: list[int] = field(default_factory=list)  # drained by metrics


# --------------------------------------------------------------------------- the store


class SQLiteStore:
    """The outbox on one SQLite file. ``open()`` migrates; ``close()`` drains the writer."""

    def __init__(self, path: Path, *, synchronous: str = "full", max_pending: int = 1_000_000):
        self.path = path
        self.synchronous = synchronous
        self.max_pending = max_pending
        self.pending = 0  # deliveries in status 'pending'; the writer keeps it exact
        self.stats = CommitStats()
        self._db: sqlite3.Connection | None = None  # the writer's, used only in its thread
        self._pool: ThreadPoolExecutor | None = None  # that one thread
        self._read: aiosqlite.Connection | None = None
        self._admin: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue[_Op] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookd-writer")
        try:
            await loop.run_in_executor(self._pool, self._open_writer)
            self._read = await self._connect()
            self._admin = await self._connect()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot open database {self.path}: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        self.pending = await self.count_pending()
        self._writer = asyncio.create_task(self._write_loop(), name="store.writer")

    def _open_writer(self) -> None:
        """In the writer thread: connect, WAL, ``synchronous``, migrations."""
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        self._migrate(db)

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout=5000")
        return db

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema version {version}, newer than this hookd "
                f"({len(MIGRATIONS)}); upgrade hookd"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            log.info("store.migrated", version=number)

    async def close(self) -> None:
        if self._writer is not None:
            await self._queue.join()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for attr in ("_read", "_admin"):
            conn = getattr(self, attr)
            if conn is not None:
                setattr(self, attr, None)
                with contextlib.suppress(Exception):
                    await conn.close()
        if self._pool is not None:
            db, self._db = self._db, None
            if db is not None:
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
            self._pool.shutdown(wait=False)
            self._pool = None

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

    # -- the writer: group commit

    def _submit(self, op: _Op) -> asyncio.Future[Any]:
        if self._writer is None or self._writer.done():
            raise StoreError("the store is not open")
        self._queue.put_nowait(op)
        return op.future

    def _new_op(self, kind: Literal["ingest", "fn"], **kw: Any) -> _Op:
        return _Op(kind=kind, future=asyncio.get_running_loop().create_future(), **kw)

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH_OPS and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception as exc:  # the batch failed as a whole: retry each op alone
                if len(batch) == 1:
                    _fail(batch[0], exc)
                else:
                    for op in batch:
                        try:
                            await self._commit([op])
                        except Exception as single:
                            _fail(op, single)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Op]) -> None:
        """One transaction, one fsync, one hop to the writer thread for the whole batch."""
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._pool, self._transaction, batch)
        self.stats.commits += 1
        self.stats.ops += len(batch)
        self.stats.last_batch = len(batch)
        if len(self.stats.batch_sizes) < 100_000:
            self.stats.batch_sizes.append(len(batch))
        for op in batch:
            result = results.get(id(op))
            if isinstance(result, Exception):
                _fail(op, result)
                continue
            self.pending += op.pending_delta
            if not op.future.done():
                op.future.set_result(result)

    def _transaction(self, batch: list[_Op]) -> dict[int, Any]:
        """In the writer thread: apply every operation of the batch, then commit."""
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            results: dict[int, Any] = {}
            ingests = [op for op in batch if op.kind == "ingest"]
            if ingests:
                results.update(self._apply_ingests(db, ingests))
            for op in batch:
                if op.kind == "fn":
                    assert op.fn is not None
                    results[id(op)] = op.fn(db)
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            raise
        return results

    def _apply_ingests(self, db: sqlite3.Connection, ops: list[_Op]) -> dict[int, Any]:
        keys = [e.idem_key for op in ops for e in op.events if e.idem_key is not None]
        known: dict[str, tuple[str, str]] = {}  # idem_key -> (event id, content hash)
        for chunk in _chunks(keys):
            sql = (
                f"SELECT idem_key, id, content_hash FROM events WHERE idem_key IN ({_marks(chunk)})"
            )
            for row in db.execute(sql, chunk):
                known[row[0]] = (row[1], row[2])
        routed = sorted({d.endpoint for op in ops for e in op.events for d in e.deliveries})
        live: set[str] = set()  # endpoints that still exist and are enabled, inside this commit
        for chunk in _chunks(routed):
            sql = f"SELECT id FROM endpoints WHERE enabled = 1 AND id IN ({_marks(chunk)})"
            live.update(row[0] for row in db.execute(sql, chunk))
        # An explicit id (its own key) that an event with another key, or none, already holds:
        # the key lookup misses it, and inserting it would break the primary key.
        explicit = [e.id for op in ops for e in op.events if e.idem_key == e.id]
        taken: set[str] = set()
        for chunk in _chunks(explicit):
            sql = f"SELECT id FROM events WHERE id IN ({_marks(chunk)}) AND idem_key IS NOT id"
            taken.update(row[0] for row in db.execute(sql, chunk))
        repeats = {event_id for event_id, _ in known.values()}
        originals = _deliveries_of(db, sorted(repeats)) if repeats else {}
        results: dict[int, Any] = {}
        fresh: dict[str, tuple[NewDelivery, ...]] = {}  # events created earlier in this batch
        event_rows: list[tuple[Any, ...]] = []
        delivery_rows: list[tuple[Any, ...]] = []
        pending = self.pending
        now = time.time()
        for op in ops:
            answers: list[Accepted] = []
            new_events: list[tuple[NewEvent, tuple[NewDelivery, ...]]] = []
            staged: dict[str, tuple[str, str]] = {}
            error: Exception | None = None
            for index, event in enumerate(op.events):
                key = event.idem_key
                seen = known.get(key) or staged.get(key) if key else None
                if seen is None and (event.id in taken or event.id in fresh):
                    error = Conflict(index, event.id)
                    break
                if seen is None:
                    # routed before the commit: an endpoint deleted or disabled meanwhile gets none
                    kept = tuple(d for d in event.deliveries if d.endpoint in live)
                    answers.append(Accepted(id=event.id, deliveries=kept, created=True))
                    new_events.append((event, kept))
                    if key:
                        staged[key] = (event.id, event.content_hash)
                elif seen[1] != event.content_hash:
                    error = Conflict(index, key or event.id)
                    break
                else:
                    original = originals.get(seen[0]) or fresh.get(seen[0])
                    if original is None:  # repeated inside this very request
                        original = next(a.deliveries for a in answers if a.id == seen[0])
                    answers.append(Accepted(id=seen[0], deliveries=original, created=False))
            count = sum(len(a.deliveries) for a in answers if a.created)
            if error is None and count and pending + count > self.max_pending:
                error = OverCapacity(
                    f"{pending} deliveries are pending; accepting {count} more would pass "
                    f"limits.max_pending ({self.max_pending})"
                )
            if error is not None:
                results[id(op)] = error
                continue
            pending += count
            op.pending_delta = count
            known.update(staged)
            for event, kept in new_events:
                fresh[event.id] = kept
                event_rows.append(
                    (
                        event.id,
                        event.type,
                        event.timestamp,
                        event.data,
                        event.content_hash,
                        event.idem_key,
                        now,
                    )
                )
                for d in kept:
                    delivery_rows.append((d.id, event.id, d.endpoint, event.type, now, now, now))
            results[id(op)] = answers
        if event_rows:
            db.executemany(
                "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                event_rows,
            )
        if delivery_rows:
            db.executemany(
                "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
                " next_attempt_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                delivery_rows,
            )
        return results

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer thread inside its next transaction (admin-sized writes)."""
        result: T = await self._submit(self._new_op("fn", fn=fn))
        return result

    async def _run_counted(self, fn: Callable[[sqlite3.Connection], tuple[T, int]]) -> T:
        """Like :meth:`run`, for a write that changes how many deliveries are pending.

        ``fn`` returns ``(result, delta)``; the writer adds ``delta`` to :attr:`pending` once the
        transaction has committed (and never when it rolled back).
        """
        op = self._new_op("fn")

        def counted(db: sqlite3.Connection) -> T:
            result, op.pending_delta = fn(db)
            return result

        op.fn = counted
        value: T = await self._submit(op)
        return value

    # -- ingest

    async def ingest(self, events: Sequence[NewEvent]) -> list[Accepted]:
        """Commit events and their deliveries atomically. Raises Conflict or OverCapacity."""
        answers: list[Accepted] = await self._submit(self._new_op("ingest", events=events))
        return answers

    # -- the delivery path

    async def due(
        self, *, after: tuple[float, int], end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        """Pending deliveries of enabled endpoints due before ``end``, as ``(id, due, seq)``.

        A page in ``(due, seq)`` order starting past the cursor ``after``; pass the last row's
        ``(due, seq)`` to continue, however many deliveries share one due time.
        """
        sql = (
            "SELECT d.id, d.next_attempt_at, d.seq FROM deliveries d INDEXED BY deliveries_due"
            " JOIN endpoints e ON e.id = d.endpoint_id AND e.enabled = 1"
            " WHERE d.status = 'pending' AND (d.next_attempt_at, d.seq) > (?, ?)"
            " AND d.next_attempt_at < ? ORDER BY d.next_attempt_at, d.seq LIMIT ?"
        )
        async with self.reader.execute(sql, (*after, end, limit)) as cur:
            return [(row[0], row[1], row[2]) for row in await cur.fetchall()]

    async def jobs(self, ids: Sequence[str]) -> list[Job]:
        """Load deliveries with their events, in the order of ``seq`` (ingest order)."""
        out: list[Job] = []
        for chunk in _chunks(list(ids)):
            sql = f"{_JOBS} WHERE d.id IN ({_marks(chunk)})"
            async with self.reader.execute(sql, chunk) as cur:
                out.extend(_job(row) for row in await cur.fetchall())
        out.sort(key=lambda j: j.seq)
        return out

    async def fifo_head(self, endpoint: str) -> Job | None:
        """The oldest pending delivery of an endpoint (``ordering: fifo`` runs only this one)."""
        async with self.reader.execute(_FIFO_HEAD, (endpoint,)) as cur:
            row = await cur.fetchone()
        return _job(row) if row else None

    async def record(self, results: Sequence[AttemptResult]) -> None:
        """Write attempts, delivery states and endpoint counters in one transaction.

        A delivery that is no longer pending here (its endpoint was deleted, or it was finished
        meanwhile) gets no attempt row: no orphans, and the pending count stays exact.
        """
        now = time.time()

        def apply(db: sqlite3.Connection) -> tuple[None, int]:
            delta = 0
            for r in results:
                cur = db.execute(
                    "UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at = ?,"
                    " last_status_code = ?, last_error = ?, updated_at = ?"
                    " WHERE id = ? AND status = 'pending'",
                    (r.status, r.n, r.next_attempt_at, r.status_code, r.error, now, r.delivery_id),
                )
                if cur.rowcount != 1:
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO attempts (delivery_id, n, started_at, status_code,"
                    " latency_ms, error, response_body, request_headers)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.delivery_id,
                        r.n,
                        r.started_at,
                        r.status_code,
                        r.latency_ms,
                        r.error,
                        r.response_body,
                        r.request_headers,
                    ),
                )
                if r.endpoint_failures is not None:
                    db.execute(
                        "UPDATE endpoints SET consecutive_failures = ?,"
                        " enabled = CASE WHEN ? IS NULL THEN enabled ELSE 0 END,"
                        " disabled_reason = COALESCE(?, disabled_reason), updated_at = ?"
                        " WHERE id = ?",
                        (r.endpoint_failures, r.disable_reason, r.disable_reason, now, r.endpoint),
                    )
                if r.status != "pending":
                    delta -= 1
            return None, delta

        await self._run_counted(apply)

    # -- endpoints

    async def endpoints(self) -> list[EndpointRow]:
        async with self.admin.execute("SELECT * FROM endpoints ORDER BY created_at, id") as cur:
            return [_endpoint(row) for row in await cur.fetchall()]

    async def endpoint(self, endpoint_id: str) -> EndpointRow | None:
        async with self.admin.execute(
            "SELECT * FROM endpoints WHERE id = ?", (endpoint_id,)
        ) as cur:
            row = await cur.fetchone()
        return _endpoint(row) if row else None

    async def reconcile_config_endpoints(self, ids: Iterable[str]) -> dict[str, int]:
        """Make the table's ``config`` rows match the YAML: add new ids, drop removed ones.

        State (enabled, failures) of ids that stay is kept. A YAML id that an API endpoint
        already uses takes that row over as ``config``. A removed endpoint's pending deliveries
        become ``failed`` (their history stays); returns how many, by removed endpoint id.
        """
        wanted = list(ids)

        def apply(db: sqlite3.Connection) -> tuple[dict[str, int], int]:
            now = time.time()
            db.executemany(
                "INSERT INTO endpoints (id, source, created_at, updated_at)"
                " VALUES (?, 'config', ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET source = 'config', spec = '{}', secrets = '[]'",
                [(i, now, now) for i in wanted],
            )
            sql = "SELECT id FROM endpoints WHERE source = 'config'"
            if wanted:  # (``NOT IN (NULL)`` would match nothing: an empty YAML removes them all)
                sql += f" AND id NOT IN ({_marks(wanted)})"
            with closing(db.execute(sql, wanted)) as cur:
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

        return await self._run_counted(apply)

    async def set_endpoint_enabled(
        self, endpoint_id: str, enabled: bool, reason: str | None = None
    ) -> bool:
        def apply(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE endpoints SET enabled = ?, disabled_reason = ?,"
                " consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures END,"
                " updated_at = ? WHERE id = ?",
                (int(enabled), None if enabled else reason, int(enabled), time.time(), endpoint_id),
            )
            return cur.rowcount > 0

        return await self.run(apply)

    async def create_endpoint(
        self, endpoint_id: str, spec: dict[str, Any], secrets: list[dict[str, Any]]
    ) -> EndpointRow | None:
        """Add an API endpoint; ``None`` when the id is taken."""

        def apply(db: sqlite3.Connection) -> bool:
            now = time.time()
            cur = db.execute(
                "INSERT INTO endpoints (id, source, spec, secrets, created_at, updated_at)"
                " VALUES (?, 'api', ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (endpoint_id, _dumps(spec), _dumps(secrets), now, now),
            )
            return cur.rowcount > 0

        return await self.endpoint(endpoint_id) if await self.run(apply) else None

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        spec: dict[str, Any] | None = None,
        secrets: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Replace an API endpoint's settings and/or sealed keys; False if there is no such row."""

        def apply(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE endpoints SET spec = COALESCE(?, spec), secrets = COALESCE(?, secrets),"
                " updated_at = ? WHERE id = ? AND source = 'api'",
                (
                    None if spec is None else _dumps(spec),
                    None if secrets is None else _dumps(secrets),
                    time.time(),
                    endpoint_id,
                ),
            )
            return cur.rowcount > 0

        return await self.run(apply)

    async def delete_endpoint(self, endpoint_id: str) -> int | None:
        """Remove an endpoint with its deliveries and their attempts; how many deliveries went.

        ``None`` when there is no such endpoint.
        """

        def apply(db: sqlite3.Connection) -> tuple[int | None, int]:
            with closing(
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
            cur = db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))
            return (total if cur.rowcount > 0 else None), -pending

        return await self._run_counted(apply)

    # -- history: deliveries, attempts, events

    async def deliveries(
        self, where: DeliveryFilter, *, limit: int, before_seq: int | None = None
    ) -> list[DeliveryRow]:
        """Deliveries matching ``where``, newest first, with ``seq < before_seq`` (a page)."""
        clauses: list[str] = []
        params: list[Any] = []
        if before_seq is not None:
            clauses.append("seq < ?")
            params.append(before_seq)
        for column, value in (
            ("endpoint_id", where.endpoint),
            ("status", where.status),
            ("event_id", where.event),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if where.type_glob is not None:
            glob = any(c in where.type_glob for c in "*?[")
            clauses.append("event_type GLOB ?" if glob else "event_type = ?")
            params.append(where.type_glob)
        if where.code_range is not None:
            clauses.append("last_status_code BETWEEN ? AND ?")
            params.extend(where.code_range)
        sql = "SELECT * FROM deliveries"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        async with self.admin.execute(sql, params) as cur:
            return [_delivery(row) for row in await cur.fetchall()]

    async def delivery(self, delivery_id: str) -> DeliveryRow | None:
        async with self.admin.execute(
            "SELECT * FROM deliveries WHERE id = ?", (delivery_id,)
        ) as cur:
            row = await cur.fetchone()
        return _delivery(row) if row else None

    async def attempts(self, delivery_id: str) -> list[AttemptRow]:
        async with self.admin.execute(
            "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY n", (delivery_id,)
        ) as cur:
            return [_attempt(row) for row in await cur.fetchall()]

    async def event(self, event_id: str) -> EventRow | None:
        async with self.admin.execute(
            "SELECT rowid, * FROM events WHERE id = ?", (event_id,)
        ) as cur:
            row = await cur.fetchone()
        return _event(row) if row else None

    async def event_deliveries(self, event_id: str) -> list[DeliveryRow]:
        async with self.admin.execute(
            "SELECT * FROM deliveries WHERE event_id = ? ORDER BY seq", (event_id,)
        ) as cur:
            return [_delivery(row) for row in await cur.fetchall()]

    # -- operator actions: retry, replay

    async def retry_failed(self, delivery_id: str, now: float) -> str | None:
        """Make a ``failed`` delivery pending, due at ``now``, keeping its attempts.

        Returns the status the delivery had (``"failed"`` means it was re-queued),
        ``"orphaned"`` when its endpoint no longer exists, or ``None`` when there is no such
        delivery.
        """

        def apply(db: sqlite3.Connection) -> tuple[str | None, int]:
            with closing(
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

        return await self._run_counted(apply)

    async def requeue(
        self, endpoint_id: str, *, since: float, statuses: Sequence[str], now: float
    ) -> int:
        """Make an endpoint's final deliveries created since ``since`` pending again, due now."""
        wanted = [s for s in statuses if s in ("succeeded", "failed")]
        if not wanted:
            return 0

        def apply(db: sqlite3.Connection) -> tuple[int, int]:
            cur = db.execute(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?"
                f" WHERE endpoint_id = ? AND created_at >= ? AND status IN ({_marks(wanted)})",
                (now, now, endpoint_id, since, *wanted),
            )
            return cur.rowcount, cur.rowcount

        return await self._run_counted(apply)

    async def missed_events(
        self, endpoint_id: str, *, since: float, after_rowid: int, limit: int
    ) -> list[EventRow]:
        """Events since ``since`` with no delivery for the endpoint, in ingest order (a page)."""
        sql = (
            "SELECT rowid, * FROM events e WHERE e.rowid > ? AND e.created_at >= ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.event_id = e.id AND d.endpoint_id = ?)"
            " ORDER BY e.rowid LIMIT ?"
        )
        async with self.admin.execute(sql, (after_rowid, since, endpoint_id, limit)) as cur:
            return [_event(row) for row in await cur.fetchall()]

    async def add_deliveries(
        self, endpoint_id: str, items: Sequence[tuple[str, str]], *, origin: str, now: float
    ) -> int:
        """Create pending deliveries ``(delivery id, event id)`` for one endpoint, due now.

        An event that is gone, or that already has a delivery for the endpoint, is skipped;
        returns how many were created.
        """

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

        return await self._run_counted(apply)

    # -- retention

    async def purge_deliveries(self, *, before: float, after_seq: int, limit: int) -> Purged:
        """Delete up to ``limit`` final deliveries last changed before ``before``, with attempts.

        Candidates are found on a read connection (scanning ``seq`` upward from ``after_seq``),
        so the write transaction only deletes by key and stays short.
        """
        async with self.admin.execute(
            "SELECT seq, id FROM deliveries WHERE seq > ? AND status != 'pending'"
            " AND updated_at < ? ORDER BY seq LIMIT ?",
            (after_seq, before, limit),
        ) as cur:
            rows = [(int(r[0]), str(r[1])) for r in await cur.fetchall()]
        if not rows:
            return Purged(rows=0, attempts=0, resume_after=None)
        ids = [i for _, i in rows]

        def apply(db: sqlite3.Connection) -> tuple[int, int]:
            cur = db.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries"
                f" WHERE id IN ({_marks(ids)}) AND status != 'pending' AND updated_at < ?)",
                (*ids, before),
            )
            attempts = cur.rowcount
            cur = db.execute(
                f"DELETE FROM deliveries WHERE id IN ({_marks(ids)})"
                " AND status != 'pending' AND updated_at < ?",
                (*ids, before),
            )
            return cur.rowcount, attempts

        deleted, attempts = await self.run(apply)
        more = len(rows) == limit
        return Purged(rows=deleted, attempts=attempts, resume_after=rows[-1][0] if more else None)

    async def purge_events(self, *, before: float, after_rowid: int, limit: int) -> Purged:
        """Delete up to ``limit`` events created before ``before`` that have no delivery left."""
        async with self.admin.execute(
            "SELECT e.rowid, e.id FROM events e WHERE e.rowid > ? AND e.created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)"
            " ORDER BY e.rowid LIMIT ?",
            (after_rowid, before, limit),
        ) as cur:
            rows = [(int(r[0]), str(r[1])) for r in await cur.fetchall()]
        if not rows:
            return Purged(rows=0, attempts=0, resume_after=None)
        ids = [i for _, i in rows]

        def apply(db: sqlite3.Connection) -> int:
            cur = db.execute(
                f"DELETE FROM events WHERE id IN ({_marks(ids)}) AND created_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                (*ids, before),
            )
            return cur.rowcount

        deleted = await self.run(apply)
        more = len(rows) == limit
        return Purged(rows=deleted, attempts=0, resume_after=rows[-1][0] if more else None)

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
        """Pending deliveries of enabled endpoints whose time has come."""
        async with self.admin.execute(
            "SELECT count(*) FROM deliveries d INDEXED BY deliveries_due"
            " JOIN endpoints e ON e.id = d.endpoint_id"
            " AND e.enabled = 1 WHERE d.status = 'pending' AND d.next_attempt_at <= ?",
            (now,),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def ping(self) -> None:
        """Prove the database answers and accepts a write transaction."""
        await self.run(_noop)

    def db_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total


# --------------------------------------------------------------------------- helpers


def _noop(db: sqlite3.Connection) -> None:
    return None


def _fail(op: _Op, exc: BaseException) -> None:
    if not op.future.done():
        if not isinstance(exc, StoreError):
            wrapped = StoreError(f"database write failed: {exc}")
            wrapped.__cause__ = exc
            exc = wrapped
        op.future.set_exception(exc)


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(items: Sequence[Any]) -> str:
    return ", ".join("?" * len(items))


def _deliveries_of(
    db: sqlite3.Connection, event_ids: list[str]
) -> dict[str, tuple[NewDelivery, ...]]:
    out: dict[str, list[NewDelivery]] = {i: [] for i in event_ids}
    for chunk in _chunks(event_ids):
        sql = (
            "SELECT event_id, id, endpoint_id FROM deliveries"
            f" WHERE event_id IN ({_marks(chunk)}) AND origin = 'ingest' ORDER BY seq"
        )
        for row in db.execute(sql, chunk):
            out[row[0]].append(NewDelivery(id=row[1], endpoint=row[2]))
    return {k: tuple(v) for k, v in out.items()}


_JOB_COLUMNS = (  # a Job: a delivery with its event
    "SELECT d.seq, d.id, d.event_id, d.endpoint_id, d.event_type, d.status,"
    " d.attempt_count, d.next_attempt_at, e.timestamp, e.data"
)
_JOBS = f"{_JOB_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
# INDEXED BY: without statistics the planner prefers deliveries_status and walks every pending
# delivery (~280 ms at 1,000,000 pending) on the connection jobs() shares
_FIFO_HEAD = (
    f"{_JOB_COLUMNS} FROM deliveries d INDEXED BY deliveries_endpoint"
    " JOIN events e ON e.id = d.event_id"
    " WHERE d.endpoint_id = ? AND d.status = 'pending' ORDER BY d.seq LIMIT 1"
)


def _job(row: sqlite3.Row) -> Job:
    return Job(
        seq=row["seq"],
        id=row["id"],
        event_id=row["event_id"],
        endpoint=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempt_count=row["attempt_count"],
        next_attempt_at=row["next_attempt_at"],
        event_timestamp=row["timestamp"],
        data=row["data"],
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _delivery(row: sqlite3.Row) -> DeliveryRow:
    return DeliveryRow(
        seq=row["seq"],
        id=row["id"],
        event_id=row["event_id"],
        endpoint=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempt_count=row["attempt_count"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        origin=row["origin"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _attempt(row: sqlite3.Row) -> AttemptRow:
    return AttemptRow(
        n=row["n"],
        started_at=row["started_at"],
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        response_body=row["response_body"],
        request_headers=row["request_headers"],
    )


def _event(row: sqlite3.Row) -> EventRow:
    return EventRow(
        rowid=row["rowid"],
        id=row["id"],
        type=row["type"],
        timestamp=row["timestamp"],
        data=row["data"],
        created_at=row["created_at"],
    )


def _endpoint(row: sqlite3.Row) -> EndpointRow:
    return EndpointRow(
        id=row["id"],
        source=row["source"],
        spec=json.loads(row["spec"]),
        secrets=json.loads(row["secrets"]),
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        consecutive_failures=row["consecutive_failures"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
