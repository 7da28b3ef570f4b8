"""The real pieces of the reliability benches (:mod:`bench.crashloop`, :mod:`bench.soak`).

- :class:`Sink`: a receiver in this process that counts 2xx answers per (path, webhook-id), so
  "delivered", "missing" and "duplicates" are exact; it can fail a share of first arrivals and
  answer after a random delay.
- :class:`Load`: an open-loop load generator (a fixed rate, whatever the answers) that keeps the
  ids of every event answered 202, and the latency of each answer.
- :class:`Daemons`: ``hookd run`` processes on one database (one with SQLite; with PostgreSQL,
  several sharing one outbox), started, killed and restarted, with ``/proc`` readings.

Everything listens on 127.0.0.1. The tests in tests/test_faults_crashloop.py and
tests/test_faults_soak.py run short versions of the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import percentile

__all__ = ["Daemon", "Daemons", "Load", "Sink", "percentile", "running_sink", "status"]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- the receiver


@dataclass
class Sink:
    """Counts what it answered 2xx, per (path, webhook-id); ``fail`` is the share of first
    arrivals answered 500 (chosen by the id's hash, so a repeat of the same id is consistent)."""

    fail: float = 0.0
    max_delay: float = 0.0
    url: str = ""
    ok: Counter[tuple[str, str]] = field(default_factory=Counter)
    arrivals: int = 0
    failed: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrivals += 1
        key = (request.path, request.headers.get("webhook-id", ""))
        first = key not in self.seen
        self.seen.add(key)
        if self.max_delay:
            await asyncio.sleep(self.rng.uniform(0, self.max_delay))
        if first and zlib.crc32(key[1].encode()) % 1000 < self.fail * 1000:
            self.failed += 1
            return web.Response(status=500, text="failing on purpose")
        self.ok[key] += 1
        return web.Response(text="ok")

    def delivered(self, path: str) -> set[str]:
        return {wid for (p, wid), n in self.ok.items() if p == path and n}

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.ok.values() if n > 1)


@contextlib.asynccontextmanager
async def running_sink(sink: Sink) -> AsyncIterator[Sink]:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", sink.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    sink.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield sink
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- the load


@dataclass
class Load:
    """POSTs one event every 1/``rate`` s (a batch of ``batch`` every ``batch_every``-th time)
    to a daemon picked by ``target()``, whatever the answers (open loop)."""

    rate: float
    batch: int = 5
    batch_every: int = 5  # every 5th request is a batch
    accepted: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    sent_events: int = 0
    requests: int = 0
    stamp: bool = False  # put the send time in each event's data.t

    async def run(self, target: Any, stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            tasks: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            while not stop.is_set():
                self.requests += 1
                url = target()
                if url is not None:
                    task = asyncio.create_task(self._one(http, url, self.requests))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    self.statuses["no process"] += 1
                wait = start + self.requests / self.rate - time.monotonic()
                await asyncio.sleep(max(0.0, wait))
            if tasks:
                await asyncio.wait(tasks)

    async def _one(self, http: aiohttp.ClientSession, url: str, n: int) -> None:
        is_batch = n % self.batch_every == 0
        count = self.batch if is_batch else 1
        stamp = {"t": time.time()} if self.stamp else {}
        events = [{"type": "bench.load", "data": {"n": n, "k": k, **stamp}} for k in range(count)]
        self.sent_events += count
        began = time.monotonic()
        try:
            if is_batch:
                async with http.post(url + "/v1/events/batch", json=events) as resp:
                    answer = await resp.json(content_type=None)
                    status = resp.status
                ids = [item["id"] for item in answer["items"]] if status == 202 else []
            else:
                async with http.post(url + "/v1/events", json=events[0]) as resp:
                    answer = await resp.json(content_type=None)
                    status = resp.status
                ids = [answer["id"]] if status == 202 else []
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.statuses[type(exc).__name__] += 1
            return
        self.statuses[str(status)] += 1
        self.accepted.update(ids)
        if status == 202:
            self.latencies.append((began, time.monotonic() - began))


# --------------------------------------------------------------------------- the daemons


def daemon_yaml(
    port: int, db: Path, sink: str, *, storage: str = "", policy: str = "", fifo: bool = True
) -> str:
    """Two endpoints on ``sink``: ``/a`` (up to 16 in flight) and ``/b`` (fifo, or no limit)."""
    policy = policy or "{delays: [200ms, 500ms, 1s, 2s, 5s, 10s, 10s, 10s], jitter: none}"
    return (
        f"listen: 127.0.0.1:{port}\n"
        "shutdown_timeout: 2s\n"
        f"storage: {{path: {db}, synchronous: full{storage}}}\n"
        "delivery: {allow_private_networks: true}\n"
        "log: {level: info, format: json}\n"
        f"policies:\n  bench: {policy}\n"
        "endpoints:\n"
        f"  - {{id: a, url: '{sink}/a', policy: bench, max_in_flight: 16,"
        f" signing: {{secret: {SECRET}}}}}\n"
        f"  - {{id: b, url: '{sink}/b', policy: bench, ordering: {'fifo' if fifo else 'none'},"
        f" signing: {{secret: {SECRET}}}}}\n"
    )


@dataclass
class Daemon:
    name: str
    port: int
    config: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready_at: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fds(self) -> int:
        assert self.proc is not None
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def descriptors(self, sink_port: int) -> dict[str, int]:
        """Open descriptors by kind: ``inbound`` (API connections), ``outbound`` (to the sink),
        ``listen``, ``other_sockets``, ``files`` (the database, logs, pipes, eventfds, ...)."""
        assert self.proc is not None
        pid = self.proc.pid
        inodes: dict[str, tuple[int, int]] = {}  # socket inode -> (local port, remote port)
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                    cols = line.split()
                    local, remote = cols[1], cols[2]
                    inodes[cols[9]] = (
                        int(local.rsplit(":", 1)[1], 16),
                        int(remote.rsplit(":", 1)[1], 16),
                    )
        kinds: Counter[str] = Counter()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if not target.startswith("socket:["):
                    kinds["files"] += 1
                    continue
                local, remote = inodes.get(target[8:-1], (0, -1))
                if local == self.port:
                    kinds["listen" if remote == 0 else "inbound"] += 1
                elif remote == sink_port:
                    kinds["outbound"] += 1
                else:
                    kinds["other_sockets"] += 1
        return dict(kinds)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


@dataclass
class Daemons:
    """``count`` hookd processes on one database (``count`` > 1 needs a shared backend)."""

    workdir: Path
    sink: str
    count: int = 1
    storage: str = ""  # more keys of the ``storage`` mapping, e.g. ", backend: postgres, dsn: …"
    policy: str = ""
    fifo: bool = True  # endpoint b: ordering fifo
    members: list[Daemon] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.count > 1 and "backend: postgres" not in self.storage:
            raise ValueError(
                "several processes share one outbox only with storage.backend: postgres"
            )
        for i in range(self.count):
            port = _free_port()
            config = self.workdir / f"hookd-{i}.yaml"
            db = self.workdir / "hookd.db"
            config.write_text(
                daemon_yaml(
                    port, db, self.sink, storage=self.storage, policy=self.policy, fifo=self.fifo
                )
            )
            self.members.append(Daemon(f"hookd-{i}", port, config, self.workdir / f"hookd-{i}.log"))

    def start(self, member: Daemon) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(member.log, "ab") as log:
            member.proc = subprocess.Popen(
                [sys.executable, "-m", "hookd", "run", "-c", str(member.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
        member.started = time.monotonic()
        member.ready_at = None

    async def ready(self, member: Daemon, within: float = 60.0) -> float:
        """Seconds from spawn to ``/readyz`` 200."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                if not member.alive():
                    raise RuntimeError(f"{member.name} exited:\n{member.log.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(member.url + "/readyz") as resp:
                        if resp.status == 200:
                            member.ready_at = time.monotonic()
                            return member.ready_at - member.started
                await asyncio.sleep(0.01)
        raise RuntimeError(f"{member.name} not ready within {within}s")

    def kill(self, member: Daemon) -> None:
        if member.proc is not None and member.alive():
            member.proc.send_signal(signal.SIGKILL)
            member.proc.wait(10)

    def stop(self, member: Daemon, timeout: float = 30.0) -> int | None:
        if member.proc is None:
            return None
        if member.alive():
            member.proc.send_signal(signal.SIGTERM)
            try:
                member.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                member.proc.kill()
                member.proc.wait(10)
        return member.proc.returncode

    def target(self) -> str | None:
        """A live process to send to (any, when they share one outbox)."""
        live = [m for m in self.members if m.alive()]
        return random.choice(live).url if live else None

    def stop_all(self) -> None:
        for member in self.members:
            with contextlib.suppress(Exception):
                self.stop(member, timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def status(url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(url + "/v1/status") as resp,
    ):
        result: dict[str, Any] = await resp.json()
        return result
