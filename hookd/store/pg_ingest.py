"""PostgreSQL ingest: group commit, idempotency by unique constraints, answers after commit.

Requests queue; one task takes everything queued and commits it in one transaction: the lookups
:func:`hookd.store.rules.plan_ingest` needs (known keys, ids taken, live endpoints, locked
``FOR KEY SHARE`` so a delete waits for us and we for it), then one multi-row insert per table
(``unnest`` of arrays). ``ON CONFLICT DO NOTHING`` catches what another process committed
between our lookup and our insert (the unique index makes the later insert wait for the earlier
commit): the batch is rolled back and planned again, now seeing that row, so a duplicate posted
to two processes at once creates one event and both answer with it. A batch that fails as a
whole is retried request by request, so one bad request cannot fail the others
(:mod:`hookd.store.pg_batch`). Up to :data:`CONCURRENCY` transactions run at once; each judges
``limits.max_pending`` against the count it sees, so concurrent ones may pass it by a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from hookd.errors import StoreError
from hookd.store import pg_conn as pg
from hookd.store import rules
from hookd.store.pg_batch import Batcher
from hookd.store.records import Accepted, CommitStats, Job, NewDelivery, NewEvent

log = structlog.get_logger("hookd.store")
MAX_BATCH = 2000  # requests folded into one transaction at most
CONCURRENCY = 4  # transactions at once
RACE_RETRIES = 5


class _Raced(Exception):
    """Another process inserted one of our keys or ids after our lookup: plan again."""


class IngestBatcher:
    """The group commit of one process (see the module docstring)."""

    def __init__(
        self,
        *,
        pool: Callable[[], Any],
        stats: CommitStats,
        max_pending: Callable[[], int],
        notify: Callable[[Any], Any],
    ) -> None:
        self._pool = pool
        self._stats = stats
        self._max_pending = max_pending
        self._notify = notify  # adds the 'due' NOTIFY to a transaction (rate-limited)
        self.pending = 0  # last count seen plus what this process changed since
        self._batcher: Batcher[Sequence[NewEvent], list[Accepted]] = Batcher(
            "store.ingest", self._apply, concurrency=CONCURRENCY, max_batch=MAX_BATCH
        )

    def start(self) -> None:
        self._batcher.start()

    async def close(self) -> None:
        await self._batcher.close()

    async def ingest(self, events: Sequence[NewEvent]) -> list[Accepted]:
        return await self._batcher.submit(events)

    async def _apply(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[list[Accepted] | Exception]:
        for _ in range(RACE_RETRIES):
            try:
                results, deltas = await self._transaction(list(batches))
            except _Raced:
                continue
            except pg.DB_ERRORS as exc:
                raise pg.wrap(exc, "ingest failed") from exc
            self._stats.add(len(batches))
            self.pending += sum(deltas)
            return results
        raise StoreError("ingest kept racing with other processes on the same ids; try again")

    async def _transaction(
        self, batches: list[Sequence[NewEvent]]
    ) -> tuple[list[list[Accepted] | Exception], list[int]]:
        async with self._pool().connection() as conn, conn.transaction():
            lookup = rules.Lookup(
                known=await _known_keys(conn, rules.idempotency_keys(batches)),
                taken=await _taken_ids(conn, rules.explicit_ids(batches)),
                live=await live_endpoints(conn, rules.routed_endpoints(batches)),
                pending=self.pending,
                max_pending=self._max_pending(),
            )
            plan = rules.plan_ingest(batches, lookup)
            if plan.repeats:
                repeated = sorted({r[2] for r in plan.repeats})
                plan.resolve_repeats(await _deliveries_of(conn, repeated))
            if plan.new:
                await _insert(conn, plan.new, time.time())
                await self._notify(conn)
        return plan.results, plan.deltas


async def _known_keys(conn: Any, keys: list[str]) -> dict[str, tuple[str, str]]:
    if not keys:
        return {}
    cur = await conn.execute(
        "SELECT idem_key, id, content_hash FROM events WHERE idem_key = ANY(%s)", (keys,)
    )
    return {row[0]: (row[1], row[2]) for row in await cur.fetchall()}


async def _taken_ids(conn: Any, explicit: list[str]) -> set[str]:
    if not explicit:
        return set()
    cur = await conn.execute(
        "SELECT id FROM events WHERE id = ANY(%s) AND idem_key IS DISTINCT FROM id", (explicit,)
    )
    return {row[0] for row in await cur.fetchall()}


async def live_endpoints(conn: Any, routed: Iterable[str]) -> set[str]:
    """Enabled endpoints among ``routed``, share-locked until commit (a delete waits). Read
    every time: other processes change endpoints too, so there is nothing to cache."""
    ids = sorted(routed)
    if not ids:
        return set()
    cur = await conn.execute(
        "SELECT id FROM endpoints WHERE id = ANY(%s) AND enabled ORDER BY id FOR KEY SHARE",
        (ids,),
    )
    return {row[0] for row in await cur.fetchall()}


async def _deliveries_of(conn: Any, event_ids: list[str]) -> dict[str, tuple[NewDelivery, ...]]:
    out: dict[str, list[NewDelivery]] = {i: [] for i in event_ids}
    cur = await conn.execute(
        "SELECT event_id, id, endpoint_id FROM deliveries WHERE event_id = ANY(%s)"
        " AND origin = 'ingest' ORDER BY seq",
        (event_ids,),
    )
    for row in await cur.fetchall():
        out[row[0]].append(NewDelivery(id=row[1], endpoint=row[2]))
    return {k: tuple(v) for k, v in out.items()}


async def _insert(
    conn: Any, new: list[tuple[NewEvent, tuple[NewDelivery, ...]]], now: float
) -> None:
    events = [e for e, _ in new]
    cur = await conn.execute(
        "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, tenant,"
        " created_at) SELECT *, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING",
        (
            now,
            [e.id for e in events],
            [e.type for e in events],
            [e.timestamp for e in events],
            [e.data for e in events],
            [e.content_hash for e in events],
            [e.idem_key for e in events],
            [e.tenant for e in events],
        ),
    )
    if cur.rowcount != len(events):
        raise _Raced
    await insert_deliveries(conn, new, now, origin="ingest")
    await note_tenants(conn, {e.tenant for e in events}, now)


async def insert_deliveries(
    conn: Any, new: list[tuple[NewEvent, tuple[NewDelivery, ...]]], now: float, *, origin: str
) -> None:
    """Pending deliveries of events (the event's tenant on each), due now."""
    rows = [(d.id, e.id, d.endpoint, e.type, e.tenant) for e, kept in new for d in kept]
    if not rows:
        return
    ids, event_ids, endpoints, types, tenants = (list(c) for c in zip(*rows, strict=True))
    await conn.execute(
        "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, tenant, status,"
        " next_attempt_at, origin, created_at, updated_at)"
        " SELECT d, e, p, t, n, 'pending', %s, %s, %s, %s FROM unnest(%s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[]) AS u(d, e, p, t, n)",
        (now, origin, now, now, ids, event_ids, endpoints, types, tenants),
    )


async def note_tenants(conn: Any, tenants: set[str | None], now: float) -> None:
    """Remember tenants seen (on an event or an endpoint) for ``GET /v1/tenants``."""
    named = sorted(t for t in tenants if t is not None and t != "*")
    if named:
        await conn.execute(
            "INSERT INTO tenants (id, created_at) SELECT unnest(%s::text[]), %s"
            " ON CONFLICT (id) DO NOTHING",
            (named, now),
        )


async def insert_notices(
    conn: Any, made: list[tuple[NewEvent, tuple[NewDelivery, ...]]], now: float
) -> list[Job]:
    """Operational events (SPEC §11) and their deliveries, to endpoints still enabled here,
    in the caller's transaction; the new deliveries as the dispatcher takes them."""
    jobs: list[Job] = []
    for event, deliveries in made:
        live = await live_endpoints(conn, [d.endpoint for d in deliveries])
        kept = tuple(d for d in deliveries if d.endpoint in live)
        if not kept:
            continue
        await conn.execute(
            "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, created_at,"
            " tenant) VALUES (%s, %s, %s, %s, '', NULL, %s, %s)",
            (event.id, event.type, event.timestamp, event.data, now, event.tenant),
        )
        await insert_deliveries(conn, [(event, kept)], now, origin="hookd")
        await note_tenants(conn, {event.tenant}, now)
        jobs.extend(rules.jobs_of(event, kept))
    return jobs
