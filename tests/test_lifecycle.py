"""The real ``hookd run`` process: crash safety, graceful stop, reload, systemd, startup errors.

Every test here starts ``python -m hookd run`` (tests/support.py ``start_process``) and talks
to it over HTTP and signals, the way systemd, Kubernetes or an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from tests.support import (
    Process,
    free_port,
    running_daemon,
    start_process,
    stopped_at_exit,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.slow

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HMAC_SECRET = "hmac-shared-secret-do-not-log"
INGEST = "ingest-token-never-in-logs-1"
ADMIN = "admin-token-never-in-logs-22"


# --------------------------------------------------------------------------- helpers


@dataclass
class HeldReceiver:
    """A loopback receiver that can hold requests open until released (an attempt in flight)."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    hold: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": body})
        if self.hold:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gate.wait(), timeout=30)
        return web.Response(status=200, text="ok")

    def ids(self) -> list[str]:
        return [r["headers"].get("webhook-id", "") for r in self.requests]


@pytest.fixture
async def held() -> AsyncIterator[HeldReceiver]:
    rec = HeldReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield rec
    finally:
        rec.gate.set()  # let any held handler finish so the receiver stops at once
        await runner.cleanup()


async def exited(process: Process, within: float = 20) -> int:
    """Wait (without blocking the loop, so receivers keep answering) for the process to end."""
    await wait_for(lambda: process.proc.poll() is not None, timeout=within, interval=0.02)
    code = process.proc.returncode
    assert code is not None
    return code


def log_events(process: Process) -> list[dict[str, Any]]:
    """The process log as JSON objects: every line must be one (not a TTY → JSON lines)."""
    events = []
    for line in process.log().splitlines():
        if line.strip():
            events.append(json.loads(line))
    return events


async def logged(process: Process, event: str, within: float = 10) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next((e for e in log_events(process) if e.get("event") == event), None)

    found: dict[str, Any] = await wait_for(find, timeout=within, interval=0.02)
    return found


def assert_clean_log(process: Process, *secrets: str) -> None:
    """Logs are JSON lines with an event, a level and a timestamp, and contain no secret."""
    text = process.log()
    events = log_events(process)
    assert events
    for item in events:
        assert {"event", "level", "timestamp"} <= set(item), item
    for secret in secrets:
        assert secret not in text, f"a secret leaked into the log: {secret[:6]}…"


def rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


async def post_event(process: Process, event: dict[str, Any], token: str = INGEST) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            process.url + "/v1/events", json=event, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        return resp.status, await resp.json(), dict(resp.headers)


async def get_status(url: str, path: str) -> int | None:
    """The HTTP status of GET url+path, or None when nothing listens any more."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(url + path, timeout=aiohttp.ClientTimeout(total=2)) as resp,
        ):
            return resp.status
    except aiohttp.ClientError:
        return None


def config(
    receiver_url: str,
    *,
    shutdown: str = "10s",
    extra_endpoints: str = "",
    auth: bool = True,
) -> str:
    tokens = f"auth: {{{{ingest_tokens: [{INGEST}], admin_tokens: [{ADMIN}]}}}}\n" if auth else ""
    return f"""\
listen: 127.0.0.1:{{port}}
shutdown_timeout: {shutdown}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
{tokens}endpoints:
  - id: first
    url: {receiver_url}/first
    signing: {{{{secret: {SECRET}}}}}
  - id: signed
    url: {receiver_url}/signed
    events: ["signed.*"]
    signing: {{{{scheme: hmac-sha256, secret: {HMAC_SECRET}}}}}
{extra_endpoints}"""


# --------------------------------------------------------------------------- crash safety


async def test_sigkill_after_202_keeps_the_event_and_the_restart_delivers_it(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """kill -9 while the attempt is in flight: the accepted event and its delivery are on disk,
    and the restarted daemon makes the attempt again (same webhook-id) until it succeeds."""
    held.hold = True
    db = tmp_path / "hookd.db"
    with stopped_at_exit(start_process(tmp_path, config(held.url), name="first-run")) as first:
        await wait_ready(first)
        status, body, _ = await post_event(first, {"type": "task.created", "data": {"n": 1}})
        assert status == 202
        delivery = body["deliveries"][0]["id"]
        await wait_for(lambda: len(held.requests) == 1)  # the attempt is in flight
        first.signal(signal.SIGKILL)
        assert await exited(first) == -signal.SIGKILL

    assert rows(db, "SELECT type FROM events WHERE id = ?", body["id"]) == [("task.created",)]
    assert rows(db, "SELECT status, attempt_count FROM deliveries WHERE id = ?", delivery) == [
        ("pending", 0)
    ]

    held.hold = False
    with stopped_at_exit(start_process(tmp_path, config(held.url), name="second-run")) as second:
        await wait_ready(second)

        def succeeded() -> bool:
            found = rows(db, "SELECT status FROM deliveries WHERE id = ?", delivery)
            return found == [("succeeded",)]

        await wait_for(succeeded, timeout=15)
        assert held.ids() == [body["id"], body["id"]]  # the same id on both attempts
        second.signal(signal.SIGTERM)
        assert await exited(second) == 0
    assert_clean_log(second, SECRET, HMAC_SECRET, INGEST, ADMIN)


# --------------------------------------------------------------------------- graceful stop


async def test_sigterm_drains_readiness_first_lets_the_attempt_finish_and_exits_0(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """SIGTERM with an attempt in flight: /readyz turns 503 and ingest answers 503 with
    Retry-After while the process is still up; the held attempt is let finish (recorded as
    succeeded, not cancelled); then the process exits 0."""
    held.hold = True
    db = tmp_path / "hookd.db"
    with stopped_at_exit(start_process(tmp_path, config(held.url, shutdown="20s"))) as process:
        await wait_ready(process)
        status, body, _ = await post_event(process, {"type": "task.created", "data": {}})
        assert status == 202
        await wait_for(lambda: len(held.requests) == 1)

        process.signal(signal.SIGTERM)

        async def not_ready() -> bool:
            return await get_status(process.url, "/readyz") == 503

        await wait_for(not_ready, timeout=5, interval=0.02)
        status, error, headers = await post_event(process, {"type": "late", "data": {}})
        assert status == 503
        assert error["error"]["code"] == "draining"
        assert int(headers["Retry-After"]) > 0
        assert process.proc.poll() is None  # still draining: the attempt is held

        held.gate.set()
        assert await exited(process) == 0

    delivery = body["deliveries"][0]["id"]
    assert rows(db, "SELECT status, attempt_count FROM deliveries WHERE id = ?", delivery) == [
        ("succeeded", 1)
    ]
    names = [e["event"] for e in log_events(process)]
    assert names.index("hookd.stopping") < names.index("hookd.stopped")
    assert (await logged(process, "hookd.ready"))["loop"] == "uvloop"
    assert_clean_log(process, SECRET, HMAC_SECRET, INGEST, ADMIN)


async def test_sigterm_cancels_attempts_still_running_after_shutdown_timeout(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """An attempt that outlives ``shutdown_timeout`` is cancelled; the process still exits 0
    promptly and the delivery stays pending (attempted again after the restart)."""
    held.hold = True
    db = tmp_path / "hookd.db"
    with stopped_at_exit(start_process(tmp_path, config(held.url, shutdown="300ms"))) as process:
        await wait_ready(process)
        _, body, _ = await post_event(process, {"type": "task.created", "data": {}})
        await wait_for(lambda: len(held.requests) == 1)
        started = time.monotonic()
        process.signal(signal.SIGTERM)
        assert await exited(process, within=10) == 0
        assert time.monotonic() - started < 8
    delivery = body["deliveries"][0]["id"]
    assert rows(db, "SELECT status, attempt_count FROM deliveries WHERE id = ?", delivery) == [
        ("pending", 0)
    ]
    assert (await logged(process, "dispatcher.cancelled_stragglers"))["deliveries"] == [delivery]


# --------------------------------------------------------------------------- reload


async def test_sighup_rejects_a_bad_file_and_applies_a_good_one(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """SIGHUP with broken YAML: the log says reload rejected (with the problem) and the old
    endpoints keep serving; SIGHUP with a good file adding an endpoint: it gets deliveries."""
    with stopped_at_exit(start_process(tmp_path, config(held.url))) as process:
        await wait_ready(process)
        good = process.config_path.read_text()

        process.config_path.write_text(good + "  - id: broken\n    url: [\n")
        process.signal(signal.SIGHUP)
        rejected = await logged(process, "config.reload_rejected")
        assert "YAML syntax error" in rejected["problems"][0]
        assert f"{process.config_path}:" in rejected["problems"][0]
        status, body, _ = await post_event(process, {"type": "task.a", "data": {}})
        assert status == 202
        assert [d["endpoint"] for d in body["deliveries"]] == ["first"]

        added = f"  - id: added\n    url: {held.url}/added\n    signing: {{secret: {SECRET}}}\n"
        process.config_path.write_text(good + added)
        process.signal(signal.SIGHUP)
        await logged(process, "config.reloaded")
        status, body, _ = await post_event(process, {"type": "task.b", "data": {}})
        assert sorted(d["endpoint"] for d in body["deliveries"]) == ["added", "first"]
        await wait_for(lambda: any(r["path"] == "/added" for r in held.requests))

        process.signal(signal.SIGTERM)
        assert await exited(process) == 0
    assert_clean_log(process, SECRET, HMAC_SECRET, INGEST, ADMIN)


async def test_a_reload_cannot_drop_the_tokens_of_an_exposed_listener(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """Listening beyond loopback with tokens, a reload to a token-less file is rejected (the
    listener cannot change without a restart, so it would end up open to the network)."""
    text = config(held.url).replace("listen: 127.0.0.1:{port}", "listen: 0.0.0.0:{port}")
    with stopped_at_exit(start_process(tmp_path, text)) as process:
        await wait_ready(process)
        open_file = process.config_path.read_text().splitlines()
        process.config_path.write_text(
            "\n".join(
                line.replace("0.0.0.0", "127.0.0.1")
                for line in open_file
                if not line.startswith("auth:")
            )
        )
        process.signal(signal.SIGHUP)
        rejected = await logged(process, "config.reload_rejected")
        assert "a reload cannot remove every token" in rejected["problems"][0]
        assert await get_status(process.url, "/v1/status") == 401  # still guarded
        process.signal(signal.SIGTERM)
        assert await exited(process) == 0


# --------------------------------------------------------------------------- systemd


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A real AF_UNIX datagram socket like systemd's, at a short path (sun_path is 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="hookd-", dir="/tmp") as directory:
        path = os.path.join(directory, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        try:
            yield sock, path
        finally:
            sock.close()


async def test_sd_notify_ready_watchdog_reloading_and_stopping(
    tmp_path: Path, held: HeldReceiver
) -> None:
    """Under Type=notify: READY=1 once serving, WATCHDOG=1 pings when WATCHDOG_USEC is set,
    RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM, then exit 0."""
    messages: list[str] = []
    with notify_socket() as (sock, path):
        loop = asyncio.get_running_loop()

        async def collect() -> None:
            while True:
                data = await loop.sock_recv(sock, 4096)
                messages.append(data.decode())

        collector = asyncio.create_task(collect())
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}  # a ping every 100 ms
        try:
            with stopped_at_exit(start_process(tmp_path, config(held.url), env=env)) as process:
                await wait_for(lambda: "READY=1" in messages)
                assert await get_status(process.url, "/readyz") == 200  # READY means serving
                await wait_for(lambda: messages.count("WATCHDOG=1") >= 3, timeout=5)

                process.signal(signal.SIGHUP)
                await wait_for(lambda: messages.count("READY=1") == 2)
                reloading = [m for m in messages if m.startswith("RELOADING=1")]
                assert len(reloading) == 1
                assert "\nMONOTONIC_USEC=" in reloading[0]
                assert "READY=1" in messages[messages.index(reloading[0]) + 1 :]

                process.signal(signal.SIGTERM)
                assert await exited(process) == 0
                await wait_for(lambda: any(m.startswith("STOPPING=1\n") for m in messages))
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
    [stopping] = [m for m in messages if m.startswith("STOPPING=1")]
    assert messages.index("READY=1") < messages.index(stopping)
    assert stopping == "STOPPING=1\nEXTEND_TIMEOUT_USEC=20000000"  # 10s grace, 5s HTTP, 5s
    assert all(
        m.startswith(("READY=1", "WATCHDOG=1", "RELOADING=1", "STOPPING=1")) for m in messages
    )


# --------------------------------------------------------------------------- startup errors


def run_to_exit(
    tmp_path: Path, text: str, port: int | None = None
) -> subprocess.CompletedProcess[str]:
    port = port or free_port()
    path = tmp_path / "hookd.yaml"
    path.write_text(text.format(port=port, db=tmp_path / "hookd.db"))
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
    return subprocess.run(
        [sys.executable, "-m", "hookd", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A non-zero exit, no traceback, and exactly one non-log line on stderr naming the cause."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    plain = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, result.stderr
    for needle in needles:
        assert needle in plain[0], plain[0]


def test_refuses_a_non_loopback_listener_without_tokens(tmp_path: Path) -> None:
    """listen: 0.0.0.0 and no auth tokens: exit 2, one line naming the file, line and key."""
    result = run_to_exit(
        tmp_path,
        config("http://127.0.0.1:9", auth=False).replace(
            "listen: 127.0.0.1:{port}", "listen: 0.0.0.0:{port}"
        ),
    )
    assert result.returncode == 2
    assert_one_line_error(result, "hookd.yaml:1: listen:", "is not a loopback address")
    assert not (tmp_path / "hookd.db").exists()  # refused before touching anything


def test_a_port_in_use_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Another process holds the port: ``hookd: cannot listen on ADDR: address already in use``."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_to_exit(tmp_path, config("http://127.0.0.1:9"), port=port)
    assert result.returncode == 1
    assert_one_line_error(result, f"hookd: cannot listen on 127.0.0.1:{port}", "in use")


@pytest.mark.parametrize(
    ("where", "reason"),
    [("not-a-dir/sub/hookd.db", "not a directory"), ("garbage.db", "file is not a database")],
)
def test_an_unusable_database_is_one_line_not_a_traceback(
    tmp_path: Path, where: str, reason: str
) -> None:
    """A database path under a regular file, or a file that is not SQLite: one line, exit 1."""
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    (tmp_path / "garbage.db").write_bytes(b"this is not sqlite" * 100)
    text = config("http://127.0.0.1:9").replace("path: {db}", f"path: {tmp_path / where}")
    result = run_to_exit(tmp_path, text)
    assert result.returncode == 1
    assert_one_line_error(result, "hookd: cannot", str(tmp_path / where.split("/")[0]))
    assert reason in result.stderr.lower()


# --------------------------------------------------------------------------- reload, in-process

CAPPED = f"""\
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
limits: {{{{max_pending: 100}}}}
delivery: {{{{allow_private_networks: true}}}}
policies:
  later: {{{{delays: [1h]}}}}
endpoints:
  - id: down
    url: http://127.0.0.1:9/never
    policy: later
    signing: {{{{secret: {SECRET}}}}}
"""


async def test_a_reload_applies_new_limits_and_keeps_restart_only_settings(
    tmp_path: Path,
) -> None:
    """SIGHUP (to this process, which runs the daemon in its loop): ``limits.max_pending`` takes
    effect at once; ``delivery.allow_private_networks`` needs a restart, says so in the log,
    and keeps its running value (deliveries to loopback are still attempted, not refused)."""
    db = tmp_path / "hookd.db"
    async with running_daemon(tmp_path, CAPPED) as d:
        assert (await d.post_event("a"))[0] == 202
        text = d.config_path.read_text().replace("max_pending: 100", "max_pending: 2")
        d.config_path.write_text(text.replace("{allow_private_networks: true}", "{}"))
        with structlog.testing.capture_logs() as captured:
            os.kill(os.getpid(), signal.SIGHUP)

            async def refused() -> bool:
                return (await d.post_event("b"))[0] == 429

            await wait_for(refused, timeout=5, interval=0.05)
        assert {
            "event": "config.restart_needed",
            "key": "delivery.allow_private_networks",
            "log_level": "warning",
        } in captured

        def attempted() -> bool:
            return rows(db, "SELECT min(attempt_count) FROM deliveries") == [(1,)]

        await wait_for(attempted)
        statuses = rows(db, "SELECT status, count(*) FROM deliveries GROUP BY status")
        assert statuses == [("pending", 2)]


async def test_a_reload_that_removes_an_endpoint_fails_its_pending_deliveries(
    tmp_path: Path,
) -> None:
    """SIGHUP with an endpoint gone from the YAML: its pending deliveries become ``failed``
    ("endpoint removed from the configuration"), so they stop counting against max_pending."""
    db = tmp_path / "hookd.db"
    async with running_daemon(tmp_path, CAPPED) as d:
        assert (await d.post_event("a"))[0] == 202
        await wait_for(lambda: rows(db, "SELECT attempt_count FROM deliveries") == [(1,)])
        text = d.config_path.read_text()
        d.config_path.write_text(text[: text.index("endpoints:")])
        with structlog.testing.capture_logs() as captured:
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: any(e["event"] == "config.reloaded" for e in captured))
        assert rows(db, "SELECT status, attempt_count, last_error FROM deliveries") == [
            ("failed", 1, "endpoint removed from the configuration")
        ]
        removed = [e for e in captured if e["event"] == "endpoint.removed"]
        assert [(e["endpoint"], e["pending_failed"]) for e in removed] == [("down", 1)]
        status, body = await d.request("GET", "/v1/status")
        assert (status, body["deliveries"]["pending"]) == (200, 0)
