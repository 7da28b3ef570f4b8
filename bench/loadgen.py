"""Load generators, each run in its own process (aiohttp client on uvloop); print one JSON line.

``python -m bench.loadgen ingest --url URL --mode single|batch --concurrency C --duration S``
    Closed loop: C workers POST events back to back. After ``--warmup`` seconds, counts the
    events of 2xx answers that complete within the next ``--duration`` seconds (or until
    ``--max-events``). Used against hookd and the bare server alike.

``python -m bench.loadgen bulk --url URL --events N [--batch-size 100] [--concurrency 4]``
    Ingest exactly N events through ``POST /v1/events/batch`` as fast as possible.

``python -m bench.loadgen rate --url URL --rate R --duration S``
    Open loop: one ``POST /v1/events`` every 1/R seconds whatever the answers, each event's
    ``data.t`` holding its send time (the sink turns it into ingest→receiver latency).

``python -m bench.loadgen deliver --url SINK --events N --endpoints E --concurrency C``
    The delivery baseline: a bare client loop POSTing the bodies hookd would send (``standard``
    format, same data) for N events to E sink paths, C at a time, storing and signing nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.common import percentile, uvloop_run

EVENT_TYPE = "bench.event"
_PAD = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 8


def event_data(i: int, size: int = 256, **extra: Any) -> dict[str, Any]:
    """A webhook-sized data object (about ``size`` bytes as JSON)."""
    data: dict[str, Any] = {"i": i, "customer": f"cus_{i:010d}", "amount": i % 10_000, **extra}
    base = len(json.dumps(data, separators=(",", ":")))
    data["note"] = _PAD[: max(0, size - base - 10)]
    return data


def event_body(
    i: int,
    size: int,
    *,
    tenants: int = 0,
    fields: int = 0,
    kind: str = EVENT_TYPE,
    **extra: Any,
) -> dict[str, Any]:
    """One event: with ``tenants``, tenant ``t<i mod tenants>``; with ``fields``, ``f0``..
    (alternately a string, a number and a list of strings) in its data; ``extra`` data keys."""
    for n in range(fields):
        extra[f"f{n}"] = ("v" * 8) if n % 3 == 0 else (n if n % 3 == 1 else ["a", "b"])
    body: dict[str, Any] = {"type": kind, "data": event_data(i, size, **extra)}
    if tenants:
        body["tenant"] = f"t{i % tenants}"
    return body


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _session(concurrency: int, token: str | None = None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, force_close=False)
    return aiohttp.ClientSession(
        connector=connector,
        headers=_headers(token),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("Accept-Encoding",),
    )


# --------------------------------------------------------------------------- ingest (closed loop)


@dataclass
class _Tally:
    events: int = 0
    requests: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    per_request = args.batch_size if args.mode == "batch" else 1
    path = "/v1/events/batch" if args.mode == "batch" else "/v1/events"
    url = args.url + path
    # distinct bodies (no ids: every POST is a new event), cycled
    shape = {"tenants": args.tenants, "fields": args.fields, "kind": args.type}
    if args.mode == "batch":
        bodies = [
            _dumps(
                [event_body(b * per_request + k, args.size, **shape) for k in range(per_request)]
            )
            for b in range(64)
        ]
    else:
        bodies = [_dumps(event_body(i, args.size, **shape)) for i in range(1024)]
    tally = _Tally()
    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution
    start = clock()
    t0 = start + args.warmup
    t1 = t0 + args.duration
    stop = False

    async def worker(n: int, http: aiohttp.ClientSession) -> None:
        nonlocal stop, t1
        i = n
        while not stop:
            body = bodies[i % len(bodies)]
            i += args.concurrency
            began = clock()
            try:
                async with http.post(url, data=body) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            ended = clock()
            if ended >= t1:
                stop = True
                return
            if began < t0:
                continue  # warm-up
            tally.statuses[status] += 1
            tally.requests += 1
            if 200 <= status < 300:
                tally.events += per_request
                tally.latencies.append(ended - began)
            else:
                tally.errors += 1
            if args.max_events and tally.events >= args.max_events:
                t1 = ended
                stop = True

    async with _session(args.concurrency, args.token) as http:
        await asyncio.gather(*(worker(n, http) for n in range(args.concurrency)))
    elapsed = max(1e-9, min(t1, clock()) - t0)
    return {
        "mode": args.mode,
        "concurrency": args.concurrency,
        "events": tally.events,
        "requests": tally.requests,
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "elapsed_s": elapsed,
        "events_per_s": tally.events / elapsed,
        "requests_per_s": tally.requests / elapsed,
        "latency_ms_p50": percentile(tally.latencies, 50) * 1000,
        "latency_ms_p99": percentile(tally.latencies, 99) * 1000,
    }


# --------------------------------------------------------------------------- bulk (exact count)


async def bulk(args: argparse.Namespace) -> dict[str, Any]:
    url = args.url + "/v1/events/batch"
    batches: Iterator[int] = iter(range(0, args.events, args.batch_size))
    accepted = 0
    errors: list[str] = []

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for first in batches:
            count = min(args.batch_size, args.events - first)
            body = _dumps([event_body(first + k, args.size) for k in range(count)])
            async with http.post(url, data=body) as resp:
                text = await resp.read()
                if resp.status == 202:
                    accepted += count
                else:
                    errors.append(f"{resp.status}: {text[:200]!r}")
                    return

    start = time.perf_counter()
    async with _session(args.concurrency, args.token) as http:
        await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "events": accepted,
        "elapsed_s": elapsed,
        "events_per_s": accepted / elapsed,
        "errors": errors[:5],
        "started_at": time.time() - elapsed,
    }


# --------------------------------------------------------------------------- rate (open loop)


async def rate(args: argparse.Namespace) -> dict[str, Any]:
    url = args.url + "/v1/events"
    total = int(args.rate * args.duration)
    tally = _Tally()
    tasks: set[asyncio.Task[None]] = set()
    late: list[float] = []

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        began = time.perf_counter()
        body = _dumps(event_body(i, args.size, t=time.time()))
        try:
            async with http.post(url, data=body) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        tally.requests += 1
        tally.statuses[status] += 1
        if 200 <= status < 300:
            tally.events += 1
            tally.latencies.append(time.perf_counter() - began)
        else:
            tally.errors += 1

    async with _session(args.max_outstanding, args.token) as http:
        start = time.perf_counter()
        for i in range(total):
            due = start + i / args.rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                late.append(-wait)
            task = asyncio.create_task(one(http, i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        elapsed = time.perf_counter() - start
    return {
        "sent": total,
        "events": tally.events,
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "elapsed_s": elapsed,
        "send_lag_ms_p99": percentile(late, 99) * 1000 if late else 0.0,
        "ingest_latency_ms_p50": percentile(tally.latencies, 50) * 1000,
        "ingest_latency_ms_p99": percentile(tally.latencies, 99) * 1000,
    }


# --------------------------------------------------------------------------- deliver (baseline)


async def deliver(args: argparse.Namespace) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00.000Z"
    events = args.events // args.endpoints

    def jobs() -> Iterator[tuple[str, bytes]]:
        for i in range(events):
            body = _dumps(
                {"type": EVENT_TYPE, "timestamp": stamp, "data": event_data(i, args.size)}
            )
            for e in range(args.endpoints):
                yield f"{args.url}/ep/{e}", body

    queue = jobs()
    headers = {"Content-Type": "application/json", "User-Agent": "hookd/bench"}
    sent = 0
    failed = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal sent, failed
        for url, body in queue:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    sent += 1
                else:
                    failed += 1

    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=0)
    start = time.perf_counter()
    async with aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as http:
        await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    return {"sent": sent, "failed": failed, "elapsed_s": elapsed, "per_s": sent / elapsed}


# --------------------------------------------------------------------------- command line


def main() -> None:
    parser = argparse.ArgumentParser(description="bench load generators (print one JSON line)")
    sub = parser.add_subparsers(dest="kind", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", required=True, help="base URL (no path)")
        p.add_argument("--token", default=None, help="Bearer token")
        p.add_argument("--size", type=int, default=256, help="bytes of JSON data per event")

    p = sub.add_parser("ingest")
    common(p)
    p.add_argument("--mode", choices=["single", "batch"], default="single")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--max-events", type=int, default=0)
    p.add_argument("--tenants", type=int, default=0, help="spread events over N tenants")
    p.add_argument("--fields", type=int, default=0, help="extra data fields f0.. per event")
    p.add_argument("--type", default=EVENT_TYPE, help="the event type")

    p = sub.add_parser("bulk")
    common(p)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=4)

    p = sub.add_parser("rate")
    common(p)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-outstanding", type=int, default=256)

    p = sub.add_parser("deliver")
    common(p)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--endpoints", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=256)

    args = parser.parse_args()
    fn = {"ingest": ingest, "bulk": bulk, "rate": rate, "deliver": deliver}[args.kind]
    print(json.dumps(uvloop_run(fn(args))), flush=True)


if __name__ == "__main__":
    main()
