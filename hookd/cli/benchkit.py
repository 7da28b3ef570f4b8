"""The parts of ``hookd bench``: a counting receiver, load generators, CPU readings.

The receiver runs in a process of its own (:func:`sink_main`): it answers
200 to every POST, counts them and keeps the first and last arrival time and, for bodies that
carry ``data.t`` (a send time), ``arrival - t``. ``GET /_stats`` gives the figures, ``POST
/_reset`` clears them. The load generators run in the ``hookd bench`` process.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

# --------------------------------------------------------------------------- the receiver


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.lags: list[float] = []

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        self.count += 1
        self.first = self.first or now
        self.last = now
        if b'"t":' in body:
            sent = orjson.loads(body).get("data", {}).get("t")
            if isinstance(sent, float):
                self.lags.append(now - sent)
        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"count": self.count, "first": self.first, "last": self.last, "lags": self.lags}
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.__init__()  # type: ignore[misc]
        return web.json_response({})


def sink_main(port: int) -> None:
    sink = Sink()
    app = web.Application()
    app.router.add_get("/_stats", sink.stats)
    app.router.add_post("/_reset", sink.reset)
    app.router.add_post("/{tail:.*}", sink.receive)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --------------------------------------------------------------------------- load


def event(i: int, *, t: float | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"n": i, "text": "x" * 200}
    if t is not None:
        data["t"] = t
    return {"type": "bench.event", "data": data}


async def closed_loop(
    url: str, token: str, *, batch: int, concurrency: int, seconds: float,
    progress: Callable[[int], None],
) -> tuple[float, list[float]]:  # fmt: skip
    """POST as fast as ``concurrency`` workers can for ``seconds``: events/s and latencies."""
    path = "/v1/events/batch" if batch > 1 else "/v1/events"
    body = orjson.dumps([event(i) for i in range(batch)] if batch > 1 else event(0))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    done = 0
    end = time.monotonic() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < end:
            started = time.perf_counter()
            async with http.post(url + path, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"hookd answered {resp.status}")
            latencies.append((time.perf_counter() - started) * 1000)
            done += batch
            progress(done)

    begun = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return done / (time.monotonic() - begun), latencies


async def open_loop(url: str, token: str, *, rate: float, seconds: float) -> int:
    """Single events at a steady ``rate`` per second, each carrying its send time."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    count = int(rate * seconds)
    start = time.monotonic()
    tasks = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(i: int) -> None:
            body = orjson.dumps(event(i, t=time.time()))
            async with http.post(url + "/v1/events", data=body, headers=headers) as resp:
                await resp.read()

        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return count


# --------------------------------------------------------------------------- readings


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of ``pid``: all threads, and its main thread (the event loop)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = loop = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        total += seconds
        if task.name == str(pid):
            loop = seconds
    return total, loop


def commit_latency(folder: Path, commits: int = 100) -> tuple[float, float]:
    """p50 and p99 ms of a one-row commit with ``synchronous=FULL`` in WAL mode: the disk."""
    db = sqlite3.connect(folder / "disk.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x)")
    took = []
    for i in range(commits):
        started = time.perf_counter()
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
        took.append((time.perf_counter() - started) * 1000)
    db.close()
    return percentile(took, 50), percentile(took, 99)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
