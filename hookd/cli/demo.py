"""``hookd demo``: the real daemon, a receiver that fails on purpose, and a live summary.

Everything runs in this one process: :func:`hookd.daemon.run` on a temporary database with a
built-in config (two endpoints with different schemes and bodies, a short retry policy), a local
receiver that verifies every request and fails some first attempts (500s, a 429 with
Retry-After), sample events posted through the real ingest API, and a summary refreshed every
second until Ctrl-C, SIGTERM or ``--duration``. On a terminal the summary redraws in place;
otherwise it appends plain lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hookd.cli.command import add_command
from hookd.cli.verifier import Verifier, decoded
from hookd.errors import HookdError
from hookd.units import parse_duration

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

DEMO_CONFIG = """\
# The configuration `hookd demo` runs with (written to a temporary directory).
listen: 127.0.0.1:{port}
storage: {{path: {db}, synchronous: normal}}
delivery: {{allow_private_networks: true}}   # the receiver is on this machine
log: {{level: info, format: json}}
policies:
  demo:
    timeout: 5s
    retry_on: [non-2xx, timeout, network]
    delays: [1s, 2s, 4s]
    jitter: none
    honor_retry_after: true
endpoints:
  - id: orders                                 # Standard Webhooks, standard body
    url: {receiver}/orders
    events: ["order.*"]
    policy: demo
    signing: {{scheme: standard-webhooks, secret: {whsec}}}
  - id: crm                                    # the "Taskee Portal" style: RSA, taskee body
    url: {receiver}/crm
    events: ["Contact*"]
    policy: demo
    body: taskee
    signing: {{scheme: rsa-sha256, private_key_file: {key}}}
"""

SAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("order.created", {"order_id": 1001, "amount_cents": 4200, "currency": "EUR"}),
    ("ContactCreate", {"contact_id": "c-17", "email": "ada@example.com"}),
    ("order.paid", {"order_id": 1001, "paid_cents": 4200}),
    ("ContactUpdate", {"contact_id": "c-17", "changes": {"phone": "+33 1 23 45 67 89"}}),
    ("order.shipped", {"order_id": 1001, "carrier": "DHL"}),
    ("order.created", {"order_id": 1002, "amount_cents": 990, "currency": "EUR"}),
)


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "demo",
        help="try hookd: the daemon, a flaky receiver, sample events, a live view",
        description=(
            "Run the real daemon on a temporary database with a demo config, a local receiver "
            "that fails some deliveries on purpose (500s, a 429 with Retry-After) so retries "
            "show, a few sample events, and a live summary until Ctrl-C. Other hookd commands "
            "can talk to it meanwhile (the first lines say how)."
        ),
        examples=["hookd demo", "hookd demo --events 12 --duration 30"],
    )
    parser.add_argument("--port", type=int, default=0, help="daemon port (default: a free one)")
    parser.add_argument(
        "--events", type=_count, default=len(SAMPLES), help="sample events to post (default 6)"
    )
    parser.add_argument(
        "--duration", type=_seconds, help="stop by itself after this long (seconds, or 30s, 2m)"
    )
    parser.set_defaults(handler=cmd_demo)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def planned(k: int, attempt: int) -> tuple[int, dict[str, str]]:
    """The receiver's answer to attempt ``attempt`` of the ``k``-th distinct message (from 0)."""
    failures: list[tuple[int, dict[str, str]]] = []
    if k % 6 == 1:
        failures = [(500, {})]
    elif k % 6 == 2:
        failures = [(429, {"Retry-After": "2"})]
    elif k % 6 == 4:
        failures = [(500, {}), (503, {})]
    return failures[attempt - 1] if attempt <= len(failures) else (200, {})


# --------------------------------------------------------------------------- the receiver


@dataclass(kw_only=True, slots=True)
class Hit:
    at: float
    endpoint: str
    event_type: str
    event_id: str
    attempt: int
    status: int
    valid: bool
    retry_after: str | None


@dataclass(kw_only=True)
class FlakyReceiver:
    """Verifies every request and answers per :func:`planned`; remembers what it saw."""

    verifiers: dict[str, Verifier]
    attempts: dict[str, int] = field(default_factory=dict)  # body fingerprint → attempts seen
    messages: dict[str, int] = field(default_factory=dict)  # body fingerprint → k
    hits: list[Hit] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        endpoint = request.path.strip("/")
        body = await request.read()
        verifier = self.verifiers.get(endpoint)
        if verifier is None:
            return web.Response(status=404)
        valid, _ = verifier.check(request.headers, body)
        key = hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()
        k = self.messages.setdefault(key, len(self.messages))
        attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
        status, headers = planned(k, attempt)
        payload = decoded(body)
        payload = payload if isinstance(payload, dict) else {}
        self.hits.append(
            Hit(
                at=time.time(),
                endpoint=endpoint,
                event_type=str(payload.get("type") or payload.get("event") or "?"),
                event_id=request.headers.get("webhook-id") or str(payload.get("webhookId", "?")),
                attempt=attempt,
                status=status,
                valid=valid,
                retry_after=headers.get("Retry-After"),
            )
        )
        return web.Response(status=status, text=f"{status}\n", headers=headers)

    def line(self, hit: Hit) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(hit.at))
        note = "" if hit.valid else " SIGNATURE INVALID"
        if hit.status >= 300:
            note += (
                f" (on purpose, Retry-After {hit.retry_after}s)"
                if hit.retry_after
                else (" (on purpose)")
            )
        return (
            f"{clock}  {hit.endpoint:<6}  {hit.event_type:<13}  attempt {hit.attempt} → "
            f"{hit.status}{note}  {hit.event_id}"
        )


# --------------------------------------------------------------------------- the demo


@dataclass(kw_only=True)
class Demo:
    out: TextIO
    live: bool  # redraw in place (a terminal) or append lines
    url: str = ""
    started: float = field(default_factory=time.monotonic)
    posted: int = 0
    status: dict[str, Any] = field(default_factory=dict)
    shown_hits: int = 0
    last_status_line: str = ""
    drawn: int = 0  # lines of the live block on screen
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=8))

    def status_line(self) -> str:
        counts = self.status.get("deliveries") or {}
        return (
            f"deliveries: pending {counts.get('pending', 0)}, "
            f"succeeded {counts.get('succeeded', 0)}, failed {counts.get('failed', 0)}; "
            f"retries scheduled {self.status.get('scheduled', 0)}, "
            f"in flight {self.status.get('in_flight', 0)}; events posted {self.posted}"
        )

    def update(self, receiver: FlakyReceiver) -> None:
        new = [receiver.line(hit) for hit in receiver.hits[self.shown_hits :]]
        self.shown_hits = len(receiver.hits)
        self.recent.extend(new)
        if not self.live:
            for line in new:
                self.write(line)
            status = self.status_line()
            if status != self.last_status_line:
                self.write("status: " + status)
                self.last_status_line = status
            return
        width = shutil.get_terminal_size((100, 24)).columns
        block = [
            f"hookd demo at {self.url} — {time.monotonic() - self.started:.0f}s (Ctrl-C stops)",
            self.status_line(),
            "recent attempts (receiver side):",
            *("  " + line for line in self.recent),
        ]
        up = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""
        self.out.write(up + "\n".join(line[:width] for line in block) + "\n")
        self.out.flush()
        self.drawn = len(block)

    def write(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hookd-demo-") as tmp:
        return asyncio.run(run_demo(args, Path(tmp), sys.stdout))


async def run_demo(args: argparse.Namespace, tmp: Path, out: TextIO) -> int:
    from aiohttp import web

    receiver, whsec = await _make_receiver(tmp)
    runner = await _receiver_runner(receiver)
    demo = Demo(out=out, live=out.isatty())
    daemon_task: asyncio.Task[int] | None = None
    log_file = (tmp / "hookd.log").open("a", encoding="utf-8")
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        receiver_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        port = args.port or _free_port()
        demo.url = f"http://127.0.0.1:{port}"
        config_path = _write_config(tmp, port=port, receiver_url=receiver_url, whsec=whsec)
        daemon_task = await _start_daemon(config_path, log_file, demo.url)
        stop = _stop_on_signals()  # after the daemon's own handlers: these win
        _introduce(demo, receiver_url, tmp)
        demo.started = time.monotonic()
        await _watch(demo, receiver, daemon_task, stop, events=args.events, duration=args.duration)
        died = daemon_task.done()
    finally:
        if daemon_task is not None:
            await _stop_daemon(daemon_task)
        await runner.cleanup()
        log_file.close()
    demo.write(_final(demo, receiver))
    if died:
        raise HookdError(f"the demo daemon stopped unexpectedly; see {tmp}/hookd.log")
    return 0


async def _make_receiver(tmp: Path) -> tuple[FlakyReceiver, str]:
    """The receiver, verifying with fresh keys; its whsec_ secret (the RSA key is in tmp)."""
    from hookd import signing

    whsec = signing.generate_standard_secret()
    private_pem, public_pem = await asyncio.to_thread(signing.generate_rsa)
    (tmp / "crm.pem").write_bytes(private_pem)
    receiver = FlakyReceiver(
        verifiers={
            "orders": Verifier(scheme=signing.STANDARD_WEBHOOKS, secret=whsec),
            "crm": Verifier(scheme=signing.RSA_SHA256, public_key=public_pem.decode()),
        }
    )
    return receiver, whsec


async def _receiver_runner(receiver: FlakyReceiver) -> web.AppRunner:
    from aiohttp import web

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    return runner


def _write_config(tmp: Path, *, port: int, receiver_url: str, whsec: str) -> Path:
    config_path = tmp / "hookd.yaml"
    config_path.write_text(
        DEMO_CONFIG.format(
            port=port,
            db=tmp / "hookd.db",
            receiver=receiver_url,
            whsec=whsec,
            key=tmp / "crm.pem",
        )
    )
    return config_path


def _stop_on_signals() -> asyncio.Event:
    """An event SIGINT and SIGTERM set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _watch(
    demo: Demo,
    receiver: FlakyReceiver,
    daemon_task: asyncio.Task[int],
    stop: asyncio.Event,
    *,
    events: int,
    duration: float | None,
) -> None:
    """Post the samples and refresh the summary every second until stopped, timed out or dead."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        poster = asyncio.create_task(_post_samples(http, demo, events), name="samples")
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            if daemon_task.done():
                break
            await _refresh(http, demo, receiver)
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
        poster.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poster
        await _refresh(http, demo, receiver)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start_daemon(config_path: Path, log_file: TextIO, url: str) -> asyncio.Task[int]:
    import aiohttp
    import structlog

    from hookd import config as configuration
    from hookd import daemon, logs

    config = configuration.load(config_path)
    logs.configure(config.log.level, config.log.format)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=log_file))
    task = asyncio.create_task(daemon.run(config, config_path), name="daemon")
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if task.done():
                error = task.exception()
                raise HookdError(f"the demo daemon did not start: {error}") from error
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return task
            if time.monotonic() > deadline:
                raise HookdError(f"the demo daemon at {url} was not ready within 15s")
            await asyncio.sleep(0.05)


async def _stop_daemon(task: asyncio.Task[int]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _introduce(demo: Demo, receiver_url: str, tmp: Path) -> None:
    for line in (
        f"hookd demo: daemon at {demo.url} (config and database in {tmp}, log {tmp}/hookd.log)",
        f"receiver at {receiver_url}: /orders (standard-webhooks) and /crm (rsa-sha256, taskee "
        "body); it fails some first attempts on purpose (500, 429 with Retry-After, 503)",
        f"open {demo.url}/ui/ in a browser for the dashboard, or try in another terminal:",
        f"  hookd status --url {demo.url}",
        f"  hookd deliveries list --url {demo.url}",
        f"  hookd send order.created --data '{{\"order_id\": 7}}' --url {demo.url}",
        "Ctrl-C stops the demo." if demo.live else "SIGINT or SIGTERM stops the demo.",
        "",
    ):
        demo.write(line)


async def _post_samples(http: aiohttp.ClientSession, demo: Demo, count: int) -> None:
    """Post ``count`` sample events through the real ingest API, a quarter second apart."""
    import aiohttp

    for i in range(count):
        kind, data = SAMPLES[i % len(SAMPLES)]
        try:
            async with http.post(demo.url + "/v1/events", json={"type": kind, "data": data}) as r:
                if r.status not in (200, 202):
                    demo.write(f"could not post {kind}: HTTP {r.status} {await r.text()}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            demo.write(f"could not post {kind}: {exc or type(exc).__name__}")
            return
        demo.posted += 1
        await asyncio.sleep(0.25)


async def _refresh(http: aiohttp.ClientSession, demo: Demo, receiver: FlakyReceiver) -> None:
    import aiohttp

    try:
        async with http.get(demo.url + "/v1/status") as resp:
            if resp.status == 200:
                demo.status = await resp.json()
    except (OSError, TimeoutError, ValueError, aiohttp.ClientError) as exc:
        demo.write(f"status unavailable: {exc or type(exc).__name__}")
    demo.update(receiver)


def _final(demo: Demo, receiver: FlakyReceiver) -> str:
    failed_on_purpose = sum(1 for hit in receiver.hits if hit.status >= 300)
    invalid = sum(1 for hit in receiver.hits if not hit.valid)
    return (
        f"hookd demo stopped after {time.monotonic() - demo.started:.0f}s. "
        + demo.status_line()
        + f". The receiver saw {len(receiver.hits)} attempts ({failed_on_purpose} failed on "
        f"purpose, {len(receiver.hits) - invalid} with a valid signature)."
    )
