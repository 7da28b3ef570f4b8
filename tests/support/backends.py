"""The storage backend the running test uses, for the helpers that would otherwise fix one.

A test runs on SQLite unless it takes the :func:`backend` fixture; a module opts in whole with
``pytestmark = pytest.mark.usefixtures("backend")``. ``pytest_generate_tests`` in conftest
parametrizes that fixture with :data:`BACKENDS` (ids ``test_x[sqlite]``, ``test_x[postgres]``);
a test marked ``@pytest.mark.sqlite_only("why")`` gets ``[sqlite]`` alone.

The fixture records the backend here (as :mod:`tests.support.slow` records the slow marker), and
the helpers read it: :func:`storage` fills ``{storage}`` in daemon YAML (``write_config``),
:func:`open_current` opens the store that YAML names (``opened_store``, conftest's ``store``).
A PostgreSQL test gets a database of its own on first use, the same for every daemon and store
it opens; without a server the postgres case skips, saying why (:mod:`tests.pg_server`).
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookd.cluster import STATE_S
from hookd.store import SQLiteStore, Store
from tests import pg_server

# Every backend a parametrized test runs on, and the store contract suite too.
BACKENDS = ["sqlite", "postgres"]
# storage.lease_slack of every PostgreSQL daemon in the tests (SPEC §12's default is 30 s): the
# takeover after a SIGKILL then takes the policy's timeout + 3 s, not + 30 s.
LEASE_SLACK = 3.0
# The storage.secret_key of every PostgreSQL daemon in the tests (base64 of 32 bytes).
SECRET_KEY = "aG9va2QtdGVzdHMtc2VjcmV0LWtleS0zMi1ieXRlcyE="


class _Current:
    """The running test's backend, and its PostgreSQL database once made."""

    backend = "sqlite"
    dsn: str | None = None


_current = _Current()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend this test runs on (parametrized by conftest's ``pytest_generate_tests``)."""
    name: str = request.param
    if name not in BACKENDS:
        raise ValueError(name)
    _current.backend, _current.dsn = name, None
    try:
        yield name
    finally:
        _current.backend, _current.dsn = "sqlite", None


def current() -> str:
    """The running test's backend: ``sqlite`` unless it takes the ``backend`` fixture."""
    return _current.backend


def dsn() -> str:
    """The running PostgreSQL test's database (made on first use)."""
    if current() != "postgres":
        raise AssertionError("this test runs on SQLite: it has no PostgreSQL database")
    if _current.dsn is None:
        _current.dsn = pg_server.fresh_database()
    return _current.dsn


def storage(tmp_path: Path) -> str:
    """What ``{storage}`` stands for in daemon YAML: the keys of the ``storage`` mapping that
    place the outbox (a SQLite file ``tmp_path/hookd.db``, or the test's PostgreSQL database)."""
    if current() == "postgres":
        quoted = dsn().replace("'", "''")
        return (
            f"backend: postgres, dsn: '{quoted}', secret_key: {SECRET_KEY},"
            f" lease_slack: {LEASE_SLACK:g}s"
        )
    return f"path: {tmp_path / 'hookd.db'}"


def open_backend(backend: str, tmp_path: Path, *, max_pending: int = 1_000_000) -> Store:
    """A new, unopened store of ``backend`` with a fresh database."""
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "hookd.db", max_pending=max_pending)
    if backend == "postgres":
        from hookd.store.pg import PostgresStore

        return PostgresStore(pg_server.fresh_database(), max_pending=max_pending)
    raise ValueError(backend)


def open_current(db: Path) -> Store:
    """A new, unopened store on the running test's database: the SQLite file ``db`` (for
    :func:`storage`'s YAML, ``tmp_path / "hookd.db"``), or the test's PostgreSQL database."""
    if current() == "postgres":
        from hookd.store.pg import PostgresStore

        return PostgresStore(dsn())
    return SQLiteStore(db)


def takeover_s(timeout_s: float) -> float:
    """How long after a SIGKILL the next process waits to make the dead one's in-flight attempts
    again (policy ``timeout`` ``timeout_s``): none on SQLite, whose leases die with the process
    that owned the file; on PostgreSQL until their leases run out (timeout + 30 s, SPEC §12)."""
    return timeout_s + LEASE_SLACK if current() == "postgres" else 0.0


def live_state_s() -> float:
    """How long the daemon's live endpoint state (``/v1/status``: enabled, failure counters) may
    lag what its store committed after attempts end together: not at all on SQLite, whose one
    writer answers in commit order; on PostgreSQL, whose record transactions run side by side
    and may answer out of commit order, until the cluster task's next read of the rows
    (``hookd.cluster.STATE_S``)."""
    return STATE_S + 1.0 if current() == "postgres" else 0.0


def rig_storage() -> str:
    """More keys of the ``storage`` mapping of :mod:`bench.rig`'s daemons (which name a SQLite
    path) so they run on the test's backend: none on SQLite, the test's database on PostgreSQL."""
    return ", " + storage(Path()) if current() == "postgres" else ""


def database_connections(pid: int) -> int:
    """How many connections process ``pid`` holds to the test's PostgreSQL server (hookd names
    each ``hookd[PID]``, libpq's ``application_name``); 0 on SQLite. Its pools open them on
    demand and keep them (up to 15), so a descriptor count that must come back to a baseline
    leaves them out: call this after counting, its own connection is closed when it returns."""
    if current() != "postgres":
        return 0
    import psycopg

    with psycopg.connect(dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (f"hookd[{pid}]",)
        ).fetchone()
    return int(row[0]) if row else 0


# What a refused request must leave alone (tests/test_faults_hostile.py): the rows of these
# tables, and what each endpoint is (not its failure counter, which deliveries move).
TABLES = ("events", "deliveries", "endpoints", "tenants", "tenant_tokens")
ENDPOINT_COLUMNS = "id, source, spec, secrets, enabled, disabled_reason, tenant"


def snapshot(where: Path) -> dict[str, object]:
    """Rows per table and a digest of every endpoint, read beside the running daemon from the
    test's database: ``where/hookd.db`` (read-only, as WAL allows), or over the test's DSN."""
    if current() == "postgres":
        import psycopg

        with psycopg.connect(dsn(), autocommit=True) as conn:
            counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES]
            rows = conn.execute(f"SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY id").fetchall()
    else:
        uri = f"file:{where / 'hookd.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone() for t in TABLES]
            rows = db.execute(f"SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY id").fetchall()
    out: dict[str, object] = {t: int(c[0]) for t, c in zip(TABLES, counts, strict=True) if c}
    out["endpoint_rows"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out
