"""The outbox: events, deliveries, attempts and endpoint state, behind one interface.

:mod:`hookd.store.base` is the interface (:class:`Store` and the narrower Protocols the
scheduler and dispatcher use), :mod:`hookd.store.records` what flows through it,
:mod:`hookd.store.rules` the rules every backend shares; :mod:`hookd.store.sqlite` is the
embedded backend, :mod:`hookd.store.pg` the PostgreSQL one (imported only when configured: it
needs the ``postgres`` extra). :func:`open_store` picks the backend from the configuration.
"""

from __future__ import annotations

from hookd.config import Config
from hookd.store.base import (
    LEASE_SLACK_S,
    START,
    Coordination,
    DeliveryStore,
    DuePosition,
    DueSource,
    Store,
)
from hookd.store.records import (
    DISABLED,
    ENABLED,
    ENDPOINT_REMOVED,
    EXHAUSTED,
    STATUSES,
    Accepted,
    AttemptResult,
    AttemptRow,
    BadCursor,
    Changes,
    Claim,
    CommitStats,
    Conflict,
    DeliveryFilter,
    DeliveryRow,
    EndpointRow,
    EventRow,
    Job,
    Limits,
    NewDelivery,
    NewEvent,
    NodeRow,
    NoticeRoute,
    Notices,
    OverCapacity,
    Page,
    Purged,
    Recorded,
    Status,
    TenantRow,
    Toggled,
)
from hookd.store.sqlite import SQLiteStore
from hookd.store.sqlite_schema import MIGRATIONS
from hookd.store.stats import AttemptStats, Tally, Window

__all__ = [
    "DISABLED",
    "ENABLED",
    "ENDPOINT_REMOVED",
    "EXHAUSTED",
    "LEASE_SLACK_S",
    "MIGRATIONS",
    "START",
    "STATUSES",
    "Accepted",
    "AttemptResult",
    "AttemptRow",
    "AttemptStats",
    "BadCursor",
    "Changes",
    "Claim",
    "CommitStats",
    "Conflict",
    "Coordination",
    "DeliveryFilter",
    "DeliveryRow",
    "DeliveryStore",
    "DuePosition",
    "DueSource",
    "EndpointRow",
    "EventRow",
    "Job",
    "Limits",
    "NewDelivery",
    "NewEvent",
    "NodeRow",
    "NoticeRoute",
    "Notices",
    "OverCapacity",
    "Page",
    "Purged",
    "Recorded",
    "SQLiteStore",
    "Status",
    "Store",
    "Tally",
    "TenantRow",
    "Toggled",
    "Window",
    "describe",
    "open_store",
]


def open_store(config: Config) -> Store:
    """The backend ``config.storage`` names, not yet opened (``await store.open()``).

    Raises StoreError (one line) when ``postgres`` is asked for without the extra installed.
    """
    if config.storage.backend == "postgres":
        from hookd.store.pg import PostgresStore  # psycopg: only when configured

        assert config.storage.dsn is not None  # the config requires it
        return PostgresStore(config.storage.dsn, max_pending=config.limits.max_pending)
    return SQLiteStore(
        config.storage.path,
        synchronous=config.storage.synchronous,
        max_pending=config.limits.max_pending,
    )


def describe(config: Config) -> str:
    """Where the outbox is, for logs: the SQLite path, or the DSN without its secrets."""
    if config.storage.backend == "postgres":
        from hookd.store.pg_conn import describe as describe_dsn

        return f"postgres: {describe_dsn(config.storage.dsn or '')}"
    return str(config.storage.path)
