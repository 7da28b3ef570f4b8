"""Retention purges old final deliveries and old events, keeps recent and pending work."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from hookd import retention
from hookd.store import NewDelivery, NewEvent, SQLiteStore
from tests.support import Daemon, Receiver, running_daemon, wait_for
from tests.support import finish as record

DAY = 86400.0


def event(name: str, *endpoints: str) -> NewEvent:
    return NewEvent(
        id=name,
        type="x.y",
        timestamp="2024-01-01T00:00:00.000Z",
        data=json.dumps({}),
        content_hash=name,
        idem_key=name,
        deliveries=tuple(NewDelivery(id=f"{name}-{e}", endpoint=e) for e in endpoints),
    )


async def finish(store: SQLiteStore, delivery_id: str, status: str) -> None:
    await record(store, delivery_id, "succeeded" if status == "succeeded" else "failed", 500)


def backdate(db_path: Path, seconds: float, *event_ids: str) -> None:
    """Make events (and their deliveries) look ``seconds`` older, as if time had passed."""
    with sqlite3.connect(db_path) as db:
        for event_id in event_ids:
            db.execute(
                "UPDATE events SET created_at = created_at - ? WHERE id = ?", (seconds, event_id)
            )
            db.execute(
                "UPDATE deliveries SET created_at = created_at - ?, updated_at = updated_at - ?"
                " WHERE event_id = ?",
                (seconds, seconds, event_id),
            )


def remaining(db_path: Path) -> tuple[set[str], set[str], int]:
    with sqlite3.connect(db_path) as db:
        events = {r[0] for r in db.execute("SELECT id FROM events")}
        deliveries = {r[0] for r in db.execute("SELECT id FROM deliveries")}
        (attempts,) = db.execute("SELECT count(*) FROM attempts").fetchone()
    return events, deliveries, attempts


async def test_purge_deletes_old_final_rows_and_keeps_the_rest(
    store: SQLiteStore, tmp_path: Path
) -> None:
    old = [f"old{n}" for n in range(5)]
    await store.ingest([event(name, "a") for name in old])
    await store.ingest([event("old-pending", "a", "b"), event("recent", "a"), event("bare")])
    await store.ingest([event("old-mixed", "a", "b")])
    for name in old:
        await finish(store, f"{name}-a", "succeeded" if name != "old0" else "failed")
    await finish(store, "old-pending-a", "succeeded")
    await finish(store, "recent-a", "succeeded")
    await finish(store, "old-mixed-a", "succeeded")
    await finish(store, "old-mixed-b", "failed")
    db = tmp_path / "hookd.db"
    backdate(db, 40 * DAY, *old, "old-pending", "bare", "old-mixed")
    await store.retry_failed("old-mixed-b", time.time())  # replayed today: recent again

    result = await retention.purge(store, 30 * DAY, batch=2, pause=0)

    events, deliveries, attempts = remaining(db)
    assert result.deliveries == 7  # old0..old4, old-pending-a, old-mixed-a
    assert result.attempts == 7
    assert result.events == 6  # old0..old4 and bare (no deliveries at all)
    assert result.batches >= 7  # 2 rows per transaction
    assert events == {"old-pending", "recent", "old-mixed"}
    assert deliveries == {"old-pending-b", "recent-a", "old-mixed-b"}
    assert attempts == 2  # recent-a and old-mixed-b's history
    assert store.pending == 2

    again = await retention.purge(store, 30 * DAY, pause=0)
    assert (again.deliveries, again.events) == (0, 0)


async def test_purge_keeps_everything_inside_the_window(store: SQLiteStore, tmp_path: Path) -> None:
    await store.ingest([event("e1", "a"), event("e2")])
    await finish(store, "e1-a", "succeeded")
    backdate(tmp_path / "hookd.db", 10 * DAY, "e1", "e2")
    result = await retention.purge(store, 30 * DAY, pause=0)
    assert (result.deliveries, result.events) == (0, 0)
    assert remaining(tmp_path / "hookd.db")[0] == {"e1", "e2"}


def test_passes_run_between_a_minute_and_an_hour_apart() -> None:
    assert retention.interval_for(30 * DAY) == 3600
    assert retention.interval_for(1.0) == 60
    assert retention.interval_for(6000.0) == 600


ADMIN = "admin-token-0123456789"
CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}, retention: 1d}}}}
auth: {{{{admin_tokens: [{ADMIN}]}}}}
delivery: {{{{allow_private_networks: true}}}}
endpoints:
  - {{{{id: a, url: URL, signing: {{{{scheme: hmac-sha256, secret: s}}}}}}}}
"""


async def test_the_daemon_purges_at_start_and_reports_it(tmp_path: Path, sink: Receiver) -> None:
    config = CONFIG.replace("URL", sink.url)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with running_daemon(tmp_path, config, headers=headers) as d:
        for name in ("old", "new"):
            await d.post_event("x.y", {}, id=name)
        await wait_for(lambda: len(sink.requests) == 2)
        await wait_for(lambda: _succeeded(d, 2))
    backdate(tmp_path / "hookd.db", 2 * DAY, "old")
    async with running_daemon(tmp_path, config, headers=headers) as d:

        async def purged() -> bool:
            status, _ = await d.request("GET", "/v1/events/old")
            return status == 404

        await wait_for(purged)
        status, kept = await d.request("GET", "/v1/events/new")
        assert (status, len(kept["deliveries"])) == (200, 1)
        _, metrics = await d.request("GET", "/metrics")
        assert 'hookd_retention_purged_total{kind="events"} 1.0' in metrics
        assert 'hookd_retention_purged_total{kind="deliveries"} 1.0' in metrics


async def _succeeded(d: Daemon, n: int) -> bool:
    _, page = await d.request("GET", "/v1/deliveries?status=succeeded")
    return len(page["items"]) == n
