"""An endpoint as the running daemon sees it: its settings with every name resolved.

An :class:`Endpoint` joins its settings (``EndpointConfig``), its retry policy, its signer, its
body format and its live state (enabled, consecutive failures). :func:`build` resolves the names;
YAML endpoints come from :func:`resolve_config`, API ones from their stored settings through
:func:`api_endpoint_config`.
"""

from __future__ import annotations

import fnmatch
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hookd.config import Config, EndpointConfig, SigningConfig
from hookd.delivery import policy as retry
from hookd.delivery.client import USER_AGENT
from hookd.delivery.lanes import limits_of
from hookd.delivery.tls import TLSConfig, TLSProblem, make_context, summary
from hookd.endpoints.keys import config_keys
from hookd.errors import HookdError
from hookd.filters import FilterError, Matcher, shared_filter
from hookd.redact import hide_values, redact_url
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
from hookd.store import Limits

OWN_PREFIX = "hookd."  # hookd's own event types (operational events, hookd.test)


@dataclass(kw_only=True, slots=True, eq=False)
class Endpoint:
    config: EndpointConfig
    source: str  # "config" | "api"
    policy: retry.RetryPolicy
    signer: Signer
    body: BodyFormat
    filter: Filter | None  # a plugin's filter (run fenced: hookd.isolation)
    pattern: re.Pattern[str]  # every ``events`` glob, for application events
    own_pattern: re.Pattern[str] | None = None  # the ``hookd.``-prefixed globs (operational)
    payload: Matcher | None = None  # a payload filter (SPEC §9), compiled once
    enabled: bool = True
    disabled_reason: str | None = None
    consecutive_failures: int = 0
    plugins: Mapping[str, str] = field(default_factory=dict)  # part -> the plugin it came from
    ssl: ssl.SSLContext | None = None  # its TLS settings, built once, used by every attempt
    view: EndpointView = field(init=False)
    headers: Mapping[str, str] = field(init=False)  # every request's, before its signature
    limits: Limits = field(init=False)  # what each claim of its deliveries is held to

    def __post_init__(self) -> None:
        c = self.config
        self.view = EndpointView(id=c.id, url=c.url, events=c.events, options=c.options)
        self.headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **c.headers}
        self.limits = limits_of(c)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def tenant(self) -> str | None:
        return self.config.tenant

    def serves(self, tenant: str | None) -> bool:
        """SPEC §8: T's events go to T's and ``"*"`` endpoints, untenanted ones to untenanted
        and ``"*"`` endpoints, nothing else, ever."""
        return self.config.tenant == "*" or self.config.tenant == tenant

    def subscribes(self, event_type: str, tenant: str | None) -> bool:
        """Tenant and ``events`` patterns. ``hookd.*`` events match only patterns that begin
        with ``hookd.``: a plain ``*`` does not bring hookd's operational events (SPEC §11)."""
        if not self.serves(tenant):
            return False
        if event_type.startswith(OWN_PREFIX):
            return self.own_pattern is not None and bool(self.own_pattern.match(event_type))
        return bool(self.pattern.match(event_type))

    def matches(self, event: Event) -> bool:
        """Tenant, ``events`` patterns and payload filter (not a plugin's filter: callers run
        that fenced)."""
        if not self.subscribes(event.type, event.tenant):
            return False
        if self.payload is None:
            return True
        return self.payload({"type": event.type, "tenant": event.tenant, "data": event.data})

    def wants(self, event: Event) -> bool:
        """:meth:`matches`, then the plugin filter run here (for callers off the hot path)."""
        if not self.matches(event):
            return False
        return self.filter is None or bool(self.filter(event, self.view))

    def to_json(self) -> dict[str, Any]:
        """The public shape of SPEC §7: never a secret, a password in the URL, nor the value of
        one of its own headers."""
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
            "headers": hide_values(c.headers),
            "rate_limit": c.rate_limit,
            "max_in_flight": c.max_in_flight,
            "ordering": c.ordering,
            "filter": c.filter,
            "tenant": c.tenant,
            "tls": summary(c.tls),
        }


def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for a list of globs (``task.*``, ``*``, ``invoice.?aid``)."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _own_patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    own = tuple(p for p in patterns if p.startswith(OWN_PREFIX))
    return compile_patterns(own) if own else None


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
    flt, payload = None, None
    if isinstance(config.filter, str):
        flt = registry.filters.get(config.filter)
        if flt is None:
            raise HookdError(f"no filter named {config.filter!r}")
    elif config.filter is not None:
        try:
            payload = shared_filter(config.filter)
        except FilterError as exc:
            raise HookdError(f"filter.{exc}") from exc
    s = config.signing
    try:
        signer = factory(
            SignerConfig(
                scheme=s.scheme, keys=keys, header=s.header, prefix=s.prefix, options=s.options
            )
        )
    except (ValueError, TypeError) as exc:
        raise HookdError(f"signing: {exc}") from exc
    try:
        context = make_context(config.tls) if config.tls is not None else None
    except TLSProblem as exc:
        raise HookdError(f"tls.{exc.part}: {exc}") from exc
    return Endpoint(
        config=config,
        ssl=context,
        source=source,
        policy=policies[config.policy],
        signer=signer,
        body=body,
        filter=flt,
        pattern=compile_patterns(config.events),
        own_pattern=_own_patterns(config.events),
        payload=payload,
        plugins=_plugin_parts(config, registry),
    )


def _plugin_parts(config: EndpointConfig, registry: Registry) -> dict[str, str]:
    """Which of the endpoint's signer, body format and filter a plugin registered."""
    parts = {
        "signer": registry.owner("signer", config.signing.scheme),
        "format": registry.owner("format", config.body),
        "filter": registry.owner("filter", config.filter)
        if isinstance(config.filter, str)
        else None,
    }
    return {part: owner for part, owner in parts.items() if owner is not None}


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


def api_endpoint_config(
    endpoint_id: str, spec: Mapping[str, Any], tenant: str | None = None
) -> EndpointConfig:
    """An API-created endpoint's stored settings (and its fixed tenant) as an EndpointConfig."""
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
        tenant=tenant,
        tls=TLSConfig(**spec["tls"]) if spec.get("tls") else None,
    )
