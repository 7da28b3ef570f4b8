"""Building blocks for tests that talk to a store directly: events and finished attempts."""

from __future__ import annotations

import json
import time

from hookd.store import AttemptResult, NewDelivery, NewEvent, Recorded, Status, Store


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


def result(
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
            result(
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
