"""The dispatcher in process: a real SQLite store, wheel, scheduler, aiohttp session and receiver,
without the HTTP server, so tests can reach in (drain, re-fire, disable) where the API cannot."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hookd import config as configuration
from hookd import endpoints as eps
from hookd import ingest
from hookd.builtin import builtin_registry
from hookd.delivery.client import make_session
from hookd.delivery.dispatcher import Dispatcher
from hookd.delivery.lanes import Pacer
from hookd.delivery.scheduler import Scheduler
from hookd.delivery.wheel import TimerWheel
from hookd.metrics import Metrics
from hookd.store import DeliveryRow, SQLiteStore
from tests.support import endpoint, opened_store, receiver, wait_for


@dataclass
class Rig:
    db: Path
    store: SQLiteStore
    table: eps.EndpointTable
    wheel: TimerWheel[str]
    scheduler: Scheduler
    dispatcher: Dispatcher

    async def send(self, type_: str = "x", data: object = None) -> list[str]:
        """Ingest one event the way the server does; its delivery ids."""
        posted = ingest.Posted(type=type_, data=data or {}, id=None, timestamp=None)
        event = await ingest.prepare(posted, self.table, now=time.time())
        [accepted] = await self.store.ingest([event])
        for d in accepted.deliveries:
            self.scheduler.offer(d.id, time.time())
        return [d.id for d in accepted.deliveries]

    async def row(self, delivery_id: str) -> DeliveryRow:
        row = await self.store.delivery(delivery_id)
        assert row is not None, delivery_id
        return row

    async def status_is(self, status: str, *delivery_ids: str) -> bool:
        rows = [await self.row(i) for i in delivery_ids]
        return all(row.status == status for row in rows)


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, endpoints: str, policies: str = "") -> AsyncIterator[Rig]:
    text = "delivery: {allow_private_networks: true}\n"
    if policies:
        text += "policies:\n" + policies
    text += "endpoints:\n" + endpoints
    cfg = configuration.parse(text, source=str(tmp_path / "h.yaml"))
    configured, problems = eps.resolve_config(cfg, builtin_registry())
    assert not problems
    db = tmp_path / "hookd.db"
    store = SQLiteStore(db)
    await store.open()
    await store.reconcile_config_endpoints({i: ep.tenant for i, ep in configured.items()})
    table = eps.EndpointTable()
    for ep in configured.values():
        table.put(ep)
    wheel: TimerWheel[str] = TimerWheel(clock=time.time)
    scheduler = Scheduler(store, wheel)
    session = make_session(concurrency=cfg.delivery.concurrency, allow_private_networks=True)
    dispatcher = Dispatcher(
        store=store,
        endpoints=table,
        scheduler=scheduler,
        wheel=wheel,
        session=session,
        config=cfg.delivery,
        observers=[],
        metrics=Metrics(),
    )
    await scheduler.load_once()
    tasks = [
        asyncio.create_task(wheel.run(dispatcher.fire)),
        asyncio.create_task(scheduler.run()),
        asyncio.create_task(dispatcher.run()),
    ]
    try:
        yield Rig(db, store, table, wheel, scheduler, dispatcher)
    finally:
        await dispatcher.drain(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        await store.close()


async def test_drain_lets_attempts_in_flight_finish_and_records_them(tmp_path: Path) -> None:
    """drain(grace) with a slow receiver: the attempt completes and its success is on disk."""
    async with receiver(delay=0.3) as rec, rig(tmp_path, endpoint("a", rec.url)) as r:
        [delivery_id] = await r.send()
        await rec.received(1)
        assert r.dispatcher.pending_attempts() == 1
        assert await r.dispatcher.drain(5) == []
        assert r.dispatcher.pending_attempts() == 0
        await r.store.close()  # the writer finishes what it was given
        async with opened_store(r.db) as reopened:  # what the next start will find
            row = await reopened.delivery(delivery_id)
    assert row is not None
    assert (row.status, row.attempt_count) == ("succeeded", 1)


async def test_drain_cancels_stragglers_which_stay_pending(tmp_path: Path) -> None:
    """An attempt outliving the grace is cancelled, named, and left pending for the restart:
    drain gives it the grace, then returns while the receiver has still not answered."""
    async with receiver() as rec, rig(tmp_path, endpoint("a", rec.url)) as r:
        rec.hold = True  # the receiver answers only when the test ends
        [delivery_id] = await r.send()
        await rec.received(1)
        started = time.monotonic()
        assert await r.dispatcher.drain(0.2) == [delivery_id]
        assert time.monotonic() - started >= 0.2  # the grace was given
        assert rec.answered == 0  # ... and not waited out until the answer
        assert r.dispatcher.pending_attempts() == 0
        row = await r.row(delivery_id)
    assert (row.status, row.attempt_count) == ("pending", 0)


async def test_a_delivery_fired_again_while_queued_or_in_flight_is_attempted_once(
    tmp_path: Path,
) -> None:
    """Re-fired ids (a reload, a reset) never make a second concurrent or stale attempt."""
    async with (
        receiver(delay=0.2) as rec,
        rig(tmp_path, endpoint("a", rec.url, max_in_flight="1")) as r,
    ):
        ids = [d for _ in range(3) for d in await r.send()]
        await wait_for(lambda: len(rec.requests) == 1)  # one in flight, two queued behind it
        for _ in range(3):
            r.dispatcher.fire(ids)
            r.scheduler.reset()
            await asyncio.sleep(0)  # one loop turn between re-fires, not a wait for anything
        await wait_for(lambda: r.status_is("succeeded", *ids))
        await wait_for(lambda: r.dispatcher.queued() == 0 and not r.dispatcher.in_flight)
        assert [(await r.row(i)).attempt_count for i in ids] == [1, 1, 1]
    assert len(rec.requests) == 3
    assert rec.peak == 1


async def test_held_deliveries_of_a_disabled_endpoint_resume_when_enabled(tmp_path: Path) -> None:
    """A retry falling due while the endpoint is disabled waits; enabling (and a reload) runs it."""
    policies = "  soon: {delays: [200ms], jitter: none}\n"
    async with (
        receiver(decide=lambda hit, n: 500 if n == 1 else 200) as rec,
        rig(tmp_path, endpoint("a", rec.url, policy="soon"), policies) as r,
    ):
        [delivery_id] = await r.send()

        async def attempted_once() -> bool:
            return (await r.row(delivery_id)).attempt_count == 1

        await wait_for(attempted_once)
        ep = r.table.get("a")
        assert ep is not None
        ep.enabled = False
        await r.store.set_endpoint_enabled("a", False, "by hand")
        due = (await r.row(delivery_id)).next_attempt_at
        assert isinstance(due, float)
        await wait_for(lambda: time.time() > due and delivery_id not in r.wheel)
        assert (await r.row(delivery_id)).status == "pending"
        enabled_at = time.time()
        await r.store.set_endpoint_enabled("a", True)
        ep.enabled = True
        r.scheduler.reset()
        await wait_for(lambda: r.status_is("succeeded", delivery_id))
    assert len(rec.requests) == 2
    assert rec.requests[1].at >= enabled_at


def test_pacer_spaces_starts_by_one_over_the_rate() -> None:
    pacer = Pacer(rate=4.0)
    assert pacer.wait(100.0) == 0.0
    pacer.take(100.0)
    assert pacer.wait(100.0) == pytest.approx(0.25)
    assert pacer.wait(100.1) == pytest.approx(0.15)
    pacer.take(100.25)
    assert pacer.wait(100.25) == pytest.approx(0.25)


def test_pacer_does_not_bank_idle_time_into_a_burst() -> None:
    """After a long idle spell only one attempt may start at once, then the pace resumes."""
    pacer = Pacer(rate=10.0)
    pacer.take(0.0)
    assert pacer.wait(60.0) == 0.0
    pacer.take(60.0)
    assert pacer.wait(60.0) == pytest.approx(0.1)


async def test_a_loader_held_at_high_water_goes_on_as_soon_as_the_wheel_fires(
    tmp_path: Path,
) -> None:
    """With the wheel at ``high_water`` the loader stops; the dispatcher taking the fired keys
    wakes it (below ``low_water``) at once, not a quarter window (15 s) later."""
    async with receiver() as rec, rig(tmp_path, endpoint("a", rec.url)) as r:
        r.scheduler.batch = r.scheduler.high_water = r.scheduler.low_water = 1
        ids: list[str] = []
        for _ in range(3):  # not offered: only loads, one at a time, bring them to the wheel
            posted = ingest.Posted(type="x", data={}, id=None, timestamp=None)
            [accepted] = await r.store.ingest(
                [await ingest.prepare(posted, r.table, now=time.time())]
            )
            ids += [d.id for d in accepted.deliveries]
        r.wheel.schedule("dlv_placeholder", time.time() + 0.5)  # the wheel is at high water
        r.scheduler.reset()
        await wait_for(lambda: r.scheduler._full)  # held, until the placeholder fires
        # the deadline (10 s) is shorter than the quarter window (15 s) a missed wake would take
        await wait_for(lambda: r.status_is("succeeded", *ids), timeout=10)
