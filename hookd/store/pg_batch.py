"""Group commit on PostgreSQL: many callers, one transaction, one WAL flush.

Callers queue an item and await its answer. A loop takes everything queued (up to ``max_batch``)
and hands it to ``apply``, which runs one transaction and answers each item (a value, or an
exception for that item alone). Up to ``concurrency`` transactions run at once, so a process
is not bound to one commit latency at a time (PostgreSQL flushes concurrent commits together).
A batch that fails as a whole is applied again item by item, so one bad item cannot fail the
others; an item that fails alone gets a :class:`~hookd.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from hookd.errors import StoreError
from hookd.store import pg_conn as pg

T = TypeVar("T")
R = TypeVar("R")

Apply = Callable[[Sequence[T]], Awaitable[Sequence[R | Exception]]]


class Batcher(Generic[T, R]):
    def __init__(self, name: str, apply: Apply[T, R], *, concurrency: int, max_batch: int) -> None:
        self._name = name
        self._apply = apply
        self._max_batch = max_batch
        self._slots = asyncio.Semaphore(concurrency)
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, item: T) -> R:
        if self._task is None or self._task.done():
            raise StoreError("the store is not open")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            await self._slots.acquire()  # waiting here lets the next batch grow
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._run(batch), name=f"{self._name}.commit")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            try:
                self._answer(batch, await self._apply([item for item, _ in batch]))
            except Exception as exc:  # the batch failed as a whole: each item alone
                if len(batch) == 1:
                    _fail(batch[0][1], exc)
                    return
                for one in batch:
                    try:
                        self._answer([one], await self._apply([one[0]]))
                    except Exception as single:
                        _fail(one[1], single)
        finally:
            self._slots.release()
            for _ in batch:
                self._queue.task_done()

    @staticmethod
    def _answer(batch: list[tuple[T, asyncio.Future[R]]], results: Sequence[R | Exception]) -> None:
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def _fail(future: asyncio.Future[R], exc: BaseException) -> None:
    if future.done():
        return
    if not isinstance(exc, StoreError):
        wrapped = StoreError(f"database write failed: {pg.reason(exc)}")
        wrapped.__cause__ = exc
        exc = wrapped
    future.set_exception(exc)
