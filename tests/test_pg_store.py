"""PostgreSQL: what only a shared store does, shown with two or more stores on one database
in one test (each stands for a process): leases that run out, limits across processes,
concurrent migrations, change notices, the LISTEN fallback, nodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import structlog

from hookd.store import Limits, Store
from tests import pg_server
from tests.support import attempt_result as result
from tests.support import new_event


async def opened(dsn: str) -> Store:
    from hookd.store.pg import PostgresStore

    store = PostgresStore(dsn)
    await store.open()
    return store


@pytest.fixture
async def two() -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one fresh database, with endpoints ``a`` and ``b``."""
    dsn = pg_server.fresh_database()
    first = await opened(dsn)
    second = await opened(dsn)
    await first.reconcile_config_endpoints({"a": None, "b": None})
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_ten_processes_starting_at_once_migrate_once() -> None:
    dsn = pg_server.fresh_database()
    stores = await asyncio.gather(*(opened(dsn) for _ in range(10)))
    try:
        assert len(await stores[0].nodes()) == 10
        await stores[3].reconcile_config_endpoints({"a": None})
        assert [e.id for e in await stores[7].endpoints()] == ["a"]
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    again = await opened(dsn)  # an up-to-date schema is left alone
    try:
        assert [n.id for n in await again.nodes()] == [again.node_id]  # the others left
    finally:
        await again.close()


async def test_a_lease_that_runs_out_is_claimed_by_another_process_and_fences_the_first(
    two: tuple[Store, Store],
) -> None:
    first, second = two
    await first.ingest([new_event("e1", "a")])
    [job] = await first.jobs(["dlv_e1_a"])
    [mine] = await first.claim([job], lease_s=0.3)
    assert await second.ready(per_endpoint=10) == []  # leased: due for nobody
    assert await second.claim([job], lease_s=60) == []
    await asyncio.sleep(0.35)
    assert [i for i, _ in await second.ready(per_endpoint=10)] == ["dlv_e1_a"]
    [theirs] = await second.claim([job], lease_s=60)
    [stale] = await first.record([result("dlv_e1_a", "a", "succeeded", lease=mine.lease)])
    assert not stale.applied
    [fresh] = await second.record([result("dlv_e1_a", "a", "succeeded", lease=theirs.lease)])
    assert fresh.applied


async def test_max_in_flight_counts_the_leases_of_every_process(two: tuple[Store, Store]) -> None:
    first, second = two
    await first.ingest([new_event("e1", "a"), new_event("e2", "a")])
    one, two_ = await first.jobs(["dlv_e1_a", "dlv_e2_a"])
    limits = Limits(max_in_flight=1)
    [held] = await first.claim([one], lease_s=60, limits=limits)
    refused = await second.claim([two_], lease_s=60, limits=limits)
    assert list(refused) == []
    assert refused.retry_at is not None
    assert time.time() <= refused.retry_at <= time.time() + 1
    await first.record([result("dlv_e1_a", "a", "succeeded", lease=held.lease)])
    assert len(await second.claim([two_], lease_s=60, limits=limits)) == 1


async def test_the_rate_limit_is_paced_across_processes(two: tuple[Store, Store]) -> None:
    first, second = two
    await first.ingest([new_event(f"e{n}", "a") for n in range(3)])
    jobs = await first.jobs([f"dlv_e{n}_a" for n in range(3)])
    limits = Limits(rate_limit=4.0)  # one start every 250 ms
    assert len(await first.claim(jobs[:1], lease_s=60, limits=limits)) == 1
    refused = await second.claim(jobs[1:2], lease_s=60, limits=limits)
    assert list(refused) == []
    assert refused.retry_at is not None
    assert 0.1 < refused.retry_at - time.time() <= 0.26
    await asyncio.sleep(refused.retry_at - time.time())
    assert len(await second.claim(jobs[1:2], lease_s=60, limits=limits)) == 1
    both = await first.claim(jobs[2:], lease_s=60, limits=limits)
    assert list(both) == []  # the next start is 250 ms after the last one, whoever made it


async def test_only_the_fifo_head_may_be_claimed_and_only_when_no_attempt_runs(
    two: tuple[Store, Store],
) -> None:
    first, second = two
    await first.ingest([new_event("e1", "a"), new_event("e2", "a")])
    head, later = await first.jobs(["dlv_e1_a", "dlv_e2_a"])
    fifo = Limits(fifo=True)
    not_head = await second.claim([later], lease_s=60, limits=fifo)
    assert (list(not_head), not_head.retry_at) == ([], None)  # look at the head instead
    [held] = await first.claim([head], lease_s=60, limits=fifo)
    busy = await second.claim([head], lease_s=60, limits=fifo)
    assert list(busy) == []
    assert busy.retry_at is not None  # when the head's lease would run out
    await first.record([result("dlv_e1_a", "a", "succeeded", lease=held.lease)])
    assert len(await second.claim([later], lease_s=60, limits=fifo)) == 1


async def test_a_disable_counted_by_one_process_stops_the_others_claims(
    two: tuple[Store, Store],
) -> None:
    first, second = two
    await first.ingest([new_event("e1", "a"), new_event("e2", "a")])
    one, other = await first.jobs(["dlv_e1_a", "dlv_e2_a"])
    [held] = await first.claim([one], lease_s=60)
    [recorded] = await first.record(
        [result("dlv_e1_a", "a", "failed", lease=held.lease, code=500, disable_after=1)]
    )
    assert recorded.disabled is not None
    assert await second.claim([other], lease_s=60) == []
    assert await second.claim([other], lease_s=60, limits=Limits(max_in_flight=3)) == []


async def test_endpoint_changes_move_the_version_and_reach_the_others(
    two: tuple[Store, Store],
) -> None:
    first, second = two
    await second.wait_changes(0.05)  # the reconcile of the fixture
    before = await second.endpoints_version()
    assert await first.create_endpoint("api", {"url": "http://x"}, []) is not None
    assert await second.endpoints_version() > before
    seen = await second.wait_changes(2.0)
    assert seen.endpoints
    assert not (await first.wait_changes(0.05)).endpoints  # its own change is not news to it
    await first.ingest([new_event("e1", "a")])
    assert (await second.wait_changes(2.0)).due


async def test_a_lost_listen_connection_falls_back_to_polling_and_says_so(
    two: tuple[Store, Store],
) -> None:
    first, second = two
    import psycopg

    with structlog.testing.capture_logs() as logs:
        with psycopg.connect(first.dsn, autocommit=True) as admin:  # type: ignore[attr-defined]
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = 'LISTEN hookd' AND pid != pg_backend_pid()"
            )
        for _ in range(3):
            await second.wait_changes(0.1)
        assert any(e["event"] == "store.listen_lost" for e in logs)
        await first.create_endpoint("api", {"url": "http://x"}, [])
        assert await second.endpoints_version() > 0  # polling still sees every change


async def test_nodes_lists_every_live_process(two: tuple[Store, Store]) -> None:
    first, second = two
    await second.heartbeat()
    assert {n.id for n in await first.nodes()} == {first.node_id, second.node_id}
    await second.close()
    assert [n.id for n in await first.nodes()] == [first.node_id]
    await second.open()  # the fixture closes it again


async def test_retention_batches_do_not_hold_up_ingest(two: tuple[Store, Store]) -> None:
    """One process purges thousands of old rows in batches while the other ingests: no ingest
    waits on the purge (each stays well under the time a batch of deletes takes in all)."""
    from hookd import retention

    first, second = two
    for start in range(0, 3000, 500):
        await first.ingest([new_event(f"old{i}", "a") for i in range(start, start + 500)])
    for start in range(0, 3000, 500):
        jobs = await first.jobs([f"dlv_old{i}_a" for i in range(start, start + 500)])
        claimed = await first.claim(jobs, lease_s=60)
        await first.record([result(j.id, "a", "succeeded", lease=j.lease) for j in claimed])
    waits: list[float] = []

    async def ingest_meanwhile() -> None:
        for n in range(100):
            started = time.perf_counter()
            await second.ingest([new_event(f"new{n}", "a")])
            waits.append(time.perf_counter() - started)

    purge = asyncio.create_task(retention.purge(first, 0.0, now=time.time() + 60, pause=0.0))
    await ingest_meanwhile()
    purged = await purge
    assert (purged.deliveries, purged.events) == (3000, 3000)
    assert max(waits) < 0.25, sorted(waits)[-5:]
