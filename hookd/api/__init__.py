"""The HTTP API (SPEC §3): one aiohttp application, assembled by :func:`make_app`.

Bottom up: :mod:`~hookd.api.http` (state, the JSON error model, bodies in and out),
:mod:`~hookd.api.middleware` (errors, tokens), one module per route group
(:mod:`~hookd.api.ingest`, :mod:`~hookd.api.endpoints`, :mod:`~hookd.api.deliveries`,
:mod:`~hookd.api.status`, :mod:`~hookd.api.openapi`, :mod:`~hookd.api.ui`) with their helpers
(:mod:`~hookd.api.endpoint_settings`, :mod:`~hookd.api.shapes`, the OpenAPI document in
:mod:`~hookd.api.openapi_doc` and :mod:`~hookd.api.openapi_schemas`), and :mod:`~hookd.api.app`
on top.
"""

from __future__ import annotations

from hookd.api.app import make_app

__all__ = ["make_app"]
