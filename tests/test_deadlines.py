"""hookd.deadlines.Deadline: asyncio.timeout's promise for each block, one timer for many."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest
import uvloop

from hookd.deadlines import Deadline, _Ring


async def test_a_block_past_its_time_raises_timeout_error() -> None:
    bound = Deadline(0.05)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        async with bound():
            await asyncio.sleep(30)
    assert time.monotonic() - began >= 0.05


async def test_a_block_in_time_is_left_alone_after_it_ends() -> None:
    """A block that ended is never cancelled by its deadline, even while others stay open."""
    bound = Deadline(0.05)
    async with bound():
        await asyncio.sleep(0)
    blocker = asyncio.create_task(_hang(bound))
    await asyncio.sleep(0.15)  # the blocker's deadline and ours have both passed
    with pytest.raises(TimeoutError):
        await blocker
    assert asyncio.current_task() is not None
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def _hang(bound: Deadline) -> None:
    async with bound():
        await asyncio.sleep(30)


async def test_of_many_blocks_exactly_those_past_their_time_time_out_on_one_timer() -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(callback, "__name__", "") == "expire":  # the deadlines' (not sleep's)
            armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    loop.call_at = counting_call_at  # type: ignore[method-assign]
    try:
        bound = Deadline(0.2)
        release = asyncio.Event()

        async def one(n: int) -> str:
            async with bound():
                if n % 2:
                    await asyncio.sleep(30)  # never in time
                await release.wait()
            return "done"

        tasks = [asyncio.create_task(one(n)) for n in range(100)]
        await asyncio.sleep(0.01)
        assert len(armed) == 1  # a hundred open blocks, one timer
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        del loop.call_at
    assert [r == "done" for r in results] == [n % 2 == 0 for n in range(100)]
    assert all(isinstance(r, TimeoutError) for r in results[1::2])
    assert len(armed) <= 3  # the first, and a re-arm or two for blocks opened a little later


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    bound = Deadline(30)
    task = asyncio.create_task(_hang(bound))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_an_error_inside_passes_through_and_the_block_closes() -> None:
    bound = Deadline(0.05)
    with pytest.raises(KeyError):
        async with bound():
            raise KeyError("x")
    await asyncio.sleep(0.1)  # the closed block's deadline passes: nothing is cancelled
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


def test_one_deadline_serves_blocks_in_several_event_loops() -> None:
    bound = Deadline(0.05)

    async def timed_out() -> bool:
        try:
            async with bound():
                await asyncio.sleep(30)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(timed_out())
    assert asyncio.run(timed_out())  # a new loop: a timer of its own


def test_an_event_loop_done_with_is_not_kept() -> None:
    """The rings are per loop and hold nothing of an idle loop: a closed loop goes."""
    bound = Deadline(30)

    async def one() -> None:
        async with bound():
            await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(one())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None


def test_a_timer_that_fires_a_little_early_does_not_spin() -> None:
    """uvloop counts whole milliseconds, so the shared timer may fire just before a deadline
    of 10.5 ms: the block is due then (asyncio's own loop runs timers that early too), not
    re-armed again and again until the clock ticks."""
    fired = 0
    expire = _Ring.expire

    def counting(ring: _Ring) -> None:
        nonlocal fired
        fired += 1
        expire(ring)

    async def blocks(bound: Deadline) -> int:
        timed_out = 0
        for _ in range(20):
            try:
                async with bound():
                    await asyncio.sleep(30)
            except TimeoutError:
                timed_out += 1
        return timed_out

    _Ring.expire = counting  # type: ignore[method-assign]
    try:
        loop = uvloop.new_event_loop()
        try:
            assert loop.run_until_complete(blocks(Deadline(0.0105))) == 20
        finally:
            loop.close()
    finally:
        _Ring.expire = expire  # type: ignore[method-assign]
    assert fired <= 2 * 20


async def test_a_block_is_entered_once() -> None:
    block = Deadline(1)()
    async with block:
        pass
    with pytest.raises(RuntimeError, match="entered once"):
        async with block:
            pass
