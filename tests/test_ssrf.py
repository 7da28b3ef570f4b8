"""The SSRF guard: with allow_private_networks false, private destinations are refused before any
connection is made, as one non-retryable failed attempt with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookd.delivery.client import forbidden
from tests.support import config, endpoint, receiver, running_daemon

EAGER = "  eager: {delays: [100ms, 100ms], jitter: none}\n"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]:{port}/hook", "::1 is a loopback address"),
        ("http://localhost:{port}/hook", "localhost: "),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "loopback address"),
        ("http://10.255.255.1/hook", "10.255.255.1 is a private address"),
        ("http://169.254.255.254/hook", "169.254.255.254 is a link-local address"),
        ("http://127.1:{port}/hook", "invalid URL"),
    ],
    ids=[
        "ipv4-loopback",
        "ipv6-loopback",
        "localhost",
        "v4-mapped",
        "10/8",
        "link-local",
        "short-ipv4",
    ],
)
async def test_private_destinations_fail_once_and_send_nothing(
    tmp_path: Path, url: str, reason: str
) -> None:
    """A private destination: one attempt, 'refused: ...', delivery failed, receiver untouched."""
    async with receiver() as rec:
        port = rec.base.rsplit(":", 1)[1]
        target = url.replace("{port}", port)
        endpoints = endpoint("guarded", target, policy="eager")
        text = config(endpoints, policies=EAGER, private=False)
        async with running_daemon(tmp_path, text) as d:
            ids = await d.send("x")
            [row] = await d.settled(ids["guarded"])
            tries = await d.attempts(ids["guarded"])
    assert (row.status, row.attempt_count, row.next_attempt_at) == ("failed", 1, None)
    [attempt] = tries
    assert attempt.status_code is None
    error = attempt.error or ""
    assert error.startswith("refused: "), error
    assert reason in error
    if "invalid URL" not in reason:
        assert "allow_private_networks" in error
    assert row.last_error == error
    assert rec.requests == []


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
    ],
)
def test_forbidden_names_the_kind_of_address(address: str, label: str) -> None:
    reason = forbidden(address)
    assert reason is not None
    assert f"is a {label} address" in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden(address) is None
