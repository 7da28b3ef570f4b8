"""A/B: two hookd source trees, interleaved on this machine in one run.

    python -m bench.ab --a /work/main --b /tmp/hookd-fix [--mode batch] [--concurrency 8]
        [--rounds 5] [--duration 3]
    python -m bench.ab --a DIR --b DIR --mode delivery [--endpoints 1] [--events 4000]

Ingest (``single``, ``batch``): both daemons run the primary configuration of
:mod:`bench.ingest` (fan-out to one parked endpoint, ``synchronous: full``) side by side; the
load generator alternates between them (A B B A A B …) so that a noisy neighbour hurts both
alike. ``delivery``: each round starts a fresh daemon of A and of B in turn (the same order),
ingests ``--events`` deliveries' worth in batches of 100 to ``--endpoints`` endpoints on the
``bench.servers sink`` and measures the sink's window rate, and the daemon's CPU per delivery
from ingest to the last delivery: all threads, and the event-loop thread alone. Prints each
round and the medians, B / A; for ingest also the daemon's CPU per event, by thread
(``main`` is the event loop, ``hookd-writer_0`` SQLite's writer), steadier than throughput on a
shared machine. For trying a fix on a scratch copy before proposing it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import common
from bench.delivery import TOKEN as DELIVERY_TOKEN
from bench.delivery import hookd_yaml, reset_sink, wait_count, window_rate
from bench.ingest import TOKEN, start_parked
from bench.profile import cpu_delta, thread_cpu

WARMUP_S = 0.5  # bench.loadgen ingest's default --warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="source tree A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="source tree B (the change)")
    parser.add_argument(
        "--mode", choices=["single", "batch", "delivery", "latency"], default="batch"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="latency: events/s")
    parser.add_argument("--endpoints", type=int, default=1, help="delivery: endpoints")
    parser.add_argument("--events", type=int, default=4000, help="delivery: deliveries a round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    if args.mode in ("delivery", "latency"):
        delivery_ab(args)
        return
    with common.workspace("ab") as tmp:
        hole_port = common.free_port()
        hole = common.start_server(tmp, "blackhole", port=hole_port)
        common.wait_listening(hole, hole_port)
        a = start_parked(tmp, "a", hole_port, src=args.a.resolve())
        b = start_parked(tmp, "b", hole_port, src=args.b.resolve())
        with common.running(a, b, hole):
            common.wait_ready(a)
            common.wait_ready(b)
            got: dict[str, list[float]] = {"a": [], "b": []}
            cpu_us: dict[str, dict[str, list[float]]] = {"a": {}, "b": {}}
            for r in range(args.rounds):
                order = [("a", a), ("b", b)] if r % 2 == 0 else [("b", b), ("a", a)]
                for key, proc in order:
                    common.wait_idle(a)
                    common.wait_idle(b)
                    before = thread_cpu(proc.pid)
                    res: dict[str, Any] = common.loadgen(
                        "ingest",
                        "--url",
                        proc.url,
                        "--token",
                        TOKEN,
                        "--mode",
                        args.mode,
                        "--concurrency",
                        str(args.concurrency),
                        "--duration",
                        str(args.duration),
                        timeout=args.duration + 120,
                    )
                    # CPU over the warm-up too: events at the measured rate for that long
                    events = res["events_per_s"] * (args.duration + WARMUP_S)
                    cpu = cpu_delta(before, thread_cpu(proc.pid))
                    for thread, seconds in {**cpu, "all": sum(cpu.values())}.items():
                        cpu_us[key].setdefault(thread, []).append(seconds / events * 1e6)
                    got[key].append(res["events_per_s"])
                    print(
                        f"round {r + 1} {key}: {res['events_per_s']:>10,.0f} events/s, CPU "
                        f"{cpu_us[key]['all'][-1]:.1f} µs/event (loop "
                        f"{cpu_us[key].get('main', [0.0])[-1]:.1f})",
                        flush=True,
                    )
    med_a, med_b = common.median(got["a"]), common.median(got["b"])
    print(
        f"median A {med_a:,.0f}  B {med_b:,.0f}  B/A {common.ratio(med_b, med_a):.2f} "
        f"({args.mode}, c={args.concurrency}, {args.rounds} rounds, "
        f"CPU pressure {common.cpu_pressure()}%)"
    )
    for thread in cpu_us["a"]:
        ca, cb = common.median(cpu_us["a"][thread]), common.median(cpu_us["b"].get(thread, [0]))
        if ca or cb:
            print(
                f"CPU µs/event {thread:>14}: A {ca:6.1f}  B {cb:6.1f}  "
                f"B/A {common.ratio(cb, ca):.2f}"
            )


def delivery_round(
    tmp: Path, sink: common.Proc, src: Path, name: str, args: Any
) -> dict[str, float]:
    port = common.free_port()
    yaml_text = hookd_yaml(port, tmp / f"{name}.db", sink.url, args.endpoints)
    hookd = common.start_hookd(tmp, yaml_text, port=port, name=name, src=src)
    with common.running(hookd):
        common.wait_ready(hookd)
        reset_sink(sink)
        before = thread_cpu(hookd.pid)
        events = args.events // args.endpoints
        common.loadgen(
            "bulk", "--url", hookd.url, "--token", DELIVERY_TOKEN, "--events", str(events),
            "--batch-size", str(min(100, events)), "--concurrency", "4", timeout=300,
        )  # fmt: skip
        stats = wait_count(sink, events * args.endpoints, 300)
        cpu = cpu_delta(before, thread_cpu(hookd.pid))
    count = int(stats["count"])
    return {
        "per_s": window_rate(stats),
        "cpu_ms": sum(cpu.values()) / count * 1000,
        "loop_ms": cpu.get("main", 0.0) / count * 1000,
    }


def latency_round(
    tmp: Path, sink: common.Proc, src: Path, name: str, args: Any
) -> dict[str, float]:
    port = common.free_port()
    hookd = common.start_hookd(
        tmp, hookd_yaml(port, tmp / f"{name}.db", sink.url, 1), port=port, name=name, src=src
    )
    with common.running(hookd):
        common.wait_ready(hookd)
        reset_sink(sink)
        sent = common.loadgen(
            "rate", "--url", hookd.url, "--token", DELIVERY_TOKEN, "--rate", str(args.rate),
            "--duration", str(args.duration), timeout=args.duration + 60,
        )  # fmt: skip
        wait_count(sink, int(sent["events"]), 60)
        ms = [s * 1000 for s in common.http_json(sink.url + "/_stats?samples=1")["samples"]]
    return {
        "p50": common.percentile(ms, 50),
        "p99": common.percentile(ms, 99),
        "post_p50": sent["ingest_latency_ms_p50"],
    }


def delivery_ab(args: Any) -> None:
    latency = args.mode == "latency"
    keys = ("p50", "p99", "post_p50") if latency else ("per_s", "cpu_ms", "loop_ms")
    one_round = latency_round if latency else delivery_round
    got: dict[str, dict[str, list[float]]] = {t: {k: [] for k in keys} for t in ("a", "b")}
    with common.workspace("ab") as tmp:
        sink_port = common.free_port()
        sink = common.start_server(tmp, "sink", port=sink_port)
        common.wait_listening(sink, sink_port)
        with common.running(sink):
            for r in range(args.rounds):
                order = (
                    [("a", args.a), ("b", args.b)] if r % 2 == 0 else [("b", args.b), ("a", args.a)]
                )
                for key, src in order:
                    res = one_round(tmp, sink, src.resolve(), f"{key}{r}", args)
                    for k in keys:
                        got[key][k].append(res[k])
                    shown = "  ".join(f"{k} {res[k]:,.3f}" for k in keys)
                    print(f"round {r + 1} {key}: {shown}", flush=True)
    med = {t: {k: common.median(v) for k, v in got[t].items()} for t in got}
    if latency:
        print(
            "median "
            + " | ".join(
                t.upper() + " " + "  ".join(f"{k} {med[t][k]:.2f} ms" for k in keys)
                for t in ("a", "b")
            )
            + f" ({args.rate:g}/s for {args.duration:g} s, {args.rounds} rounds, "
            f"CPU pressure {common.cpu_pressure()}%)"
        )
        return
    print(
        f"median A {med['a']['per_s']:,.0f}/s cpu {med['a']['cpu_ms']:.3f} loop "
        f"{med['a']['loop_ms']:.3f} ms | B {med['b']['per_s']:,.0f}/s cpu "
        f"{med['b']['cpu_ms']:.3f} loop {med['b']['loop_ms']:.3f} ms | B/A throughput "
        f"{common.ratio(med['b']['per_s'], med['a']['per_s']):.2f} "
        f"({args.endpoints} endpoint(s), {args.events} deliveries, {args.rounds} rounds, "
        f"CPU pressure {common.cpu_pressure()}%)"
    )


if __name__ == "__main__":
    main()
