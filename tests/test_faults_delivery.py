"""The fault matrix: deliveries to receivers that misbehave in every way a network can.

Each case runs a daemon in this process with one endpoint pointing at one misbehaving server
(tests/support/misbehaving.py, real sockets on 127.0.0.1), sends it TRIALS events and waits for
every delivery to fail. Then: every attempt recorded the right error, the retry policy ran its
course (3 attempts, at least its delay apart), and this process has exactly the descriptors
(``/proc/self/fd``) and asyncio tasks it had before the first attempt: a fault leaks neither.
Every case runs on SQLite and on PostgreSQL; there the connections to the database server are
left out of the count (the pools open them on demand and keep them).

The DNS case uses a ``.invalid`` name (RFC 6761: never resolves). So that no query leaves the
machine, the C resolver is short-circuited for that one TLD the way RFC 6761 §6.4 asks resolvers
to behave (an immediate "does not exist"); every other name resolves as usual.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookd.store import AttemptRow
from tests.support import Daemon, config, endpoint, running_daemon, wait_for
from tests.support.backends import database_connections
from tests.support.misbehaving import Servers, misbehaving
from tests.support.process import start_process, stopped_at_exit, wait_ready

TRIALS = 3  # deliveries per case; each makes 3 attempts
POLICY = (
    "  faults: {timeout: 500ms, delays: [100ms, 100ms], jitter: none,"
    " retry_on: [non-2xx, timeout, network]}\n"
)
GAP = 0.1


@dataclass(frozen=True)
class Fault:
    name: str
    error: str  # a regular expression every attempt's error must match
    status: int | None = None  # the HTTP status recorded, when the receiver sent one


FAULTS = [
    Fault("refused", r"^network: Cannot connect to host 127\.0\.0\.1:\d+\b.*: connection refused$"),
    Fault("reset", r"^network: .*[Cc]onnection reset by peer"),
    Fault("close", r"^network: (Server disconnected|connection closed before message completed)$"),
    Fault("hang", r"^timeout: no complete response within 0\.5s$"),
    Fault("stalled_body", r"^timeout: no complete response within 0\.5s$"),
    Fault("huge_body", r"^HTTP 500$", status=500),
    Fault("redirect", r"^HTTP 302$", status=302),
    Fault(
        "invalid_http",
        r"^network: the receiver's answer is not HTTP: (Bad status line|invalid HTTP)\b[^\n]*$",
    ),
    Fault(
        "huge_header",
        r"^network: the receiver's answer is not HTTP: "
        r"(Got more than \d+ bytes|message head is too large)",
    ),
    Fault(
        "tls_untrusted",
        r"^tls: the receiver's certificate did not verify \(.*(CERTIFICATE_VERI|UnknownIssuer)",
    ),
    Fault("tls_not_tls", r"^network: .*(WRONG_VERSION_NUMBER|corrupt message)"),
    Fault(
        "dns", r"^network: Cannot connect to host hookd-fault\.invalid:80\b.*Name or service not"
    ),
]


@pytest.fixture
def no_invalid_tld(monkeypatch: pytest.MonkeyPatch) -> None:
    """``*.invalid`` does not exist, answered at once (RFC 6761 §6.4); no query leaves."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.rstrip(".").endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    async with misbehaving() as running:
        yield running


def descriptors() -> int:
    """This process's open descriptors, less its connections to PostgreSQL (pooled on demand)."""
    return process_descriptors(os.getpid())


def process_descriptors(pid: int) -> int:
    """The open descriptors of ``pid``, less its connections to PostgreSQL: its pools open
    those on demand and keep them (at most 15; none on SQLite)."""
    return len(os.listdir(f"/proc/{pid}/fd")) - database_connections(pid)


def tasks() -> int:
    return len(asyncio.all_tasks())


async def settle_to(d: Daemon, fds: int, count: int) -> None:
    """Wait until nothing is in flight and descriptors and tasks are back to the baseline."""

    def back() -> bool:
        dispatcher = d.state.dispatcher
        idle = dispatcher is not None and not dispatcher.in_flight
        return idle and descriptors() <= fds and tasks() <= count

    def seen() -> str:
        dispatcher = d.state.dispatcher
        flying = list(dispatcher.in_flight) if dispatcher is not None else []
        names = sorted(t.get_name() for t in asyncio.all_tasks())
        return f"fds {descriptors()} (was {fds}), tasks {tasks()} (was {count}): {names}; {flying}"

    await wait_for(back, timeout=10, describe=seen)


def check_attempts(fault: Fault, tries: list[AttemptRow]) -> None:
    assert [a.n for a in tries] == [1, 2, 3]
    for a in tries:
        assert re.search(fault.error, a.error or ""), a.error
        assert "\n" not in (a.error or "")
        assert a.status_code == fault.status
    for before, after in itertools.pairwise(tries):
        assert after.started_at - before.started_at >= GAP + before.latency_ms / 1000 - 0.01


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
@pytest.mark.usefixtures("no_invalid_tld")
async def test_a_fault_is_recorded_retried_and_leaks_nothing(
    tmp_path: Path, servers: Servers, fault: Fault
) -> None:
    """TRIALS deliveries to the misbehaving server: the right error on each of 3 attempts a
    delay apart, the delivery failed, and descriptors and tasks back where they were."""
    text = config(
        endpoint("faulty", servers.urls[fault.name], policy="faults"),
        policies=POLICY,
    )
    async with running_daemon(tmp_path, text) as d:
        status, _ = await d.request("GET", "/healthz")  # the test's own connection is open
        assert status == 200
        fds, count = descriptors(), tasks()
        sent = [await d.send("fault.case", {"i": i}) for i in range(TRIALS)]
        rows = await d.settled(*[s["faulty"] for s in sent], within=30)
        assert {r.status for r in rows} == {"failed"}
        for row in rows:
            check_attempts(fault, await d.attempts(row.id))
        await settle_to(d, fds, count)
    tally = servers.tallies.get(fault.name)
    if tally is not None:
        assert tally.open == 0  # the server saw every connection closed
    if fault.name == "redirect":
        assert servers.tallies["target"].connections == 0  # never followed
    if fault.name == "huge_body":
        # hookd reads 4 KiB and hangs up: the server could only fill the socket buffers
        assert tally is not None
        assert tally.sent < TRIALS * 3 * 16 * 2**20


async def test_the_huge_body_is_kept_to_max_response_body(tmp_path: Path, servers: Servers) -> None:
    """An endless response body: the attempt keeps exactly ``max_response_body`` of it."""
    text = config(
        endpoint("faulty", servers.urls["huge_body"], policy="once"),
        policies="  once: {timeout: 2s, delays: []}\n",
        delivery=", max_response_body: 1KiB",
    )
    async with running_daemon(tmp_path, text) as d:
        sent = await d.send("fault.case")
        await d.settled(sent["faulty"])
        [attempt] = await d.attempts(sent["faulty"])
    assert attempt.status_code == 500
    assert attempt.response_body is not None
    assert len(attempt.response_body.encode()) == 1024


@pytest.mark.slow
@pytest.mark.usefixtures("backend")
async def test_a_real_process_ends_every_round_of_faults_with_the_descriptors_it_began_with(
    tmp_path: Path, servers: Servers
) -> None:
    """Every fault at once against a real ``hookd run``, three rounds: after each round its
    ``/proc/PID/fd`` count is back to what it was before the first (the DNS case stays in
    process, where no query can leave the machine)."""
    names = [f.name for f in FAULTS if f.name != "dns"]
    endpoints = "".join(endpoint(n, servers.urls[n], policy="faults") for n in names)
    text = config(endpoints, policies=POLICY)
    process = start_process(tmp_path, text)
    with stopped_at_exit(process):
        await wait_ready(process)
        pid = process.proc.pid
        connector = aiohttp.TCPConnector(limit=1)  # one connection to hookd, open throughout
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(process.url + "/healthz") as resp:
                assert resp.status == 200
            baseline = process_descriptors(pid)
            for round_ in range(3):
                async with http.post(
                    process.url + "/v1/events/batch",
                    json=[
                        {"type": "fault.case", "data": {"round": round_, "i": i}}
                        for i in range(TRIALS)
                    ],
                ) as resp:
                    assert resp.status == 202, await resp.text()

                async def finished() -> bool:
                    async with http.get(process.url + "/v1/status") as resp:
                        body = await resp.json()
                    return bool(body["deliveries"]["pending"] == 0 and body["in_flight"] == 0)

                await wait_for(finished, timeout=30, interval=0.1)
                await wait_for(
                    lambda: process_descriptors(pid) <= baseline,
                    timeout=10,
                    describe=lambda: f"{process_descriptors(pid)} descriptors, was {baseline}",
                )
        async with (
            aiohttp.ClientSession() as http,
            http.get(process.url + "/v1/status") as resp,
        ):
            counts = (await resp.json())["deliveries"]
    assert counts == {"pending": 0, "succeeded": 0, "failed": 3 * TRIALS * len(names)}
