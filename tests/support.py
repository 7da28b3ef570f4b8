"""Real parts for tests: a recording receiver, an in-process daemon, a real ``hookd`` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hookd import config as configuration
from hookd import daemon


async def wait_for(
    predicate: Callable[[], Any | Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.01
) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived


@dataclass
class Receiver:
    """An aiohttp receiver on an ephemeral loopback port that records every request.

    ``responses`` is consumed in order (status codes, or (status, headers) pairs, or callables
    returning a web.Response); when empty, ``default`` answers. ``delay`` sleeps before answering.
    """

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0

    def clear(self) -> None:
        self.requests.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body, time.time()))
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.responses.pop(0) if self.responses else self.default
        if callable(answer):
            result: web.StreamResponse = answer(request)
            return result
        if isinstance(answer, tuple):
            status, headers = answer
            return web.Response(status=status, headers=headers, text="answer")
        return web.Response(status=int(answer), text=f"status {answer}")


@contextlib.asynccontextmanager
async def receiver(path: str = "/hook") -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield rec
    finally:
        await runner.cleanup()


@dataclass
class Daemon:
    """A daemon running inside the test's event loop, with an HTTP client to it."""

    url: str
    config_path: Path
    http: aiohttp.ClientSession
    task: asyncio.Task[int]

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kw) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def post_event(self, type_: str, data: Any = None, **kw: Any) -> tuple[int, Any]:
        body = {"type": type_, "data": {} if data is None else data, **kw}
        return await self.request("POST", "/v1/events", json=body)

    async def delivery(self, delivery_id: str) -> dict[str, Any]:
        status, body = await self.request("GET", f"/v1/deliveries/{delivery_id}")
        assert status == 200, body
        result: dict[str, Any] = body
        return result


@contextlib.asynccontextmanager
async def running_daemon(
    tmp_path: Path, yaml_text: str, *, headers: dict[str, str] | None = None
) -> AsyncIterator[Daemon]:
    """Start ``daemon.run`` in this loop with ``yaml_text`` (``{port}``/``{db}`` filled in).

    The daemon's signal handlers go on this loop; the daemon is stopped by cancelling it.
    """
    port = free_port()
    path = tmp_path / "hookd.yaml"
    path.write_text(yaml_text.format(port=port, db=tmp_path / "hookd.db"))
    cfg = configuration.load(path)
    task = asyncio.create_task(daemon.run(cfg, path), name="daemon-under-test")
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(headers=headers or {}) as http:

        async def ready() -> bool:
            if task.done():
                task.result()  # raise the daemon's startup error in the test
            try:
                async with http.get(url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, timeout=10)
        try:
            yield Daemon(url=url, config_path=path, http=http, task=task)
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class Process:
    """A real ``hookd run`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    config_path: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)


def start_process(
    tmp_path: Path,
    yaml_text: str,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    name: str = "hookd",
) -> Process:
    """Launch ``python -m hookd run -c FILE`` (``{port}``/``{db}`` filled in); not yet ready."""
    port = port or free_port()
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml_text.format(port=port, db=tmp_path / "hookd.db"))
    log_path = tmp_path / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
    full_env.update(env or {})
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hookd", "run", "-c", str(path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    return Process(proc=proc, url=f"http://127.0.0.1:{port}", config_path=path, log_path=log_path)


async def wait_ready(process: Process, timeout: float = 20) -> None:
    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            if process.proc.poll() is not None:
                raise AssertionError(f"hookd exited {process.proc.returncode}:\n{process.log()}")
            try:
                async with http.get(process.url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, timeout=timeout, interval=0.05)


@contextlib.contextmanager
def stopped_at_exit(process: Process) -> Iterator[Process]:
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
