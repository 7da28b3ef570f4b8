"""Rules every backend shares, as pure functions: idempotency and capacity at ingest, the
endpoint failure counter, page cursors.

A backend looks up what a rule needs (known keys, live endpoints, the pending count) inside its
write transaction, calls the rule, and writes what the rule decided. So SQLite and PostgreSQL
answer a repeated id, a conflict or a full outbox the same way, and the rules are tested once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hookd.ids import new_id
from hookd.store.records import (
    DISABLED,
    ENABLED,
    EXHAUSTED,
    Accepted,
    AttemptResult,
    BadCursor,
    Conflict,
    Job,
    NewDelivery,
    NewEvent,
    NoticeRoute,
    Notices,
    OverCapacity,
)
from hookd.timestamps import format_timestamp

OWN_PREFIX = "hookd."

# --------------------------------------------------------------------------- ingest


def idempotency_keys(batches: Sequence[Sequence[NewEvent]]) -> list[str]:
    return [e.idem_key for events in batches for e in events if e.idem_key is not None]


def explicit_ids(batches: Sequence[Sequence[NewEvent]]) -> list[str]:
    """Ids the caller chose (an event keyed by its own id)."""
    return [e.id for events in batches for e in events if e.idem_key == e.id]


def routed_endpoints(batches: Sequence[Sequence[NewEvent]]) -> set[str]:
    return {d.endpoint for events in batches for e in events for d in e.deliveries}


@dataclass(frozen=True, kw_only=True, slots=True)
class Lookup:
    """What the store holds that an ingest batch depends on, read in its transaction."""

    known: Mapping[str, tuple[str, str]]  # idem_key -> (event id, content hash)
    taken: set[str]  # explicit ids already held by an event with another key (or none)
    live: set[str]  # routed endpoints that still exist and are enabled
    pending: int  # deliveries pending now
    max_pending: int


@dataclass(kw_only=True, slots=True)
class IngestPlan:
    """Per request: its answers or its error, and how many pending deliveries it adds."""

    results: list[list[Accepted] | Exception] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)
    new: list[tuple[NewEvent, tuple[NewDelivery, ...]]] = field(default_factory=list)
    repeats: list[tuple[int, int, str]] = field(default_factory=list)  # (request, index, event id)

    def resolve_repeats(self, originals: Mapping[str, tuple[NewDelivery, ...]]) -> None:
        """Fill in the deliveries of repeated events from what was stored for them."""
        for request, index, event_id in self.repeats:
            answers = self.results[request]
            assert isinstance(answers, list)
            answers[index] = Accepted(id=event_id, deliveries=originals[event_id], created=False)


def plan_ingest(batches: Sequence[Sequence[NewEvent]], lookup: Lookup) -> IngestPlan:
    """Decide each request of a group commit, in order, as if each were committed alone.

    A request is all or nothing: a conflict or a full outbox refuses it whole and the next
    request is judged without it. An event repeated (same key, same content) answers the original
    id and deliveries, created nothing; with different content it is a :class:`Conflict`. A
    delivery routed to an endpoint that was deleted or disabled before this commit is dropped.
    Repeats of events stored before this batch get their deliveries from
    :meth:`IngestPlan.resolve_repeats`.
    """
    plan = IngestPlan()
    known = dict(lookup.known)
    fresh: dict[str, tuple[NewDelivery, ...]] = {}  # events created earlier in this batch
    pending = lookup.pending
    every_live = routed_endpoints(batches) <= lookup.live  # then no delivery is dropped
    for request, events in enumerate(batches):
        outcome = _plan_request(events, request, known, fresh, lookup, every_live)
        if isinstance(outcome, Exception):
            plan.results.append(outcome)
            plan.deltas.append(0)
            continue
        answers, staged, new, repeats = outcome
        count = sum(len(kept) for _, kept in new)
        if count and pending + count > lookup.max_pending:
            plan.results.append(
                OverCapacity(
                    f"{pending} deliveries are pending; accepting {count} more would pass "
                    f"limits.max_pending ({lookup.max_pending})"
                )
            )
            plan.deltas.append(0)
            continue
        pending += count
        known.update(staged)
        for event, kept in new:
            fresh[event.id] = kept
        plan.new.extend(new)
        plan.repeats.extend(repeats)
        plan.results.append(answers)
        plan.deltas.append(count)
    return plan


_Planned = tuple[
    list[Accepted],
    dict[str, tuple[str, str]],
    list[tuple[NewEvent, tuple[NewDelivery, ...]]],
    list[tuple[int, int, str]],
]


def _plan_request(
    events: Sequence[NewEvent],
    request: int,
    known: Mapping[str, tuple[str, str]],
    fresh: Mapping[str, tuple[NewDelivery, ...]],
    lookup: Lookup,
    every_live: bool,
) -> _Planned | Exception:
    answers: list[Accepted] = []
    staged: dict[str, tuple[str, str]] = {}
    new: list[tuple[NewEvent, tuple[NewDelivery, ...]]] = []
    repeats: list[tuple[int, int, str]] = []
    for index, event in enumerate(events):
        key = event.idem_key
        seen = (known.get(key) or staged.get(key)) if key else None
        if seen is None:
            if event.id in lookup.taken or event.id in fresh:
                return Conflict(index, event.id)
            kept = event.deliveries
            if not every_live:
                kept = tuple(d for d in kept if d.endpoint in lookup.live)
            answers.append(Accepted(id=event.id, deliveries=kept, created=True))
            new.append((event, kept))
            if key:
                staged[key] = (event.id, event.content_hash)
        elif seen[1] != event.content_hash:
            return Conflict(index, key or event.id)
        elif seen[0] in fresh:  # created by an earlier request of this batch
            answers.append(Accepted(id=seen[0], deliveries=fresh[seen[0]], created=False))
        elif any(a.id == seen[0] for a in answers):  # repeated inside this very request
            original = next(a.deliveries for a in answers if a.id == seen[0])
            answers.append(Accepted(id=seen[0], deliveries=original, created=False))
        else:  # stored before this batch: its deliveries are looked up afterwards
            answers.append(Accepted(id=seen[0], deliveries=(), created=False))
            repeats.append((request, index, seen[0]))
    return answers, staged, new, repeats


# --------------------------------------------------------------------------- endpoint counter


def disable_reason_after(failures: int) -> str:
    return f"{failures} consecutive failed deliveries"


def endpoint_change(result: AttemptResult, failures: int, enabled: bool) -> str | None:
    """The reason this result disables its endpoint, given the counter *after* it, or None.

    The counter itself is kept in the database: a success sets it to 0, a delivery that ends
    ``failed`` adds 1 (``consecutive_failures = consecutive_failures + 1``), a retry scheduled
    leaves it alone.
    """
    if not enabled:
        return None
    if result.disable_reason is not None:
        return result.disable_reason
    limit = result.disable_after
    if result.status == "failed" and limit and failures >= limit:
        return disable_reason_after(failures)
    return None


# --------------------------------------------------------------------------- operational events


def notice(
    kind: str,
    data: dict[str, Any],
    tenant: str | None,
    routes: Sequence[NoticeRoute],
    now: float,
) -> tuple[NewEvent, tuple[NewDelivery, ...]]:
    """One of hookd's own events (SPEC §11) and its deliveries: to each route whose payload
    filter, if any, matches the event as it is."""
    view = {"type": kind, "tenant": tenant, "data": data}
    event = NewEvent(
        id=new_id("evt"),
        type=kind,
        timestamp=format_timestamp(now),
        data=json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        content_hash="",
        idem_key=None,
        deliveries=(),
        tenant=tenant,
    )
    deliveries = tuple(
        NewDelivery(id=new_id("dlv"), endpoint=r.endpoint)
        for r in routes
        if r.match is None or r.match(view)
    )
    return event, deliveries


def attempt_notices(
    result: AttemptResult, failures: int | None, disabled: str | None, now: float
) -> list[tuple[NewEvent, tuple[NewDelivery, ...]]]:
    """The operational events an applied attempt result causes: ``hookd.delivery.exhausted``
    when its delivery ends failed (never about a ``hookd.*`` event), ``hookd.endpoint.disabled``
    when it disabled the endpoint. Only events with somewhere to go are made."""
    notices = result.notices
    if notices is None:
        return []
    out = []
    if result.status == "failed" and not result.event_type.startswith(OWN_PREFIX):
        data = {
            "delivery": result.delivery_id,
            "event": result.event_id,
            "endpoint": result.endpoint,
            "tenant": notices.tenant,
            "event_type": result.event_type,
            "attempts": result.n,
            "last_status_code": result.status_code,
            "last_error": result.error,
        }
        out.append(notice(EXHAUSTED, data, notices.tenant, notices.exhausted, now))
    if disabled is not None:
        data = {
            "endpoint": result.endpoint,
            "tenant": notices.tenant,
            "reason": disabled,
            "consecutive_failures": failures,
        }
        out.append(notice(DISABLED, data, notices.tenant, notices.disabled, now))
    return [(event, deliveries) for event, deliveries in out if deliveries]


def toggle_notice(
    endpoint: str,
    enabled: bool,
    reason: str | None,
    failures: int,
    notices: Notices | None,
    now: float,
) -> tuple[NewEvent, tuple[NewDelivery, ...]] | None:
    """``hookd.endpoint.enabled`` or ``.disabled`` for a call that changed the endpoint."""
    if notices is None:
        return None
    if enabled:
        data: dict[str, Any] = {"endpoint": endpoint, "tenant": notices.tenant}
        made = notice(ENABLED, data, notices.tenant, notices.enabled, now)
    else:
        data = {
            "endpoint": endpoint,
            "tenant": notices.tenant,
            "reason": reason,
            "consecutive_failures": failures,
        }
        made = notice(DISABLED, data, notices.tenant, notices.disabled, now)
    return made if made[1] else None


def jobs_of(event: NewEvent, deliveries: Sequence[NewDelivery]) -> list[Job]:
    """New deliveries as the dispatcher takes them, without reading them back."""
    return [
        Job(
            id=d.id,
            event_id=event.id,
            endpoint=d.endpoint,
            event_type=event.type,
            event_timestamp=event.timestamp,
            data=event.data,
            status="pending",
            attempt_count=0,
            next_attempt_at=None,
            tenant=event.tenant,
        )
        for d in deliveries
    ]


# --------------------------------------------------------------------------- cursors


def encode_cursor(kind: str, *values: Any) -> str:
    """An opaque page cursor: the backend's position, tagged with what it pages."""
    text = json.dumps([kind, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, *types: type) -> tuple[Any, ...]:
    """The values :func:`encode_cursor` put in, checked against ``types``; else BadCursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor this API gave out") from exc
    if (
        not isinstance(values, list)
        or len(values) != len(types) + 1
        or values[0] != kind
        or not all(
            isinstance(v, t) and not isinstance(v, bool)
            for v, t in zip(values[1:], types, strict=True)
        )
    ):
        raise BadCursor("not a cursor this API gave out")
    return tuple(values[1:])
