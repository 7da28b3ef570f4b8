"""PostgreSQL for the tests: ``$HOOKD_TEST_DSN`` if set, else a throwaway server started from
Debian's ``postgresql`` binaries (owned by a session fixture in ``tests/conftest.py``), else a
skip that says why. Each test gets a database of its own (:func:`fresh_database`)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_server: _Server | None = None
_skip: str | None = None
_names = itertools.count(1)
_made: list[str] = []


class _Server:
    def __init__(self, *, durable: bool = False) -> None:
        self.bin = _binaries()  # first: no temp directory left behind when there are none
        self.dir = Path(tempfile.mkdtemp(prefix="hookd-pg-"))
        # durable: commits wait for the WAL write (synchronous_commit on), so a server killed
        # by halt() keeps every commit it answered (fsync stays off: the OS does not crash)
        self.durable = durable
        try:
            self._start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.dsn = f"host={self.sock} user=postgres dbname=postgres"

    def _start(self) -> None:
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        as_postgres = os.geteuid() == 0
        if as_postgres:
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.sock, "postgres")
        self._prefix = ["runuser", "-u", "postgres", "--"] if as_postgres else []
        self._run(
            "initdb",
            "-D",
            str(self.dir / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self.resume()

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`); returns once it takes connections."""
        commits = "" if self.durable else " -c synchronous_commit=off"
        options = (
            f"-c listen_addresses='' -k {self.sock} -c fsync=off{commits}"
            " -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._prefix, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def halt(self) -> None:
        """Stop the server as a crash would (``-m immediate``: connections cut, no checkpoint);
        :meth:`resume` starts it again on the same data."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _binaries() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name
    )
    if not found:
        raise FileNotFoundError("no /usr/lib/postgresql/*/bin/initdb")
    return found[-1].parent


def server_dsn() -> str:
    """The DSN of the server the tests use (starting one on first use), or skip."""
    global _server, _skip
    if os.environ.get("HOOKD_TEST_DSN"):
        return os.environ["HOOKD_TEST_DSN"]
    if _skip is not None:
        pytest.skip(_skip)
    if _server is None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _skip = "postgres: psycopg is not installed (pip install -e '.[dev]')"
            pytest.skip(_skip)
        try:
            _server = _Server()
        except (OSError, subprocess.SubprocessError) as exc:
            _skip = (
                "postgres: no $HOOKD_TEST_DSN and no PostgreSQL server could be started "
                f"(apt-get install postgresql): {exc}"
            )
            pytest.skip(_skip)
    return _server.dsn


@contextlib.contextmanager
def separate_server() -> Iterator[_Server]:
    """A throwaway server of the test's own, durable, to halt and resume (the shared one is
    never stopped); skips, saying why, where none can be started. Its DSN is ``.dsn``."""
    if os.environ.get("HOOKD_TEST_DSN"):
        pytest.skip("postgres: a server of the test's own is needed, not $HOOKD_TEST_DSN's")
    server_dsn()  # psycopg and the binaries present, or skip saying why
    server = _Server(durable=True)
    try:
        yield server
    finally:
        server.stop()


def fresh_database() -> str:
    """A new empty database on the test server; its DSN."""
    import psycopg
    from psycopg import conninfo

    base = server_dsn()
    name = f"hookd_t{os.getpid()}_{next(_names)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _made.append(name)
    return conninfo.make_conninfo(base, dbname=name)


def stop() -> None:
    """End of the session: drop what was made on a server we did not start; stop ours."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
    elif _made and os.environ.get("HOOKD_TEST_DSN"):
        import psycopg

        with psycopg.connect(os.environ["HOOKD_TEST_DSN"], autocommit=True) as conn:
            for name in _made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _made.clear()
