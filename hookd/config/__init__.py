"""The YAML configuration, parsed once into frozen dataclasses (SPEC §5).

Every problem is collected (not just the first) as ``FILE:LINE: key.path: message``. Scalars may
use ``${VAR}``; signing secrets may come from ``secret_file``. Unknown keys are errors.

The package, bottom up: :mod:`~hookd.config.paths` (key paths and their lines),
:mod:`~hookd.config.model` (the dataclasses), :mod:`~hookd.config.values` (value parsers, shared
with the admin API), :mod:`~hookd.config.yamlread` (YAML with line numbers),
:mod:`~hookd.config.sections` (the schema) and :mod:`~hookd.config.loader` (files).
"""

from __future__ import annotations

from hookd.config.loader import (
    EMBEDDED_DEFAULT,
    find_config_path,
    load,
    load_partial,
    parse,
)
from hookd.config.model import (
    EMBEDDED_SOURCE,
    AuthConfig,
    Config,
    DeliveryConfig,
    EndpointConfig,
    LimitsConfig,
    ListenAddress,
    LogConfig,
    PluginConfig,
    SigningConfig,
    StorageConfig,
)
from hookd.config.paths import by_line
from hookd.config.sections import BUILTIN_SCHEMES, KEY_SOURCES, SCHEMA

__all__ = [
    "BUILTIN_SCHEMES",
    "EMBEDDED_DEFAULT",
    "EMBEDDED_SOURCE",
    "KEY_SOURCES",
    "SCHEMA",
    "AuthConfig",
    "Config",
    "DeliveryConfig",
    "EndpointConfig",
    "LimitsConfig",
    "ListenAddress",
    "LogConfig",
    "PluginConfig",
    "SigningConfig",
    "StorageConfig",
    "by_line",
    "find_config_path",
    "load",
    "load_partial",
    "parse",
]
