"""Retention: forget what is older than ``storage.retention``, a little at a time.

A pass deletes, in this order:

1. deliveries that are final (``succeeded`` or ``failed``) and have not changed for longer than
   the retention, with their attempts;
2. events created longer ago than the retention that have no delivery left (so an event whose
   deliveries are all final and purged goes; one with a pending or a recent delivery stays).

Pending deliveries are never touched, however old. Each batch is at most ``batch`` rows in one
short write transaction (candidates are found on a read connection first), and the task pauses
between batches, so the group-commit writer, and with it ingest, is never held up for long. A
repeated event id is answered from the events table, so idempotency lasts as long as retention.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from hookd.errors import StoreError
from hookd.state import State
from hookd.store import Store

log = structlog.get_logger("hookd.retention")

BATCH = 500
PAUSE = 0.05  # seconds between batches: the writer serves ingest meanwhile
MIN_INTERVAL = 60.0
MAX_INTERVAL = 3600.0


@dataclass(kw_only=True, slots=True)
class PassResult:
    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    batches: int = 0


async def purge(
    store: Store,
    retention: float,
    *,
    now: float | None = None,
    batch: int = BATCH,
    pause: float = PAUSE,
) -> PassResult:
    """One pass: delete what is older than ``retention`` seconds before ``now``."""
    cutoff = (time.time() if now is None else now) - retention
    result = PassResult()
    for purge_step, kind in (
        (store.purge_deliveries, "deliveries"),
        (store.purge_events, "events"),
    ):
        cursor: str | None = None
        while True:
            step = await purge_step(before=cutoff, limit=batch, cursor=cursor)
            setattr(result, kind, getattr(result, kind) + step.rows)
            result.attempts += step.attempts
            result.batches += 1
            cursor = step.resume
            if cursor is None:
                break
            await asyncio.sleep(pause)
    await store.purge_stats(now=cutoff + retention)  # rollups keep their own time (stats.py)
    return result


def interval_for(retention: float) -> float:
    """How often a pass runs: a tenth of the retention, between a minute and an hour."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, retention / 10))


async def run(state: State, *, interval: float | None = None) -> None:
    """Purge now, then every ``interval`` seconds (default :func:`interval_for`), until cancelled.

    ``storage.retention`` is read before each pass, from the state's current config.
    """
    while True:
        keep = state.config.storage.retention
        started = time.monotonic()
        try:
            result = await purge(state.store, keep)
        except StoreError as exc:  # a full or locked database: try again later, keep running
            log.warning("retention.failed", error=str(exc))
            await asyncio.sleep(MIN_INTERVAL)
            continue
        log.info(
            "retention.purged",
            deliveries=result.deliveries,
            attempts=result.attempts,
            events=result.events,
            batches=result.batches,
            retention_s=keep,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        for kind in ("deliveries", "attempts", "events"):
            state.metrics.purged.labels(kind=kind).inc(getattr(result, kind))
        await asyncio.sleep(interval if interval is not None else interval_for(keep))
