"""Building blocks for tests that talk to a store directly: events, finished attempts, and the
store a test's daemons used, opened after they stopped."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec

from hookd.store import (
    AttemptResult,
    DeliveryFilter,
    DeliveryRow,
    EventRow,
    NewDelivery,
    NewEvent,
    Recorded,
    Status,
    Store,
)
from tests.support import backends


@contextlib.asynccontextmanager
async def opened_store(db: Path) -> AsyncIterator[Store]:
    """The test's store, open: the SQLite file ``db`` after the daemon that wrote it has stopped
    (one owner at a time; ``write_config``'s ``{storage}`` and ``{db}`` are ``tmp_path /
    "hookd.db"``), or the test's PostgreSQL database when it runs on postgres."""
    store = backends.open_current(db)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def every_event(store: Store) -> list[EventRow]:
    """Every event in the store, in ingest order.

    The interface lists events only as those an endpoint has no delivery for (``missed_events``,
    which replay uses); for an endpoint that does not exist, that is every event.
    """
    events: list[EventRow] = []
    cursor: str | None = None
    while True:
        page = await store.missed_events(_NO_ENDPOINT, since=0.0, limit=500, cursor=cursor)
        events += page.items
        if page.next_cursor is None:
            return events
        cursor = page.next_cursor


_NO_ENDPOINT = "no endpoint has this id"


async def every_delivery(store: Store) -> list[DeliveryRow]:
    """Every delivery in the store, newest first."""
    rows: list[DeliveryRow] = []
    cursor: str | None = None
    while True:
        page = await store.deliveries(DeliveryFilter(), limit=500, cursor=cursor)
        rows += page.items
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


def new_event(
    event_id: str,
    *endpoints: str,
    kind: str = "x.y",
    data: object = None,
    keyed: bool = True,
    content_hash: str | None = None,
) -> NewEvent:
    """An event with one delivery ``dlv_<event id>_<endpoint>`` per endpoint, keyed by its id."""
    return NewEvent(
        id=event_id,
        type=kind,
        timestamp="2024-01-01T00:00:00.000Z",
        data=json.dumps({} if data is None else data),
        content_hash=content_hash if content_hash is not None else f"h:{event_id}",
        idem_key=event_id if keyed else None,
        deliveries=tuple(NewDelivery(id=f"dlv_{event_id}_{e}", endpoint=e) for e in endpoints),
    )


def attempt_result(
    delivery_id: str,
    endpoint: str,
    status: Status,
    *,
    lease: int,
    n: int = 1,
    code: int | None = 200,
    disable_after: int = 0,
    disable_reason: str | None = None,
    next_attempt_at: float | None = None,
) -> AttemptResult:
    return AttemptResult(
        delivery_id=delivery_id,
        lease=lease,
        n=n,
        started_at=time.time(),
        status_code=code,
        latency_ms=1.0,
        error=None if status == "succeeded" else f"HTTP {code}",
        response_body="ok",
        request_headers="{}",
        status=status,
        next_attempt_at=next_attempt_at,
        endpoint=endpoint,
        disable_after=disable_after,
        disable_reason=disable_reason,
    )


async def finish(
    store: Store,
    delivery_id: str,
    status: Status,
    code: int | None = 200,
    *,
    disable_after: int = 0,
) -> Recorded:
    """Claim the delivery and record one attempt that ends it (or schedules it) as ``status``."""
    [job] = await store.jobs([delivery_id])
    [claimed] = await store.claim([job], lease_s=60)
    next_at = time.time() + 60 if status == "pending" else None
    [recorded] = await store.record(
        [
            attempt_result(
                delivery_id,
                job.endpoint,
                status,
                lease=claimed.lease,
                n=job.attempt_count + 1,
                code=code,
                disable_after=disable_after,
                next_attempt_at=next_at,
            )
        ]
    )
    return recorded


Seed = tuple[float, float, bool]  # (started_at, latency_ms, succeeded)


async def seed_attempts(
    store: Store, endpoint: str, attempts: list[Seed], *, tag: str = "s", tenant: str | None = None
) -> None:
    """Record one finished attempt per ``(started_at, latency_ms, succeeded)``, each on a
    delivery of its own to ``endpoint`` (through ingest, claim and record, as the daemon
    does). ``tag`` keeps event ids apart between calls; ``tenant`` is the events' tenant."""
    for start in range(0, len(attempts), 500):
        chunk = attempts[start : start + 500]
        ids = [f"{tag}{endpoint}{start + i}" for i in range(len(chunk))]
        await store.ingest(
            [msgspec.structs.replace(new_event(i, endpoint), tenant=tenant) for i in ids]
        )
        jobs = await store.jobs([f"dlv_{i}_{endpoint}" for i in ids])
        claimed = {j.id: j.lease for j in await store.claim(jobs, lease_s=60)}
        results = []
        for event_id, (at, latency, ok) in zip(ids, chunk, strict=True):
            delivery_id = f"dlv_{event_id}_{endpoint}"
            results.append(
                AttemptResult(
                    delivery_id=delivery_id,
                    lease=claimed[delivery_id],
                    n=1,
                    started_at=at,
                    status_code=200 if ok else 500,
                    latency_ms=latency,
                    error=None if ok else "HTTP 500",
                    response_body="",
                    request_headers="{}",
                    status="succeeded" if ok else "failed",
                    next_attempt_at=None,
                    endpoint=endpoint,
                )
            )
        recorded = await store.record(results)
        assert all(r.applied for r in recorded)


def an_hour_of_attempts(now: float) -> list[tuple[float, float, bool]]:
    """An hour of an endpoint's history for :func:`seed_attempts`: a few attempts a minute,
    more and slower in a burst of failures 20 minutes ago (what a chart should show)."""
    out = []
    for minute in range(60):
        burst = 18 <= minute <= 23
        for k in range(3 + (minute * 7) % 5 + (6 if burst else 0)):
            ok = not (burst and k % 2) and (minute * 13 + k) % 17 != 0
            latency = 40.0 + (minute * 37 + k * 11) % 90 + (400.0 if burst else 0.0)
            out.append((now - 60 * minute - 1 - k, latency, ok))
    return out
