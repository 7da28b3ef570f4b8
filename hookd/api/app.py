"""The one application: ingest, health, admin, status, metrics, OpenAPI and the web page."""

from __future__ import annotations

from aiohttp import web

from hookd.api import catalog, deliveries, endpoints, ingest, openapi, stats, status, tenants, ui
from hookd.api.access import access_middleware
from hookd.api.http import STATE
from hookd.api.middleware import errors_middleware
from hookd.api.server import connection_middleware
from hookd.state import State


def make_app(state: State) -> web.Application:
    """Every route on one application; errors leave as JSON, then the access layer decides."""
    app = web.Application(
        middlewares=[connection_middleware, errors_middleware, access_middleware],
        client_max_size=state.config.limits.max_body + 1024,
    )
    app[STATE] = state
    ingest.add_routes(app)
    status.add_routes(app)
    endpoints.add_routes(app)
    deliveries.add_routes(app)
    tenants.add_routes(app)
    stats.add_routes(app)
    catalog.add_routes(app)
    openapi.add_routes(app)
    ui.add_routes(app)
    return app
