"""SQLite: what runs inside the writer's transactions for ingest and for recording attempts
(in the writer thread, on its connection)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from hookd.store import rules, sqlite_stats
from hookd.store import sql as shared_sql
from hookd.store.records import AttemptResult, Job, NewDelivery, NewEvent, Notices, Toggled
from hookd.store.sqlite_schema import chunks, marks

_T = TypeVar("_T")
ROWS = 64  # rows per multi-row INSERT at most: 64 x 9 parameters stay under SQLite's old 999


def insert_rows(db: sqlite3.Connection, head: str, row: str, rows: Sequence[Sequence[Any]]) -> None:
    """``head VALUES row, row, ...`` for every one of ``rows``, in order, a few statements in
    all: one statement steps all its rows, where executemany binds and steps each row apart and
    takes the GIL back between them (measured: a third less writer CPU for ingest rows). The
    statements hold 64, 32, ... or 1 rows, so that few texts reach the statement cache."""
    for chunk in _runs(rows):
        db.execute(_values(head, row, len(chunk)), list(itertools.chain.from_iterable(chunk)))


def _runs(rows: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """``rows`` in order, in runs of 64, 32, ... or 1 (few sizes: few statement texts)."""
    start, size = 0, ROWS
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        yield rows[start : start + size]
        start += size


@functools.cache
def _values(head: str, row: str, size: int) -> str:
    return f"{head} VALUES {', '.join([row] * size)}"


def note_tenants(db: sqlite3.Connection, tenants: set[str | None], now: float) -> None:
    """Remember tenants seen (on an event or an endpoint) for ``GET /v1/tenants``."""
    named = [(t, now) for t in tenants if t is not None and t != "*"]
    if named:
        db.executemany(
            "INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING", named
        )


def known_keys(db: sqlite3.Connection, keys: list[str]) -> dict[str, tuple[str, str]]:
    known: dict[str, tuple[str, str]] = {}
    for chunk in chunks(keys):
        sql = f"SELECT idem_key, id, content_hash FROM events WHERE idem_key IN ({marks(chunk)})"
        for row in db.execute(sql, chunk):
            known[row[0]] = (row[1], row[2])
    return known


def taken_ids(db: sqlite3.Connection, explicit: list[str]) -> set[str]:
    """Explicit ids that an event with another key, or none, already holds: the key lookup
    misses them, and inserting them would break the primary key."""
    taken: set[str] = set()
    for chunk in chunks(explicit):
        sql = f"SELECT id FROM events WHERE id IN ({marks(chunk)}) AND idem_key IS NOT id"
        taken.update(row[0] for row in db.execute(sql, chunk))
    return taken


class LiveEndpoints:
    """The enabled endpoints as the writer last read them, so an ingest batch checks its routes
    against a set instead of querying hundreds of ids (SQLite has one writer: only its own
    writes change endpoints, and each of them calls :meth:`forget`). Writer thread only."""

    def __init__(self) -> None:
        self._ids: set[str] | None = None

    def of(self, db: sqlite3.Connection, routed: set[str]) -> set[str]:
        if self._ids is None:
            with contextlib.closing(
                db.execute("SELECT id FROM endpoints WHERE enabled = 1")
            ) as cur:
                self._ids = {str(row[0]) for row in cur}
        return routed & self._ids

    def forget(self) -> None:
        self._ids = None


def live_endpoints(db: sqlite3.Connection, routed: list[str]) -> set[str]:
    live: set[str] = set()
    for chunk in chunks(routed):
        sql = f"SELECT id FROM endpoints WHERE enabled = 1 AND id IN ({marks(chunk)})"
        live.update(row[0] for row in db.execute(sql, chunk))
    return live


def deliveries_of(
    db: sqlite3.Connection, event_ids: list[str]
) -> dict[str, tuple[NewDelivery, ...]]:
    out: dict[str, list[NewDelivery]] = {i: [] for i in event_ids}
    for chunk in chunks(event_ids):
        sql = (
            "SELECT event_id, id, endpoint_id FROM deliveries"
            f" WHERE event_id IN ({marks(chunk)}) AND origin = 'ingest' ORDER BY seq"
        )
        for row in db.execute(sql, chunk):
            out[row[0]].append(NewDelivery(id=row[1], endpoint=row[2]))
    return {k: tuple(v) for k, v in out.items()}


# UPDATE ... FROM needs SQLite 3.33 and RETURNING 3.35 (2021); with an older library (a
# Python built against Debian 11's 3.34, say) each delivery is moved on by a statement of its own.
UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 35, 0)
_MOVED_ON_ONE = (
    "UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at = ?,"
    " last_status_code = ?, last_error = ?, updated_at = ?"
    " WHERE id = ? AND status = 'pending' AND attempt_count = ?"
)


def record_attempts(
    db: sqlite3.Connection,
    results: Sequence[AttemptResult],
    held: Sequence[bool],
    now: float,
    tallies: sqlite_stats.Tallies,
) -> list[bool]:
    """Each delivery's new state and its attempt row, for each result whose claim is ``held``
    and whose delivery is still pending at ``n - 1``; which results were applied, in order.
    Their rollups go to ``tallies`` (written by the caller before the transaction ends).

    A few statements for the lot: an UPDATE ... FROM VALUES for 64, 32, ... or 1 results
    moves on the deliveries still pending at ``n - 1`` and names them (RETURNING), and their
    attempt rows go in multi-row INSERTs (:func:`insert_rows`), instead of two statements per
    attempt (one UPDATE per result where the SQLite library is older than 3.35). A delivery
    named twice counts once, as the first of two calls would (the second would find it moved
    on)."""
    first: dict[str, int] = {}
    for i, (r, ok) in enumerate(zip(results, held, strict=True)):
        if ok:
            first.setdefault(r.delivery_id, i)
    todo = [results[i] for i in first.values()]
    moved: set[str] = set()
    if UPDATE_FROM:
        for chunk in _runs(todo):
            params: list[Any] = [now]
            for r in chunk:
                params += (r.delivery_id, r.n - 1, r.status, r.next_attempt_at)
                params += (r.status_code, r.error)
            moved.update(row[0] for row in db.execute(_moved_on(len(chunk)), params))
    else:
        for r in todo:
            state = (r.status, r.n, r.next_attempt_at, r.status_code, r.error, now)
            if db.execute(_MOVED_ON_ONE, (*state, r.delivery_id, r.n - 1)).rowcount == 1:
                moved.add(r.delivery_id)
    done = [r for r in todo if r.delivery_id in moved]
    insert_rows(
        db,
        "INSERT OR REPLACE INTO attempts (delivery_id, n, started_at, status_code,"
        " latency_ms, error, response_body, request_headers, endpoint_id)",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [shared_sql.attempt_row(r) for r in done],
    )
    for r in done:
        tallies.add(r)
    return [r.delivery_id in moved and first.get(r.delivery_id) == i for i, r in enumerate(results)]


@functools.cache
def _moved_on(size: int) -> str:
    """The UPDATE of :func:`record_attempts` for ``size`` results (``?1`` is the time)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * size)
    return (
        "UPDATE deliveries SET status = v.column3, attempt_count = v.column2 + 1,"
        " next_attempt_at = v.column4, last_status_code = v.column5, last_error = v.column6,"
        f" updated_at = ?1 FROM (VALUES {values}) AS v"
        " WHERE deliveries.id = v.column1 AND deliveries.status = 'pending'"
        " AND deliveries.attempt_count = v.column2 RETURNING deliveries.id"
    )


def count(
    db: sqlite3.Connection, r: AttemptResult, now: float, zeroed: set[str]
) -> tuple[int | None, str | None]:
    """The endpoint's failure counter after ``r`` (None: unchanged) and a disable it causes.

    ``zeroed`` (one set per transaction) holds the endpoints whose counter this transaction
    has seen at 0 since it last counted a failure for them: another success for one changes
    nothing, and skips the statement that would say so (most of a busy endpoint's results)."""
    if r.status == "succeeded":
        if r.endpoint in zeroed:
            return None, None
        cur = db.execute(
            "UPDATE endpoints SET consecutive_failures = 0, updated_at = ?"
            " WHERE id = ? AND consecutive_failures != 0",
            (now, r.endpoint),
        )
        zeroed.add(r.endpoint)
        return (0 if cur.rowcount else None), None
    if r.status == "failed":
        zeroed.discard(r.endpoint)
        db.execute(
            "UPDATE endpoints SET consecutive_failures = consecutive_failures + 1,"
            " updated_at = ? WHERE id = ?",
            (now, r.endpoint),
        )
    elif r.disable_reason is None:
        return None, None
    with contextlib.closing(
        db.execute(
            "SELECT consecutive_failures, enabled FROM endpoints WHERE id = ?", (r.endpoint,)
        )
    ) as cur:
        row = cur.fetchone()
    if row is None:
        return None, None
    failures = int(row[0])
    reason = rules.endpoint_change(r, failures, bool(row[1]))
    if reason is not None:
        db.execute(
            "UPDATE endpoints SET enabled = 0, disabled_reason = ? WHERE id = ?",
            (reason, r.endpoint),
        )
    return (failures if r.status == "failed" else None), reason


def insert_notices(
    db: sqlite3.Connection, made: list[tuple[NewEvent, tuple[NewDelivery, ...]]], now: float
) -> list[Job]:
    """Write operational events and their deliveries (to endpoints still enabled here)."""
    jobs: list[Job] = []
    for event, deliveries in made:
        live = live_endpoints(db, [d.endpoint for d in deliveries])
        kept = tuple(d for d in deliveries if d.endpoint in live)
        if not kept:
            continue
        db.execute(
            "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, created_at,"
            " tenant) VALUES (?, ?, ?, ?, '', NULL, ?, ?)",
            (event.id, event.type, event.timestamp, event.data, now, event.tenant),
        )
        db.executemany(
            "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status,"
            " next_attempt_at, origin, created_at, updated_at, tenant)"
            " VALUES (?, ?, ?, ?, 'pending', ?, 'hookd', ?, ?, ?)",
            [(d.id, event.id, d.endpoint, event.type, now, now, now, event.tenant) for d in kept],
        )
        jobs.extend(rules.jobs_of(event, kept))
    return jobs


def toggle(
    db: sqlite3.Connection,
    endpoint_id: str,
    enabled: bool,
    reason: str | None,
    notices: Notices | None,
    now: float,
) -> Toggled:
    """Enable (resetting the failure counter) or disable; the notice if the state changed."""
    with contextlib.closing(
        db.execute(
            "SELECT enabled, consecutive_failures FROM endpoints WHERE id = ?", (endpoint_id,)
        )
    ) as cur:
        row = cur.fetchone()
    if row is None:
        return Toggled(found=False)
    db.execute(
        "UPDATE endpoints SET enabled = ?, disabled_reason = ?,"
        " consecutive_failures = CASE WHEN ? THEN 0 ELSE consecutive_failures END,"
        " updated_at = ? WHERE id = ?",
        (int(enabled), None if enabled else reason, int(enabled), now, endpoint_id),
    )
    if bool(row[0]) == enabled:
        return Toggled(found=True)
    made = rules.toggle_notice(endpoint_id, enabled, reason, int(row[1]), notices, now)
    jobs = insert_notices(db, [made], now) if made else []
    return Toggled(found=True, changed=True, emitted=tuple(jobs))
