"""Endpoints as the running daemon sees them: YAML ones and API-created ones, resolved.

An :class:`Endpoint` joins its settings (``EndpointConfig``), its retry policy, its signer, its
body format and its live state (enabled, consecutive failures). Ingest routes events through
:meth:`EndpointTable.route`; the dispatcher and the admin API look endpoints up by id.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hookd import policy as retry
from hookd.config import Config, EndpointConfig, SigningConfig
from hookd.errors import HookdError
from hookd.redact import redact_headers, redact_url
from hookd.registry import (
    BodyFormat,
    EndpointView,
    Event,
    Filter,
    Registry,
    Signer,
    SignerConfig,
    SigningKey,
)
from hookd.secretbox import SecretBox
from hookd.store import EndpointRow


@dataclass(kw_only=True, slots=True, eq=False)
class Endpoint:
    config: EndpointConfig
    source: str  # "config" | "api"
    policy: retry.RetryPolicy
    signer: Signer
    body: BodyFormat
    filter: Filter | None
    pattern: re.Pattern[str]
    enabled: bool = True
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    view: EndpointView = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        self.view = EndpointView(id=c.id, url=c.url, events=c.events, options=c.options)

    @property
    def id(self) -> str:
        return self.config.id

    def wants(self, event: Event) -> bool:
        if not self.pattern.match(event.type):
            return False
        return self.filter is None or bool(self.filter(event, self.view))

    def to_json(self) -> dict[str, Any]:
        """The public shape of SPEC §7 (never a secret, nor a password in the URL)."""
        c = self.config
        return {
            "id": c.id,
            "url": redact_url(c.url),
            "events": list(c.events),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "consecutive_failures": self.consecutive_failures,
            "source": self.source,
            "policy": c.policy,
            "body": c.body,
            "signing": {"scheme": c.signing.scheme},
            "headers": redact_headers(c.headers),
            "rate_limit": c.rate_limit,
            "max_in_flight": c.max_in_flight,
            "ordering": c.ordering,
        }


def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a list of globs (``task.*``, ``*``, ``invoice.?aid``)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def build(
    config: EndpointConfig,
    *,
    source: str,
    keys: tuple[SigningKey, ...],
    policies: Mapping[str, retry.RetryPolicy],
    registry: Registry,
) -> Endpoint:
    """Resolve names (policy, scheme, body, filter) into callables. Raises HookdError."""
    if config.policy not in policies:
        raise HookdError(f"no policy named {config.policy!r}")
    factory = registry.signers.get(config.signing.scheme)
    if factory is None:
        known = ", ".join(sorted(registry.signers))
        raise HookdError(f"no signing scheme named {config.signing.scheme!r} (known: {known})")
    body = registry.formats.get(config.body)
    if body is None:
        known = ", ".join(sorted(registry.formats))
        raise HookdError(f"no body format named {config.body!r} (known: {known})")
    flt = None
    if config.filter is not None:
        flt = registry.filters.get(config.filter)
        if flt is None:
            raise HookdError(f"no filter named {config.filter!r}")
    s = config.signing
    try:
        signer = factory(
            SignerConfig(
                scheme=s.scheme, keys=keys, header=s.header, prefix=s.prefix, options=s.options
            )
        )
    except (ValueError, TypeError) as exc:
        raise HookdError(f"signing: {exc}") from exc
    return Endpoint(
        config=config,
        source=source,
        policy=policies[config.policy],
        signer=signer,
        body=body,
        filter=flt,
        pattern=compile_patterns(config.events),
    )


def config_keys(signing: SigningConfig) -> tuple[SigningKey, ...]:
    material = signing.private_key if signing.private_key is not None else signing.secret
    return (SigningKey(material=material),) if material else ()


def resolve_config(config: Config, registry: Registry) -> tuple[dict[str, Endpoint], list[str]]:
    """Build every YAML endpoint; problems come back as ``FILE:LINE: path: message``."""
    out: dict[str, Endpoint] = {}
    problems: list[str] = []
    for i, ep in enumerate(config.endpoints):
        try:
            out[ep.id] = build(
                ep,
                source="config",
                keys=config_keys(ep.signing),
                policies=config.policies,
                registry=registry,
            )
        except HookdError as exc:
            problems.append(f"{config.where_item('endpoints', i)}: {exc}")
    return out, problems


def api_endpoint_config(endpoint_id: str, spec: Mapping[str, Any]) -> EndpointConfig:
    """An API-created endpoint's stored settings as an EndpointConfig."""
    signing = spec.get("signing") or {}
    return EndpointConfig(
        id=endpoint_id,
        url=spec["url"],
        events=tuple(spec.get("events") or ("*",)),
        policy=spec.get("policy", "standard"),
        body=spec.get("body", "standard"),
        signing=SigningConfig(
            scheme=signing.get("scheme", "standard-webhooks"),
            header=signing.get("header"),
            prefix=signing.get("prefix"),
        ),
        headers=dict(spec.get("headers") or {}),
        rate_limit=spec.get("rate_limit"),
        max_in_flight=spec.get("max_in_flight"),
        ordering=spec.get("ordering", "none"),
        filter=spec.get("filter"),
        options=dict(spec.get("options") or {}),
    )


def open_keys(
    endpoint_id: str, sealed: list[dict[str, Any]], box: SecretBox | None, now: float
) -> tuple[SigningKey, ...]:
    """Unseal an API endpoint's live keys (newest first), dropping those past their grace."""
    keys = []
    for item in sealed:
        expires = item.get("expires_at")
        if expires is not None and expires <= now:
            continue
        material = (
            item["secret"] if box is None else box.open(item["secret"], aad=_aad(endpoint_id))
        )
        keys.append(SigningKey(material=material, expires_at=expires))
    return tuple(keys)


def seal_keys(
    endpoint_id: str, keys: list[tuple[str, float | None]], box: SecretBox | None
) -> list[dict[str, Any]]:
    return [
        {
            "secret": material if box is None else box.seal(material, aad=_aad(endpoint_id)),
            "expires_at": expires,
        }
        for material, expires in keys
    ]


def _aad(endpoint_id: str) -> bytes:
    return f"hookd-endpoint:{endpoint_id}".encode()


class EndpointTable:
    """Every endpoint by id, in a stable order, with their live state."""

    def __init__(self) -> None:
        self._by_id: dict[str, Endpoint] = {}

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.get(endpoint_id)

    def put(self, endpoint: Endpoint) -> None:
        self._by_id[endpoint.id] = endpoint

    def replace_all(self, other: EndpointTable) -> None:
        """Take another table's endpoints (a reload), keeping this object shared."""
        self._by_id = dict(other._by_id)

    def remove(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.pop(endpoint_id, None)

    def route(self, event: Event) -> list[Endpoint]:
        """Enabled endpoints that subscribe to this event."""
        return [ep for ep in self._by_id.values() if ep.enabled and ep.wants(event)]

    def apply_state(self, row: EndpointRow) -> None:
        ep = self._by_id.get(row.id)
        if ep is not None:
            ep.enabled = row.enabled
            ep.disabled_reason = row.disabled_reason
            ep.consecutive_failures = row.consecutive_failures


def load_table(
    config: Config,
    configured: dict[str, Endpoint],
    rows: list[EndpointRow],
    registry: Registry,
    box: SecretBox | None,
) -> tuple[EndpointTable, list[str]]:
    """The table from resolved YAML endpoints plus the database's rows (state and API ones)."""
    table = EndpointTable()
    problems: list[str] = []
    now = time.time()
    for ep in configured.values():
        table.put(ep)
    for row in rows:
        if row.source == "api" and row.id not in configured:
            try:
                ep = build(
                    api_endpoint_config(row.id, row.spec),
                    source="api",
                    keys=open_keys(row.id, row.secrets, box, now),
                    policies=config.policies,
                    registry=registry,
                )
            except (HookdError, KeyError) as exc:
                problems.append(f"endpoint {row.id}: {exc}")
                continue
            table.put(ep)
        table.apply_state(row)
    return table, problems
