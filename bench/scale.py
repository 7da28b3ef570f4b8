"""Scale: hookd on a database holding 1,000,000 pending scheduled retries.

    python -m bench.scale [--quick] [--rows N] [--soon N]

1. A fresh database is made by starting hookd once (it migrates and records the YAML
   endpoints) and stopping it (SIGTERM).
2. Baseline, on that empty database: start → ``/readyz`` 200, peak RSS (``VmHWM`` from
   ``/proc/PID/status``), then SIGKILL and start again → ``/readyz``. Then ``--soon``
   deliveries due during a 30 s window are written into it and fire: the lateness baseline.
3. ``--rows`` pending deliveries (each with its own event; ``attempt_count`` 1-5, last answer
   503, spread over the 10 endpoints) are written straight into the database with ``sqlite3``
   (see :func:`fill`), due at random times from 10 minutes to 6 hours ahead, plus ``--soon``
   deliveries due during a 30 s window that opens 10 s after the insert ends. The WAL is
   checkpointed, as a running daemon would have done.
4. hookd starts on the big database: time to ``/readyz``; every due-soon delivery must reach the
   sink (``bench.servers sink``, own process), whose arrival minus the delivery's
   ``next_attempt_at`` (carried in the event's ``data.t``) is its lateness; peak RSS.
5. SIGKILL, start again: time to ``/readyz`` after the crash; peak RSS of the new process.
   Repeated 3 times (the median and the slowest are reported); the baseline likewise.
6. A backlog of new deliveries: ``--backlog`` events (400,000) ingested in batches of 100 to
   the parked endpoint of :mod:`bench.ingest` (one request at a time to a receiver that never
   answers), so every delivery is due and waits behind it; RSS once idle (the baseline) and
   after the ingest, and the peak.

Ratios are against the empty-database baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Proc, Report
from bench.delivery import reset_sink, sink_stats, wait_count
from bench.ingest import TOKEN as INGEST_TOKEN
from bench.ingest import start_parked

ENDPOINTS = 10
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LEAD_S = 10.0  # the due-soon window opens this long after the insert ends
WINDOW_S = 30.0

YAML = """\
listen: 127.0.0.1:{port}
shutdown_timeout: 2s
storage: {{path: {db}, synchronous: full}}
delivery: {{allow_private_networks: true}}
log: {{level: info, format: json}}
endpoints:
{endpoints}"""


def hookd_yaml(port: int, db: Path, sink: str) -> str:
    endpoints = "".join(
        f"  - id: ep{i}\n    url: {sink}/ep/{i}\n"
        f"    signing: {{scheme: standard-webhooks, secret: {SECRET}}}\n"
        for i in range(ENDPOINTS)
    )
    return YAML.format(port=port, db=db, endpoints=endpoints)


def start(tmp: Path, yaml_text: str, port: int, name: str) -> tuple[Proc, float]:
    proc = common.start_hookd(tmp, yaml_text, port=port, name=name)
    return proc, common.wait_ready(proc, timeout=120)


def _secs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values) + " s"


def peak_rss_mb(proc: Proc) -> float:
    return proc.status_kb("VmHWM") / 1024


NEEDED = {
    "events": {"id", "type", "timestamp", "data", "content_hash", "idem_key", "created_at"},
    "deliveries": {
        "id",
        "event_id",
        "endpoint_id",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "updated_at",
    },
}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


FAR_EVENTS = """
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < :n - 1)
INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, created_at)
SELECT printf('evt_f%09d', i), 'bench.retry', :stamp,
       printf('{"i":%d,"customer":"cus_%010d"}', i, i), '', NULL, :created FROM c
"""
FAR_DELIVERIES = """
WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < :n - 1)
INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status, attempt_count,
    next_attempt_at, last_status_code, last_error, created_at, updated_at)
SELECT printf('dlv_f%09d', i), printf('evt_f%09d', i), 'ep' || (i % :endpoints), 'bench.retry',
       'pending', 1 + abs(random() % 5), :now + 600 + (abs(random()) % 20700000) / 1000.0,
       503, 'HTTP 503', :created, :updated FROM c
"""
SOON_EVENT = (
    "INSERT INTO events (id, type, timestamp, data, content_hash, idem_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SOON_DELIVERY = (
    "INSERT INTO deliveries (id, event_id, endpoint_id, event_type, status, attempt_count,"
    " next_attempt_at, last_status_code, last_error, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill(path: Path, rows: int, soon: int, tag: str) -> dict[str, Any]:
    """Write ``rows`` far-future and ``soon`` due-soon pending deliveries; returns timings.

    The far rows are generated inside SQLite (``INSERT … SELECT`` over a counter, with the two
    tables' secondary indexes dropped and then rebuilt from their own ``sqlite_master`` SQL in
    the same transaction): about 3x faster than ``executemany`` from Python, which matters for
    the suite's time budget. The due-soon rows go in with ``executemany``; ``tag`` keeps their
    ids apart from an earlier fill's.
    """
    db = sqlite3.connect(path, isolation_level=None)
    for table, columns in NEEDED.items():
        missing = columns - _columns(db, table)
        if missing:
            raise RuntimeError(f"hookd's schema changed: {table} lacks {sorted(missing)}")
    db.execute("PRAGMA synchronous=OFF")
    started = time.time()
    created = started - 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created))
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('events', 'deliveries')"
    ).fetchall()
    db.execute("BEGIN")
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    params = {
        "n": rows,
        "stamp": stamp,
        "created": created,
        "updated": started - 60,
        "now": started,
        "endpoints": ENDPOINTS,
    }
    if rows:
        db.execute(FAR_EVENTS, params)
        db.execute(FAR_DELIVERIES, params)
    for _, sql in indexes:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    rng = random.Random(7)
    opens = time.time() + LEAD_S
    dues = sorted(opens + rng.uniform(0, WINDOW_S) for _ in range(soon))
    db.execute("BEGIN")
    db.executemany(
        SOON_EVENT,
        (
            (
                f"evt_{tag}{i:09d}",
                "bench.retry",
                stamp,
                json.dumps({"i": i, "t": due}),
                "",
                None,
                created,
            )
            for i, due in enumerate(dues)
        ),
    )
    db.executemany(
        SOON_DELIVERY,
        (
            (
                f"dlv_{tag}{i:09d}",
                f"evt_{tag}{i:09d}",
                f"ep{i % ENDPOINTS}",
                "bench.retry",
                "pending",
                rng.randint(1, 5),
                due,
                503,
                "HTTP 503",
                created,
                started - 60,
            )
            for i, due in enumerate(dues)
        ),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    return {
        "insert_s": time.time() - started,
        "window": (opens, opens + WINDOW_S),
        "db_mb": size / 2**20,
    }


def due_soon_lateness(hookd: Proc, sink: Proc, soon: int, closes: float) -> list[float]:
    """Wait for every due-soon delivery at the sink; their lateness in ms."""
    try:
        wait_count(sink, soon, timeout=max(closes - time.time() + 30, 30))
    except TimeoutError as exc:
        got = sink_stats(sink)["count"]
        raise RuntimeError(
            f"{got}/{soon} due-soon deliveries arrived; hookd log:\n{hookd.log()}"
        ) from exc
    return [s * 1000 for s in sink_stats(sink, samples=True)["samples"]]


def backlog_rss(tmp: Path, events: int) -> dict[str, float]:
    """RSS before and after ``events`` due deliveries pile up behind one parked endpoint."""
    hole_port = common.free_port()
    hole = common.start_server(tmp, "blackhole", port=hole_port)
    with common.running(hole):
        common.wait_listening(hole, hole_port)
        parked = start_parked(tmp, "backlog", hole_port)
        with common.running(parked):
            common.wait_ready(parked, timeout=60)
            time.sleep(1.0)
            idle = parked.status_kb("VmRSS") / 1024
            started = time.monotonic()
            done = common.loadgen(
                "bulk", "--url", parked.url, "--token", INGEST_TOKEN, "--events", str(events),
                timeout=1800,
            )  # fmt: skip
            took = time.monotonic() - started
            if done.get("errors"):
                raise RuntimeError(f"backlog ingest failed: {done['errors'][:3]}")
            after = parked.status_kb("VmRSS") / 1024
            peak = parked.status_kb("VmHWM") / 1024
    return {"idle": idle, "after": after, "peak": peak, "ingest_s": took}


def run(args: argparse.Namespace) -> Report:
    report = Report("scale", quick=args.quick)
    backlog = args.backlog or (40_000 if args.quick else 400_000)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    soon = args.soon or (1_000 if args.quick else 3_000)
    restarts = 1 if args.quick else 3
    with common.workspace("scale") as tmp:
        sink = common.start_server(tmp, "sink", port=common.free_port())
        with common.running(sink):
            common.wait_ready(sink)
            port = common.free_port()
            db = tmp / "scale.db"
            yaml_text = hookd_yaml(port, db, sink.url)

            # 1. migrate; 2. the empty-database baseline
            first, migrate_s = start(tmp, yaml_text, port, "migrate")
            first.stop()
            empty, empty_start = start(tmp, yaml_text, port, "empty")
            time.sleep(1.0)
            empty_rss = peak_rss_mb(empty)
            empty_restarts = []
            for k in range(restarts):
                empty.kill()
                empty, took = start(tmp, yaml_text, port, f"empty-restart-{k}")
                empty_restarts.append(took)
                time.sleep(1.0)
                empty_rss = max(empty_rss, peak_rss_mb(empty))
            empty.stop()
            empty_restart = common.median(empty_restarts)
            print(
                f"  empty: start {empty_start:.2f} s, restarts {_secs(empty_restarts)}", flush=True
            )

            # the lateness baseline: the same due-soon retries on the (nearly) empty database
            filled = fill(db, 0, soon, "e")
            reset_sink(sink)
            small, _ = start(tmp, yaml_text, port, "empty-due-soon")
            with common.running(small):
                empty_late_ms = due_soon_lateness(small, sink, soon, filled["window"][1])
            print(f"  empty: {soon:,} due-soon retries fired", flush=True)

            # 3. a million pending retries
            filled = fill(db, rows, soon, "s")
            print(
                f"  inserted {rows:,} + {soon:,} rows in {filled['insert_s']:.1f} s "
                f"({filled['db_mb']:.0f} MB)",
                flush=True,
            )

            # 4. start on it; due-soon deliveries fire
            reset_sink(sink)
            big, big_start = start(tmp, yaml_text, port, "big")
            with common.running(big):
                late_ms = due_soon_lateness(big, sink, soon, filled["window"][1])
                big_rss = peak_rss_mb(big)
                now_rss = big.status_kb("VmRSS") / 1024
                status = common.http_json(big.url + "/v1/status")
                # 5. crash and restart
                big.kill()
            big_rss2 = 0.0
            big_restarts = []
            previous: Proc | None = None
            for k in range(restarts):
                if previous is not None:
                    previous.kill()
                again, took = start(tmp, yaml_text, port, f"big-restart-{k}")
                big_restarts.append(took)
                time.sleep(2.0)
                big_rss2 = max(big_rss2, peak_rss_mb(again))
                previous = again
            if previous is not None:
                previous.stop()
            big_restart = common.median(big_restarts)
            print(
                f"  big: start {big_start:.2f} s, restarts {_secs(big_restarts)}, "
                f"peak RSS {big_rss:.0f} / {big_rss2:.0f} MB",
                flush=True,
            )
        # 6. a backlog of new deliveries behind one endpoint
        piled = backlog_rss(tmp, backlog)
        print(
            f"  backlog: {backlog:,} deliveries queued in {piled['ingest_s']:.1f} s, RSS "
            f"{piled['idle']:.0f} → {piled['after']:.0f} MB",
            flush=True,
        )

    pending = status.get("deliveries", {}).get("pending", "?")
    t = report.table(
        f"{rows:,} pending retries (+{soon:,} due within {WINDOW_S:g} s), "
        f"database {filled['db_mb']:.0f} MB; ratio = big / empty",
        ["figure", "empty database", f"{rows:,} pending", "ratio", "target"],
    )
    t.add("start → /readyz, s", empty_start, big_start, f"{big_start / empty_start:.2f}", "")
    t.add(
        f"SIGKILL restart → /readyz, s (median of {restarts})",
        empty_restart,
        big_restart,
        f"{big_restart / empty_restart:.2f}",
        "≤ 5 s",
    )
    t.add("slowest SIGKILL restart, s", max(empty_restarts), max(big_restarts), "", "≤ 5 s")
    peak = max(big_rss, big_rss2)
    t.add("peak RSS (VmHWM), MB", empty_rss, peak, f"{peak / empty_rss:.2f}", "≤ 150 MB")
    t.add("RSS after the due-soon burst, MB", "", now_rss, "", "")
    lt = report.table(
        f"Lateness of {soon:,} due-soon retries (sink arrival − next_attempt_at), ms",
        ["database", "delivered", "p50", "p90", "p99", "max", "target"],
    )
    for label, values in (("empty", empty_late_ms), (f"{rows:,} pending", late_ms)):
        lt.add(
            label,
            f"{len(values)}/{soon}",
            common.percentile(values, 50),
            common.percentile(values, 90),
            common.percentile(values, 99),
            max(values) if values else float("nan"),
            "p99 ≤ 100 ms",
        )
    lt.add(
        "ratio",
        "",
        f"{common.ratio(common.percentile(late_ms, 50), common.percentile(empty_late_ms, 50)):.2f}",
        f"{common.ratio(common.percentile(late_ms, 90), common.percentile(empty_late_ms, 90)):.2f}",
        f"{common.ratio(common.percentile(late_ms, 99), common.percentile(empty_late_ms, 99)):.2f}",
        "",
        "",
    )
    bt = report.table(
        f"{backlog:,} due deliveries waiting behind one endpoint (one request at a time, never "
        "answered); ratio = backlog / idle",
        ["figure", "idle", "backlog", "ratio", "target"],
    )
    bt.add("RSS, MB", piled["idle"], piled["after"], f"{piled['after'] / piled['idle']:.2f}", "")
    bt.add(
        "peak RSS (VmHWM), MB",
        piled["idle"],
        piled["peak"],
        f"{piled['peak'] / piled['idle']:.2f}",
        "≤ 150 MB",
    )
    report.check("slowest SIGKILL restart → /readyz", max(big_restarts), "<=", 5.0, " s")
    report.check("peak RSS", peak, "<=", 150.0, " MB")
    report.check("peak RSS behind a backlog", piled["peak"], "<=", 150.0, " MB")
    report.check("retry lateness p99", common.percentile(late_ms, 99), "<=", 100.0, " ms")
    report.notes.append(
        f"insert of {rows + soon:,} deliveries and events took {filled['insert_s']:.1f} s "
        f"(not part of any figure); first start on a fresh file (migration) {migrate_s:.2f} s; "
        f"/v1/status counted {pending} pending; {ENDPOINTS} endpoints, standard-webhooks"
    )
    return report


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=0, help="far-future retries (1,000,000)")
    parser.add_argument("--soon", type=int, default=0, help="retries due within 30 s (3,000)")
    parser.add_argument("--backlog", type=int, default=0, help="deliveries queued (400,000)")
    args = parser.parse_args()
    report = run(args)
    common.finish(report, write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
