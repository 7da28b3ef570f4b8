"""SQLite's group commit: one writer connection in one thread, many callers, one fsync.

Callers queue an operation and await its future. One task takes everything queued, runs it in
one ``BEGIN IMMEDIATE`` transaction with a single hop to the writer thread (every aiosqlite
await is a hop that waits behind a busy event loop; one hop per batch is what makes group
commit pay), and commits once. A batch that fails as a whole is retried operation by operation,
so one bad request cannot fail the others, unless the database itself failed (locked by another
process, full, read-only): then every operation fails at once. An operation whose caller gave up
before its batch began is dropped. The writer also keeps the count of pending
deliveries exact: each operation reports how it changes it, applied only once committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hookd.errors import StoreError
from hookd.store.records import CommitStats, NewEvent

T = TypeVar("T")
MAX_BATCH_OPS = 2000  # operations folded into one transaction at most
HEARTBEAT_REUSE_S = 1.0  # a heartbeat younger than this answers a readiness ping
# Only another process contends for the write lock (an operator's sqlite3 shell): wait for it
# briefly, then fail the batch (503 with Retry-After) rather than hold every caller.
WRITE_BUSY_TIMEOUT_MS = 1000


@dataclass(kw_only=True, slots=True)
class Op:
    kind: Literal["ingest", "fn"]
    future: asyncio.Future[Any]
    events: Sequence[NewEvent] = ()
    fn: Callable[[sqlite3.Connection], Any] | None = None
    pending_delta: int = 0


IngestFn = Callable[[sqlite3.Connection, list[Op]], dict[int, Any]]


class Writer:
    """The one writer of a SQLite file (see the module docstring)."""

    def __init__(self, *, stats: CommitStats, ingest: IngestFn) -> None:
        self.stats = stats
        self.pending = 0  # deliveries in status 'pending', exact once set at open
        self._apply_ingests = ingest
        self._db: sqlite3.Connection | None = None  # used only in the writer thread
        self._pool: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[Op] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed_at = -math.inf  # time.monotonic() when a batch last failed as a whole
        self._heartbeat: asyncio.Future[None] | None = None
        self._heartbeat_at = -math.inf  # time.monotonic() when a heartbeat last committed

    async def start(self, connect: Callable[[], sqlite3.Connection]) -> None:
        """Open the connection in the writer thread (``connect`` may migrate)."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookd-writer")
        self._db = await asyncio.get_running_loop().run_in_executor(self._pool, connect)

    def begin(self) -> None:
        """Start taking operations."""
        self._task = asyncio.create_task(self._loop(), name="store.writer")

    async def close(self) -> None:
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pool is not None:
            db, self._db = self._db, None
            if db is not None:
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
            self._pool.shutdown(wait=False)
            self._pool = None

    # -- submitting

    async def ingest(self, events: Sequence[NewEvent]) -> Any:
        return await self._submit(self._op("ingest", events=events))

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer thread inside its next transaction (admin-sized writes)."""
        result: T = await self._submit(self._op("fn", fn=fn))
        return result

    async def run_counted(self, fn: Callable[[sqlite3.Connection], tuple[T, int]]) -> T:
        """Like :meth:`run`, for a write that changes how many deliveries are pending.

        ``fn`` returns ``(result, delta)``; ``delta`` is added to :attr:`pending` once the
        transaction has committed (and never when it rolled back).
        """
        op = self._op("fn")

        def counted(db: sqlite3.Connection) -> T:
            result, op.pending_delta = fn(db)
            return result

        op.fn = counted
        value: T = await self._submit(op)
        return value

    async def heartbeat(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """Run ``fn``, a tiny write, to prove the database takes one. Calls close together share
        one write; one committed less than HEARTBEAT_REUSE_S ago answers, unless a batch has
        failed since."""
        done_at = self._heartbeat_at
        if time.monotonic() - done_at < HEARTBEAT_REUSE_S and done_at > self.failed_at:
            return
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self.run(fn))
            self._heartbeat.add_done_callback(_retrieve)  # callers that gave up never will
        await asyncio.shield(self._heartbeat)  # a caller that gives up leaves it to the others
        self._heartbeat_at = time.monotonic()

    def _op(self, kind: Literal["ingest", "fn"], **kw: Any) -> Op:
        return Op(kind=kind, future=asyncio.get_running_loop().create_future(), **kw)

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._task is None or self._task.done():
            raise StoreError("the store is not open")
        self._queue.put_nowait(op)
        return op.future

    # -- the loop

    async def _loop(self) -> None:
        while True:
            taken = [await self._queue.get()]
            while len(taken) < MAX_BATCH_OPS and not self._queue.empty():
                taken.append(self._queue.get_nowait())
            batch = [op for op in taken if not op.future.cancelled()]  # callers gave up on these
            try:
                if batch:
                    await self._commit(batch)
            except Exception as exc:  # the batch failed as a whole
                self.failed_at = time.monotonic()
                if len(batch) == 1 or _not_about_one_op(exc):
                    for op in batch:
                        _fail(op, exc)
                else:  # retry each op alone: one bad request cannot fail the others
                    for op in batch:
                        try:
                            await self._commit([op])
                        except Exception as single:
                            _fail(op, single)
            finally:
                for _ in taken:
                    self._queue.task_done()

    async def _commit(self, batch: list[Op]) -> None:
        """One transaction, one fsync, one hop to the writer thread for the whole batch."""
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._pool, self._transaction, batch)
        self.stats.add(len(batch))
        for op in batch:
            result = results.get(id(op))
            if isinstance(result, Exception):
                _fail(op, result)
                continue
            self.pending += op.pending_delta
            if not op.future.done():
                op.future.set_result(result)

    def _transaction(self, batch: list[Op]) -> dict[int, Any]:
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


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _not_about_one_op(exc: BaseException) -> bool:
    """A failure of the database itself (locked by another process, disk full, read-only, I/O):
    every operation would fail alike, so retrying them one by one only multiplies the wait."""
    return isinstance(exc, sqlite3.OperationalError)


def _fail(op: Op, exc: BaseException) -> None:
    if not op.future.done():
        if not isinstance(exc, StoreError):
            wrapped = StoreError(f"database write failed: {exc}")
            wrapped.__cause__ = exc
            exc = wrapped
        op.future.set_exception(exc)
