"""Admin routes (SPEC §3, §7): endpoints, deliveries, events, signing keys.

Each handler validates its input, calls the store (all SQL lives in :mod:`hookd.store`), keeps the
live :class:`~hookd.endpoints.EndpointTable` in step with the database, and answers JSON. Changes
to endpoints are serialised by one lock, so the table and the database cannot drift apart.

Secrets: an API endpoint's keys are stored sealed (:func:`hookd.endpoints.seal_keys`) and shown
exactly once, in the answer that made them (create, rotate-secret). YAML endpoints belong to the
YAML: the API may enable, disable, test and replay them, and answers 409 to anything else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
import yarl
from aiohttp import web

from hookd import client, ingest
from hookd import endpoints as eps
from hookd.config import values
from hookd.errors import HookdError
from hookd.ids import new_id
from hookd.redact import redact_headers, redact_url
from hookd.registry import Event, SigningKey
from hookd.server import ApiError, json_response, read_json, state_of
from hookd.signing import (
    RSA_SHA256,
    STANDARD_WEBHOOKS,
    generate_ed25519,
    generate_rsa,
    generate_standard_secret,
)
from hookd.state import State
from hookd.store import (
    DeliveryFilter,
    DeliveryRow,
    EndpointRow,
    EventRow,
    NewDelivery,
    NewEvent,
    OverCapacity,
)
from hookd.units import parse_duration, parse_rate

log = structlog.get_logger("hookd.admin")

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_GRACE = 30 * 86400.0
MAX_RATE = 1_000_000.0  # requests per second
TEST_EVENT = "hookd.test"
STATUSES = ("pending", "succeeded", "failed")
REPLAY_BATCH = 500
_ABSENT = object()
_DIGITS = re.compile(r"[0-9]{1,18}")
_QUERY = ("endpoint", "status", "type", "event", "code", "limit", "cursor")

# --------------------------------------------------------------------------- JSON shapes


def ts(value: float | None) -> str | None:
    return None if value is None else ingest.format_timestamp(value)


def delivery_json(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "endpoint": row.endpoint,
        "event_type": row.event_type,
        "status": row.status,
        "attempt_count": row.attempt_count,
        "next_attempt_at": ts(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "origin": row.origin,
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
    }


def _endpoint_or_404(state: State, endpoint_id: str) -> eps.Endpoint:
    ep = state.endpoints.get(endpoint_id)
    if ep is None:
        raise ApiError(404, "not_found", f"no endpoint with id {endpoint_id!r}")
    return ep


def _owned_by_yaml(state: State, ep_id: str, what: str) -> ApiError:
    return ApiError(
        409,
        "owned_by_config",
        f"endpoint {ep_id!r} is declared in the YAML ({state.config.source}); {what}",
    )


async def _optional_object(request: web.Request, state: State) -> dict[str, Any]:
    """A JSON object body, or ``{}`` when the request has no body."""
    if not request.body_exists or request.content_length == 0:
        return {}
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return body


def _invalid(field: str | None, message: str) -> ApiError:
    return ApiError(400, "invalid_field", message, field=field)


def _bad_query(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_query", message, field=field)


def _only(body: Mapping[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    for key in body:
        if key not in allowed:
            raise ApiError(
                400,
                "unknown_field",
                f"unknown field {prefix + key!r} (expected: {', '.join(allowed)})",
                field=prefix + key,
            )


# --------------------------------------------------------------------------- endpoint settings

_NULLABLE = ("rate_limit", "max_in_flight", "filter")
_SIGNING = ("scheme", "secret", "header", "prefix")


def _api_url(value: Any) -> str:
    url = values.parse_url(value)
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected a URL starting with http:// or https://")
    if len(url) > 2048 or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise ValueError("expected a URL of at most 2048 characters without spaces")
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if not parsed.host:
        raise ValueError("expected an http:// or https:// URL with a host")
    return url


def _api_headers(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
        raise ValueError("header values are strings")
    headers = values.parse_headers(value)
    for name, text in headers.items():
        if any(not (" " <= c <= "~") and c != "\t" for c in text):
            raise ValueError(f"header {name}: value must be printable ASCII")
    return headers


def _api_patterns(value: Any) -> list[str]:
    if not isinstance(value, list):  # YAML also takes one string; JSON clients send a list
        raise ValueError("expected a non-empty list of event type patterns like ['task.*']")
    return list(values.parse_patterns(value))


def _rate(value: Any) -> float:
    rate = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if rate is None:
        rate = parse_rate(value)
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"expected a rate like 50/s or 600/m, at most {MAX_RATE:g}/s")
    return rate


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "url": _api_url,
    "events": _api_patterns,
    "policy": values.parse_nonempty_str,
    "body": values.parse_nonempty_str,
    "headers": _api_headers,
    "rate_limit": _rate,
    "max_in_flight": values.int_at_least(1),
    "ordering": values.choice("none", "fifo"),
    "filter": values.parse_nonempty_str,
    "options": values.parse_mapping,
}
_SETTINGS = ("signing", *_PARSERS)


def _merge_settings(
    state: State, body: dict[str, Any], base: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """``base`` with the settings in ``body`` applied and checked; also the new secret, if any."""
    spec = dict(base)
    for key, value in body.items():
        if key == "signing":
            continue
        if value is None:
            if key not in _NULLABLE:
                raise _invalid(key, f"{key} cannot be null")
            spec.pop(key, None)
            continue
        try:
            spec[key] = _PARSERS[key](value)
        except ValueError as exc:
            raise _invalid(key, f"{key}: {exc}") from exc
    signing = dict(base.get("signing") or {"scheme": STANDARD_WEBHOOKS})
    secret: str | None = None
    given = body.get("signing")
    if "signing" in body:
        if not isinstance(given, dict):
            raise _invalid("signing", "signing must be an object")
        _only(given, _SIGNING, "signing.")
        for key in ("scheme", "header", "prefix"):
            if key in given:
                signing[key] = _signing_value(key, given[key])
                if signing[key] is None:
                    del signing[key]
        if "secret" in given:
            if not isinstance(given["secret"], str) or not given["secret"].strip():
                raise _invalid("signing.secret", "a non-empty string")
            secret = given["secret"].strip()
    spec["signing"] = signing
    if "url" not in spec:
        raise _invalid("url", "url is required")
    spec.setdefault("events", ["*"])
    _check_names(state, spec)
    return spec, secret


def _signing_value(key: str, value: Any) -> str | None:
    parse = {
        "scheme": values.parse_nonempty_str,
        "header": values.parse_header_name,
        "prefix": values.parse_str,
    }[key]
    if value is None and key != "scheme":
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise _invalid(f"signing.{key}", f"signing.{key}: {exc}") from exc


def _check_names(state: State, spec: dict[str, Any]) -> None:
    for field, name, known in (
        ("policy", spec.get("policy", "standard"), state.config.policies),
        ("body", spec.get("body", "standard"), state.registry.formats),
        ("signing.scheme", spec["signing"].get("scheme"), state.registry.signers),
        ("filter", spec.get("filter"), state.registry.filters),
    ):
        if name is not None and name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise _invalid(field, f"no {field} named {name!r} (known: {names})")


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
        raise _invalid(field, message) from exc


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
        raise ApiError(409, "sealed_keys", f"cannot open the endpoint's keys: {exc}") from exc


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
        raise ApiError(400, "invalid_body", "an endpoint is a JSON object with at least url")
    _only(body, ("id", *_SETTINGS))
    try:
        endpoint_id = values.parse_endpoint_id(body["id"]) if "id" in body else new_id("ep")
    except ValueError as exc:
        raise _invalid("id", str(exc)) from exc
    spec, secret = _merge_settings(state, {k: v for k, v in body.items() if k != "id"}, {})
    material = secret or await _new_secret(spec["signing"]["scheme"])
    ep = _build(state, endpoint_id, spec, (SigningKey(material=material),))
    async with state_of(request).endpoints_lock:
        if state.endpoints.get(endpoint_id) is not None:
            raise ApiError(409, "conflict", f"an endpoint with id {endpoint_id!r} exists")
        sealed = eps.seal_keys(endpoint_id, [(material, None)], state.box)
        row = await state.store.create_endpoint(endpoint_id, spec, sealed)
        if row is None:
            raise ApiError(409, "conflict", f"an endpoint with id {endpoint_id!r} exists")
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
        raise ApiError(400, "invalid_body", "the body must be a JSON object of settings")
    _only(body, _SETTINGS)
    async with state_of(request).endpoints_lock:
        row = await state.store.endpoint(ep.id)
        if row is None or row.source != "api":
            raise ApiError(404, "not_found", f"no endpoint with id {ep.id!r}")
        current = str(row.spec.get("url", ""))
        if body.get("url") == redact_url(current) != current:  # our masked form sent back
            body = {**body, "url": current}
        spec, secret = _merge_settings(state, body, row.spec)
        if secret is None and spec["signing"].get("scheme") != _scheme(row):
            raise _invalid(
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
            raise ApiError(404, "not_found", f"no endpoint with id {endpoint_id!r}")
        if row.source != "api":
            raise _owned_by_yaml(state, endpoint_id, "remove it from the YAML and reload")
        removed = await state.store.delete_endpoint(endpoint_id)
        state.endpoints.remove(endpoint_id)
    log.info("endpoint.deleted", endpoint=endpoint_id, deliveries=removed or 0)
    return web.Response(status=204)


async def set_enabled(request: web.Request, enabled: bool) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    body = await _optional_object(request, state)
    _only(body, ("reason",) if not enabled else ())
    reason = body.get("reason", "disabled by an operator")
    if not isinstance(reason, str) or not 1 <= len(reason) <= 500:
        raise _invalid("reason", "reason is 1-500 characters")
    async with state_of(request).endpoints_lock:
        if not await state.store.set_endpoint_enabled(ep.id, enabled, reason):
            raise ApiError(404, "not_found", f"no endpoint with id {ep.id!r}")
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
    _only(await _optional_object(request, state), ())
    if not ep.enabled:
        raise ApiError(409, "endpoint_disabled", f"endpoint {ep.id!r} is disabled; enable it first")
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
        raise ApiError(429, "over_capacity", str(exc), headers={"Retry-After": "10"}) from exc
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
    body = await _optional_object(request, state)
    _only(body, ("grace", "secret"))
    grace = _grace(body.get("grace", 0))
    given = body.get("secret")
    if "secret" in body and (not isinstance(given, str) or not given.strip()):
        raise _invalid("secret", "secret is a non-empty string")
    async with state_of(request).endpoints_lock:
        row = await state.store.endpoint(ep.id)
        if row is None or row.source != "api":
            raise ApiError(404, "not_found", f"no endpoint with id {ep.id!r}")
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
        raise _invalid("grace", f"grace: {exc}") from exc
    if not 0 <= grace <= MAX_GRACE:
        raise _invalid("grace", "grace is at most 30d")
    return grace


async def replay(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = _endpoint_or_404(state, request.match_info["id"])
    body = await _optional_object(request, state)
    _only(body, ("since", "status"))
    now = time.time()
    since = _since(body.get("since", _ABSENT), now)
    status = body.get("status", "failed")
    if status not in ("failed", "all"):
        raise _invalid("status", "status is failed or all")
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
        raise _invalid("since", "since is a string: RFC 3339 or a duration like 1h")
    if "T" in value.upper() or "-" in value:
        try:
            return datetime.fromisoformat(ingest.normalize_timestamp(value, "since")).timestamp()
        except (ingest.InvalidEvent, ValueError) as exc:
            raise _invalid("since", f"since: {exc}") from exc
    try:
        return max(0.0, now - min(parse_duration(value), now))
    except ValueError as exc:
        raise _invalid("since", f"since is RFC 3339 or a duration like 1h: {exc}") from exc


async def _missed(state: State, ep: eps.Endpoint, since: float, now: float) -> int:
    """Create deliveries for events since ``since`` that the endpoint wants but never got."""
    created, after = 0, 0
    while True:
        rows = await state.store.missed_events(
            ep.id, since=since, after_rowid=after, limit=REPLAY_BATCH
        )
        wanted = []
        for row in rows:
            if row.type != TEST_EVENT and _wants(ep, _event(row)):
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


# --------------------------------------------------------------------------- deliveries, events


def _query_filter(query: Mapping[str, str]) -> tuple[DeliveryFilter, int, int | None]:
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
    )
    return where, int(limit_text), _decode_cursor(cursor) if cursor else None


def _code_range(text: str) -> tuple[int, int]:
    if len(text) == 3 and text[0] in "12345" and text[1:].lower() == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    if _DIGITS.fullmatch(text) and 100 <= int(text) <= 599:
        return int(text), int(text)
    raise _bad_query("code", "code is an HTTP status (404) or class (5xx)")


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"d1:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = text.partition(":")
        if prefix != "d1" or not _DIGITS.fullmatch(seq):
            raise ValueError(cursor)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_query("cursor", "not a cursor this API gave out") from exc


async def list_deliveries(request: web.Request) -> web.Response:
    state = state_of(request)
    where, limit, before = _query_filter(request.query)
    rows = await state.store.deliveries(where, limit=limit + 1, before_seq=before)
    page = rows[:limit]
    cursor = _encode_cursor(page[-1].seq) if len(rows) > limit else None
    return json_response({"items": [delivery_json(r) for r in page], "next_cursor": cursor})


async def get_delivery(request: web.Request) -> web.Response:
    state = state_of(request)
    delivery_id = request.match_info["id"]
    row = await state.store.delivery(delivery_id)
    if row is None:
        raise ApiError(404, "not_found", f"no delivery with id {delivery_id!r}")
    event = await state.store.event(row.event_id)
    attempts = await state.store.attempts(row.id)
    ep = state.endpoints.get(row.endpoint)
    payload = _payload(ep, event) if ep is not None and event is not None else None
    if attempts and attempts[-1].request_headers:
        headers = json.loads(attempts[-1].request_headers)
    elif ep is not None:  # not attempted yet: what will be sent, before signing
        base = {"Content-Type": "application/json", "User-Agent": client.USER_AGENT}
        headers = redact_headers({**base, **ep.config.headers})
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


def _event(row: EventRow) -> Event:
    return Event(id=row.id, type=row.type, timestamp=row.timestamp, data=json.loads(row.data))


def _payload(ep: eps.Endpoint, event: EventRow) -> Any:
    """The body as the endpoint's format makes it (what was, or will be, sent), decoded."""
    try:
        return json.loads(ep.body(_event(event)))
    except Exception:  # a plugin format that fails: show no payload, never a 500
        return None


async def retry_delivery(request: web.Request) -> web.Response:
    state = state_of(request)
    delivery_id = request.match_info["id"]
    _only(await _optional_object(request, state), ())
    now = time.time()
    before = await state.store.retry_failed(delivery_id, now)
    if before is None:
        raise ApiError(404, "not_found", f"no delivery with id {delivery_id!r}")
    if before == "orphaned":
        raise ApiError(
            409,
            "endpoint_removed",
            f"delivery {delivery_id!r} cannot be retried: its endpoint no longer exists",
        )
    if before != "failed":
        raise ApiError(
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
    event = await state.store.event(event_id)
    if event is None:
        raise ApiError(404, "not_found", f"no event with id {event_id!r}")
    deliveries = await state.store.event_deliveries(event.id)
    return json_response(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": event.timestamp,
            "data": json.loads(event.data),
            "created_at": ts(event.created_at),
            "deliveries": [delivery_json(d) for d in deliveries],
        }
    )


async def signing_keys(request: web.Request) -> web.Response:
    state = state_of(request)
    keys: list[dict[str, str]] = []
    for ep in state.endpoints:
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
    r.add_get("/v1/deliveries", list_deliveries)
    r.add_get("/v1/deliveries/{id}", get_delivery)
    r.add_post("/v1/deliveries/{id}/retry", retry_delivery)
    r.add_get("/v1/events/{id}", get_event)
    r.add_get("/v1/signing-keys", signing_keys)
