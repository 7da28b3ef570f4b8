"""Changing endpoints: the one place that writes them to the database and to the live table.

Every change (create, update, delete, enable, disable, rotate-secret, loading and reloading the
YAML's endpoints) holds ``state.endpoints_lock``, so the table and the database cannot drift
apart, and a SIGHUP reload cannot drop an endpoint an admin route is creating. Callers (the admin
API, the daemon) validate their input first; a refused change raises an
:class:`~hookd.errors.EndpointError` (``UnknownEndpoint``, ``EndpointExists``, ``OwnedByConfig``,
``SealedKeys``, ``InvalidEndpoint``).

An API endpoint's keys are stored sealed (:func:`~hookd.endpoints.keys.seal_keys`), and so
are its URL password, header values and TLS material (:mod:`~hookd.endpoints.sealing`); the key
material a change makes is returned once, for the caller to show. YAML endpoints belong to the
YAML: only enable and disable apply to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from hookd.config import Config
from hookd.endpoints.keys import new_secret, open_keys, seal_keys
from hookd.endpoints.model import Endpoint, api_endpoint_config, build
from hookd.endpoints.sealing import needs_sealing, open_spec, seal_spec
from hookd.endpoints.table import load_table
from hookd.errors import (
    EndpointExists,
    HookdError,
    InvalidEndpoint,
    OwnedByConfig,
    SealedKeys,
    TenantLimit,
    UnknownEndpoint,
)
from hookd.registry import SigningKey
from hookd.signing import STANDARD_WEBHOOKS
from hookd.state import State
from hookd.store import DISABLED, ENABLED, EndpointRow

log = structlog.get_logger("hookd.endpoints")

Change = Literal["update", "rotate", "delete"]
# The new settings (and new secret, if any) from the stored ones, computed under the lock.
Revise = Callable[[Mapping[str, Any]], tuple[dict[str, Any], str | None]]

_YAML_OWNS: dict[Change, str] = {
    "update": "edit it there and reload (SIGHUP)",
    "rotate": "its secret lives in the YAML: change it there",
    "delete": "remove it from the YAML and reload",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Keyed:
    """An endpoint with the key material just made for it, to be shown once."""

    endpoint: Endpoint
    material: str
    previous_expires_at: float | None = None  # rotate-secret: when the kept old keys stop


def api_owned(state: State, endpoint_id: str, change: Change) -> Endpoint:
    """The live endpoint, when it is the API's to change. Raises UnknownEndpoint, OwnedByConfig.

    The changes check again under the lock; this lets a caller refuse before reading a body.
    """
    endpoint = state.endpoints.require(endpoint_id)
    if endpoint.source != "api":
        raise _owned_by_config(state, endpoint_id, change)
    return endpoint


async def create(
    state: State,
    endpoint_id: str,
    spec: dict[str, Any],
    secret: str | None = None,
    *,
    tenant: str | None = None,
) -> Keyed:
    """A new API endpoint from its checked settings; ``secret``, or a fresh key for its scheme.

    Its ``tenant`` is fixed from here on."""
    material = secret or await new_secret(spec["signing"]["scheme"])
    endpoint = _build(state, endpoint_id, spec, (SigningKey(material=material),), tenant)
    async with state.endpoints_lock:
        if state.endpoints.get(endpoint_id) is not None:
            raise EndpointExists(endpoint_id)
        limit = state.config.limits.max_endpoints_per_tenant
        if tenant not in (None, "*") and len(state.endpoints.of_tenant(tenant)) >= limit:
            raise TenantLimit(
                f"tenant {tenant!r} has {limit} endpoints, limits.max_endpoints_per_tenant"
            )
        sealed = seal_keys(endpoint_id, [(material, None)], state.box)
        stored = seal_spec(endpoint_id, spec, state.box)
        row = await state.store.create_endpoint(endpoint_id, stored, sealed, tenant=tenant)
        if row is None:
            raise EndpointExists(endpoint_id)
        state.endpoints.put(endpoint)
    log.info("endpoint.created", endpoint=endpoint_id, scheme=spec["signing"]["scheme"])
    return Keyed(endpoint=endpoint, material=material)


async def update(
    state: State, endpoint_id: str, revise: Revise, *, changed: Iterable[str]
) -> Endpoint:
    """Change an API endpoint's settings to what ``revise`` makes of the stored ones.

    Its keys stay, unless ``revise`` gives a new secret (which a new scheme needs). ``changed``
    names the settings the caller changes, for the log.
    """
    async with state.endpoints_lock:
        row = await _api_row(state, endpoint_id)
        spec, secret = revise(_open_spec(state, row))
        if secret is None and spec["signing"].get("scheme") != _scheme(row):
            raise InvalidEndpoint(
                "changing signing.scheme needs a new key: give signing.secret too",
                field="signing.secret",
            )
        keys = (SigningKey(material=secret),) if secret else _open_keys(state, row)
        new = _build(state, endpoint_id, spec, keys, row.tenant)
        _keep_state(new, state.endpoints.get(endpoint_id) or row)
        sealed = seal_keys(endpoint_id, [(secret, None)], state.box) if secret else None
        stored = seal_spec(endpoint_id, spec, state.box)
        await state.store.update_endpoint(endpoint_id, spec=stored, secrets=sealed)
        before = state.endpoints.get(endpoint_id)
        state.endpoints.put(new)
    log.info("endpoint.updated", endpoint=endpoint_id, fields=sorted(changed))
    unordered = before is not None and before.config.ordering == "fifo" != new.config.ordering
    if unordered and state.scheduler is not None:
        state.scheduler.reset()  # a fifo lane took only its head from the wheel: the rest too
    return new


async def delete(state: State, endpoint_id: str) -> int:
    """Remove an API endpoint with its deliveries; how many deliveries went."""
    async with state.endpoints_lock:
        row = await state.store.endpoint(endpoint_id)
        if row is None:
            raise UnknownEndpoint(endpoint_id)
        if row.source != "api":
            raise _owned_by_config(state, endpoint_id, "delete")
        removed = await state.store.delete_endpoint(endpoint_id) or 0
        state.endpoints.remove(endpoint_id)
    log.info("endpoint.deleted", endpoint=endpoint_id, deliveries=removed)
    return removed


async def enable(state: State, endpoint_id: str) -> Endpoint:
    """Enable an endpoint: its failures reset, its held deliveries go back into the wheel."""
    endpoint = await _set_enabled(state, endpoint_id, enabled=True)
    if state.scheduler is not None:
        state.scheduler.reset()  # held deliveries go back into the wheel
    log.info("endpoint.enabled", endpoint=endpoint_id)
    return endpoint


async def disable(state: State, endpoint_id: str, reason: str) -> Endpoint:
    """Disable an endpoint: no new deliveries, pending ones held until it is enabled."""
    endpoint = await _set_enabled(state, endpoint_id, enabled=False, reason=reason)
    log.info("endpoint.disabled", endpoint=endpoint_id)
    return endpoint


async def rotate_secret(
    state: State, endpoint_id: str, *, grace: float, secret: str | None = None
) -> Keyed:
    """A new key for an API endpoint (``secret``, or a fresh one like the current).

    The old keys sign on for ``grace`` seconds (never longer than they already would), or stop
    at once when it is 0.
    """
    async with state.endpoints_lock:
        row = await _api_row(state, endpoint_id)
        now = time.time()
        old = _open_keys(state, row)
        like = old[0].material if old else None
        material = secret or await new_secret(_scheme(row), like)
        until = now + grace  # old keys sign on until then (at most), or stop at once
        kept = [(k.material, min(k.expires_at or until, until)) for k in old] if grace else []
        keys = [(material, None), *kept]
        signing = tuple(SigningKey(material=m, expires_at=e) for m, e in keys)
        new = _build(state, endpoint_id, _open_spec(state, row), signing, row.tenant)
        _keep_state(new, state.endpoints.get(endpoint_id) or row)
        sealed = seal_keys(endpoint_id, keys, state.box)
        await state.store.update_endpoint(endpoint_id, secrets=sealed)
        state.endpoints.put(new)
    log.info(
        "endpoint.secret_rotated", endpoint=endpoint_id, grace_s=grace, previous_kept=len(kept)
    )
    return Keyed(endpoint=new, material=material, previous_expires_at=until if kept else None)


async def load_from_config(state: State, configured: dict[str, Endpoint]) -> None:
    """The live table from the YAML's endpoints (resolved) and the database's rows."""
    async with state.endpoints_lock:
        await _load(state, configured)


async def reload_from_config(state: State, config: Config, configured: dict[str, Endpoint]) -> None:
    """SIGHUP: the new config and its endpoints, swapped in together; held deliveries are looked
    at again. Raises HookdError, and the running config stays.
    """
    old = state.config
    try:
        async with state.endpoints_lock:  # not while an admin route changes an endpoint
            state.config = config
            await _load(state, configured)
    except HookdError:
        state.config = old
        raise
    if state.scheduler is not None:
        state.scheduler.reset()


async def refresh(state: State) -> None:
    """Another process changed endpoints: the table again from the database's rows, the YAML's
    endpoints kept as resolved (every process runs the same YAML). Held deliveries are looked
    at again, in case an endpoint was enabled. Writes nothing."""
    async with state.endpoints_lock:
        configured = {ep.id: ep for ep in state.endpoints if ep.source == "config"}
        rows = await state.store.endpoints()
        table, problems = load_table(state.config, configured, rows, state.registry, state.box)
        for problem in problems:
            log.error("endpoint.unloadable", problem=problem)
        state.endpoints.replace_all(table)
    log.info("endpoints.reloaded", endpoints=len(state.endpoints), reason="changed elsewhere")
    if state.scheduler is not None:
        state.scheduler.reset()


async def refresh_state(state: State) -> None:
    """The endpoints' live state (enabled, failure counters) as other processes left it."""
    rows = await state.store.endpoints()
    async with state.endpoints_lock:
        for row in rows:
            state.endpoints.apply_state(row)


# --------------------------------------------------------------------------- internals


async def _load(state: State, configured: dict[str, Endpoint]) -> None:
    """YAML endpoints gone from the file are removed (their pending deliveries fail)."""
    failed = await state.store.reconcile_config_endpoints(
        {endpoint_id: ep.tenant for endpoint_id, ep in configured.items()}
    )
    for endpoint_id, count in failed.items():
        log.info("endpoint.removed", endpoint=endpoint_id, pending_failed=count)
    rows = await state.store.endpoints()
    table, problems = load_table(state.config, configured, rows, state.registry, state.box)
    for problem in problems:
        log.error("endpoint.unloadable", problem=problem)
    state.endpoints.replace_all(table)
    for row in rows:  # settings an older hookd stored in clear: seal them now
        if row.source == "api" and row.id in table and needs_sealing(row.spec, state.box):
            stored = seal_spec(row.id, row.spec, state.box)
            await state.store.update_endpoint(row.id, spec=stored)
            log.info("endpoint.settings_sealed", endpoint=row.id)


async def _set_enabled(
    state: State, endpoint_id: str, *, enabled: bool, reason: str | None = None
) -> Endpoint:
    async with state.endpoints_lock:
        endpoint = state.endpoints.require(endpoint_id)
        kind = ENABLED if enabled else DISABLED
        notices = state.endpoints.notices(endpoint, kind)
        toggled = await state.store.set_endpoint_enabled(
            endpoint_id, enabled, reason, notices=notices
        )
        if not toggled.found:
            raise UnknownEndpoint(endpoint_id)
        # a PATCH or rotation may have swapped the live object while we waited: change the current
        endpoint = state.endpoints.require(endpoint_id)
        endpoint.enabled = enabled
        endpoint.disabled_reason = None if enabled else reason
        if enabled:
            endpoint.consecutive_failures = 0
    if toggled.emitted and state.dispatcher is not None:
        state.metrics.deliveries_created.inc(len(toggled.emitted))
        state.dispatcher.submit(list(toggled.emitted))
    return endpoint


async def _api_row(state: State, endpoint_id: str) -> EndpointRow:
    """The stored row of an API endpoint. Raises UnknownEndpoint (none, or a YAML one)."""
    row = await state.store.endpoint(endpoint_id)
    if row is None or row.source != "api":
        raise UnknownEndpoint(endpoint_id)
    return row


def _owned_by_config(state: State, endpoint_id: str, change: Change) -> OwnedByConfig:
    return OwnedByConfig(
        f"endpoint {endpoint_id!r} is declared in the YAML ({state.config.source}); "
        f"{_YAML_OWNS[change]}"
    )


def _build(
    state: State,
    endpoint_id: str,
    spec: Mapping[str, Any],
    keys: tuple[SigningKey, ...],
    tenant: str | None,
) -> Endpoint:
    try:
        return build(
            api_endpoint_config(endpoint_id, spec, tenant),
            source="api",
            keys=keys,
            policies=state.config.policies,
            registry=state.registry,
        )
    except HookdError as exc:
        message, field = str(exc), None
        if message.startswith("signing:"):  # the signer refused its header, prefix or key
            field = next((f"signing.{k}" for k in ("header", "prefix") if k in message), None)
            field = field or "signing.secret"
        raise InvalidEndpoint(message, field=field) from exc


def _open_spec(state: State, row: EndpointRow) -> dict[str, Any]:
    try:
        return open_spec(row.id, row.spec, state.box)
    except HookdError as exc:
        raise SealedKeys(f"cannot open the endpoint's settings: {exc}") from exc


def _open_keys(state: State, row: EndpointRow) -> tuple[SigningKey, ...]:
    try:
        return open_keys(row.id, row.secrets, state.box, time.time())
    except HookdError as exc:
        raise SealedKeys(f"cannot open the endpoint's keys: {exc}") from exc


def _keep_state(new: Endpoint, old: Endpoint | EndpointRow) -> Endpoint:
    new.enabled = old.enabled
    new.disabled_reason = old.disabled_reason
    new.consecutive_failures = old.consecutive_failures
    return new


def _scheme(row: EndpointRow) -> str:
    return str((row.spec.get("signing") or {}).get("scheme", STANDARD_WEBHOOKS))
