"""Readiness reflects a real write, and a database that cannot be written answers 503 in bounded
time: a full disk (SQLite's own file), another process holding the database's write lock (on
every backend). Nothing accepted is lost, and hookd recovers without a restart."""

from __future__ import annotations

import asyncio
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookd.store import Store
from tests.support import (
    Process,
    Receiver,
    backends,
    every_event,
    opened_store,
    start_process,
    stopped_at_exit,
    wait_for,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("backend")]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config(url: str) -> str:
    return (
        "listen: 127.0.0.1:{port}\nstorage: {{{storage}}}\n"
        "delivery: {{allow_private_networks: true}}\n"
        f"endpoints:\n  - id: a\n    url: {url}\n    signing: {{{{secret: {SECRET}}}}}\n"
    )


async def call(
    process: Process, method: str, path: str, *, within: float = 8, **kw: Any
) -> tuple[int, dict[str, str], Any]:
    """One request with a client timeout: a hang fails the test instead of stalling it."""
    timeout = aiohttp.ClientTimeout(total=within)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.request(method, process.url + path, **kw) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json()


async def readyz_says(process: Process, expected: int) -> bool:
    """Whether /readyz answers ``expected`` (within the client timeout: a hang fails)."""
    status, headers, body = await call(process, "GET", "/readyz")
    if status == 503:
        assert body["status"] == "unavailable", body
        assert headers["Retry-After"]
    return status == expected


async def ingest(process: Process, data: Any, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return await call(process, "POST", "/v1/events", json={"type": "t", "data": data}, **kw)


async def delivered(process: Process, accepted: Any) -> bool:
    """Whether the accepted event's delivery is recorded as succeeded."""
    [delivery] = accepted["deliveries"]
    _, _, shown = await call(process, "GET", f"/v1/deliveries/{delivery['id']}")
    return bool(shown["status"] == "succeeded")


# --------------------------------------------------------------------------- the store alone


async def test_ping_is_a_real_write(tmp_path: Path) -> None:
    """The readiness ping commits a heartbeat (on SQLite a row: an empty transaction commits even
    on a full disk; on PostgreSQL this node's ``last_seen_at``); pings close together share one
    write."""
    store = backends.open_current(tmp_path / "hookd.db")
    await store.open()
    try:
        before = time.time()
        await asyncio.gather(*(store.ping() for _ in range(20)))
        assert await heartbeat_at(store, tmp_path) >= before
    finally:
        await store.close()


async def heartbeat_at(store: Store, tmp_path: Path) -> float:
    """When the last ping wrote: SQLite's heartbeat row, read from the file; on PostgreSQL the
    node's ``last_seen_at``, which only a write moves (``nodes()`` reads it from the table)."""
    if backends.current() == "sqlite":
        with sqlite3.connect(tmp_path / "hookd.db") as db:
            [(at,)] = db.execute("SELECT at FROM heartbeat").fetchall()
        return float(at)
    [me] = [node for node in await store.nodes() if node.id == store.node_id]
    return me.last_seen_at


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Process]:
    with stopped_at_exit(start_process(tmp_path, config(sink.url))) as process:
        await wait_ready(process)
        yield process


def set_file_size_limit(pid: int, limit: int) -> None:
    """The process's soft RLIMIT_FSIZE: a write past ``limit`` bytes of a file fails (EFBIG), as
    on a full disk. The hard limit stays, so the soft one can be raised again."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))


@pytest.mark.sqlite_only("fills the daemon's own WAL file; PostgreSQL's disk is the server's")
async def test_readyz_answers_503_when_the_disk_is_full_and_recovers(
    tmp_path: Path, daemon: Process, sink: Receiver
) -> None:
    status, _, accepted = await ingest(daemon, {"before": True})
    assert status == 202
    await wait_for(lambda: len(sink.requests) == 1)
    wal = tmp_path / "hookd.db-wal"
    assert daemon.log_path.stat().st_size < wal.stat().st_size  # the log can still grow
    set_file_size_limit(daemon.proc.pid, wal.stat().st_size)  # the WAL cannot
    try:
        status, headers, body = await ingest(daemon, {"pad": "x" * 10_000})
        assert status == 503, body
        assert headers["Retry-After"]
        await wait_for(lambda: readyz_says(daemon, 503), timeout=20)
    finally:
        set_file_size_limit(daemon.proc.pid, resource.RLIM_INFINITY)

    await wait_for(lambda: readyz_says(daemon, 200), timeout=20)
    status, _, after = await ingest(daemon, {"after": True})
    assert status == 202
    await wait_for(lambda: any(b'"after"' in r.body for r in sink.requests), timeout=20)
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM events")}
    assert {accepted["id"], after["id"]} <= ids
    assert daemon.proc.poll() is None


# --------------------------------------------------------------------------- the write lock


@pytest.fixture
def lock_holder(tmp_path: Path) -> Any:
    """Another process that takes the database's write lock and holds it until told: SQLite's
    (``BEGIN IMMEDIATE``), or on PostgreSQL a SHARE lock on every table ingest and the readiness
    ping write (reads go on, writes wait)."""

    def hold() -> subprocess.Popen[str]:
        if backends.current() == "postgres":
            return _hold(
                "import psycopg, sys\n"
                f"db = psycopg.connect({backends.dsn()!r})\n"
                "db.execute('LOCK TABLE events, deliveries, nodes IN SHARE MODE')\n"
            )
        return _hold(
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(tmp_path / 'hookd.db')!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
        )

    def _hold(lock: str) -> subprocess.Popen[str]:
        code = lock + "print('locked', flush=True)\nsys.stdin.readline()\ndb.rollback()\n"
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        held.append(proc)
        return proc

    held: list[subprocess.Popen[str]] = []
    yield hold
    for proc in held:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


async def test_an_outside_write_lock_gets_503_in_bounded_time_not_a_hang(
    daemon: Process, sink: Receiver, lock_holder: Any, tmp_path: Path
) -> None:
    """Ingests and /readyz answer 503 with Retry-After within the client's 8 s (they hung for
    10 s and more); once the lock is gone, everything works and nothing accepted is lost."""
    status, _, accepted = await ingest(daemon, {"before": True})
    assert status == 202
    await wait_for(lambda: delivered(daemon, accepted))  # no record of it waits for the lock
    holder = lock_holder()

    answers = await asyncio.gather(*(ingest(daemon, {"n": n}) for n in range(4)))
    for status, headers, body in answers:
        assert status == 503, body
        assert headers["Retry-After"]
    await wait_for(lambda: readyz_says(daemon, 503), timeout=20)

    assert holder.stdin is not None
    holder.stdin.write("release\n")
    holder.stdin.flush()
    assert await asyncio.to_thread(holder.wait, 10) == 0

    status, _, after = await ingest(daemon, {"after": True})
    assert status == 202
    await wait_for(lambda: readyz_says(daemon, 200), timeout=20)
    await wait_for(lambda: len(sink.requests) == 2, timeout=20)
    assert daemon.proc.poll() is None
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    async with opened_store(tmp_path / "hookd.db") as store:  # every event stored, in ingest order
        assert [e.id for e in await every_event(store)] == [accepted["id"], after["id"]]
