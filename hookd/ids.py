"""Time-ordered identifiers: ``dlv_0193…`` sort by creation time, like ULIDs.

The random part comes from a Mersenne Twister seeded from the OS: ids must be unique, not
secret, and ``os.urandom`` per id is a system call that gives the GIL away on the ingest path
(measured: 14% of ingest CPU while the writer thread was busy).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

_random = random.Random(os.urandom(32))


def new_id(prefix: str) -> str:
    """``prefix_`` + 30 hex digits: 48 bits of milliseconds, then 72 random bits."""
    return "%s_%012x%018x" % (prefix, time.time_ns() // 1_000_000, _random.getrandbits(72))  # noqa: UP031 -- twice as fast as the f-string here


def id_maker(prefix: str) -> Callable[[], str]:
    """:func:`new_id` for ids made in one go (an ingest batch): the clock read once, here."""
    head = "%s_%012x" % (prefix, time.time_ns() // 1_000_000)  # noqa: UP031 -- as new_id
    bits = _random.getrandbits

    def make() -> str:
        return "%s%018x" % (head, bits(72))  # noqa: UP031 -- as new_id

    return make


# a forked child must not repeat its parent's ids
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))
