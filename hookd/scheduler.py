"""The loader between SQLite (the truth) and the timer wheel (the near future).

Invariant: every pending delivery of an enabled endpoint due before ``horizon`` is in the wheel
(or being attempted). New and rescheduled deliveries are *offered*: they go into the wheel when
due before the horizon, and are otherwise left to a later load. Loads advance the horizon to
``now + window`` in bounded batches, so memory stays flat however many retries wait in SQLite,
and a restart rebuilds the wheel from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

import structlog

from hookd.store import SQLiteStore
from hookd.wheel import TimerWheel

log = structlog.get_logger("hookd.scheduler")


class Scheduler:
    def __init__(
        self,
        store: SQLiteStore,
        wheel: TimerWheel[str],
        *,
        clock: Callable[[], float] = time.time,
        window: float = 60.0,
        batch: int = 20_000,
        high_water: int = 100_000,
    ) -> None:
        self.store = store
        self.wheel = wheel
        self.clock = clock
        self.window = window
        self.batch = batch
        self.high_water = high_water
        self.horizon = -math.inf  # everything due before this is in the wheel
        self._loaded_to = 0.0  # the next load starts here
        self._generation = 0  # bumped by reset(): a load that straddles one must not undo it
        self._kick = asyncio.Event()

    def offer(self, delivery_id: str, due: float) -> None:
        """A delivery became due at ``due``: hold it now if it falls inside the window."""
        if due < self.horizon:
            self.wheel.schedule(delivery_id, due)

    def reset(self) -> None:
        """Reload from the start (an endpoint was enabled, deliveries were re-queued)."""
        self._generation += 1
        self._loaded_to = 0.0
        self.horizon = -math.inf
        self._kick.set()

    def kick(self) -> None:
        self._kick.set()

    async def load_once(self) -> int:
        """Move due-soon deliveries into the wheel; returns how many were loaded."""
        if len(self.wheel) >= self.high_water:
            return 0
        generation = self._generation
        start = self._loaded_to
        end = self.clock() + self.window
        # Raised before the query: an offer made while it runs goes straight to the wheel, as
        # the query may not see that delivery's commit.
        self.horizon = end
        rows = await self.store.due(start=start, end=end, limit=self.batch)
        for delivery_id, due in rows:
            self.wheel.schedule(delivery_id, due)
        if generation != self._generation:
            # reset() ran during the query, which may predate what it announced (an endpoint
            # enabled, deliveries re-queued): keep its rewind so the next load reads again.
            self._kick.set()
        elif len(rows) == self.batch:  # more wait in the window: resume from the last one loaded
            self.horizon = self._loaded_to = rows[-1][1]
            if rows[-1][1] > start:
                self._kick.set()
            # else a whole batch shares one due time and the same rows would come back: let
            # the dispatcher work through them and read again at the next periodic load.
        else:
            self._loaded_to = end
        if rows:
            log.debug("scheduler.loaded", count=len(rows), wheel=len(self.wheel))
        return len(rows)

    async def run(self) -> None:
        while True:
            self._kick.clear()
            await self.load_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.window / 4)
