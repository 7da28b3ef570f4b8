"""Endpoints as the running daemon sees them: YAML ones and API-created ones, resolved.

Bottom up: :mod:`~hookd.endpoints.keys` (signing keys, sealed for API endpoints),
:mod:`~hookd.endpoints.model` (an :class:`Endpoint` and how one is built from its settings),
:mod:`~hookd.endpoints.table` (the live table ingest routes through and the dispatcher reads).
"""

from __future__ import annotations

from hookd.endpoints.keys import config_keys, new_secret, open_keys, seal_keys
from hookd.endpoints.model import (
    Endpoint,
    api_endpoint_config,
    build,
    compile_patterns,
    resolve_config,
)
from hookd.endpoints.table import EndpointTable, load_table

__all__ = [
    "Endpoint",
    "EndpointTable",
    "api_endpoint_config",
    "build",
    "compile_patterns",
    "config_keys",
    "load_table",
    "new_secret",
    "open_keys",
    "resolve_config",
    "seal_keys",
]
