"""Which storage backend a daemon under test runs on: the hook for PostgreSQL.

Tests that start a daemon (in this process or as a real ``hookd run``) and that must hold on
every backend take ``backend`` from :data:`DAEMON_BACKENDS` and add :func:`storage_keys` to the
config's ``storage`` mapping. SQLite needs nothing more than the file in the test's directory.
The PostgreSQL backend (branch ``pg``) adds ``"postgres"`` here and returns
``", backend: postgres, dsn: '<fresh database>'"`` from its ``tests/pg_server.fresh_database()``;
:func:`row_counts` then reads the same tables over that DSN.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

DAEMON_BACKENDS = ["sqlite"]

# The tables whose rows a refused request must leave alone (tests/test_faults_hostile.py).
TABLES = ("events", "deliveries", "attempts", "endpoints")


def storage_keys(backend: str) -> str:
    """More keys for ``tests.support.config(storage=...)`` so the daemon runs on ``backend``."""
    if backend == "sqlite":
        return ""
    raise ValueError(f"no daemon test support for backend {backend!r} yet")


def row_counts(backend: str, where: Path) -> dict[str, int]:
    """Rows per table in the daemon's database (read beside the running daemon).

    ``where`` is the test's directory (SQLite: ``where/hookd.db``, read-only, as WAL allows).
    """
    if backend != "sqlite":
        raise ValueError(f"no row counts for backend {backend!r} yet")
    uri = f"file:{where / 'hookd.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        return {t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}
