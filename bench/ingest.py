"""Ingest throughput: hookd against a bare aiohttp handler, same client, same bodies.

    python -m bench.ingest [--quick] [--rounds N] [--duration S]

Four server processes run side by side and take turns (one measured at a time while the others
sit idle), all with ``synchronous: full``:

``bare``
    ``bench.servers bare``: reads the body, answers 202, stores nothing. The baseline.
``hookd`` (the primary figure, judged against the targets)
    One endpoint subscribed to every event, so each event commits an event row *and* a delivery
    row (fan-out to 1). Its URL is a local "blackhole" that accepts TCP and never answers, with
    ``max_in_flight: 1`` and a 1 h policy timeout: the first delivery hangs and every later one
    waits in the dispatcher, so no HTTP delivery competes with ingest (the dispatcher still loads
    each due delivery from SQLite, as it would).
``hookd, receiver down``
    The same endpoint pointing at a closed 127.0.0.1 port with ``delays: [1h]``. Every delivery
    still makes its first attempt at once (refused, then rescheduled an hour later), so this
    measures ingest *plus* one failed connection attempt and one attempt record per event.
``hookd, no match``
    The endpoint's ``events`` pattern matches nothing: event rows only, no deliveries.

Modes: single-event POSTs at concurrency 1, 16 and 64; batches of 100 at concurrency 1 and 8.
Each mode is measured ``--rounds`` times per server, alternating the order, and the median is
reported. Before every measurement the bench waits until every hookd is idle (the refused
attempts drained). Commit batch sizes come from ``hookd_store_commit_batch_ops`` in
``/metrics``, scraped before and after each measurement (warm-up included).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Proc, Report

TOKEN = "bench-ingest-token"

HOOKD_YAML = """\
listen: 127.0.0.1:{port}
shutdown_timeout: 1s
storage: {{path: {db}, synchronous: full}}
auth: {{ingest_tokens: [{token}], admin_tokens: [bench-admin-token]}}
delivery: {{allow_private_networks: true}}
log: {{level: info, format: json}}
policies:
  parked: {{delays: [1h], retry_on: [non-2xx, timeout, network], timeout: {timeout}}}
endpoints:
  - id: receiver
    url: http://127.0.0.1:{target}/hook
    events: [{events}]
    policy: parked
    signing: {{scheme: hmac-sha256, secret: bench-secret}}
{extra}"""


@dataclass(frozen=True)
class Mode:
    label: str
    mode: str  # single | batch
    concurrency: int

    @property
    def unit(self) -> int:
        return 100 if self.mode == "batch" else 1


MODES = (
    Mode("single, c=1", "single", 1),
    Mode("single, c=16", "single", 16),
    Mode("single, c=64", "single", 64),
    Mode("batch of 100, c=1", "batch", 1),
    Mode("batch of 100, c=8", "batch", 8),
)


@dataclass
class Target:
    key: str
    proc: Proc
    hookd: bool


def measure(
    target: Target, mode: Mode, duration: float, warmup: float, max_events: int
) -> dict[str, Any]:
    before = common.metrics(target.proc.url) if target.hookd else {}
    cpu0 = target.proc.cpu_seconds()
    result = common.loadgen(
        "ingest",
        "--url",
        target.proc.url,
        "--token",
        TOKEN,
        "--mode",
        mode.mode,
        "--concurrency",
        str(mode.concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--max-events",
        str(max_events),
        timeout=duration + warmup + 120,
    )
    result["cpu"] = (target.proc.cpu_seconds() - cpu0) / (duration + warmup)
    if target.hookd:
        after = common.metrics(target.proc.url)
        result["commits"] = _histogram_delta(before, after, "hookd_store_commit_batch_ops")
    if result["errors"]:
        raise RuntimeError(f"{target.key} {mode.label}: errors {result['statuses']}")
    return result


def _histogram_delta(
    before: dict[str, float], after: dict[str, float], name: str
) -> dict[str, Any]:
    b = dict(common.histogram_buckets(before, name))
    buckets = [(le, n - b.get(le, 0.0)) for le, n in common.histogram_buckets(after, name)]
    count = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
    total = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
    return {
        "commits": count,
        "ops": total,
        "mean": total / count if count else float("nan"),
        "p50": common.histogram_quantile(buckets, 0.5),
        "p99": common.histogram_quantile(buckets, 0.99),
    }


def run(args: argparse.Namespace) -> Report:
    report = Report("ingest", quick=args.quick)
    duration = args.duration or (1.5 if args.quick else 2.5)
    rounds = args.rounds or (1 if args.quick else 2)
    warmup = 0.5
    # bound the backlog of refused first attempts that a fast batch run leaves behind
    max_events = 30_000 if args.quick else 150_000
    with common.workspace("ingest") as tmp:
        targets, hole = _start(tmp)
        with common.running(*(t.proc for t in targets), hole):
            for t in targets:
                common.wait_ready(t.proc)
            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in range(rounds):
                for mode in MODES:
                    order = targets if r % 2 == 0 else list(reversed(targets))
                    for target in order:
                        for t in targets:
                            if not t.proc.alive():
                                raise RuntimeError(
                                    f"{t.key} exited {t.proc.proc.returncode}:\n{t.proc.log()}"
                                )
                            if t.hookd:
                                common.wait_idle(t.proc, timeout=120)
                        res = measure(target, mode, duration, warmup, max_events)
                        print(
                            f"  round {r + 1} {mode.label:<18} {target.key:<13} "
                            f"{res['events_per_s']:>10,.0f} events/s  cpu {res['cpu']:.0%}",
                            flush=True,
                        )
                        results.setdefault((mode.label, target.key), []).append(res)
            _tables(report, results)
            _targets_and_notes(report, results, targets, rounds, duration)
    return report


def _hookd(
    tmp: Path,
    key: str,
    *,
    target: int,
    events: str,
    timeout: str,
    extra: str,
    src: Path | None = None,
) -> Proc:
    port = common.free_port()
    yaml_text = HOOKD_YAML.format(
        port=port,
        db=tmp / f"{key}.db",
        token=TOKEN,
        target=target,
        events=events,
        timeout=timeout,
        extra=extra,
    )
    return common.start_hookd(tmp, yaml_text, port=port, name=key, src=src)


def start_parked(tmp: Path, key: str, hole_port: int, src: Path | None = None) -> Proc:
    """The primary configuration: fan-out to 1 endpoint whose deliveries are parked."""
    return _hookd(
        tmp,
        key,
        target=hole_port,
        events='"*"',
        timeout="1h",
        extra="    max_in_flight: 1\n",
        src=src,
    )


def _start(tmp: Path) -> tuple[list[Target], Proc]:
    hole_port, closed = common.free_port(), common.free_port()
    hole = common.start_server(tmp, "blackhole", port=hole_port)
    common.wait_listening(hole, hole_port)
    bare = common.start_server(tmp, "bare", port=common.free_port())
    parked = start_parked(tmp, "hookd", hole_port)
    down = _hookd(tmp, "hookd-down", target=closed, events='"*"', timeout="2s", extra="")
    none = _hookd(tmp, "hookd-nomatch", target=closed, events="nomatch.*", timeout="2s", extra="")
    targets = [
        Target("bare", bare, hookd=False),
        Target("hookd", parked, hookd=True),
        Target("hookd-down", down, hookd=True),
        Target("hookd-nomatch", none, hookd=True),
    ]
    return targets, hole


def _med(results: list[dict[str, Any]], key: str) -> float:
    return common.median([float(r[key]) for r in results])


def _tables(report: Report, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    table = report.table(
        "Ingest throughput, events/s (median of rounds); ratio = hookd / bare",
        [
            "mode",
            "bare",
            "hookd",
            "ratio",
            "p50 ms",
            "p99 ms",
            "CPU",
            "CPU µs/event",
            "receiver down",
            "ratio",
            "no match",
            "ratio",
        ],
    )
    for mode in MODES:
        bare = _med(results[(mode.label, "bare")], "events_per_s")
        fan = results[(mode.label, "hookd")]
        down = _med(results[(mode.label, "hookd-down")], "events_per_s")
        none = _med(results[(mode.label, "hookd-nomatch")], "events_per_s")
        table.add(
            mode.label,
            bare,
            _med(fan, "events_per_s"),
            f"{common.ratio(_med(fan, 'events_per_s'), bare):.2f}",
            _med(fan, "latency_ms_p50"),
            _med(fan, "latency_ms_p99"),
            f"{_med(fan, 'cpu'):.0%}",
            common.median([r["cpu"] / r["events_per_s"] * 1e6 for r in fan if r["events_per_s"]]),
            down,
            f"{common.ratio(down, bare):.2f}",
            none,
            f"{common.ratio(none, bare):.2f}",
        )
    commits = report.table(
        "Group commit (primary hookd): hookd_store_commit_batch_ops during each mode's last run",
        ["mode", "commits", "ops", "ops/commit", "p50 bucket", "p99 bucket", "commits/s"],
    )
    for mode in MODES:
        last = results[(mode.label, "hookd")][-1]
        c = last["commits"]
        commits.add(
            mode.label,
            int(c["commits"]),
            int(c["ops"]),
            c["mean"],
            c["p50"],
            c["p99"],
            c["commits"] / (last["elapsed_s"] + 0.5),
        )


def _targets_and_notes(
    report: Report,
    results: dict[tuple[str, str], list[dict[str, Any]]],
    targets: list[Target],
    rounds: int,
    duration: float,
) -> None:
    c64 = "single, c=64"
    report.check(
        "single-event POST, c=64, hookd / bare",
        common.ratio(
            _med(results[(c64, "hookd")], "events_per_s"),
            _med(results[(c64, "bare")], "events_per_s"),
        ),
        ">=",
        0.6,
        "x",
    )
    batches = [m.label for m in MODES if m.mode == "batch"]
    best = max(batches, key=lambda label: _med(results[(label, "hookd")], "events_per_s"))
    best_batch = _med(results[(best, "hookd")], "events_per_s")
    report.check(
        f"batches of 100 ({best}), synchronous: full", best_batch, ">=", 30_000, " events/s"
    )
    report.check(
        f"batches of 100 ({best}), hookd / bare",
        common.ratio(best_batch, _med(results[(best, "bare")], "events_per_s")),
        ">=",
        0.25,
        "x",
    )
    report.notes.append(
        f"{rounds} round(s) of {duration:g} s per mode and server (after 0.5 s warm-up); "
        "single events carry ~256 B of JSON data; one loadgen process (aiohttp on uvloop) for "
        "all servers; 'CPU' is hookd's CPU time over the measurement (100% = one core), "
        "'CPU µs/event' that time per event accepted"
    )


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=0, help="rounds per mode (default 2)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per measurement")
    args = parser.parse_args()
    report = run(args)
    common.finish(report, write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
