"""Delivery history routes (SPEC §3, §7): ``/v1/deliveries`` (filtered, paged), one delivery
with its attempts, retrying a failed one, ``/v1/events/{id}`` and ``/v1/signing-keys``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from hookd import endpoints as eps
from hookd.api.access import TenantAllowed, route, scope_of
from hookd.api.http import (
    ApiProblem,
    json_response,
    only,
    open_cursor,
    optional_object,
    seal_cursor,
    state_of,
    ts,
)
from hookd.api.shapes import delivery_json, stored_event
from hookd.delivery import client
from hookd.delivery.attempt import render
from hookd.redact import redact_custom
from hookd.store import BadCursor, DeliveryFilter, EventRow

log = structlog.get_logger("hookd.api")

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
STATUSES = ("pending", "succeeded", "failed")
_DIGITS = re.compile(r"[0-9]{1,18}")
_QUERY = ("endpoint", "status", "type", "event", "code", "tenant", "limit", "cursor")


def _bad_query(field: str, message: str) -> ApiProblem:
    return ApiProblem(400, "invalid_query", message, field=field)


def _query_filter(
    query: Mapping[str, str], scope: str | None
) -> tuple[DeliveryFilter, int, str | None]:
    for name in query:  # a typo (staus=failed) must not silently list everything
        if name not in _QUERY:
            raise _bad_query(
                name, f"unknown query parameter {name!r} (expected: {', '.join(_QUERY)})"
            )
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise _bad_query("status", "status is pending, succeeded or failed")
    code_range = None
    if (code := query.get("code")) is not None:
        code_range = _code_range(code)
    limit_text = query.get("limit", str(DEFAULT_LIMIT))
    if not _DIGITS.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise _bad_query("limit", f"limit is 1-{MAX_LIMIT}")
    cursor = query.get("cursor") or None
    where = DeliveryFilter(
        endpoint=query.get("endpoint") or None,
        status=status,
        type_glob=query.get("type") or None,
        event=query.get("event") or None,
        code_range=code_range,
        tenant=query.get("tenant") or None,
        scope=scope,
    )
    return where, int(limit_text), cursor


def _code_range(text: str) -> tuple[int, int]:
    if len(text) == 3 and text[0] in "12345" and text[1:].lower() == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if _DIGITS.fullmatch(text) and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise _bad_query("code", "code is an HTTP status (404) or class (5xx)")


async def list_deliveries(request: web.Request) -> web.Response:
    """Newest first; a tenant token sees the deliveries to its own endpoints only."""
    state = state_of(request)
    scope = scope_of(request)
    where, limit, cursor = _query_filter(request.query, scope)
    try:
        page = await state.store.deliveries(
            where, limit=limit, cursor=open_cursor(state, scope, cursor)
        )
    except BadCursor as exc:
        raise _bad_query("cursor", str(exc)) from exc
    next_cursor = seal_cursor(state, scope, page.next_cursor)
    return json_response(
        {"items": [delivery_json(r) for r in page.items], "next_cursor": next_cursor}
    )


async def get_delivery(request: web.Request) -> web.Response:
    state = state_of(request)
    delivery_id = request.match_info["id"]
    row = await state.store.delivery(delivery_id, scope=scope_of(request))
    if row is None:
        raise ApiProblem(404, "not_found", f"no delivery with id {delivery_id!r}")
    event = await state.store.event(row.event_id)
    attempts = await state.store.attempts(row.id)
    ep = state.endpoints.get(row.endpoint)
    payload = await _payload(ep, event) if ep is not None and event is not None else None
    custom = ep.config.headers if ep is not None else {}
    if attempts and attempts[-1].request_headers:  # (rows stored before hookd hid every custom
        headers = redact_custom(json.loads(attempts[-1].request_headers), custom)  # value too)
    elif ep is not None:  # not attempted yet: what will be sent, before signing
        base = {"Content-Type": "application/json", "User-Agent": client.USER_AGENT}
        headers = redact_custom({**base, **custom}, custom)
    else:
        headers = {}
    answer = {
        **delivery_json(row),
        "payload": payload,
        "request_headers": headers,
        "attempts": [
            {
                "n": a.n,
                "started_at": ts(a.started_at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response_body": a.response_body,
            }
            for a in attempts
        ],
    }
    return json_response(answer)


async def _payload(ep: eps.Endpoint, event: EventRow) -> Any:
    """The body as the endpoint's format makes it (what was, or will be, sent), decoded."""
    try:
        return json.loads(await render(ep, stored_event(event)))
    except Exception:  # a plugin format that fails or hangs: show no payload, never a 500
        return None


async def retry_delivery(request: web.Request) -> web.Response:
    state = state_of(request)
    delivery_id = request.match_info["id"]
    only(await optional_object(request, state), ())
    now = time.time()
    before = await state.store.retry_failed(delivery_id, now)
    if before is None:
        raise ApiProblem(404, "not_found", f"no delivery with id {delivery_id!r}")
    if before == "orphaned":
        raise ApiProblem(
            409,
            "endpoint_removed",
            f"delivery {delivery_id!r} cannot be retried: its endpoint no longer exists",
        )
    if before != "failed":
        raise ApiProblem(
            409,
            "not_failed",
            f"delivery {delivery_id!r} is {before}; only failed deliveries can be retried",
        )
    if state.scheduler is not None:
        state.scheduler.offer(delivery_id, now)
    row = await state.store.delivery(delivery_id)
    log.info("delivery.retry_requested", delivery=delivery_id)
    answer = delivery_json(row) if row is not None else {"id": delivery_id, "status": "pending"}
    return json_response(answer, 202)


async def get_event(request: web.Request) -> web.Response:
    state = state_of(request)
    event_id = request.match_info["id"]
    scope = scope_of(request)
    event = await state.store.event(event_id, scope=scope)
    if event is None:
        raise ApiProblem(404, "not_found", f"no event with id {event_id!r}")
    deliveries = await state.store.event_deliveries(event.id, scope=scope)
    return json_response(
        {
            "id": event.id,
            "type": event.type,
            "tenant": event.tenant,
            "timestamp": event.timestamp,
            "data": json.loads(event.data),
            "created_at": ts(event.created_at),
            "deliveries": [delivery_json(d) for d in deliveries],
        }
    )


async def signing_keys(request: web.Request) -> web.Response:
    state = state_of(request)
    scope = scope_of(request)
    keys: list[dict[str, str]] = []
    for ep in state.endpoints if scope is None else state.endpoints.of_tenant(scope):
        try:
            public = ep.signer.public_keys()
        except Exception as exc:  # a plugin signer that fails here hides its keys only
            log.warning("signing.public_keys_failed", endpoint=ep.id, error=str(exc))
            continue
        keys.extend(
            {"endpoint": ep.id, "scheme": ep.config.signing.scheme, "public_key": key}
            for key in public
        )
    return json_response({"keys": keys})


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/v1/deliveries", list_deliveries, TenantAllowed())
    route(app, "GET", "/v1/deliveries/{id}", get_delivery, TenantAllowed("delivery"))
    route(app, "POST", "/v1/deliveries/{id}/retry", retry_delivery, TenantAllowed("delivery"))
    route(app, "GET", "/v1/events/{id}", get_event, TenantAllowed("event"))
    route(app, "GET", "/v1/signing-keys", signing_keys, TenantAllowed())
