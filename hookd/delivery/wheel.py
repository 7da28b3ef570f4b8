"""A hashed, hierarchical timing wheel: the near future of the outbox, held in memory.

SQLite stays the truth; the wheel only answers "which keys are due now, and when do I next wake?".

Design. Time is cut into integer ticks (``floor(when / tick)``); ``_cur`` is the first tick not yet
expired. Level ``l`` has ``slots`` buckets, each ``slots**l`` ticks wide, and holds keys less than
``slots`` of its buckets ahead of ``_cur``; anything further out waits in one overflow bucket that
is rescanned only when its earliest key comes into range. A bucket is a dict ``key -> (when, seq)``
and ``_where`` maps each key to its bucket, so schedule and cancel are O(1). An int bitmap per level
marks non-empty buckets, so finding the next bucket to expire or cascade is a few big-int ops, and
``pop_due`` jumps straight over empty stretches instead of stepping tick by tick. When ``_cur``
reaches a higher-level bucket, its keys cascade down. ``pop_due`` compares exact ``when`` values, so
nothing fires early; keys whose tick is already behind ``_cur`` wait in the current bucket.
``run`` is the one task: pop, fire, then sleep on an ``asyncio.Event`` until ``next_wakeup()``
(no timeout when empty); ``schedule`` sets the event when it moves the wakeup earlier. A sleep
lasts ``max_sleep`` at most while keys are held, so a wall clock that jumps forward delays them
by that much, not by the jump.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TimerWheel"]

K = TypeVar("K", bound=Hashable)

_Entry = tuple[float, int]  # (when, seq): seq orders keys that share a `when`


class _Bucket(Generic[K]):
    """One slot of one level (or the overflow); shared by reference from the key index."""

    __slots__ = ("entries", "index", "level")

    def __init__(self, level: int, index: int) -> None:
        self.entries: dict[K, _Entry] = {}
        self.level = level
        self.index = index


class TimerWheel(Generic[K]):
    """Keys with due times; ``pop_due`` hands back the due ones in (when, scheduling) order."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        tick: float = 0.01,
        slots: int = 256,
        levels: int = 4,
        max_sleep: float = 1.0,
    ) -> None:
        if not (math.isfinite(tick) and tick > 0):
            raise ValueError(f"tick must be a positive number of seconds, got {tick!r}")
        if slots < 2:
            raise ValueError(f"slots must be at least 2, got {slots!r}")
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels!r}")
        if not (math.isfinite(max_sleep) and max_sleep > 0):
            raise ValueError(f"max_sleep must be a positive number of seconds, got {max_sleep!r}")
        self._clock = clock
        self._tick = tick
        self._slots = slots
        self._levels = levels
        self._max_sleep = max_sleep  # a wall clock jumping forward delays keys by this at most
        self._mask = (1 << slots) - 1
        self._widths: list[int] = [slots**level for level in range(levels)]
        self._buckets: list[list[_Bucket[K]]] = [
            [_Bucket(level, index) for index in range(slots)] for level in range(levels)
        ]
        self._occupied = [0] * levels  # bit i set <=> self._buckets[level][i] is non-empty
        self._overflow: _Bucket[K] = _Bucket(levels, 0)
        self._overflow_min: int | None = None  # lower bound of overflow keys' top-level bucket
        self._where: dict[K, _Bucket[K]] = {}
        self._cur = self._tick_of(clock())
        self._seq = 0
        self._wake = asyncio.Event()
        self._sleep_until: float | None = None

    # -- public API ----------------------------------------------------------------------------

    def schedule(self, key: K, when: float) -> None:
        """Hold ``key`` until ``when``; re-scheduling a held key replaces its due time."""
        if not math.isfinite(when):
            raise ValueError(f"when must be a finite time, got {when!r}")
        self._remove(key)
        if not self._where:  # an idle wheel re-anchors to the clock instead of cascading to it
            self._cur = max(self._cur, self._tick_of(self._clock()))
        self._seq += 1
        self._put(key, (when, self._seq))
        if self._sleep_until is None or when < self._sleep_until:
            self._wake.set()

    def cancel(self, key: K) -> bool:
        """Forget ``key``; True if it was held."""
        return self._remove(key) is not None

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def due_at(self, key: K) -> float | None:
        """The time ``key`` is due, or None if it is not held."""
        bucket = self._where.get(key)
        return None if bucket is None else bucket.entries[key][0]

    def pop_due(self, now: float | None = None) -> list[K]:
        """Remove and return every key due at ``now`` (default: the clock), by (when, seq)."""
        if now is None:
            now = self._clock()
        if not math.isfinite(now):
            raise ValueError(f"now must be a finite time, got {now!r}")
        target = self._tick_of(now)
        due: list[tuple[float, int, K]] = []
        while self._cur < target:
            # Every key in the current bucket has a tick <= _cur < target, so when < now.
            expired = self._take(self._buckets[0][self._cur % self._slots])
            for key, (when, seq) in expired.items():
                del self._where[key]
                due.append((when, seq, key))
            nxt = self._next_event()
            self._cur = target if nxt is None else min(nxt, target)
            self._cascade()
        bucket = self._buckets[0][self._cur % self._slots]
        if bucket.entries:
            ripe = [(w, s, k) for k, (w, s) in bucket.entries.items() if w <= now]
            for _, _, key in ripe:
                self._remove(key)
            due.extend(ripe)
        due.sort()  # seqs are unique, so keys themselves are never compared
        return [key for _, _, key in due]

    def next_wakeup(self) -> float | None:
        """A time at or before the earliest due time held (exact for the nearest bucket)."""
        if not self._where:
            return None
        cascade = self._next_cascade()
        offset = self._first_set(self._occupied[0], self._cur % self._slots)
        if offset is not None and (cascade is None or self._cur + offset < cascade):
            bucket = self._buckets[0][(self._cur + offset) % self._slots]
            return min(when for when, _ in bucket.entries.values())
        assert cascade is not None
        return self._start_of(cascade)

    async def run(self, fire: Callable[[list[K]], None]) -> None:
        """Fire due keys forever; sleep until the next wakeup, or until ``schedule`` wakes us.

        ``fire`` runs on the loop and may call ``schedule``; an exception from it ends ``run``.
        """
        try:
            while True:
                keys = self.pop_due()
                if keys:
                    fire(keys)
                self._wake.clear()
                self._sleep_until = self.next_wakeup()
                if self._sleep_until is None:
                    await self._wake.wait()
                    continue
                delay = min(self._sleep_until - self._clock(), self._max_sleep)
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            self._sleep_until = None

    # -- internals -----------------------------------------------------------------------------

    def _tick_of(self, when: float) -> int:
        return math.floor(when / self._tick)

    def _start_of(self, tick: int) -> float:
        """The smallest float whose tick is ``tick`` or later (exact, despite float rounding)."""
        when = tick * self._tick
        while self._tick_of(when) >= tick:
            when = math.nextafter(when, -math.inf)
        while self._tick_of(when) < tick:
            when = math.nextafter(when, math.inf)
        return when

    def _put(self, key: K, entry: _Entry) -> None:
        tick = self._tick_of(entry[0])
        bucket = self._overflow
        if tick <= self._cur:
            bucket = self._buckets[0][self._cur % self._slots]
        else:
            for level, width in enumerate(self._widths):
                if tick // width - self._cur // width < self._slots:
                    bucket = self._buckets[level][tick // width % self._slots]
                    break
        bucket.entries[key] = entry
        self._where[key] = bucket
        if bucket is self._overflow:
            top = tick // self._widths[-1]
            self._overflow_min = top if self._overflow_min is None else min(self._overflow_min, top)
        else:
            self._occupied[bucket.level] |= 1 << bucket.index

    def _remove(self, key: K) -> _Entry | None:
        bucket = self._where.pop(key, None)
        if bucket is None:
            return None
        entry = bucket.entries.pop(key)
        if not bucket.entries:
            self._mark_empty(bucket)
        return entry

    def _take(self, bucket: _Bucket[K]) -> dict[K, _Entry]:
        """Empty ``bucket``, returning its entries; ``_where`` still points at it."""
        entries = bucket.entries
        bucket.entries = {}
        self._mark_empty(bucket)
        return entries

    def _mark_empty(self, bucket: _Bucket[K]) -> None:
        if bucket is self._overflow:
            self._overflow_min = None
        else:
            self._occupied[bucket.level] &= ~(1 << bucket.index)

    def _cascade(self) -> None:
        """Re-place keys whose higher-level bucket (or overflow) ``_cur`` has just reached."""
        if self._overflow.entries and self._overflow_tick() <= self._cur:
            for key, entry in self._take(self._overflow).items():
                self._put(key, entry)
        for level in range(self._levels - 1, 0, -1):
            width = self._widths[level]
            index = self._cur // width % self._slots
            if self._cur % width == 0 and self._occupied[level] >> index & 1:
                for key, entry in self._take(self._buckets[level][index]).items():
                    self._put(key, entry)

    def _next_event(self) -> int | None:
        """The first tick after ``_cur`` with a bucket to expire, cascade or rescan."""
        best = self._next_cascade()
        offset = self._first_set(self._occupied[0], (self._cur + 1) % self._slots)
        if offset is not None and (best is None or self._cur + 1 + offset < best):
            best = self._cur + 1 + offset
        return best

    def _next_cascade(self) -> int | None:
        """The first tick after ``_cur`` at which a higher level or the overflow moves down."""
        best: int | None = None
        for level in range(1, self._levels):
            tick = self._cascade_tick(level)
            if tick is not None and (best is None or tick < best):
                best = tick
        if self._overflow.entries:
            tick = self._overflow_tick()
            if best is None or tick < best:
                best = tick
        return best

    def _cascade_tick(self, level: int) -> int | None:
        """The tick at which the nearest non-empty bucket of ``level`` (>= 1) cascades."""
        width = self._widths[level]
        base = self._cur // width + 1
        offset = self._first_set(self._occupied[level], base % self._slots)
        return None if offset is None else (base + offset) * width

    def _overflow_tick(self) -> int:
        """The tick at which the earliest overflow key may fit into the top level."""
        assert self._overflow_min is not None
        return (self._overflow_min - self._slots + 1) * self._widths[-1]

    def _first_set(self, bits: int, start: int) -> int | None:
        """Offset from ``start`` (circularly) of the first set bit, or None if none is set."""
        if not bits:
            return None
        rotated = ((bits >> start) | (bits << (self._slots - start))) & self._mask
        return (rotated & -rotated).bit_length() - 1
