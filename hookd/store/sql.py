"""SQL text both backends build the same way, written with ``?`` placeholders; a backend with
another placeholder style (psycopg's ``%s``) passes its own ``mark``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hookd.store import stats
from hookd.store.records import AttemptResult, DeliveryFilter, Job
from hookd.store.rules import decode_cursor

JOB_COLUMNS = (  # a Job: a delivery with its event (d: deliveries, e: events)
    "SELECT d.seq, d.id, d.event_id, d.endpoint_id, d.event_type, d.status,"
    " d.attempt_count, d.next_attempt_at, e.timestamp, e.data, e.tenant"
)


def job(row: Sequence[Any]) -> Job:
    """A row of JOB_COLUMNS, by position (a ``sqlite3.Row``'s lookup by name compares every
    column's name)."""
    return Job(
        id=row[1],
        event_id=row[2],
        endpoint=row[3],
        event_type=row[4],
        status=row[5],
        attempt_count=row[6],
        next_attempt_at=row[7],
        event_timestamp=row[8],
        data=row[9],
        tenant=row[10],
    )


# deliveries to an endpoint whose tenant is exactly the scope's (a tenant sees nothing else)
SCOPE = "tenant = ? AND endpoint_id IN (SELECT id FROM endpoints WHERE tenant = ?)"


def delivery_where(
    where: DeliveryFilter,
    cursor: str | None,
    *,
    glob: Callable[[str], tuple[str, Any]],
    mark: str = "?",
) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or empty) and its parameters for a page of deliveries newest first.

    ``glob`` turns an event-type pattern with wildcards into the backend's clause and value
    (SQLite: ``GLOB``; PostgreSQL: a regular expression). Raises BadCursor.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if cursor is not None:
        (before,) = decode_cursor("d", cursor, int)
        clauses.append("seq < ?")
        params.append(before)
    for column, value in (
        ("endpoint_id", where.endpoint),
        ("status", where.status),
        ("event_id", where.event),
        ("tenant", where.tenant),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.scope is not None:
        clauses.append(SCOPE)
        params.extend((where.scope, where.scope))
    if where.type_glob is not None:
        if any(c in where.type_glob for c in "*?["):
            clause, value = glob(where.type_glob)
        else:
            clause, value = "event_type = ?", where.type_glob
        clauses.append(clause)
        params.append(value)
    if where.code_range is not None:
        clauses.append("last_status_code BETWEEN ? AND ?")
        params.extend(where.code_range)
    text = " WHERE " + " AND ".join(clauses) if clauses else ""
    return text.replace("?", mark), params


def stats_selection(endpoint: str | None, mark: str = "?") -> tuple[str, list[Any]]:
    """Stats rows of one endpoint, or of every endpoint that exists (the primary key's first
    column either way, so each lookup is an index range)."""
    if endpoint is not None:
        return f"endpoint_id = {mark}", [endpoint]
    return "endpoint_id IN (SELECT id FROM endpoints)", []


def stats_parts(
    table: str, parts: tuple[stats.Part, ...], endpoint: str | None, mark: str = "?"
) -> tuple[str, list[Any]]:
    """``table``'s rows in those slots, one ``UNION ALL`` branch per part."""
    where, params = stats_selection(endpoint, mark)
    branch = f"SELECT * FROM {table} WHERE {where} AND span = ? AND slot BETWEEN ? AND ?"
    values: list[Any] = []
    for part in parts:
        values += [*params, part.span, part.first, part.last]
    return " UNION ALL ".join([branch.replace("?", mark)] * len(parts)), values


def attempt_row(r: AttemptResult) -> tuple[Any, ...]:
    """An attempt's values in the column order both backends insert them: delivery_id, n,
    started_at, status_code, latency_ms, error, response_body, request_headers, endpoint_id."""
    return (
        r.delivery_id,
        r.n,
        r.started_at,
        r.status_code,
        r.latency_ms,
        r.error,
        r.response_body,
        r.request_headers,
        r.endpoint,
    )
