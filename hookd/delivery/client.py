"""The HTTP side of an attempt: one shared ClientSession, the SSRF guard, one POST.

The guard sits in the resolver, so it judges the address actually connected to (a hostname that
re-resolves to 127.0.0.1 cannot slip past); IP literals, which aiohttp does not resolve, are
judged before connecting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from hookd import __version__
from hookd.delivery.policy import Outcome, parse_retry_after
from hookd.errors import HookdError
from hookd.redact import MASK, url_password

USER_AGENT = f"hookd/{__version__}"


class PrivateAddressRefused(OSError, HookdError):
    """The destination resolves to an address the SSRF guard forbids.

    An OSError, as the resolver must raise for aiohttp to report a failed connection.
    """


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def forbidden(address: str) -> str | None:
    """Why an address may not be a webhook destination, or None when it may.

    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that
    address; anything not globally routable (CGNAT, benchmarking, documentation) is refused too.
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


def make_session(*, concurrency: int, allow_private_networks: bool) -> aiohttp.ClientSession:
    # ``concurrency`` is not a pool limit: the dispatcher bounds attempts itself (and a reload
    # may raise it), and waiting here for a pool slot would count against an attempt's timeout.
    connector = aiohttp.TCPConnector(
        limit=0,
        limit_per_host=0,
        ttl_dns_cache=60,
        resolver=None if allow_private_networks else GuardedResolver(),
        enable_cleanup_closed=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
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
) -> Response:
    """One POST, bounded by ``timeout`` from connect to the end of the capped body read."""
    started = time.perf_counter()
    password = url_password(url)

    def done(outcome: Outcome, detail: str | None, text: str | None = None) -> Response:
        latency = (time.perf_counter() - started) * 1000
        if detail is not None and password:  # an error quoting the URL shows it masked
            detail = detail.replace(password, MASK)
        return Response(outcome=outcome, latency_ms=latency, body=text, detail=detail)

    if not allow_private_networks:
        host = urlsplit(url).hostname or ""
        reason = _literal_refusal(host)
        if reason is not None:
            return done(Outcome(error="refused"), f"refused: {reason}")
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                raw = await _read_capped(resp, max_response_body)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"), now)
                status = resp.status
    except TimeoutError:
        return done(Outcome(error="timeout"), f"timeout: no complete response within {timeout}s")
    except aiohttp.InvalidURL as exc:  # also non-canonical IPv4 like 127.1: never gets better
        return done(Outcome(error="refused"), f"refused: invalid URL: {_describe(exc)}")
    except (aiohttp.ClientError, OSError) as exc:
        refused = _find_refusal(exc)
        if refused is not None:
            return done(Outcome(error="refused"), f"refused: {refused}")
        return done(Outcome(error="network"), f"network: {_describe(exc)}")
    except Exception as exc:  # e.g. a header value aiohttp will not send: fail this attempt only
        return done(Outcome(error="network"), f"network: {type(exc).__name__}: {_describe(exc)}")
    text = raw.decode("utf-8", errors="replace")
    return done(Outcome(status_code=status, retry_after=retry_after), None, text)


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


def _literal_refusal(host: str) -> str | None:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return forbidden(host)


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
