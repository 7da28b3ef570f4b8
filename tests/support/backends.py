"""Which storage backend a daemon under test runs on: the hook for PostgreSQL.

Tests that start a daemon (in this process or as a real ``hookd run``) and that must hold on
every backend take ``backend`` from :data:`DAEMON_BACKENDS` and add :func:`storage_keys` to the
config's ``storage`` mapping. SQLite needs nothing more than the file in the test's directory.
The PostgreSQL backend (branch ``pg``) adds ``"postgres"`` here and returns
``", backend: postgres, dsn: '<fresh database>'"`` from its ``tests/pg_server.fresh_database()``;
and :func:`snapshot` then reads the same tables over that DSN.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

DAEMON_BACKENDS = ["sqlite"]

# What a refused request must leave alone (tests/test_faults_hostile.py): the rows of these
# tables, and what each endpoint is (not its failure counter, which deliveries move).
TABLES = ("events", "deliveries", "endpoints", "tenants", "tenant_tokens")
ENDPOINT_COLUMNS = "id, source, spec, secrets, enabled, disabled_reason, tenant"


def storage_keys(backend: str) -> str:
    """More keys for ``tests.support.config(storage=...)`` so the daemon runs on ``backend``."""
    if backend == "sqlite":
        return ""
    raise ValueError(f"no daemon test support for backend {backend!r} yet")


def snapshot(backend: str, where: Path) -> dict[str, object]:
    """Rows per table and a digest of every endpoint, read beside the running daemon.

    ``where`` is the test's directory (SQLite: ``where/hookd.db``, read-only, as WAL allows).
    """
    if backend != "sqlite":
        raise ValueError(f"no snapshot for backend {backend!r} yet")
    uri = f"file:{where / 'hookd.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
        out: dict[str, object] = {
            t: int(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES
        }
        rows = db.execute(f"SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY id").fetchall()
    out["endpoint_rows"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out
