"""The store contract: every method of :class:`hookd.store.Store`, through the Protocol only,
on every backend (``any_store`` is parametrized by ``tests.conftest.BACKENDS``)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import pytest

from hookd.store import (
    DISABLED,
    ENABLED,
    ENDPOINT_REMOVED,
    EXHAUSTED,
    BadCursor,
    Conflict,
    DeliveryFilter,
    Limits,
    NoticeRoute,
    Notices,
    OverCapacity,
    Status,
    Store,
)
from tests.conftest import BACKENDS, open_backend
from tests.support import attempt_result, finish, new_event

# --------------------------------------------------------------------------- ingest


async def test_ingest_commits_events_with_their_deliveries(any_store: Store) -> None:
    [accepted] = await any_store.ingest([new_event("e1", "a", "b", data={"n": 1})])
    assert accepted.created
    assert accepted.id == "e1"
    assert [(d.id, d.endpoint) for d in accepted.deliveries] == [
        ("dlv_e1_a", "a"),
        ("dlv_e1_b", "b"),
    ]
    assert any_store.pending == 2 == await any_store.count_pending()
    event = await any_store.event("e1")
    assert event is not None
    assert (event.type, event.data) == ("x.y", '{"n": 1}')
    assert [d.id for d in await any_store.event_deliveries("e1")] == ["dlv_e1_a", "dlv_e1_b"]
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert (row.status, row.attempt_count, row.endpoint, row.origin) == (
        "pending",
        0,
        "a",
        "ingest",
    )


async def test_a_repeated_key_answers_the_original_and_creates_nothing(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a")])
    [again] = await any_store.ingest([new_event("e1", "a", "b")])  # routing changed meanwhile
    assert not again.created
    assert [d.id for d in again.deliveries] == ["dlv_e1_a"]
    assert any_store.pending == 1


async def test_a_repeat_of_an_event_that_went_nowhere_is_answered_too(any_store: Store) -> None:
    await any_store.ingest([new_event("lonely")])
    [again] = await any_store.ingest([new_event("lonely")])
    assert (again.id, again.deliveries, again.created) == ("lonely", (), False)


async def test_a_key_repeated_inside_one_request_is_one_event(any_store: Store) -> None:
    answers = await any_store.ingest([new_event("e1", "a"), new_event("e1", "a")])
    assert [a.created for a in answers] == [True, False]
    assert answers[0].deliveries == answers[1].deliveries
    assert any_store.pending == 1


async def test_a_key_reused_with_other_content_is_a_conflict_and_stores_nothing(
    any_store: Store,
) -> None:
    await any_store.ingest([new_event("e1", "a")])
    with pytest.raises(Conflict) as caught:
        await any_store.ingest([new_event("e2", "a"), new_event("e1", "a", content_hash="other")])
    assert (caught.value.index, caught.value.key) == (1, "e1")
    assert await any_store.event("e2") is None  # the request is all or nothing
    assert any_store.pending == 1


async def test_an_explicit_id_held_by_an_unkeyed_event_is_a_conflict(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a", keyed=False)])
    with pytest.raises(Conflict):
        await any_store.ingest([new_event("e1", "a")])


async def test_concurrent_requests_are_judged_one_by_one(any_store: Store) -> None:
    """Requests that share one group commit: a conflict refuses only its own request."""
    results = await asyncio.gather(
        any_store.ingest([new_event("k", "a")]),
        any_store.ingest([new_event("k", "a", content_hash="other")]),
        any_store.ingest([new_event("j", "b")]),
        return_exceptions=True,
    )
    assert isinstance(results[1], Conflict)
    assert not isinstance(results[0], Exception)
    assert not isinstance(results[2], Exception)
    assert any_store.pending == 2


async def test_deliveries_to_a_disabled_or_missing_endpoint_are_dropped(any_store: Store) -> None:
    assert (await any_store.set_endpoint_enabled("b", False, "off")).found
    [accepted] = await any_store.ingest([new_event("e1", "a", "b", "gone")])
    assert [d.endpoint for d in accepted.deliveries] == ["a"]
    assert any_store.pending == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_ingest_past_max_pending_is_refused_whole(backend: str, tmp_path: Path) -> None:
    store = open_backend(backend, tmp_path, max_pending=3)
    await store.open()
    try:
        await store.reconcile_config_endpoints({"a": None, "b": None})
        await store.ingest([new_event("e1", "a", "b")])
        with pytest.raises(OverCapacity, match="max_pending"):
            await store.ingest([new_event("e2", "a"), new_event("e3", "a")])
        assert await store.event("e2") is None
        await store.ingest([new_event("e4")])  # no delivery: nothing to count
        await store.ingest([new_event("e5", "a")])
        assert store.pending == 3 == await store.count_pending()
    finally:
        await store.close()


# --------------------------------------------------------------------------- the delivery path


async def test_due_pages_in_due_order_and_skips_disabled_endpoints(any_store: Store) -> None:
    await any_store.ingest([new_event(f"e{n}", "a", "b") for n in range(3)])
    await any_store.set_endpoint_enabled("b", False)
    end = time.time() + 60
    seen: list[str] = []
    after = (0.0, 0)
    while page := await any_store.due(after=after, end=end, limit=2):
        seen += [delivery_id for delivery_id, _, _ in page]
        _, due, tiebreak = page[-1]
        after = (due, tiebreak)
    assert seen == ["dlv_e0_a", "dlv_e1_a", "dlv_e2_a"]
    assert await any_store.due(after=(0.0, 0), end=0.0, limit=9) == []
    assert await any_store.count_due(time.time() + 1) == 3
    assert await any_store.count_due(0) == 0


async def test_jobs_come_with_their_event_in_ingest_order(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a", data={"x": 1}), new_event("e2", "a")])
    jobs = await any_store.jobs(["dlv_e2_a", "dlv_e1_a", "nope"])
    assert [j.id for j in jobs] == ["dlv_e1_a", "dlv_e2_a"]
    assert (jobs[0].event_id, jobs[0].data, jobs[0].lease) == ("e1", '{"x": 1}', 0)
    head = await any_store.fifo_head("a")
    assert head is not None
    assert head.id == "dlv_e1_a"
    await finish(any_store, "dlv_e1_a", "succeeded")
    head = await any_store.fifo_head("a")
    assert head is not None
    assert head.id == "dlv_e2_a"
    assert await any_store.fifo_head("b") is None


async def test_due_jobs_reads_back_an_endpoints_due_deliveries_earliest_first(
    any_store: Store,
) -> None:
    await any_store.ingest([new_event(f"e{i}", "a", "b", data={"i": i}) for i in range(6)])
    await finish(any_store, "dlv_e1_a", "succeeded")
    await finish(any_store, "dlv_e2_a", "pending")  # retried in 60 s: not due yet
    [job] = await any_store.jobs(["dlv_e5_a"])
    await any_store.claim([job], lease_s=60)
    now = time.time() + 1
    due = await any_store.due_jobs("a", now=now, limit=10)
    # A shared backend leaves a delivery under a lease to its holder; one process knows its own.
    expected = ["dlv_e0_a", "dlv_e3_a", "dlv_e4_a"] + ([] if any_store.shared else ["dlv_e5_a"])
    assert [j.id for j in due] == expected
    assert (due[0].event_id, due[0].endpoint, due[0].data, due[0].lease) == (
        "e0",
        "a",
        '{"i": 0}',
        0,
    )
    assert [j.id for j in await any_store.due_jobs("a", now=now, limit=2)] == expected[:2]
    assert await any_store.due_jobs("a", now=0.0, limit=10) == []
    assert await any_store.due_jobs("nope", now=now, limit=10) == []


async def test_a_claimed_delivery_cannot_be_claimed_again_until_its_claim_ends(
    any_store: Store,
) -> None:
    await any_store.ingest([new_event("e1", "a")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    [claimed] = await any_store.claim([job], lease_s=60)
    assert claimed.lease != 0
    assert await any_store.claim([job], lease_s=60) == []
    await any_store.release([job.id])
    [again] = await any_store.claim([job], lease_s=60)
    assert again.lease != claimed.lease


async def test_a_stale_claim_records_nothing(any_store: Store) -> None:
    """A lease that ran out and was claimed again: the first attempt's record is fenced off."""
    await any_store.ingest([new_event("e1", "a")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    [first] = await any_store.claim([job], lease_s=0)  # expires at once
    [second] = await any_store.claim([job], lease_s=60)
    [stale] = await any_store.record([attempt_result("dlv_e1_a", "a", "failed", lease=first.lease)])
    assert not stale.applied
    assert await any_store.attempts("dlv_e1_a") == []
    [fresh] = await any_store.record(
        [attempt_result("dlv_e1_a", "a", "succeeded", lease=second.lease)]
    )
    assert fresh.applied
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert (row.status, row.attempt_count) == ("succeeded", 1)
    assert any_store.pending == 0


async def test_a_record_for_another_attempt_number_is_refused(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    [claimed] = await any_store.claim([job], lease_s=60)
    [wrong] = await any_store.record(
        [attempt_result("dlv_e1_a", "a", "succeeded", lease=claimed.lease, n=2)]
    )
    assert not wrong.applied
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert (row.status, row.attempt_count) == ("pending", 0)


async def test_record_writes_the_attempt_and_the_next_state(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a")])
    recorded = await finish(any_store, "dlv_e1_a", "pending", 503)
    assert recorded.applied
    assert recorded.consecutive_failures is None
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert (row.status, row.attempt_count, row.last_status_code) == ("pending", 1, 503)
    assert row.next_attempt_at is not None
    assert row.next_attempt_at > time.time()
    await finish(any_store, "dlv_e1_a", "succeeded", 200)
    attempts = await any_store.attempts("dlv_e1_a")
    assert [(a.n, a.status_code, a.error) for a in attempts] == [
        (1, 503, "HTTP 503"),
        (2, 200, None),
    ]
    assert any_store.pending == 0


async def test_the_failure_counter_is_kept_in_the_database(any_store: Store) -> None:
    await any_store.ingest([new_event(f"e{n}", "a") for n in range(4)])
    first = await finish(any_store, "dlv_e0_a", "failed", 500, disable_after=3)
    second = await finish(any_store, "dlv_e1_a", "failed", 500, disable_after=3)
    assert (first.consecutive_failures, second.consecutive_failures) == (1, 2)
    assert first.disabled is None is second.disabled
    third = await finish(any_store, "dlv_e2_a", "failed", 500, disable_after=3)
    assert (third.consecutive_failures, third.disabled) == (3, "3 consecutive failed deliveries")
    row = await any_store.endpoint("a")
    assert row is not None
    assert (row.enabled, row.disabled_reason, row.consecutive_failures) == (
        False,
        "3 consecutive failed deliveries",
        3,
    )
    assert (await any_store.set_endpoint_enabled("a", True)).changed
    row = await any_store.endpoint("a")
    assert row is not None
    assert (row.enabled, row.consecutive_failures) == (True, 0)
    await any_store.ingest([new_event("e9", "a")])
    await finish(any_store, "dlv_e3_a", "failed", 500)
    assert (await finish(any_store, "dlv_e9_a", "succeeded")).consecutive_failures == 0


async def test_the_failure_counter_follows_the_order_within_one_record_call(
    any_store: Store,
) -> None:
    """Results recorded together count in their order: a failure after a success counts again,
    and each result says what it changed (None: the counter was already where it leaves it)."""
    statuses: list[Status] = ["failed", "succeeded", "succeeded", "failed", "failed", "succeeded"]
    await any_store.ingest([new_event(f"e{n}", "a") for n in range(len(statuses))])
    jobs = await any_store.jobs([f"dlv_e{n}_a" for n in range(len(statuses))])
    claimed = await any_store.claim(jobs, lease_s=60)
    codes = [500 if status == "failed" else 200 for status in statuses]
    results = [
        attempt_result(job.id, "a", status, lease=job.lease, code=code)
        for job, status, code in zip(claimed, statuses, codes, strict=True)
    ]
    recorded = await any_store.record(results)
    assert [r.applied for r in recorded] == [True] * len(statuses)
    assert [r.consecutive_failures for r in recorded] == [1, 0, None, 1, 2, 0]
    row = await any_store.endpoint("a")
    assert row is not None
    assert row.consecutive_failures == 0


async def test_one_record_call_applies_exactly_the_results_its_claims_allow(
    any_store: Store,
) -> None:
    """A hundred results in one call (more than one statement's worth on SQLite): each is
    applied or refused on its own, by its claim and its attempt number, and a result named
    twice counts once; the applied ones leave their state and their attempt row, the refused
    ones nothing."""
    count = 100
    await any_store.ingest([new_event(f"e{n}", "a" if n % 3 else "b") for n in range(count)])
    ids = [f"dlv_e{n}_{'a' if n % 3 else 'b'}" for n in range(count)]
    claimed = await any_store.claim(await any_store.jobs(ids), lease_s=60)
    assert [j.id for j in claimed] == ids
    later = time.time() + 3600
    results = []
    for n, job in enumerate(claimed):
        status: Status = ("succeeded", "pending", "failed")[n % 3]
        results.append(
            attempt_result(
                job.id,
                job.endpoint,
                status,
                lease=job.lease + 1 if n % 10 == 7 else job.lease,  # not this claim's lease
                n=2 if n % 10 == 9 else 1,  # not the next attempt
                code=200 if status == "succeeded" else 500 + n,
                next_attempt_at=later + n if status == "pending" else None,
            )
        )
    results.insert(5, results[4])  # the same result twice, side by side
    recorded = await any_store.record(results)
    expected = [n % 10 not in (7, 9) for n in range(count)]
    expected.insert(5, False)
    assert [r.delivery_id for r in recorded] == [r.delivery_id for r in results]
    assert [r.applied for r in recorded] == expected
    for n, delivery_id in enumerate(ids):
        row = await any_store.delivery(delivery_id)
        assert row is not None
        attempts = await any_store.attempts(delivery_id)
        if n % 10 in (7, 9):
            assert (row.status, row.attempt_count, row.last_status_code) == ("pending", 0, None)
            assert attempts == []
            continue
        status = ("succeeded", "pending", "failed")[n % 3]
        code = 200 if status == "succeeded" else 500 + n
        assert (row.status, row.attempt_count, row.last_status_code) == (status, 1, code)
        assert row.last_error == (None if status == "succeeded" else f"HTTP {code}")
        assert row.next_attempt_at == (later + n if status == "pending" else None)
        assert [(a.n, a.status_code) for a in attempts] == [(1, code)]
    finished = sum(1 for n in range(count) if n % 10 not in (7, 9) and n % 3 != 1)
    assert any_store.pending == count - finished == await any_store.count_pending()


async def test_a_result_may_disable_its_endpoint_at_once(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    [claimed] = await any_store.claim([job], lease_s=60)
    [recorded] = await any_store.record(
        [
            attempt_result(
                "dlv_e1_a", "a", "failed", lease=claimed.lease, code=410, disable_reason="HTTP 410"
            )
        ]
    )
    assert recorded.disabled == "HTTP 410"
    row = await any_store.endpoint("a")
    assert row is not None
    assert (row.enabled, row.disabled_reason) == (False, "HTTP 410")


# --------------------------------------------------------------------------- endpoints


async def test_endpoints_are_created_updated_and_deleted_with_their_history(
    any_store: Store,
) -> None:
    secrets = [{"secret": "sealed", "expires_at": None}]
    created = await any_store.create_endpoint("api", {"url": "http://x"}, secrets)  # type: ignore[arg-type]
    assert created is not None
    assert (created.source, created.spec) == ("api", {"url": "http://x"})
    assert await any_store.create_endpoint("api", {"url": "http://y"}, []) is None
    assert await any_store.update_endpoint("api", spec={"url": "http://y"})
    row = await any_store.endpoint("api")
    assert row is not None
    assert (row.spec, row.secrets) == ({"url": "http://y"}, secrets)
    assert not await any_store.update_endpoint("a", spec={"url": "http://z"})  # a YAML row
    assert [r.id for r in await any_store.endpoints()] == ["a", "b", "api"]
    await any_store.ingest([new_event("e1", "api", "a"), new_event("e2", "api")])
    await finish(any_store, "dlv_e1_api", "succeeded")
    assert await any_store.delete_endpoint("api") == 2
    assert await any_store.delete_endpoint("api") is None
    assert any_store.pending == 1 == await any_store.count_pending()
    assert await any_store.delivery("dlv_e1_api") is None
    assert await any_store.attempts("dlv_e1_api") == []
    assert await any_store.endpoint("api") is None
    assert not (await any_store.set_endpoint_enabled("api", False)).found


async def test_reconciling_the_yaml_fails_what_a_removed_endpoint_left_pending(
    any_store: Store,
) -> None:
    await any_store.ingest([new_event("e1", "a", "b"), new_event("e2", "a")])
    await finish(any_store, "dlv_e1_a", "succeeded")
    assert await any_store.reconcile_config_endpoints({"b": None}) == {"a": 1}
    assert any_store.pending == 1 == await any_store.count_pending()
    gone = await any_store.delivery("dlv_e2_a")
    assert gone is not None
    assert (gone.status, gone.last_error, gone.next_attempt_at) == (
        "failed",
        ENDPOINT_REMOVED,
        None,
    )
    assert len(await any_store.attempts("dlv_e1_a")) == 1  # history stays
    assert await any_store.reconcile_config_endpoints({"b": None}) == {}
    assert await any_store.reconcile_config_endpoints({}) == {"b": 1}
    assert await any_store.endpoints() == []


# --------------------------------------------------------------------------- history


async def test_history_pages_are_newest_first_filtered_and_cursored(any_store: Store) -> None:
    await any_store.ingest(
        [new_event(f"e{n}", "a", "b", kind="task.done" if n % 2 else "user.new") for n in range(6)]
    )
    await finish(any_store, "dlv_e1_a", "failed", 503)
    page = await any_store.deliveries(DeliveryFilter(), limit=5)
    assert [r.id for r in page.items] == [
        "dlv_e5_b",
        "dlv_e5_a",
        "dlv_e4_b",
        "dlv_e4_a",
        "dlv_e3_b",
    ]
    assert page.next_cursor is not None
    rest = await any_store.deliveries(DeliveryFilter(), limit=100, cursor=page.next_cursor)
    assert len(rest.items) == 7
    assert rest.next_cursor is None
    assert not {r.id for r in rest.items} & {r.id for r in page.items}
    glob = await any_store.deliveries(DeliveryFilter(type_glob="task.*", endpoint="a"), limit=9)
    assert [r.id for r in glob.items] == ["dlv_e5_a", "dlv_e3_a", "dlv_e1_a"]
    coded = await any_store.deliveries(DeliveryFilter(code_range=(500, 599)), limit=9)
    assert [(r.id, r.status) for r in coded.items] == [("dlv_e1_a", "failed")]
    by_event = await any_store.deliveries(DeliveryFilter(event="e2", status="pending"), limit=9)
    assert {r.id for r in by_event.items} == {"dlv_e2_a", "dlv_e2_b"}
    exact = await any_store.deliveries(DeliveryFilter(type_glob="task.done"), limit=1)
    assert len(exact.items) == 1
    assert exact.next_cursor is not None


@pytest.mark.parametrize("cursor", ["garbage!", "", "WyJlIiwxXQ", "WyJkIiwieCJd"])
async def test_a_cursor_this_store_did_not_give_out_is_refused(
    any_store: Store, cursor: str
) -> None:
    """Including a well-formed cursor of another list (``["e",1]``) and a wrong type."""
    if not cursor:
        cursor = "W10"  # []
    with pytest.raises(BadCursor):
        await any_store.deliveries(DeliveryFilter(), limit=5, cursor=cursor)


# --------------------------------------------------------------------------- operator actions


async def test_retry_failed_requeues_only_failed_deliveries(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a"), new_event("e2", "a")])
    await finish(any_store, "dlv_e1_a", "failed", 500)
    assert await any_store.retry_failed("nope", time.time()) is None
    assert await any_store.retry_failed("dlv_e2_a", time.time()) == "pending"
    now = time.time()
    assert await any_store.retry_failed("dlv_e1_a", now) == "failed"
    assert any_store.pending == 2 == await any_store.count_pending()
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert (row.status, row.next_attempt_at, row.attempt_count) == ("pending", now, 1)
    assert len(await any_store.attempts("dlv_e1_a")) == 1
    await finish(any_store, "dlv_e1_a", "succeeded")  # the next attempt is number 2
    assert [a.n for a in await any_store.attempts("dlv_e1_a")] == [1, 2]


async def test_retrying_a_delivery_whose_endpoint_is_gone_changes_nothing(
    any_store: Store,
) -> None:
    await any_store.ingest([new_event("e1", "a")])
    await any_store.reconcile_config_endpoints({"b": None})
    assert await any_store.retry_failed("dlv_e1_a", 0.0) == "orphaned"
    row = await any_store.delivery("dlv_e1_a")
    assert row is not None
    assert row.status == "failed"
    assert any_store.pending == 0


async def test_requeue_missed_events_and_add_deliveries(any_store: Store) -> None:
    """requeue makes final deliveries pending again by status and age; missed_events pages what an
    endpoint never got; add_deliveries adds only new ones."""
    await any_store.ingest([new_event("e1", "a"), new_event("e2", "a"), new_event("e3", "b")])
    await any_store.ingest([new_event(f"m{n}", "b") for n in range(3)])
    await finish(any_store, "dlv_e1_a", "failed")
    await finish(any_store, "dlv_e2_a", "succeeded")
    now = time.time()
    assert await any_store.requeue("a", since=0, statuses=("failed",), now=now) == 1
    assert await any_store.requeue("a", since=0, statuses=("succeeded", "failed"), now=now) == 1
    assert await any_store.requeue("a", since=now + 60, statuses=("failed",), now=now) == 0
    missed: list[str] = []
    cursor = None
    while True:
        page = await any_store.missed_events("a", since=0, limit=2, cursor=cursor)
        missed += [e.id for e in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert missed == ["e3", "m0", "m1", "m2"]
    created = await any_store.add_deliveries(
        "a", [("dlv_new", "e3"), ("dlv_dup", "e1"), ("dlv_gone", "e404")], origin="replay", now=now
    )
    assert created == 1
    assert any_store.pending == 7 == await any_store.count_pending()
    new = await any_store.delivery("dlv_new")
    assert new is not None
    assert (new.endpoint, new.event_type, new.origin) == ("a", "x.y", "replay")


# --------------------------------------------------------------------------- retention, counts


async def test_purges_delete_old_final_rows_in_batches(any_store: Store) -> None:
    await any_store.ingest([new_event(f"e{n}", "a") for n in range(5)] + [new_event("p", "b")])
    for n in range(5):
        await finish(any_store, f"dlv_e{n}_a", "succeeded")
    later = time.time() + 10
    deleted = attempts = batches = 0
    cursor = None
    while True:
        step = await any_store.purge_deliveries(before=later, limit=2, cursor=cursor)
        deleted, attempts, batches = deleted + step.rows, attempts + step.attempts, batches + 1
        if (cursor := step.resume) is None:
            break
    assert (deleted, attempts, batches) == (5, 5, 3)
    assert await any_store.delivery("dlv_p_b") is not None  # pending: never purged
    events = 0
    cursor = None
    while True:
        step = await any_store.purge_events(before=later, limit=2, cursor=cursor)
        events += step.rows
        if (cursor := step.resume) is None:
            break
    assert events == 5
    assert await any_store.event("p") is not None


async def test_counts_ping_and_size(any_store: Store) -> None:
    """counts_by_status counts each status; ping answers; the size and commit count grow."""
    await any_store.ingest([new_event("e1", "a", "b")])
    await finish(any_store, "dlv_e1_a", "failed", 500)
    assert await any_store.counts_by_status() == {"pending": 1, "succeeded": 0, "failed": 1}
    await any_store.ping()
    assert any_store.db_bytes() > 0
    assert any_store.stats.commits > 0


# --------------------------------------------------------------------------- operational events


async def test_record_writes_the_operational_events_it_causes(any_store: Store) -> None:
    """A delivery that ends failed and the disable it causes each make an event, with deliveries
    to the routes whose filter matches, in the record's transaction."""
    await any_store.ingest([new_event(f"e{n}", "a") for n in range(2)])
    routes = (
        NoticeRoute(endpoint="b"),
        NoticeRoute(endpoint="b", match=lambda event: event["data"]["attempts"] > 9),
    )
    notices = Notices(tenant=None, exhausted=routes, disabled=(NoticeRoute(endpoint="b"),))
    outcomes = []
    for n in range(2):
        [job] = await any_store.jobs([f"dlv_e{n}_a"])
        [claimed] = await any_store.claim([job], lease_s=60)
        failed = msgspec.structs.replace(
            attempt_result(f"dlv_e{n}_a", "a", "failed", lease=claimed.lease, code=500),
            disable_after=2,
            event_id=f"e{n}",
            event_type="x.y",
            notices=notices,
        )
        [recorded] = await any_store.record([failed])
        outcomes.append(recorded)
    assert [len(r.emitted) for r in outcomes] == [1, 2]  # exhausted; exhausted + disabled
    kinds = [job.event_type for r in outcomes for job in r.emitted]
    assert kinds == [EXHAUSTED, EXHAUSTED, DISABLED]
    disabled = next(job for job in outcomes[1].emitted if job.event_type == DISABLED)
    assert json.loads(disabled.data) == {
        "endpoint": "a",
        "tenant": None,
        "reason": "2 consecutive failed deliveries",
        "consecutive_failures": 2,
    }
    stored = await any_store.event(disabled.event_id)
    assert stored is not None
    assert stored.type == DISABLED
    assert any_store.pending == len(kinds) == await any_store.count_pending()


async def test_no_event_about_a_delivery_of_an_operational_event(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a", kind="hookd.endpoint.enabled")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    [claimed] = await any_store.claim([job], lease_s=60)
    failed = msgspec.structs.replace(
        attempt_result("dlv_e1_a", "a", "failed", lease=claimed.lease, code=500),
        event_type="hookd.endpoint.enabled",
        notices=Notices(exhausted=(NoticeRoute(endpoint="b"),)),
    )
    [recorded] = await any_store.record([failed])
    assert recorded.applied
    assert recorded.emitted == ()


async def test_a_toggle_announces_a_change_only(any_store: Store) -> None:
    notices = Notices(
        tenant=None, disabled=(NoticeRoute(endpoint="b"),), enabled=(NoticeRoute(endpoint="b"),)
    )
    off = await any_store.set_endpoint_enabled("a", False, "by hand", notices=notices)
    again = await any_store.set_endpoint_enabled("a", False, "by hand", notices=notices)
    on = await any_store.set_endpoint_enabled("a", True, notices=notices)
    assert (off.changed, again.changed, on.changed) == (True, False, True)
    assert [j.event_type for j in (*off.emitted, *again.emitted, *on.emitted)] == [
        DISABLED,
        ENABLED,
    ]
    assert json.loads(off.emitted[0].data)["reason"] == "by hand"


async def test_ingest_follows_every_change_of_which_endpoints_are_live(any_store: Store) -> None:
    """Whatever changes endpoints (create, disable, enable, an auto-disable, delete, a YAML
    reconcile), the next ingest drops deliveries to those no longer live and keeps the rest."""

    async def routed(n: int, *endpoints: str) -> set[str]:
        [accepted] = await any_store.ingest([new_event(f"r{n}", *endpoints)])
        return {d.endpoint for d in accepted.deliveries}

    assert await routed(0, "a", "api") == {"a"}
    assert await any_store.create_endpoint("api", {"url": "http://x"}, []) is not None
    assert await routed(1, "a", "api") == {"a", "api"}
    await any_store.set_endpoint_enabled("api", False)
    assert await routed(2, "a", "api") == {"a"}
    await any_store.set_endpoint_enabled("api", True)
    assert await routed(3, "a", "api") == {"a", "api"}
    await finish(any_store, "dlv_r3_api", "failed", 500, disable_after=1)  # auto-disabled
    assert await routed(4, "a", "api") == {"a"}
    await any_store.set_endpoint_enabled("api", True)
    assert await any_store.delete_endpoint("api") is not None
    assert await routed(5, "a", "api") == {"a"}
    await any_store.reconcile_config_endpoints({"b": None})
    assert await routed(6, "a", "b") == {"b"}
    await any_store.reconcile_config_endpoints({"a": None, "b": None})
    assert await routed(7, "a", "b") == {"a", "b"}


# --------------------------------------------------------------------------- several processes


async def test_a_claim_without_limits_has_nothing_to_retry(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a")])
    [job] = await any_store.jobs(["dlv_e1_a"])
    claimed = await any_store.claim([job], lease_s=60, limits=Limits())
    assert [j.id for j in claimed] == ["dlv_e1_a"]
    assert claimed.retry_at is None
    again = await any_store.claim([job], lease_s=60, limits=Limits(max_in_flight=5))
    assert (list(again), again.retry_at) == ([], None)  # held by a claim: nothing to retry


async def test_ready_lists_due_deliveries_under_no_lease(any_store: Store) -> None:
    await any_store.ingest([new_event("e1", "a"), new_event("e2", "a", "b")])
    await any_store.set_endpoint_enabled("b", False)
    assert {i for i, _ in await any_store.ready(per_endpoint=100)} == {"dlv_e1_a", "dlv_e2_a"}
    [job] = await any_store.jobs(["dlv_e1_a"])
    await any_store.claim([job], lease_s=60)
    assert [i for i, _ in await any_store.ready(per_endpoint=100)] == ["dlv_e2_a"]
    await any_store.release(["dlv_e1_a"])
    assert {i for i, _ in await any_store.ready(per_endpoint=100)} == {"dlv_e1_a", "dlv_e2_a"}


async def test_this_process_is_a_live_node(any_store: Store) -> None:
    await any_store.heartbeat()
    nodes = await any_store.nodes()
    assert any_store.node_id in [n.id for n in nodes]
    me = next(n for n in nodes if n.id == any_store.node_id)
    assert me.host
    assert me.started_at <= me.last_seen_at <= time.time() + 1
    assert isinstance(await any_store.endpoints_version(), int)
    assert (await any_store.wait_changes(0.01)).endpoints is False  # nobody else is here


async def test_ready_leaves_fresh_work_alone_for_its_grace(any_store: Store) -> None:
    """What was just made due is not ready for others until ``grace_s`` has passed."""
    await any_store.ingest([new_event("e1", "a")])
    assert await any_store.ready(per_endpoint=10, grace_s=60) == []
    assert [i for i, _ in await any_store.ready(per_endpoint=10, grace_s=0)] == ["dlv_e1_a"]
