"""Soak, CI size: 20 s of steady load on the real ``hookd run`` with a receiver failing 20 % of
requests (``python -m bench.soak`` runs 10 minutes and more): its open descriptors do not grow,
and it stops cleanly; and the delivery pool gives back the connections a burst opened."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest

from bench.soak import soak
from hookd.delivery.client import DeliveryConnector
from hookd.delivery.reqwest import Transport
from tests.support.backends import rig_storage
from tests.support.polling import wait_for
from tests.support.slow import require_slow


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.usefixtures("backend")
async def test_twenty_seconds_of_load_and_failures_grow_no_descriptors(tmp_path: Path) -> None:
    require_slow("hookd run")
    samples, summary = await soak(
        tmp_path, duration=20, rate=50, interval=2, storage=rig_storage(), log=print
    )
    warm = samples[len(samples) // 4]
    after = samples[len(samples) // 4 :]
    assert len(samples) >= 9
    # descriptors that are not sockets (database, WAL, log, pipes): exactly flat
    assert max(s.files for s in after) <= warm.files, samples
    # sockets: a descriptor kept per request or delivery would add hundreds in 20 s (1,000
    # requests, more deliveries); the keep-alive pools move with the concurrency of the moment
    # (and recede after 15-30 s), so the halves are compared by their medians, and without the
    # inbound connections: those are the load generator's pool (open loop, no limit), which
    # grows with the answer time when the machine stalls (seen: 3 -> 8 with a CPU hog beside
    # the suite's two workers), not hookd's doing. Every descriptor counts in the last bound.
    half = len(after) // 2
    first, second = after[:half], after[half:]
    own_first = statistics.median(s.fds - s.inbound for s in first)
    own_second = statistics.median(s.fds - s.inbound for s in second)
    assert own_second <= own_first + 8, samples
    assert max(s.fds for s in after) <= warm.fds + 60, samples
    assert summary["accepted"] >= 20 * 50 * 0.9
    assert summary["receiver_500s"] > 0
    assert summary["exit_code"] == 0


class Held(asyncio.Protocol):
    """Answers each request 200 after ``delay``; counts its open connections."""

    open = 0
    delay = 0.0
    live: ClassVar[set[asyncio.Transport]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        Held.open += 1
        Held.live.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        Held.open -= 1
        Held.live.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            asyncio.get_running_loop().call_later(Held.delay, self.answer)

    def answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


async def stop_held(server: asyncio.Server) -> None:
    """Stop the server and close the connections it still has (``Server.close`` leaves them
    open): each closes on a later turn of the loop, so wait for that, or the test's loop ends
    with their sockets open and a later test fails on the ResourceWarning."""
    server.close()
    for transport in list(Held.live):
        transport.close()
    await wait_for(lambda: not Held.live, timeout=10)
    await server.wait_closed()


async def burst_then_trickle(post: Callable[[], Awaitable[None]]) -> None:
    """30 POSTs at once (each held 0.2 s, so 30 connections), then one every 10 ms for 2 s:
    by the end, at most 3 connections are still open."""
    loop = asyncio.get_running_loop()
    Held.delay = 0.2
    await asyncio.gather(*(post() for _ in range(30)))
    assert Held.open == 30
    Held.delay = 0.0
    end = loop.time() + 2.0
    while loop.time() < end:  # one every 10 ms: a steady trickle
        await post()
        await asyncio.sleep(0.01)
    assert Held.open <= 3


async def test_the_delivery_pool_gives_back_the_connections_a_burst_opened() -> None:
    """30 concurrent POSTs to one receiver, then steady POSTs one at a time: the connections the
    burst opened close after keepalive_timeout, and the steady load keeps one or two. (aiohttp
    reuses its oldest idle connection first, which keeps every one of them alive for ever under
    a steady load: the pool only grew.)"""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Held, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    Held.open = 0
    connector = DeliveryConnector(proxy=None, target_guard=None, limit=0, keepalive_timeout=0.3)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:

            async def post() -> None:
                async with http.post(url, data=b"{}") as resp:
                    await resp.read()

            await burst_then_trickle(post)
    finally:
        await stop_held(server)


async def test_the_reqwest_pool_gives_back_the_connections_a_burst_opened() -> None:
    """The same through pyreqwest (most deliveries): after the burst, a steady trickle keeps one
    or two connections and the rest close once idle for ``idle_s`` (before, reqwest's own 90 s:
    all 30 were still open after 20 s of trickle)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Held, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    Held.open = 0
    transport = Transport(idle_s=0.3)
    assert Transport().idle_s == 15.0  # aiohttp's keepalive_timeout, as the other path

    async def post() -> None:
        answer = await transport.post(
            url, b"{}", {}, pin=None, max_response_body=1024, now=time.time(), timeout=5
        )
        assert answer.status == 200

    try:
        await burst_then_trickle(post)
    finally:
        transport.close()
        await stop_held(server)
