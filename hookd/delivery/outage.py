"""While the database cannot record attempts, the dispatcher starts none.

An attempt whose outcome cannot be written (a full disk, a read-only file, another process
holding the write lock, a database server away) was still made: the receiver got it. The
delivery stays pending and runs again; if the dispatcher went on starting attempts, every due
delivery would reach its receiver again every few seconds for as long as the outage lasts, with
nothing recorded. So the first attempt that cannot be recorded opens an :class:`Outage`: lanes
keep their queues, a probe tries a real write (the readiness heartbeat, ``ping``) with backoff,
and the first write that succeeds closes it and resumes every lane. One line when it opens, one
when it closes (with how long it lasted and how many outcomes were lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("hookd.delivery.outage")

PROBE_FIRST_S = 0.5  # the first probe write, after the failure
PROBE_MAX_S = 5.0  # probes back off to one every this many seconds


class Outage:
    """Open while the database takes no write; ``probe`` proves it does, ``resume`` is called
    once it does."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[None]],
        resume: Callable[[], None],
        *,
        first: float = PROBE_FIRST_S,
        most: float = PROBE_MAX_S,
    ) -> None:
        self._probe = probe
        self._resume = resume
        self._first = first
        self._most = most
        self._since: float | None = None  # time.monotonic() when it opened
        self._lost = 0  # attempts made whose outcome could not be recorded
        self._task: asyncio.Task[None] | None = None

    @property
    def open(self) -> bool:
        return self._since is not None

    def unrecorded(self, error: BaseException) -> None:
        """An attempt's outcome could not be recorded: open the outage (or count one more)."""
        self._lost += 1
        if self._since is not None:
            return
        self._since = time.monotonic()
        log.error("delivery.paused", reason="the database takes no write", error=str(error))
        self._task = asyncio.create_task(self._wait_for_writes(), name="delivery.outage")

    async def _wait_for_writes(self) -> None:
        wait = self._first
        while True:
            await asyncio.sleep(wait)
            try:
                await self._probe()
            except Exception:  # still down: try again later
                wait = min(wait * 2, self._most)
                continue
            break
        since, self._since = self._since or time.monotonic(), None
        log.warning(
            "delivery.resumed",
            outage_s=round(time.monotonic() - since, 3),
            unrecorded_attempts=self._lost,
        )
        self._lost = 0
        self._resume()

    async def close(self) -> None:
        """Stop probing (the daemon is stopping)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
