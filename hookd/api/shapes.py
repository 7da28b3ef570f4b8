"""Stored rows as the API shows them: a delivery as JSON, a stored event as plugins see it."""

from __future__ import annotations

import json
from typing import Any

from hookd.api.http import ts
from hookd.registry import Event
from hookd.store import DeliveryRow, EventRow


def delivery_json(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "endpoint": row.endpoint,
        "event_type": row.event_type,
        "status": row.status,
        "attempt_count": row.attempt_count,
        "next_attempt_at": ts(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "origin": row.origin,
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
        "tenant": row.tenant,
    }


def stored_event(row: EventRow) -> Event:
    """A stored event as filters, body formats and signers take it."""
    return Event(
        id=row.id,
        type=row.type,
        timestamp=row.timestamp,
        data=json.loads(row.data),
        tenant=row.tenant,
    )
