"""The loader between SQLite (the truth) and the timer wheel (the near future).

Invariant: every pending delivery of an enabled endpoint due before ``horizon`` is in the wheel
(or being attempted). New and rescheduled deliveries are *offered*: they go into the wheel when
due by the horizon, and are otherwise left to a later load. Loads advance the horizon to
``now + window`` in bounded batches, paged on ``(due, seq)`` so any number of deliveries may
share one due time; memory stays flat however many retries wait in SQLite (the wheel stops
taking loads at ``high_water`` and resumes below ``low_water``), and a restart rebuilds the
wheel from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable

import structlog

from hookd.delivery.wheel import TimerWheel
from hookd.errors import StoreError
from hookd.store import START, DuePosition, DueSource

log = structlog.get_logger("hookd.delivery.scheduler")


class Scheduler:
    def __init__(
        self,
        store: DueSource,
        wheel: TimerWheel[str],
        *,
        clock: Callable[[], float] = time.time,
        window: float = 60.0,
        batch: int = 20_000,
        high_water: int = 100_000,
        low_water: int | None = None,
    ) -> None:
        self.store = store
        self.wheel = wheel
        self.clock = clock
        self.window = window
        self.batch = batch
        self.high_water = high_water
        self.low_water = high_water // 2 if low_water is None else low_water
        self.horizon = -math.inf  # everything due before this is in the wheel
        self._cursor: DuePosition = START  # where the next load goes on from
        self._generation = 0  # bumped by reset(): a load that straddles one must not undo it
        self._kick = asyncio.Event()
        self._full = False  # a load stopped at high_water: the wheel draining wakes the loader

    def offer(self, delivery_id: str, due: float) -> None:
        """A delivery became due at ``due``: hold it now if it falls inside the window."""
        if due <= self.horizon:
            self.wheel.schedule(delivery_id, due)

    def reset(self) -> None:
        """Reload from the start (an endpoint was enabled, deliveries were re-queued)."""
        self._generation += 1
        self._cursor = START
        self.horizon = -math.inf
        self._kick.set()

    def on_fired(self) -> None:
        """The wheel fired (and shrank): once below ``low_water`` after a stop at
        ``high_water``, wake the loader now rather than at its next periodic load. O(1)."""
        if self._full and len(self.wheel) < self.low_water:
            self._full = False
            self._kick.set()

    async def load_once(self) -> int:
        """Move due-soon deliveries into the wheel; returns how many were loaded."""
        if len(self.wheel) >= self.high_water:
            self._full = True
            return 0
        generation = self._generation
        after = self._cursor
        end = self.clock() + self.window
        # Raised before the query: an offer made while it runs goes straight to the wheel, as
        # the query may not see that delivery's commit.
        self.horizon = end
        rows = await self.store.due(after=after, end=end, limit=self.batch)
        for delivery_id, due, _ in rows:
            self.wheel.schedule(delivery_id, due)
        if generation != self._generation:
            # reset() ran during the query, which may predate what it announced (an endpoint
            # enabled, deliveries re-queued): keep its rewind so the next load reads again.
            self._kick.set()
        elif len(rows) == self.batch:  # more may wait in the window: go on after the last one
            _, due, seq = rows[-1]
            self.horizon = due
            self._cursor = (due, seq)
            self._kick.set()
        else:
            self._cursor = (end, 0)
        if rows:
            log.debug("scheduler.loaded", count=len(rows), wheel=len(self.wheel))
        return len(rows)

    async def run(self) -> None:
        while True:
            self._kick.clear()
            try:
                await self.load_once()
            except StoreError as exc:  # the database is away: the next load reads the same page
                log.warning("scheduler.store_error", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.window / 4)
