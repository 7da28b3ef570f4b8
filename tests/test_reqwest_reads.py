"""What a pyreqwest attempt reads of the receiver's answer (hookd.delivery.reqwest.Transport.post,
which stops at the Content-Length and then skips the stream's close, both only to drop the GIL
fewer times): the whole body, with a Content-Length or chunked, below and above what pyreqwest
reads ahead; a body past ``max_response_body`` cut there. However the read ended, the next
request to the same receiver goes through, on the connection the first left in the pool when
it read the whole answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hookd.delivery.reqwest import Transport

BIG = bytes(range(256)) * 1200  # 300 KiB: more than pyreqwest reads ahead (64 KiB)


class Answers:
    """A receiver on 127.0.0.1 whose ``/length/N`` answers N bytes with a Content-Length,
    ``/chunked/N`` the same N bytes chunked; it notes each request's client port."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.url = ""

    async def length(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        await request.read()
        return web.Response(body=BIG[: int(request.match_info["n"])])

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        await request.read()
        size = int(request.match_info["n"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, size, 10_000):
            await response.write(BIG[start : min(size, start + 10_000)])
        await response.write_eof()
        return response

    def _note(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.ports.append(peer[1] if peer else -1)


@pytest.fixture
async def answers() -> AsyncIterator[Answers]:
    found = Answers()
    app = web.Application()
    app.router.add_post("/length/{n}", found.length)
    app.router.add_post("/chunked/{n}", found.chunked)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}"
    try:
        yield found
    finally:
        await runner.cleanup()


async def _post(transport: Transport, url: str, cap: int) -> bytes:
    answer = await transport.post(
        url, b"{}", {}, pin=None, max_response_body=cap, now=time.time(), timeout=10
    )
    assert answer.status == 200
    return answer.body


async def _post_twice(url: str) -> tuple[bytes, bytes]:
    """Two requests to ``url`` through one new Transport (the cap well above the body)."""
    transport = Transport()
    try:
        return await _post(transport, url, 1 << 20), await _post(transport, url, 1 << 20)
    finally:
        transport.close()


@pytest.mark.parametrize("size", [0, 17, 65_536, 300_000])
async def test_a_body_with_a_length_is_read_whole_and_its_connection_reused(
    answers: Answers, size: int
) -> None:
    first, second = await _post_twice(f"{answers.url}/length/{size}")
    assert first == second == BIG[:size]
    assert len(answers.ports) == 2
    assert answers.ports[0] == answers.ports[1]  # one kept-alive connection served both


@pytest.mark.parametrize("size", [0, 25_000, 300_000])
async def test_a_chunked_body_is_read_to_its_end(answers: Answers, size: int) -> None:
    first, second = await _post_twice(f"{answers.url}/chunked/{size}")
    assert first == second == BIG[:size]
    assert answers.ports[0] == answers.ports[1]


@pytest.mark.parametrize("kind", ["length", "chunked"])
async def test_a_body_past_the_cap_is_cut_and_the_next_request_goes_through(
    answers: Answers, kind: str
) -> None:
    transport = Transport()
    try:
        capped = await _post(transport, f"{answers.url}/{kind}/300000", 1024)
        after = await _post(transport, f"{answers.url}/length/5", 1024)
    finally:
        transport.close()
    assert capped == BIG[:1024]
    assert after == BIG[:5]
    assert len(answers.ports) == 2


async def _raw_receiver(answer: bytes) -> tuple[asyncio.Server, str]:
    """A receiver that answers a request with ``answer``, bytes as they are."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:  # one request, its answer, and the connection closed
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


@pytest.mark.parametrize(
    ("answer", "status", "retry_after"),
    [
        (b"HTTP/1.1 204 No Content\r\nContent-Length: \xb2\r\n\r\n", 204, None),
        (b"HTTP/1.1 503 Busy\r\nRetry-After: \xb2\r\nContent-Length: 2\r\n\r\nno", 503, None),
        (b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\nno", 503, 7.0),
    ],
)
async def test_a_header_value_that_is_not_text_counts_as_absent(
    answer: bytes, status: int, retry_after: float | None
) -> None:
    """hyper passes header values of any bytes on (a Content-Length on a 204 is not even
    checked) and pyreqwest raises ValueError when asked for one that is not text: the attempt
    still gets its status, as if the header were absent."""
    server, url = await _raw_receiver(answer)
    transport = Transport()
    try:
        got = await transport.post(
            url, b"{}", {}, pin=None, max_response_body=1024, now=time.time(), timeout=10
        )
    finally:
        transport.close()
        server.close()
        await server.wait_closed()
    assert (got.status, got.retry_after) == (status, retry_after)
