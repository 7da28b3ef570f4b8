"""The OpenAPI document's tenant part (SPEC §8): the routes and schemas of tenants and their
tokens, and the tenant-token security scheme."""

from __future__ import annotations

from typing import Any

from hookd.api.openapi_parts import ok, op
from hookd.api.openapi_schemas import (
    INT,
    STR,
    TENANT_ID,
    TIME,
    Schema,
    array,
    closed,
    obj,
    ref,
)

PATH_TENANT = [{"name": "tenant", "in": "path", "required": True, "schema": TENANT_ID}]
BAD_TENANT = ("400", "Not a tenant id, or a bad ttl")

SCHEMAS: dict[str, Schema] = {
    "TenantList": obj(
        ("items", "next_cursor"),
        items=array(
            obj(
                ("tenant", "endpoints", "deliveries"),
                tenant=TENANT_ID,
                endpoints=INT,
                deliveries=obj(
                    ("pending", "succeeded", "failed"), pending=INT, succeeded=INT, failed=INT
                ),
            )
        ),
        next_cursor={"anyOf": [STR, {"type": "null"}]},
    ),
    "TokenRequest": closed(
        (),
        ttl={
            "anyOf": [STR, {"type": "number", "minimum": 1, "maximum": 2592000}],
            "description": "how long the token works: 1s to 30d (default 1h)",
        },
    ),
    "TenantToken": obj(
        ("token", "tenant", "expires_at", "portal_path"),
        token={"type": "string", "description": "a JWT; send it as Authorization: Bearer"},
        tenant=TENANT_ID,
        expires_at=TIME,
        portal_path={"type": "string", "examples": ["/ui/#token=eyJ..."]},
    ),
    "Revoked": obj(("tenant", "revoked"), tenant=TENANT_ID, revoked={"const": True}),
}

SECURITY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A tenant token (POST /v1/tenants/{tenant}/tokens): the routes that accept "
    "it answer for that tenant's endpoints only; any other tenant's endpoint, delivery or "
    "event is 404 as if absent, and every other route is 403.",
}


def paths() -> dict[str, Any]:
    return {
        "/v1/tenants": {
            "get": op(
                "Every tenant with an endpoint or an event, with its delivery counts",
                {"200": ok("A page of tenants", ref("TenantList"))},
                tag="tenants",
                params=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {"name": "cursor", "in": "query", "required": False, "schema": STR},
                ],
                errors=["400"],
            )
        },
        "/v1/tenants/{tenant}/tokens": {
            "parameters": PATH_TENANT,
            "post": op(
                "Mint a tenant token, and the portal link that uses it",
                {"201": ok("The token (shown once)", ref("TenantToken"))},
                tag="tenants",
                body=ref("TokenRequest"),
                body_required=False,
                errors=[BAD_TENANT],
            ),
        },
        "/v1/tenants/{tenant}/revoke-tokens": {
            "parameters": PATH_TENANT,
            "post": op(
                "Revoke every token issued for the tenant so far, at once",
                {"200": ok("Revoked", ref("Revoked"))},
                tag="tenants",
                body=closed(),
                body_required=False,
                errors=[BAD_TENANT],
            ),
        },
    }
