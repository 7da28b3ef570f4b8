"""Attempts recorded together: one ``store.record`` call for every attempt that ends in the same
turn of the event loop.

Each attempt awaits its own :class:`~hookd.store.Recorded` as before, and nothing is recorded
later than it would have been: the batch goes to the store at the end of the turn in which its
first attempt ended (``loop.call_soon``), so the store gets one operation (one hop to its
writer, one statement per table for the lot, rollups summed) instead of one per attempt. A
batch that fails fails each of its attempts, as their own calls would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from hookd.delivery.outage import Outage
from hookd.errors import StoreError
from hookd.store import AttemptResult, DeliveryStore, Recorded


class Recorder:
    def __init__(self, store: DeliveryStore) -> None:
        self.store = store
        self._batch: list[tuple[AttemptResult, asyncio.Future[Recorded]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # The loop it runs in, looked up once: asyncio.get_running_loop() makes a getpid()
        # system call each time in Python 3.11 (~2% of the loop's time, once per attempt).
        self._loop: asyncio.AbstractEventLoop | None = None

    async def record(self, result: AttemptResult) -> Recorded:
        """``result`` recorded with the others that end in this turn of the loop."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)
        self._batch.append((result, future))
        return await future

    async def record_through(
        self, result: AttemptResult, outage: Outage, stopping: Callable[[], bool]
    ) -> Recorded:
        """:meth:`record`, and while the database takes no write the outcome waits here and is
        written once it does: the attempt was made, and making it again would deliver it twice.
        (Stopping, it gives up: the delivery stays pending and runs again after the restart.)"""
        while True:
            try:
                return await self.record(result)
            except StoreError as exc:
                if stopping():
                    raise
                outage.unrecorded(exc)
                await outage.wait()

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.ensure_future(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: Sequence[tuple[AttemptResult, asyncio.Future[Recorded]]]) -> None:
        try:
            recorded = await self.store.record([r for r, _ in batch])
        except BaseException as exc:  # each attempt fails as its own call would have
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), answer in zip(batch, recorded, strict=True):
            if not future.done():
                future.set_result(answer)
