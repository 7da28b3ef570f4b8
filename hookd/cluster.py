"""Several processes on one outbox: what one process learns of the others, once a second.

Runs as the daemon's ``cluster`` task when the store is shared (PostgreSQL). It waits for a
NOTIFY from another process (new work, an endpoint change) or the next periodic look (each at
least every :data:`POLL_S`), then:

1. reloads the endpoint table when another process changed an endpoint: on the NOTIFY, or when
   the endpoints version in the database has moved (the check that catches a lost NOTIFY), so
   a change made through any process is in force everywhere within about a second; every
   :data:`STATE_S` it also takes the endpoints' live state (enabled, failure counters) that the
   others' attempts changed;
2. hands what is due and unclaimed to the dispatcher (:meth:`~hookd.store.base.Coordination.
   ready`): deliveries another process ingested, re-queued or released, retries another process
   scheduled and left, and those a dead process leased, once the lease runs out. Work another
   process has just made is its own for :data:`GRACE_S` (a NOTIFY about it brings the look
   forward to the end of that grace). A delivery can sit in several processes' wheels at once;
   the claim decides who attempts it;
3. heartbeats every :data:`HEARTBEAT_S` (``nodes`` in ``/v1/status``).

A pass that cannot reach the database logs ``cluster.store_unreachable`` and the next pass
tries again: the daemon keeps serving what it can (ingest then answers 503).
"""

from __future__ import annotations

import asyncio
import time

import structlog

from hookd.endpoints import changes
from hookd.errors import StoreError
from hookd.state import State

log = structlog.get_logger("hookd.cluster")

POLL_S = 1.0  # a pass at least this often (NOTIFY wakes it sooner)
MIN_GAP_S = 0.05  # and at most this often, however many NOTIFYs arrive
STATE_S = 2.0
HEARTBEAT_S = 5.0
PER_ENDPOINT = 256  # due deliveries per endpoint looked at per pass
# What another process has just ingested or scheduled is left to it this long: it hands its own
# work to its dispatcher at once, so the others step in only for what it does not claim (a
# backlog, a crash, a lease run out) instead of racing it for every delivery.
GRACE_S = 0.5


class Cluster:
    def __init__(self, state: State) -> None:
        self.state = state
        self.version: int | None = None
        self._check_at = 0.0  # next endpoints version check
        self._ready_at = 0.0  # next look for due, unclaimed work
        self._state_at = 0.0
        self._beat_at = 0.0
        self._failing = False

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.step()
            except StoreError as exc:
                if not self._failing:
                    log.warning("cluster.store_unreachable", error=str(exc))
                self._failing = True
                await asyncio.sleep(POLL_S)
                continue
            if self._failing:
                log.info("cluster.store_reachable")
                self._failing = False
            await asyncio.sleep(max(0.0, started + MIN_GAP_S - time.monotonic()))

    async def step(self) -> None:
        """Wait for a notice or the next periodic look, then do what is due."""
        store = self.state.store
        now = time.monotonic()
        seen = await store.wait_changes(max(0.0, min(self._check_at, self._ready_at) - now))
        now = time.monotonic()
        if seen.due:  # look when the grace of that work has passed, not before
            self._ready_at = min(self._ready_at, now + GRACE_S)
        if seen.endpoints or now >= self._check_at:
            await self._endpoints(seen.endpoints, now)
            self._check_at = now + POLL_S
        if now >= self._ready_at:
            await self._ready()
            self._ready_at = now + POLL_S
        if now - self._beat_at >= HEARTBEAT_S:
            await store.heartbeat()
            self._beat_at = now

    async def _endpoints(self, notified: bool, now: float) -> None:
        version = await self.state.store.endpoints_version()
        if notified or (self.version is not None and version != self.version):
            await changes.refresh(self.state)
            self._state_at = now
        elif now - self._state_at >= STATE_S:
            await changes.refresh_state(self.state)
            self._state_at = now
        self.version = version

    async def _ready(self) -> None:
        dispatcher = self.state.dispatcher
        if dispatcher is None or self.state.draining:
            return
        ready = await self.state.store.ready(per_endpoint=PER_ENDPOINT, grace_s=GRACE_S)
        if ready:
            dispatcher.fire([delivery_id for delivery_id, _ in ready])


async def run(state: State) -> None:
    """The ``cluster`` task (see the module docstring)."""
    await Cluster(state).run()
