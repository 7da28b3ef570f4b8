"""Per-endpoint and global limits end to end: fifo ordering, rate_limit, max_in_flight and
delivery.concurrency, against real receivers on 127.0.0.1 and a real store of each backend."""

from __future__ import annotations

import asyncio
import bisect
from pathlib import Path

import pytest

from tests.support import Received, config, endpoint, receiver, running_daemon, wait_for

pytestmark = pytest.mark.usefixtures("backend")

QUICK = "  quick: {delays: [100ms, 100ms, 100ms], jitter: none}\n"


async def test_fifo_holds_later_deliveries_until_the_head_succeeds(tmp_path: Path) -> None:
    """ordering: fifo: the first delivery fails twice; nothing else arrives before it succeeds,
    and every delivery arrives in ingest order."""
    head: list[str] = []

    def decide(hit: Received, n: int) -> int:
        head[:] = head or [hit.webhook_id]
        return 500 if hit.webhook_id == head[0] and n <= 2 else 200

    async with receiver(decide=decide) as rec:
        endpoints = endpoint("ordered", rec.url, policy="quick", ordering="fifo")
        async with running_daemon(tmp_path, config(endpoints, policies=QUICK)) as d:
            events = [await d.send("order.step", {"step": i}) for i in range(5)]
            rows = await d.settled(*(ids["ordered"] for ids in events))
    assert [r.status for r in rows] == ["succeeded"] * 5
    order = [ids["event"] for ids in events]
    arrivals = [h.webhook_id for h in rec.requests]
    assert arrivals == [order[0]] * 3 + order[1:]
    head_success = rec.requests[2].at
    assert all(h.at >= head_success for h in rec.requests[3:])
    assert [r.attempt_count for r in rows] == [3, 1, 1, 1, 1]


async def test_fifo_moves_on_when_the_head_fails_for_good(tmp_path: Path) -> None:
    """A fifo head that exhausts its retries becomes `failed` and releases the next one."""
    async with receiver(decide=lambda hit, n: 500 if b'"step":0' in hit.body else 200) as rec:
        endpoints = endpoint("ordered", rec.url, policy="quick", ordering="fifo")
        async with running_daemon(tmp_path, config(endpoints, policies=QUICK)) as d:
            events = [await d.send("order.step", {"step": i}) for i in range(3)]
            rows = await d.settled(*(ids["ordered"] for ids in events))
    assert [r.status for r in rows] == ["failed", "succeeded", "succeeded"]
    order = [ids["event"] for ids in events]
    assert [h.webhook_id for h in rec.requests] == [order[0]] * 4 + order[1:]


async def test_an_endpoint_patched_from_fifo_to_none_sends_what_waited_behind_its_head(
    tmp_path: Path,
) -> None:
    """A fifo head whose retry is an hour away holds the rest back; once the endpoint's
    ordering is patched to none, the deliveries behind it go at once, not after a restart."""
    async with receiver(decide=lambda hit, n: 500 if b'"step":0' in hit.body else 200) as rec:
        text = config(policies="  later: {delays: [1h], jitter: none}\n")
        async with running_daemon(tmp_path, text) as d:
            await d.create_endpoint(id="ordered", url=rec.url, ordering="fifo", policy="later")
            events = [await d.send("order.step", {"step": i}) for i in range(3)]
            await rec.received(1)

            async def head_retried() -> bool:  # recorded, its retry an hour away
                head = await d.row(events[0]["ordered"])
                return (head.status, head.attempt_count) == ("pending", 1)

            await wait_for(head_retried)
            assert len(rec.requests) == 1  # fifo: the others wait behind it
            status, answer = await d.request(
                "PATCH", "/v1/endpoints/ordered", json={"ordering": "none"}
            )
            assert status == 200, answer
            rows = await d.settled(events[1]["ordered"], events[2]["ordered"])
    assert [r.status for r in rows] == ["succeeded", "succeeded"]
    assert [h.webhook_id for h in rec.requests[1:]] == [events[1]["event"], events[2]["event"]]


def busiest_window(times: list[float], width: float) -> int:
    """The most arrivals in any closed window of ``width`` seconds."""
    times = sorted(times)
    return max(bisect.bisect_right(times, t + width) - i for i, t in enumerate(times))


async def test_rate_limit_paces_attempts(tmp_path: Path) -> None:
    """rate_limit: 20/s and 30 events at once: never more than 20+1 in any second, and spread
    over at least the 1.45 s that 30 starts 1/20 s apart take."""
    async with receiver() as rec:
        endpoints = endpoint("paced", rec.url, rate_limit="20/s")
        async with running_daemon(tmp_path, config(endpoints)) as d:
            body = [{"type": "bulk", "data": {"i": i}} for i in range(30)]
            status, answer = await d.request("POST", "/v1/events/batch", json=body)
            assert status == 202, answer
            await rec.received(30)
    times = [h.at for h in rec.requests]
    assert len(times) == 30
    assert busiest_window(times, 1.0) <= 21
    assert busiest_window(times, 0.25) <= 6
    assert max(times) - min(times) >= 29 / 20 - 0.1  # paced, not one burst


async def test_max_in_flight_bounds_concurrent_requests(tmp_path: Path) -> None:
    """max_in_flight: 3 with a slow receiver: never more than 3 requests at once, all delivered."""
    async with receiver(delay=0.15) as rec:
        endpoints = endpoint("narrow", rec.url, max_in_flight="3")
        async with running_daemon(tmp_path, config(endpoints)) as d:
            await asyncio.gather(*(d.send("x", {"i": i}) for i in range(12)))
            await rec.received(12)
            await wait_for(lambda: rec.active == 0)
    assert rec.peak == 3
    assert len(rec.requests) == 12


async def test_global_concurrency_bounds_all_endpoints_together(tmp_path: Path) -> None:
    """delivery.concurrency: 4 across two endpoints: at most 4 requests at once, both served."""
    async with receiver(delay=0.15) as rec:
        endpoints = endpoint("a", rec.url_for("/a")) + endpoint("b", rec.url_for("/b"))
        text = config(endpoints, delivery=", concurrency: 4")
        async with running_daemon(tmp_path, text) as d:
            await asyncio.gather(*(d.send("x", {"i": i}) for i in range(10)))
            await rec.received(20)
            await wait_for(lambda: rec.active == 0)
    assert rec.peak == 4
    assert len(rec.requests) == 20
    assert {h.path for h in rec.requests[:8]} == {"/a", "/b"}  # neither lane starves the other
