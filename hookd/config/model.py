"""The configuration as the daemon uses it: frozen, keyword-only dataclasses (SPEC §5).

:mod:`hookd.config.sections` builds them from the YAML; their defaults are hookd's defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hookd.catalog import Catalog
from hookd.config.paths import join, line_for
from hookd.delivery import policy as retry
from hookd.delivery.tls import TLSConfig

EMBEDDED_SOURCE = "<embedded default>"


@dataclass(frozen=True, kw_only=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthConfig:
    ingest_tokens: tuple[str, ...] = field(default=(), repr=False)
    admin_tokens: tuple[str, ...] = field(default=(), repr=False)

    @property
    def open(self) -> bool:
        return not self.ingest_tokens and not self.admin_tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class StorageConfig:
    backend: Literal["sqlite", "postgres"] = "sqlite"
    dsn: str | None = field(default=None, repr=False)  # postgres: libpq string or URL
    path: Path = Path("hookd.db")
    synchronous: Literal["off", "normal", "full", "extra"] = "full"
    retention: float = 30 * 86400.0
    secret_key: str | None = field(default=None, repr=False)  # seals API-created endpoint secrets
    # postgres: a claim's lease outlives the attempt's timeout by this much (SPEC §12: 30 s)
    lease_slack: float = 30.0


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitsConfig:
    max_body: int = 1024 * 1024
    max_pending: int = 1_000_000
    max_endpoints_per_tenant: int = 100
    header_timeout: float = 10.0  # a request's head (line and headers) must arrive within it
    body_timeout: float = 30.0  # and its body within this, once the head is in
    idle_timeout: float = 75.0  # an open connection with no request in progress is closed


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryConfig:
    concurrency: int = 256
    allow_private_networks: bool = False
    max_response_body: int = 4096
    proxy: str | None = field(default=None, repr=False)  # http://[user:password@]host:port


@dataclass(frozen=True, kw_only=True, slots=True)
class SigningConfig:
    scheme: str = "standard-webhooks"
    secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # PEM text from private_key_file
    header: str | None = None
    prefix: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointConfig:
    id: str
    url: str
    events: tuple[str, ...] = ("*",)
    policy: str = "standard"
    body: str = "standard"
    signing: SigningConfig = field(default_factory=SigningConfig)
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: float | None = None  # requests per second
    max_in_flight: int | None = None
    ordering: Literal["none", "fifo"] = "none"
    filter: str | Mapping[str, Any] | None = None  # a plugin filter's name, or a payload filter
    options: Mapping[str, Any] = field(default_factory=dict)
    tenant: str | None = None  # a tenant id, "*" (every tenant's events), or None (untenanted)
    tls: TLSConfig | None = None  # a private CA, a client certificate (SPEC §13)


@dataclass(frozen=True, kw_only=True, slots=True)
class PluginConfig:
    path: Path | None = None
    module: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else str(self.module)


@dataclass(frozen=True, kw_only=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    source: str = EMBEDDED_SOURCE
    listen: tuple[ListenAddress, ...] = (ListenAddress(host="127.0.0.1", port=8080),)
    shutdown_timeout: float = 30.0
    auth: AuthConfig = field(default_factory=AuthConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    policies: Mapping[str, retry.RetryPolicy] = field(default_factory=lambda: dict(retry.PRESETS))
    endpoints: tuple[EndpointConfig, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()
    log: LogConfig = field(default_factory=LogConfig)
    event_types: Catalog = field(default_factory=Catalog)
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)
    # The YAML path of each list item that parsed, by (section, position among those that did):
    # when an item failed (``hookd check`` goes on), the ones after it keep their own lines.
    item_paths: Mapping[tuple[str, int], str] = field(
        default_factory=dict, repr=False, compare=False
    )

    def where(self, path: str) -> str:
        """``FILE:LINE: path`` for messages about a key found after loading (plugins, signers)."""
        return f"{self.source}:{line_for(self.lines, path)}: {path}"

    def where_item(self, section: str, index: int) -> str:
        """:meth:`where` for ``config.endpoints[index]`` (or ``plugins``): its place in the file."""
        return self.where(self.item_paths.get((section, index), join(section, index)))

    def summary(self) -> str:
        return (
            f"ok: {len(self.endpoints)} endpoints, {len(self.policies)} policies, "
            f"{len(self.plugins)} plugins"
        )
