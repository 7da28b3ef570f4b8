"""A lane holds a bounded number of due deliveries in memory: behind a slow endpoint the rest
wait in the database and are read back, earliest due first, none lost and none sent twice
(real receiver on 127.0.0.1, a real store of each backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookd.delivery import dispatcher
from hookd.store import Job
from tests.support import config, endpoint, receiver, running_daemon, wait_for

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def small_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher, "LANE_MAX", 8)
    monkeypatch.setattr(dispatcher, "LANE_REFILL_AT", 3)


@pytest.mark.usefixtures("small_lanes")
async def test_a_full_lane_leaves_deliveries_in_the_database_and_reads_them_back_in_order(
    tmp_path: Path,
) -> None:
    """60 events to an endpoint taking one request at a time: the lane never holds more than
    8, and the receiver still gets all 60, once each, in ingest order."""
    async with receiver(delay=0.01) as rec:
        endpoints = endpoint("slow", rec.url, max_in_flight="1")
        async with running_daemon(tmp_path, config(endpoints)) as d:
            body = [{"type": "bulk", "data": {"i": i}} for i in range(60)]
            status, answer = await d.request("POST", "/v1/events/batch", json=body)
            assert status == 202, answer
            assert d.state.dispatcher is not None
            held: list[int] = []

            def all_arrived() -> bool:
                assert d.state.dispatcher is not None
                held.append(d.state.dispatcher.queued())
                return len(rec.requests) >= 60

            await wait_for(all_arrived, timeout=30)
            rows = await d.settled(*(item["deliveries"][0]["id"] for item in answer["items"]))
    assert max(held) <= 8  # LANE_MAX; without the bound all 59 waiting would be queued
    assert min(held) < 8  # and it was sampled while the lane drained
    assert [r.status for r in rows] == ["succeeded"] * 60
    assert [r.attempt_count for r in rows] == [1] * 60
    assert [h.webhook_id for h in rec.requests] == [item["id"] for item in answer["items"]]


@pytest.mark.usefixtures("small_lanes")
async def test_retries_that_find_the_lane_full_are_read_back_too(tmp_path: Path) -> None:
    """Every first attempt fails and is retried 100 ms later, while the lane is still full of
    first attempts: each retry is left in the database and read back; every event ends
    succeeded after exactly two attempts."""
    policies = "  quick: {delays: [100ms], jitter: none}\n"
    async with receiver(delay=0.005, decide=lambda hit, n: 500 if n == 1 else 200) as rec:
        endpoints = endpoint("flaky", rec.url, max_in_flight="1", policy="quick")
        async with running_daemon(tmp_path, config(endpoints, policies=policies)) as d:
            body = [{"type": "bulk", "data": {"i": i}} for i in range(30)]
            status, answer = await d.request("POST", "/v1/events/batch", json=body)
            assert status == 202, answer
            await wait_for(lambda: len(rec.requests) >= 60, timeout=30)
            rows = await d.settled(*(item["deliveries"][0]["id"] for item in answer["items"]))
            assert d.state.dispatcher is not None
            assert d.state.dispatcher.queued() == 0
    assert [r.status for r in rows] == ["succeeded"] * 30
    assert [r.attempt_count for r in rows] == [2] * 30
    ids = [h.webhook_id for h in rec.requests]
    assert sorted(ids) == sorted(item["id"] for item in answer["items"] for _ in range(2))


@pytest.mark.usefixtures("small_lanes")
async def test_what_is_attempted_while_the_read_back_runs_is_not_sent_again(
    tmp_path: Path,
) -> None:
    """The read-back returns what it read, while the lane goes on: each read here is held
    until attempts have started and finished after it, so it shows deliveries that were then
    sent (and recorded) as still pending. None of them is sent twice."""
    async with receiver() as rec:
        endpoints = endpoint("slow", rec.url, max_in_flight="1")
        async with running_daemon(tmp_path, config(endpoints)) as d:
            dispatch = d.state.dispatcher
            assert dispatch is not None
            read = dispatch.store.due_jobs
            reads: list[int] = []

            async def stale_read(endpoint_id: str, *, now: float, limit: int) -> list[Job]:
                jobs = await read(endpoint_id, now=now, limit=limit)
                lane, moved = dispatch._lanes[endpoint_id], dispatch._open_reads[-1]
                await wait_for(lambda: len(moved) >= 4 or not lane.in_flight)
                reads.append(len(jobs))
                return jobs

            dispatch.store.due_jobs = stale_read  # type: ignore[method-assign]
            body = [{"type": "bulk", "data": {"i": i}} for i in range(40)]
            status, answer = await d.request("POST", "/v1/events/batch", json=body)
            assert status == 202, answer
            rows = await d.settled(*(item["deliveries"][0]["id"] for item in answer["items"]))
    assert len(reads) >= 3  # the backlog was read back several times, each read held
    assert [r.status for r in rows] == ["succeeded"] * 40
    assert [h.webhook_id for h in rec.requests] == [item["id"] for item in answer["items"]]
