"""Retention purges old final deliveries and old events, keeps recent and pending work.

Time passes by passing ``now`` to the purge: rows written before a cut-off moment are "old",
rows written after it are "recent", and the purge runs as if ``retention`` had gone by since.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hookd import retention
from hookd.store import Store
from tests.support import (
    ADMIN,
    Daemon,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    every_delivery,
    every_event,
    finish,
    hmac_signing,
    new_event,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

DAY = 86400.0


async def cut_off() -> float:
    """A moment after every row written so far, and not after any row written from here on."""
    mark = time.time()
    moment: float = await wait_for(lambda: (now := time.time()) > mark and now)
    return moment


async def remaining(store: Store, delivery_ids: list[str]) -> tuple[set[str], set[str], int]:
    """Events and deliveries left, and the attempts left of ``delivery_ids`` (gone or not)."""
    events = {e.id for e in await every_event(store)}
    deliveries = {d.id for d in await every_delivery(store)}
    attempts = sum([len(await store.attempts(d)) for d in delivery_ids])
    return events, deliveries, attempts


async def test_purge_deletes_old_final_rows_and_keeps_the_rest(store: Store) -> None:
    """Final deliveries older than the retention go with their attempts, then events older than
    it with no delivery left; pending deliveries, recent rows and their events stay."""
    old = [f"old{n}" for n in range(5)]
    await store.ingest([new_event(name, "a") for name in old])
    await store.ingest([new_event("old-pending", "a", "b"), new_event("bare")])
    await store.ingest([new_event("old-mixed", "a", "b")])
    for name in old:
        await finish(store, f"dlv_{name}_a", "failed" if name == "old0" else "succeeded", 500)
    await finish(store, "dlv_old-pending_a", "succeeded")
    await finish(store, "dlv_old-mixed_a", "succeeded")
    await finish(store, "dlv_old-mixed_b", "failed", 500)
    moment = await cut_off()
    await store.ingest([new_event("recent", "a")])
    await finish(store, "dlv_recent_a", "succeeded")
    await store.retry_failed("dlv_old-mixed_b", time.time())  # replayed since: recent again
    every_id = [d.id for d in await every_delivery(store)]

    result = await retention.purge(store, 30 * DAY, now=moment + 30 * DAY, batch=2, pause=0)

    events, deliveries, attempts = await remaining(store, every_id)
    assert result.deliveries == 7  # old0..old4, old-pending-a, old-mixed-a
    assert result.attempts == 7
    assert result.events == 6  # old0..old4 and bare (no deliveries at all)
    assert result.batches >= 7  # 2 rows per transaction
    assert events == {"old-pending", "recent", "old-mixed"}
    assert deliveries == {"dlv_old-pending_b", "dlv_recent_a", "dlv_old-mixed_b"}
    assert attempts == 2  # recent-a and old-mixed-b's history
    assert store.pending == 2

    again = await retention.purge(store, 30 * DAY, now=moment + 30 * DAY, pause=0)
    assert (again.deliveries, again.events) == (0, 0)


async def test_purge_keeps_everything_inside_the_window(store: Store) -> None:
    """Rows ten days old under a thirty-day retention are all kept."""
    await store.ingest([new_event("e1", "a"), new_event("e2")])
    await finish(store, "dlv_e1_a", "succeeded")
    result = await retention.purge(store, 30 * DAY, now=time.time() + 10 * DAY, pause=0)
    assert (result.deliveries, result.events) == (0, 0)
    assert {e.id for e in await every_event(store)} == {"e1", "e2"}
    assert [d.id for d in await every_delivery(store)] == ["dlv_e1_a"]


def test_passes_run_between_a_minute_and_an_hour_apart() -> None:
    """A pass every tenth of the retention, but never more often than a minute or less than
    hourly."""
    assert retention.interval_for(30 * DAY) == 3600
    assert retention.interval_for(1.0) == 60
    assert retention.interval_for(6000.0) == 600


CONFIG = config(
    endpoint("a", "URL", signing=hmac_signing("s")), storage=", retention: 1d", extra=auth()
)


async def test_the_daemon_purges_at_start_and_reports_it(
    tmp_path: Path, sink: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon started a day after an event was delivered purges it (and its delivery) in its
    first retention pass, keeps a newer one, and counts what it purged in /metrics."""
    config = CONFIG.replace("URL", sink.url)
    async with running_daemon(tmp_path, config, headers=bearer(ADMIN)) as d:
        await d.post_event("x.y", {}, id="old")
        await wait_for(lambda: _succeeded(d, 1))
        moment = await cut_off()
        await d.post_event("x.y", {}, id="new")
        await wait_for(lambda: _succeeded(d, 2))
    assert len(sink.requests) == 2

    purge = retention.purge

    async def purge_a_day_later(store: Store, keep: float, **kw: float) -> retention.PassResult:
        """The daemon's pass, run as if ``keep`` (1d) had gone by since the cut-off."""
        return await purge(store, keep, now=moment + keep, **kw)

    monkeypatch.setattr(retention, "purge", purge_a_day_later)
    async with running_daemon(tmp_path, config, headers=bearer(ADMIN)) as d:

        async def purged() -> bool:
            status, _ = await d.request("GET", "/v1/events/old")
            return status == 404

        await wait_for(purged)
        status, kept = await d.request("GET", "/v1/events/new")
        assert (status, len(kept["deliveries"])) == (200, 1)
        _, metrics = await d.request("GET", "/metrics")
        assert 'hookd_retention_purged_total{kind="events"} 1.0' in metrics
        assert 'hookd_retention_purged_total{kind="deliveries"} 1.0' in metrics


async def _succeeded(d: Daemon, n: int) -> bool:
    _, page = await d.request("GET", "/v1/deliveries?status=succeeded")
    return len(page["items"]) == n
