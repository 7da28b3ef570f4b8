"""The loader between SQLite and the wheel: horizon, batches, resets, on a fake clock and store."""

from __future__ import annotations

import asyncio
from typing import Any

from hookd.delivery.scheduler import Scheduler
from hookd.delivery.wheel import TimerWheel
from tests.support import FakeClock, wait_for


class FakeStore:
    """``due()`` over a dict of pending deliveries (seq: insertion order); ``gate`` can hold a
    query half-way."""

    def __init__(self) -> None:
        self.pending: dict[str, float] = {}
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.queries: list[tuple[tuple[float, int], float]] = []

    async def due(
        self, *, after: tuple[float, int], end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        rows = sorted(
            (
                (i, t, seq)
                for seq, (i, t) in enumerate(self.pending.items(), start=1)
                if (t, seq) > after and t < end
            ),
            key=lambda r: (r[1], r[2]),
        )[:limit]  # read when the query starts, like a snapshot
        self.queries.append((after, end))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return rows


def make(**kw: Any) -> tuple[FakeClock, FakeStore, TimerWheel[str], Scheduler]:
    clock = FakeClock()
    store = FakeStore()
    wheel: TimerWheel[str] = TimerWheel(clock=clock)
    scheduler = Scheduler(store, wheel, clock=clock, window=60.0, **kw)  # type: ignore[arg-type]
    return clock, store, wheel, scheduler


async def test_a_load_takes_what_is_due_inside_the_window_only() -> None:
    clock, store, wheel, scheduler = make()
    store.pending = {"late": 500.0, "now": 1000.0, "soon": 1059.0, "later": 1061.0}
    assert await scheduler.load_once() == 3
    assert {k for k in ("late", "now", "soon", "later") if k in wheel} == {"late", "now", "soon"}
    assert scheduler.horizon == 1060.0
    clock.now = 1030.0
    assert await scheduler.load_once() == 1  # resumes where the last one ended
    assert "later" in wheel
    assert store.queries == [((0.0, 0), 1060.0), ((1060.0, 0), 1090.0)]


async def test_offers_inside_the_horizon_go_to_the_wheel_and_later_ones_wait() -> None:
    _, _, wheel, scheduler = make()
    scheduler.offer("early", 1001.0)  # before any load: the first load will read it
    assert "early" not in wheel
    await scheduler.load_once()
    scheduler.offer("inside", 1030.0)
    scheduler.offer("outside", 2000.0)
    assert "inside" in wheel
    assert "outside" not in wheel


async def test_a_full_batch_resumes_after_its_last_row() -> None:
    _, store, wheel, scheduler = make(batch=2)
    store.pending = {"a": 1001.0, "b": 1002.0, "c": 1003.0}
    assert await scheduler.load_once() == 2
    assert scheduler.horizon == 1002.0  # c is not in the wheel: offers past b must wait too
    scheduler.offer("c", 1003.0)
    assert "c" not in wheel
    assert await scheduler.load_once() == 1  # after b: c alone
    assert "c" in wheel


async def test_full_batches_sharing_one_due_time_page_through_all_of_them() -> None:
    """More deliveries than a batch at one due time: each load goes on after the last one read
    (by seq), kicking the next, until all are in the wheel."""
    _, store, wheel, scheduler = make(batch=2)
    store.pending = {k: 1000.0 for k in "abcde"}
    loaded = []
    while True:
        scheduler._kick.clear()
        loaded.append(await scheduler.load_once())
        if not scheduler._kick.is_set():
            break
    assert loaded == [2, 2, 1]
    assert all(k in wheel for k in "abcde")
    assert [after for after, _ in store.queries] == [(0.0, 0), (1000.0, 2), (1000.0, 4)]


async def test_a_reset_during_a_load_is_not_undone_by_it() -> None:
    """An endpoint enabled while a load reads must still be read again from the start."""
    clock, store, wheel, scheduler = make()
    await scheduler.load_once()
    store.gate = asyncio.Event()
    store.entered.clear()
    clock.now = 1010.0
    load = asyncio.create_task(scheduler.load_once())
    await store.entered.wait()
    store.pending["held"] = 1005.0  # was filtered out; enabling its endpoint makes it visible
    scheduler.reset()
    store.gate.set()
    await load
    assert "held" not in wheel  # the straddling read could not see it ...
    store.gate = None
    await scheduler.load_once()
    assert "held" in wheel  # ... and the next one starts over from the beginning
    assert store.queries[-1][0] == (0.0, 0)


async def test_run_loads_on_a_kick() -> None:
    _, store, wheel, scheduler = make()
    task = asyncio.create_task(scheduler.run())
    try:
        await store.entered.wait()
        store.entered.clear()
        store.pending["new"] = 1000.0
        scheduler.reset()
        await wait_for(lambda: "new" in wheel)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_loader_held_at_high_water_wakes_once_the_wheel_drains_below_low_water() -> None:
    """At ``high_water`` a load takes nothing; the wheel firing (``on_fired``) wakes the loader
    as soon as it is below ``low_water``, not at the next periodic load a quarter window later."""
    clock, store, wheel, scheduler = make(batch=2, high_water=2, low_water=1)
    store.pending = {"a": 1000.0, "b": 1000.5, "c": 1001.0, "d": 1001.5}
    task = asyncio.create_task(scheduler.run())
    try:
        await wait_for(lambda: len(store.queries) == 1 and scheduler._full)
        assert {k for k in "abcd" if k in wheel} == {"a", "b"}
        scheduler.on_fired()  # still at high water: nothing to do
        assert not scheduler._kick.is_set()
        clock.now = 1000.2
        assert wheel.pop_due() == ["a"]
        scheduler.on_fired()  # 1 left, not below low water yet
        assert not scheduler._kick.is_set()
        clock.now = 1000.7
        assert wheel.pop_due() == ["b"]
        scheduler.on_fired()
        await wait_for(lambda: "c" in wheel and "d" in wheel)
        assert [after for after, _ in store.queries] == [(0.0, 0), (1000.5, 2)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
