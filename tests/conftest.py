from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookd.store import SQLiteStore
from tests.support import Receiver, receiver


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    """A recording receiver on an ephemeral 127.0.0.1 port."""
    async with receiver() as rec:
        yield rec


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open store on a SQLite file in ``tmp_path``, with YAML endpoints ``a`` and ``b``."""
    s = SQLiteStore(tmp_path / "hookd.db")
    await s.open()
    await s.reconcile_config_endpoints(["a", "b"])
    try:
        yield s
    finally:
        await s.close()
