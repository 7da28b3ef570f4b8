"""While the database cannot record attempts, the dispatcher starts none, and the outcomes of
those it made wait to be written.

An attempt whose outcome cannot be written (a full disk, a read-only file, another process
holding the write lock, a database server away) was still made: the receiver got it. Making it
again would deliver it twice, and starting more would make ever more attempts nothing records.
So the first write that fails opens an :class:`Outage`: lanes keep their queues, the attempts
already made keep their outcomes in memory and wait (:meth:`Outage.wait`), a probe tries a real
write (the readiness heartbeat, ``ping``) with backoff, and the first write that succeeds closes
it: the waiting outcomes are written and every lane resumes. A disk that takes some writes and
not others opens and closes it again; no attempt is made twice for it. One line when it opens,
one when it closes (how long it lasted, how many writes failed); for a disk that flaps, at most
one of each per 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from hookd.logs import Throttle

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
        self._failed = 0  # writes that failed while it was open
        self._task: asyncio.Task[None] | None = None
        self._over = asyncio.Event()  # set while no outage is open (or once stopping)
        self._over.set()
        self._paused_lines = Throttle()
        self._resumed_lines = Throttle()

    @property
    def open(self) -> bool:
        return self._since is not None

    def unrecorded(self, error: BaseException) -> None:
        """A write of the dispatcher's failed: open the outage (or count one more)."""
        self._failed += 1
        if self._since is not None:
            return
        self._since = time.monotonic()
        self._over.clear()
        if (suppressed := self._paused_lines.allow()) is not None:  # a flapping disk: 1 per 10 s
            log.error(
                "delivery.paused",
                reason="the database takes no write",
                error=str(error),
                suppressed=suppressed,
            )
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
        if (suppressed := self._resumed_lines.allow()) is not None:
            log.warning(
                "delivery.resumed",
                outage_s=round(time.monotonic() - since, 3),
                failed_writes=self._failed,
                suppressed=suppressed,
            )
        self._failed = 0
        self._over.set()
        self._resume()

    async def wait(self) -> None:
        """Until no outage is open (or the dispatcher is stopping)."""
        await self._over.wait()

    async def close(self) -> None:
        """Stop probing and wake every waiter (the daemon is stopping)."""
        self._over.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
