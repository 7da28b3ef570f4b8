"""Crash loop: SIGKILL the real ``hookd run`` at random moments under load; count what is lost.

    python -m bench.crashloop [--kills 100] [--rate 50] [--seed 1] [--quick]

A load generator posts events at a steady rate (open loop; every fifth request a batch of 5) to
hookd, which fans each out to two endpoints on a receiver in this process (``/a`` with up to 16
attempts in flight, ``/b`` with ``ordering: fifo``); the receiver fails 10 % of first arrivals
and answers after up to 5 ms (50 requests/s are 90 events/s, 180 deliveries/s). ``--kills``
times: start hookd, wait a random 0.2-3 s from the spawn (some kills land during start-up, most
while it serves and delivers), SIGKILL it. Then a last start, the load stops, and the bench
waits until every accepted event has reached both endpoints.

Reported: events accepted (answered 202), delivered (reached each endpoint with a 2xx),
**missing** (accepted but never delivered: must be 0), duplicates (2xx arrivals beyond the
first of one delivery: the attempts in flight at a kill), restart-to-ready times.

With PostgreSQL (``--processes 2 --postgres``: a fresh database on a throwaway server started as
:mod:`bench.postgres` starts it, with the server's durable defaults, or on ``--dsn``) two
processes share the outbox and each kill picks one of them at random; the load goes to whichever
is alive. Saved as ``crashloop.json``, or ``crashloop-postgres.json`` on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common, postgres
from bench.rig import Daemons, Load, Sink, percentile, running_sink, status

KEY = "aG9va2QtYmVuY2gtc2VjcmV0LWtleS0zMi1ieXRlcyE="  # storage.secret_key (32 bytes) on PostgreSQL


@dataclass
class Result:
    kills: int = 0
    killed_before_ready: int = 0
    accepted: int = 0
    deliveries_expected: int = 0
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    unacknowledged_delivered: int = 0  # stored and delivered, but the 202 was lost in the kill
    ready_s: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    sink_arrivals: int = 0
    sink_failed: int = 0
    final_status: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    settle_s: float = 0.0  # from the load's end until the last delivery arrived
    missing_ids: list[str] = field(default_factory=list)


async def crash_loop(
    workdir: Path,
    *,
    kills: int,
    rate: float = 50.0,
    seed: int = 1,
    processes: int = 1,
    storage: str = "",
    policy: str = "",
    after_s: float = 0.0,
    settle_s: float = 300.0,
    log: Any = print,
) -> Result:
    """Run the crash loop in ``workdir``; every figure of the report. The load goes on for
    ``after_s`` once the last start is ready (so a short run accepts events even on a machine
    slow enough that most kills land before ``/readyz``)."""
    rng = random.Random(seed)
    result = Result()
    began = time.monotonic()
    sink = Sink(fail=0.1, max_delay=0.005, rng=random.Random(seed + 1))
    async with running_sink(sink):
        daemons = Daemons(workdir, sink.url, count=processes, storage=storage, policy=policy)
        load = Load(rate=rate)
        stop = asyncio.Event()
        watchers: set[asyncio.Task[None]] = set()
        try:
            for member in daemons.members:
                daemons.start(member)
                result.ready_s.append(await daemons.ready(member))
            running = asyncio.create_task(load.run(daemons.target, stop))
            for kill in range(kills):
                victim = rng.choice(daemons.members)
                if not victim.alive():
                    daemons.start(victim)
                await asyncio.sleep(rng.uniform(0.2, 3.0) - (time.monotonic() - victim.started))
                if victim.ready_at is None:
                    result.killed_before_ready += 1
                daemons.kill(victim)
                result.kills += 1
                daemons.start(victim)
                watcher = asyncio.create_task(_note_ready(daemons, victim, result))
                watchers.add(watcher)
                watcher.add_done_callback(watchers.discard)
                if (kill + 1) % 10 == 0:
                    log(f"  {kill + 1} kills, {len(load.accepted)} accepted, {sink.arrivals} in")
            for member in daemons.members:
                if not member.alive():
                    daemons.start(member)
                await daemons.ready(member)
            await asyncio.sleep(after_s)
            stop.set()
            await running
            expected = {("/a", i) for i in load.accepted} | {("/b", i) for i in load.accepted}
            settling = time.monotonic()
            await _until(lambda: expected <= set(sink.ok), settle_s)
            result.settle_s = time.monotonic() - settling
            # events stored whose 202 was lost in a kill are delivered too: wait for those
            for _ in range(int(settle_s * 10)):
                result.final_status = await status(daemons.members[0].url)
                if not result.final_status["deliveries"]["pending"]:
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            for watcher in watchers:
                watcher.cancel()
            daemons.stop_all()
    delivered_keys = expected & set(sink.ok)
    result.accepted = len(load.accepted)
    result.deliveries_expected = len(expected)
    result.delivered = len(delivered_keys)
    result.missing = len(expected - delivered_keys)
    result.missing_ids = sorted(f"{p}{i}" for p, i in expected - delivered_keys)[:20]
    result.duplicates = sink.duplicates()
    result.unacknowledged_delivered = len({i for _, i in set(sink.ok)} - load.accepted)
    result.statuses = dict(load.statuses)
    result.sink_arrivals = sink.arrivals
    result.sink_failed = sink.failed
    result.elapsed_s = time.monotonic() - began
    return result


async def _until(predicate: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)


async def _note_ready(daemons: Daemons, member: Any, result: Result) -> None:
    started = member.started
    try:
        took = await daemons.ready(member, within=30)
    except RuntimeError:
        return  # killed again before it was ready
    if member.started == started:
        result.ready_s.append(took)


def report(result: Result, *, quick: bool, args: argparse.Namespace) -> common.Report:
    name = "crashloop-postgres" if "backend: postgres" in args.storage else "crashloop"
    out = common.Report(name=name, quick=quick, started=time.time() - result.elapsed_s)
    table = out.table(
        f"crash loop: {result.kills} SIGKILLs at random moments under {args.rate:g} requests/s",
        ["figure", "value"],
    )
    for name, value in [
        ("kills", result.kills),
        ("kills before /readyz answered", result.killed_before_ready),
        ("events accepted (202)", result.accepted),
        ("deliveries expected (2 endpoints)", result.deliveries_expected),
        ("deliveries delivered (2xx at the receiver)", result.delivered),
        ("missing", result.missing),
        ("duplicate 2xx arrivals", result.duplicates),
        ("duplicates per 100 deliveries", 100 * result.duplicates / max(1, result.delivered)),
        ("events delivered whose 202 was lost in a kill", result.unacknowledged_delivered),
        ("receiver arrivals", result.sink_arrivals),
        ("receiver 500s (10 % of first arrivals)", result.sink_failed),
        ("restart to ready p50 (s)", percentile(result.ready_s, 50)),
        ("restart to ready p99 (s)", percentile(result.ready_s, 99)),
        ("restart to ready max (s)", max(result.ready_s, default=float("nan"))),
        ("settle: load end to last delivery (s)", result.settle_s),
        ("elapsed (s)", result.elapsed_s),
    ]:
        table.add(name, value)
    answers = out.table("load generator answers", ["answer", "requests"])
    for key, count in sorted(result.statuses.items()):
        answers.add(key, count)
    out.check("missing deliveries", float(result.missing), "<=", 0.0)
    out.notes.append(f"final /v1/status deliveries: {result.final_status.get('deliveries')}")
    if result.missing_ids:
        out.notes.append(f"missing: {result.missing_ids}")
    return out


def main() -> None:
    parser = common.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=1, help="> 1 needs PostgreSQL")
    parser.add_argument("--storage", default="", help="more storage keys, e.g. a postgres dsn")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on a fresh database of a throwaway server (or --dsn), as bench.postgres starts it",
    )
    parser.add_argument("--dsn", default=os.environ.get("HOOKD_BENCH_DSN"))
    args = parser.parse_args()
    if args.quick:
        args.kills = min(args.kills, 10)
    with contextlib.ExitStack() as stack:
        if args.postgres:
            base, _ = stack.enter_context(postgres.server(args.dsn))
            dsn = postgres.fresh_database(base, "hookd_crashloop").replace("'", "''")
            args.storage = f", backend: postgres, dsn: '{dsn}', secret_key: {KEY}{args.storage}"
        tmp = stack.enter_context(common.workspace("crashloop"))
        result = common.uvloop_run(
            crash_loop(
                tmp,
                kills=args.kills,
                rate=args.rate,
                seed=args.seed,
                processes=args.processes,
                storage=args.storage,
            )
        )
    out = report(result, quick=args.quick, args=args)
    out.print()
    print(f"saved {out.save().relative_to(common.ROOT)}")
    raise SystemExit(0 if result.missing == 0 else 1)


if __name__ == "__main__":
    main()
