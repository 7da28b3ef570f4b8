"""Tenant routes (SPEC §8), admin only: the tenants hookd has seen, and their tokens.

``POST /v1/tenants/{tenant}/tokens`` mints a token (:mod:`hookd.tokens`) for a customer's
portal or its own API calls; ``POST /v1/tenants/{tenant}/revoke-tokens`` invalidates every token
issued for the tenant so far, at once.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web

from hookd.api.access import ADMIN, route
from hookd.api.http import (
    ApiProblem,
    duration_field,
    invalid,
    json_response,
    only,
    open_cursor,
    optional_object,
    seal_cursor,
    state_of,
    ts,
)
from hookd.config import values
from hookd.store import BadCursor
from hookd.tokens import DEFAULT_TTL_S, MAX_TTL_S

log = structlog.get_logger("hookd.api")

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
PORTAL_PATH = "/ui/#token="


def _tenant(request: web.Request) -> str:
    try:
        return values.parse_tenant(request.match_info["tenant"])
    except ValueError as exc:
        raise invalid("tenant", str(exc)) from exc


async def list_tenants(request: web.Request) -> web.Response:
    """Every tenant with an endpoint or an event: its endpoints and deliveries by status."""
    state = state_of(request)
    only(request.query, ("limit", "cursor"))
    text = request.query.get("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiProblem(400, "invalid_query", f"limit is 1-{MAX_LIMIT}", field="limit")
    cursor = open_cursor(state, None, request.query.get("cursor") or None)
    try:
        page = await state.store.tenants(limit=int(text), cursor=cursor)
    except BadCursor as exc:
        raise ApiProblem(400, "invalid_query", str(exc), field="cursor") from exc
    items = [
        {"tenant": row.tenant, "endpoints": row.endpoints, "deliveries": row.deliveries}
        for row in page.items
    ]
    return json_response(
        {"items": items, "next_cursor": seal_cursor(state, None, page.next_cursor)}
    )


async def create_token(request: web.Request) -> web.Response:
    state = state_of(request)
    tenant = _tenant(request)
    body = await optional_object(request, state)
    only(body, ("ttl",))
    ttl = _ttl(body.get("ttl", DEFAULT_TTL_S))
    if state.tokens is None:
        raise ApiProblem(503, "unavailable", "the database is not open yet")
    generation = await state.store.token_generation(tenant)
    token, expires_at = state.tokens.mint(tenant, ttl=ttl, generation=generation)
    log.info("tenant.token_issued", tenant=tenant, expires_at=ts(expires_at))
    answer: dict[str, Any] = {
        "token": token,
        "tenant": tenant,
        "expires_at": ts(expires_at),
        "portal_path": PORTAL_PATH + token,
    }
    return json_response(answer, 201)


def _ttl(value: Any) -> float:
    return duration_field(value, "ttl", low=1, high=MAX_TTL_S, shown="from 1s to 30d")


async def revoke_tokens(request: web.Request) -> web.Response:
    state = state_of(request)
    tenant = _tenant(request)
    only(await optional_object(request, state), ())
    generation = await state.store.revoke_tokens(tenant, time.time())
    log.info("tenant.tokens_revoked", tenant=tenant, generation=generation)
    return json_response({"tenant": tenant, "revoked": True})


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/v1/tenants", list_tenants, ADMIN)
    route(app, "POST", "/v1/tenants/{tenant}/tokens", create_token, ADMIN)
    route(app, "POST", "/v1/tenants/{tenant}/revoke-tokens", revoke_tokens, ADMIN)
