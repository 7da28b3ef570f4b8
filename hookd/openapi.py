"""``GET /openapi.json``: the OpenAPI 3.1 description of every route hookd serves.

The document is data built once by :func:`document`. It describes what the handlers really
answer, errors included (``tests/test_openapi.py`` validates it and fuzzes a running daemon
against it), so change it together with the handlers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from hookd import __version__
from hookd.server import json_response

JSON = "application/json"
Schema = dict[str, Any]

# --------------------------------------------------------------------------- schema helpers


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: Iterable[str] = (), /, **props: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": props}


def closed(required: Iterable[str] = (), /, **props: Schema) -> Schema:
    return {**obj(required, **props), "additionalProperties": False}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def array(items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "items": items, **kw}


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
ANY: Schema = {}
DURATION: Schema = {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$"}
EVENT_TYPE: Schema = {"type": "string", "pattern": r"^[^\s\x00-\x1f]{1,256}$"}
EVENT_ID: Schema = {"type": "string", "pattern": r"^[^\s\x00-\x1f]{1,128}$"}
ENDPOINT_ID: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"}
HEADERS: Schema = {
    "type": "object",
    "propertyNames": {"pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
    "additionalProperties": {"type": "string", "pattern": r"^[\t\x20-\x7e]*$"},
}

# --------------------------------------------------------------------------- the schemas

_SETTINGS: dict[str, Schema] = {
    "url": {
        "type": "string",
        "pattern": r"^https?://\S+$",
        "maxLength": 2048,
        "description": (
            "http:// or https:// URL deliveries are POSTed to; answers show a password in it "
            "as *** (user:***@host), and that form sent back keeps the password"
        ),
    },
    "events": array(
        {"type": "string", "minLength": 1}, minItems=1, description="glob patterns (task.*)"
    ),
    "policy": {"type": "string", "minLength": 1, "description": "a named retry policy"},
    "body": {"type": "string", "minLength": 1, "examples": ["standard", "raw", "taskee"]},
    "signing": closed(
        (),
        scheme={
            "type": "string",
            "minLength": 1,
            "examples": ["standard-webhooks", "hmac-sha256", "rsa-sha256"],
        },
        secret={
            "type": "string",
            "minLength": 1,
            "description": "whsec_/whsk_ secret, HMAC secret or PEM RSA private key; "
            "generated when absent",
        },
        header=nullable({"type": "string", "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"}),
        prefix=nullable(STR),
    ),
    "headers": HEADERS,
    "rate_limit": nullable(
        {
            "oneOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*/\s*(s|m|h)\s*$"},
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
            ]
        }
    ),
    "max_in_flight": nullable({"type": "integer", "minimum": 1}),
    "ordering": {"enum": ["none", "fifo"]},
    "filter": nullable({"type": "string", "minLength": 1}),
    "options": {"type": "object"},
}

ENDPOINT = obj(
    (
        "id",
        "url",
        "events",
        "enabled",
        "disabled_reason",
        "consecutive_failures",
        "source",
        "policy",
        "signing",
    ),
    id=STR,
    url=STR,
    events=array(STR),
    enabled=BOOL,
    disabled_reason=nullable(STR),
    consecutive_failures=INT,
    source={"enum": ["config", "api"]},
    policy=STR,
    body=STR,
    signing=obj(["scheme"], scheme=STR),
    headers={"type": "object", "additionalProperties": STR},
    rate_limit=nullable({"type": "number", "description": "requests per second"}),
    max_in_flight=nullable(INT),
    ordering={"enum": ["none", "fifo"]},
)
SHOWN_ONCE = {
    "secret": nullable({"type": "string", "description": "shown in this answer only"}),
    "public_key": nullable({"type": "string", "description": "SPKI PEM or whpk_"}),
}
DELIVERY = obj(
    (
        "id",
        "event_id",
        "endpoint",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "created_at",
    ),
    id=STR,
    event_id=STR,
    endpoint=STR,
    event_type=STR,
    status={"enum": ["pending", "succeeded", "failed"]},
    attempt_count=INT,
    next_attempt_at=nullable(TIME),
    last_status_code=nullable(INT),
    last_error=nullable(STR),
    origin={"type": "string", "examples": ["ingest", "replay"]},
    created_at=TIME,
    updated_at=TIME,
)
ATTEMPT = obj(
    ("n", "started_at", "status_code", "latency_ms", "error", "response_body"),
    n=INT,
    started_at=TIME,
    status_code=nullable(INT),
    latency_ms=NUM,
    error=nullable(STR),
    response_body=nullable({"type": "string", "description": "the first bytes of the answer"}),
)
INGEST_ANSWER = obj(
    ("id", "deliveries"),
    id=STR,
    deliveries=array(obj(("id", "endpoint"), id=STR, endpoint=STR)),
)

SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        ["error"],
        error=obj(
            ("code", "message"),
            code={"type": "string", "pattern": "^[a-z0-9_]+$"},
            message=STR,
            field=STR,
        ),
    ),
    "PostedEvent": closed(
        ("type", "data"),
        type=EVENT_TYPE,
        data=ANY,
        id=nullable(EVENT_ID),
        timestamp=nullable(
            {"type": "string", "description": "RFC 3339 with a zone (default: now)"}
        ),
    ),
    "IngestAnswer": INGEST_ANSWER,
    "BatchAnswer": obj(["items"], items=array(ref("IngestAnswer"))),
    "Endpoint": ENDPOINT,
    "EndpointCreate": closed(["url"], id=ENDPOINT_ID, **_SETTINGS),
    "EndpointPatch": closed((), **_SETTINGS),
    "EndpointCreated": {"allOf": [ref("Endpoint"), obj(("secret", "public_key"), **SHOWN_ONCE)]},
    "EndpointRotated": {
        "allOf": [
            ref("Endpoint"),
            obj(
                ("secret", "public_key", "previous_expires_at"),
                previous_expires_at=nullable(TIME),
                **SHOWN_ONCE,
            ),
        ]
    },
    "EndpointList": obj(
        ("items", "next_cursor"), items=array(ref("Endpoint")), next_cursor=nullable(STR)
    ),
    "Disable": closed((), reason={"type": "string", "minLength": 1, "maxLength": 500}),
    "Rotate": closed(
        (),
        grace={"oneOf": [DURATION, {"type": "number", "minimum": 0, "maximum": 2592000}]},
        secret={"type": "string", "minLength": 1},
    ),
    "Replay": closed(
        (),
        since={
            "type": "string",
            "description": "RFC 3339, or a duration back from now (1h); default: everything",
            "examples": ["1h", "2024-05-01T00:00:00Z"],
        },
        status={"enum": ["failed", "all"], "default": "failed"},
    ),
    "Replayed": obj(("queued",), queued=INT, requeued=INT, created=INT),
    "TestQueued": obj(
        ("delivery_id", "event_id", "deliveries"),
        delivery_id=STR,
        event_id=STR,
        deliveries=array(obj(("id", "endpoint"), id=STR, endpoint=STR)),
    ),
    "Delivery": DELIVERY,
    "DeliveryDetail": {
        "allOf": [
            ref("Delivery"),
            obj(
                ("payload", "request_headers", "attempts"),
                payload={"description": "the body as sent, decoded; null if it cannot be built"},
                request_headers={"type": "object", "additionalProperties": STR},
                attempts=array(ref("Attempt")),
            ),
        ]
    },
    "Attempt": ATTEMPT,
    "DeliveryList": obj(
        ("items", "next_cursor"), items=array(ref("Delivery")), next_cursor=nullable(STR)
    ),
    "EventDetail": obj(
        ("id", "type", "timestamp", "data", "created_at", "deliveries"),
        id=STR,
        type=STR,
        timestamp=TIME,
        data=ANY,
        created_at=TIME,
        deliveries=array(ref("Delivery")),
    ),
    "SigningKeys": obj(
        ["keys"],
        keys=array(
            obj(("endpoint", "scheme", "public_key"), endpoint=STR, scheme=STR, public_key=STR)
        ),
    ),
    "Status": obj(
        (
            "version",
            "uptime_s",
            "deliveries",
            "scheduled",
            "in_flight",
            "endpoints",
            "db_bytes",
        ),
        version=STR,
        uptime_s=NUM,
        draining=BOOL,
        deliveries=obj(("pending", "succeeded", "failed"), pending=INT, succeeded=INT, failed=INT),
        due=INT,
        scheduled=INT,
        in_flight=INT,
        endpoints=array(
            obj(
                ("id", "enabled", "consecutive_failures"),
                id=STR,
                url=STR,
                enabled=BOOL,
                disabled_reason=nullable(STR),
                consecutive_failures=INT,
                source=STR,
            )
        ),
        db_bytes=INT,
    ),
    "Health": obj(["status"], status=STR, error=STR),
}

# --------------------------------------------------------------------------- responses

_ERRORS = {
    "400": "The request is malformed: bad JSON, an invalid field or query parameter",
    "401": "No token, or an unknown one",
    "403": "An ingest token on an admin route",
    "404": "No such resource",
    "409": "A conflict with the current state",
    "413": "The body is over limits.max_body",
    "415": "The body is not JSON",
    "429": "Over capacity (limits.max_pending); retry after Retry-After seconds",
    "503": "Draining, or the database is unavailable; retry after Retry-After seconds",
}
_ERROR_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": STR}},
    "429": {"Retry-After": {"schema": STR}},
    "503": {"Retry-After": {"schema": STR}},
}


def _error(code: str, description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description or _ERRORS[code],
        "content": {JSON: {"schema": ref("Error")}},
    }
    if code in _ERROR_HEADERS:
        out["headers"] = _ERROR_HEADERS[code]
    return out


def _ok(description: str, schema: Schema | None = None, **headers: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {JSON: {"schema": schema}}
    if headers:
        out["headers"] = {name.replace("_", "-"): {"schema": s} for name, s in headers.items()}
    return out


def op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    access: str = "admin",
    body: Schema | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    errors: Iterable[str | tuple[str, str]] = (),
    description: str | None = None,
) -> dict[str, Any]:
    """One operation; the errors every route of its kind can give are added here."""
    out: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if description is not None:
        out["description"] = description
    codes: list[str | tuple[str, str]] = list(errors)
    if access == "open":
        out["security"] = []
    else:
        codes += ["401", "503"] + (["403"] if access == "admin" else [])
    if body is not None:
        out["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
        codes += ["400", "413", "415"]
    if params:
        out["parameters"] = params
    for item in codes:
        code, description = item if isinstance(item, tuple) else (item, None)
        out["responses"].setdefault(code, _error(code, description))
    return out


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PATH_ID = [{"name": "id", "in": "path", "required": True, "schema": STR}]
NOT_FOUND = ("404", "No endpoint with this id")
YAML_OWNED = ("409", "The endpoint is declared in the YAML, which owns it")


def _endpoint_paths() -> dict[str, Any]:
    item = "/v1/endpoints/{id}"
    return {
        "/v1/endpoints": {
            "get": op(
                "List endpoints",
                {"200": _ok("Every endpoint", ref("EndpointList"))},
                tag="endpoints",
            ),
            "post": op(
                "Create an endpoint (API-owned); the answer shows its secret once",
                {"201": _ok("Created", ref("EndpointCreated"), Location=STR)},
                tag="endpoints",
                body=ref("EndpointCreate"),
                errors=[("409", "An endpoint with this id exists")],
            ),
        },
        item: {
            "parameters": PATH_ID,
            "get": op(
                "Show an endpoint",
                {"200": _ok("The endpoint", ref("Endpoint"))},
                tag="endpoints",
                errors=[NOT_FOUND],
            ),
            "patch": op(
                "Change an API endpoint's settings",
                {"200": _ok("The endpoint as changed", ref("Endpoint"))},
                tag="endpoints",
                body=ref("EndpointPatch"),
                errors=[NOT_FOUND, YAML_OWNED],
            ),
            "delete": op(
                "Delete an API endpoint with its delivery history",
                {"204": _ok("Deleted")},
                tag="endpoints",
                errors=[NOT_FOUND, YAML_OWNED],
            ),
        },
        f"{item}/enable": {
            "parameters": PATH_ID,
            "post": op(
                "Enable an endpoint: failures reset, held deliveries resume",
                {"200": _ok("The endpoint", ref("Endpoint"))},
                tag="endpoints",
                body=closed(),
                body_required=False,
                errors=[NOT_FOUND],
            ),
        },
        f"{item}/disable": {
            "parameters": PATH_ID,
            "post": op(
                "Disable an endpoint: no new deliveries, pending ones held",
                {"200": _ok("The endpoint", ref("Endpoint"))},
                tag="endpoints",
                body=ref("Disable"),
                body_required=False,
                errors=[NOT_FOUND],
            ),
        },
        f"{item}/test": {
            "parameters": PATH_ID,
            "post": op(
                "Send a hookd.test event to this endpoint alone",
                {"202": _ok("Queued", ref("TestQueued"))},
                tag="endpoints",
                body=closed(),
                body_required=False,
                errors=[NOT_FOUND, ("409", "The endpoint is disabled"), "429"],
            ),
        },
        f"{item}/rotate-secret": {
            "parameters": PATH_ID,
            "post": op(
                "Rotate an API endpoint's secret; the old one signs on for `grace` (default 0)",
                {"200": _ok("The endpoint and its new secret, shown once", ref("EndpointRotated"))},
                tag="endpoints",
                body=ref("Rotate"),
                body_required=False,
                errors=[NOT_FOUND, ("409", "The secret lives in the YAML, or cannot be opened")],
            ),
        },
        f"{item}/replay": {
            "parameters": PATH_ID,
            "post": op(
                "Re-queue the endpoint's deliveries since a time, and deliver events it missed",
                {"202": _ok("Queued", ref("Replayed"))},
                tag="endpoints",
                body=ref("Replay"),
                body_required=False,
                errors=[NOT_FOUND],
            ),
        },
    }


def _history_paths() -> dict[str, Any]:
    params = [
        query("endpoint", STR, "endpoint id"),
        query("status", {"enum": ["pending", "succeeded", "failed"]}, "delivery status"),
        query("type", STR, "event type, or a glob like task.*"),
        query("event", STR, "event id (the webhook id receivers see)"),
        query(
            "code",
            {"type": "string", "pattern": "^([1-5][0-9]{2}|[1-5][xX]{2})$"},
            "last HTTP status: 404, or a class: 5xx",
        ),
        query(
            "limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"
        ),
        query("cursor", STR, "next_cursor of the previous page"),
    ]
    return {
        "/v1/deliveries": {
            "get": op(
                "Delivery history, newest first",
                {"200": _ok("A page of deliveries", ref("DeliveryList"))},
                tag="deliveries",
                params=params,
                errors=["400"],
            ),
        },
        "/v1/deliveries/{id}": {
            "parameters": PATH_ID,
            "get": op(
                "A delivery with its payload, request headers and every attempt",
                {"200": _ok("The delivery", ref("DeliveryDetail"))},
                tag="deliveries",
                errors=[("404", "No delivery with this id")],
            ),
        },
        "/v1/deliveries/{id}/retry": {
            "parameters": PATH_ID,
            "post": op(
                "Retry a failed delivery now (its attempts are kept)",
                {"202": _ok("Queued; the delivery as it is now", ref("Delivery"))},
                tag="deliveries",
                body=closed(),
                body_required=False,
                errors=[
                    ("404", "No delivery with this id"),
                    ("409", "The delivery is not failed, or its endpoint no longer exists"),
                ],
                description=(
                    "The delivery becomes pending, due now, and its attempt count goes on from "
                    "where it stopped. The endpoint's retry policy still decides what follows: a "
                    "delivery that used up the policy's attempts gets exactly one more attempt "
                    "(like a manual resend in Svix); one that failed on an answer the policy "
                    "does not retry has the policy's remaining attempts."
                ),
            ),
        },
        "/v1/events/{id}": {
            "parameters": PATH_ID,
            "get": op(
                "An event and its deliveries",
                {"200": _ok("The event", ref("EventDetail"))},
                tag="deliveries",
                errors=[("404", "No event with this id")],
            ),
        },
        "/v1/signing-keys": {
            "get": op(
                "Public keys of asymmetric signers (RSA SPKI PEM, ed25519 whpk_)",
                {"200": _ok("The keys", ref("SigningKeys"))},
                tag="endpoints",
            ),
        },
    }


def _ingest_paths() -> dict[str, Any]:
    idem = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    }
    return {
        "/v1/events": {
            "post": op(
                "Accept an event; answered once it and its deliveries are on disk",
                {
                    "202": _ok("Accepted", ref("IngestAnswer")),
                    "200": _ok(
                        "A repeat of an accepted event: the original answer", ref("IngestAnswer")
                    ),
                },
                tag="ingest",
                access="ingest",
                body=ref("PostedEvent"),
                params=[idem],
                errors=[("409", "This event id was accepted with other content"), "429"],
            ),
        },
        "/v1/events/batch": {
            "post": op(
                "Accept up to 1000 events atomically",
                {
                    "202": _ok("Accepted", ref("BatchAnswer")),
                    "200": _ok("Every event was a repeat", ref("BatchAnswer")),
                },
                tag="ingest",
                access="ingest",
                body=array(ref("PostedEvent"), minItems=1, maxItems=1000),
                params=[{**idem, "description": "a retried batch: event i is keyed KEY#i"}],
                errors=[("409", "An event id was accepted with other content"), "429"],
            ),
        },
    }


def _operations_paths() -> dict[str, Any]:
    text = {"text/plain": {"schema": STR}}
    return {
        "/healthz": {
            "get": op(
                "The process is alive",
                {"200": _ok("Alive", ref("Health"))},
                tag="operations",
                access="open",
            )
        },
        "/readyz": {
            "get": op(
                "The database is writable and hookd is not draining",
                {
                    "200": _ok("Ready", ref("Health")),
                    "503": _ok("Draining or the database is unavailable", ref("Health")),
                },
                tag="operations",
                access="open",
            )
        },
        "/v1/status": {
            "get": op(
                "Queues, endpoints and database size",
                {"200": _ok("Status", ref("Status"))},
                tag="operations",
            ),
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics (text format)",
                {"200": {"description": "Metrics", "content": text}},
                tag="operations",
                access="open",
            )
        },
        "/openapi.json": {
            "get": op(
                "This document",
                {"200": _ok("OpenAPI 3.1", {"type": "object"})},
                tag="operations",
                access="open",
            )
        },
        "/ui": {
            "get": op(
                "The operator web page (its calls use the admin API with a token)",
                {"200": {"description": "HTML", "content": {"text/html": {"schema": STR}}}},
                tag="operations",
                access="open",
            )
        },
        "/": {
            "get": op(
                "Redirects to /ui",
                {
                    "302": {
                        "description": "To /ui",
                        "headers": {"Location": {"schema": STR, "required": True}},
                    }
                },
                tag="operations",
                access="open",
            )
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookd",
            "version": __version__,
            "description": "Self-hosted webhook delivery: ingest events, deliver them signed, "
            "retry on policy; operate endpoints and delivery history. Every error is "
            '`{"error": {"code", "message", "field"?}}`.',
        },
        "tags": [{"name": t} for t in ("ingest", "endpoints", "deliveries", "operations")],
        "security": [{"bearer": []}],
        "paths": {
            **_ingest_paths(),
            **_endpoint_paths(),
            **_history_paths(),
            **_operations_paths(),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Ingest routes take an ingest or admin token, admin routes "
                    "an admin token. With no tokens configured (loopback only) all is open.",
                }
            },
        },
    }


DOCUMENT_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(request.app[DOCUMENT_KEY])


def add_routes(app: web.Application) -> None:
    app[DOCUMENT_KEY] = document()
    app.router.add_get("/openapi.json", get_openapi)
