"""The OpenAPI document's routing part (SPEC §9, §10): the event-type catalog and trying a
payload filter."""

from __future__ import annotations

from typing import Any

from hookd.api.openapi_parts import ok, op
from hookd.api.openapi_schemas import ANY, BOOL, STR, Schema, array, closed, nullable, obj, ref

PAYLOAD_FILTER: Schema = {
    "type": "object",
    "description": "a payload filter (SPEC §9): dotted paths to literals or operator documents "
    "($eq $neq $gt $gte $lt $lte $in $nin $exist $regex), combined with $and, $or, $not",
}

SCHEMAS: dict[str, Schema] = {
    "EventTypes": obj(
        ("items",),
        items=array(
            obj(
                ("name", "description", "schema", "deprecated"),
                name=STR,
                description=nullable(STR),
                schema=nullable({"type": ["object", "boolean"]}),
                deprecated=BOOL,
            )
        ),
        strict=BOOL,
    ),
    "FilterTest": closed(
        ("filter", "event"),
        filter=PAYLOAD_FILTER,
        event=closed(("type", "data"), type=STR, tenant=nullable(STR), data=ANY),
    ),
    "FilterResult": obj(("matches",), matches=BOOL),
}


def paths() -> dict[str, Any]:
    return {
        "/v1/event-types": {
            "get": op(
                "The event-type catalog: names, descriptions, data schemas",
                {"200": ok("The catalog", ref("EventTypes"))},
                tag="routing",
                access="tenant",
            )
        },
        "/v1/filters/test": {
            "post": op(
                "Try a payload filter against a sample event",
                {"200": ok("Whether the event matches", ref("FilterResult"))},
                tag="routing",
                access="tenant",
                body=ref("FilterTest"),
            )
        },
    }
