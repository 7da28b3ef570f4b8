"""Admin routes (SPEC §3): endpoints, deliveries, events, signing keys."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    return None
