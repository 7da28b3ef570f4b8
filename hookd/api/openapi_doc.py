"""The OpenAPI 3.1 document: every route hookd serves, what it takes and what it answers.

The document is data built once by :func:`document`. It describes what the handlers really
answer, errors included (``tests/test_openapi.py`` validates it and fuzzes a running daemon
against it), so change it together with the handlers. The schemas of bodies and answers are in
:mod:`hookd.api.openapi_schemas`; ``GET /openapi.json`` is served by :mod:`hookd.api.openapi`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hookd import __version__
from hookd.api.openapi_schemas import (
    JSON,
    SCHEMAS,
    STR,
    Schema,
    array,
    closed,
    ref,
)

# --------------------------------------------------------------------------- responses

_ERRORS = {
    "400": (
        "The request is malformed: bad JSON (or JSON hookd cannot keep: a number out of a "
        "double's range, a lone surrogate, nesting past 128 levels), an invalid field or query "
        "parameter, a body that does not decode as its Content-Encoding"
    ),
    "408": "The body did not arrive within limits.body_timeout; the connection is closed",
    "401": "No token, or an unknown one",
    "403": "An ingest token on an admin route",
    "404": "No such resource",
    "409": "A conflict with the current state",
    "413": "The body is over limits.max_body",
    "415": "The body is not JSON",
    "429": "Over capacity (limits.max_pending); retry after Retry-After seconds",
    "503": (
        "Draining, or the database is unavailable (full, read-only, locked by another process, "
        "or no answer within 10 s); retry after Retry-After seconds"
    ),
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
        codes += ["400", "408", "413", "415"]
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


def _item_action(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    body: Schema,
    errors: Iterable[str | tuple[str, str]],
    description: str | None = None,
) -> dict[str, Any]:
    """``POST /v1/<things>/{id}/<action>``: an action on one resource, its body optional."""
    return {
        "parameters": PATH_ID,
        "post": op(
            summary,
            responses,
            tag=tag,
            body=body,
            body_required=False,
            errors=errors,
            description=description,
        ),
    }


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
    }


def _endpoint_action_paths() -> dict[str, Any]:
    item = "/v1/endpoints/{id}"
    return {
        f"{item}/enable": _item_action(
            "Enable an endpoint: failures reset, held deliveries resume",
            {"200": _ok("The endpoint", ref("Endpoint"))},
            tag="endpoints",
            body=closed(),
            errors=[NOT_FOUND],
        ),
        f"{item}/disable": _item_action(
            "Disable an endpoint: no new deliveries, pending ones held",
            {"200": _ok("The endpoint", ref("Endpoint"))},
            tag="endpoints",
            body=ref("Disable"),
            errors=[NOT_FOUND],
        ),
        f"{item}/test": _item_action(
            "Send a hookd.test event to this endpoint alone",
            {"202": _ok("Queued", ref("TestQueued"))},
            tag="endpoints",
            body=closed(),
            errors=[NOT_FOUND, ("409", "The endpoint is disabled"), "429"],
        ),
        f"{item}/rotate-secret": _item_action(
            "Rotate an API endpoint's secret; the old one signs on for `grace` (default 0)",
            {"200": _ok("The endpoint and its new secret, shown once", ref("EndpointRotated"))},
            tag="endpoints",
            body=ref("Rotate"),
            errors=[NOT_FOUND, ("409", "The secret lives in the YAML, or cannot be opened")],
        ),
        f"{item}/replay": _item_action(
            "Re-queue the endpoint's deliveries since a time, and deliver events it missed",
            {"202": _ok("Queued", ref("Replayed"))},
            tag="endpoints",
            body=ref("Replay"),
            errors=[NOT_FOUND],
        ),
    }


def _delivery_query() -> list[dict[str, Any]]:
    return [
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


def _delivery_paths() -> dict[str, Any]:
    return {
        "/v1/deliveries": {
            "get": op(
                "Delivery history, newest first",
                {"200": _ok("A page of deliveries", ref("DeliveryList"))},
                tag="deliveries",
                params=_delivery_query(),
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
        "/v1/deliveries/{id}/retry": _item_action(
            "Retry a failed delivery now (its attempts are kept)",
            {"202": _ok("Queued; the delivery as it is now", ref("Delivery"))},
            tag="deliveries",
            body=closed(),
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
    }


def _event_paths() -> dict[str, Any]:
    return {
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
                    "503": _ok(
                        "Draining, or the database did not take a real write within 3 s",
                        ref("Health"),
                        Retry_After=STR,
                    ),
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
    }


def _page_paths() -> dict[str, Any]:
    return {
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
            **_endpoint_action_paths(),
            **_delivery_paths(),
            **_event_paths(),
            **_operations_paths(),
            **_page_paths(),
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
