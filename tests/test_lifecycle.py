"""The real ``hookd run`` process: crash safety, graceful stop, reload, systemd, startup errors.

The tests start ``python -m hookd run`` (tests.support ``start_process``) and talk to it over
HTTP and signals, the way systemd, Kubernetes or an operator would; the last two run the daemon
in this process and send SIGHUP to it.

The SIGKILL, SIGTERM and reload tests run on every backend (``ON_EVERY_BACKEND``); the systemd
and startup-error tests are about the process and the SQLite file, and run on SQLite alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from hookd.store import DeliveryFilter, DeliveryRow
from tests.support import (
    ADMIN,
    INGEST,
    SECRET,
    Daemon,
    Process,
    Receiver,
    assert_one_line_error,
    backends,
    bearer,
    capped,
    clean_env,
    opened_store,
    run_hookd,
    running_daemon,
    start_process,
    stopped_at_exit,
    wait_for,
    wait_ready,
    write_config,
)

HMAC_SECRET = "hmac-shared-secret-do-not-log"
ON_EVERY_BACKEND = pytest.mark.usefixtures("backend")


# --------------------------------------------------------------------------- helpers


def assert_clean_log(process: Process, *secrets: str) -> None:
    """Logs are JSON lines with an event, a level and a timestamp, and contain no secret."""
    text = process.log()
    events = process.log_events()
    assert events
    for item in events:
        assert {"event", "level", "timestamp"} <= set(item), item
    for secret in secrets:
        assert secret not in text, f"a secret leaked into the log: {secret[:6]}…"


def on_disk(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows read straight from the database file, with nothing of hookd in between.

    Only for what the file itself must show after a SIGKILL: that is the durability claim,
    so no store (which could repair or cache anything) stands between the test and the disk.
    """
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


async def delivery_of(tmp_path: Path, delivery_id: str) -> tuple[str, int]:
    """(status, attempt count) of a delivery, through the store, once no hookd holds it."""
    async with opened_store(tmp_path / "hookd.db") as store:
        row = await store.delivery(delivery_id)
    assert row is not None, delivery_id
    return row.status, row.attempt_count


async def shown_status(process: Process, delivery_id: str) -> str:
    """A delivery's status from ``GET /v1/deliveries/{id}`` of the running process."""
    async with (
        aiohttp.ClientSession(headers=bearer(ADMIN)) as http,
        http.get(f"{process.url}/v1/deliveries/{delivery_id}") as resp,
    ):
        assert resp.status == 200, await resp.text()
        status: str = (await resp.json())["status"]
        return status


async def post_event(process: Process, event: dict[str, Any], token: str = INGEST) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.post(process.url + "/v1/events", json=event, headers=bearer(token)) as resp,
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
    timeout: str = "15s",
) -> str:
    """``timeout``: the ``standard`` policy's (an attempt's, and with it a lease's)."""
    tokens = f"auth: {{{{ingest_tokens: [{INGEST}], admin_tokens: [{ADMIN}]}}}}\n" if auth else ""
    return f"""\
listen: 127.0.0.1:{{port}}
shutdown_timeout: {shutdown}
storage: {{{{{{storage}}}}}}
delivery: {{{{allow_private_networks: true}}}}
policies: {{{{standard: {{{{timeout: {timeout}}}}}}}}}
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


@pytest.mark.slow
@ON_EVERY_BACKEND
async def test_sigkill_after_202_keeps_the_event_and_the_restart_delivers_it(
    tmp_path: Path, sink: Receiver
) -> None:
    """kill -9 while the attempt is in flight: the accepted event and its delivery are on disk,
    and the restarted daemon makes the attempt again (same webhook-id) until it succeeds (on
    PostgreSQL once the dead process's lease has run out)."""
    sink.hold = True
    text = config(sink.base, timeout="2s")  # a short lease: PostgreSQL waits it out
    with stopped_at_exit(start_process(tmp_path, text, name="first-run")) as first:
        await wait_ready(first)
        status, body, _ = await post_event(first, {"type": "task.created", "data": {"n": 1}})
        assert status == 202
        delivery = body["deliveries"][0]["id"]
        await sink.received(1)  # the attempt is in flight
        first.signal(signal.SIGKILL)
        assert await first.exited() == -signal.SIGKILL

    if backends.current() == "sqlite":
        db = tmp_path / "hookd.db"
        assert on_disk(db, "SELECT type FROM events WHERE id = ?", body["id"]) == [
            ("task.created",)
        ]
        assert on_disk(
            db, "SELECT status, attempt_count FROM deliveries WHERE id = ?", delivery
        ) == [("pending", 0)]
    async with opened_store(tmp_path / "hookd.db") as store:
        event = await store.event(body["id"])
        assert event is not None
        assert event.type == "task.created"
    assert await delivery_of(tmp_path, delivery) == ("pending", 0)

    sink.hold = False
    with stopped_at_exit(start_process(tmp_path, text, name="second-run")) as second:
        await wait_ready(second)

        async def succeeded() -> bool:
            return await shown_status(second, delivery) == "succeeded"

        await wait_for(succeeded, timeout=15 + backends.takeover_s(2))
        assert sink.webhook_ids() == [body["id"], body["id"]]  # the same id on both attempts
        second.signal(signal.SIGTERM)
        assert await second.exited() == 0
    assert_clean_log(second, SECRET, HMAC_SECRET, INGEST, ADMIN)


# --------------------------------------------------------------------------- graceful stop


@pytest.mark.slow
@ON_EVERY_BACKEND
async def test_sigterm_drains_readiness_first_lets_the_attempt_finish_and_exits_0(
    tmp_path: Path, sink: Receiver
) -> None:
    """SIGTERM with an attempt in flight: /readyz turns 503 and ingest answers 503 with
    Retry-After while the process is still up; the sink attempt is let finish (recorded as
    succeeded, not cancelled); then the process exits 0."""
    sink.hold = True
    with stopped_at_exit(start_process(tmp_path, config(sink.base, shutdown="20s"))) as process:
        await wait_ready(process)
        status, body, _ = await post_event(process, {"type": "task.created", "data": {}})
        assert status == 202
        await sink.received(1)

        process.signal(signal.SIGTERM)

        async def not_ready() -> bool:
            return await get_status(process.url, "/readyz") == 503

        await wait_for(not_ready, interval=0.02)
        status, error, headers = await post_event(process, {"type": "late", "data": {}})
        assert status == 503
        assert error["error"]["code"] == "draining"
        assert int(headers["Retry-After"]) > 0
        assert process.proc.poll() is None  # still draining: the attempt is sink

        sink.release()
        assert await process.exited() == 0

    assert await delivery_of(tmp_path, body["deliveries"][0]["id"]) == ("succeeded", 1)
    names = [e["event"] for e in process.log_events()]
    assert names.index("hookd.stopping") < names.index("hookd.stopped")
    assert (await process.logged("hookd.ready"))["loop"] == "uvloop"
    assert_clean_log(process, SECRET, HMAC_SECRET, INGEST, ADMIN)


@pytest.mark.slow
@ON_EVERY_BACKEND
async def test_sigterm_cancels_attempts_still_running_after_shutdown_timeout(
    tmp_path: Path, sink: Receiver
) -> None:
    """An attempt that outlives ``shutdown_timeout`` is cancelled: the process waits that long,
    then exits 0 while the receiver still holds the request (it never answered), and the
    delivery stays pending (attempted again after the restart)."""
    sink.hold = True
    with stopped_at_exit(start_process(tmp_path, config(sink.base, shutdown="300ms"))) as process:
        await wait_ready(process)
        _, body, _ = await post_event(process, {"type": "task.created", "data": {}})
        await sink.received(1)
        started = time.monotonic()
        process.signal(signal.SIGTERM)
        assert await process.exited() == 0
        assert time.monotonic() - started >= 0.3  # the grace was given ...
        assert sink.answered == 0  # ... and the attempt was not waited out
    delivery = body["deliveries"][0]["id"]
    assert await delivery_of(tmp_path, delivery) == ("pending", 0)
    assert (await process.logged("dispatcher.cancelled_stragglers"))["deliveries"] == [delivery]


# --------------------------------------------------------------------------- reload


@pytest.mark.slow
@ON_EVERY_BACKEND
async def test_sighup_rejects_a_bad_file_and_applies_a_good_one(
    tmp_path: Path, sink: Receiver
) -> None:
    """SIGHUP with broken YAML: the log says reload rejected (with the problem) and the old
    endpoints keep serving; SIGHUP with a good file adding an endpoint: it gets deliveries."""
    with stopped_at_exit(start_process(tmp_path, config(sink.base))) as process:
        await wait_ready(process)
        good = process.config_path.read_text()

        process.config_path.write_text(good + "  - id: broken\n    url: [\n")
        process.signal(signal.SIGHUP)
        rejected = await process.logged("config.reload_rejected")
        assert "YAML syntax error" in rejected["problems"][0]
        assert f"{process.config_path}:" in rejected["problems"][0]
        status, body, _ = await post_event(process, {"type": "task.a", "data": {}})
        assert status == 202
        assert [d["endpoint"] for d in body["deliveries"]] == ["first"]

        added = f"  - id: added\n    url: {sink.base}/added\n    signing: {{secret: {SECRET}}}\n"
        process.config_path.write_text(good + added)
        process.signal(signal.SIGHUP)
        await process.logged("config.reloaded")
        status, body, _ = await post_event(process, {"type": "task.b", "data": {}})
        assert sorted(d["endpoint"] for d in body["deliveries"]) == ["added", "first"]
        await wait_for(lambda: any(r.path == "/added" for r in sink.requests))

        process.signal(signal.SIGTERM)
        assert await process.exited() == 0
    assert_clean_log(process, SECRET, HMAC_SECRET, INGEST, ADMIN)


@pytest.mark.slow
@ON_EVERY_BACKEND
async def test_a_reload_cannot_drop_the_tokens_of_an_exposed_listener(
    tmp_path: Path, sink: Receiver
) -> None:
    """Listening beyond loopback with tokens, a reload to a token-less file is rejected (the
    listener cannot change without a restart, so it would end up open to the network)."""
    text = config(sink.base).replace("listen: 127.0.0.1:{port}", "listen: 0.0.0.0:{port}")
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
        rejected = await process.logged("config.reload_rejected")
        assert "a reload cannot remove every token" in rejected["problems"][0]
        assert await get_status(process.url, "/v1/status") == 401  # still guarded
        process.signal(signal.SIGTERM)
        assert await process.exited() == 0


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


@pytest.mark.slow
async def test_sd_notify_ready_watchdog_reloading_and_stopping(
    tmp_path: Path, sink: Receiver
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
            with stopped_at_exit(start_process(tmp_path, config(sink.base), env=env)) as process:
                await wait_for(lambda: "READY=1" in messages)
                assert await get_status(process.url, "/readyz") == 200  # READY means serving
                await wait_for(lambda: messages.count("WATCHDOG=1") >= 3)

                process.signal(signal.SIGHUP)
                await wait_for(lambda: messages.count("READY=1") == 2)
                reloading = [m for m in messages if m.startswith("RELOADING=1")]
                assert len(reloading) == 1
                assert "\nMONOTONIC_USEC=" in reloading[0]
                assert "READY=1" in messages[messages.index(reloading[0]) + 1 :]

                process.signal(signal.SIGTERM)
                assert await process.exited() == 0
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


def run_to_exit(tmp_path: Path, text: str, port: int | None = None) -> Any:
    """``hookd run -c FILE`` with ``text`` (``{port}``/``{db}`` filled in), to its exit."""
    path = write_config(tmp_path, text, port=port)
    return run_hookd("run", "-c", str(path), env=clean_env())


@pytest.mark.slow
def test_refuses_a_non_loopback_listener_without_tokens(tmp_path: Path) -> None:
    """listen: 0.0.0.0 and no auth tokens: exit 2, one line naming the file, line and key."""
    result = run_to_exit(
        tmp_path,
        config("http://127.0.0.1:9", auth=False).replace(
            "listen: 127.0.0.1:{port}", "listen: 0.0.0.0:{port}"
        ),
    )
    assert_one_line_error(
        result,
        2,
        "hookd.yaml:1: listen:",
        "is not a loopback address",
        logs=True,
        prefix=str(tmp_path / "hookd.yaml"),
    )
    assert not (tmp_path / "hookd.db").exists()  # refused before touching anything


@pytest.mark.slow
def test_a_port_in_use_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Another process holds the port: ``hookd: cannot listen on ADDR: address already in use``."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_to_exit(tmp_path, config("http://127.0.0.1:9"), port=port)
    assert_one_line_error(
        result, 1, f"hookd: cannot listen on 127.0.0.1:{port}", "in use", logs=True
    )


@pytest.mark.slow
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
    text = config("http://127.0.0.1:9").replace("{storage}", f"path: {tmp_path / where}")
    result = run_to_exit(tmp_path, text)
    assert_one_line_error(
        result, 1, "hookd: cannot", str(tmp_path / where.split("/")[0]), logs=True
    )
    assert reason in result.err.lower()


# --------------------------------------------------------------------------- reload, in-process


@ON_EVERY_BACKEND
async def test_a_reload_applies_new_limits_and_keeps_restart_only_settings(
    tmp_path: Path,
) -> None:
    """SIGHUP (to this process, which runs the daemon in its loop): ``limits.max_pending`` takes
    effect at once; ``delivery.allow_private_networks`` needs a restart, says so in the log,
    and keeps its running value (deliveries to loopback are still attempted, not refused)."""
    async with running_daemon(tmp_path, capped(100)) as d:
        assert (await d.post_event("a"))[0] == 202
        text = d.config_path.read_text().replace("max_pending: 100", "max_pending: 2")
        d.config_path.write_text(text.replace("{allow_private_networks: true}", "{}"))
        with structlog.testing.capture_logs() as captured:
            os.kill(os.getpid(), signal.SIGHUP)

            async def refused() -> bool:
                return (await d.post_event("b"))[0] == 429

            await wait_for(refused, interval=0.05)
        assert {
            "event": "config.restart_needed",
            "key": "delivery.allow_private_networks",
            "log_level": "warning",
        } in captured

        async def attempted() -> bool:
            return [r.attempt_count for r in await deliveries(d)] == [1, 1]

        await wait_for(attempted)
        assert await d.store.counts_by_status() == {"pending": 2, "succeeded": 0, "failed": 0}


@ON_EVERY_BACKEND
async def test_a_reload_that_removes_an_endpoint_fails_its_pending_deliveries(
    tmp_path: Path,
) -> None:
    """SIGHUP with an endpoint gone from the YAML: its pending deliveries become ``failed``
    ("endpoint removed from the configuration"), so they stop counting against max_pending."""
    async with running_daemon(tmp_path, capped(100)) as d:
        assert (await d.post_event("a"))[0] == 202

        async def attempted() -> bool:
            return [r.attempt_count for r in await deliveries(d)] == [1]

        await wait_for(attempted)
        text = d.config_path.read_text()
        d.config_path.write_text(text[: text.index("endpoints:")])
        with structlog.testing.capture_logs() as captured:
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_for(lambda: any(e["event"] == "config.reloaded" for e in captured))
        assert [(r.status, r.attempt_count, r.last_error) for r in await deliveries(d)] == [
            ("failed", 1, "endpoint removed from the configuration")
        ]
        removed = [e for e in captured if e["event"] == "endpoint.removed"]
        assert [(e["endpoint"], e["pending_failed"]) for e in removed] == [("down", 1)]
        status, body = await d.request("GET", "/v1/status")
        assert (status, body["deliveries"]["pending"]) == (200, 0)


async def deliveries(d: Daemon) -> list[DeliveryRow]:
    """Every delivery in the daemon's store, newest first."""
    page = await d.store.deliveries(DeliveryFilter(), limit=100)
    assert page.next_cursor is None
    return page.items
