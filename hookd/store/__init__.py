"""The outbox: events, deliveries, attempts and endpoint state, behind one interface.

:mod:`hookd.store.base` is the interface (:class:`Store` and the narrower Protocols the
scheduler and dispatcher use), :mod:`hookd.store.records` what flows through it,
:mod:`hookd.store.rules` the rules every backend shares; :mod:`hookd.store.sqlite` is the
embedded backend. :func:`open_store` picks the backend from the configuration.
"""

from __future__ import annotations

from hookd.config import Config
from hookd.store.base import LEASE_SLACK_S, START, DeliveryStore, DuePosition, DueSource, Store
from hookd.store.records import (
    ENDPOINT_REMOVED,
    STATUSES,
    Accepted,
    AttemptResult,
    AttemptRow,
    BadCursor,
    CommitStats,
    Conflict,
    DeliveryFilter,
    DeliveryRow,
    EndpointRow,
    EventRow,
    Job,
    NewDelivery,
    NewEvent,
    OverCapacity,
    Page,
    Purged,
    Recorded,
    Status,
    TenantRow,
)
from hookd.store.sqlite import SQLiteStore
from hookd.store.sqlite_schema import MIGRATIONS
from hookd.store.stats import AttemptStats, Tally, Window

__all__ = [
    "ENDPOINT_REMOVED",
    "LEASE_SLACK_S",
    "MIGRATIONS",
    "START",
    "STATUSES",
    "Accepted",
    "AttemptResult",
    "AttemptRow",
    "AttemptStats",
    "BadCursor",
    "CommitStats",
    "Conflict",
    "DeliveryFilter",
    "DeliveryRow",
    "DeliveryStore",
    "DuePosition",
    "DueSource",
    "EndpointRow",
    "EventRow",
    "Job",
    "NewDelivery",
    "NewEvent",
    "OverCapacity",
    "Page",
    "Purged",
    "Recorded",
    "SQLiteStore",
    "Status",
    "Store",
    "Tally",
    "TenantRow",
    "Window",
    "open_store",
]


def open_store(config: Config) -> Store:
    """The backend ``config.storage`` names, not yet opened (``await store.open()``)."""
    return SQLiteStore(
        config.storage.path,
        synchronous=config.storage.synchronous,
        max_pending=config.limits.max_pending,
    )
