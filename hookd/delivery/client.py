"""The HTTP side of an attempt: one shared ClientSession, the SSRF guard, one POST.

The guard sits in the resolver, so it judges the address actually connected to (a hostname that
re-resolves to 127.0.0.1 cannot slip past); IP literals, which aiohttp does not resolve, are
judged before connecting.

With ``delivery.proxy`` every request goes through that HTTP proxy (CONNECT for https), and the
connection hookd makes is to the proxy, whose own address is the operator's choice and often
private. So the guard moves: IP literals are judged as before, and a hostname is resolved by
hookd and judged before the request is handed to the proxy. The proxy resolves it again and
hookd cannot see the address it connects to: the proxy's own allow/deny list is the last word
(docs/egress.md).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import re
import socket
import ssl
import time
from base64 import b64encode
from collections import deque
from typing import Any

import aiohttp
import msgspec
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from pyreqwest.exceptions import PyreqwestError

from hookd import __version__
from hookd.delivery.policy import Outcome, parse_retry_after
from hookd.delivery.reqwest import DNS_TTL_S, Transport
from hookd.errors import HookdError
from hookd.redact import MASK, url_password

USER_AGENT = f"hookd/{__version__}"


class PrivateAddressRefused(OSError, HookdError):
    """The destination resolves to an address the SSRF guard forbids.

    An OSError, as the resolver must raise for aiohttp to report a failed connection.
    """


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*", re.IGNORECASE)


def forbidden(address: str) -> str | None:
    """Why an address may not be a webhook destination, or None when it may.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that
    address; anything not globally routable (CGNAT, benchmarking, documentation) is refused too,
    and so is fec0::/10 (site-local: deprecated, yet routed inside some networks, and
    "global" to Python's ipaddress).
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    for test, label in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "non-public"),
    ):
        if test:
            return f"{address} is a {label} address (delivery.allow_private_networks is false)"
    return None


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then drops every forbidden address; none left → refused."""

    def __init__(self) -> None:
        self._inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if forbidden(r["host"]) is None]
        if not allowed:
            reason = forbidden(results[0]["host"]) if results else "no address"
            raise PrivateAddressRefused(f"{host}: {reason}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class DeliveryConnector(aiohttp.TCPConnector):
    """The delivery session's connector, which also knows the way out: directly, or through
    ``proxy`` with ``target_guard`` judging each destination first. Without a proxy, requests
    that need no TLS settings of their own go through ``fast`` (reqwest, :mod:`.reqwest`),
    pinned by ``guard`` to an address it allows (None: any address)."""

    def __init__(
        self,
        *,
        proxy: str | None,
        target_guard: GuardedResolver | None,
        guard: GuardedResolver | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fast = Transport() if proxy is None else None
        self.guard = guard
        self._pins: dict[tuple[str, int], tuple[float, str]] = {}
        url = yarl.URL(proxy) if proxy else None
        self.proxy = url.with_user(None) if url is not None else None
        self.proxy_headers: dict[str, str] | None = None
        if url is not None and url.user is not None:  # the proxy's own credentials
            pair = f"{url.user}:{url.password or ''}".encode()
            self.proxy_headers = {"Proxy-Authorization": "Basic " + b64encode(pair).decode()}
        self.target_guard = target_guard

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        """Pool a connection so that the one released last is reused first.

        aiohttp reuses the oldest idle connection first: under any steady load every pooled
        connection is used again within keepalive_timeout, so the pool keeps whatever a burst
        (a slow receiver, a backlog) opened, for ever. Reusing the newest keeps the few that
        the steady load needs warm and lets the rest idle out. (aiohttp's ``_conns`` holds a
        deque of (protocol, released at) per key; if that ever changes, this does nothing.)
        """
        super()._release(key, protocol, should_close=should_close)
        conns = getattr(self, "_conns", {}).get(key)
        if isinstance(conns, deque) and len(conns) > 1 and conns[-1][0] is protocol:
            conns.appendleft(conns.pop())

    def route(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        """How a POST to ``url`` goes: directly, or through the proxy with its credentials on
        the CONNECT (https) or on the request itself (http, where the proxy takes them off)."""
        if self.proxy is None:
            return {"headers": headers}
        if url.startswith("https://") or self.proxy_headers is None:
            return {"headers": headers, "proxy": self.proxy, "proxy_headers": self.proxy_headers}
        return {"headers": {**headers, **self.proxy_headers}, "proxy": self.proxy}

    def pin_now(self, url: str) -> tuple[bool, tuple[str, str, int] | None]:
        """:meth:`pin` when it needs no name lookup: ``(True, pin)``; ``(False, None)`` when
        the name must be resolved (first seen, or kept longer than DNS_TTL_S)."""
        if self.guard is None:
            return True, None
        host, port = _destination(url)  # as the client will read it (full-width digits...)
        if _is_literal(host):
            return True, None
        if _NUMERIC_HOST.fullmatch(host):  # 127.1, 0x7f.1: not a canonical address
            raise aiohttp.InvalidURL(url)
        found = self._pins.get((host, port))
        if found is None or found[0] <= time.monotonic():
            return False, None
        return True, (host, found[1], port)

    async def pin(self, url: str) -> tuple[str, str, int] | None:
        """``(host, address, port)``: the allowed address a request to ``url`` must connect to
        (resolved by the guard, kept DNS_TTL_S); None when any address may be used (no guard,
        or an IP literal, judged before). Raises PrivateAddressRefused."""
        ready, pinned = self.pin_now(url)
        if ready:
            return pinned
        assert self.guard is not None  # pin_now needs a lookup only with a guard
        host, port = _destination(url)  # not known, or kept too long: resolve it
        now = time.monotonic()
        try:
            results = await self.guard.resolve(host, port, socket.AF_UNSPEC)
        except PrivateAddressRefused:
            raise
        except OSError as exc:  # worded as aiohttp's path words it
            why = exc.strerror or str(exc)
            raise OSError(f"Cannot connect to host {host}:{port} ssl:default [{why}]") from None
        if len(self._pins) > 4096:
            self._pins.clear()
        address = results[0]["host"]
        self._pins[(host, port)] = (now + DNS_TTL_S, address)
        return host, address, port


def make_session(
    *, concurrency: int, allow_private_networks: bool, proxy: str | None = None
) -> aiohttp.ClientSession:
    # ``concurrency`` is not a pool limit: the dispatcher bounds attempts itself (and a reload
    # may raise it), and waiting here for a pool slot would count against an attempt's timeout.
    guard = None if allow_private_networks else GuardedResolver()
    connector = DeliveryConnector(
        proxy=proxy,
        target_guard=guard if proxy else None,
        guard=guard,
        limit=0,
        limit_per_host=0,
        ttl_dns_cache=60,
        resolver=None if proxy else guard,  # through a proxy, only the proxy's name is resolved
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class Response(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    latency_ms: float
    body: str | None
    detail: str | None  # the error text recorded on the attempt


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 -- the policy's per-attempt bound, applied with asyncio.timeout
    max_response_body: int,
    allow_private_networks: bool,
    now: float,
    ssl: ssl.SSLContext | None = None,
    client_cert: bool = False,
) -> Response:
    """One POST, bounded by ``timeout`` from connect to the end of the capped body read; over
    the endpoint's own TLS context when it has one."""
    started = time.perf_counter()
    password = url_password(url)

    def done(outcome: Outcome, detail: str | None, text: str | None = None) -> Response:
        latency = (time.perf_counter() - started) * 1000
        if detail is not None and password:  # an error quoting the URL shows it masked
            detail = detail.replace(password, MASK)
        return Response(outcome=outcome, latency_ms=latency, body=text, detail=detail)

    if not allow_private_networks:
        host, _ = _destination(url)
        reason = _literal_refusal(host)
        if reason is not None:
            return done(Outcome(error="refused"), f"refused: {reason}")
    connector = session.connector
    way = connector if isinstance(connector, DeliveryConnector) else None
    fast = way.fast if way is not None and ssl is None else None
    try:
        if fast is not None and way is not None:
            raw, retry_after, status = await _post_reqwest(
                way, fast, url, body, headers, max_response_body, now, timeout, started
            )
        else:
            async with asyncio.timeout(timeout):
                raw, retry_after, status = await _post_aiohttp(
                    session, way, url, body, headers, max_response_body, now, ssl
                )
    except TimeoutError:  # asyncio's, or reqwest's (its timeout errors are TimeoutErrors)
        return done(Outcome(error="timeout"), f"timeout: no complete response within {timeout}s")
    except aiohttp.InvalidURL as exc:  # also non-canonical IPv4 like 127.1: never gets better
        return done(Outcome(error="refused"), f"refused: invalid URL: {_describe(exc)}")
    except (aiohttp.ClientError, OSError, PyreqwestError) as exc:
        refused = _find_refusal(exc)
        if refused is not None:
            return done(Outcome(error="refused"), f"refused: {refused}")
        hint = url.startswith("https://") and not client_cert
        return done(Outcome(error="network"), _network_detail(exc, client_cert_hint=hint))
    except Exception as exc:  # e.g. a header value aiohttp will not send: fail this attempt only
        return done(Outcome(error="network"), f"network: {type(exc).__name__}: {_describe(exc)}")
    text = raw.decode("utf-8", errors="replace")
    return done(Outcome(status_code=status, retry_after=retry_after), None, text)


async def _post_reqwest(
    way: DeliveryConnector,
    fast: Transport,
    url: str,
    body: bytes,
    headers: dict[str, str],
    max_response_body: int,
    now: float,
    timeout: float,  # noqa: ASYNC109 -- the attempt's bound, kept by reqwest
    started: float,
) -> tuple[bytes, float | None, int]:
    """The POST through reqwest, within ``timeout`` of ``started`` (a perf_counter time)."""
    ready, pin = way.pin_now(url)
    left = timeout
    if not ready:  # a name to look up first, within the attempt's time
        async with asyncio.timeout(timeout):
            pin = await way.pin(url)
        left = timeout - (time.perf_counter() - started)
        if left <= 0:
            raise TimeoutError
    # reqwest bounds the rest itself (a TimeoutError), from connect to the body's end
    answer = await fast.post(
        url, body, headers, pin=pin, max_response_body=max_response_body, now=now, timeout=left
    )
    return answer.body, answer.retry_after, answer.status


async def _post_aiohttp(
    session: aiohttp.ClientSession,
    way: DeliveryConnector | None,
    url: str,
    body: bytes,
    headers: dict[str, str],
    max_response_body: int,
    now: float,
    ssl: ssl.SSLContext | None,
) -> tuple[bytes, float | None, int]:
    """The POST through aiohttp: via the proxy, or with the endpoint's own TLS context."""
    if way is not None and way.target_guard is not None:  # what the proxy cannot say
        await _judge_target(way.target_guard, url)
    route = way.route(url, headers) if way is not None else {"headers": headers}
    async with session.post(
        url, data=body, allow_redirects=False, ssl=ssl or True, **route
    ) as resp:
        raw = await _read_capped(resp, max_response_body)
        return raw, parse_retry_after(resp.headers.get("Retry-After"), now), resp.status


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _judge_target(guard: GuardedResolver, url: str) -> None:
    """Before a request goes to the proxy: the destination's name, resolved by hookd, must have
    an allowed address (raises PrivateAddressRefused). IP literals were judged already."""
    host, port = _destination(url)
    if _is_literal(host):
        return
    await guard.resolve(host, port)


def _destination(url: str) -> tuple[str, int]:
    """The host and port the request goes to, as aiohttp will read them: yarl folds full-width
    digits and ideographic full stops (U+FF11 U+FF12 U+FF17 U+3002 0 U+3002 0 U+3002 1 is
    127.0.0.1), so the guard must judge its reading, not the text. A URL yarl cannot read
    fails later as an invalid URL."""
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return "", 0
    return parsed.raw_host or "", parsed.port or 0


_CLIENT_CERT_HINT = (
    "set the endpoint's tls.client_cert_file and tls.client_key_file "
    "(API: client_cert_pem, client_key_pem)"
)


def _network_detail(exc: BaseException, *, client_cert_hint: bool) -> str:
    """``network: …`` for a failed connection, saying what to fix when it is TLS or the proxy.

    A receiver that requires a client certificate (TLS 1.3) rejects it after the handshake,
    often by resetting the connection before its alert is read: an https connection reset
    without a client certificate says that it may be the cause.
    """
    text = _describe(exc)
    if isinstance(exc, PyreqwestError):
        text = _reqwest_text(exc)
        if "certificate" in text.lower() or "UnknownIssuer" in text:
            return (
                f"tls: the receiver's certificate did not verify ({text}); "
                "for a private CA set the endpoint's tls.ca_file (API: tls.ca_pem)"
            )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"tls: the receiver's certificate did not verify ({exc.certificate_error}); "
            "for a private CA set the endpoint's tls.ca_file (API: tls.ca_pem)"
        )
    if "CERTIFICATE_REQUIRED" in text.upper():
        return f"tls: the receiver asks for a client certificate ({text}); {_CLIENT_CERT_HINT}"
    reset = isinstance(exc, ConnectionResetError | aiohttp.ServerDisconnectedError) or (
        isinstance(exc, aiohttp.ClientOSError) and exc.errno == errno.ECONNRESET
    )
    if reset and client_cert_hint:
        return (
            f"network: {text}: the receiver closed the TLS connection; if it requires a "
            f"client certificate (mutual TLS), {_CLIENT_CERT_HINT}"
        )
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"network: the proxy answered CONNECT with {exc.status} {exc.message}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"network: cannot reach the proxy: {text}"
    if isinstance(exc, aiohttp.ClientResponseError):  # aiohttp's parser refused the answer
        words = " ".join(str(exc.message).split())  # its "400" is aiohttp's, not the receiver's
        return f"network: the receiver's answer is not HTTP: {words[:500]}"
    return f"network: {text}{_why_not_connected(exc)}"


def _why_not_connected(exc: BaseException) -> str:
    """``: connection refused`` (the errno's words), which aiohttp's text leaves out."""
    cause = getattr(exc, "os_error", None)
    if not isinstance(cause, OSError) or isinstance(cause, ssl.SSLError | socket.gaierror):
        return ""
    if not cause.errno or cause.errno < 0:
        return ""
    reason = os.strerror(cause.errno).lower()
    return "" if reason in str(exc).lower() else f": {reason}"


def _reqwest_text(exc: BaseException) -> str:
    """A reqwest error as one line, worded as aiohttp's were where they say the same thing
    (``Cannot connect to host H:P: connection refused``, ``the receiver's answer is not
    HTTP: ...``), with the innermost cause (the OS error, without its ``(os error N)``)."""
    details = getattr(exc, "details", None)
    causes = details.get("causes") if isinstance(details, dict) else None
    messages = [str(c.get("message", "")) for c in causes or () if isinstance(c, dict)]
    inner = messages[-1] if messages else str(exc).split("\n", 1)[0]
    inner = _OS_ERROR.sub("", inner)
    if inner[:1].isupper() and inner[1:2].islower():  # "Connection refused" as aiohttp said it
        inner = inner[0].lower() + inner[1:]
    if inner.startswith(_NOT_HTTP):
        return f"the receiver's answer is not HTTP: {inner}"[:500]
    if any("Connect" in m for m in messages) or "tcp connect" in inner:
        match = _FOR_URL.search(" ".join(messages))
        where = "the endpoint"
        if match:
            target = yarl.URL(match.group(1))
            where = f"{target.raw_host}:{target.port}"
        return f"Cannot connect to host {where}: {inner}"[:500]
    return inner[:500]


# hyper's words for an answer it could not parse as HTTP/1.1
_NOT_HTTP = ("invalid HTTP", "message head is too large", "invalid URI", "unexpected end of file")
_OS_ERROR = re.compile(r" \(os error \d+\)$")
_FOR_URL = re.compile(r"for url \((\S+)\)")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _literal_refusal(host: str) -> str | None:
    return forbidden(host) if _is_literal(host) else None


def _find_refusal(exc: BaseException) -> PrivateAddressRefused | None:
    """The guard's refusal, however aiohttp wrapped it (``ClientConnectorDNSError`` in 3.10+)."""
    seen: BaseException | None = exc
    for _ in range(8):  # chains are short; never loop on a cycle
        if seen is None or isinstance(seen, PrivateAddressRefused):
            return seen
        inner = getattr(seen, "os_error", None)
        seen = inner if isinstance(inner, BaseException) else (seen.__cause__ or seen.__context__)
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]
