"""Receivers that misbehave on purpose: real sockets on 127.0.0.1, each failing in one way.

Each server is a plain asyncio protocol (no HTTP framework, so nothing tidies the fault away)
and counts the connections it saw and the bytes it sent. :func:`misbehaving` starts every kind
at once and names their URLs; :data:`FAULTS` is what the fault matrix (tests/test_faults_
delivery.py) tries. Every server closes its side when the client goes, so a descriptor still
open after an attempt is the client's (hookd's) doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trustme

from tests.support.polling import free_port

CHUNK = b"x" * 65536


@dataclass
class Tally:
    """What one server saw: connections accepted, requests begun, bytes it sent."""

    connections: int = 0
    sent: int = 0
    open: int = 0


class _Base(asyncio.Protocol):
    """Counts the connection, waits for a request head, then calls :meth:`respond`."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.responded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.tally.connections += 1
        self.tally.open += 1

    def data_received(self, data: bytes) -> None:
        self.head += data
        if not self.responded and b"\r\n\r\n" in self.head:
            self.responded = True
            self.respond()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.open -= 1

    def eof_received(self) -> bool:
        return False  # the client went: close our side too

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.tally.sent += len(data)
        self.transport.write(data)

    def respond(self) -> None:
        raise NotImplementedError


class Reset(_Base):
    """Reads the request, then resets the connection (SO_LINGER 0: an RST, not a FIN)."""

    def respond(self) -> None:
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class Hang(_Base):
    """Reads the request and never answers."""

    def respond(self) -> None:
        pass


class Close(_Base):
    """Reads the request and closes without a word (FIN)."""

    def respond(self) -> None:
        assert self.transport is not None
        self.transport.close()


class StalledBody(_Base):
    """Sends a 200 head promising 1000 bytes, then 10 of them, then nothing."""

    def respond(self) -> None:
        self.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
        self.send(b"0123456789")


class HugeBody(_Base):
    """A 500 with a chunked body that never ends: writes whenever the socket drains."""

    def respond(self) -> None:
        self.send(b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.pump()

    def pump(self) -> None:
        assert self.transport is not None
        while not self.transport.is_closing() and self.transport.get_write_buffer_size() < 1 << 20:
            self.send(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))

    def resume_writing(self) -> None:
        self.pump()


class HugeHeader(_Base):
    """A 200 whose one header line is 1 MiB long (more than any HTTP parser takes: aiohttp
    stops at 8 KiB, hyper at about 400 KiB)."""

    def respond(self) -> None:
        self.send(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 1_048_576 + b"\r\nContent-Length: 0\r\n\r\n"
        )


class Redirect(_Base):
    """``302 Found`` to ``location`` (another server that counts whether it is followed)."""

    location = ""

    def respond(self) -> None:
        assert self.transport is not None
        self.send(
            f"HTTP/1.1 302 Found\r\nLocation: {self.location}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        self.transport.close()


class Garbage(_Base):
    """Answers bytes that are not HTTP, then closes."""

    def respond(self) -> None:
        assert self.transport is not None
        self.send(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
        self.transport.close()


class NotTLS(_Base):
    """A plain-text server on an https URL: answers the ClientHello with an HTTP 400."""

    def data_received(self, data: bytes) -> None:
        if not self.responded:
            self.responded = True
            assert self.transport is not None
            self.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()


class Ok(_Base):
    """A well-behaved 200 (the redirect's target: it must never be reached)."""

    def respond(self) -> None:
        self.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


@dataclass
class Servers:
    """The running misbehaving servers: a URL and a tally per kind."""

    urls: dict[str, str] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    ca: trustme.CA = field(default_factory=trustme.CA)

    def open_connections(self) -> int:
        return sum(t.open for t in self.tallies.values())


@contextlib.asynccontextmanager
async def misbehaving() -> AsyncIterator[Servers]:
    """Every kind of misbehaving server on 127.0.0.1; ``urls`` also names ``refused`` (a port
    nothing listens on) and ``dns`` (a ``.invalid`` name, RFC 6761: it never resolves)."""
    loop = asyncio.get_running_loop()
    servers = Servers()
    running: list[asyncio.Server] = []

    async def serve(
        name: str, make: Callable[[Tally], asyncio.Protocol], scheme: str = "http", **kw: object
    ) -> None:
        tally = servers.tallies[name] = Tally()
        server = await loop.create_server(lambda: make(tally), "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
        running.append(server)
        port = server.sockets[0].getsockname()[1]
        servers.urls[name] = f"{scheme}://127.0.0.1:{port}/hook"

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    servers.ca.issue_cert("127.0.0.1").configure_cert(tls)  # a CA hookd does not trust
    await serve("target", Ok)
    Redirect.location = servers.urls["target"].replace("/hook", "/stolen")
    for name, kind in [
        ("reset", Reset),
        ("close", Close),
        ("hang", Hang),
        ("stalled_body", StalledBody),
        ("huge_body", HugeBody),
        ("redirect", Redirect),
        ("invalid_http", Garbage),
        ("huge_header", HugeHeader),
    ]:
        await serve(name, kind)
    await serve("tls_untrusted", Ok, "https", ssl=tls)
    await serve("tls_not_tls", NotTLS, "https")
    servers.urls["refused"] = f"http://127.0.0.1:{free_port()}/hook"
    servers.urls["dns"] = "http://hookd-fault.invalid/hook"
    try:
        yield servers
    finally:
        for server in running:
            server.close()
        for server in running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=2)
