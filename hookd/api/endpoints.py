"""Endpoint routes (SPEC §3, §7): list, show, create, change, delete, enable, disable, test,
rotate-secret and replay.

Secrets: an API endpoint's keys are stored sealed (:func:`hookd.endpoints.seal_keys`) and shown
exactly once, in the answer that made them (create, rotate-secret). YAML endpoints belong to the
YAML: the API may enable, disable, test and replay them, and answers 409 to anything else.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from hookd import endpoints as eps
from hookd import ingest
from hookd.api.endpoint_settings import SETTINGS, merge_settings
from hookd.api.http import (
    ApiProblem,
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
from hookd.errors import HookdError
from hookd.ids import new_id
from hookd.redact import redact_url
from hookd.registry import Event, SigningKey
from hookd.signing import (
    RSA_SHA256,
    STANDARD_WEBHOOKS,
    generate_ed25519,
    generate_rsa,
    generate_standard_secret,
)
from hookd.state import State
from hookd.store import EndpointRow, NewDelivery, NewEvent, OverCapacity
from hookd.units import parse_duration

log = structlog.get_logger("hookd.admin")

MAX_GRACE = 30 * 86400.0
TEST_EVENT = "hookd.test"
REPLAY_BATCH = 500
_ABSENT = object()


def _endpoint_or_404(state: State, endpoint_id: str) -> eps.Endpoint:
    ep = state.endpoints.get(endpoint_id)
    if ep is None:
        raise ApiProblem(404, "not_found", f"no endpoint with id {endpoint_id!r}")
    return ep


def _owned_by_yaml(state: State, ep_id: str, what: str) -> ApiProblem:
    return ApiProblem(
        409,
        "owned_by_config",
        f"endpoint {ep_id!r} is declared in the YAML ({state.config.source}); {what}",
    )


async def _new_secret(scheme: str, like: str | None = None) -> str:
    """Fresh key material for ``scheme`` (an ed25519 key when ``like`` is one)."""
    if scheme == STANDARD_WEBHOOKS:
        if like is not None and like.startswith("whsk_"):
            return generate_ed25519()[0]
        return generate_standard_secret()
    if scheme == RSA_SHA256:
        private, _ = await asyncio.to_thread(generate_rsa)
        return private.decode("ascii")
    return secrets.token_urlsafe(32)  # hmac-sha256 and plugin schemes


def _build(
    state: State, endpoint_id: str, spec: dict[str, Any], keys: tuple[SigningKey, ...]
) -> eps.Endpoint:
    try:
        return eps.build(
            eps.api_endpoint_config(endpoint_id, spec),
            source="api",
            keys=keys,
            policies=state.config.policies,
            registry=state.registry,
        )
    except HookdError as exc:
        message, field = str(exc), None
        if message.startswith("signing:"):  # the signer refused its header, prefix or key
            field = next((f"signing.{k}" for k in ("header", "prefix") if k in message), None)
            field = field or "signing.secret"
        raise invalid(field, message) from exc


def _shown(ep: eps.Endpoint, material: str) -> dict[str, Any]:
    """The once-only answer part: the secret (never a PEM private key) and any public key."""
    public = ep.signer.public_keys()
    return {
        "secret": None if "PRIVATE KEY" in material else material,
        "public_key": public[0] if public else None,
    }


def _keep_state(new: eps.Endpoint, old: eps.Endpoint | EndpointRow) -> eps.Endpoint:
    new.enabled = old.enabled
    new.disabled_reason = old.disabled_reason
    new.consecutive_failures = old.consecutive_failures
    return new


def _scheme(row: EndpointRow) -> str:
    return str((row.spec.get("signing") or {}).get("scheme", STANDARD_WEBHOOKS))


async def _live_keys(state: State, row: EndpointRow) -> tuple[SigningKey, ...]:
    try:
        return eps.open_keys(row.id, row.secrets, state.box, time.time())
    except HookdError as exc:
        raise ApiProblem(409, "sealed_keys", f"cannot open the endpoint's keys: {exc}") from exc


# --------------------------------------------------------------------------- endpoint routes


async def list_endpoints(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response({"items": [ep.to_json() for ep in state.endpoints], "next_cursor": None})


async def get_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_response(_endpoint_or_404(state, request.match_info["id"]).to_json())


async def create_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "an endpoint is a JSON object with at least url")
    only(body, ("id", *SETTINGS))
    try:
        endpoint_id = values.parse_endpoint_id(body["id"]) if "id" in body else new_id("ep")
    except ValueError as exc:
        raise invalid("id", str(exc)) from exc
    spec, secret = merge_settings(
        {k: v for k, v in body.items() if k != "id"},
        {},
        policies=state.config.policies,
        registry=state.registry,
    )
    material = secret or await _new_secret(spec["signing"]["scheme"])
    ep = _build(state, endpoint_id, spec, (SigningKey(material=material),))
    async with state_of(request).endpoints_lock:
        if state.endpoints.get(endpoint_id) is not None:
            raise ApiProblem(409, "conflict", f"an endpoint with id {endpoint_id!r} exists")
        sealed = eps.seal_keys(endpoint_id, [(material, None)], state.box)
        row = await state.store.create_endpoint(endpoint_id, spec, sealed)
        if row is None:
            raise ApiProblem(409, "conflict", f"an endpoint with id {endpoint_id!r} exists")
        state.endpoints.put(ep)
    log.info("endpoint.created", endpoint=endpoint_id, scheme=spec["signing"]["scheme"])
    response = json_response({**ep.to_json(), **_shown(ep, material)}, 201)
    response.headers["Location"] = f"/v1/endpoints/{endpoint_id}"
    return response


async def patch_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    if ep.source != "api":
        raise _owned_by_yaml(state, ep.id, "edit it there and reload (SIGHUP)")
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body must be a JSON object of settings")
    only(body, SETTINGS)
    async with state_of(request).endpoints_lock:
        row = await state.store.endpoint(ep.id)
        if row is None or row.source != "api":
            raise ApiProblem(404, "not_found", f"no endpoint with id {ep.id!r}")
        current = str(row.spec.get("url", ""))
        if body.get("url") == redact_url(current) != current:  # our masked form sent back
            body = {**body, "url": current}
        spec, secret = merge_settings(
            body, row.spec, policies=state.config.policies, registry=state.registry
        )
        if secret is None and spec["signing"].get("scheme") != _scheme(row):
            raise invalid(
                "signing.secret", "changing signing.scheme needs a new key: give signing.secret too"
            )
        keys = (SigningKey(material=secret),) if secret else await _live_keys(state, row)
        new = _keep_state(_build(state, ep.id, spec, keys), state.endpoints.get(ep.id) or row)
        sealed = eps.seal_keys(ep.id, [(secret, None)], state.box) if secret else None
        await state.store.update_endpoint(ep.id, spec=spec, secrets=sealed)
        state.endpoints.put(new)
    log.info("endpoint.updated", endpoint=ep.id, fields=sorted(body))
    return json_response(new.to_json())


async def delete_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    endpoint_id = request.match_info["id"]
    async with state_of(request).endpoints_lock:
        row = await state.store.endpoint(endpoint_id)
        if row is None:
            raise ApiProblem(404, "not_found", f"no endpoint with id {endpoint_id!r}")
        if row.source != "api":
            raise _owned_by_yaml(state, endpoint_id, "remove it from the YAML and reload")
        removed = await state.store.delete_endpoint(endpoint_id)
        state.endpoints.remove(endpoint_id)
    log.info("endpoint.deleted", endpoint=endpoint_id, deliveries=removed or 0)
    return web.Response(status=204)


async def set_enabled(request: web.Request, enabled: bool) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    body = await optional_object(request, state)
    only(body, ("reason",) if not enabled else ())
    reason = body.get("reason", "disabled by an operator")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
        raise invalid("reason", "reason is 1-500 characters")
    async with state_of(request).endpoints_lock:
        if not await state.store.set_endpoint_enabled(ep.id, enabled, reason):
            raise ApiProblem(404, "not_found", f"no endpoint with id {ep.id!r}")
        # a PATCH or rotation may have swapped the live object while we waited: change the current
        ep = _endpoint_or_404(state, ep.id)
        ep.enabled = enabled
        ep.disabled_reason = None if enabled else reason
        if enabled:
            ep.consecutive_failures = 0
    if enabled and state.scheduler is not None:
        state.scheduler.reset()  # held deliveries go back into the wheel
    log.info("endpoint.enabled" if enabled else "endpoint.disabled", endpoint=ep.id)
    return json_response(ep.to_json())


async def enable_endpoint(request: web.Request) -> web.Response:
    return await set_enabled(request, True)


async def disable_endpoint(request: web.Request) -> web.Response:
    return await set_enabled(request, False)


async def test_endpoint(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    only(await optional_object(request, state), ())
    if not ep.enabled:
        raise ApiProblem(
            409, "endpoint_disabled", f"endpoint {ep.id!r} is disabled; enable it first"
        )
    now = time.time()
    data = {"endpoint": ep.id, "message": "a test event sent by hookd"}
    stamp = ingest.format_timestamp(now)
    posted = ingest.Posted(type=TEST_EVENT, data=data, id=None, timestamp=stamp)
    event = NewEvent(
        id=new_id("evt"),
        type=TEST_EVENT,
        timestamp=stamp,
        data=json.dumps(data, separators=(",", ":")),
        content_hash=ingest.content_hash(posted),
        idem_key=None,
        deliveries=(NewDelivery(id=new_id("dlv"), endpoint=ep.id),),
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


async def rotate_secret(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    if ep.source != "api":
        raise _owned_by_yaml(state, ep.id, "its secret lives in the YAML: change it there")
    body = await optional_object(request, state)
    only(body, ("grace", "secret"))
    grace = _grace(body.get("grace", 0))
    given = body.get("secret")
    if "secret" in body and (not isinstance(given, str) or not given.strip()):
        raise invalid("secret", "secret is a non-empty string")
    async with state_of(request).endpoints_lock:
        row = await state.store.endpoint(ep.id)
        if row is None or row.source != "api":
            raise ApiProblem(404, "not_found", f"no endpoint with id {ep.id!r}")
        now = time.time()
        old = await _live_keys(state, row)
        scheme = _scheme(row)
        material = (
            given.strip() if given else await _new_secret(scheme, old[0].material if old else None)
        )
        until = now + grace  # old keys sign on until then (at most), or stop at once
        kept = [(k.material, min(k.expires_at or until, until)) for k in old] if grace else []
        keys = [(material, None), *kept]
        new = _build(
            state, ep.id, row.spec, tuple(SigningKey(material=m, expires_at=e) for m, e in keys)
        )
        _keep_state(new, state.endpoints.get(ep.id) or row)
        await state.store.update_endpoint(ep.id, secrets=eps.seal_keys(ep.id, keys, state.box))
        state.endpoints.put(new)
    log.info("endpoint.secret_rotated", endpoint=ep.id, grace_s=grace, previous_kept=len(kept))
    answer = {
        **new.to_json(),
        **_shown(new, material),
        "previous_expires_at": ts(until) if kept else None,
    }
    return json_response(answer)


def _grace(value: Any) -> float:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            grace = float(value)
        else:
            grace = parse_duration(value)
    except ValueError as exc:
        raise invalid("grace", f"grace: {exc}") from exc
    if not 0 <= grace <= MAX_GRACE:
        raise invalid("grace", "grace is at most 30d")
    return grace


async def replay(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
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
            return datetime.fromisoformat(ingest.normalize_timestamp(value, "since")).timestamp()
        except (ingest.InvalidEvent, ValueError) as exc:
            raise invalid("since", f"since: {exc}") from exc
    try:
        return max(0.0, now - min(parse_duration(value), now))
    except ValueError as exc:
        raise invalid("since", f"since is RFC 3339 or a duration like 1h: {exc}") from exc


async def _missed(state: State, ep: eps.Endpoint, since: float, now: float) -> int:
    """Create deliveries for events since ``since`` that the endpoint wants but never got."""
    created, after = 0, 0
    while True:
        rows = await state.store.missed_events(
            ep.id, since=since, after_rowid=after, limit=REPLAY_BATCH
        )
        wanted = []
        for row in rows:
            if row.type != TEST_EVENT and _wants(ep, stored_event(row)):
                wanted.append((new_id("dlv"), row.id))
        if wanted:
            created += await state.store.add_deliveries(ep.id, wanted, origin="replay", now=now)
        if len(rows) < REPLAY_BATCH:
            return created
        after = rows[-1].rowid


def _wants(ep: eps.Endpoint, event: Event) -> bool:
    try:
        return ep.wants(event)
    except Exception as exc:  # a plugin filter that raises skips the event, never the replay
        log.warning("replay.filter_failed", endpoint=ep.id, event=event.id, error=str(exc))
        return False


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/endpoints", list_endpoints)
    r.add_post("/v1/endpoints", create_endpoint)
    r.add_get("/v1/endpoints/{id}", get_endpoint)
    r.add_patch("/v1/endpoints/{id}", patch_endpoint)
    r.add_delete("/v1/endpoints/{id}", delete_endpoint)
    r.add_post("/v1/endpoints/{id}/enable", enable_endpoint)
    r.add_post("/v1/endpoints/{id}/disable", disable_endpoint)
    r.add_post("/v1/endpoints/{id}/test", test_endpoint)
    r.add_post("/v1/endpoints/{id}/rotate-secret", rotate_secret)
    r.add_post("/v1/endpoints/{id}/replay", replay)
