"""The storage interface: what the daemon asks of a database, whatever the backend.

Several narrow Protocols, so each part depends on just what it uses (the scheduler on
:class:`DueSource`, the dispatcher on :class:`DeliveryStore`), and one :class:`Store` that a
backend implements whole. Backends: :mod:`hookd.store.sqlite` (embedded, one process) and
:mod:`hookd.store.pg` (PostgreSQL, any number of processes).

Claims and leases. A delivery is attempted only under a *claim*: :meth:`DeliveryStore.claim`
gives this process a lease on a pending, due delivery for ``lease_s`` seconds (the attempt's
timeout plus slack) and a fencing token. The attempt's record carries the token; a record whose
claim is stale (the lease expired and another claim was made, or the delivery was finished,
retried or deleted meanwhile) changes nothing. A process that dies holds its leases until they
expire; then any process may claim those deliveries again. This is how procrastinate, saq and
River hand out work: PostgreSQL does it with ``FOR UPDATE SKIP LOCKED`` and lease columns;
SQLite, which one process owns at a time, keeps the leases in that process.

Limits across processes. A claim is given the endpoint's :class:`~hookd.store.records.Limits`
(``max_in_flight``, ``rate_limit``, ``ordering: fifo``). The dispatcher's in-memory lanes
enforce them within a process (the fast path, and all a one-process backend needs); a shared
backend enforces them again in the claim, for all processes together, and answers when the lane
should try again (:class:`~hookd.store.records.Claim`).

Several processes. :meth:`Store.wait_changes` tells a process what the others changed (new
work, endpoint settings), :meth:`Store.ready` lists what is due and unclaimed (what another
process ingested, re-queued or left behind when it died), :meth:`Store.heartbeat` and
:meth:`Store.nodes` keep the list of live processes. A one-process backend answers them
trivially (:class:`hookd.store.single.SingleProcess`); ``shared`` tells them apart.

Counters live in the database: recording a result adds to or resets the endpoint's
``consecutive_failures`` there (:func:`hookd.store.rules.endpoint_change` decides a disable), so
several processes count together. Cursors are opaque strings (:func:`hookd.store.rules.
encode_cursor`); what is inside them is the backend's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from hookd.store.records import (
    Accepted,
    AttemptResult,
    AttemptRow,
    Changes,
    Claim,
    CommitStats,
    DeliveryFilter,
    DeliveryRow,
    EndpointRow,
    EventRow,
    Job,
    Limits,
    NewEvent,
    NodeRow,
    Notices,
    Page,
    Purged,
    Recorded,
    TenantRow,
    Toggled,
)
from hookd.store.stats import AttemptStats, Window

LEASE_SLACK_S = 30.0  # a lease outlives the attempt's timeout by this much

DuePosition = tuple[float, int]  # (due time, a backend's tie-breaker): where a due() page ends
START: DuePosition = (0.0, 0)  # before every delivery


class DueSource(Protocol):
    """What the scheduler reads: pending deliveries by due time."""

    async def due(
        self, *, after: DuePosition, end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        """Pending deliveries of enabled endpoints due before ``end``: ``(id, due, tiebreak)``.

        A page in ``(due, tiebreak)`` order starting past ``after``; pass the last row's
        ``(due, tiebreak)`` to continue, however many deliveries share one due time.
        """
        ...


class DeliveryStore(Protocol):
    """What the dispatcher uses: read jobs, claim them, record attempts."""

    async def jobs(self, ids: Sequence[str]) -> list[Job]:
        """Deliveries with their events (unclaimed), in ingest order."""
        ...

    async def fifo_head(self, endpoint: str) -> Job | None:
        """The oldest pending delivery of an endpoint (``ordering: fifo`` runs only this one)."""
        ...

    async def due_jobs(self, endpoint: str, *, now: float, limit: int) -> list[Job]:
        """Up to ``limit`` pending deliveries of one endpoint due by ``now`` (and, on a shared
        backend, under no lease), earliest due first: how a lane that left deliveries in the
        database, its queue full, reads them back."""
        ...

    async def claim(
        self, jobs: Sequence[Job], *, lease_s: float, limits: Limits | None = None
    ) -> Claim:
        """Claim those of ``jobs`` that are pending and not under a live lease.

        Returns the claimed ones, each with its fencing token in ``lease``, in the given order.
        ``jobs`` all belong to one endpoint when ``limits`` are given; a shared backend claims
        only what they allow and sets ``retry_at`` for the rest.
        """
        ...

    async def release(self, ids: Sequence[str]) -> None:
        """Give up claims without recording an attempt (stopping, or a crashed attempt)."""
        ...

    async def record(self, results: Sequence[AttemptResult]) -> list[Recorded]:
        """Write attempts, delivery states and endpoint counters in one transaction.

        Each result is applied only under its live claim and only while its delivery is pending
        at ``n - 1`` attempts; the claim ends either way once the transaction commits. The
        operational events a result causes (``result.notices``: a delivery exhausted, the
        endpoint disabled) are written in the same transaction; their new deliveries come back
        in ``Recorded.emitted``. A write that fails (StoreError) keeps the claims, so the same
        results can be written again.
        """
        ...

    async def ping(self) -> None:
        """Prove the database takes a write; raises StoreError (the dispatcher waits on it
        after an attempt it could not record)."""
        ...


class Coordination(Protocol):
    """What processes sharing one store learn of each other (see the module docstring)."""

    @property
    def shared(self) -> bool:
        """True when several processes may use this store at once."""
        ...

    @property
    def node_id(self) -> str:
        """This process, as :meth:`nodes` and the leases name it."""
        ...

    async def wait_changes(self, wait_s: float) -> Changes:
        """Wait up to ``wait_s`` seconds for another process's change; what changed."""
        ...

    async def endpoints_version(self) -> int:
        """A number that moves whenever another process changes an endpoint (the periodic
        check behind NOTIFY); constant where no other process can."""
        ...

    async def ready(self, *, per_endpoint: int, grace_s: float = 0.0) -> list[tuple[str, float]]:
        """Pending deliveries of enabled endpoints due for at least ``grace_s`` and under no
        lease: ``(id, due)``, at most ``per_endpoint`` of each endpoint (a one-process backend
        may give fewer)."""
        ...

    async def heartbeat(self) -> None:
        """Tell the others this process is alive (and refresh shared counts)."""
        ...

    async def nodes(self) -> list[NodeRow]:
        """The live processes sharing the store, this one included."""
        ...


class Store(DueSource, DeliveryStore, Coordination, Protocol):
    """The whole interface a backend implements (see the module docstring)."""

    max_pending: int  # limits.max_pending, checked at ingest (a reload may change it)
    stats: CommitStats

    @property
    def pending(self) -> int:
        """Pending deliveries (exact for one process; the last count seen for several)."""
        ...

    # -- lifecycle

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Prove the database answers and takes a write; raises StoreError."""
        ...

    def db_bytes(self) -> int: ...

    # -- ingest

    async def ingest(self, events: Sequence[NewEvent]) -> list[Accepted]:
        """Commit events and their deliveries atomically; answers only after the commit.

        Raises Conflict (an id or key reused with other content) or OverCapacity.
        """
        ...

    # -- endpoints

    async def endpoints(self) -> list[EndpointRow]: ...

    async def endpoint(self, endpoint_id: str) -> EndpointRow | None: ...

    async def reconcile_config_endpoints(self, tenants: Mapping[str, str | None]) -> dict[str, int]:
        """Make the ``config`` rows match the YAML (``tenants``: each YAML endpoint id with its
        tenant); pending deliveries of removed ones fail.

        Returns how many deliveries each removed endpoint left failed.
        """
        ...

    async def set_endpoint_enabled(
        self,
        endpoint_id: str,
        enabled: bool,
        reason: str | None = None,
        *,
        notices: Notices | None = None,
    ) -> Toggled:
        """Enable (resetting the failure counter) or disable. When the state changes, the
        operational event (``notices``) is written in the same transaction."""
        ...

    async def create_endpoint(
        self,
        endpoint_id: str,
        spec: dict[str, object],
        secrets: list[dict[str, object]],
        *,
        tenant: str | None = None,
    ) -> EndpointRow | None:
        """Add an API endpoint (its tenant is fixed from here on); ``None`` when the id is
        taken."""
        ...

    async def update_endpoint(
        self,
        endpoint_id: str,
        *,
        spec: dict[str, object] | None = None,
        secrets: list[dict[str, object]] | None = None,
    ) -> bool:
        """Replace an API endpoint's settings and/or sealed keys; False if there is none."""
        ...

    async def delete_endpoint(self, endpoint_id: str) -> int | None:
        """Remove an endpoint with its deliveries and attempts; how many deliveries went."""
        ...

    # -- history

    async def deliveries(
        self, where: DeliveryFilter, *, limit: int, cursor: str | None = None
    ) -> Page[DeliveryRow]:
        """Deliveries matching ``where``, newest first. Raises BadCursor."""
        ...

    async def delivery(self, delivery_id: str, *, scope: str | None = None) -> DeliveryRow | None:
        """A delivery; with ``scope``, only one to an endpoint whose tenant is ``scope`` (in the
        same query, so a delivery out of scope costs what an absent one does)."""
        ...

    async def attempts(self, delivery_id: str) -> list[AttemptRow]: ...

    async def event(self, event_id: str, *, scope: str | None = None) -> EventRow | None:
        """An event; with ``scope``, only an event of that tenant."""
        ...

    async def event_deliveries(
        self, event_id: str, *, scope: str | None = None
    ) -> list[DeliveryRow]: ...

    # -- tenants

    async def tenants(self, *, limit: int, cursor: str | None = None) -> Page[TenantRow]:
        """Every tenant that has an endpoint or an event, by name, with delivery counts."""
        ...

    async def token_generation(self, tenant: str) -> int:
        """The generation a tenant's tokens must carry to be valid (0 until a revocation)."""
        ...

    async def revoke_tokens(self, tenant: str, now: float) -> int:
        """Invalidate every token issued for ``tenant`` so far; the new generation."""
        ...

    # -- operator actions

    async def retry_failed(self, delivery_id: str, now: float) -> str | None:
        """Make a ``failed`` delivery pending, due at ``now``, keeping its attempts.

        Returns the status it had (``"failed"``: re-queued), ``"orphaned"`` when its endpoint
        is gone, ``None`` when there is no such delivery.
        """
        ...

    async def requeue(
        self, endpoint_id: str, *, since: float, statuses: Sequence[str], now: float
    ) -> int:
        """Make an endpoint's final deliveries created since ``since`` pending again."""
        ...

    async def missed_events(
        self, endpoint_id: str, *, since: float, limit: int, cursor: str | None = None
    ) -> Page[EventRow]:
        """Events since ``since`` with no delivery for the endpoint, in ingest order."""
        ...

    async def add_deliveries(
        self, endpoint_id: str, items: Sequence[tuple[str, str]], *, origin: str, now: float
    ) -> int:
        """Create pending deliveries ``(delivery id, event id)`` for one endpoint, due now;
        an event that is gone or already has one for the endpoint is skipped."""
        ...

    # -- retention

    async def purge_deliveries(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        """Delete up to ``limit`` final deliveries last changed before ``before``."""
        ...

    async def purge_events(self, *, before: float, limit: int, cursor: str | None) -> Purged:
        """Delete up to ``limit`` events created before ``before`` with no delivery left."""
        ...

    # -- counts

    async def count_pending(self) -> int: ...

    async def counts_by_status(self) -> dict[str, int]: ...

    async def count_due(self, now: float) -> int:
        """Pending deliveries of enabled endpoints whose time has come."""
        ...

    async def count_retrying(self) -> int:
        """Pending deliveries that were attempted and wait for their next attempt."""
        ...

    # -- attempt stats (SPEC §14; hookd.store.stats)

    async def attempt_stats(self, win: Window, *, endpoint: str | None = None) -> AttemptStats:
        """Attempts in ``win``: of ``endpoint``, or of every endpoint (each, and together)."""
        ...

    async def purge_stats(self, *, now: float) -> int:
        """Forget rollups no window reads any more, and those of endpoints that are gone."""
        ...
