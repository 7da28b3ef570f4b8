"""Errors as JSON: the outermost middleware (the access layer, :mod:`hookd.api.access`, is next)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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
    TenantLimit,
    UnknownEndpoint,
)

log = structlog.get_logger("hookd.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# A refused endpoint change (hookd.endpoints.changes) as an answer: status and code.
_REFUSED: dict[type[EndpointError], tuple[int, str]] = {
    UnknownEndpoint: (404, "not_found"),
    EndpointExists: (409, "conflict"),
    OwnedByConfig: (409, "owned_by_config"),
    TenantLimit: (409, "tenant_limit"),
    SealedKeys: (409, "sealed_keys"),
    InvalidEndpoint: (400, "invalid_field"),
}


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
        suppressed = state_of(request).store_errors.allow()
        if suppressed is not None:
            log.error("http.store_error", path=request.path, error=str(exc), suppressed=suppressed)
        raise ApiProblem(
            503, "unavailable", "the database is unavailable", headers={"Retry-After": "5"}
        ) from exc
    except Exception as exc:
        log.exception("http.unhandled", path=request.path, method=request.method)
        raise ApiProblem(500, "internal", "internal error; see the daemon's log") from exc
