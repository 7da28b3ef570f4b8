"""Soak: a steady load for a long time against a receiver that fails 20 % of requests; are the
process's memory, descriptors, queue and latency flat?

    python -m bench.soak [--minutes 10] [--rate 50] [--interval 30] [--quick]

One real ``hookd run`` (two endpoints on one receiver in this process: ``/a`` with up to 16 in
flight, ``/b`` unlimited; retries after 200 ms, 500 ms, 1 s, 2 s, 5 s, then every 10 s); the load
posts ``--rate`` requests a second (every fifth a batch of 5), each event carrying its send
time. The receiver answers 500 to 20 % of all requests (at random, retries included), else 200
after up to 5 ms. Every ``--interval`` seconds it samples the process: RSS (``VmRSS``), open
descriptors (``/proc/PID/fd``), the queue (``/v1/status``: pending deliveries, scheduled,
in flight), the p99 of ingest answers and of delivery latency (send to first 2xx arrival) in
the interval, and the database size. Descriptors are split into files (not sockets), outbound
connections (hookd's pool to the receiver) and inbound ones (the load generator's pool). The
report lists every sample and, for each series, the least-squares slope after the warm-up (the
first quarter), per hour.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench import common
from bench.rig import Daemons, Load, Sink, percentile, running_sink, status

SERIES = (
    "rss_mib", "fds", "files", "outbound", "inbound", "pending", "in_flight", "ingest_p99_ms",
    "delivery_p99_ms",
)  # fmt: skip


@dataclass
class TimedSink(Sink):
    """A :class:`Sink` failing ``fail_any`` of all requests, noting each first success's
    latency (arrival - the event's ``data.t``)."""

    fail_any: float = 0.0
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (arrival, seconds)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        self.arrivals += 1
        key = (request.path, request.headers.get("webhook-id", ""))
        await asyncio.sleep(self.rng.uniform(0, self.max_delay))
        if self.rng.random() < self.fail_any:
            self.failed += 1
            return web.Response(status=500, text="failing on purpose")
        if not self.ok[key]:
            try:
                sent = float(json.loads(body)["data"]["t"])
            except (ValueError, KeyError, TypeError):
                pass
            else:
                self.latencies.append((time.monotonic(), now - sent))
        self.ok[key] += 1
        return web.Response(text="ok")


@dataclass
class Sample:
    t_s: float
    rss_mib: float
    fds: int
    files: int  # descriptors that are not sockets
    inbound: int  # API connections (the load generator's keep-alive pool)
    outbound: int  # connections to the receiver (hookd's keep-alive pool)
    pending: int
    scheduled: int
    in_flight: int
    ingest_p99_ms: float
    delivery_p99_ms: float
    accepted_per_s: float
    db_mib: float


async def soak(
    workdir: Path,
    *,
    duration: float,
    rate: float = 50.0,
    interval: float = 30.0,
    fail: float = 0.2,
    storage: str = "",
    seed: int = 1,
    log: Any = print,
) -> tuple[list[Sample], dict[str, Any]]:
    """Run the soak in ``workdir``: the samples, and a summary of the run."""
    sink = TimedSink(fail_any=fail, max_delay=0.005, rng=random.Random(seed))
    samples: list[Sample] = []
    async with running_sink(sink):
        daemons = Daemons(workdir, sink.url, storage=storage, fifo=False)
        [member] = daemons.members
        load = Load(rate=rate, stamp=True)
        stop = asyncio.Event()
        try:
            daemons.start(member)
            await daemons.ready(member)
            running = asyncio.create_task(load.run(daemons.target, stop))
            began = time.monotonic()
            last, accepted = began, 0
            while time.monotonic() - began < duration:
                await asyncio.sleep(min(interval, duration - (time.monotonic() - began)))
                now = time.monotonic()
                state = await status(member.url)
                kinds = member.descriptors(int(sink.url.rsplit(":", 1)[1]))
                sample = Sample(
                    t_s=round(now - began, 1),
                    rss_mib=member.rss_kib() / 1024,
                    fds=member.fds(),
                    files=kinds.get("files", 0),
                    inbound=kinds.get("inbound", 0),
                    outbound=kinds.get("outbound", 0),
                    pending=state["deliveries"]["pending"],
                    scheduled=state["scheduled"],
                    in_flight=state["in_flight"],
                    ingest_p99_ms=1000
                    * percentile([s for t, s in load.latencies if t >= last], 99),
                    delivery_p99_ms=1000
                    * percentile([s for t, s in sink.latencies if t >= last], 99),
                    accepted_per_s=(len(load.accepted) - accepted) / (now - last),
                    db_mib=state["db_bytes"] / 2**20,
                )
                samples.append(sample)
                log(f"  {sample}")
                last, accepted = now, len(load.accepted)
            stop.set()
            await running
            summary = {
                "accepted": len(load.accepted),
                "answers": dict(load.statuses),
                "receiver_arrivals": sink.arrivals,
                "receiver_500s": sink.failed,
                "exit_code": daemons.stop(member),
            }
        finally:
            stop.set()
            daemons.stop_all()
    return samples, summary


def slope_per_hour(samples: list[Sample], key: str) -> float:
    """Least-squares slope of ``key`` over time after the warm-up (the first quarter), per hour."""
    kept = samples[len(samples) // 4 :]
    if len(kept) < 2:
        return float("nan")
    xs = [s.t_s / 3600 for s in kept]
    ys = [float(getattr(s, key)) for s in kept]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def report(samples: list[Sample], summary: dict[str, Any], args: Any) -> common.Report:
    out = common.Report(name="soak", quick=args.quick, started=time.time() - samples[-1].t_s)
    table = out.table(
        f"soak: {args.rate:g} requests/s for {samples[-1].t_s / 60:.1f} min, receiver failing "
        f"{args.fail:.0%} of requests",
        ["t (s)", "RSS MiB", "fds", "files", "out", "in", "pending", "scheduled", "in flight",
         "ingest p99 ms", "delivery p99 ms", "accepted/s", "db MiB"],
    )  # fmt: skip
    for s in samples:
        table.add(
            s.t_s, s.rss_mib, s.fds, s.files, s.outbound, s.inbound, s.pending, s.scheduled,
            s.in_flight, s.ingest_p99_ms, s.delivery_p99_ms, s.accepted_per_s, s.db_mib,
        )  # fmt: skip
    slopes = out.table(
        "slope after the warm-up (least squares, per hour)", ["series", "first", "last", "slope/h"]
    )
    warm = samples[len(samples) // 4]
    for key in SERIES:
        slopes.add(key, getattr(warm, key), getattr(samples[-1], key), slope_per_hour(samples, key))
    after = samples[len(samples) // 4 :]
    half = len(after) // 2
    out.check("non-socket descriptors above the warm-up", max(s.files for s in after) - warm.files,
              "<=", 0.0)  # fmt: skip
    out.check(
        "median descriptors, second half minus first half",
        float(
            statistics.median(s.fds for s in after[half:])
            - statistics.median(s.fds for s in after[:half])
        ),
        "<=",
        3.0,
    )
    out.notes.append(
        "files: descriptors that are not sockets; out: connections to the receiver (hookd's "
        "pool); in: API connections (the load generator's pool)"
    )
    out.notes.append(f"summary: {summary}")
    return out


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--fail", type=float, default=0.2, help="share of requests answered 500")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.interval = min(args.minutes, 0.5), min(args.interval, 3.0)
    with common.workspace("soak") as tmp:
        samples, summary = common.uvloop_run(
            soak(
                tmp,
                duration=args.minutes * 60,
                rate=args.rate,
                interval=args.interval,
                fail=args.fail,
            )
        )
    out = report(samples, summary, args)
    out.print()
    print(f"saved {out.save().relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
