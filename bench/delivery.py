"""Delivery throughput and ingest→receiver latency, against a bare aiohttp client loop.

    python -m bench.delivery [--quick] [--events N]

The receiver is ``bench.servers sink`` in its own process: it counts every request and
timestamps its arrival. Each case gets a fresh hookd (``synchronous: full``, default
``delivery.concurrency: 256``, ``standard-webhooks`` signing, the ``standard`` body).

Throughput (for 1 endpoint, and for 100 endpoints that all subscribe to every event): start
the sink, start hookd, ingest N deliveries' worth of events as fast as possible (batches of
100), and take the sink's first-to-last arrival window: ``(count - 1) / (last - first)``.
The baseline is ``bench.loadgen deliver``, its own process: an aiohttp client loop POSTing the
same bodies to the same sink paths at the same concurrency, storing and signing nothing. It is
measured right before and right after hookd; the mean of the two is the baseline.

Latency: single events POSTed to hookd at a steady 500/s for ~10 s (open loop), each carrying
its send time in ``data.t``; the sink records ``arrival - t``. The baseline is the same load
POSTed straight to the sink (the floor: one HTTP hop on this machine). hookd is measured at
100/s too, which tells pipeline latency from queueing when 500/s is more than it can take.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.common import Proc, Report

TOKEN = "bench-ingest-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONCURRENCY = 256

HEADER = """\
listen: 127.0.0.1:{port}
shutdown_timeout: 2s
storage: {{path: {db}, synchronous: full}}
auth: {{ingest_tokens: [{token}], admin_tokens: [bench-admin-token]}}
delivery: {{allow_private_networks: true, concurrency: {concurrency}}}
log: {{level: info, format: json}}
endpoints:
"""

ENDPOINT = """\
  - id: ep{i}
    url: {sink}/ep/{i}
    signing: {signing}
"""

STANDARD = f"{{scheme: standard-webhooks, secret: {SECRET}}}"


def hookd_yaml(port: int, db: Path, sink: str, endpoints: int, signing: str = STANDARD) -> str:
    text = HEADER.format(port=port, db=db, token=TOKEN, concurrency=CONCURRENCY)
    for i in range(endpoints):
        text += ENDPOINT.format(i=i, sink=sink, signing=signing)
    return text


def sink_stats(sink: Proc, samples: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = common.http_json(
        sink.url + "/_stats" + ("?samples=1" if samples else "")
    )
    return result


def reset_sink(sink: Proc) -> None:
    import urllib.request

    request = urllib.request.Request(sink.url + "/_reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        resp.read()


def wait_count(sink: Proc, count: int, timeout: float) -> dict[str, Any]:
    """Wait until the sink has seen ``count`` requests; its stats."""
    last: dict[str, Any] = {}

    def enough() -> bool:
        nonlocal last
        last = sink_stats(sink)
        return int(last["count"]) >= count

    common.wait_until(enough, timeout=timeout, interval=0.1, what=f"{count} deliveries at the sink")
    return last


def window_rate(stats: dict[str, Any]) -> float:
    span = float(stats["last"]) - float(stats["first"])
    return (int(stats["count"]) - 1) / span if span > 0 else float("nan")


@dataclass
class Throughput:
    per_s: float
    span_s: float
    count: int
    ingest_per_s: float = float("nan")
    cpu: float = float("nan")
    cpu_ms_per: float = float("nan")
    loop_ms_per: float = float("nan")  # the event-loop thread's share
    distinct: int = 0
    commits: float = float("nan")
    ops_per_commit: float = float("nan")


def hookd_throughput(
    tmp: Path,
    sink: Proc,
    *,
    name: str,
    endpoints: int,
    deliveries: int,
    signing: str = STANDARD,
    timeout: float = 300.0,
) -> Throughput:
    """Fresh hookd with ``endpoints`` endpoints; ingest ``deliveries`` worth; sink window rate."""
    port = common.free_port()
    yaml_text = hookd_yaml(port, tmp / f"{name}.db", sink.url, endpoints, signing)
    hookd = common.start_hookd(tmp, yaml_text, port=port, name=name)
    with common.running(hookd):
        common.wait_ready(hookd)
        reset_sink(sink)
        cpu0 = hookd.cpu_seconds()
        loop0 = hookd.loop_cpu_seconds()
        events = deliveries // endpoints
        ingested = common.loadgen(
            "bulk",
            "--url",
            hookd.url,
            "--token",
            TOKEN,
            "--events",
            str(events),
            "--batch-size",
            str(min(100, events)),
            "--concurrency",
            "4",
            timeout=timeout,
        )
        if ingested["events"] != events:
            raise RuntimeError(f"{name}: ingest failed: {ingested}")
        stats = wait_count(sink, events * endpoints, timeout)
        cpu = hookd.cpu_seconds() - cpu0
        loop = hookd.loop_cpu_seconds() - loop0
        samples = common.metrics(hookd.url)
        commits = samples.get("hookd_store_commit_batch_ops_count", float("nan"))
        ops = samples.get("hookd_store_commit_batch_ops_sum", float("nan"))
        span = float(stats["last"]) - float(stats["first"])
        return Throughput(
            per_s=window_rate(stats),
            span_s=span,
            count=int(stats["count"]),
            ingest_per_s=float(ingested["events_per_s"]) * endpoints,
            cpu=cpu / max(span, 1e-9),
            cpu_ms_per=cpu / max(int(stats["count"]), 1) * 1000,
            loop_ms_per=loop / max(int(stats["count"]), 1) * 1000,
            distinct=int(stats["distinct"]),
            commits=commits,
            ops_per_commit=ops / commits if commits else float("nan"),
        )


def bare_throughput(sink: Proc, *, endpoints: int, deliveries: int) -> Throughput:
    reset_sink(sink)
    common.loadgen(
        "deliver",
        "--url",
        sink.url,
        "--events",
        str(deliveries),
        "--endpoints",
        str(endpoints),
        "--concurrency",
        str(CONCURRENCY),
        timeout=300,
    )
    stats = wait_count(sink, deliveries, 30)
    return Throughput(
        per_s=window_rate(stats),
        span_s=float(stats["last"]) - float(stats["first"]),
        count=int(stats["count"]),
    )


def latency(tmp: Path, sink: Proc, *, rate: float, duration: float) -> dict[str, Any]:
    """p50/p99 ingest→receiver through hookd, and the same load straight to the sink.

    Also hookd at a fifth of the rate, to tell pipeline latency from queueing under overload.
    """
    out: dict[str, Any] = {}
    port = common.free_port()
    hookd = common.start_hookd(
        tmp, hookd_yaml(port, tmp / "latency.db", sink.url, 1), port=port, name="latency"
    )
    runs = (
        ("bare", sink.url, "", rate),
        ("hookd", hookd.url, TOKEN, rate),
        ("hookd-low", hookd.url, TOKEN, rate / 5),
    )
    with common.running(hookd):
        common.wait_ready(hookd)
        out["commit"] = common.commit_floor(tmp)
        for key, url, token, per_s in runs:
            common.wait_idle(hookd)
            reset_sink(sink)
            args = ["rate", "--url", url, "--rate", str(per_s), "--duration", str(duration)]
            if token:
                args += ["--token", token]
            sent = common.loadgen(*args, timeout=duration + 60)
            stats = wait_count(sink, int(sent["events"]), 60)
            got = sink_stats(sink, samples=True)["samples"]
            ms = [s * 1000 for s in got]
            out[key] = {
                "rate": per_s,
                "sent": sent["sent"],
                "received": stats["count"],
                "p50": common.percentile(ms, 50),
                "p90": common.percentile(ms, 90),
                "p99": common.percentile(ms, 99),
                "max": max(ms) if ms else float("nan"),
                "ingest_p50": sent["ingest_latency_ms_p50"],
                "ingest_p99": sent["ingest_latency_ms_p99"],
                "send_lag_p99": sent["send_lag_ms_p99"],
            }
    return out


def run(args: argparse.Namespace) -> Report:
    report = Report("delivery", quick=args.quick)
    deliveries = args.events or (3_000 if args.quick else 10_000)
    duration = 3.0 if args.quick else 10.0
    rate = 500.0
    with common.workspace("delivery") as tmp:
        sink = common.start_server(tmp, "sink", port=common.free_port())
        with common.running(sink):
            common.wait_ready(sink)
            table = report.table(
                f"Delivery throughput, {deliveries:,} deliveries, concurrency {CONCURRENCY}; "
                "ratio = hookd / bare loop",
                [
                    "endpoints",
                    "bare loop /s",
                    "hookd /s",
                    "ratio",
                    "hookd window s",
                    "hookd CPU",
                    "CPU ms/delivery",
                    "loop ms/delivery",
                    "ops/commit",
                    "ingest /s",
                ],
            )
            ratios = []
            for endpoints in (1, 100):
                before = bare_throughput(sink, endpoints=endpoints, deliveries=deliveries)
                hookd = hookd_throughput(
                    tmp,
                    sink,
                    name=f"hookd-{endpoints}",
                    endpoints=endpoints,
                    deliveries=deliveries,
                )
                after = bare_throughput(sink, endpoints=endpoints, deliveries=deliveries)
                bare = (before.per_s + after.per_s) / 2
                print(
                    f"  {endpoints} endpoint(s): bare {before.per_s:,.0f} / {after.per_s:,.0f}"
                    f"  hookd {hookd.per_s:,.0f} deliveries/s",
                    flush=True,
                )
                if hookd.distinct != deliveries:
                    report.notes.append(
                        f"{endpoints} endpoint(s): {hookd.count} requests for "
                        f"{hookd.distinct} distinct deliveries (expected {deliveries})"
                    )
                r = common.ratio(hookd.per_s, bare)
                ratios.append(r)
                table.add(
                    endpoints,
                    bare,
                    hookd.per_s,
                    f"{r:.2f}",
                    hookd.span_s,
                    f"{hookd.cpu:.0%}",
                    hookd.cpu_ms_per,
                    hookd.loop_ms_per,
                    hookd.ops_per_commit,
                    hookd.ingest_per_s,
                )
                report.check(
                    f"delivery throughput, {endpoints} endpoint(s), hookd / bare loop",
                    r,
                    ">=",
                    0.6,
                    "x",
                )
                report.check(
                    f"CPU per delivered event, all threads, {endpoints} endpoint(s)",
                    hookd.cpu_ms_per,
                    "<=",
                    0.5,
                    " ms",
                )
                report.check(
                    f"event-loop CPU per delivered event, {endpoints} endpoint(s)",
                    hookd.loop_ms_per,
                    "<=",
                    0.3,
                    " ms",
                )
            lat = latency(tmp, sink, rate=rate, duration=duration)
            lt = report.table(
                f"Ingest→receiver latency, single events for {duration:g} s, ms "
                "(sink arrival − send time in data.t)",
                [
                    "path",
                    "events/s",
                    "received",
                    "p50",
                    "p90",
                    "p99",
                    "max",
                    "POST p50",
                    "POST p99",
                ],
            )
            labels = (
                ("bare", "client → sink (floor)"),
                ("hookd", "client → hookd → sink"),
                ("hookd-low", "client → hookd → sink"),
            )
            for key, label in labels:
                v = lat[key]
                lt.add(
                    label,
                    v["rate"],
                    f"{v['received']}/{v['sent']}",
                    v["p50"],
                    v["p90"],
                    v["p99"],
                    v["max"],
                    v["ingest_p50"],
                    v["ingest_p99"],
                )
            commit = lat["commit"]
            lt.add(
                "one-row SQLite commit, synchronous=FULL (disk floor)",
                "",
                "",
                commit["p50"],
                "",
                commit["p99"],
                "",
                "",
                "",
            )
            h, b = lat["hookd"], lat["bare"]
            lt.add(
                "ratio hookd / floor",
                rate,
                "",
                f"{common.ratio(h['p50'], b['p50']):.1f}x",
                f"{common.ratio(h['p90'], b['p90']):.1f}x",
                f"{common.ratio(h['p99'], b['p99']):.1f}x",
                "",
                "",
                "",
            )
            report.check(f"ingest→receiver p50 at {rate:g}/s", h["p50"], "<=", 5.0, " ms")
            report.check(f"ingest→receiver p99 at {rate:g}/s", h["p99"], "<=", 25.0, " ms")
    report.notes.append(
        "hookd signs with standard-webhooks (HMAC); the bare loop sends the same bodies "
        "unsigned and stores nothing; 'hookd CPU' is hookd's CPU time over the sink window "
        "(100% = one core), 'CPU ms/delivery' all of hookd's CPU time from the start of ingest "
        "to the last delivery per delivery (ingesting it included), all threads; 'loop "
        "ms/delivery' the event-loop (main) thread's share of it; 'ops/commit' is "
        "hookd_store_commit_batch_ops sum/count over the case"
    )
    return report


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=0, help="deliveries per case (10,000)")
    args = parser.parse_args()
    report = run(args)
    common.finish(report, write_doc=not args.no_doc)


if __name__ == "__main__":
    main()
