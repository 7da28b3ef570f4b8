"""Observers (plugins, SPEC §6) told of each attempt's outcome, outside the attempt: a slow or
failing observer holds no delivery slot and fails nothing but its own call (5 s each)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any

import structlog

from hookd.delivery.client import Response
from hookd.registry import AttemptOutcome, Observer
from hookd.store import Job

log = structlog.get_logger("hookd.delivery.dispatcher")  # where these lines always came from

OBSERVER_TIMEOUT_S = 5.0


async def tell(
    observers: Sequence[Observer], job: Job, endpoint: str, n: int, response: Response, status: str
) -> None:
    """Each observer in turn, with attempt ``n`` of ``job`` and its ``status`` after it."""
    record = AttemptOutcome(
        delivery_id=job.id,
        event_id=job.event_id,
        event_type=job.event_type,
        endpoint=endpoint,
        attempt=n,
        status_code=response.outcome.status_code,
        error=response.detail,
        latency_ms=response.latency_ms,
        final_status=status,
    )
    for observer in observers:
        try:
            result: Any = observer(record)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout=OBSERVER_TIMEOUT_S)
        except Exception as exc:
            log.warning("observer.failed", observer=repr(observer), error=str(exc))
