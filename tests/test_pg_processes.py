"""Several real ``hookd run`` processes sharing one PostgreSQL outbox (SPEC §12).

Each test starts two daemons on a fresh database and a recording receiver that measures what
the processes do together: at-least-once across a SIGKILL, fifo order while ingest alternates
between processes, ``max_in_flight`` and ``rate_limit`` held across processes, an endpoint
created through one process used by the other within 2 s, duplicate ingests through both
processes making one event. Skipped (with the reason) when no PostgreSQL can be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookd.secretbox import generate_key_text
from tests import pg_server
from tests.support import (
    Answer,
    Process,
    Received,
    Receiver,
    backends,
    start_process,
    wait_for,
    wait_ready,
)
from tests.support import receiver as lab

pytestmark = [pytest.mark.slow]


def hookd_yaml(dsn: str, key: str, endpoints: str, policies: str = "") -> str:
    """A daemon config on the shared database; ``{port}`` is left for start_process."""
    text = (
        "listen: 127.0.0.1:PORT\n"
        f"storage: {{backend: postgres, dsn: '{dsn}', secret_key: '{key}',"
        f" lease_slack: {backends.LEASE_SLACK:g}s}}\n"
        "shutdown_timeout: 2s\n"
        "delivery: {allow_private_networks: true}\n"
        "log: {level: info, format: json}\n"
    )
    if policies:
        text += "policies:\n" + policies
    text += "endpoints:\n" + endpoints
    return text.replace("{", "{{").replace("}", "}}").replace("PORT", "{port}")


@contextlib.asynccontextmanager
async def pair(tmp_path: Path, yaml_text: str) -> AsyncIterator[tuple[Process, Process]]:
    """Two daemons on one database, started together (migrations race on purpose)."""
    procs = [start_process(tmp_path, yaml_text, name=name) for name in ("a", "b")]
    try:
        await asyncio.gather(*(wait_ready(p, timeout=30) for p in procs))
        yield procs[0], procs[1]
    finally:
        for p in procs:
            if p.proc.poll() is None:
                p.signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.to_thread(p.wait, 15)
            except Exception:
                p.proc.kill()
                p.proc.wait(10)


async def send(
    http: aiohttp.ClientSession, proc: Process, body: Any, path: str = "/v1/events"
) -> Any:
    async with http.post(proc.url + path, json=body) as resp:
        assert resp.status in (200, 202), await resp.text()
        return await resp.json()


def endpoint(endpoint_id: str, url: str, extra: str = "") -> str:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return (
        f'  - {{id: {endpoint_id}, url: "{url}", events: ["{endpoint_id}.*"],'
        f' signing: {{secret: "{secret}"}}{extra}}}\n'
    )


def receiving(decide: Callable[[Received, int], Answer] | None = None, delay: float = 0.0) -> Any:
    return lab(decide=decide, delay=delay)


def leases_of(dsn: str, nodes: list[str]) -> int:
    """Live leases that these nodes hold."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM deliveries WHERE locked_by = ANY(%s)"
            " AND locked_until > extract(epoch FROM now())",
            (nodes,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def dsn() -> str:
    return pg_server.fresh_database()


KEY = generate_key_text()


@pytest.mark.timeout(120)
async def test_every_accepted_event_is_delivered_when_one_process_is_killed(
    tmp_path: Path, dsn: str
) -> None:
    """Ingest through both processes, SIGKILL one mid-load while it has attempts in flight: the
    other delivers every event answered 202, those attempts once their leases run out."""
    async with receiving(delay=0.05) as rec, receiving(delay=1.0) as slow:
        policies = (
            "  quick: {timeout: 1s, delays: [100ms, 100ms, 100ms], jitter: none}\n"
            "  patient: {timeout: 3s, delays: [100ms], jitter: none}\n"
        )
        endpoints = endpoint(
            "load",
            rec.url,
            ", policy: quick, max_in_flight: 4",  # slow enough to kill mid-load
        ) + endpoint("slow", slow.url, ", policy: patient")
        text = hookd_yaml(dsn, KEY, endpoints, policies)
        accepted: set[str] = set()
        async with pair(tmp_path, text) as (a, b), aiohttp.ClientSession() as http:
            batch = [{"type": "load.x", "data": {"i": i}} for i in range(100)]
            for proc in (a, b):
                answer = await send(http, proc, batch, "/v1/events/batch")
                accepted.update(item["id"] for item in answer["items"])

            async def one(proc: Process, i: int) -> str | None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(
                        proc.url + "/v1/events", json={"type": "load.x", "data": {"s": i}}
                    ) as resp:
                        return str((await resp.json())["id"]) if resp.status == 202 else None
                return None

            singles = [asyncio.create_task(one(a if i % 2 else b, i)) for i in range(100)]
            async with http.get(a.url + "/v1/status") as resp:
                node_a = [n["id"] for n in (await resp.json())["nodes"]]
            await wait_for(lambda: len(rec.requests) >= 40, timeout=20)
            # a takes slow attempts (1 s each) of its own: it dies with them in flight
            slow_batch = [{"type": "slow.x", "data": {"i": i}} for i in range(4)]
            answer = await send(http, a, slow_batch, "/v1/events/batch")
            accepted.update(item["id"] for item in answer["items"])
            await wait_for(lambda: len(slow.requests) >= 1, timeout=10)
            a.signal(signal.SIGKILL)
            assert await asyncio.to_thread(a.wait, 10) == -signal.SIGKILL
            assert leases_of(dsn, node_a) >= 1  # still held by the dead process
            accepted.update(r for r in await asyncio.gather(*singles) if isinstance(r, str))

            def delivered() -> set[str]:
                return {h.headers["webhook-id"] for h in [*rec.requests, *slow.requests]}

            async def nothing_pending() -> bool:
                async with http.get(b.url + "/v1/status") as resp:
                    return bool((await resp.json())["deliveries"]["pending"] == 0)

            await wait_for(lambda: accepted <= delivered(), timeout=60, interval=0.2)
            # a's leases end after the policy timeout (3 s) + the lease slack: then b makes those
            # attempts again (its record is the one that counts), and nothing stays pending
            await wait_for(nothing_pending, timeout=60, interval=0.2)
            assert leases_of(dsn, node_a) == 0
            assert any(len(slow.of(h.headers["webhook-id"])) >= 2 for h in slow.requests)


@pytest.mark.timeout(90)
async def test_a_fifo_endpoint_receives_in_ingest_order_while_ingest_alternates(
    tmp_path: Path, dsn: str
) -> None:
    """Events posted one after the other, alternately to each process; some first attempts
    fail (and are retried): the receiver still sees them in ingest order, one at a time."""
    async with receiving(lambda hit, n: 500 if n == 1 and len(hit.body) % 5 == 0 else 200) as rec:
        policies = "  quick: {delays: [50ms, 50ms, 50ms, 50ms], jitter: none}\n"
        extra = ", policy: quick, ordering: fifo"
        text = hookd_yaml(dsn, KEY, endpoint("fifo", rec.url, extra), policies)
        async with pair(tmp_path, text) as (a, b), aiohttp.ClientSession() as http:
            ids = []
            for i in range(40):
                answer = await send(http, (a, b)[i % 2], {"type": "fifo.x", "data": {"i": i}})
                ids.append(answer["id"])
            await wait_for(
                lambda: {h.headers["webhook-id"] for h in rec.requests} >= set(ids), timeout=40
            )
    firsts: list[str] = []
    for hit in rec.requests:
        if hit.headers["webhook-id"] not in firsts:
            firsts.append(hit.headers["webhook-id"])
    assert firsts == ids
    assert rec.peak == 1


@pytest.mark.timeout(90)
async def test_max_in_flight_and_rate_limit_hold_across_processes(tmp_path: Path, dsn: str) -> None:
    """``max_in_flight: 1`` and ``rate_limit: 10/s``, both processes with work for each: the
    receiver sees at most one request at a time to the first, and no 1 s window with more than
    11 starts (10/s, one at the window's edge) to the second."""
    async with receiving(delay=0.03) as rec:
        endpoints = endpoint("one", rec.url_for("/one"), ", max_in_flight: 1") + endpoint(
            "paced", rec.url_for("/paced"), ", rate_limit: 10/s"
        )
        text = hookd_yaml(dsn, KEY, endpoints)
        async with pair(tmp_path, text) as (a, b), aiohttp.ClientSession() as http:
            for proc in (a, b):
                batch = [
                    {"type": t, "data": {"i": i}} for i in range(15) for t in ("one.x", "paced.x")
                ]
                await send(http, proc, batch, "/v1/events/batch")
            await wait_for(lambda: len(rec.requests) >= 60, timeout=40, interval=0.1)
    one = [h for h in rec.requests if h.path == "/one"]
    assert len(one) == 30
    spans = sorted((h.at, h.at + 0.03) for h in one)
    assert all(later[0] >= earlier[1] - 0.005 for earlier, later in itertools.pairwise(spans))
    paced = sorted(h.at for h in rec.requests if h.path == "/paced")
    assert len(paced) == 30
    assert all(paced[i + 11] - paced[i] >= 1.0 for i in range(len(paced) - 11))
    assert paced[-1] - paced[0] >= 2.5  # 30 starts at 10/s take about 2.9 s


@pytest.mark.timeout(90)
async def test_an_endpoint_created_through_one_process_is_used_by_the_other_within_2s(
    tmp_path: Path, dsn: str
) -> None:
    """Create through a, then ingest through b: within 2 s b routes to it; disable through b,
    and within 2 s a stops routing to it; likewise enable, patch, rotate-secret, delete."""
    async with receiving() as rec:
        text = hookd_yaml(dsn, KEY, endpoint("base", rec.url_for("/base")))
        async with pair(tmp_path, text) as (a, b), aiohttp.ClientSession() as http:
            body = {"id": "fresh", "url": rec.url_for("/fresh"), "events": ["fresh.*"]}
            async with http.post(a.url + "/v1/endpoints", json=body) as resp:
                assert resp.status == 201, await resp.text()
            created = time.monotonic()

            async def routed(proc: Process) -> bool:
                answer = await send(http, proc, {"type": "fresh.x", "data": {}})
                return any(d["endpoint"] == "fresh" for d in answer["deliveries"])

            await wait_for(lambda: routed(b), timeout=5, interval=0.05)
            assert time.monotonic() - created < 2.0
            await wait_for(lambda: any(h.path == "/fresh" for h in rec.requests), timeout=10)
            async with http.post(b.url + "/v1/endpoints/fresh/disable") as resp:
                assert resp.status == 200
            disabled = time.monotonic()

            async def not_routed() -> bool:
                return not await routed(a)

            await wait_for(not_routed, timeout=5, interval=0.05)
            assert time.monotonic() - disabled < 2.0
            await changed_everywhere(http, a, b, rec)


async def changed_everywhere(
    http: aiohttp.ClientSession, a: Process, b: Process, rec: Receiver
) -> None:
    """Enable, patch, rotate-secret and delete through one process: each is in force in the
    other within 2 s."""
    from standardwebhooks import Webhook

    async def call(proc: Process, method: str, path: str, body: Any = None) -> Any:
        async with http.request(method, proc.url + path, json=body) as resp:
            assert resp.status in (200, 204), await resp.text()
            return await resp.json() if resp.status == 200 else None

    async def lands_on(proc: Process, path: str, secret: str | None = None) -> bool:
        await send(http, proc, {"type": "fresh.x", "data": {}})
        hits = [h for h in rec.requests if h.path == path]
        if not hits or secret is None:
            return bool(hits)
        try:  # signed with the new secret alone (grace 0: the old one stops at once)
            Webhook(secret).verify(hits[-1].body, hits[-1].headers)
        except Exception:
            return False
        return True

    async def within_2s(change: Any, check: Any) -> None:
        await change
        changed = time.monotonic()
        await wait_for(check, timeout=5, interval=0.05)
        assert time.monotonic() - changed < 2.0

    await within_2s(call(a, "POST", "/v1/endpoints/fresh/enable"), lambda: lands_on(b, "/fresh"))
    patched = rec.url_for("/patched")
    await within_2s(
        call(b, "PATCH", "/v1/endpoints/fresh", {"url": patched}), lambda: lands_on(a, "/patched")
    )
    rotated = await call(a, "POST", "/v1/endpoints/fresh/rotate-secret", {})
    secret = rotated["secret"]
    rec.requests.clear()
    changed = time.monotonic()
    await wait_for(lambda: lands_on(b, "/patched", secret), timeout=5, interval=0.05)
    assert time.monotonic() - changed < 2.0

    async def gone() -> bool:
        answer = await send(http, a, {"type": "fresh.x", "data": {}})
        return not answer["deliveries"]

    await within_2s(call(b, "DELETE", "/v1/endpoints/fresh"), gone)


@pytest.mark.timeout(60)
async def test_concurrent_duplicate_ingests_through_two_processes_create_one_event(
    tmp_path: Path, dsn: str
) -> None:
    """The same event id posted to both processes at once, 30 times: one event each, both
    answers name the same deliveries, and each is delivered once."""
    async with receiving() as rec:
        text = hookd_yaml(dsn, KEY, endpoint("dup", rec.url))
        async with pair(tmp_path, text) as (a, b), aiohttp.ClientSession() as http:
            pairs = []
            for i in range(30):
                body = {"type": "dup.x", "id": f"evt-dup-{i}", "data": {"i": i}}
                pairs.append(await asyncio.gather(send(http, a, body), send(http, b, body)))
            for first, second in pairs:
                assert first["id"] == second["id"]
                assert first["deliveries"] == second["deliveries"]
                assert len(first["deliveries"]) == 1
            await wait_for(lambda: len(rec.requests) >= 30, timeout=20)
            await asyncio.sleep(0.5)  # a second delivery of any of them would arrive by now
            async with http.get(a.url + "/v1/status") as resp:
                status = await resp.json()
    assert sorted(h.headers["webhook-id"] for h in rec.requests) == sorted(
        f"evt-dup-{i}" for i in range(30)
    )
    assert status["deliveries"] == {"pending": 0, "succeeded": 30, "failed": 0}
    assert len(status["nodes"]) == 2


@pytest.mark.timeout(60)
async def test_a_process_survives_losing_its_database_connections(tmp_path: Path, dsn: str) -> None:
    """Every connection of the daemon is terminated on the server: it keeps running, says so
    in its log, and goes on accepting and delivering once it has reconnected."""
    import psycopg

    async with receiving() as rec:
        text = hookd_yaml(dsn, KEY, endpoint("ok", rec.url))
        proc = start_process(tmp_path, text, name="alone")
        try:
            await wait_ready(proc, timeout=30)
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid != pg_backend_pid()"
                )
            async with aiohttp.ClientSession() as http:

                async def accepted() -> bool:
                    async with http.post(
                        proc.url + "/v1/events", json={"type": "ok.x", "data": {}}
                    ) as resp:
                        return resp.status == 202

                await wait_for(accepted, timeout=20, interval=0.2)
            await wait_for(lambda: rec.requests, timeout=20)
            await wait_for(lambda: "store.listen_restored" in proc.log(), timeout=20)
            assert proc.proc.poll() is None
            assert "store.listen_lost" in proc.log()
        finally:
            proc.signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 15) == 0
