"""The OpenAPI 3.1 schemas of hookd's bodies and answers, and the helpers that spell them.

Pure data; :mod:`hookd.api.openapi_doc` puts them in the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
TENANT_ID: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}
ENDPOINT_TENANT: Schema = {
    "anyOf": [TENANT_ID, {"const": "*"}, {"type": "null"}],
    "description": 'a tenant id (only its events), "*" (every tenant\'s and untenanted '
    "events), or null (untenanted events only); fixed when the endpoint is created",
}
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
    "headers": {
        **HEADERS,
        "description": (
            "extra request headers; answers show every value as [redacted], and a "
            "[redacted] value sent back on PATCH keeps the stored one"
        ),
    },
    "rate_limit": nullable(
        {
            "oneOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*/\s*(s|m|h)\s*$"},
                {"type": "number", "minimum": 1 / 3600, "maximum": 1_000_000},
            ],
            "description": "from 1/h to 1000000/s",
        }
    ),
    "max_in_flight": nullable({"type": "integer", "minimum": 1}),
    "ordering": {"enum": ["none", "fifo"]},
    "filter": {
        "anyOf": [
            {"type": "string", "minLength": 1, "description": "a plugin filter's name"},
            {"type": "object", "description": "a payload filter (SPEC §9)"},
            {"type": "null"},
        ]
    },
    "options": {"type": "object"},
    "tls": nullable(
        {
            **closed(
                (),
                ca_pem=nullable({"type": "string", "description": "PEM CA (or bundle)"}),
                client_cert_pem=nullable({"type": "string", "description": "PEM certificate"}),
                client_key_pem=nullable({"type": "string", "description": "PEM private key"}),
            ),
            "description": (
                "client TLS for an https:// URL: a private CA that verifies the receiver, a "
                "client certificate and its key for mutual TLS; stored sealed, never shown. "
                "On PATCH a part given replaces, a null part removes; tls: null removes all"
            ),
        }
    ),
}
TLS_SHOWN: Schema = nullable(
    obj(
        ("ca", "client_cert", "client_cert_subject", "client_cert_expires_at"),
        ca=BOOL,
        client_cert=BOOL,
        client_cert_subject=nullable(STR),
        client_cert_expires_at=nullable(TIME),
    )
)

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
    headers={
        "type": "object",
        "additionalProperties": {"const": "[redacted]"},
        "description": "the endpoint's own headers: names, every value hidden",
    },
    rate_limit=nullable({"type": "number", "description": "requests per second"}),
    max_in_flight=nullable(INT),
    ordering={"enum": ["none", "fifo"]},
    filter={"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "null"}]},
    tenant=ENDPOINT_TENANT,
    tls=TLS_SHOWN,
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
    tenant=nullable({**TENANT_ID, "description": "the event's tenant"}),
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
        tenant=nullable({**TENANT_ID, "description": "the tenant (customer) the event belongs to"}),
    ),
    "IngestAnswer": INGEST_ANSWER,
    "BatchAnswer": obj(["items"], items=array(ref("IngestAnswer"))),
    "Endpoint": ENDPOINT,
    "EndpointCreate": closed(["url"], id=ENDPOINT_ID, tenant=ENDPOINT_TENANT, **_SETTINGS),
    "EndpointPatch": closed((), tenant=ENDPOINT_TENANT, **_SETTINGS),
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
        tenant=nullable(TENANT_ID),
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
        retrying={**INT, "description": "pending deliveries waiting for a retry"},
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
        nodes=array(
            obj(
                ("id", "host", "started_at", "last_seen_at"),
                id=STR,
                host=STR,
                started_at=STR,
                last_seen_at=STR,
            )
        ),
    ),
    "Health": obj(["status"], status=STR, error=STR),
}
