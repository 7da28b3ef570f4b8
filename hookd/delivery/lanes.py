"""A lane: one endpoint's dispatch state in memory (queue, in-flight count, pause, pacing)."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

from hookd.config import EndpointConfig
from hookd.store import Job, Limits


@dataclass(kw_only=True, slots=True)
class Pacer:
    """``rate_limit`` as pacing: attempts start at least ``1 / rate`` seconds apart.

    A token bucket that holds one token: no burst, so any window of ``w`` seconds sees at most
    ``rate * w + 1`` starts, and a late start never lets the next one catch up.
    """

    rate: float
    next_free: float = -math.inf

    def wait(self, now: float) -> float:
        """Seconds until an attempt may start (0 when one may start now)."""
        return max(0.0, self.next_free - now)

    def take(self, now: float) -> None:
        self.next_free = max(self.next_free, now) + 1.0 / self.rate

    def give_back(self) -> None:
        """Undo the last :meth:`take`: its attempt never started (another process had the
        delivery), so it used none of the endpoint's rate."""
        self.next_free -= 1.0 / self.rate


@dataclass(kw_only=True, slots=True)
class Lane:
    """Per-endpoint dispatch state."""

    id: str
    queue: deque[Job] = field(default_factory=deque)
    in_flight: int = 0
    paused_until: float = 0.0
    pacer: Pacer | None = None
    timer: asyncio.TimerHandle | None = None
    timer_at: float = math.inf
    fifo_busy: bool = False  # a head lookup is running
    fifo_again: bool = False  # kicked during that lookup: look again when it ends
    behind: bool = False  # its queue was full: due deliveries wait in the database
    refilling: bool = False  # reading them back

    def hold(self, job: Job, until: float) -> None:
        """Put ``job`` back at the head, and start nothing before ``until``."""
        self.queue.appendleft(job)
        self.paused_until = max(self.paused_until, until)

    def give_back(self) -> None:
        """Its last start never happened (another process had the delivery): no rate used."""
        if self.pacer is not None:
            self.pacer.give_back()

    def follow_rate(self, rate: float | None) -> None:
        """Pace at ``rate`` (a reload may change it; None: no limit)."""
        if rate is None:
            self.pacer = None
        elif self.pacer is None or self.pacer.rate != rate:
            self.pacer = Pacer(rate=rate)


def limits_of(config: EndpointConfig) -> Limits:
    """The endpoint's limits as a claim takes them (a shared store keeps them across processes)."""
    return Limits(
        max_in_flight=config.max_in_flight,
        rate_limit=config.rate_limit,
        fifo=config.ordering == "fifo",
    )
