"""Timer wheel: unit cases on a fake clock, a property test against a heap, the real run loop."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hookd.delivery.wheel import TimerWheel
from tests.support import FakeClock, wait_for

# (tick, slots, levels): the daemon's shape, and tiny ones that cascade and overflow constantly.
SHAPES = [(0.01, 256, 4), (1.0, 4, 3), (0.1, 2, 1), (0.25, 3, 2)]


def make(shape: tuple[float, int, int], now: float = 1000.0) -> tuple[FakeClock, TimerWheel[str]]:
    clock = FakeClock(now)
    tick, slots, levels = shape
    return clock, TimerWheel(clock=clock, tick=tick, slots=slots, levels=levels)


def drain(clock: FakeClock, wheel: TimerWheel[str]) -> list[tuple[str, float]]:
    """Follow next_wakeup() like run() does, recording (key, time popped); never pops early."""
    fired: list[tuple[str, float]] = []
    while (wakeup := wheel.next_wakeup()) is not None:
        clock.now = max(clock.now, wakeup)
        for key in wheel.pop_due():
            fired.append((key, clock.now))
        after = wheel.next_wakeup()
        assert after is None or after > clock.now  # nothing due is left behind, so no spin
    return fired


# -- unit cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_schedule_then_pop_fires_in_due_order_and_never_early(
    shape: tuple[float, int, int],
) -> None:
    clock, wheel = make(shape)
    wheel.schedule("c", 1003.0)
    wheel.schedule("a", 1001.0)
    wheel.schedule("b", 1002.5)
    assert wheel.pop_due() == []
    assert wheel.pop_due(1000.999) == []
    assert wheel.pop_due(1001.0) == ["a"]
    clock.now = 1004.0
    assert wheel.pop_due() == ["b", "c"]
    assert len(wheel) == 0
    assert wheel.next_wakeup() is None


@pytest.mark.parametrize("shape", SHAPES)
def test_equal_due_times_fire_in_scheduling_order(shape: tuple[float, int, int]) -> None:
    clock, wheel = make(shape)
    for key in ["x", "y", "z", "w"]:
        wheel.schedule(key, 1050.0)
    wheel.schedule("y", 1050.0)  # re-scheduling counts as scheduling again
    clock.now = 1050.0
    assert wheel.pop_due() == ["x", "z", "w", "y"]


@pytest.mark.parametrize("shape", SHAPES)
def test_cancel_removes_and_reports_whether_it_was_held(shape: tuple[float, int, int]) -> None:
    clock, wheel = make(shape)
    wheel.schedule("a", 1001.0)
    wheel.schedule("far", 1e9)
    assert wheel.cancel("a") is True
    assert wheel.cancel("a") is False
    assert wheel.cancel("never") is False
    assert wheel.cancel("far") is True
    assert len(wheel) == 0
    assert wheel.next_wakeup() is None
    clock.now = 2e9
    assert wheel.pop_due() == []


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("moved_to", [1000.5, 1020.0, 5000.0, 999.0])
def test_reschedule_replaces_the_due_time(shape: tuple[float, int, int], moved_to: float) -> None:
    clock, wheel = make(shape)
    wheel.schedule("k", 1010.0)
    wheel.schedule("k", moved_to)
    assert len(wheel) == 1
    assert wheel.due_at("k") == moved_to
    assert drain(clock, wheel) == [("k", max(moved_to, 1000.0))]


@pytest.mark.parametrize("shape", SHAPES)
def test_keys_scheduled_in_the_past_are_due_at_once_in_order(shape: tuple[float, int, int]) -> None:
    _, wheel = make(shape)
    wheel.pop_due(1000.0)
    wheel.schedule("older", 900.0)
    wheel.schedule("old", 999.99)
    wheel.schedule("now", 1000.0)
    wheel.schedule("later", 1000.01)
    assert wheel.next_wakeup() == 900.0
    assert wheel.pop_due(950.0) == ["older"]  # an explicit, earlier `now` is honoured exactly
    assert wheel.pop_due() == ["old", "now"]
    assert wheel.due_at("later") == 1000.01


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("step", [0.05, 0.3, 1.0, 7.0])
def test_keys_beyond_the_lowest_level_cascade_and_fire_on_time(
    shape: tuple[float, int, int], step: float
) -> None:
    """Stepping the clock at any pace pops each key at the first step at or after its due time."""
    clock, wheel = make(shape)
    dues = {f"k{i}": 1000.0 + i * 3.7 for i in range(1, 30)}
    for key, when in reversed(dues.items()):
        wheel.schedule(key, when)
    fired: list[str] = []
    while clock.now < 1120.0:
        clock.now += step
        for key in wheel.pop_due():
            assert dues[key] <= clock.now < dues[key] + step + 1e-9
            fired.append(key)
    assert fired == list(dues)


@pytest.mark.parametrize("shape", SHAPES)
def test_keys_far_beyond_the_total_span_are_kept_and_fire_on_time(
    shape: tuple[float, int, int],
) -> None:
    clock, wheel = make(shape)
    far = [("year", 1000.0 + 365 * 86400.0), ("week", 1000.0 + 7 * 86400.0), ("soon", 1000.5)]
    for key, when in far:
        wheel.schedule(key, when)
    wakeup = wheel.next_wakeup()
    assert wakeup is not None
    assert wakeup <= 1000.5
    assert wheel.pop_due(far[1][1] - 1e-6) == ["soon"]
    assert drain(clock, wheel) == [("week", far[1][1]), ("year", far[0][1])]


@pytest.mark.parametrize("shape", SHAPES)
def test_len_contains_and_due_at_track_held_keys(shape: tuple[float, int, int]) -> None:
    clock, wheel = make(shape)
    assert len(wheel) == 0
    assert "a" not in wheel
    assert wheel.due_at("a") is None
    wheel.schedule("a", 1001.0)
    wheel.schedule("b", 1e7)
    assert len(wheel) == 2
    assert "a" in wheel
    assert "b" in wheel
    assert 42 not in wheel
    assert wheel.due_at("b") == 1e7
    clock.now = 1001.0
    assert wheel.pop_due() == ["a"]
    assert "a" not in wheel
    assert len(wheel) == 1


@pytest.mark.parametrize("shape", SHAPES)
def test_next_wakeup_is_never_after_the_earliest_due_time(shape: tuple[float, int, int]) -> None:
    clock, wheel = make(shape)
    assert wheel.next_wakeup() is None
    dues = {f"k{i}": when for i, when in enumerate([1000.3, 1017.0, 1099.9, 1234.5, 9999.0, 1e6])}
    for key, when in dues.items():
        wheel.schedule(key, when)
    while wheel:
        earliest = min(when for key, when in dues.items() if key in wheel)
        wakeup = wheel.next_wakeup()
        assert wakeup is not None
        assert wakeup <= earliest
        clock.now = max(clock.now, wakeup)
        wheel.pop_due()


def test_an_idle_wheel_reanchors_to_the_clock() -> None:
    """After a long idle gap, a near key lands in the lowest level and wakes exactly on time."""
    clock, wheel = make((0.01, 256, 4))
    clock.now += 30 * 86400.0
    wheel.schedule("k", clock.now + 0.5)
    assert wheel.next_wakeup() == clock.now + 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tick": 0.0}, "tick"),
        ({"tick": math.inf}, "tick"),
        ({"slots": 1}, "slots"),
        ({"levels": 0}, "levels"),
        ({"max_sleep": 0.0}, "max_sleep"),
    ],
)
def test_bad_shapes_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimerWheel(clock=FakeClock(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("when", [math.inf, -math.inf, math.nan])
def test_non_finite_times_are_refused(when: float) -> None:
    _, wheel = make(SHAPES[0])
    with pytest.raises(ValueError, match="finite"):
        wheel.schedule("k", when)
    with pytest.raises(ValueError, match="finite"):
        wheel.pop_due(when)
    assert len(wheel) == 0


# -- property test against a heap -------------------------------------------------------------

TICKS = st.sampled_from([0.01, 0.1, 0.25, 1.0, 3.0])
KEYS = st.integers(min_value=0, max_value=12)
OFFSETS = st.one_of(
    st.integers(min_value=-8, max_value=400).map(lambda i: i * 0.1),  # on and near tick edges
    st.floats(min_value=-5.0, max_value=60.0, allow_nan=False),
    st.floats(min_value=60.0, max_value=1e7, allow_nan=False),  # far beyond small spans
)
STEPS = st.one_of(
    st.integers(min_value=0, max_value=40).map(lambda i: i * 0.1),
    st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
    st.floats(min_value=20.0, max_value=2e6, allow_nan=False),
)


class WheelAgainstHeap(RuleBasedStateMachine):
    """The wheel pops exactly what a heap of (when, seq, key) pops, in the same order."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.wheel: TimerWheel[int] = TimerWheel(clock=self.clock, slots=2, levels=1)  # replaced
        self.heap: list[tuple[float, int, int]] = []
        self.held: dict[int, tuple[float, int]] = {}  # the heap's live entries; others are stale
        self.seq = 0

    @initialize(
        start=st.floats(min_value=-1e4, max_value=2e9, allow_nan=False),
        tick=TICKS,
        slots=st.integers(min_value=2, max_value=8),
        levels=st.integers(min_value=1, max_value=4),
    )
    def shape(self, start: float, tick: float, slots: int, levels: int) -> None:
        self.clock.now = start
        self.wheel = TimerWheel(clock=self.clock, tick=tick, slots=slots, levels=levels)

    def expected_due(self, now: float) -> list[int]:
        due: list[int] = []
        while self.heap and self.heap[0][0] <= now:
            when, seq, key = heapq.heappop(self.heap)
            if self.held.get(key) == (when, seq):
                del self.held[key]
                due.append(key)
        return due

    @rule(key=KEYS, offset=OFFSETS)
    def schedule(self, key: int, offset: float) -> None:
        when = self.clock.now + offset
        self.seq += 1
        self.held[key] = (when, self.seq)
        heapq.heappush(self.heap, (when, self.seq, key))
        self.wheel.schedule(key, when)

    @rule(key=KEYS)
    def cancel(self, key: int) -> None:
        assert self.wheel.cancel(key) is (self.held.pop(key, None) is not None)

    @rule(step=STEPS)
    def advance_and_pop(self, step: float) -> None:
        self.clock.now += step
        popped = self.wheel.pop_due()
        assert popped == self.expected_due(self.clock.now)
        wakeup = self.wheel.next_wakeup()
        assert wakeup is None or wakeup > self.clock.now  # nothing due is left: run() won't spin

    @rule()
    def sleep_until_wakeup_and_pop(self) -> None:
        wakeup = self.wheel.next_wakeup()
        if wakeup is not None:
            self.clock.now = max(self.clock.now, wakeup)
        assert self.wheel.pop_due() == self.expected_due(self.clock.now)

    @rule(back=st.floats(min_value=0.0, max_value=50.0, allow_nan=False))
    def pop_at_an_earlier_time(self, back: float) -> None:
        """An explicit `now` behind the wheel's cursor (a wall clock stepped back) is exact too."""
        now = self.clock.now - back
        popped = self.wheel.pop_due(now)
        expected = sorted((w, s, k) for k, (w, s) in self.held.items() if w <= now)
        assert popped == [k for _, _, k in expected]
        for key in popped:
            del self.held[key]

    @invariant()
    def holds_the_same_keys_and_times(self) -> None:
        assert len(self.wheel) == len(self.held)
        for key in range(13):
            assert (key in self.wheel) is (key in self.held)
            entry = self.held.get(key)
            assert self.wheel.due_at(key) == (None if entry is None else entry[0])

    @invariant()
    def next_wakeup_is_not_after_the_earliest_due_time(self) -> None:
        wakeup = self.wheel.next_wakeup()
        if not self.held:
            assert wakeup is None
        else:
            assert wakeup is not None
            assert wakeup <= min(when for when, _ in self.held.values())


WheelAgainstHeap.TestCase.settings = settings(
    max_examples=200, stateful_step_count=30, deadline=None
)
TestWheelAgainstHeap = WheelAgainstHeap.TestCase


# -- the real run loop ------------------------------------------------------------------------


class CountingWheel(TimerWheel[str]):
    """Counts run()'s passes (one pop_due each) and remembers the last wakeup it computed."""

    def __init__(
        self, clock: Callable[[], float], tick: float = 0.005, max_sleep: float = 1.0
    ) -> None:
        super().__init__(clock=clock, tick=tick, max_sleep=max_sleep)
        self.passes = 0
        self.last_wakeup: float | None = None

    def pop_due(self, now: float | None = None) -> list[str]:
        self.passes += 1
        return super().pop_due(now)

    def next_wakeup(self) -> float | None:
        self.last_wakeup = super().next_wakeup()
        return self.last_wakeup


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll (finely: the run loop works in milliseconds) until ``condition()`` holds."""
    await wait_for(condition, timeout=10, interval=0.002)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_run_fires_keys_in_order_never_early_and_wakes_for_earlier_keys() -> None:
    """On the real clock, run() fires each key at or after its due time, in due order; asleep
    toward a key an hour out (with sleeps that long allowed), it wakes for an earlier key."""
    clock = time.monotonic
    wheel = CountingWheel(clock, max_sleep=3600.0)
    fired: list[tuple[str, float]] = []

    def fire(keys: list[str]) -> None:
        fired.extend((key, clock()) for key in keys)

    task = asyncio.create_task(wheel.run(fire), name="wheel")
    t0 = clock()
    dues = {"b": t0 + 0.02, "c": t0 + 0.04, "a": t0 + 0.06}
    for key in ["a", "c", "b"]:
        wheel.schedule(key, dues[key])
    await wait_until(lambda: len(fired) == 3)
    assert [key for key, _ in fired] == ["b", "c", "a"]
    for key, at in fired:
        assert at >= dues[key]

    # Asleep on a key an hour out, the task must wake for an earlier one: without the wake it
    # would sleep the hour, and wait_until's deadline (seconds) would fail the test.
    passes = wheel.passes
    wheel.schedule("late", clock() + 3600.0)
    await wait_until(
        lambda: wheel.passes > passes and (wheel.last_wakeup or 0.0) > clock() + 60,
    )
    early = clock() + 0.02
    wheel.schedule("early", early)
    await wait_until(lambda: len(fired) == 4)
    assert fired[3][0] == "early"
    assert fired[3][1] >= early
    assert "late" in wheel
    await stop(task)


async def test_run_does_not_spin_while_idle() -> None:
    """Empty, run() makes one pass and then waits for a schedule(): no pass in the meantime."""
    wheel = CountingWheel(time.monotonic)
    task = asyncio.create_task(wheel.run(lambda keys: None), name="wheel")
    await wait_until(lambda: wheel.passes >= 1)
    passes = wheel.passes
    # An observation window (what is asserted is that nothing happens in it), so a sleep.
    await asyncio.sleep(0.1)
    assert wheel.passes == passes
    wheel.schedule("now", time.monotonic())
    await wait_until(lambda: wheel.passes > passes)  # ... and it is awake to a schedule
    await stop(task)


async def test_run_sleeps_max_sleep_between_passes_toward_a_far_key() -> None:
    """Holding only a key minutes away, run() wakes once per ``max_sleep`` (to notice a clock
    jump), never more often: each pass comes at least ``max_sleep`` after the one before."""
    max_sleep = 0.05
    stamps: list[float] = []

    class StampingWheel(CountingWheel):
        def pop_due(self, now: float | None = None) -> list[str]:
            stamps.append(time.monotonic())
            return super().pop_due(now)

    wheel = StampingWheel(time.monotonic, max_sleep=max_sleep)
    wheel.schedule("far", time.monotonic() + 300.0)
    task = asyncio.create_task(wheel.run(lambda keys: None), name="wheel")
    await wait_until(lambda: len(stamps) >= 5)
    await stop(task)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= max_sleep * 0.9 for gap in gaps), gaps  # 0.9: the loop timer's slack
    assert "far" in wheel


async def test_a_wall_clock_jump_while_asleep_delays_keys_by_max_sleep_at_most() -> None:
    """Asleep toward a key an hour out, the clock jumps an hour ahead: run() wakes within
    ``max_sleep`` (each sleep is capped while keys are held) and fires it, not an hour late."""
    clock = FakeClock(1000.0)
    wheel = CountingWheel(clock, max_sleep=0.05)
    fired: list[str] = []
    wheel.schedule("hour", 1000.0 + 3600.0)
    task = asyncio.create_task(wheel.run(fired.extend), name="wheel")
    await wait_until(lambda: wheel.last_wakeup is not None)  # computed: now it sleeps
    clock.now = 4600.0
    await wait_until(lambda: fired == ["hour"])  # within seconds, not the hour
    await stop(task)
