"""The HTTP POST of an attempt through pyreqwest: Rust's reqwest and hyper, off the GIL.

aiohttp's client costs the event loop 0.1-0.3 ms of CPU per request (building the request,
the connector, the parser, the timers), about half of all that a delivery costs hookd. With
reqwest the loop only hands over the body and headers and awaits the answer; the HTTP work runs
on reqwest's own threads, outside the GIL. :func:`hookd.delivery.client.post` sends through
here every request it can (no proxy, no per-endpoint TLS settings: those go through aiohttp,
which has the endpoint's ``ssl.SSLContext``), with the same guarantees:

- **SSRF on the address connected to.** With ``allow_private_networks: false`` the name is
  resolved here (the same guarded resolver aiohttp's path uses: every forbidden address
  dropped, none left means refused), and the request goes through a client *pinned* to an
  allowed address (reqwest's ``resolve``), so reqwest connects to that address and no other.
  Pinned clients are kept per (host, port, address) for ``DNS_TTL_S`` (aiohttp's
  ``ttl_dns_cache``), each with its own pool of kept-alive connections.
- **No redirects** (``follow_redirects(False)``), **no pool limit** (the dispatcher bounds
  attempts), **the response read capped** at ``max_response_body`` (read in pieces, never
  more), and **the whole attempt bounded** by reqwest's own per-request timeout, from connect
  to the end of the body read, which drops the request, connection and all, and raises a
  ``TimeoutError`` (the caller bounds a name lookup before it, and gives reqwest what is
  left). No ``asyncio.timeout`` on top: it cost the event loop ~6 µs an attempt for a bound
  reqwest already keeps.
- https verifies the receiver against the platform's certificate store
  (``rustls-platform-verifier``), as Python's default context does.

On the wire, header names go out in lower case (``content-type``, ``webhook-signature``, as
HTTP/2 always sends them; HTTP/1.1 names are case-insensitive), with ``accept: */*``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from datetime import timedelta

from pyreqwest.client import Client, ClientBuilder

from hookd.delivery.policy import parse_retry_after

DNS_TTL_S = 60.0
# A kept-alive connection idle this long is closed: aiohttp's default keepalive_timeout, which
# the other path keeps (reqwest's own default, 90 s, kept what a burst opened three times as
# long as the steady load needed any of it: the soak's connections went 14-18 -> 22-28).
IDLE_S = 15.0
MAX_PINNED = 1024  # pinned clients kept at most (one per destination address)


@functools.lru_cache(maxsize=256)
def _bound(timeout: float) -> timedelta:
    """reqwest's bound for an attempt of ``timeout`` seconds (one per policy: remembered)."""
    return timedelta(seconds=timeout)


def _text(headers: Mapping[str, str], name: str) -> str | None:
    """A header of the answer as text, None when absent or not text: hyper passes such a value
    on (it does not even check Content-Length on a 204 or 304), and pyreqwest raises
    ValueError when asked for it; the attempt goes on as if it were absent."""
    try:
        return headers.get(name)
    except ValueError:
        return None


def _length(headers: Mapping[str, str]) -> int | None:
    """The answer's Content-Length, when it is one plain number."""
    length = _text(headers, "content-length")
    return int(length) if length is not None and length.isascii() and length.isdigit() else None


class Answer:
    """What came back: status, the capped body, and Retry-After as a delay."""

    __slots__ = ("body", "retry_after", "status")

    def __init__(self, status: int, body: bytes, retry_after: float | None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after


def _build(pin: tuple[str, str, int] | None = None, *, idle_s: float = IDLE_S) -> Client:
    builder = ClientBuilder().follow_redirects(False).max_connections(None)
    builder = builder.pool_idle_timeout(timedelta(seconds=idle_s))
    builder = builder.error_for_status(False).gzip(False).brotli(False).deflate(False)
    builder = builder.zstd(False).http1_lower_case_headers()
    if pin is not None:
        builder = builder.resolve(*pin)
    return builder.build()


class Transport:
    """reqwest clients: one for any address (``allow_private_networks: true``), else one
    pinned client per judged destination address."""

    def __init__(self, *, idle_s: float = IDLE_S) -> None:
        # Built now, which starts reqwest's runtime (its threads and 3 descriptors): a daemon
        # holds everything it keeps open once it is ready, not from its first delivery on.
        self.idle_s = idle_s
        self._open: Client | None = _build(idle_s=idle_s)
        self._pinned: dict[tuple[str, int, str], tuple[float, Client]] = {}

    def client(self, pin: tuple[str, str, int] | None) -> Client:
        """The client for a request: any address (``pin`` None), or ``(host, address, port)``."""
        if pin is None:
            if self._open is None:
                self._open = _build(idle_s=self.idle_s)
            return self._open
        key = (pin[0], pin[2], pin[1])
        now = time.monotonic()
        found = self._pinned.get(key)
        if found is not None and found[0] > now:
            return found[1]
        if len(self._pinned) >= MAX_PINNED:
            self._pinned = {k: v for k, v in self._pinned.items() if v[0] > now}
            if len(self._pinned) >= MAX_PINNED:
                self._pinned.clear()
        client = _build(pin, idle_s=self.idle_s)
        self._pinned[key] = (now + DNS_TTL_S, client)
        return client

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        pin: tuple[str, str, int] | None,
        max_response_body: int,
        now: float,
        timeout: float,  # noqa: ASYNC109 -- reqwest's own bound, see below
    ) -> Answer:
        """One POST within ``timeout`` seconds, from connect to the end of the capped body
        read: reqwest's own bound, which raises a ``TimeoutError`` and closes the connection
        (cancelling only the Python side would leave a hung request's connection open on
        reqwest's threads: the fault matrix counted one per attempt)."""
        sent = headers if type(headers) is dict else dict(headers)
        request = self.client(pin).post(url).body_bytes(body).headers(sent)
        request = request.timeout(_bound(timeout))
        stream = request.build_streamed()
        resp = await stream.__aenter__()
        whole = False
        try:
            reader = resp.body_reader
            expected = _length(resp.headers)
            chunks: list[bytes] = []
            size = 0
            while size < max_response_body:
                chunk = await reader.read(max_response_body - size)
                if not chunk:
                    break
                piece = bytes(chunk)
                chunks.append(piece)
                size += len(piece)
                if size == expected:
                    whole = True  # no last read to hear "no more" (each read drops the GIL)
                    break
            retry_after = parse_retry_after(_text(resp.headers, "Retry-After"), now)
            return Answer(resp.status, b"".join(chunks), retry_after)
        finally:
            if not whole:  # a body left unread: stop reqwest's reader of it now
                await stream.__aexit__(None, None, None)

    def close(self) -> None:
        self._open = None
        self._pinned.clear()
