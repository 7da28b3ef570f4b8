from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hookd.store import Store
from tests import pg_server
from tests.support import Receiver, receiver
from tests.support.backends import (
    BACKENDS,
    backend,  # noqa: F401 (a fixture)
    open_backend,
    open_current,
)
from tests.support.browser import browser  # noqa: F401 (a fixture)
from tests.support.slow import spawning_tests_are_marked_slow  # noqa: F401 (autouse)

# BACKENDS: every backend the store contract suite (tests/test_store_contract.py, which imports
# it and open_backend from here) and the tests taking the ``backend`` fixture run on. The
# postgres cases skip, saying why, when there is no server to be had (see tests/pg_server.py).


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``backend`` (a module opts in with ``pytestmark =
    pytest.mark.usefixtures("backend")``) runs once per backend, ``test_x[postgres]``; one
    marked ``@pytest.mark.sqlite_only("why")`` on SQLite alone."""
    if "backend" not in metafunc.fixturenames:
        return
    if any("backend" in _argnames(m) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test names its backends itself (and opens their stores)
    only = metafunc.definition.get_closest_marker("sqlite_only")
    if only is not None and not (only.args and isinstance(only.args[0], str)):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: sqlite_only needs a reason")
    metafunc.parametrize("backend", ["sqlite"] if only else BACKENDS, indirect=True)


def _argnames(mark: pytest.Mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


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


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open store on the test's database (tests.support.backends: a SQLite file in
    ``tmp_path`` unless the test takes ``backend``), with YAML endpoints ``a`` and ``b``."""
    if "backend" in request.fixturenames:
        request.getfixturevalue("backend")  # set up first: it says which database
    s = open_current(tmp_path / "hookd.db")
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
