"""Bench servers, each run in its own process on uvloop (as hookd is).

``python -m bench.servers bare --port N``
    The ingest baseline: answers ``POST /v1/events`` and ``POST /v1/events/batch`` with 202 and a
    small JSON answer after reading the body, storing nothing, parsing nothing. It is the ceiling
    of the aiohttp server stack on this machine.

``python -m bench.servers blackhole --port N``
    Accepts TCP connections and never answers (reads and discards): a receiver that hangs.
    With ``max_in_flight: 1`` and a long policy timeout it parks an endpoint's deliveries, so
    ingest can be measured with real fan-out but without HTTP deliveries competing.

``python -m bench.servers sink --port N [--status 200]``
    The delivery receiver: every request to any other path is counted and timestamped
    (``time.time()`` on arrival). If the JSON body carries ``data.t`` (a unix time put there by
    the sender: the send time, or the due time of a scheduled retry), ``arrival - t`` is recorded
    too. ``GET /_stats`` returns the figures (``?samples=1`` adds every ``arrival - t``),
    ``POST /_reset`` clears them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from bench.common import uvloop_run


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


# --------------------------------------------------------------------------- bare ingest


_BARE_ONE = json.dumps({"id": "evt_bare", "deliveries": []}).encode()
_BARE_BATCH = json.dumps({"items": []}).encode()


async def bare_event(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202, body=_BARE_ONE, content_type="application/json")


async def bare_batch(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202, body=_BARE_BATCH, content_type="application/json")


def bare_app() -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post("/v1/events", bare_event)
    app.router.add_post("/v1/events/batch", bare_batch)
    app.router.add_get("/readyz", _ok)
    app.router.add_get("/healthz", _ok)
    return app


# --------------------------------------------------------------------------- blackhole


class _Blackhole(asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        pass  # never answer


async def blackhole(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Blackhole, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- sink


class Sink:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.samples: list[float] = []  # arrival - data.t, seconds
        self.keys: set[tuple[str, str]] = set()  # (path, webhook-id): repeats show as dupes
        self.paths: set[str] = set()

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if not self.count:
            self.first = now
        self.count += 1
        self.last = now
        path = request.path
        self.paths.add(path)
        webhook_id = request.headers.get("webhook-id")
        if webhook_id is not None:
            self.keys.add((path, webhook_id))
        try:
            data = json.loads(body)["data"]
            sent = float(data["t"])
        except (ValueError, KeyError, TypeError):
            pass
        else:
            self.samples.append(now - sent)
        return web.Response(status=self.status, text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        out: dict[str, Any] = {
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "distinct": len(self.keys),
            "paths": len(self.paths),
            "with_t": len(self.samples),
        }
        if request.query.get("samples"):
            out["samples"] = self.samples
        return web.json_response(out)

    async def clear(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"status": "reset"})


def sink_app(status: int) -> web.Application:
    sink = Sink(status)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/_stats", sink.stats)
    app.router.add_post("/_reset", sink.clear)
    app.router.add_get("/readyz", _ok)
    app.router.add_get("/healthz", _ok)
    app.router.add_route("*", "/{tail:.*}", sink.receive)
    return app


async def serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="bench servers (bare ingest, delivery sink)")
    parser.add_argument("kind", choices=["bare", "sink", "blackhole"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=200, help="sink: the status to answer")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.kind == "blackhole":
            uvloop_run(blackhole(args.port))
        else:
            app = bare_app() if args.kind == "bare" else sink_app(args.status)
            uvloop_run(serve(app, args.port))


if __name__ == "__main__":
    main()
