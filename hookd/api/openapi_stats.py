"""The OpenAPI document's stats part (SPEC §14): an endpoint's stats, the whole daemon's, and
the web page's static files."""

from __future__ import annotations

from typing import Any

from hookd.api.openapi_parts import NOT_FOUND, PATH_ID, ok, op, query
from hookd.api.openapi_schemas import INT, STR, TIME, Schema, array, nullable, obj, ref

_WINDOW = query(
    "window",
    {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$", "default": "24h"},
    "a duration from 1m to 30d; up to 24h the window has minute resolution (every minute that "
    "overlaps it, and by_minute), beyond that hour resolution",
)
_RATE: Schema = nullable({"type": "number", "minimum": 0, "maximum": 1})
_TALLY: dict[str, Schema] = {
    "attempts": INT,
    "succeeded": INT,
    "failed": INT,
    "success_rate": _RATE,
    "latency_ms": obj(
        ("p50", "p99"),
        p50=nullable({"type": "number"}),
        p99=nullable({"type": "number"}),
    ),
    "last_success_at": nullable(TIME),
    "last_failure_at": nullable(TIME),
}
_TALLY_FIELDS = tuple(_TALLY)
_STATS: dict[str, Schema] = {
    "window": STR,
    **_TALLY,
    "since": {**TIME, "description": "the start of the first minute (or hour) counted"},
    "until": {**TIME, "description": "now"},
    "by_minute": array(
        obj(("minute", "succeeded", "failed"), minute=TIME, succeeded=INT, failed=INT),
        description="every minute of the window, oldest first (windows up to 24h only)",
    ),
}

SCHEMAS: dict[str, Schema] = {
    "EndpointStats": obj(
        ("endpoint", "window", *_TALLY_FIELDS, "since", "until"), endpoint=STR, **_STATS
    ),
    "DaemonStats": obj(
        ("window", *_TALLY_FIELDS, "since", "until", "endpoints", "tenants"),
        **_STATS,
        endpoints=array(
            obj(
                ("endpoint", "tenant", *_TALLY_FIELDS),
                endpoint=STR,
                tenant=nullable(STR),
                **_TALLY,
            )
        ),
        tenants=array(
            obj(
                ("tenant", "attempts", "succeeded", "failed", "failure_rate"),
                tenant=STR,
                attempts=INT,
                succeeded=INT,
                failed=INT,
                failure_rate=_RATE,
            )
        ),
    ),
}

_ABOUT = (
    "Attempts in the window: an attempt succeeded when it got a 2xx in time, failed otherwise "
    "(a failed attempt may be retried). Latency percentiles are nearest-rank, exact up to "
    "10,000 attempts in the window, within 1% beyond (a log histogram)."
)


def paths() -> dict[str, Any]:
    return {
        "/v1/endpoints/{id}/stats": {
            "parameters": PATH_ID,
            "get": op(
                "An endpoint's attempts, success rate and latency over a window",
                {"200": ok("The endpoint's stats", ref("EndpointStats"))},
                tag="endpoints",
                access="tenant",
                params=[_WINDOW],
                errors=[NOT_FOUND, ("400", "Not a window from 1m to 30d")],
                description=_ABOUT,
            ),
        },
        "/v1/stats": {
            "get": op(
                "The whole daemon's attempts over a window, by endpoint and by tenant",
                {"200": ok("The daemon's stats", ref("DaemonStats"))},
                tag="operations",
                params=[_WINDOW],
                errors=[("400", "Not a window from 1m to 30d")],
                description=_ABOUT + " A tenant's figures are those of its own endpoints.",
            ),
        },
        "/ui/static/{version}/{name}": {
            "parameters": [
                {"name": "version", "in": "path", "required": True, "schema": STR},
                {"name": "name", "in": "path", "required": True, "schema": STR},
            ],
            "get": op(
                "A static file of the web page (cached for a year: the path names the version)",
                {
                    "200": {
                        "description": "The file",
                        "content": {
                            "text/javascript": {"schema": STR},
                            "text/css": {"schema": STR},
                        },
                    }
                },
                tag="operations",
                access="open",
                errors=[("404", "No such file, or another version's")],
            ),
        },
    }
