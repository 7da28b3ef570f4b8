"""Who may call what: the one authorization layer every request passes (SPEC §3, §8).

Every route is registered with its rule through :func:`route` — ``OPEN``, ``INGEST``,
``ADMIN``, or :class:`TenantAllowed` — and :func:`access_middleware` enforces it before any
handler runs. A route registered without a rule (or any path no route matches) needs an admin
token, so a route added later cannot forget to be guarded: at worst it is admin-only.

Principals: an admin token reaches everything; an ingest token the ingest routes; a *tenant
token* (:mod:`hookd.tokens`) only the routes marked :class:`TenantAllowed`, everything else is
403. On a tenant-allowed route the object the path names (``{id}``) is looked up **within the
tenant's scope** here, before the handler: an endpoint, delivery or event of another tenant
answers 404 exactly as an absent one does (same code, same message, one lookup either way), and
handlers take the scope from :func:`scope_of` for lists and for what they create. A tenant's
scope is the endpoints whose tenant is exactly its own (``"*"`` endpoints are the operator's).

With no tokens configured (loopback only) every route is open, as an admin's; a tenant token
presented there is still honoured and confined, so a portal link shows what it would in
production.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from hookd.api.http import ApiProblem, state_of
from hookd.errors import UnknownEndpoint
from hookd.tokens import InvalidToken, looks_like_jwt

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Owned = Literal["endpoint", "delivery", "event"]


@dataclass(frozen=True, slots=True)
class TenantAllowed:
    """A route a tenant token may call; ``owns`` names what ``{id}`` in its path is."""

    owns: Owned | None = None


Rule = Literal["open", "ingest", "admin"] | TenantAllowed
OPEN: Rule = "open"
INGEST: Rule = "ingest"
ADMIN: Rule = "admin"

RULES: web.AppKey[dict[tuple[str, str], Rule]] = web.AppKey("access_rules", dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    role: Literal["open", "admin", "ingest", "tenant"]
    tenant: str | None = None  # set for a tenant token


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def route(app: web.Application, method: str, path: str, handler: Handler, rule: Rule) -> None:
    """Register a route with the rule the access layer enforces for it (GET also answers HEAD)."""
    if method == "GET":
        app.router.add_get(path, handler)
    else:
        app.router.add_route(method, path, handler)
    app.setdefault(RULES, {})[(method, path)] = rule


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def scope_of(request: web.Request) -> str | None:
    """The tenant a request is confined to (a tenant token), or None (admin, open)."""
    return principal_of(request).tenant


def rule_for(request: web.Request) -> Rule:
    resource = request.match_info.route.resource
    if resource is None:
        return ADMIN  # no route: as guarded as the most guarded one
    method = "GET" if request.method == "HEAD" else request.method
    return request.app.get(RULES, {}).get((method, resource.canonical), ADMIN)


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = rule_for(request)
    principal = await _authenticate(request, rule)
    request[PRINCIPAL] = principal
    if principal.role == "tenant":
        if not isinstance(rule, TenantAllowed):
            raise ApiProblem(403, "forbidden", "this route is not open to tenant tokens")
        if rule.owns is not None and principal.tenant is not None:
            await _confine(request, rule.owns, principal.tenant)
    elif principal.role == "ingest" and rule not in (INGEST, OPEN):
        raise ApiProblem(403, "forbidden", "this route needs an admin token")
    return await handler(request)


# --------------------------------------------------------------------------- authentication


def _unauthorized(message: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def _authenticate(request: web.Request, rule: Rule) -> Principal:
    if rule == OPEN:
        return Principal(role="open")
    auth = state_of(request).config.auth
    token = _bearer(request)
    if token is not None and not auth.open:
        if _matches(token, auth.admin_tokens):
            return Principal(role="admin")
        if _matches(token, auth.ingest_tokens):
            return Principal(role="ingest")
    if token is not None and looks_like_jwt(token):
        return await _tenant(request, token)
    if auth.open:
        return Principal(role="admin")
    if token is None:
        raise _unauthorized("send Authorization: Bearer <token>")
    raise _unauthorized("unknown token")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def _tenant(request: web.Request, token: str) -> Principal:
    state = state_of(request)
    if state.tokens is None:
        raise _unauthorized("tenant tokens are not available yet")
    try:
        claims = state.tokens.verify(token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from exc
    if claims.generation != await state.store.token_generation(claims.tenant):
        raise _unauthorized("the tenant token was revoked")
    return Principal(role="tenant", tenant=claims.tenant)


def _matches(token: str, tokens: tuple[str, ...]) -> bool:
    """Constant time in the token's content: every configured token is compared. A header that
    is not UTF-8 arrives with surrogates standing for its bytes: compare those bytes (they match
    no token) rather than fail to encode them."""
    given = token.encode("utf-8", "surrogatepass")
    found = False
    for candidate in tokens:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


# --------------------------------------------------------------------------- confinement


async def _confine(request: web.Request, owns: Owned, tenant: str) -> None:
    """404, as for an absent one, unless the path's object is the tenant's."""
    state = state_of(request)
    object_id = request.match_info.get("id", "")
    if owns == "endpoint":
        endpoint = state.endpoints.get(object_id)
        if endpoint is None or endpoint.tenant != tenant:
            raise UnknownEndpoint(object_id)
    elif owns == "delivery":
        if await state.store.delivery(object_id, scope=tenant) is None:
            raise ApiProblem(404, "not_found", f"no delivery with id {object_id!r}")
    elif await state.store.event(object_id, scope=tenant) is None:
        raise ApiProblem(404, "not_found", f"no event with id {object_id!r}")
