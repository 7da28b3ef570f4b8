"""The live endpoint table: every endpoint by id, with its state, as ingest and delivery see it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hookd.config import Config
from hookd.endpoints.keys import open_keys
from hookd.endpoints.model import Endpoint, api_endpoint_config, build
from hookd.endpoints.sealing import open_spec
from hookd.errors import HookdError, UnknownEndpoint
from hookd.filters import Matcher
from hookd.registry import Event, Registry
from hookd.secretbox import SecretBox
from hookd.store import DISABLED, ENABLED, EXHAUSTED, EndpointRow, NoticeRoute, Notices

_NONE: list[Endpoint] = []
ROUTE_CACHE = 10_000  # (event type, tenant) pairs kept; past it the cache starts again


class EndpointTable:
    """Every endpoint by id, in a stable order, with their live state.

    Routing is indexed by tenant (SPEC §8): an event of tenant T is only ever matched against
    T's endpoints and ``"*"`` ones (an untenanted event: untenanted and ``"*"`` ones), so
    thousands of tenants' endpoints cost an event nothing but a dict lookup.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Endpoint] = {}
        self._by_tenant: dict[str | None, list[Endpoint]] | None = None  # built on first use
        self._position: dict[str, int] = {}  # table order, for merging index lists
        self._routes: dict[tuple[str, str | None], list[Endpoint]] = {}  # (type, tenant) -> subs

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.get(endpoint_id)

    def require(self, endpoint_id: str) -> Endpoint:
        """The endpoint with this id. Raises UnknownEndpoint."""
        endpoint = self._by_id.get(endpoint_id)
        if endpoint is None:
            raise UnknownEndpoint(endpoint_id)
        return endpoint

    def put(self, endpoint: Endpoint) -> None:
        self._by_id[endpoint.id] = endpoint
        self._changed()

    def replace_all(self, other: EndpointTable) -> None:
        """Take another table's endpoints (a reload), keeping this object shared."""
        self._by_id = dict(other._by_id)
        self._changed()

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._by_id

    def remove(self, endpoint_id: str) -> Endpoint | None:
        self._changed()
        return self._by_id.pop(endpoint_id, None)

    def _changed(self) -> None:
        self._by_tenant = None
        self._routes = {}

    def of_tenant(self, tenant: str | None) -> list[Endpoint]:
        """The endpoints whose tenant is exactly ``tenant`` (``"*"`` ones are not T's)."""
        return list(self._index().get(tenant, ()))

    def route(self, event: Event) -> list[Endpoint]:
        """Enabled endpoints that subscribe to this event: its tenant's and ``"*"`` ones, by
        patterns and payload filter (a plugin's filter is the caller's: :func:`hookd.ingest.
        fan_out`). Which endpoints subscribe to a (type, tenant) is computed once and kept
        until the table changes; enabled state and payload filters are looked at every time."""
        subscribed = self._subscriptions(event.type, event.tenant)
        out = []
        view: dict[str, Any] | None = None
        decided: dict[Matcher, bool] = {}  # endpoints holding one filter share its matcher
        for ep in subscribed:
            if not ep.enabled:
                continue
            if ep.payload is not None:
                if view is None:
                    view = {"type": event.type, "tenant": event.tenant, "data": event.data}
                allowed = decided.get(ep.payload)
                if allowed is None:
                    allowed = decided[ep.payload] = ep.payload(view)
                if not allowed:
                    continue
            out.append(ep)
        return out

    def plain_route(self, event_type: str, tenant: str | None) -> list[Endpoint] | None:
        """What :meth:`route` and :func:`hookd.ingest.fan_out` answer for any event of this type
        and tenant, whatever its data; None when a subscribed, enabled endpoint has a payload
        or plugin filter (its answer depends on the event)."""
        out = []
        for ep in self._subscriptions(event_type, tenant):
            if not ep.enabled:
                continue
            if ep.payload is not None or ep.filter is not None:
                return None
            out.append(ep)
        return out

    def _subscriptions(self, event_type: str, tenant: str | None) -> list[Endpoint]:
        key = (event_type, tenant)
        subscribed = self._routes.get(key)
        if subscribed is None:
            subscribed = self._subscribed(event_type, tenant)
            if len(self._routes) >= ROUTE_CACHE:
                self._routes.clear()
            self._routes[key] = subscribed
        return subscribed

    def _subscribed(self, event_type: str, tenant: str | None) -> list[Endpoint]:
        index = self._index()
        own = index.get(tenant, _NONE)
        every = index.get("*", _NONE) if tenant != "*" else _NONE
        if own and every:
            position = self._position
            candidates = sorted([*own, *every], key=lambda ep: position[ep.id])
        else:
            candidates = own or every
        return [ep for ep in candidates if ep.subscribes(event_type, tenant)]

    def notice_routes(self, kind: str, tenant: str | None) -> tuple[NoticeRoute, ...]:
        """Where an operational event of ``kind`` (``hookd.endpoint.disabled`` …) about an
        endpoint of ``tenant`` goes: enabled endpoints of that tenant or ``"*"`` with a
        ``hookd.``-prefixed pattern that matches (SPEC §11), each with its payload filter."""
        probe = Event(id="", type=kind, timestamp="", data=None, tenant=tenant)
        index = self._index()
        out = []
        for ep in (*index.get(tenant, _NONE), *index.get("*", _NONE)):
            if not ep.enabled or not ep.serves(tenant) or ep.own_pattern is None:
                continue
            if ep.own_pattern.match(probe.type):
                out.append(NoticeRoute(endpoint=ep.id, match=ep.payload))
        return tuple(out)

    def notices(self, endpoint: Endpoint, *kinds: str) -> Notices:
        """:class:`Notices` of the given kinds about ``endpoint`` (its tenant; ``"*"``: none)."""
        tenant = None if endpoint.tenant == "*" else endpoint.tenant
        routes = {kind: self.notice_routes(kind, tenant) for kind in kinds}
        return Notices(
            tenant=tenant,
            disabled=routes.get(DISABLED, ()),
            enabled=routes.get(ENABLED, ()),
            exhausted=routes.get(EXHAUSTED, ()),
        )

    def _index(self) -> dict[str | None, list[Endpoint]]:
        if self._by_tenant is None:
            index: dict[str | None, list[Endpoint]] = {}
            for ep in self._by_id.values():
                index.setdefault(ep.tenant, []).append(ep)
            self._position = {endpoint_id: i for i, endpoint_id in enumerate(self._by_id)}
            self._by_tenant = index
        return self._by_tenant

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
                    api_endpoint_config(row.id, open_spec(row.id, row.spec, box), row.tenant),
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
