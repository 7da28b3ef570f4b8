"""Extension points: signers, body formats, filters and observers.

The built-in schemes and formats register through exactly the same door that plugins use:
a plugin module defines ``setup(registry, options)`` and calls the ``add_*`` methods
(:func:`hookd.builtin.builtin_registry` does the same for the built-ins; this module knows none
of them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hookd.errors import PluginError


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """An accepted event as formats and filters see it."""

    id: str
    type: str
    timestamp: str  # RFC 3339, UTC, as stored at ingest
    data: Any
    tenant: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """What a signer signs: the exact bytes that go on the wire."""

    event_id: str
    delivery_id: str
    timestamp: int  # unix seconds of this attempt (fresh per attempt)
    body: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class SigningKey:
    """One live secret or private key. ``expires_at`` is set on a key kept for a rotation grace."""

    material: str = field(repr=False)  # whsec_/whsk_/plain secret, or a PEM private key
    expires_at: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SignerConfig:
    """An endpoint's signing settings with its live keys, newest first."""

    scheme: str
    keys: tuple[SigningKey, ...]
    header: str | None = None
    prefix: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class Signer(Protocol):
    """Signs one attempt. ``blocking`` signers (RSA) are called from a worker thread."""

    blocking: bool

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        """Headers to add to the request. ``now`` decides which grace keys are still live."""
        ...

    def public_keys(self) -> list[str]:
        """Public keys a receiver verifies with (PEM or ``whpk_``); empty for HMAC schemes."""
        ...


SignerFactory = Callable[[SignerConfig], Signer]
BodyFormat = Callable[[Event], bytes]


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointView:
    """What a filter knows of an endpoint."""

    id: str
    url: str
    events: tuple[str, ...]
    options: Mapping[str, Any]


Filter = Callable[[Event, EndpointView], bool]


@dataclass(frozen=True, kw_only=True, slots=True)
class AttemptOutcome:
    """What observers are told after every attempt."""

    delivery_id: str
    event_id: str
    event_type: str
    endpoint: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: float
    final_status: str  # pending | succeeded | failed


Observer = Callable[[AttemptOutcome], Awaitable[None] | None]


class Registry:
    """Named signers, body formats and filters, plus attempt observers."""

    def __init__(self) -> None:
        self.signers: dict[str, SignerFactory] = {}
        self.formats: dict[str, BodyFormat] = {}
        self.filters: dict[str, Filter] = {}
        self.observers: list[Observer] = []
        self.loading: str | None = None  # the plugin whose setup() is running, if any
        self._owners: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin

    def add_signer(self, scheme: str, factory: SignerFactory) -> None:
        self._claim(self.signers, "signing scheme", scheme)
        self.signers[scheme] = factory
        self._own("signer", scheme)

    def add_format(self, name: str, fmt: BodyFormat) -> None:
        self._claim(self.formats, "body format", name)
        self.formats[name] = fmt
        self._own("format", name)

    def add_filter(self, name: str, flt: Filter) -> None:
        self._claim(self.filters, "filter", name)
        self.filters[name] = flt
        self._own("filter", name)

    def owner(self, kind: str, name: str) -> str | None:
        """The plugin that registered ``name`` (kind: signer, format, filter); None: built-in.

        What a plugin registered runs fenced (:mod:`hookd.isolation`)."""
        return self._owners.get((kind, name))

    def _own(self, kind: str, name: str) -> None:
        if self.loading is not None:
            self._owners[(kind, name)] = self.loading

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    @staticmethod
    def _claim(table: Mapping[str, object], kind: str, name: str) -> None:
        if name in table:
            raise PluginError(f"{kind} {name!r} is already registered")
