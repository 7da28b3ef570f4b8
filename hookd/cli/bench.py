"""``hookd bench``: ingest and delivery figures for this machine's disk and CPU.

Runs the real daemon (``python -m hookd run``) on a temporary database with ``synchronous:
full``, a counting receiver in a process of its own (:mod:`hookd.cli.benchkit`), and the load
from this process, all on 127.0.0.1, then prints one summary table. Steps: the disk (a one-row
``fsync``'d commit), single-event ingest (closed loop, 64 at a time), batch ingest (100 events a
request, 8 at a time), delivery throughput (events ingested in batches and delivered to one
endpoint signed with Standard Webhooks, with the daemon's CPU per delivery from ingest to the
last delivery: all threads and the event loop's), and ingest→receiver latency at a steady
rate. A progress line shows what runs. Everything stops by itself (``--seconds`` a step).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from hookd.cli import benchkit
from hookd.cli.command import add_command
from hookd.cli.errors import UsageError
from hookd.errors import HookdError

TOKEN = "hookd-bench-token"
WAIT_S = 300.0  # for deliveries to arrive, at most
CONFIG = """\
listen: 127.0.0.1:{port}
storage: {{path: {db}, synchronous: full}}
auth: {{ingest_tokens: [{token}], admin_tokens: [{token}-admin]}}
delivery: {{allow_private_networks: true}}   # the receiver is on this machine
log: {{level: warning, format: json}}
endpoints:
  - id: receiver
    url: http://127.0.0.1:{sink}/hook
    signing: {{scheme: standard-webhooks, secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}
"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "bench",
        help="measure ingest and delivery on this machine (disk and CPU)",
        description=(
            "Start the real daemon on a temporary database (synchronous: full) with a local "
            "receiver, push load over 127.0.0.1 and print ingest and delivery figures for this "
            "machine's disk and CPU: events/s, deliveries/s, CPU per delivery, latency. Takes "
            "5 steps of --seconds each. Other work on the machine lowers every figure."
        ),
        examples=["hookd bench", "hookd bench --seconds 10 --deliveries 20000"],
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step (5)")
    parser.add_argument(
        "--deliveries", type=int, default=10_000, help="deliveries in the throughput step"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="events/s, latency step")
    parser.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.deliveries < 100 or args.rate <= 0:
        raise UsageError("--seconds and --rate must be positive, --deliveries at least 100")
    with tempfile.TemporaryDirectory(prefix="hookd-bench-") as tmp:
        rows = asyncio.run(_bench(Path(tmp), args))
    print("\r" + " " * 78 + "\r", end="", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>14}  detail")
    for name, value, detail in rows:
        print(f"{name:<{width}}  {value:>14}  {detail}")
    return 0


class Progress:
    """One line on stderr, redrawn in place: the step and a live count."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.step = 0
        self.label = ""
        self._shown = 0.0

    def next(self, label: str) -> None:
        self.step += 1
        self.label = label
        self.show("")

    def show(self, detail: str) -> None:
        line = f"[{self.step}/{self.steps}] {self.label} {detail}"
        print("\r" + line[:78].ljust(78), end="", file=sys.stderr, flush=True)

    def count(self, done: int) -> None:
        now = time.monotonic()
        if now - self._shown > 0.25:
            self._shown = now
            self.show(f"{done:,}")


async def _bench(tmp: Path, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    progress = Progress(5)
    rows: list[tuple[str, str, str]] = []
    progress.next("disk: one-row commits with fsync")
    p50, p99 = benchkit.commit_latency(tmp)
    rows.append(("disk commit (fsync) p50", f"{p50:.2f} ms", f"p99 {p99:.2f} ms"))
    with _processes(tmp) as (url, sink, daemon):
        rows += await _ingest(url, args, progress)
        rows += await _delivery(url, sink, daemon, args, progress)
        rows += await _latency(url, sink, args, progress)
    return rows


async def _ingest(url: str, args: argparse.Namespace, progress: Progress) -> list[Any]:
    progress.next("ingest: single events, 64 at a time")
    single, lat = await benchkit.closed_loop(
        url, TOKEN, batch=1, concurrency=64, seconds=args.seconds, progress=progress.count
    )
    detail = f"p50 {benchkit.percentile(lat, 50):.1f} ms, p99 {benchkit.percentile(lat, 99):.1f} ms"
    progress.next("ingest: batches of 100, 8 at a time")
    batch, blat = await benchkit.closed_loop(
        url, TOKEN, batch=100, concurrency=8, seconds=args.seconds, progress=progress.count
    )
    bdetail = f"request p50 {benchkit.percentile(blat, 50):.1f} ms"
    return [
        ("ingest, single events", f"{single:,.0f} /s", detail + " (each committed before 202)"),
        ("ingest, batches of 100", f"{batch:,.0f} /s", bdetail),
    ]


async def _delivery(
    url: str, sink: str, daemon: subprocess.Popen[bytes], args: argparse.Namespace, p: Progress
) -> list[Any]:
    p.next("delivery: ingest and deliver to one endpoint")
    await _settle(sink, daemon)
    _post(sink + "/_reset")
    cpu0, loop0 = benchkit.thread_cpu(daemon.pid)
    n = args.deliveries
    body = orjson.dumps([benchkit.event(i) for i in range(100)])
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(n // 100):
            async with http.post(url + "/v1/events/batch", data=body, headers=headers) as resp:
                await resp.read()
    stats = await _wait_count(sink, n // 100 * 100, p)
    cpu1, loop1 = benchkit.thread_cpu(daemon.pid)
    count = int(stats["count"])
    rate = (count - 1) / max(stats["last"] - stats["first"], 1e-9)
    return [
        ("delivery throughput", f"{rate:,.0f} /s", f"{count:,} signed POSTs to one endpoint"),
        ("CPU per delivery", f"{(cpu1 - cpu0) / count * 1000:.3f} ms", "ingest + attempt + record"),
        ("  of which event loop", f"{(loop1 - loop0) / count * 1000:.3f} ms", "main thread"),
    ]


async def _latency(url: str, sink: str, args: argparse.Namespace, p: Progress) -> list[Any]:
    p.next(f"latency: {args.rate:g} events/s, ingest to receiver")
    _post(sink + "/_reset")
    sent = await benchkit.open_loop(url, TOKEN, rate=args.rate, seconds=args.seconds)
    stats = await _wait_count(sink, sent, p)
    lags = [x * 1000 for x in stats["lags"]]
    p50, p99 = benchkit.percentile(lags, 50), benchkit.percentile(lags, 99)
    return [("ingest→receiver p50", f"{p50:.1f} ms", f"p99 {p99:.1f} ms at {args.rate:g}/s")]


async def _wait_count(sink: str, count: int, p: Progress) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        stats = _get(sink + "/_stats")
        p.count(int(stats["count"]))
        if stats["count"] >= count:
            return stats
        if time.monotonic() > deadline:
            raise HookdError(f"only {stats['count']} of {count} deliveries arrived in time")
        await asyncio.sleep(0.1)


async def _settle(sink: str, daemon: subprocess.Popen[bytes]) -> None:
    """Wait for the deliveries of the ingest steps to drain (their CPU is not counted)."""
    last = -1
    while True:
        await asyncio.sleep(1.0)
        count = int(_get(sink + "/_stats")["count"])
        if count == last:
            return
        last = count


@contextlib.contextmanager
def _processes(tmp: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    sink_port, port = _free_port(), _free_port()
    code = f"from hookd.cli.benchkit import sink_main; sink_main({sink_port})"
    sink_proc = subprocess.Popen([sys.executable, "-c", code])
    config = tmp / "hookd.yaml"
    db = tmp / "hookd.db"
    config.write_text(CONFIG.format(port=port, db=db, token=TOKEN, sink=sink_port))
    log = (tmp / "hookd.log").open("wb")
    argv = [sys.executable, "-m", "hookd", "run", "-c", str(config)]
    daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        url, sink = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sink_port}"
        _wait_up(url + "/readyz", daemon, tmp / "hookd.log")
        _wait_up(sink + "/_stats", sink_proc, None)
        yield url, sink, daemon
    finally:
        for proc in (daemon, sink_proc):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            if proc.poll() is None:
                proc.kill()
        log.close()


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path | None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log is not None else ""
            raise HookdError(f"a bench process exited early: {tail}")
        with contextlib.suppress(OSError):
            _get(url)
            return
        time.sleep(0.1)
    raise HookdError(f"{url} did not answer within 30 s")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return orjson.loads(resp.read())


def _post(url: str) -> None:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
