"""The dispatcher: turns due deliveries into attempts, within every limit.

Limits, checked in this order for each due delivery: the endpoint is enabled; it is not backing
off after a 429 with Retry-After; ``ordering: fifo`` runs only the endpoint's oldest pending
delivery; ``max_in_flight``; ``rate_limit`` (a token bucket); the global ``delivery.concurrency``.
A delivery that must wait goes back into the wheel (a time to wait for) or a queue (a slot to
wait for). After each attempt its record, the delivery's next state and the endpoint's failure
counter are committed together; only then is the retry offered to the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from hookd import client
from hookd.config import DeliveryConfig
from hookd.endpoints import Endpoint, EndpointTable, redact_headers
from hookd.metrics import Metrics
from hookd.policy import Outcome, is_retryable, next_delay
from hookd.registry import AttemptOutcome, Event, Message, Observer
from hookd.scheduler import Scheduler
from hookd.store import AttemptResult, Job, SQLiteStore
from hookd.wheel import TimerWheel

log = structlog.get_logger("hookd.dispatcher")
LOAD_BATCH = 512


@dataclass(kw_only=True, slots=True)
class _Bucket:
    rate: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is due."""
        capacity = max(1.0, self.rate)
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(kw_only=True, slots=True)
class _Lane:
    """Per-endpoint dispatch state."""

    in_flight: int = 0
    waiting: deque[Job] = field(default_factory=deque)
    paused_until: float = 0.0
    bucket: _Bucket | None = None
    fifo_busy: bool = False


class Dispatcher:
    def __init__(
        self,
        *,
        store: SQLiteStore,
        endpoints: EndpointTable,
        scheduler: Scheduler,
        wheel: TimerWheel[str],
        session: aiohttp.ClientSession,
        config: DeliveryConfig,
        observers: list[Observer],
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.endpoints = endpoints
        self.scheduler = scheduler
        self.wheel = wheel
        self.session = session
        self.config = config
        self.observers = observers
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self._fired: deque[str] = deque()
        self._fired_event = asyncio.Event()
        self._blocked: deque[Job] = deque()
        self._lanes: dict[str, _Lane] = {}
        self._stopping = False
        self._helpers: set[asyncio.Task[None]] = set()

    # -- input: the wheel fires ids

    def fire(self, ids: list[str]) -> None:
        self._fired.extend(ids)
        self._fired_event.set()

    async def run(self) -> None:
        """Load fired deliveries in batches and admit them."""
        while True:
            await self._fired_event.wait()
            self._fired_event.clear()
            while self._fired and not self._stopping:
                ids: list[str] = []
                while self._fired and len(ids) < LOAD_BATCH:
                    delivery_id = self._fired.popleft()
                    if delivery_id not in self.in_flight:
                        ids.append(delivery_id)
                if not ids:
                    continue
                now = self.clock()
                for job in await self.store.jobs(ids):
                    self._consider(job, now)

    def _consider(self, job: Job, now: float) -> None:
        if job.status != "pending" or job.id in self.in_flight:
            return  # stale: finished, or already going
        if job.next_attempt_at is not None and job.next_attempt_at > now + 0.001:
            self.scheduler.offer(job.id, job.next_attempt_at)  # rescheduled meanwhile
            return
        ep = self.endpoints.get(job.endpoint)
        if ep is None or not ep.enabled:
            return  # deleted, or held until the endpoint is enabled again
        if ep.config.ordering == "fifo":
            self._kick_fifo(ep)
            return
        self._admit(job, ep, now)

    def _lane(self, ep: Endpoint) -> _Lane:
        lane = self._lanes.get(ep.id)
        if lane is None:
            lane = self._lanes[ep.id] = _Lane()
        rate = ep.config.rate_limit
        if rate is not None and (lane.bucket is None or lane.bucket.rate != rate):
            lane.bucket = _Bucket(rate=rate, tokens=max(1.0, rate), stamp=self.clock())
        elif rate is None:
            lane.bucket = None
        return lane

    def _admit(self, job: Job, ep: Endpoint, now: float) -> None:
        lane = self._lane(ep)
        if lane.paused_until > now:
            self.wheel.schedule(job.id, lane.paused_until)
            return
        limit = ep.config.max_in_flight
        if limit is not None and lane.in_flight >= limit:
            lane.waiting.append(job)
            return
        if lane.bucket is not None:
            wait = lane.bucket.take(now)
            if wait > 0:
                self.wheel.schedule(job.id, now + wait)
                return
        if len(self.in_flight) >= self.config.concurrency or self._stopping:
            self._blocked.append(job)
            return
        lane.in_flight += 1
        task = asyncio.create_task(self._attempt(job, ep), name=f"attempt:{job.id}")
        self.in_flight[job.id] = task
        task.add_done_callback(lambda t: self._finished(job, ep, t))

    def _finished(self, job: Job, ep: Endpoint, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(job.id, None)
        lane = self._lane(ep)
        lane.in_flight -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery.attempt_crashed", delivery=job.id, error=repr(task.exception()))
        if self._stopping:
            return
        now = self.clock()
        if lane.waiting:
            waiting = lane.waiting.popleft()
            self._admit(waiting, ep, now)
        while self._blocked and len(self.in_flight) < self.config.concurrency:
            blocked = self._blocked.popleft()
            current = self.endpoints.get(blocked.endpoint)
            if current is not None and current.enabled:
                self._admit(blocked, current, now)
        if ep.config.ordering == "fifo":
            lane.fifo_busy = False
            self._kick_fifo(ep)

    # -- fifo: only the oldest pending delivery of the endpoint runs

    def _kick_fifo(self, ep: Endpoint) -> None:
        lane = self._lane(ep)
        if lane.fifo_busy or self._stopping:
            return
        lane.fifo_busy = True
        task = asyncio.create_task(self._fifo_step(ep, lane), name=f"fifo:{ep.id}")
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _fifo_step(self, ep: Endpoint, lane: _Lane) -> None:
        try:
            head = await self.store.fifo_head(ep.id)
        except BaseException:
            lane.fifo_busy = False
            raise
        now = self.clock()
        if head is None or not ep.enabled or head.id in self.in_flight:
            lane.fifo_busy = head is not None and head.id in self.in_flight
            return
        if head.next_attempt_at is not None and head.next_attempt_at > now + 0.001:
            lane.fifo_busy = False  # the head waits for its retry; it holds back the rest
            self.wheel.schedule(head.id, head.next_attempt_at)
            return
        before = len(self.in_flight)
        self._admit(head, ep, now)
        if len(self.in_flight) == before:  # not started (rate limit, pause): try again when fired
            lane.fifo_busy = False

    # -- one attempt

    async def _attempt(self, job: Job, ep: Endpoint) -> None:
        now = self.clock()
        n = job.attempt_count + 1
        event = Event(
            id=job.event_id,
            type=job.event_type,
            timestamp=job.event_timestamp,
            data=json.loads(job.data),
        )
        headers: dict[str, str] = {
            "Content-Type": "application/json",
            "User-Agent": client.USER_AGENT,
            **ep.config.headers,
        }
        try:
            body = ep.body(event)
            message = Message(
                event_id=job.event_id, delivery_id=job.id, timestamp=int(now), body=body
            )
            if ep.signer.blocking:
                signature = await asyncio.to_thread(ep.signer.sign, message, now)
            else:
                signature = ep.signer.sign(message, now)
            headers.update(signature)
        except Exception as exc:  # a plugin's format or signer failed: record it, don't crash
            log.warning("delivery.prepare_failed", delivery=job.id, endpoint=ep.id, error=str(exc))
            response = client.Response(
                outcome=Outcome(error="refused"),
                latency_ms=0.0,
                body=None,
                detail=f"refused: cannot build the request: {type(exc).__name__}: {exc}",
            )
        else:
            response = await client.post(
                self.session,
                ep.config.url,
                body,
                headers,
                timeout=ep.policy.timeout,
                max_response_body=self.config.max_response_body,
                allow_private_networks=self.config.allow_private_networks,
                now=now,
            )
        await self._conclude(job, ep, n, now, headers, response)

    async def _conclude(
        self,
        job: Job,
        ep: Endpoint,
        n: int,
        started: float,
        headers: dict[str, str],
        response: client.Response,
    ) -> None:
        outcome = response.outcome
        delay = next_delay(ep.policy, n, outcome, self.rng)
        finished = self.clock()
        status = (
            "succeeded" if outcome.succeeded else ("pending" if delay is not None else "failed")
        )
        next_at = finished + delay if delay is not None else None
        failures: int | None = None
        disable: str | None = None
        if status == "succeeded" and ep.consecutive_failures:
            failures = 0
        elif status == "failed":
            failures = ep.consecutive_failures + 1
            limit = ep.policy.disable_after
            if limit and failures >= limit and ep.enabled:
                disable = f"{failures} consecutive failed deliveries"
        if (
            outcome.status_code == 429
            and outcome.retry_after is not None
            and ep.policy.honor_retry_after
            and is_retryable(ep.policy, outcome)
        ):
            pause = min(outcome.retry_after, ep.policy.retry_after_max)
            self._lane(ep).paused_until = max(self._lane(ep).paused_until, finished + pause)
        error = response.detail
        if error is None and not outcome.succeeded:
            error = f"HTTP {outcome.status_code}"
        await self.store.record(
            [
                AttemptResult(
                    delivery_id=job.id,
                    n=n,
                    started_at=started,
                    status_code=outcome.status_code,
                    latency_ms=round(response.latency_ms, 3),
                    error=error if not outcome.succeeded else None,
                    response_body=response.body,
                    request_headers=json.dumps(redact_headers(headers)),
                    status=status,  # type: ignore[arg-type]
                    next_attempt_at=next_at,
                    endpoint=ep.id,
                    endpoint_failures=failures,
                    disable_reason=disable,
                )
            ]
        )
        if failures is not None:
            ep.consecutive_failures = failures
        if disable is not None:
            ep.enabled = False
            ep.disabled_reason = disable
            log.warning("endpoint.auto_disabled", endpoint=ep.id, consecutive_failures=failures)
        self.metrics.attempt(status, response.latency_ms / 1000, outcome)
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
        await self._observe(job, ep, n, response, status)

    async def _observe(
        self, job: Job, ep: Endpoint, n: int, response: client.Response, status: str
    ) -> None:
        if not self.observers:
            return
        record = AttemptOutcome(
            delivery_id=job.id,
            event_id=job.event_id,
            event_type=job.event_type,
            endpoint=ep.id,
            attempt=n,
            status_code=response.outcome.status_code,
            error=response.detail,
            latency_ms=response.latency_ms,
            final_status=status,
        )
        for observer in self.observers:
            try:
                result: Any = observer(record)
                if inspect.isawaitable(result):
                    await asyncio.wait_for(result, timeout=5)
            except Exception as exc:
                log.warning("observer.failed", observer=repr(observer), error=str(exc))

    # -- lifecycle

    def pending_attempts(self) -> int:
        return len(self.in_flight)

    async def drain(self, grace: float) -> list[str]:
        """Stop starting attempts; let those in flight finish for ``grace`` seconds.

        Returns the ids of stragglers that were cancelled (they stay pending in the database
        and are attempted again after restart).
        """
        self._stopping = True
        tasks = list(self.in_flight.values())
        if tasks:
            log.info("dispatcher.draining", in_flight=len(tasks), grace_s=grace)
            await asyncio.wait(tasks, timeout=grace)
        stragglers = [d for d, t in self.in_flight.items() if not t.done()]
        for task in list(self.in_flight.values()) + list(self._helpers):
            task.cancel()
        for task in list(self.in_flight.values()) + list(self._helpers):
            with contextlib.suppress(BaseException):
                await task
        if stragglers:
            log.warning("dispatcher.cancelled_stragglers", deliveries=stragglers[:20])
        return stragglers
