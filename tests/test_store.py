"""What is particular to the SQLite backend: its schema, its cursors, its one-process lock.
Everything every backend promises is in tests/test_store_contract.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from hookd.errors import StoreError
from hookd.store import MIGRATIONS, DeliveryFilter, SQLiteStore, sqlite_ops
from hookd.store.sqlite_ops import insert_rows
from tests.support import attempt_result, new_event


async def test_schema_is_at_the_latest_migration(store: SQLiteStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "deliveries_status" in names


async def test_a_database_from_a_newer_hookd_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    store = SQLiteStore(tmp_path / "hookd.db")
    with pytest.raises(StoreError, match="newer than this hookd"):
        await store.open()


async def test_a_history_cursor_never_shows_newer_rows_after_the_newest_are_deleted(
    store: SQLiteStore,
) -> None:
    """``seq`` is AUTOINCREMENT: deleting the newest deliveries does not hand their seq to the
    next ones, so a cursor given out before (``seq < N``) never shows newer rows."""
    assert await store.create_endpoint("api", {"url": "http://x"}, []) is not None
    await store.ingest([new_event("e0", "a"), new_event("e1", "a"), new_event("e2", "api")])
    first = await store.deliveries(DeliveryFilter(), limit=1)
    assert [r.id for r in first.items] == ["dlv_e2_api"]
    cursor = first.next_cursor
    assert cursor is not None
    assert await store.delete_endpoint("api") == 1
    await store.ingest([new_event("e3", "a")])
    rest = await store.deliveries(DeliveryFilter(), limit=9, cursor=cursor)
    assert [r.id for r in rest.items] == ["dlv_e1_a", "dlv_e0_a"]


async def test_one_process_owns_a_database_file(store: SQLiteStore, tmp_path: Path) -> None:
    """A second store on the same file is refused with a clear error (two processes on one
    SQLite file would both deliver everything); closing the first lets another open it."""
    second = SQLiteStore(tmp_path / "hookd.db")
    with pytest.raises(StoreError, match="in use by another hookd process"):
        await second.open()
    await store.close()
    await second.open()
    await second.close()


@pytest.mark.parametrize("n", [0, 1, 63, 64, 100, 129])
def test_insert_rows_keeps_every_row_in_order(n: int) -> None:
    """Multi-row INSERTs of 64, 32, ... 1 rows insert every row, in the order given."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, a TEXT, b INTEGER)")
    rows = [(f"r{i}", i) for i in range(n)]
    insert_rows(db, "INSERT INTO t (a, b)", "(?, ?)", rows)
    assert db.execute("SELECT a, b FROM t ORDER BY seq").fetchall() == rows


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "one-by-one"])
async def test_a_record_call_applies_the_same_with_or_without_update_from(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, update_from: bool
) -> None:
    """SQLite older than 3.35 has no UPDATE ... FROM ... RETURNING: there each delivery is
    moved on by a statement of its own, with the same outcome for every result (70 of them,
    past one statement's 64; every fifth with a wrong attempt number; one named twice)."""
    monkeypatch.setattr(sqlite_ops, "UPDATE_FROM", update_from)
    await store.ingest([new_event(f"e{n}", "a") for n in range(70)])
    claimed = await store.claim(await store.jobs([f"dlv_e{n}_a" for n in range(70)]), lease_s=60)
    results = [
        attempt_result(
            job.id,
            "a",
            "succeeded" if n % 2 else "failed",
            lease=job.lease,
            n=2 if n % 5 == 4 else 1,
            code=200 if n % 2 else 500,
        )
        for n, job in enumerate(claimed)
    ]
    recorded = await store.record([*results, results[0]])
    expected = [n % 5 != 4 for n in range(70)] + [False]
    assert [r.applied for r in recorded] == expected
    for n in range(70):
        row = await store.delivery(f"dlv_e{n}_a")
        assert row is not None
        if n % 5 == 4:
            assert (row.status, row.attempt_count) == ("pending", 0)
        else:
            assert (row.status, row.attempt_count) == ("succeeded" if n % 2 else "failed", 1)
    assert len(await store.attempts("dlv_e0_a")) == 1
