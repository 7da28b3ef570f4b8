"""Routing routes (SPEC §9, §10): the event-type catalog, and trying a payload filter.

Both are open to tenant tokens: the catalog is what a customer picks event types from, and a
filter is tried against a sample event the caller gives, never against stored data.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hookd.api.access import TenantAllowed, route
from hookd.api.http import ApiProblem, invalid, json_response, only, read_json, state_of
from hookd.filters import FilterError, compile_filter, matches


async def event_types(request: web.Request) -> web.Response:
    state = state_of(request)
    catalog = state.config.event_types
    return json_response({"items": catalog.items(), "strict": catalog.strict})


async def test_filter(request: web.Request) -> web.Response:
    """``{"filter", "event": {"type", "tenant"?, "data"}}`` → ``{"matches"}``; 400 naming what
    is wrong with the filter (``field`` starts ``filter``) or the event."""
    state = state_of(request)
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body is {filter, event}")
    only(body, ("filter", "event"))
    if "filter" not in body:
        raise invalid("filter", "filter is required")
    try:
        matcher = compile_filter(body["filter"])
    except FilterError as exc:
        where = f"filter.{exc.path}" if exc.path else "filter"
        raise ApiProblem(400, "invalid_filter", f"{where}: {exc.message}", field=where) from exc
    event = _sample(body.get("event"))
    found = matches(matcher, type=event["type"], tenant=event.get("tenant"), data=event["data"])
    return json_response({"matches": found})


def _sample(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("event", "event is an object with type and data (and tenant)")
    only(value, ("type", "tenant", "data"), "event.")
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise invalid("event.type", "event.type is a non-empty string")
    if "data" not in value:
        raise invalid("event.data", "event.data is required (any JSON value)")
    tenant = value.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise invalid("event.tenant", "event.tenant is a string or null")
    return value


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/v1/event-types", event_types, TenantAllowed())
    route(app, "POST", "/v1/filters/test", test_filter, TenantAllowed())
