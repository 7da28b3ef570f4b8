"""The OpenAPI 3.1 document: every route hookd serves, what it takes and what it answers.

The document is data built once by :func:`document`. It describes what the handlers really
answer, errors included (``tests/test_openapi.py`` validates it and fuzzes a running daemon
against it), so change it together with the handlers. The schemas of bodies and answers are in
:mod:`hookd.api.openapi_schemas`; ``GET /openapi.json`` is served by :mod:`hookd.api.openapi`.
"""

from __future__ import annotations

from typing import Any

from hookd import __version__
from hookd.api import openapi_routing, openapi_stats, openapi_tenants
from hookd.api.openapi_parts import NOT_FOUND, PATH_ID, YAML_OWNED, item_action, ok, op, query
from hookd.api.openapi_schemas import SCHEMAS, STR, array, closed, ref


def _endpoint_paths() -> dict[str, Any]:
    item = "/v1/endpoints/{id}"
    return {
        "/v1/endpoints": {
            "get": op(
                "List endpoints",
                {"200": ok("Every endpoint (a tenant token: its own)", ref("EndpointList"))},
                tag="endpoints",
                access="tenant",
                params=[query("tenant", STR, "only the endpoints of this tenant")],
                errors=["400"],
            ),
            "post": op(
                "Create an endpoint (API-owned); the answer shows its secret once",
                {"201": ok("Created", ref("EndpointCreated"), Location=STR)},
                tag="endpoints",
                access="tenant",
                body=ref("EndpointCreate"),
                errors=[("409", "An endpoint with this id exists, or the tenant has its maximum")],
            ),
        },
        item: {
            "parameters": PATH_ID,
            "get": op(
                "Show an endpoint",
                {"200": ok("The endpoint", ref("Endpoint"))},
                tag="endpoints",
                access="tenant",
                errors=[NOT_FOUND],
            ),
            "patch": op(
                "Change an API endpoint's settings",
                {"200": ok("The endpoint as changed", ref("Endpoint"))},
                tag="endpoints",
                access="tenant",
                body=ref("EndpointPatch"),
                errors=[NOT_FOUND, YAML_OWNED],
            ),
            "delete": op(
                "Delete an API endpoint with its delivery history",
                {"204": ok("Deleted")},
                tag="endpoints",
                access="tenant",
                errors=[NOT_FOUND, YAML_OWNED],
            ),
        },
    }


def _endpoint_action_paths() -> dict[str, Any]:
    item = "/v1/endpoints/{id}"
    return {
        f"{item}/enable": item_action(
            "Enable an endpoint: failures reset, held deliveries resume",
            {"200": ok("The endpoint", ref("Endpoint"))},
            tag="endpoints",
            access="tenant",
            body=closed(),
            errors=[NOT_FOUND],
        ),
        f"{item}/disable": item_action(
            "Disable an endpoint: no new deliveries, pending ones held",
            {"200": ok("The endpoint", ref("Endpoint"))},
            tag="endpoints",
            access="tenant",
            body=ref("Disable"),
            errors=[NOT_FOUND],
        ),
        f"{item}/test": item_action(
            "Send a hookd.test event to this endpoint alone",
            {"202": ok("Queued", ref("TestQueued"))},
            tag="endpoints",
            access="tenant",
            body=closed(),
            errors=[NOT_FOUND, ("409", "The endpoint is disabled"), "429"],
        ),
        f"{item}/rotate-secret": item_action(
            "Rotate an API endpoint's secret; the old one signs on for `grace` (default 0)",
            {"200": ok("The endpoint and its new secret, shown once", ref("EndpointRotated"))},
            tag="endpoints",
            access="tenant",
            body=ref("Rotate"),
            errors=[NOT_FOUND, ("409", "The secret lives in the YAML, or cannot be opened")],
        ),
        f"{item}/replay": item_action(
            "Re-queue the endpoint's deliveries since a time, and deliver events it missed",
            {"202": ok("Queued", ref("Replayed"))},
            tag="endpoints",
            access="tenant",
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
        query("tenant", STR, "the event's tenant"),
        query("cursor", STR, "next_cursor of the previous page"),
    ]


def _delivery_paths() -> dict[str, Any]:
    return {
        "/v1/deliveries": {
            "get": op(
                "Delivery history, newest first",
                {"200": ok("A page of deliveries", ref("DeliveryList"))},
                tag="deliveries",
                access="tenant",
                params=_delivery_query(),
                errors=["400"],
            ),
        },
        "/v1/deliveries/{id}": {
            "parameters": PATH_ID,
            "get": op(
                "A delivery with its payload, request headers and every attempt",
                {"200": ok("The delivery", ref("DeliveryDetail"))},
                tag="deliveries",
                access="tenant",
                errors=[("404", "No delivery with this id")],
            ),
        },
        "/v1/deliveries/{id}/retry": item_action(
            "Retry a failed delivery now (its attempts are kept)",
            {"202": ok("Queued; the delivery as it is now", ref("Delivery"))},
            tag="deliveries",
            access="tenant",
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
                {"200": ok("The event", ref("EventDetail"))},
                tag="deliveries",
                access="tenant",
                errors=[("404", "No event with this id")],
            ),
        },
        "/v1/signing-keys": {
            "get": op(
                "Public keys of asymmetric signers (RSA SPKI PEM, ed25519 whpk_)",
                {"200": ok("The keys", ref("SigningKeys"))},
                tag="endpoints",
                access="tenant",
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
                    "202": ok("Accepted", ref("IngestAnswer")),
                    "200": ok(
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
                    "202": ok("Accepted", ref("BatchAnswer")),
                    "200": ok("Every event was a repeat", ref("BatchAnswer")),
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
                {"200": ok("Alive", ref("Health"))},
                tag="operations",
                access="open",
            )
        },
        "/readyz": {
            "get": op(
                "The database is writable and hookd is not draining",
                {
                    "200": ok("Ready", ref("Health")),
                    "503": ok(
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
                {"200": ok("Status", ref("Status"))},
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
                {"200": ok("OpenAPI 3.1", {"type": "object"})},
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
        "/ui/": {
            "get": op(
                "The same page; a tenant's portal link is /ui/#token=<tenant token>",
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
        "tags": [
            {"name": t}
            for t in ("ingest", "endpoints", "deliveries", "tenants", "routing", "operations")
        ],
        "security": [{"bearer": []}],
        "paths": {
            **_ingest_paths(),
            **_endpoint_paths(),
            **_endpoint_action_paths(),
            **_delivery_paths(),
            **_event_paths(),
            **openapi_tenants.paths(),
            **openapi_stats.paths(),
            **openapi_routing.paths(),
            **_operations_paths(),
            **_page_paths(),
        },
        "components": {
            "schemas": {
                **SCHEMAS,
                **openapi_tenants.SCHEMAS,
                **openapi_routing.SCHEMAS,
                **openapi_stats.SCHEMAS,
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Ingest routes take an ingest or admin token, admin routes "
                    "an admin token. With no tokens configured (loopback only) all is open.",
                },
                "tenantToken": openapi_tenants.SECURITY_SCHEME,
            },
        },
    }
