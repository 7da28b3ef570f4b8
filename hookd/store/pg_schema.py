"""PostgreSQL's schema, its migrations (under an advisory lock), and how rows become records.

Times are ``double precision`` seconds since the epoch, as in SQLite, so records are the same on
both backends. Leases use the database's clock (``now()``); due times are written by the
processes (``time.time()``), whose clocks NTP keeps within milliseconds of each other.
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from hookd.errors import StoreError
from hookd.store.records import AttemptRow, DeliveryRow, EndpointRow, EventRow
from hookd.store.sql import JOB_COLUMNS
from hookd.store.stats import GAMMA, MIN_LATENCY_MS

log = structlog.get_logger("hookd.store")

# pg_advisory_xact_lock key for migrations: the first 8 bytes of sha256("hookd.migrate")
MIGRATE_LOCK = 0x1D6F_0C3B_5A9E_4D21
# pg_try_advisory_xact_lock key held by the one process purging at a time
PURGE_LOCK = 0x1D6F_0C3B_5A9E_4D22
CHANNEL = "hookd"  # LISTEN/NOTIFY channel: payloads 'due:<node>' and 'endpoints:<node>'
NOW = "extract(epoch FROM now())"  # the database clock, for leases and nodes
# hookd.store.stats.bucket in SQL (the same doubles through the same libm)
BUCKET_SQL = (
    f"ceil(ln(greatest(latency_ms, {MIN_LATENCY_MS!r}::double precision))"
    f" / ln({GAMMA!r}::double precision) - 1e-9)::integer"
)

MIGRATIONS: tuple[str, ...] = (
    # 1: the outbox, leases, limits across processes, nodes
    """
    CREATE TABLE events (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id text PRIMARY KEY,
        type text NOT NULL,
        timestamp text NOT NULL,
        data text NOT NULL,
        content_hash text NOT NULL,
        idem_key text UNIQUE,
        created_at double precision NOT NULL
    );
    CREATE INDEX events_created ON events (created_at);
    CREATE TABLE endpoints (
        id text PRIMARY KEY,
        source text NOT NULL CHECK (source IN ('config', 'api')),
        spec text NOT NULL DEFAULT '{}',
        secrets text NOT NULL DEFAULT '[]',
        enabled boolean NOT NULL DEFAULT true,
        disabled_reason text,
        consecutive_failures integer NOT NULL DEFAULT 0,
        tat double precision NOT NULL DEFAULT 0,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE deliveries (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        event_id text NOT NULL,
        endpoint_id text NOT NULL,
        event_type text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempt_count integer NOT NULL DEFAULT 0,
        next_attempt_at double precision,
        last_status_code integer,
        last_error text,
        origin text NOT NULL DEFAULT 'ingest',
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        lease bigint,
        locked_by text,
        locked_until double precision
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq) WHERE status = 'pending';
    CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at)
        WHERE status = 'pending';
    CREATE INDEX deliveries_fifo ON deliveries (endpoint_id, seq) WHERE status = 'pending';
    CREATE INDEX deliveries_leased ON deliveries (endpoint_id, locked_until)
        WHERE locked_until IS NOT NULL;
    CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, seq);
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_status ON deliveries (status, seq);
    CREATE TABLE attempts (
        delivery_id text NOT NULL,
        n integer NOT NULL,
        started_at double precision NOT NULL,
        status_code integer,
        latency_ms double precision NOT NULL,
        error text,
        response_body text,
        request_headers text,
        PRIMARY KEY (delivery_id, n)
    );
    CREATE SEQUENCE leases;
    CREATE TABLE nodes (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        started_at double precision NOT NULL,
        last_seen_at double precision NOT NULL
    );
    CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO meta (key, value) VALUES ('endpoints', 0);
    """,
    # 2: tenants (SPEC §8): on events, on their deliveries, on endpoints; the tenants seen; the
    # generation of each tenant's tokens (revocation)
    """
    ALTER TABLE events ADD COLUMN tenant text;
    ALTER TABLE deliveries ADD COLUMN tenant text;
    ALTER TABLE endpoints ADD COLUMN tenant text;
    CREATE INDEX deliveries_tenant ON deliveries (tenant, seq) WHERE tenant IS NOT NULL;
    CREATE INDEX endpoints_tenant ON endpoints (tenant) WHERE tenant IS NOT NULL;
    CREATE TABLE tenants (id text PRIMARY KEY, created_at double precision NOT NULL);
    CREATE TABLE tenant_tokens (tenant text PRIMARY KEY, generation integer NOT NULL);
    """,
    # 3: attempt stats (SPEC §14, hookd.store.stats), as SQLite's migration 5: each attempt
    # names its endpoint (indexed by time with the latency, for exact percentiles of small
    # windows); rollups per endpoint and minute or hour (counts), 10 minutes or hour (latency
    # histograms), kept by the transaction that records attempts; backfilled from the
    # attempts on record (an attempt succeeded when it has no error)
    f"""
    ALTER TABLE attempts ADD COLUMN endpoint_id text;
    UPDATE attempts a SET endpoint_id = d.endpoint_id FROM deliveries d
        WHERE d.id = a.delivery_id;
    CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at) INCLUDE (latency_ms);
    CREATE TABLE attempt_counts (
        endpoint_id text NOT NULL,
        span integer NOT NULL,
        slot bigint NOT NULL,
        succeeded bigint NOT NULL,
        failed bigint NOT NULL,
        last_success_at double precision,
        last_failure_at double precision,
        PRIMARY KEY (endpoint_id, span, slot)
    );
    CREATE TABLE attempt_latency (
        endpoint_id text NOT NULL,
        span integer NOT NULL,
        slot bigint NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (endpoint_id, span, slot, bucket)
    );
    INSERT INTO attempt_counts
        SELECT endpoint_id, s.span, floor(started_at / s.span)::bigint AS slot,
            count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL),
            max(started_at) FILTER (WHERE error IS NULL),
            max(started_at) FILTER (WHERE error IS NOT NULL)
        FROM attempts CROSS JOIN (VALUES (60, 90000), (3600, 2678400)) AS s (span, keep)
        WHERE endpoint_id IS NOT NULL AND started_at >= {NOW} - s.keep
        GROUP BY endpoint_id, s.span, slot;
    INSERT INTO attempt_latency
        SELECT endpoint_id, s.span, floor(started_at / s.span)::bigint AS slot,
            {BUCKET_SQL} AS bucket, count(*)
        FROM attempts CROSS JOIN (VALUES (600, 90000), (3600, 2678400)) AS s (span, keep)
        WHERE endpoint_id IS NOT NULL AND started_at >= {NOW} - s.keep
        GROUP BY endpoint_id, s.span, slot, bucket;
    """,
    # 4: one endpoint's due deliveries in (due, seq) order, for a lane reading back its backlog
    # (without seq the planner walks deliveries_due and filters the endpoint); the cluster's
    # ready() uses its prefix as it used deliveries_ready. The DROP first: it takes the table's
    # strongest lock before the build, which a CREATE first would upgrade, and deadlock with an
    # older process claiming meanwhile (a rolling upgrade)
    """
    DROP INDEX deliveries_ready;
    CREATE INDEX deliveries_ready_seq ON deliveries (endpoint_id, next_attempt_at, seq)
        WHERE status = 'pending';
    """,
)


async def migrate(conn: Any, where: str) -> int:
    """Bring the schema to the latest version in one transaction, under an advisory lock, so
    any number of processes may start at once. Returns the version the database had."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS hookd_schema (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM hookd_schema")
        row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {where} has schema version {version}, newer than this hookd "
                f"({len(MIGRATIONS)}); upgrade hookd"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO hookd_schema (version) VALUES (%s)", (number,))
            log.info("store.migrated", version=number, database=where)
    return version


# --------------------------------------------------------------------------- queries

JOBS = f"{JOB_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
FIFO_HEAD = f"{JOBS} WHERE d.endpoint_id = %s AND d.status = 'pending' ORDER BY d.seq LIMIT 1"
DUE_JOBS = (  # deliveries_ready_seq; a claim moves next_attempt_at to its lease's end
    f"{JOBS} WHERE d.endpoint_id = %s AND d.status = 'pending' AND d.next_attempt_at <= %s"
    " ORDER BY d.next_attempt_at, d.seq LIMIT %s"
)
DELIVERY_COLUMNS = (
    "id, event_id, endpoint_id, event_type, status, attempt_count, next_attempt_at,"
    " last_status_code, last_error, origin, created_at, updated_at, tenant"
)
ENDPOINT_COLUMNS = (
    "id, source, spec, secrets, enabled, disabled_reason, consecutive_failures,"
    " created_at, updated_at, tenant"
)
EVENT_COLUMNS = "id, type, timestamp, data, created_at, tenant"
BUMP_ENDPOINTS = "UPDATE meta SET value = value + 1 WHERE key = 'endpoints'"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def glob_regex(glob: str) -> str:
    """SQLite's GLOB (``*``, ``?``, ``[...]``, case-sensitive) as an anchored POSIX regex."""
    out = ["^"]
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            out.append(glob[i : end + 1])
            i = end
        else:
            out.append("\\" + c if not c.isalnum() else c)
        i += 1
    return "".join(out) + "$"


# --------------------------------------------------------------------------- rows to records


def delivery(row: tuple[Any, ...]) -> DeliveryRow:
    return DeliveryRow(
        id=row[0],
        event_id=row[1],
        endpoint=row[2],
        event_type=row[3],
        status=row[4],
        attempt_count=row[5],
        next_attempt_at=row[6],
        last_status_code=row[7],
        last_error=row[8],
        origin=row[9],
        created_at=row[10],
        updated_at=row[11],
        tenant=row[12],
    )


def attempt(row: tuple[Any, ...]) -> AttemptRow:
    return AttemptRow(
        n=row[0],
        started_at=row[1],
        status_code=row[2],
        latency_ms=row[3],
        error=row[4],
        response_body=row[5],
        request_headers=row[6],
    )


def event(row: tuple[Any, ...]) -> EventRow:
    return EventRow(
        id=row[0], type=row[1], timestamp=row[2], data=row[3], created_at=row[4], tenant=row[5]
    )


def endpoint(row: tuple[Any, ...]) -> EndpointRow:
    return EndpointRow(
        id=row[0],
        source=row[1],
        spec=json.loads(row[2]),
        secrets=json.loads(row[3]),
        enabled=bool(row[4]),
        disabled_reason=row[5],
        consecutive_failures=row[6],
        created_at=row[7],
        updated_at=row[8],
        tenant=row[9],
    )
