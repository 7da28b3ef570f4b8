"""The HTTP server: auth, the JSON error model, ingest and health routes.

Admin and status routes live in :mod:`hookd.admin` and :mod:`hookd.status` and are added to the
same application by :func:`make_app`.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import structlog
from aiohttp import web

from hookd import ingest
from hookd.errors import StoreError
from hookd.state import State
from hookd.store import Conflict, OverCapacity

log = structlog.get_logger("hookd.server")

STATE: web.AppKey[State] = web.AppKey("state", State)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Access = Literal["open", "ingest", "admin"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/ui"})


class ApiError(web.HTTPException):
    """An error answered as ``{"error": {"code", "message", "field"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status
        body: dict[str, Any] = {"code": code, "message": message}
        if field is not None:
            body["field"] = field
        super().__init__(
            text=json.dumps({"error": body}), content_type="application/json", headers=headers
        )


def state_of(request: web.Request) -> State:
    return request.app[STATE]


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
    except ApiError:
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
        raise ApiError(exc.status_code, code, message) from exc
    except StoreError as exc:
        log.error("http.store_error", path=request.path, error=str(exc))
        raise ApiError(
            503, "unavailable", "the database is unavailable", headers={"Retry-After": "5"}
        ) from exc
    except Exception as exc:
        log.exception("http.unhandled", path=request.path, method=request.method)
        raise ApiError(500, "internal", "internal error; see the daemon's log") from exc


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = state_of(request).config.auth
    need = access_for(request)
    if need == "open" or auth.open:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    is_admin = _matches(token, auth.admin_tokens)
    if not is_admin and need == "admin":
        if _matches(token, auth.ingest_tokens):
            raise ApiError(403, "forbidden", "this route needs an admin token")
        raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})
    if not is_admin and not _matches(token, auth.ingest_tokens):
        raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


def _matches(token: str, tokens: tuple[str, ...]) -> bool:
    found = False
    for candidate in tokens:  # compare with every token: no early exit to time
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


# --------------------------------------------------------------------------- request bodies


async def read_json(request: web.Request, limit: int) -> Any:
    """The request's JSON body, enforcing ``limits.max_body`` and the content type."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, "payload_too_large", f"the body is over limits.max_body ({limit} bytes)"
        )
    ctype = request.content_type
    if (
        request.body_exists
        and ctype not in ("application/json", "")
        and not ctype.endswith("+json")
    ):
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "payload_too_large", f"the body is over limits.max_body ({limit} bytes)"
            )
        chunks.append(chunk)
    if ctype == "" and size:
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    raw = b"".join(chunks)
    if not raw:
        raise ApiError(400, "invalid_json", "the body is empty; send a JSON document")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- ingest


def _refuse_when_draining(state: State) -> None:
    if state.draining:
        raise ApiError(
            503,
            "draining",
            "hookd is shutting down and accepts no new events",
            headers={"Retry-After": "5"},
        )


async def post_event(request: web.Request) -> web.Response:
    state = state_of(request)
    _refuse_when_draining(state)
    body = await read_json(request, state.config.limits.max_body)
    try:
        posted = ingest.parse_event(body)
    except ingest.InvalidEvent as exc:
        raise ApiError(400, "invalid_event", str(exc), field=exc.field) from exc
    key = _idempotency_key(request)
    event = ingest.prepare(posted, state.endpoints, now=time.time(), idempotency_key=key)
    accepted = await _commit(state, [event], header_keyed=posted.id is None and key is not None)
    return json_response(ingest.answer(accepted[0]), 202 if accepted[0].created else 200)


def _idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header; an event's own ``id`` wins over it when both are given."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 256:
        raise ApiError(
            400, "invalid_header", "Idempotency-Key is 1-256 characters", field="Idempotency-Key"
        )
    return key


async def post_batch(request: web.Request) -> web.Response:
    state = state_of(request)
    _refuse_when_draining(state)
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, list):
        raise ApiError(400, "invalid_batch", "a batch is a JSON array of events")
    if not body:
        raise ApiError(400, "invalid_batch", "a batch needs at least one event")
    if len(body) > ingest.MAX_BATCH:
        raise ApiError(
            400,
            "batch_too_large",
            f"a batch holds at most {ingest.MAX_BATCH} events, got {len(body)}",
        )
    posted = []
    for i, item in enumerate(body):
        try:
            posted.append(ingest.parse_event(item, prefix=f"[{i}]."))
        except ingest.InvalidEvent as exc:
            raise ApiError(400, "invalid_event", f"event {i}: {exc}", field=exc.field) from exc
    now = time.time()
    key = _idempotency_key(request)  # a retried batch: event i is keyed "KEY#i" unless it has an id
    events = [
        ingest.prepare(
            p, state.endpoints, now=now, idempotency_key=f"{key}#{i}" if key is not None else None
        )
        for i, p in enumerate(posted)
    ]
    accepted = await _commit(state, events)
    status = 202 if any(a.created for a in accepted) else 200
    return json_response({"items": [ingest.answer(a) for a in accepted]}, status)


async def _commit(state: State, events: list[Any], *, header_keyed: bool = False) -> list[Any]:
    try:
        accepted = await state.store.ingest(events)
    except Conflict as exc:
        if header_keyed:
            message = f"Idempotency-Key {exc.key!r} was already used with different content"
            raise ApiError(409, "conflict", message, field="Idempotency-Key") from exc
        field = "id" if len(events) == 1 else f"[{exc.index}].id"
        raise ApiError(409, "conflict", str(exc), field=field) from exc
    except OverCapacity as exc:
        raise ApiError(429, "over_capacity", str(exc), headers={"Retry-After": "10"}) from exc
    created = [a for a in accepted if a.created]
    state.metrics.events.inc(len(created))
    state.metrics.deliveries_created.inc(sum(len(a.deliveries) for a in created))
    if state.dispatcher is not None:
        state.dispatcher.submit(ingest.jobs(events, accepted))
    return accepted


# --------------------------------------------------------------------------- health


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = state_of(request)
    if state.draining:
        return json_response({"status": "draining"}, 503)
    try:
        await state.store.ping()
    except Exception as exc:
        return json_response({"status": "unavailable", "error": str(exc)}, 503)
    return json_response({"status": "ready"})


def make_app(state: State) -> web.Application:
    """The one application: ingest, health, admin, status, metrics, OpenAPI and the web page."""
    from hookd import admin, openapi, status
    from hookd import web as page

    app = web.Application(
        middlewares=[errors_middleware, auth_middleware],
        client_max_size=state.config.limits.max_body + 1024,
    )
    app[STATE] = state
    app.router.add_post("/v1/events", post_event)
    app.router.add_post("/v1/events/batch", post_batch)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    status.add_routes(app)
    admin.add_routes(app)
    openapi.add_routes(app)
    page.add_routes(app)
    return app
