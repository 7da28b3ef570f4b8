"""At least once across kill -9: every event answered 202 reaches the receiver after a restart,
on every backend (on PostgreSQL the restart makes the killed process's attempts again once their
leases run out)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import (
    Received,
    backends,
    config,
    endpoint,
    opened_store,
    receiver,
    start_process,
    stopped_at_exit,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.usefixtures("backend")

EVENTS = 300
TIMEOUT_S = 2  # the policy's attempt timeout: a short lease for PostgreSQL to wait out
POLICY = (
    f"  busy: {{delays: [100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms], jitter: none,"
    f" timeout: {TIMEOUT_S}s}}\n"
)


@pytest.mark.slow
@pytest.mark.timeout(100)  # 60 s, and on PostgreSQL the lease of the killed attempts (32 s)
async def test_every_accepted_event_is_delivered_after_sigkill(tmp_path: Path) -> None:
    """300 events, a slow receiver failing every third request, SIGKILL mid-load, restart:
    the set of ids answered 202 is a subset of the ids the receiver accepted (duplicates ok)."""
    accepted: set[str] = set()
    arrivals = 0

    def decide(hit: Received, n: int) -> int:
        nonlocal arrivals
        arrivals += 1
        if arrivals % 3 == 0:
            return 503
        accepted.add(hit.webhook_id)
        return 200

    async with receiver(decide=decide, delay=0.1) as rec:
        text = config(endpoint("sink", rec.url, policy="busy", max_in_flight="16"), policies=POLICY)
        acknowledged: set[str] = set()
        first = start_process(tmp_path, text, name="first")
        with stopped_at_exit(first):
            await wait_ready(first)
            async with aiohttp.ClientSession() as http:
                for batch in range(2):
                    events = [
                        {"type": "load", "data": {"batch": batch, "i": i}} for i in range(100)
                    ]
                    async with http.post(first.url + "/v1/events/batch", json=events) as resp:
                        assert resp.status == 202
                        acknowledged.update(item["id"] for item in (await resp.json())["items"])

                async def one(i: int) -> str | None:
                    body: dict[str, Any] = {"type": "load", "data": {"single": i}}
                    async with http.post(first.url + "/v1/events", json=body) as resp:
                        return str((await resp.json())["id"]) if resp.status == 202 else None

                singles = [asyncio.create_task(one(i)) for i in range(EVENTS - 200)]
                await wait_for(
                    lambda: len(rec.requests) >= 60 and sum(t.done() for t in singles) >= 50
                )
                first.signal(signal.SIGKILL)
                assert await first.exited(10) == -signal.SIGKILL
                for result in await asyncio.gather(*singles, return_exceptions=True):
                    if isinstance(result, str):
                        acknowledged.add(result)
        assert len(acknowledged) >= 250
        killed_at = len(rec.requests)
        assert not acknowledged <= accepted, "the kill came too late to prove anything"

        second = start_process(tmp_path, text, name="second")
        with stopped_at_exit(second):
            await wait_ready(second)
            await wait_for(
                lambda: acknowledged <= accepted,
                timeout=20 + backends.takeover_s(TIMEOUT_S),
                interval=0.05,
            )
            second.signal(signal.SIGTERM)
            # waited for without blocking the loop: the receiver keeps answering while hookd drains
            assert await second.exited(10) == 0

    async with opened_store(tmp_path / "hookd.db") as store:
        statuses = await store.counts_by_status()
    # unacknowledged events may have been stored too: they are delivered as well
    assert (statuses["pending"], statuses["failed"]) == (0, 0), statuses
    assert statuses["succeeded"] >= len(acknowledged)
    assert len(rec.requests) > killed_at
