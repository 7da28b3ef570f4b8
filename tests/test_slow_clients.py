"""The listener against slow and broken clients, over raw sockets: half-sent heads, idle and
dripping connections, slow bodies are cut off; HTTP parser errors answer the JSON error model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.hostile import raw_exchange, split_answer
from tests.support import Daemon, running_daemon

DEFAULTS = "listen: 127.0.0.1:{port}\nstorage: {{path: {db}}}\n"
QUICK = DEFAULTS + "limits: {{header_timeout: 1s, idle_timeout: 2s, body_timeout: 1s}}\n"


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(tmp_path, QUICK) as daemon:
        yield daemon


def port_of(daemon: Daemon) -> int:
    return int(daemon.url.rsplit(":", 1)[1])


async def closed_by_server(
    reader: asyncio.StreamReader, within: float
) -> tuple[bool, bytes, float]:
    """Read until the server closes the connection: (closed in time, what it sent, seconds)."""
    started = time.monotonic()
    data = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return False, data, time.monotonic() - started
    except ConnectionResetError:
        pass
    return True, data, time.monotonic() - started


async def test_half_a_request_head_is_closed_by_default(tmp_path: Path) -> None:
    """Slowloris: with the default settings, a head that never ends is cut off (at 10 s)."""
    async with running_daemon(tmp_path, DEFAULTS) as daemon:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(daemon))
        writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Ty")
        await writer.drain()
        closed, data, _ = await closed_by_server(reader, within=30)
        writer.close()
        assert closed, "the server kept a half-sent request open for 30 s"
        assert data == b""
        status, body = await daemon.request("GET", "/healthz")
        assert (status, body) == (200, {"status": "ok"})


async def test_a_head_dripping_a_byte_at_a_time_is_cut_off(quick: Daemon) -> None:
    """Bytes that keep coming do not extend the deadline for the whole head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(quick))
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    started = time.monotonic()
    closed = False
    for byte in head:  # one byte every 0.2 s: the attack itself
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
        else:
            closed, _, _ = await closed_by_server(reader, within=0.2)
        if closed or time.monotonic() - started > 30:
            break
    writer.close()
    assert closed, "a dripping head was still open after 30 s"


async def test_an_idle_connection_is_closed_after_idle_timeout(quick: Daemon) -> None:
    """Nothing sent at all, or nothing after an answer: closed after limits.idle_timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(quick))
    closed, data, _ = await closed_by_server(reader, within=15)
    writer.close()
    assert (closed, data) == (True, b"")

    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(quick))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    closed, data, _ = await closed_by_server(reader, within=15)
    writer.close()
    assert closed
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.endswith(b'{"status":"ok"}')


async def test_keep_alive_serves_requests_in_turn(quick: Daemon) -> None:
    """Several requests on one connection, each within the limits, are all answered."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(3):
            async with http.get(quick.url + "/healthz") as resp:
                assert resp.status == 200
                await resp.read()


async def test_a_body_slower_than_body_timeout_is_a_408(quick: Daemon) -> None:
    raw = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b'{"type": "x", "data": "'
    )
    status, headers, answer = split_answer(await raw_exchange(port_of(quick), raw, within=15))
    assert (status, answer["error"]["code"]) == (408, "request_timeout"), answer
    assert headers["connection"].lower() == "close"
    _, events = await quick.request("GET", "/v1/deliveries")
    assert events["items"] == []


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Encoding: br2\r\n"
        b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    ],
    ids=["content-length", "header", "request-line", "tls-hello", "transfer-encoding"],
)
async def test_http_parser_errors_answer_the_json_error_model(quick: Daemon, raw: bytes) -> None:
    status, headers, answer = split_answer(await raw_exchange(port_of(quick), raw))
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    assert set(answer) == {"error"}
    assert set(answer["error"]) == {"code", "message"}
    assert answer["error"]["code"] == "bad_request"
    assert answer["error"]["message"]
