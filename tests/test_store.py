"""The store's operator methods on a real SQLite file: history pages, retry, replay, delete."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from hookd.store import (
    MIGRATIONS,
    AttemptResult,
    DeliveryFilter,
    NewDelivery,
    NewEvent,
    SQLiteStore,
)


def event(n: int, *endpoints: str, kind: str = "x.y") -> NewEvent:
    return NewEvent(
        id=f"evt_{n}",
        type=kind,
        timestamp="2024-01-01T00:00:00.000Z",
        data=json.dumps({"n": n}),
        content_hash=f"h{n}",
        idem_key=f"evt_{n}",
        deliveries=tuple(NewDelivery(id=f"dlv_{n}_{e}", endpoint=e) for e in endpoints),
    )


async def finish(store: SQLiteStore, delivery_id: str, status: str, code: int = 200) -> None:
    await store.record(
        [
            AttemptResult(
                delivery_id=delivery_id,
                n=1,
                started_at=time.time(),
                status_code=code,
                latency_ms=1.0,
                error=None,
                response_body="ok",
                request_headers="{}",
                status=status,  # type: ignore[arg-type]
                next_attempt_at=None,
                endpoint=delivery_id.rsplit("_", 1)[1],
            )
        ]
    )


async def test_schema_is_at_the_latest_migration(store: SQLiteStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "deliveries_status" in names


async def test_pages_are_newest_first_and_filtered(store: SQLiteStore) -> None:
    await store.ingest(
        [event(n, "a", "b", kind="task.done" if n % 2 else "user.new") for n in range(6)]
    )
    await finish(store, "dlv_1_a", "failed", 503)
    rows = await store.deliveries(DeliveryFilter(), limit=5)
    assert [r.id for r in rows] == ["dlv_5_b", "dlv_5_a", "dlv_4_b", "dlv_4_a", "dlv_3_b"]
    more = await store.deliveries(DeliveryFilter(), limit=100, before_seq=rows[-1].seq)
    assert len(more) == 7
    assert all(r.seq < rows[-1].seq for r in more)
    glob = await store.deliveries(DeliveryFilter(type_glob="task.*", endpoint="a"), limit=100)
    assert [r.id for r in glob] == ["dlv_5_a", "dlv_3_a", "dlv_1_a"]
    coded = await store.deliveries(DeliveryFilter(code_range=(500, 599)), limit=100)
    assert [(r.id, r.status, r.last_status_code) for r in coded] == [("dlv_1_a", "failed", 503)]
    by_event = await store.deliveries(DeliveryFilter(event="evt_2", status="pending"), limit=9)
    assert {r.id for r in by_event} == {"dlv_2_a", "dlv_2_b"}


async def test_retry_failed_requeues_only_failed_deliveries(store: SQLiteStore) -> None:
    await store.ingest([event(1, "a"), event(2, "a")])
    await finish(store, "dlv_1_a", "failed", 500)
    assert store.pending == 1
    assert await store.retry_failed("nope", time.time()) is None
    assert await store.retry_failed("dlv_2_a", time.time()) == "pending"
    assert store.pending == 1
    now = time.time()
    assert await store.retry_failed("dlv_1_a", now) == "failed"
    assert store.pending == 2 == await store.count_pending()
    row = await store.delivery("dlv_1_a")
    assert row is not None
    assert (row.status, row.next_attempt_at, row.attempt_count) == ("pending", now, 1)
    assert len(await store.attempts("dlv_1_a")) == 1  # history kept


async def test_requeue_and_add_deliveries_keep_the_pending_count(store: SQLiteStore) -> None:
    await store.ingest([event(1, "a"), event(2, "a"), event(3, "b")])
    await finish(store, "dlv_1_a", "failed")
    await finish(store, "dlv_2_a", "succeeded")
    now = time.time()
    assert await store.requeue("a", since=0, statuses=("failed",), now=now) == 1
    assert await store.requeue("a", since=0, statuses=("succeeded", "failed"), now=now) == 1
    assert await store.requeue("a", since=now + 60, statuses=("failed",), now=now) == 0
    missed = await store.missed_events("a", since=0, after_rowid=0, limit=10)
    assert [e.id for e in missed] == ["evt_3"]
    created = await store.add_deliveries(
        "a",
        [("dlv_new", "evt_3"), ("dlv_dup", "evt_1"), ("dlv_gone", "evt_404")],
        origin="replay",
        now=now,
    )
    assert created == 1
    assert store.pending == 4 == await store.count_pending()
    new = await store.delivery("dlv_new")
    assert new is not None
    assert (new.endpoint, new.event_type, new.origin) == ("a", "x.y", "replay")


async def test_delete_endpoint_removes_its_history(store: SQLiteStore) -> None:
    assert await store.create_endpoint("api", {"url": "http://x"}, []) is not None
    assert await store.create_endpoint("api", {"url": "http://y"}, []) is None
    await store.ingest([event(1, "api", "a"), event(2, "api")])
    await finish(store, "dlv_1_api", "succeeded")
    assert store.pending == 2
    assert await store.delete_endpoint("api") == 2
    assert await store.delete_endpoint("api") is None
    assert store.pending == 1 == await store.count_pending()
    assert await store.delivery("dlv_1_api") is None
    assert await store.attempts("dlv_1_api") == []
    assert await store.delivery("dlv_1_a") is not None
    assert await store.endpoint("api") is None


async def test_update_endpoint_touches_api_rows_only(store: SQLiteStore) -> None:
    await store.create_endpoint(
        "api", {"url": "http://x"}, [{"secret": "v1:s", "expires_at": None}]
    )
    assert await store.update_endpoint("api", spec={"url": "http://y"})
    row = await store.endpoint("api")
    assert row is not None
    assert row.spec == {"url": "http://y"}
    assert row.secrets == [{"secret": "v1:s", "expires_at": None}]
    assert not await store.update_endpoint("a", spec={"url": "http://z"})  # a YAML row


async def test_count_due_skips_disabled_endpoints(store: SQLiteStore) -> None:
    await store.ingest([event(1, "a", "b")])
    assert await store.count_due(time.time() + 1) == 2
    await store.set_endpoint_enabled("b", False)
    assert await store.count_due(time.time() + 1) == 1
    assert await store.count_due(0) == 0


async def test_removing_a_yaml_endpoint_fails_its_pending_deliveries_and_keeps_history(
    store: SQLiteStore,
) -> None:
    """A reconcile without endpoint ``a``: its pending deliveries become ``failed`` with a reason
    (never attempted, never counted against max_pending); its finished ones and ``b``'s stay."""
    await store.ingest([event(1, "a", "b"), event(2, "a")])
    await finish(store, "dlv_1_a", "succeeded")
    assert store.pending == 2
    assert await store.reconcile_config_endpoints(["b"]) == {"a": 1}
    assert store.pending == 1 == await store.count_pending()
    gone = await store.delivery("dlv_2_a")
    assert gone is not None
    assert (gone.status, gone.last_error, gone.next_attempt_at) == (
        "failed",
        "endpoint removed from the configuration",
        None,
    )
    done = await store.delivery("dlv_1_a")
    assert done is not None
    assert (done.status, done.last_error) == ("succeeded", None)
    assert len(await store.attempts("dlv_1_a")) == 1
    assert [r.id for r in await store.deliveries(DeliveryFilter(status="pending"), limit=9)] == [
        "dlv_1_b"
    ]
    due = await store.due(after=(0.0, 0), end=time.time() + 60, limit=9)
    assert [delivery_id for delivery_id, _, _ in due] == ["dlv_1_b"]
    assert await store.reconcile_config_endpoints(["b"]) == {}
    assert await store.reconcile_config_endpoints([]) == {"b": 1}  # a YAML with no endpoints
    assert store.pending == 0 == await store.count_pending()
    assert await store.endpoints() == []


async def test_due_pages_through_more_deliveries_than_a_batch_at_one_due_time(
    store: SQLiteStore,
) -> None:
    """``due()`` pages on (next_attempt_at, seq): a cursor inside a run of equal due times goes
    on after it instead of returning the same page again."""
    await store.ingest([event(n, "a") for n in range(5)])
    at = time.time() + 30

    def one_due_time(db: sqlite3.Connection) -> None:
        db.execute("UPDATE deliveries SET next_attempt_at = ?", (at,))

    await store.run(one_due_time)
    seen: list[str] = []
    after = (0.0, 0)
    while page := await store.due(after=after, end=at + 1, limit=2):
        assert len(page) <= 2
        seen += [delivery_id for delivery_id, _, _ in page]
        _, due, seq = page[-1]
        assert due == at
        after = (due, seq)
    assert seen == [f"dlv_{n}_a" for n in range(5)]


async def test_delivery_seq_is_never_reused_after_the_newest_rows_are_deleted(
    store: SQLiteStore,
) -> None:
    """``seq`` is AUTOINCREMENT: deleting the newest deliveries does not hand their seq to the
    next ones, so an old history cursor (``seq < N``) never shows newer rows."""
    assert await store.create_endpoint("api", {"url": "http://x"}, []) is not None
    await store.ingest([event(1, "a"), event(2, "api")])
    newest = await store.delivery("dlv_2_api")
    assert newest is not None
    assert await store.delete_endpoint("api") == 1
    await store.ingest([event(3, "a")])
    later = await store.delivery("dlv_3_a")
    assert later is not None
    assert later.seq > newest.seq
    cursor_page = await store.deliveries(DeliveryFilter(), limit=9, before_seq=newest.seq + 1)
    assert [r.id for r in cursor_page] == ["dlv_1_a"]
