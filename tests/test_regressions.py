"""Races between admin changes and ingest or retry, found in review before release."""

from __future__ import annotations

import sqlite3

from hookd.store import NewDelivery, NewEvent, SQLiteStore


def _event(event_id: str, *endpoints: str) -> NewEvent:
    return NewEvent(
        id=event_id,
        type="task.updated",
        timestamp="2026-01-01T00:00:00.000Z",
        data="{}",
        content_hash="",
        idem_key=None,
        deliveries=tuple(NewDelivery(id=f"dlv_{event_id}_{e}", endpoint=e) for e in endpoints),
    )


async def test_ingest_routed_to_an_endpoint_deleted_before_its_commit_creates_no_delivery(
    store: SQLiteStore,
) -> None:
    """Fan-out happens before the commit; an endpoint gone (or disabled) by then gets nothing."""
    await store.set_endpoint_enabled("b", False, "off")
    [accepted] = await store.ingest([_event("e1", "a", "b", "gone")])
    assert [d.endpoint for d in accepted.deliveries] == ["a"]
    assert store.pending == 1
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT endpoint_id, status FROM deliveries").fetchall()
    assert rows == [("a", "pending")]


async def test_retrying_a_failed_delivery_whose_endpoint_is_gone_changes_nothing(
    store: SQLiteStore,
) -> None:
    """A retry that nothing could ever attempt is refused instead of left pending forever."""
    await store.ingest([_event("e1", "a")])
    await store.reconcile_config_endpoints(["b"])  # `a` leaves the YAML: its delivery fails
    assert store.pending == 0
    assert await store.retry_failed("dlv_e1_a", 0.0) == "orphaned"
    assert store.pending == 0
    with sqlite3.connect(store.path) as db:
        status = db.execute("SELECT status FROM deliveries WHERE id = 'dlv_e1_a'").fetchone()
    assert status == ("failed",)
