"""The two middlewares every request passes: errors as JSON (outermost), then bearer tokens."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Literal

import structlog
from aiohttp import web

from hookd.api.http import ApiProblem, state_of
from hookd.errors import (
    EndpointError,
    EndpointExists,
    InvalidEndpoint,
    OwnedByConfig,
    SealedKeys,
    StoreError,
    UnknownEndpoint,
)

log = structlog.get_logger("hookd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Access = Literal["open", "ingest", "admin"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/ui"})

# A refused endpoint change (hookd.endpoints.changes) as an answer: status and code.
_REFUSED: dict[type[EndpointError], tuple[int, str]] = {
    UnknownEndpoint: (404, "not_found"),
    EndpointExists: (409, "conflict"),
    OwnedByConfig: (409, "owned_by_config"),
    SealedKeys: (409, "sealed_keys"),
    InvalidEndpoint: (400, "invalid_field"),
}


def access_for(request: web.Request) -> Access:
    path = request.path
    if path in OPEN_PATHS or path.startswith("/ui/"):
        return "open"
    if request.method == "POST" and path in ("/v1/events", "/v1/events/batch"):
        return "ingest"
    return "admin"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; unexpected ones are logged and answered 500."""
    try:
        return await handler(request)
    except ApiProblem:
        raise
    except web.HTTPException as exc:
        if exc.status_code < 400:
            raise
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        message = exc.reason if exc.status_code != 404 else f"no route for {request.path}"
        raise ApiProblem(exc.status_code, code, message) from exc
    except EndpointError as exc:
        status, code = _REFUSED[type(exc)]
        raise ApiProblem(status, code, str(exc), field=exc.field) from exc
    except StoreError as exc:
        log.error("http.store_error", path=request.path, error=str(exc))
        raise ApiProblem(
            503, "unavailable", "the database is unavailable", headers={"Retry-After": "5"}
        ) from exc
    except Exception as exc:
        log.exception("http.unhandled", path=request.path, method=request.method)
        raise ApiProblem(500, "internal", "internal error; see the daemon's log") from exc


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = state_of(request).config.auth
    need = access_for(request)
    if need == "open" or auth.open:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiProblem(
            401,
            "unauthorized",
            "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    is_admin = _matches(token, auth.admin_tokens)
    if not is_admin and need == "admin":
        if _matches(token, auth.ingest_tokens):
            raise ApiProblem(403, "forbidden", "this route needs an admin token")
        raise ApiProblem(
            401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not is_admin and not _matches(token, auth.ingest_tokens):
        raise ApiProblem(
            401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"}
        )
    return await handler(request)


def _matches(token: str, tokens: tuple[str, ...]) -> bool:
    # A header that is not UTF-8 arrives with surrogates standing for its bytes: compare those
    # bytes (they match no token) rather than fail to encode them.
    given = token.encode("utf-8", "surrogatepass")
    found = False
    for candidate in tokens:  # compare with every token: no early exit to time
        found |= hmac.compare_digest(given, candidate.encode())
    return found
