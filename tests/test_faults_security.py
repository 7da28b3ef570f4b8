"""Security faults: token checks that take the same time whatever the guess, SSRF through
redirects, DNS rebinding and odd spellings of private addresses, and the systemd sandbox.

Tenant isolation is proved route by route in tests/test_tenants.py
(``test_every_route_is_confined_or_refused_for_a_tenant_token``). The timing side of the token
check, measured, is ``python -m bench.tokentiming``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hookd.api import access
from hookd.delivery.client import GuardedResolver, PrivateAddressRefused, forbidden
from tests.support import (
    Daemon,
    Receiver,
    bearer,
    config,
    endpoint,
    receiver,
    running_daemon,
)

ROOT = Path(__file__).resolve().parent.parent
ADMINS = [
    "admin-token-aaaaaaaaaaaaaaaaaaaa",
    "admin-token-bbbbbbbbbbbbbbbbbbbb",
    "admin-token-3333333333",
]
INGESTS = ["ingest-token-cccccccccccccccccc", "ingest-token-dddddddddddddddddd"]
ONCE = "  once: {delays: []}\n"


# --------------------------------------------------------------------------- tokens


@pytest.fixture
async def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    """A daemon with three admin and two ingest tokens."""
    extra = (
        f"auth: {{admin_tokens: [{', '.join(ADMINS)}], ingest_tokens: [{', '.join(INGESTS)}]}}\n"
    )
    async with running_daemon(tmp_path, config(extra=extra)) as d:
        yield d


@pytest.mark.parametrize(
    ("token", "role_status"),
    [
        ("x", 401),  # one character
        ("admin-token-aaaaaaaaaaaaaaaaaaaX", 401),  # all but the last character of a token
        ("Xdmin-token-aaaaaaaaaaaaaaaaaaaa", 401),  # all but the first
        ("admin-token-aaaaaaaaaaaaaaaaaaaa-and-more", 401),  # a token and more
        ("admin-token-aaaaaaaaaaaaaaaaaaa", 401),  # a token but one
        (ADMINS[0], 200),
        (ADMINS[2], 200),
        (INGESTS[1], 403),
    ],
    ids=["short", "last-wrong", "first-wrong", "longer", "shorter", "admin-1", "admin-3", "ingest"],
)
async def test_every_configured_token_is_compared_whatever_the_guess(
    guarded: Daemon, monkeypatch: pytest.MonkeyPatch, token: str, role_status: int
) -> None:
    """By construction: each static-token check runs hmac.compare_digest against every admin
    token, then (unless an admin token matched) every ingest token, never stopping at a match
    or a mismatch, so how long it takes cannot tell how much of a guess was right."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", counting)
    status, _ = await guarded.request("GET", "/v1/status", headers=bearer(token))
    assert status == role_status
    expected = [t.encode() for t in ADMINS]
    if token not in ADMINS:
        expected += [t.encode() for t in INGESTS]
    assert compared == expected


# --------------------------------------------------------------------------- SSRF


class Counting(asyncio.Protocol):
    """Counts connections and answers any request 200 (must never be reached)."""

    hits = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Counting.hits += 1
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.close()


@contextlib.asynccontextmanager
async def loopback_listeners() -> AsyncIterator[int]:
    """One port listening on both 127.0.0.1 and ::1 (when this host has IPv6)."""
    loop = asyncio.get_running_loop()
    v4 = await loop.create_server(Counting, "127.0.0.1", 0)
    port = v4.sockets[0].getsockname()[1]
    servers = [v4]
    with contextlib.suppress(OSError):
        servers.append(await loop.create_server(Counting, "::1", port))
    Counting.hits = 0
    try:
        yield port
    finally:
        for server in servers:
            server.close()


# Every way of writing "this machine" (or another private address) in a URL that we know of.
ODD_SPELLINGS = [
    "http://127.0.0.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://127.1:{port}/",
    "http://127.0.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://017700000001:{port}/",
    "http://127.000.000.001:{port}/",
    "http://%31%32%37.0.0.1:{port}/",
    "http://127\u30020\u30020\u30021:{port}/",  # ideographic full stops
    "http://\uff11\uff12\uff17.0.0.1:{port}/",  # full-width digits
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://localhost:{port}/",
    "http://LOCALHOST.:{port}/",
    "http://[::1]:{port}/",
    "http://[0:0:0:0:0:0:0:1]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[::]:{port}/",
    "http://[64:ff9b::127.0.0.1]:{port}/",
    "http://[2002:7f00:1::1]:{port}/",
    "http://[fe80::1%25lo]:{port}/",
    "http://user:pw@127.0.0.1:{port}/",
    "http://example.com@127.0.0.1:{port}/",
    "http://127.0.0.1:{port}#@example.com/",
]


REFUSED_OR_UNRESOLVED = (
    r"^(refused: |network: Cannot connect to host \S+ ssl:default "
    r"\[(Name or service not known|No address associated with hostname)\]$)"
)


@pytest.mark.parametrize("url", ODD_SPELLINGS)
async def test_no_spelling_of_a_private_address_is_ever_connected_to(
    tmp_path: Path, url: str
) -> None:
    """With allow_private_networks false each spelling is refused, at creation (400 on the url)
    or as one failed attempt saying ``refused:`` (or, for a name no resolver knows, that it does
    not resolve); nothing ever connects to the listener."""
    async with loopback_listeners() as port:
        target = url.format(port=port)
        async with running_daemon(tmp_path, config(policies=ONCE, private=False)) as d:
            status, answer = await d.request(
                "POST", "/v1/endpoints", json={"id": "odd", "url": target, "policy": "once"}
            )
            if status == 201:
                ids = await d.send("probe")
                [row] = await d.settled(ids["odd"])
                [attempt] = await d.attempts(ids["odd"])
                assert row.status == "failed"
                assert re.match(REFUSED_OR_UNRESOLVED, attempt.error or ""), attempt.error
            else:
                assert status == 400, answer
                assert answer["error"]["field"] == "url", answer
        assert Counting.hits == 0


@pytest.mark.parametrize(
    ("address", "label"),
    [("fec0::1", "site-local"), ("fec0:1:2:3::4", "site-local"), ("::ffff:0:7f00:1", "reserved")],
)
def test_deprecated_and_odd_ipv6_ranges_are_refused(address: str, label: str) -> None:
    """fec0::/10 (site-local, deprecated but still routed inside some networks) is private."""
    reason = forbidden(address)
    assert reason is not None
    assert f"is a {label} address" in reason


class Scripted:
    """An inner resolver whose answers are scripted (the attacker's DNS server)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[dict[str, Any]]:
        return [
            {"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
            for a in self.answers.pop(0)
        ]

    async def close(self) -> None:
        pass


async def test_the_guard_judges_every_resolution_not_the_first() -> None:
    """DNS rebinding: a name that first resolves to a public address and then to 127.0.0.1 is
    refused the second time; a mixed answer keeps only its public addresses."""
    resolver = GuardedResolver()
    resolver._inner = Scripted(  # type: ignore[assignment]
        [["93.184.216.34"], ["127.0.0.1"], ["10.0.0.1", "93.184.216.34", "::1"]]
    )
    assert [r["host"] for r in await resolver.resolve("rebind.example")] == ["93.184.216.34"]
    with pytest.raises(PrivateAddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await resolver.resolve("rebind.example")
    assert [r["host"] for r in await resolver.resolve("rebind.example")] == ["93.184.216.34"]


async def test_a_name_rebound_to_loopback_is_refused_at_connect_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sink: Receiver
) -> None:
    """The endpoint is accepted (nothing is resolved when it is created); when the delivery
    resolves the name to 127.0.0.1, the attempt is refused and the receiver sees nothing."""
    real = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kw: Any) -> Any:
        if str(host).startswith("rebind."):
            return real("127.0.0.1", *args, **kw)
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    port = sink.base.rsplit(":", 1)[1]
    url = f"http://rebind.invalid:{port}/hook"
    async with running_daemon(tmp_path, config(policies=ONCE, private=False)) as d:
        await d.create_endpoint(id="rebind", url=url, policy="once")
        ids = await d.send("probe")
        [row] = await d.settled(ids["rebind"])
    assert row.status == "failed"
    assert row.last_error == (
        "refused: rebind.invalid: 127.0.0.1 is a loopback address "
        "(delivery.allow_private_networks is false)"
    )
    assert sink.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_never_followed(tmp_path: Path, status: int) -> None:
    """A 3xx pointing anywhere is the attempt's answer (retried as a non-2xx); the place it
    points to never hears from hookd."""
    async with receiver() as target:

        def redirect(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": target.url_for("/stolen")})

        async with receiver(decide=lambda hit, n: redirect) as first:
            policy = "  twice: {delays: [100ms], jitter: none}\n"
            text = config(endpoint("r", first.url, policy="twice"), policies=policy)
            async with running_daemon(tmp_path, text) as d:
                ids = await d.send("probe")
                [row] = await d.settled(ids["r"])
                tries = await d.attempts(ids["r"])
    assert (row.status, [a.status_code for a in tries]) == ("failed", [status, status])
    assert {a.error for a in tries} == {f"HTTP {status}"}
    assert target.requests == []


# --------------------------------------------------------------------------- systemd


def test_the_systemd_unit_keeps_its_exposure_score() -> None:
    """``systemd-analyze security`` rates systemd/hookd.service 1.4 ("OK") or better."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here")
    done = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(ROOT / "systemd/hookd.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for hookd\.service: ([0-9.]+)", done.stdout)
    assert found is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert float(found.group(1)) <= 1.4
