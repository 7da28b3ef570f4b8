"""Storage faults for a real ``hookd run`` process, switched on and off while it runs.

- :class:`DiskFull`: the database on a small tmpfs of its own, filled to the last byte (needs
  ``mount``, i.e. root); else the process's RLIMIT_FSIZE set to the WAL's size, so the WAL
  cannot grow (as tests/test_readiness.py does).
- :class:`ReadOnly`: the kernel refuses to remount a file system read-only while a file on it
  is open for writing (EBUSY), so this one is injected: :func:`start_faulty` runs hookd through
  this module, which wraps the writer's SQLite connection; while the flag file exists every
  write transaction fails with SQLite's own error for a read-only database.
- :class:`WriteLock`: another process takes SQLite's write lock (``BEGIN IMMEDIATE``) and holds it.
- :class:`Flapping`: a disk nearly full, injected like :class:`ReadOnly`: every other write
  transaction fails (``database or disk is full``), the others go through.

Each is used as ``with fault.active(process): ...`` (switching takes milliseconds);
:data:`KINDS` names them for parametrize.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from tests.support.daemon import write_config
from tests.support.polling import free_port
from tests.support.process import Process
from tests.support.slow import require_slow

FLAG_ENV = "HOOKD_TEST_STORAGE_FAULT"  # the flag file's path, for the injected fault
READ_ONLY_ERROR = "attempt to write a readonly database"  # SQLite's words (SQLITE_READONLY)
FULL_ERROR = "database or disk is full"  # (SQLITE_FULL)
ALTERNATE = "alternate"  # the flag file's content for Flapping


class Fault(Protocol):
    name: str

    def database(self, tmp_path: Path) -> Path: ...

    def active(self, process: Process) -> contextlib.AbstractContextManager[None]: ...


class DiskFull:
    """No space left on the database's file system (see the module docstring)."""

    name = "disk_full"
    refused_share = 0.5  # of the ingests during the outage, at least

    def __init__(self) -> None:
        self.mount: Path | None = None
        self.how = ""

    def database(self, tmp_path: Path) -> Path:
        mount = tmp_path / "small-disk"
        mount.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            self.mount = mount
            self.how = "tmpfs filled"
        else:
            self.how = "RLIMIT_FSIZE at the WAL's size"
        return mount / "hookd.db"

    @contextlib.contextmanager
    def active(self, process: Process) -> Iterator[None]:
        if self.mount is not None:
            filler = self.mount / "filler"
            with open(filler, "wb") as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 1_048_576)
                    out.flush()
            try:
                yield
            finally:
                filler.unlink()
            return
        wal = Path(f"{process.config_path.parent / 'small-disk' / 'hookd.db'}-wal")
        _, hard = resource.prlimit(process.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.proc.pid, resource.RLIMIT_FSIZE, (wal.stat().st_size, hard))
        try:
            yield
        finally:
            resource.prlimit(
                process.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard)
            )

    def cleanup(self) -> None:
        if self.mount is not None:
            subprocess.run(["umount", "-l", str(self.mount)], capture_output=True, check=False)


class ReadOnly:
    """Every write transaction fails as on a read-only database (injected: module docstring)."""

    name = "read_only"
    refused_share = 0.5  # of the ingests during the outage, at least
    how = "injected SQLITE_READONLY"

    def __init__(self) -> None:
        self.flag: Path | None = None

    def database(self, tmp_path: Path) -> Path:
        self.flag = tmp_path / "read-only.flag"
        return tmp_path / "hookd.db"

    @contextlib.contextmanager
    def active(self, process: Process) -> Iterator[None]:
        assert self.flag is not None
        self.flag.touch()
        try:
            yield
        finally:
            self.flag.unlink()

    def cleanup(self) -> None:
        pass


class Flapping(ReadOnly):
    """A disk nearly full: every other write transaction fails as SQLite fails one on a full
    disk, the others go through (injected, as :class:`ReadOnly`)."""

    name = "flapping"
    how = "injected SQLITE_FULL on every other write"
    refused_share = 0.25

    @contextlib.contextmanager
    def active(self, process: Process) -> Iterator[None]:
        assert self.flag is not None
        self.flag.write_text(ALTERNATE)
        try:
            yield
        finally:
            self.flag.unlink()


class WriteLock:
    """Another process holds SQLite's write lock on the database."""

    name = "write_lock"
    refused_share = 0.5  # of the ingests during the outage, at least
    how = "BEGIN IMMEDIATE held by another process"

    def __init__(self) -> None:
        self.path: Path | None = None

    def database(self, tmp_path: Path) -> Path:
        self.path = tmp_path / "hookd.db"
        return self.path

    @contextlib.contextmanager
    def active(self, process: Process) -> Iterator[None]:
        code = (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(self.path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('ROLLBACK')\n"
        )
        holder = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdin is not None
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "locked"
            yield
        finally:
            with contextlib.suppress(OSError):
                holder.stdin.write("release\n")
                holder.stdin.flush()
            try:
                holder.wait(10)
            finally:
                if holder.poll() is None:
                    holder.kill()
                    holder.wait(10)
                holder.stdin.close()
                holder.stdout.close()

    def cleanup(self) -> None:
        pass


KINDS = {
    "disk_full": DiskFull,
    "read_only": ReadOnly,
    "write_lock": WriteLock,
    "flapping": Flapping,
}


def start_faulty(
    tmp_path: Path, yaml_text: str, *, flag: Path | None, name: str = "hookd"
) -> Process:
    """``hookd run`` through this module (the injected fault armed by ``flag``), else as usual."""
    require_slow("hookd run")
    port = free_port()
    path = write_config(tmp_path, yaml_text, port=port, name=name)
    log_path = tmp_path / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
    module = "hookd"
    if flag is not None:
        env[FLAG_ENV] = str(flag)
        module = "tests.support.storage_faults"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "run", "-c", str(path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
    return Process(proc=proc, url=f"http://127.0.0.1:{port}", config_path=path, log_path=log_path)


# --------------------------------------------------------------------------- the injection


class _ReadOnlyWhenFlagged:
    """The writer's connection; a transaction begun while the flag file exists fails."""

    def __init__(self, db: sqlite3.Connection, flag: Path) -> None:
        self._db = db
        self._flag = flag
        self._writes = 0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.lstrip().upper().startswith("BEGIN"):
            self._fail_when_flagged()
        return self._db.execute(sql, *args)

    def _fail_when_flagged(self) -> None:
        try:
            how = self._flag.read_text()
        except FileNotFoundError:
            return
        if how != ALTERNATE:
            raise sqlite3.OperationalError(READ_ONLY_ERROR)
        self._writes += 1
        if self._writes % 2:
            raise sqlite3.OperationalError(FULL_ERROR)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@contextlib.contextmanager
def _injected(flag: Path) -> Iterator[None]:
    from hookd.store.sqlite import SQLiteStore

    connect = SQLiteStore._connect_writer

    def faulty(self: SQLiteStore) -> sqlite3.Connection:
        return _ReadOnlyWhenFlagged(connect(self), flag)  # type: ignore[return-value]

    SQLiteStore._connect_writer = faulty  # type: ignore[method-assign]
    yield


if __name__ == "__main__":
    from hookd.cli import main

    with _injected(Path(os.environ[FLAG_ENV])):
        sys.exit(main())
