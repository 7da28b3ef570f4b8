from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hookd.store import SQLiteStore, Store
from tests import pg_server
from tests.support import Receiver, receiver
from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.slow import spawning_tests_are_marked_slow  # noqa: F401 (autouse)

# Every backend the store contract suite (tests/test_store_contract.py) runs against. The
# postgres cases skip, saying why, when there is no server to be had (see tests/pg_server.py).
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", autouse=True)
def _postgres_server() -> Iterator[None]:
    """Owns the throwaway PostgreSQL server that :mod:`tests.pg_server` starts on first use."""
    try:
        yield
    finally:
        pg_server.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    """A recording receiver on an ephemeral 127.0.0.1 port."""
    async with receiver() as rec:
        yield rec


def open_backend(backend: str, tmp_path: Path, *, max_pending: int = 1_000_000) -> Store:
    """A new, unopened store of ``backend`` with a fresh database."""
    if backend == "sqlite":
        return SQLiteStore(tmp_path / "hookd.db", max_pending=max_pending)
    if backend == "postgres":
        from hookd.store.pg import PostgresStore

        return PostgresStore(pg_server.fresh_database(), max_pending=max_pending)
    raise ValueError(backend)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open store on a SQLite file in ``tmp_path``, with YAML endpoints ``a`` and ``b``."""
    s = SQLiteStore(tmp_path / "hookd.db")
    await s.open()
    await s.reconcile_config_endpoints({"a": None, "b": None})
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open store of each backend, with YAML endpoints ``a`` and ``b``."""
    s = open_backend(request.param, tmp_path)
    await s.open()
    await s.reconcile_config_endpoints({"a": None, "b": None})
    try:
        yield s
    finally:
        await s.close()
