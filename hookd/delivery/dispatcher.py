"""The dispatcher: turns due deliveries into attempts, within every limit.

The wheel fires delivery ids; the dispatcher loads them and puts each due one in its endpoint's
*lane*, a queue in memory. A lane's pump starts attempts from the head of its queue while every
limit allows, checked in this order: the endpoint is enabled; it is not backing off after a 429
or 503 with Retry-After; ``max_in_flight``; the global ``delivery.concurrency``; ``rate_limit``.
What blocks a lane decides what wakes it: a pause or the rate limit arms one timer for the lane,
a full lane is pumped again when one of its attempts ends, and lanes starved of a global slot
wait their turn, round robin, for any attempt to end. ``ordering: fifo`` lanes hold at most the
endpoint's oldest pending delivery, read from the database. A delivery id is in at most one
place (a lane queue or in flight), so a re-fired id never makes a second concurrent attempt.
A lane holds at most :data:`LANE_MAX` due deliveries: behind a slow or limited endpoint the rest
stay pending in the database (where they already are), and the lane reads them back, earliest
due first, once its queue is down to :data:`LANE_REFILL_AT`, so memory stays flat however long
the backlog.

Each attempt claims its delivery with the endpoint's limits; a store shared by several processes
enforces them for all, and what it refuses for now goes back to the head of its lane, paused
until the time it named. After each attempt its record, the delivery's next state and the
endpoint's failure counter are committed together; only then is the retry offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiohttp
import orjson
import structlog

from hookd.config import DeliveryConfig
from hookd.delivery import client, observe
from hookd.delivery.attempt import attempt
from hookd.delivery.lanes import Lane
from hookd.delivery.outage import Outage
from hookd.delivery.policy import Outcome, disable_reason, is_retryable, next_delay
from hookd.delivery.recorder import Recorder
from hookd.delivery.scheduler import Scheduler
from hookd.delivery.wheel import TimerWheel
from hookd.endpoints import Endpoint, EndpointTable
from hookd.errors import StoreError
from hookd.metrics import Metrics
from hookd.registry import Observer
from hookd.store import (
    DISABLED,
    EXHAUSTED,
    LEASE_SLACK_S,
    AttemptResult,
    DeliveryStore,
    Job,
    Notices,
    Recorded,
    Status,
)

log = structlog.get_logger("hookd.delivery.dispatcher")
LOAD_BATCH = 512
CRASH_RETRY_S = 5.0  # an attempt whose outcome could not be recorded runs again after this
STORE_RETRY_S = 1.0  # a store that failed a read is asked again after this
_EARLY = 0.001  # a delivery due within this many seconds counts as due now
# Due deliveries one lane holds in memory (about 0.75 kB each); the rest wait in the database
# until the lane's queue is down to LANE_REFILL_AT, enough to keep its slots busy meanwhile.
LANE_MAX = 4096
LANE_REFILL_AT = 1024


class Dispatcher:
    def __init__(
        self,
        *,
        store: DeliveryStore,
        endpoints: EndpointTable,
        scheduler: Scheduler,
        wheel: TimerWheel[str],
        session: aiohttp.ClientSession,
        config: DeliveryConfig,
        observers: list[Observer],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        lease_slack: float = LEASE_SLACK_S,
    ) -> None:
        self.store = store
        self.lease_slack = lease_slack  # storage.lease_slack: a lease is the timeout + this
        self._recorder = Recorder(store)
        self.endpoints = endpoints
        self.scheduler = scheduler
        self.wheel = wheel
        self.session = session
        # The session's resolver was built for this value; a reload cannot change it safely.
        self._allow_private_networks = config.allow_private_networks
        self._config = config
        self.observers = observers
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self._fired: deque[str] = deque()
        self._fired_event = asyncio.Event()
        self._queued: set[str] = set()  # ids waiting in some lane's queue
        self._starved: dict[str, None] = {}  # lanes waiting for a global slot, in arrival order
        self._lanes: dict[str, Lane] = {}
        self._stopping = False
        self._helpers: set[asyncio.Task[None]] = set()
        self._open_reads: list[set[str]] = []  # one per store read under way (see _read)
        self._loop: asyncio.AbstractEventLoop | None = None  # see _create_task
        self.outage = Outage(probe=store.ping, resume=self._resume)

    @property
    def config(self) -> DeliveryConfig:
        return self._config

    @config.setter
    def config(self, new: DeliveryConfig) -> None:
        """A reload: concurrency and max_response_body follow; the SSRF switch needs a restart."""
        if new.allow_private_networks != self._allow_private_networks:
            log.warning("config.restart_needed", key="delivery.allow_private_networks")
        self._config = new
        for lane in list(self._lanes.values()):  # a raised concurrency frees slots at once
            self._pump(lane)

    # -- input: the wheel fires ids

    def fire(self, ids: list[str]) -> None:
        self._fired.extend(ids)
        self._fired_event.set()
        self.scheduler.on_fired()  # the wheel shrank: a loader held at high water may go on

    async def run(self) -> None:
        """Load fired deliveries in batches and queue the due ones in their lanes."""
        while True:
            await self._fired_event.wait()
            self._fired_event.clear()
            while self._fired and not self._stopping:
                ids: list[str] = []
                while self._fired and len(ids) < LOAD_BATCH:
                    delivery_id = self._fired.popleft()
                    if delivery_id not in self.in_flight and delivery_id not in self._queued:
                        ids.append(delivery_id)
                if not ids:
                    continue
                try:
                    jobs, _ = await self._read(self.store.jobs(ids))
                except StoreError as exc:  # the database is away: keep them, look again soon
                    log.warning("dispatcher.store_error", error=str(exc), deliveries=len(ids))
                    self._fired.extendleft(reversed(ids))
                    await asyncio.sleep(STORE_RETRY_S)
                    continue
                now = self.clock()
                for job in jobs:
                    self._consider(job, now)

    def submit(self, jobs: list[Job]) -> None:
        """Deliveries ingest has just committed: queue them without reading them back.

        They are due now and the scheduler's loader is already past them, so this is their
        only way in besides a restart or a reload; repeats are ignored like repeated fires.
        """
        if self._stopping:
            return  # pending in the database: attempted after the restart
        now = self.clock()
        for job in jobs:
            self._consider(job, now)

    def queued(self) -> int:
        """Due deliveries waiting in lanes for a slot, a token or the end of a pause."""
        return len(self._queued)

    def _consider(self, job: Job, now: float) -> None:
        if job.status != "pending" or job.id in self.in_flight or job.id in self._queued:
            return  # stale: finished, or already going
        if job.next_attempt_at is not None and job.next_attempt_at > now + _EARLY:
            self.scheduler.offer(job.id, job.next_attempt_at)  # rescheduled meanwhile
            return
        ep = self.endpoints.get(job.endpoint)
        if ep is None or not ep.enabled:
            return  # deleted, or held until the endpoint is enabled again (which reloads)
        if ep.config.ordering == "fifo":
            self._kick_fifo(ep)
            return
        self._enqueue(job, ep)

    def _lane(self, ep: Endpoint) -> Lane:
        lane = self._lanes.get(ep.id)
        if lane is None:
            lane = self._lanes[ep.id] = Lane(id=ep.id)
        lane.follow_rate(ep.config.rate_limit)
        return lane

    def _enqueue(self, job: Job, ep: Endpoint) -> None:
        lane = self._lane(ep)
        if len(lane.queue) >= LANE_MAX:
            lane.behind = True  # it stays pending in the database: _refill reads it back
            return
        lane.queue.append(job)
        self._queued.add(job.id)
        self._pump(lane)

    # -- lanes: start what every limit allows, and arrange to be woken for the rest

    def _pump(self, lane: Lane) -> None:
        ep = self.endpoints.get(lane.id)
        self._start_queued(lane, ep)
        if lane.behind and not lane.refilling and len(lane.queue) <= LANE_REFILL_AT:
            if ep is None or not ep.enabled or ep.config.ordering == "fifo":
                lane.behind = False  # enabling reloads everything; fifo reads its head itself
            elif not self._stopping and not self.outage.open:
                lane.refilling = True
                self._helper(self._refill(lane), f"refill:{lane.id}")

    async def _refill(self, lane: Lane) -> None:
        """Read back the due deliveries ``lane`` left in the database when its queue was full
        (the queued and in-flight ones come back too, and are skipped)."""
        lane.behind = False  # what arrives meanwhile is queued, or sets it again
        limit = LANE_MAX + len(lane.queue) + lane.in_flight
        try:
            jobs, read = await self._read(
                self.store.due_jobs(lane.id, now=self.clock() + _EARLY, limit=limit)
            )
        except Exception as exc:
            lane.behind = True  # nothing read: the backlog is still there; go again soon
            self._arm(lane, self.clock() + STORE_RETRY_S)
            if not isinstance(exc, StoreError):
                raise  # logged by _helper
            log.warning("dispatcher.store_error", error=str(exc), endpoint=lane.id)
            return
        finally:
            lane.refilling = False
        if self._stopping:
            return
        now = self.clock()
        for job in jobs:
            self._consider(job, now)
        if read == limit:  # more may wait: once the queue is down again, read on
            lane.behind = True
        if lane.behind:  # (also set while the read ran) with the queue low, read on now
            self._pump(lane)

    async def _read(self, fetch: Awaitable[list[Job]]) -> tuple[list[Job], int]:
        """Jobs a store read returns, less those an attempt started or finished while it ran
        (it may show them as they were before: pending, their attempt not yet recorded); and
        how many it returned. SQLite's claim, an in-memory lease, would let them run again."""
        moved: set[str] = set()  # _start and _finished add to every open read's set
        self._open_reads.append(moved)
        try:
            jobs = await fetch
        finally:
            self._open_reads.remove(moved)
        return ([job for job in jobs if job.id not in moved] if moved else jobs), len(jobs)

    def _start_queued(self, lane: Lane, ep: Endpoint | None) -> None:
        while lane.queue and not self._stopping and not self.outage.open:
            if ep is None or not ep.enabled:
                self._drop_queue(lane)  # held in the database; enabling the endpoint reloads
                return
            now = self.clock()
            if lane.paused_until > now:
                self._arm(lane, lane.paused_until)
                return
            limit = ep.config.max_in_flight
            if limit is not None and lane.in_flight >= limit:
                return  # one of its attempts ending pumps the lane again
            if len(self.in_flight) >= self.config.concurrency:
                self._starved[lane.id] = None  # any attempt ending gives lanes a turn
                return
            self._lane(ep)  # follow a reloaded rate_limit
            if lane.pacer is not None:
                wait = lane.pacer.wait(now)
                if wait > 0:
                    self._arm(lane, now + wait)
                    return
                lane.pacer.take(now)
            job = lane.queue.popleft()
            self._queued.discard(job.id)
            self._start(job, ep, lane)

    def _drop_queue(self, lane: Lane) -> None:
        for job in lane.queue:
            self._queued.discard(job.id)
        lane.queue.clear()
        lane.behind = False  # enabling the endpoint reloads what waits in the database

    def _arm(self, lane: Lane, when: float) -> None:
        """Pump ``lane`` again at ``when`` (one timer per lane; an earlier time wins)."""
        if lane.timer is not None:
            if lane.timer_at <= when:
                return
            lane.timer.cancel()
        delay = max(0.0, when - self.clock())
        lane.timer = asyncio.get_running_loop().call_later(delay, self._timer_fired, lane)
        lane.timer_at = when

    def _timer_fired(self, lane: Lane) -> None:
        lane.timer = None
        lane.timer_at = math.inf
        ep = self.endpoints.get(lane.id)
        if not lane.queue and ep is not None and ep.config.ordering == "fifo":
            self._kick_fifo(ep)  # a head look-up to do again
            return
        self._pump(lane)

    def _start(self, job: Job, ep: Endpoint, lane: Lane) -> None:
        lane.in_flight += 1
        for moved in self._open_reads:
            moved.add(job.id)
        task = self._create_task(self._attempt(job, ep, lane), f"attempt:{job.id}")
        self.in_flight[job.id] = task
        task.add_done_callback(lambda t: self._finished(job, lane, t))

    def _finished(self, job: Job, lane: Lane, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(job.id, None)
        lane.in_flight -= 1
        for moved in self._open_reads:
            moved.add(job.id)
        crashed = not task.cancelled() and task.exception() is not None
        if crashed:
            self._log_crash(job, task.exception())
        if self._stopping:
            return
        if crashed:  # its outcome is not on disk: the delivery is still pending, so go again
            self._helper(self.store.release([job.id]), f"release:{job.id}")
            self.wheel.schedule(job.id, self.clock() + CRASH_RETRY_S)
        # A freed global slot goes to lanes that were starved of one first, in turn.
        while self._starved and len(self.in_flight) < self.config.concurrency:
            starved = next(iter(self._starved))
            del self._starved[starved]
            other = self._lanes.get(starved)
            if other is not None:
                self._pump(other)
        ep = self.endpoints.get(lane.id)
        if ep is None or ep.config.ordering != "fifo" or lane.queue:  # (a head held back)
            self._pump(lane)
        elif not crashed:  # a crashed head waits for its timer: a fresh look would rerun it now
            self._kick_fifo(ep)

    def _log_crash(self, job: Job, error: BaseException | None) -> None:
        """A crashed attempt is logged; one the database could not record pauses every lane
        until it takes writes again (:mod:`hookd.delivery.outage` logs that, once)."""
        if isinstance(error, StoreError):
            self.outage.unrecorded(error)
        else:
            log.error("delivery.attempt_crashed", delivery=job.id, error=repr(error))

    def _resume(self) -> None:
        """The outage is over: every lane goes on where it stopped."""
        for lane in list(self._lanes.values()):
            ep = self.endpoints.get(lane.id)
            if ep is not None and ep.config.ordering == "fifo" and not lane.queue:
                self._kick_fifo(ep)
            else:
                self._pump(lane)

    # -- fifo: only the oldest pending delivery of the endpoint runs

    def _kick_fifo(self, ep: Endpoint) -> None:
        lane = self._lane(ep)
        if self._stopping or lane.in_flight or lane.queue:
            return  # the head is going or queued; its attempt ending kicks again
        if lane.fifo_busy:
            lane.fifo_again = True  # the lookup under way may predate what woke us
            return
        lane.fifo_busy = True
        lane.fifo_again = False
        self._helper(self._fifo_step(lane), f"fifo:{ep.id}")

    async def _fifo_step(self, lane: Lane) -> None:
        try:
            head = await self.store.fifo_head(lane.id)
        except StoreError as exc:  # look again soon (a timer, so the lane can be dropped)
            log.warning("dispatcher.store_error", error=str(exc), endpoint=lane.id)
            self._arm(lane, self.clock() + STORE_RETRY_S)
            return
        finally:
            lane.fifo_busy = False
        ep = self.endpoints.get(lane.id)
        if ep is None or not ep.enabled or self._stopping:
            return
        if lane.fifo_again:
            self._kick_fifo(ep)  # something changed while we looked: look again
            return
        if head is None or head.id in self.in_flight or head.id in self._queued:
            return
        if head.next_attempt_at is not None and head.next_attempt_at > self.clock() + _EARLY:
            self.wheel.schedule(head.id, head.next_attempt_at)  # it holds back the rest
            return
        self._enqueue(head, ep)

    # -- one attempt

    async def _attempt(self, job: Job, ep: Endpoint, lane: Lane) -> None:
        lease_s = ep.policy.timeout + self.lease_slack
        claimed = await self.store.claim([job], lease_s=lease_s, limits=ep.limits)
        if not claimed and claimed.retry_at is not None and not self._stopping:
            lane.hold(job, claimed.retry_at)  # limits shared with other processes: not yet
            self._queued.add(job.id)
            return
        if not claimed:  # another attempt holds it (a stale fire, or another process)
            log.debug("delivery.claim_skipped", delivery=job.id, endpoint=ep.id)
            lane.give_back()
            return
        now = self.clock()
        headers, response = await attempt(
            claimed[0],
            ep,
            session=self.session,
            max_response_body=self.config.max_response_body,
            allow_private_networks=self._allow_private_networks,
            now=now,
        )
        await self._conclude(claimed[0], ep, now, headers, response)

    async def _conclude(
        self,
        job: Job,
        ep: Endpoint,
        started: float,
        headers: dict[str, str],
        response: client.Response,
    ) -> None:
        """Record the attempt with the delivery's next state; then apply what the store
        decided about the endpoint, and offer the retry."""
        n = job.attempt_count + 1
        outcome = response.outcome
        delay = next_delay(ep.policy, n, outcome, self.rng)
        finished = self.clock()
        if outcome.succeeded:
            status: Status = "succeeded"
        else:
            status = "pending" if delay is not None else "failed"
        next_at = finished + delay if delay is not None else None
        self._maybe_back_off(ep, outcome, finished)
        error = None if outcome.succeeded else (response.detail or f"HTTP {outcome.status_code}")
        result = AttemptResult(
            delivery_id=job.id,
            lease=job.lease,
            n=n,
            started_at=started,
            status_code=outcome.status_code,
            latency_ms=round(response.latency_ms, 3),
            error=error,
            response_body=response.body,
            request_headers=orjson.dumps(headers).decode(),  # as attempt() redacted them
            status=status,
            next_attempt_at=next_at,
            endpoint=ep.id,
            disable_after=ep.policy.disable_after,
            disable_reason=disable_reason(ep.policy, outcome),
            event_id=job.event_id,
            event_type=job.event_type,
            notices=self._notices(ep) if status == "failed" else None,
        )
        recorded = await self._recorder.record_through(result, self.outage, lambda: self._stopping)
        if recorded.emitted:  # operational events (a delivery exhausted, the endpoint disabled)
            self.metrics.deliveries_created.inc(len(recorded.emitted))
            self.submit(list(recorded.emitted))
        self.metrics.attempt(status, response.latency_ms / 1000, outcome)
        if not recorded.applied:  # a newer attempt, or a delete, got there first
            log.info("delivery.attempt_stale", delivery=job.id, endpoint=ep.id, attempt=n)
            return
        self._apply_counter(ep, recorded)
        if next_at is not None:
            log.info(
                "delivery.retry_scheduled",
                delivery=job.id,
                endpoint=ep.id,
                attempt=n,
                delay_s=round(delay or 0.0, 3),
                error=error,
            )
            self.scheduler.offer(job.id, next_at)
        elif status == "failed":
            log.warning("delivery.failed", delivery=job.id, endpoint=ep.id, attempts=n, error=error)
        if self.observers:  # outside the attempt, so a slow observer holds no delivery slot
            self._helper(
                observe.tell(self.observers, job, ep.id, n, response, status), f"observe:{job.id}"
            )

    def _notices(self, ep: Endpoint) -> Notices:
        """Where the operational events about a failed delivery of ``ep`` would go."""
        return self.endpoints.notices(self.endpoints.get(ep.id) or ep, DISABLED, EXHAUSTED)

    def _maybe_back_off(self, ep: Endpoint, outcome: Outcome, now: float) -> None:
        """A 429 or 503 with Retry-After pauses every delivery to the endpoint, not only this."""
        if (
            outcome.status_code in (429, 503)
            and outcome.retry_after
            and ep.policy.honor_retry_after
            and is_retryable(ep.policy, outcome)
        ):
            lane = self._lane(ep)
            pause = min(outcome.retry_after, ep.policy.retry_after_max)
            lane.paused_until = max(lane.paused_until, now + pause)
            log.info("endpoint.backing_off", endpoint=ep.id, pause_s=round(pause, 3))

    def _apply_counter(self, ep: Endpoint, recorded: Recorded) -> None:
        """The live endpoint follows what the store counted and decided."""
        live = self.endpoints.get(ep.id)  # a reload may have replaced ``ep``
        if live is None:
            return
        if recorded.consecutive_failures is not None:
            live.consecutive_failures = recorded.consecutive_failures
        if recorded.disabled is not None:
            live.enabled = False  # no new deliveries from here on; pending ones are held
            live.disabled_reason = recorded.disabled
            log.warning(
                "endpoint.auto_disabled",
                endpoint=ep.id,
                consecutive_failures=live.consecutive_failures,
                reason=recorded.disabled,
            )

    # -- lifecycle

    def pending_attempts(self) -> int:
        return len(self.in_flight)

    async def drain(self, grace: float) -> list[str]:
        """Stop starting attempts; let those in flight finish for ``grace`` seconds.

        Returns the ids of stragglers that were cancelled (they stay pending in the database
        and are attempted again after restart).
        """
        self._stopping = True
        await self.outage.close()
        for lane in self._lanes.values():
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
        tasks = [*self.in_flight.values(), *self._helpers]
        if tasks:
            log.info("dispatcher.draining", in_flight=len(self.in_flight), grace_s=grace)
            await asyncio.wait(tasks, timeout=grace)
        stragglers = [d for d, t in self.in_flight.items() if not t.done()]
        leftovers = [*self.in_flight.values(), *self._helpers]
        for task in leftovers:
            task.cancel()
        for task in leftovers:
            with contextlib.suppress(BaseException):
                await task
        if stragglers:
            log.warning("dispatcher.cancelled_stragglers", deliveries=stragglers[:20])
            with contextlib.suppress(Exception):  # else their leases simply expire
                await asyncio.wait_for(self.store.release(stragglers), timeout=5)
        return stragglers

    def _create_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """asyncio.create_task on the loop looked up once (asyncio.get_running_loop(), which
        create_task calls, makes a getpid() system call each time in Python 3.11)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.create_task(coro, name=name)

    def _helper(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = self._create_task(coro, name)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:  # a helper that failed says why, once
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("dispatcher.helper_failed", task=task.get_name(), error=repr(exc))
