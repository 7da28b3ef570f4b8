"""Endpoint routes (SPEC §3, §7): list, show, create, change, delete, enable, disable, test,
rotate-secret and replay.

The handlers parse and check the request, call the change (:mod:`hookd.endpoints.changes`, which
keeps the database and the live table in step under one lock) and answer; a refused change
becomes its JSON error in :mod:`hookd.api.middleware`. Secrets: an API endpoint's keys are shown
exactly once, in the answer that made them (create, rotate-secret). YAML endpoints belong to the
YAML: the API may enable, disable, test and replay them, and answers 409 to anything else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from hookd import endpoints as eps
from hookd import ingest
from hookd.api.access import TenantAllowed, route, scope_of
from hookd.api.endpoint_settings import SETTINGS, check_listed, merge_settings, patch_settings
from hookd.api.http import (
    ApiProblem,
    duration_field,
    invalid,
    json_response,
    only,
    optional_object,
    read_json,
    state_of,
    ts,
)
from hookd.api.shapes import stored_event
from hookd.config import values
from hookd.endpoints import changes
from hookd.ids import new_id
from hookd.registry import Event
from hookd.state import State
from hookd.store import NewDelivery, NewEvent, OverCapacity
from hookd.timestamps import format_timestamp

log = structlog.get_logger("hookd.api")

MAX_GRACE = 30 * 86400.0
TEST_EVENT = "hookd.test"
REPLAY_BATCH = 500
_ABSENT = object()


def _shown(keyed: changes.Keyed) -> dict[str, Any]:
    """The once-only answer part: the secret (never a PEM private key) and any public key."""
    public = keyed.endpoint.signer.public_keys()
    return {
        "secret": None if "PRIVATE KEY" in keyed.material else keyed.material,
        "public_key": public[0] if public else None,
    }


# --------------------------------------------------------------------------- routes


async def list_endpoints(request: web.Request) -> web.Response:
    """Every endpoint (``?tenant=T``: those whose tenant is T); a tenant token sees its own."""
    state = state_of(request)
    for name in request.query:
        if name != "tenant":
            raise ApiProblem(
                400,
                "invalid_query",
                f"unknown query parameter {name!r} (expected: tenant)",
                field=name,
            )
    scope = scope_of(request)
    wanted = request.query.get("tenant") if scope is None else scope
    items = list(state.endpoints) if wanted is None else state.endpoints.of_tenant(wanted)
    return json_response({"items": [ep.to_json() for ep in items], "next_cursor": None})


async def get_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(state.endpoints.require(request.match_info["id"]).to_json())


async def create_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "an endpoint is a JSON object with at least url")
    only(body, ("id", "tenant", *SETTINGS))
    if "id" in body and scope_of(request) is not None:  # else another tenant's id would show
        raise invalid("id", "hookd assigns the id of an endpoint a tenant token creates")
    try:
        endpoint_id = values.parse_endpoint_id(body["id"]) if "id" in body else new_id("ep")
    except ValueError as exc:
        raise invalid("id", str(exc)) from exc
    tenant = _new_tenant(body.get("tenant"), scope_of(request))
    settings = {k: v for k, v in body.items() if k not in ("id", "tenant")}
    spec, secret = merge_settings(
        settings, {}, policies=state.config.policies, registry=state.registry
    )
    check_listed(spec["events"], state.config.event_types)
    created = await changes.create(state, endpoint_id, spec, secret, tenant=tenant)
    response = json_response({**created.endpoint.to_json(), **_shown(created)}, 201)
    response.headers["Location"] = f"/v1/endpoints/{endpoint_id}"
    return response


def _new_tenant(given: object, scope: str | None) -> str | None:
    """A new endpoint's tenant: the body's (an admin), or the token's own (a tenant)."""
    if scope is not None:
        if given is not None and given != scope:
            raise ApiProblem(
                403, "forbidden", "a tenant token creates endpoints of its own tenant only"
            )
        return scope
    if given is None:
        return None
    try:
        return values.parse_endpoint_tenant(given)
    except ValueError as exc:
        raise invalid("tenant", str(exc)) from exc


async def patch_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = changes.api_owned(state, request.match_info["id"], "update")
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body must be a JSON object of settings")
    if "tenant" in body:  # fixed at creation: naming the same one is no change
        if body["tenant"] != ep.tenant:
            raise invalid("tenant", "an endpoint's tenant is fixed when it is created")
        body = {k: v for k, v in body.items() if k != "tenant"}
    only(body, SETTINGS)

    def revise(current: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        spec, secret = patch_settings(
            body, current, policies=state.config.policies, registry=state.registry
        )
        check_listed(spec["events"], state.config.event_types)
        return spec, secret

    new = await changes.update(state, ep.id, revise, changed=body)
    return json_response(new.to_json())


async def delete_endpoint(request: web.Request) -> web.Response:
    await changes.delete(state_of(request), request.match_info["id"])
    return web.Response(status=204)


async def enable_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = state.endpoints.require(request.match_info["id"])
    only(await optional_object(request, state), ())
    return json_response((await changes.enable(state, ep.id)).to_json())


async def disable_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = state.endpoints.require(request.match_info["id"])
    body = await optional_object(request, state)
    only(body, ("reason",))
    reason = body.get("reason", "disabled by an operator")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
        raise invalid("reason", "reason is 1-500 characters")
    return json_response((await changes.disable(state, ep.id, reason)).to_json())


async def rotate_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = changes.api_owned(state, request.match_info["id"], "rotate")
    body = await optional_object(request, state)
    only(body, ("grace", "secret"))
    grace = _grace(body.get("grace", 0))
    given = body.get("secret")
    if "secret" in body and (not isinstance(given, str) or not given.strip()):
        raise invalid("secret", "secret is a non-empty string")
    try:
        values.check_signing_secret(ep.config.signing.scheme, given or "")
    except ValueError as exc:
        raise invalid("secret", str(exc)) from exc
    secret = given.strip() if given else None
    rotated = await changes.rotate_secret(state, ep.id, grace=grace, secret=secret)
    answer = {
        **rotated.endpoint.to_json(),
        **_shown(rotated),
        "previous_expires_at": ts(rotated.previous_expires_at),
    }
    return json_response(answer)


def _grace(value: Any) -> float:
    return duration_field(value, "grace", low=0, high=MAX_GRACE, shown="at most 30d")


async def test_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = state.endpoints.require(request.match_info["id"])
    only(await optional_object(request, state), ())
    if not ep.enabled:
        raise ApiProblem(
            409, "endpoint_disabled", f"endpoint {ep.id!r} is disabled; enable it first"
        )
    now = time.time()
    data = {"endpoint": ep.id, "message": "a test event sent by hookd"}
    stamp = format_timestamp(now)
    posted = ingest.Posted(type=TEST_EVENT, data=data, id=None, timestamp=stamp)
    event = NewEvent(
        id=new_id("evt"),
        type=TEST_EVENT,
        timestamp=stamp,
        data=json.dumps(data, separators=(",", ":")),
        content_hash=ingest.content_hash(posted),
        idem_key=None,
        deliveries=(NewDelivery(id=new_id("dlv"), endpoint=ep.id),),
        tenant=None if ep.tenant == "*" else ep.tenant,  # so the tenant sees its own test
    )
    try:
        [accepted] = await state.store.ingest([event])
    except OverCapacity as exc:
        raise ApiProblem(429, "over_capacity", str(exc), headers={"Retry-After": "10"}) from exc
    delivery = accepted.deliveries[0]
    state.metrics.deliveries_created.inc()
    if state.scheduler is not None:
        state.scheduler.offer(delivery.id, now)
    log.info("endpoint.test_queued", endpoint=ep.id, delivery=delivery.id)
    return json_response(
        {
            "delivery_id": delivery.id,
            "event_id": accepted.id,
            "deliveries": [{"id": delivery.id, "endpoint": ep.id}],
        },
        202,
    )


async def replay(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = state.endpoints.require(request.match_info["id"])
    body = await optional_object(request, state)
    only(body, ("since", "status"))
    now = time.time()
    since = _since(body.get("since", _ABSENT), now)
    status = body.get("status", "failed")
    if status not in ("failed", "all"):
        raise invalid("status", "status is failed or all")
    statuses = ("failed",) if status == "failed" else ("succeeded", "failed")
    requeued = await state.store.requeue(ep.id, since=since, statuses=statuses, now=now)
    row = await state.store.endpoint(ep.id)
    created = await _missed(state, ep, max(since, row.created_at if row else now), now)
    state.metrics.deliveries_created.inc(created)
    if (requeued or created) and state.scheduler is not None:
        state.scheduler.reset()
    log.info("endpoint.replayed", endpoint=ep.id, requeued=requeued, created=created)
    return json_response(
        {"queued": requeued + created, "requeued": requeued, "created": created}, 202
    )


def _since(value: Any, now: float) -> float:
    """``since`` as unix seconds: RFC 3339, or a duration back from now; absent means all."""
    if value is _ABSENT:
        return 0.0
    if not isinstance(value, str):
        raise invalid("since", "since is a string: RFC 3339 or a duration like 1h")
    if "T" in value.upper() or "-" in value:
        try:
            return values.parse_timestamp(value).timestamp()
        except ValueError as exc:
            raise invalid("since", f"since: {exc}") from exc
    try:
        return max(0.0, now - min(values.parse_duration(value), now))
    except ValueError as exc:
        raise invalid("since", f"since is RFC 3339 or a duration like 1h: {exc}") from exc


async def _missed(state: State, ep: eps.Endpoint, since: float, now: float) -> int:
    """Create deliveries for events since ``since`` that the endpoint wants but never got."""
    created, cursor = 0, None
    while True:
        page = await state.store.missed_events(
            ep.id, since=since, limit=REPLAY_BATCH, cursor=cursor
        )
        wanted = []
        for row in page.items:
            if row.type != TEST_EVENT and await _wants(ep, stored_event(row)):
                wanted.append((new_id("dlv"), row.id))
        if wanted:
            created += await state.store.add_deliveries(ep.id, wanted, origin="replay", now=now)
        cursor = page.next_cursor
        if cursor is None:
            return created


async def _wants(ep: eps.Endpoint, event: Event) -> bool:
    """Whether the endpoint would have got the event (a plugin filter that fails: no)."""
    return ep.matches(event) and await ingest.plugin_allows(ep, event)


def add_routes(app: web.Application) -> None:
    own = TenantAllowed("endpoint")
    route(app, "GET", "/v1/endpoints", list_endpoints, TenantAllowed())
    route(app, "POST", "/v1/endpoints", create_endpoint, TenantAllowed())
    route(app, "GET", "/v1/endpoints/{id}", get_endpoint, own)
    route(app, "PATCH", "/v1/endpoints/{id}", patch_endpoint, own)
    route(app, "DELETE", "/v1/endpoints/{id}", delete_endpoint, own)
    route(app, "POST", "/v1/endpoints/{id}/enable", enable_endpoint, own)
    route(app, "POST", "/v1/endpoints/{id}/disable", disable_endpoint, own)
    route(app, "POST", "/v1/endpoints/{id}/test", test_endpoint, own)
    route(app, "POST", "/v1/endpoints/{id}/rotate-secret", rotate_secret, own)
    route(app, "POST", "/v1/endpoints/{id}/replay", replay, own)
