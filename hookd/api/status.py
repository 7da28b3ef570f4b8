"""Status routes: ``/v1/status`` (JSON for people and the CLI) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from hookd import __version__
from hookd.api.access import ADMIN, OPEN, route
from hookd.api.http import json_response, state_of, ts
from hookd.metrics import CONTENT_TYPE
from hookd.redact import redact_url
from hookd.state import State


async def snapshot(state: State) -> dict[str, Any]:
    """The SPEC §7 status document."""
    counts = await state.store.counts_by_status()
    due = await state.store.count_due(time.time())
    scheduled = len(state.scheduler.wheel) if state.scheduler is not None else 0
    in_flight = state.dispatcher.pending_attempts() if state.dispatcher is not None else 0
    return {
        "version": __version__,
        "uptime_s": round(time.monotonic() - state.started_monotonic, 3),
        "draining": state.draining,
        "deliveries": counts,
        "due": due,
        "scheduled": scheduled,
        "in_flight": in_flight,
        "retrying": await state.store.count_retrying(),
        "endpoints": [
            {
                "id": ep.id,
                "url": redact_url(ep.config.url),
                "enabled": ep.enabled,
                "disabled_reason": ep.disabled_reason,
                "consecutive_failures": ep.consecutive_failures,
                "source": ep.source,
            }
            for ep in state.endpoints
        ],
        "db_bytes": state.store.db_bytes(),
        "nodes": [
            {
                "id": node.id,
                "host": node.host,
                "started_at": ts(node.started_at),
                "last_seen_at": ts(node.last_seen_at),
            }
            for node in await state.store.nodes()
        ],
    }


def gauges(state: State) -> dict[str, float]:
    wheel = len(state.scheduler.wheel) if state.scheduler is not None else 0
    return {
        "hookd_deliveries_pending": state.store.pending,
        "hookd_deliveries_scheduled": wheel,
        "hookd_deliveries_in_flight": (
            state.dispatcher.pending_attempts() if state.dispatcher is not None else 0
        ),
        "hookd_endpoints": len(state.endpoints),
        "hookd_endpoints_disabled": sum(1 for ep in state.endpoints if not ep.enabled),
        "hookd_wheel_size": wheel,
        "hookd_database_bytes": state.store.db_bytes(),
    }


async def get_status(request: web.Request) -> web.Response:
    return json_response(await snapshot(state_of(request)))


async def get_metrics(request: web.Request) -> web.Response:
    state = state_of(request)
    body = state.metrics.render(state.store.stats.batch_sizes)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/v1/status", get_status, ADMIN)
    route(app, "GET", "/metrics", get_metrics, OPEN)
