"""Connecting to PostgreSQL: psycopg 3 (an optional extra), the pool, timeouts, clear errors.

psycopg is imported here and only here, and only when ``storage.backend: postgres`` is used, so
SQLite users never need it. The DSN goes to libpq as given (multi-host strings,
``target_session_attrs``, ``.pgpass``, ``sslmode``, service files all work as users expect);
hookd adds ``connect_timeout`` when the DSN has none, and sets ``statement_timeout`` and
``lock_timeout`` on every connection it opens, so no network await waits forever.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from hookd.errors import StoreError

try:
    import psycopg
    from psycopg import conninfo
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise StoreError(
        "storage.backend: postgres needs the postgres extra: pip install 'hookd[postgres]'"
    ) from exc

CONNECT_TIMEOUT_S = 10  # libpq connect_timeout when the DSN sets none
STATEMENT_TIMEOUT_MS = 30_000  # no statement runs longer
LOCK_TIMEOUT_MS = 10_000  # no statement waits longer for a row lock
POOL_TIMEOUT_S = 5.0  # waiting for a pooled connection (an outage answers 503 after this)
POOL_MIN, POOL_MAX = 2, 10
EPHEMERAL_MAX = 4

Error = psycopg.Error
OperationalError = psycopg.OperationalError
AsyncConnection = psycopg.AsyncConnection


def describe(dsn: str) -> str:
    """The DSN without secrets, for logs and errors: ``host=... port=... dbname=... user=...``."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<invalid dsn>"
    shown = [
        f"{k}={params[k]}" for k in ("host", "hostaddr", "port", "dbname", "user") if k in params
    ]
    return " ".join(shown) or "<libpq defaults>"


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """Extra libpq parameters: a connect timeout unless the DSN (or PGCONNECT_TIMEOUT) has one."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"storage.dsn is not a libpq connection string or URL: {exc}") from exc
    kw: dict[str, Any] = {"application_name": f"hookd[{os.getpid()}]"}
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        kw["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" in params:
        del kw["application_name"]
    return kw


async def configure(conn: Any) -> None:
    """Every connection hookd opens: bounded statements and lock waits, autocommit."""
    await conn.set_autocommit(True)
    await conn.execute(
        f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}; SET lock_timeout = {LOCK_TIMEOUT_MS}"
    )


async def configure_ephemeral(conn: Any) -> None:
    """Connections for writes a crash may lose (claims, releases, heartbeats): their commits do
    not wait for the WAL flush. A lost claim is a lease that never was (the delivery is simply
    due again), so at least once holds; durable writes never use these connections."""
    await configure(conn)
    await conn.execute("SET synchronous_commit = off")


async def connect(dsn: str) -> Any:
    """One connection (migrations, LISTEN). Raises StoreError with libpq's reason on one line."""
    try:
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(dsn, autocommit=True, **connect_kwargs(dsn)),
            timeout=CONNECT_TIMEOUT_S * 3,
        )
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL ({describe(dsn)}): {reason(exc)}") from exc
    try:
        await configure(conn)
    except psycopg.Error as exc:
        await conn.close()
        raise StoreError(f"PostgreSQL ({describe(dsn)}): {reason(exc)}") from exc
    return conn


async def open_pool(dsn: str, *, ephemeral: bool = False) -> Any:
    """The pool of durable writes and reads, or (``ephemeral``) the small one of claims."""
    pool = AsyncConnectionPool(
        dsn,
        min_size=1 if ephemeral else POOL_MIN,
        max_size=EPHEMERAL_MAX if ephemeral else POOL_MAX,
        timeout=POOL_TIMEOUT_S,
        kwargs=connect_kwargs(dsn),
        configure=configure_ephemeral if ephemeral else configure,
        open=False,
        name="hookd-claims" if ephemeral else "hookd",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 3)
    except PoolTimeout as exc:
        await pool.close()
        raise StoreError(f"cannot connect to PostgreSQL ({describe(dsn)}): {exc}") from exc
    return pool


def reason(exc: BaseException) -> str:
    """libpq's message on one line (it may span several, one per host tried)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def wrap(exc: BaseException, doing: str) -> StoreError:
    """A psycopg or pool error as hookd's StoreError (one line)."""
    if isinstance(exc, PoolTimeout):
        return StoreError(f"{doing}: no database connection within {POOL_TIMEOUT_S:g} s")
    return StoreError(f"{doing}: {reason(exc)}")


DB_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error, PoolTimeout, OSError)
