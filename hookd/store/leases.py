"""Claims held in the process: the lease table of a backend that one process owns.

A SQLite file is owned by one hookd process at a time (:mod:`hookd.store.sqlite` takes an
exclusive lock on it), so its leases need not be written down: a lease is only about who may
attempt a delivery now, and a process that dies takes its leases with it, which is exactly what
an expired lease means. The table is still a real lease table (expiry, fencing tokens), so the
dispatcher works the same on every backend and a stale attempt cannot record over a newer one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable


class Leases:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[int, float]] = {}  # delivery id -> (token, until)
        self._tokens = itertools.count(1)

    def __len__(self) -> int:
        return len(self._held)

    def take(self, delivery_id: str, seconds: float) -> int | None:
        """A new token for ``delivery_id``, or None while another lease on it is live."""
        now = self._clock()
        held = self._held.get(delivery_id)
        if held is not None and held[1] > now:
            return None
        token = next(self._tokens)
        self._held[delivery_id] = (token, now + seconds)
        return token

    def live(self, delivery_id: str) -> bool:
        """Whether a lease on the delivery is held and has not run out."""
        held = self._held.get(delivery_id)
        return held is not None and held[1] > self._clock()

    def holds(self, delivery_id: str, token: int) -> bool:
        """Whether ``token`` is the newest claim on the delivery (expired or not: a lease that
        ran out is still good until someone else claims)."""
        held = self._held.get(delivery_id)
        return held is not None and held[0] == token

    def end(self, delivery_id: str, token: int | None = None) -> None:
        """Drop the lease (only if it is ``token``'s, when given)."""
        held = self._held.get(delivery_id)
        if held is not None and (token is None or held[0] == token):
            del self._held[delivery_id]

    def end_all(self, ids: Iterable[str]) -> None:
        for delivery_id in ids:
            self._held.pop(delivery_id, None)
