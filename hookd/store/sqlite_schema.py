"""SQLite's schema, its migrations, and how its rows become records."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog

from hookd.errors import StoreError
from hookd.store.records import AttemptRow, DeliveryRow, EndpointRow, EventRow
from hookd.store.sql import JOB_COLUMNS
from hookd.store.stats import bucket

log = structlog.get_logger("hookd.store")

MIGRATIONS: tuple[str, ...] = (
    # 1: the outbox
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        data TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        idem_key TEXT UNIQUE,
        created_at REAL NOT NULL
    );
    CREATE INDEX events_created ON events(created_at);
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL CHECK (source IN ('config', 'api')),
        spec TEXT NOT NULL DEFAULT '{}',
        secrets TEXT NOT NULL DEFAULT '[]',
        enabled INTEGER NOT NULL DEFAULT 1,
        disabled_reason TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempt_count INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        last_status_code INTEGER,
        last_error TEXT,
        origin TEXT NOT NULL DEFAULT 'ingest',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_endpoint ON deliveries(endpoint_id, seq);
    CREATE INDEX deliveries_event ON deliveries(event_id);
    CREATE TABLE attempts (
        delivery_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        started_at REAL NOT NULL,
        status_code INTEGER,
        latency_ms REAL NOT NULL,
        error TEXT,
        response_body TEXT,
        request_headers TEXT,
        PRIMARY KEY (delivery_id, n)
    ) WITHOUT ROWID;
    """,
    # 2: delivery history filtered by status, newest first (and counts by status)
    """
    CREATE INDEX deliveries_status ON deliveries(status, seq);
    """,
    # 3: tenants (SPEC §8): on events, on their deliveries (for ?tenant= and a tenant's view),
    # on endpoints; the tenants seen; the generation of each tenant's tokens (revocation)
    """
    ALTER TABLE events ADD COLUMN tenant TEXT;
    ALTER TABLE deliveries ADD COLUMN tenant TEXT;
    ALTER TABLE endpoints ADD COLUMN tenant TEXT;
    CREATE INDEX deliveries_tenant ON deliveries(tenant, seq) WHERE tenant IS NOT NULL;
    CREATE INDEX endpoints_tenant ON endpoints(tenant) WHERE tenant IS NOT NULL;
    CREATE TABLE tenants (id TEXT PRIMARY KEY, created_at REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE tenant_tokens (
        tenant TEXT PRIMARY KEY,
        generation INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 4: the row readiness writes, to prove the database takes a write
    """
    CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
    """,
    # 5: attempt stats (SPEC §14, hookd.store.stats): each attempt names its endpoint (indexed
    # by time, covering the latency: exact percentiles of small windows); rollups per endpoint
    # and minute (span 60) or hour (3600) for counts, per 10 minutes (600) or hour for latency
    # histograms, kept by the transaction that records each attempt; backfilled from the
    # attempts on record (an attempt succeeded when it has no error)
    """
    ALTER TABLE attempts ADD COLUMN endpoint_id TEXT;
    UPDATE attempts SET endpoint_id =
        (SELECT d.endpoint_id FROM deliveries d WHERE d.id = attempts.delivery_id);
    CREATE INDEX attempts_endpoint ON attempts(endpoint_id, started_at, latency_ms);
    CREATE TABLE attempt_counts (
        endpoint_id TEXT NOT NULL,
        span INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        succeeded INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        last_success_at REAL,
        last_failure_at REAL,
        PRIMARY KEY (endpoint_id, span, slot)
    ) WITHOUT ROWID;
    CREATE TABLE attempt_latency (
        endpoint_id TEXT NOT NULL,
        span INTEGER NOT NULL,
        slot INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (endpoint_id, span, slot, bucket)
    ) WITHOUT ROWID;
    INSERT INTO attempt_counts
        SELECT endpoint_id, span, CAST(started_at / span AS INTEGER) AS slot,
            sum(error IS NULL), sum(error IS NOT NULL),
            max(CASE WHEN error IS NULL THEN started_at END),
            max(CASE WHEN error IS NOT NULL THEN started_at END)
        FROM attempts JOIN (SELECT 60 AS span, 90000 AS keep UNION ALL SELECT 3600, 2678400)
        WHERE endpoint_id IS NOT NULL AND started_at >= strftime('%s', 'now') - keep
        GROUP BY endpoint_id, span, slot;
    INSERT INTO attempt_latency
        SELECT endpoint_id, span, CAST(started_at / span AS INTEGER) AS slot,
            hookd_latency_bucket(latency_ms) AS bucket, count(*)
        FROM attempts JOIN (SELECT 600 AS span, 90000 AS keep UNION ALL SELECT 3600, 2678400)
        WHERE endpoint_id IS NOT NULL AND started_at >= strftime('%s', 'now') - keep
        GROUP BY endpoint_id, span, slot, bucket;
    """,
    # 6: one endpoint's due deliveries in due order (a lane reads back its backlog: the due
    # index alone would walk every other endpoint's due rows, a disabled one's held ones too)
    """
    CREATE INDEX deliveries_ready ON deliveries(endpoint_id, next_attempt_at)
        WHERE status = 'pending';
    """,
)


CHUNK = 500  # bound parameters per IN (...) list

JOBS = f"{JOB_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
# INDEXED BY: without statistics the planner prefers deliveries_status and walks every pending
# delivery (~280 ms at 1,000,000 pending) on the connection jobs() shares
FIFO_HEAD = (
    f"{JOB_COLUMNS} FROM deliveries d INDEXED BY deliveries_endpoint"
    " JOIN events e ON e.id = d.event_id"
    " WHERE d.endpoint_id = ? AND d.status = 'pending' ORDER BY d.seq LIMIT 1"
)
DUE_JOBS = (  # (an index's entries end with the rowid, seq: no sort)
    f"{JOB_COLUMNS} FROM deliveries d INDEXED BY deliveries_ready"
    " JOIN events e ON e.id = d.event_id"
    " WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND d.endpoint_id = ?"
    " ORDER BY d.next_attempt_at, d.seq LIMIT ?"
)


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to the latest version, one transaction per migration."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database {path} has schema version {version}, newer than this hookd "
            f"({len(MIGRATIONS)}); upgrade hookd"
        )
    db.create_function("hookd_latency_bucket", 1, bucket, deterministic=True)
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        log.info("store.migrated", version=number)


# --------------------------------------------------------------------------- helpers


def heartbeat(db: sqlite3.Connection) -> None:
    """In the writer thread: the one-row write readiness commits."""
    db.execute(
        "INSERT INTO heartbeat (id, at) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        (time.time(),),
    )


def chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(items: Sequence[Any]) -> str:
    return ", ".join("?" * len(items))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- rows to records


def delivery(row: sqlite3.Row) -> DeliveryRow:
    return DeliveryRow(
        id=row["id"],
        event_id=row["event_id"],
        endpoint=row["endpoint_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempt_count=row["attempt_count"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        origin=row["origin"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        tenant=row["tenant"],
    )


def attempt(row: sqlite3.Row) -> AttemptRow:
    return AttemptRow(
        n=row["n"],
        started_at=row["started_at"],
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        response_body=row["response_body"],
        request_headers=row["request_headers"],
    )


def event(row: sqlite3.Row) -> EventRow:
    return EventRow(
        id=row["id"],
        type=row["type"],
        timestamp=row["timestamp"],
        data=row["data"],
        created_at=row["created_at"],
        tenant=row["tenant"],
    )


def endpoint(row: sqlite3.Row) -> EndpointRow:
    return EndpointRow(
        id=row["id"],
        source=row["source"],
        spec=json.loads(row["spec"]),
        secrets=json.loads(row["secrets"]),
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        consecutive_failures=row["consecutive_failures"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        tenant=row["tenant"],
    )
