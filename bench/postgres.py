"""PostgreSQL: 1, 2 and 4 hookd processes on one server, next to SQLite in the same run.

    python -m bench.postgres [--quick] [--dsn DSN]     (or: python -m bench --only postgres)

The server is ``--dsn`` / ``$HOOKD_BENCH_DSN`` (each case gets a fresh database on it), else a
throwaway one started from Debian's binaries in a temp directory with the server's durable
defaults (``fsync=on``, ``synchronous_commit=on``: a 202 waits for the WAL flush, as SQLite's
``synchronous: full`` waits for its fsync). Every process runs the same YAML.

For each backend and process count (SQLite: 1 only):

- ingest: single events (c=64 in all) and batches of 100 (c=8 in all), the clients split evenly
  over the processes (one ``bench.loadgen`` per process, run at the same time), summed; the
  endpoint is parked (a receiver that never answers, ``max_in_flight: 1``), as in
  ``bench.ingest``, so no delivery competes with ingest;
- delivery: N events (batches of 100) spread over the processes, one endpoint pointing at
  ``bench.servers sink``; the sink's first-to-last window gives deliveries/s;
- CPU while it runs: the hookd processes', the PostgreSQL server's (postmaster and backends,
  from ``/proc``), as a share of the 2 cores — what limits scaling.

Claim latency is measured in this process on a fresh database: ``store.claim()`` of one due
delivery, without limits and with ``max_in_flight`` (the endpoint row lock, the lease count),
and ``claim`` + ``record`` (the attempt's whole bookkeeping).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Proc, Report
from bench.delivery import reset_sink, wait_count, window_rate

TOKEN = "bench-ingest-token"
KEY = "bench-secret-key-bench-secret-key-0123"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COUNTS = (1, 2, 4)

YAML = """\
listen: 127.0.0.1:{port}
shutdown_timeout: 2s
storage: {storage}
auth: {{ingest_tokens: [{token}], admin_tokens: [bench-admin-token]}}
delivery: {{allow_private_networks: true}}
log: {{level: warning, format: json}}
policies:
  parked: {{delays: [1h], timeout: 1h}}
endpoints:
{endpoint}"""
PARKED = """  - id: parked
    url: http://127.0.0.1:{hole}/hook
    policy: parked
    max_in_flight: 1
    signing: {{scheme: hmac-sha256, secret: bench-secret}}
"""
SINK = """  - id: sink
    url: {sink}/ep/0
    signing: {{scheme: standard-webhooks, secret: {secret}}}
"""


# --------------------------------------------------------------------------- the server


@contextmanager
def server(dsn: str | None) -> Iterator[tuple[str, int | None]]:
    """``(dsn, postmaster pid or None)``: the given server, or a throwaway one."""
    if dsn:
        yield dsn, None
        return
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL: pass --dsn or install Debian's postgresql")
    bin_dir = found[-1].parent
    root = Path(tempfile.mkdtemp(prefix="hookd-bench-pg-"))
    sock = root / "sock"
    sock.mkdir()
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    data = root / "data"

    def run(*argv: str) -> None:
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-c listen_addresses='' -k {sock} -c max_connections=200 -c shared_buffers=128MB"
    run(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", opts, "start"
    )
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"host={sock} user=postgres dbname=postgres", pid
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(base: str, name: str) -> str:
    import psycopg
    from psycopg import conninfo

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return conninfo.make_conninfo(base, dbname=name)


def server_cpu(postmaster: int | None) -> float:
    """CPU seconds of the postmaster and its children (the backends), or NaN."""
    if postmaster is None:
        return float("nan")
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# --------------------------------------------------------------------------- one case


class Case:
    """``count`` hookd processes on one backend, with their CPU and the server's."""

    def __init__(self, tmp: Path, name: str, storage: str, count: int, endpoint: str):
        self.procs: list[Proc] = []
        for i in range(count):
            port = common.free_port()
            text = YAML.format(port=port, storage=storage, token=TOKEN, endpoint=endpoint)
            self.procs.append(common.start_hookd(tmp, text, port=port, name=f"{name}-{i}"))
        for p in self.procs:
            common.wait_ready(p, timeout=60)

    def cpu(self) -> float:
        return sum(p.cpu_seconds() for p in self.procs)


def ingest(case: Case, mode: str, total_c: int, duration: float) -> float:
    """Events/s over every process, each with its share of the clients, at the same time."""
    each = max(1, total_c // len(case.procs))
    argv = ["--token", TOKEN, "--mode", mode, "--concurrency", str(each)]
    argv += ["--duration", str(duration), "--warmup", "0.5", "--size", "256"]
    with ThreadPoolExecutor(len(case.procs)) as pool:
        runs = [
            pool.submit(common.loadgen, "ingest", "--url", p.url, *argv, timeout=duration + 120)
            for p in case.procs
        ]
        results = [r.result() for r in runs]
    errors = sum(int(r["errors"]) for r in results)
    if errors:
        raise RuntimeError(f"ingest {mode}: {errors} errors: {[r['statuses'] for r in results]}")
    return sum(float(r["events_per_s"]) for r in results)


def deliver(case: Case, sink: Proc, events: int) -> float:
    reset_sink(sink)
    share = events // len(case.procs)
    with ThreadPoolExecutor(len(case.procs)) as pool:
        runs = [
            pool.submit(
                common.loadgen,
                "bulk",
                "--url",
                p.url,
                "--token",
                TOKEN,
                "--events",
                str(share),
                "--concurrency",
                "2",
                timeout=300,
            )
            for p in case.procs
        ]
        for r in runs:
            if r.result()["events"] != share:
                raise RuntimeError(f"delivery ingest failed: {r.result()}")
    stats = wait_count(sink, share * len(case.procs), 300)
    return window_rate(stats)


def hole_port_of(sink: Proc) -> int:
    return int(getattr(sink, "hole_port", 0))


def measure(
    start: Any, sink: Proc, postmaster: int | None, *, events: int, duration: float
) -> dict[str, float]:
    """Ingest on processes whose endpoint is parked, then delivery on fresh ones (own database)."""
    case = start("ingest", PARKED.format(hole=hole_port_of(sink)))
    with common.running(*case.procs):
        started, cpu0, db0 = time.monotonic(), case.cpu(), server_cpu(postmaster)
        single = ingest(case, "single", 64, duration)
        batch = ingest(case, "batch", 8, duration)
        ingest_s = time.monotonic() - started
        ingest_cpu, ingest_db = case.cpu() - cpu0, server_cpu(postmaster) - db0
    case = start("delivery", SINK.format(sink=sink.url, secret=SECRET))
    with common.running(*case.procs):
        started, cpu0, db0 = time.monotonic(), case.cpu(), server_cpu(postmaster)
        delivered = deliver(case, sink, events)
        deliver_s = time.monotonic() - started
        deliver_cpu, deliver_db = case.cpu() - cpu0, server_cpu(postmaster) - db0
    return {
        "single": single,
        "batch": batch,
        "delivery": delivered,
        "ingest_hookd_cpu": ingest_cpu / ingest_s,
        "ingest_db_cpu": ingest_db / ingest_s,
        "delivery_hookd_cpu": deliver_cpu / deliver_s,
        "delivery_db_cpu": deliver_db / deliver_s,
    }


# --------------------------------------------------------------------------- claim latency


async def claim_latency(dsn: str, rounds: int) -> dict[str, dict[str, float]]:
    """ms per ``claim`` of one due delivery (without / with limits) and per claim + record."""
    from hookd.store import AttemptResult, Limits, NewDelivery, NewEvent
    from hookd.store.pg import PostgresStore

    def new_event(event_id: str, endpoint: str) -> NewEvent:
        delivery = NewDelivery(id=f"dlv_{event_id}_{endpoint}", endpoint=endpoint)
        return NewEvent(
            id=event_id,
            type="bench.claim",
            timestamp="2026-01-01T00:00:00.000Z",
            data="{}",
            content_hash="",
            idem_key=None,
            deliveries=(delivery,),
        )

    def result(delivery_id: str, endpoint: str, status: Any, *, lease: int) -> AttemptResult:
        return AttemptResult(
            delivery_id=delivery_id,
            lease=lease,
            n=1,
            started_at=time.time(),
            status_code=200,
            latency_ms=1.0,
            error=None,
            response_body="ok",
            request_headers="{}",
            status=status,
            next_attempt_at=None,
            endpoint=endpoint,
        )

    store = PostgresStore(dsn)
    await store.open()
    try:
        await store.reconcile_config_endpoints({"a": None})
        for start in range(0, rounds * 3, 500):
            await store.ingest([new_event(f"e{i}", "a") for i in range(start, start + 500)])
        jobs = await store.jobs([f"dlv_e{i}_a" for i in range(rounds * 3)])
        out: dict[str, list[float]] = {
            "claim": [],
            "claim, max_in_flight": [],
            "claim + record": [],
        }
        for i in range(rounds):
            t = time.perf_counter()
            await store.claim([jobs[i]], lease_s=60)
            out["claim"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await store.claim([jobs[rounds + i]], lease_s=60, limits=Limits(max_in_flight=10**6))
            out["claim, max_in_flight"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            [job] = await store.claim([jobs[2 * rounds + i]], lease_s=60)
            await store.record([result(job.id, "a", "succeeded", lease=job.lease)])
            out["claim + record"].append((time.perf_counter() - t) * 1000)
    finally:
        await store.close()
    return {
        k: {"p50": common.percentile(v, 50), "p99": common.percentile(v, 99)}
        for k, v in out.items()
    }


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Report:
    report = Report("postgres", quick=args.quick)
    events = 2_000 if args.quick else 8_000
    duration = 1.5 if args.quick else 3.0
    counts = (1, 2) if args.quick else COUNTS
    rows: list[tuple[str, int, dict[str, float]]] = []
    dsn_arg = getattr(args, "dsn", None) or os.environ.get("HOOKD_BENCH_DSN")
    with common.workspace("postgres") as tmp, server(dsn_arg) as (base, postmaster):
        hole_port = common.free_port()
        hole = common.start_server(tmp, "blackhole", port=hole_port)
        sink = common.start_server(tmp, "sink", port=common.free_port())
        with common.running(hole, sink):
            common.wait_listening(hole, hole_port)
            sink.hole_port = hole_port  # type: ignore[attr-defined]
            common.wait_ready(sink)
            cases = [("sqlite", 1)] + [("postgres", n) for n in counts]
            for backend, n in cases:
                name = f"{backend}-{n}"

                def start(phase: str, endpoint: str, backend: str = backend, n: int = n) -> Case:
                    if backend == "sqlite":
                        db = tmp / f"sqlite-{phase}.db"
                        storage = f"{{path: {db}, synchronous: full}}"
                    else:
                        dsn = fresh_database(base, f"hookd_bench_{phase}_{n}")
                        storage = f"{{backend: postgres, dsn: '{dsn}', secret_key: {KEY}}}"
                    return Case(tmp, f"{backend}-{n}-{phase}", storage, n, endpoint)

                server_pid = postmaster if backend == "postgres" else None
                figures = measure(start, sink, server_pid, events=events, duration=duration)
                print(f"  {name}: {figures}", flush=True)
                rows.append((backend, n, figures))
            latency = asyncio.run(
                claim_latency(
                    fresh_database(base, "hookd_bench_claims"), 300 if args.quick else 1000
                )
            )
    _tables(report, rows, latency, events)
    return report


def _tables(
    report: Report,
    rows: list[tuple[str, int, dict[str, float]]],
    latency: dict[str, dict[str, float]],
    events: int,
) -> None:
    base = rows[0][2]
    t = report.table(
        "Throughput by backend and process count, one server, same run; ratio = / SQLite",
        [
            "backend",
            "processes",
            "ingest single c=64 /s",
            "ratio",
            "ingest batch×100 c=8 /s",
            "ratio",
            f"delivery /s ({events:,})",
            "ratio",
        ],
    )
    for backend, n, f in rows:
        t.add(
            backend,
            n,
            f["single"],
            f"{f['single'] / base['single']:.2f}",
            f["batch"],
            f"{f['batch'] / base['batch']:.2f}",
            f["delivery"],
            f"{f['delivery'] / base['delivery']:.2f}",
        )
    c = report.table(
        "CPU while measuring, cores (2 = the whole machine): hookd processes, PostgreSQL server",
        [
            "backend",
            "processes",
            "ingest: hookd",
            "ingest: server",
            "delivery: hookd",
            "delivery: server",
        ],
    )
    for backend, n, f in rows:
        c.add(
            backend,
            n,
            f["ingest_hookd_cpu"],
            f["ingest_db_cpu"],
            f["delivery_hookd_cpu"],
            f["delivery_db_cpu"],
        )
    lt = report.table(
        "Claim latency on PostgreSQL (sequential, one delivery), ms", ["operation", "p50", "p99"]
    )
    for op, q in latency.items():
        lt.add(op, q["p50"], q["p99"])
    report.notes.append(
        "server: PostgreSQL with its durable defaults (fsync, synchronous_commit on) on the same "
        "disk as SQLite (synchronous: full); every hookd runs the same YAML; loadgen processes "
        "share the 2 cores with hookd and the server; server CPU is read from /proc (NaN with an "
        "external --dsn)"
    )


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=None, help="a server to use (default: a throwaway one)")
    args = parser.parse_args()
    report = run(args)
    common.finish(report, write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
