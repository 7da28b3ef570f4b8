"""Ingest: validate posted events, decide their deliveries (fan-out), commit them.

Pure validation lives in :func:`parse_event`; :func:`accept` turns valid events into outbox
rows, one delivery per subscribed, enabled endpoint, and commits them in one store call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
import structlog

from hookd import jsontext
from hookd.catalog import Catalog, SchemaMismatch, UnknownEventType
from hookd.config import values
from hookd.config.values import TENANT_PATTERN, parse_tenant
from hookd.endpoints import Endpoint, EndpointTable
from hookd.errors import HookdError
from hookd.ids import id_maker
from hookd.isolation import PluginFailure, call_plugin
from hookd.registry import Event
from hookd.store import Accepted, Job, NewDelivery, NewEvent
from hookd.store.rules import jobs_of
from hookd.timestamps import format_timestamp

log = structlog.get_logger("hookd.ingest")

MAX_BATCH = 1000
RESERVED_PREFIX = "hookd."  # hookd's own event types: operational events, hookd.test
_TYPE = re.compile(r"^[^\s\x00-\x1f]{1,256}$")
_ID = re.compile(r"^[^\s\x00-\x1f]{1,128}$")
_FIELDS = {"type", "data", "id", "timestamp", "tenant"}


class InvalidEvent(HookdError):
    """A posted event is malformed; ``field`` names where, ``code`` the kind (for the answer)."""

    def __init__(
        self, message: str, field: str | None = None, *, code: str = "invalid_event"
    ) -> None:
        self.field = field
        self.code = code
        super().__init__(message)


class Posted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A valid posted event before it has an id or deliveries. msgspec decodes a body straight
    into it (:func:`decode_events`), checking what :func:`parse_event` checks in Python but the
    reserved ``hookd.`` prefix and the timestamp (normalized RFC 3339 once checked, after)."""

    type: Annotated[str, msgspec.Meta(pattern=_TYPE.pattern)]
    data: Any
    id: Annotated[str, msgspec.Meta(pattern=_ID.pattern)] | None = None
    timestamp: str | None = None
    tenant: Annotated[str, msgspec.Meta(pattern=TENANT_PATTERN.pattern)] | None = None


def parse_event(value: Any, prefix: str = "") -> Posted:
    """Check one posted event object; raise InvalidEvent naming the field."""
    if not isinstance(value, dict):
        raise InvalidEvent(
            "an event is a JSON object with type and data", prefix.rstrip(".") or None
        )
    for key in value:
        if key not in _FIELDS:
            raise InvalidEvent(
                f"unknown field {key!r} (expected type, data, id, timestamp, tenant)",
                prefix + key,
            )
    kind = value.get("type")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise InvalidEvent(
            "type is required: a string of 1-256 characters without spaces", prefix + "type"
        )
    if kind.startswith(RESERVED_PREFIX):
        raise InvalidEvent(
            f"event types starting {RESERVED_PREFIX!r} are hookd's own (operational events); "
            "pick another name",
            prefix + "type",
        )
    if "data" not in value:
        raise InvalidEvent("data is required (any JSON value)", prefix + "data")
    event_id = value.get("id")
    if event_id is not None and (not isinstance(event_id, str) or not _ID.match(event_id)):
        raise InvalidEvent("id must be a string of 1-128 characters without spaces", prefix + "id")
    stamp = value.get("timestamp")
    if stamp is not None:
        stamp = normalize_timestamp(stamp, prefix + "timestamp")
    tenant = value.get("tenant")
    if tenant is not None:
        try:
            tenant = parse_tenant(tenant)
        except ValueError as exc:
            raise InvalidEvent(str(exc), prefix + "tenant") from exc
    return Posted(type=kind, data=value["data"], id=event_id, timestamp=stamp, tenant=tenant)


_ONE = msgspec.json.Decoder(Posted)
_MANY = msgspec.json.Decoder(list[Posted])


def decode_events(raw: bytes, *, batch: bool) -> list[Posted] | None:
    """The events of a valid body (a batch: 1 to MAX_BATCH of them), parsed and checked by
    msgspec in one pass; None for any body that is not plainly valid, which callers then parse
    and check the general way (:func:`hookd.jsontext.loads`, :func:`parse_event`), so that what
    is wrong is said exactly as it always was."""
    try:
        found = _MANY.decode(raw) if batch else [_ONE.decode(raw)]
    except (msgspec.DecodeError, RecursionError):
        return None
    if not 1 <= len(found) <= MAX_BATCH:
        return None
    if _may_be_too_deep(raw, found, batch):
        return None
    for i, e in enumerate(found):
        if e.type.startswith(RESERVED_PREFIX):
            return None
        if e.timestamp is not None:
            try:
                stamp = format_timestamp(values.parse_timestamp(e.timestamp))
            except ValueError:
                return None
            found[i] = msgspec.structs.replace(e, timestamp=stamp)
    return found


def _may_be_too_deep(raw: bytes, found: list[Posted], batch: bool) -> bool:
    """Whether the body may nest deeper than :data:`hookd.jsontext.MAX_DEPTH`. Every object or
    array has an opening bracket of its own in ``raw`` (one inside a string only adds to the
    count): the batch's array, each event's object, and at least one in each event's data that
    is an object or array; what is left over bounds the deepest data. Only when that bound is
    past the limit are the values walked."""
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets <= jsontext.MAX_DEPTH:
        return False
    outer = 2 if batch else 1  # the batch's array, then each event's object
    nested = sum(1 for e in found if isinstance(e.data, dict | list))
    deepest = brackets - (outer - 1) - len(found) - max(nested - 1, 0)
    if outer + deepest <= jsontext.MAX_DEPTH:
        return False
    # as deep as the body: a batch's array, then each event's object (here an array), then data
    return jsontext.may_be_too_deep(raw, [[e.data for e in found]] if batch else [found[0].data])


def normalize_timestamp(value: Any, field: str = "timestamp") -> str:
    """An RFC 3339 time (:func:`hookd.config.values.parse_timestamp`) as answers spell it."""
    try:
        return format_timestamp(values.parse_timestamp(value))
    except ValueError as exc:
        if str(exc).startswith("expected"):
            message = (
                f"timestamp must be RFC 3339 with a zone, like 2026-01-02T03:04:05Z, got {value!r}"
            )
        else:
            message = f"timestamp is {exc}"
        raise InvalidEvent(message, field) from exc


def content_hash(posted: Posted) -> str:
    """What tells a repeat from a conflict. (An untenanted event hashes as before tenants.)"""
    parts = [posted.type, posted.data, posted.timestamp]
    if posted.tenant is not None:
        parts.append(posted.tenant)
    canon = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


async def prepare(
    posted: Posted, endpoints: EndpointTable, *, now: float, idempotency_key: str | None = None
) -> NewEvent:
    """An outbox row for one event, its deliveries decided now (SPEC: fan-out at ingest)."""
    (event,) = await prepare_many([posted], endpoints, now=now, keys=[idempotency_key])
    return event


async def prepare_many(
    posted: Sequence[Posted],
    endpoints: EndpointTable,
    *,
    now: float,
    keys: Sequence[str | None] | None = None,
) -> list[NewEvent]:
    """:func:`prepare` for each event in turn (event i keyed ``keys[i]`` unless it has an id).
    Events of one type and tenant that no filter looks at share one routing decision."""
    stamp = format_timestamp(now)
    next_event_id, next_delivery_id = id_maker("evt"), id_maker("dlv")
    plain: dict[tuple[str, str | None], list[Endpoint] | None] = {}
    out: list[NewEvent] = []
    for i, p in enumerate(posted):
        event_id = p.id or next_event_id()
        key = p.id or (keys[i] if keys is not None else None)
        timestamp = p.timestamp or stamp
        route = (p.type, p.tenant)
        if route not in plain:
            plain[route] = endpoints.plain_route(p.type, p.tenant)
        targets = plain[route]
        if targets is None:  # a filter decides, event by event
            event = Event(
                id=event_id, type=p.type, timestamp=timestamp, data=p.data, tenant=p.tenant
            )
            targets = await fan_out(endpoints, event)
            plain.clear()  # endpoints may have changed while a plugin's filter ran
            next_event_id, next_delivery_id = id_maker("evt"), id_maker("dlv")  # and time passed
        out.append(
            NewEvent(
                id=event_id,
                type=p.type,
                timestamp=timestamp,
                data=jsontext.dumps(p.data).decode(),
                # only keyed events can be repeated, so only they need the hash
                content_hash=content_hash(p) if key else "",
                idem_key=key,
                deliveries=tuple(
                    [NewDelivery(id=next_delivery_id(), endpoint=ep.id) for ep in targets]
                ),
                tenant=p.tenant,
            )
        )
    return out


async def fan_out(endpoints: EndpointTable, event: Event) -> list[Endpoint]:
    """The enabled endpoints that get this event: tenant, patterns and payload filter decided
    in line, a plugin's filter fenced (:mod:`hookd.isolation`)."""
    candidates = endpoints.route(event)
    if all(ep.filter is None for ep in candidates):
        return candidates
    return [ep for ep in candidates if ep.filter is None or await plugin_allows(ep, event)]


async def plugin_allows(ep: Endpoint, event: Event) -> bool:
    """The endpoint's plugin filter's decision; one that raises or hangs says no (logged)."""
    if ep.filter is None:
        return True
    owner = ep.plugins.get("filter", "a plugin")
    try:
        allowed = await call_plugin(
            owner, f"filter {ep.config.filter!r}", ep.filter, event, ep.view
        )
    except PluginFailure as exc:
        log.warning("ingest.filter_failed", endpoint=ep.id, event_id=event.id, error=str(exc))
        return False
    return bool(allowed)


def check_catalog(catalog: Catalog, posted: Posted, prefix: str = "") -> None:
    """SPEC §10: the type must be listed when ``strict``; ``data`` must match its schema."""
    try:
        catalog.check(posted.type, posted.data)
    except SchemaMismatch as exc:
        raise InvalidEvent(str(exc), prefix + exc.field, code="schema_mismatch") from exc
    except UnknownEventType as exc:
        raise InvalidEvent(str(exc), prefix + "type", code="unknown_event_type") from exc


def jobs(events: Sequence[NewEvent], accepted: Sequence[Accepted]) -> list[Job]:
    """The new deliveries of a committed ingest as the dispatcher takes them (no read-back)."""
    return [
        job
        for event, answer in zip(events, accepted, strict=True)
        if answer.created
        for job in jobs_of(event, answer.deliveries)
    ]


def answer(accepted: Accepted) -> dict[str, Any]:
    return {
        "id": accepted.id,
        "deliveries": [{"id": d.id, "endpoint": d.endpoint} for d in accepted.deliveries],
    }
