"""Delivery history, manual retry, replay and events through the admin API, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    ADMIN,
    Daemon,
    Receiver,
    auth,
    bearer,
    config,
    receiver,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

CONFIG = config(
    policies="  fast: {delays: [], timeout: 2s}\n"
    "  twice: {delays: [100ms], jitter: none, timeout: 2s}\n",
    extra=auth(),
)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(tmp_path, CONFIG, headers=bearer(ADMIN)) as d:
        yield d


async def endpoint(d: Daemon, endpoint_id: str, url: str, **settings: Any) -> None:
    """An API endpoint, on the single-attempt policy unless told otherwise."""
    await d.create_endpoint(id=endpoint_id, url=url, **{"policy": "fast", **settings})


# --------------------------------------------------------------------------- listing


async def test_list_filters_by_endpoint_status_type_event_and_code(
    daemon: Daemon, sink: Receiver
) -> None:
    await endpoint(daemon, "good", sink.url)
    async with receiver() as failing:
        failing.default = 500
        await endpoint(daemon, "bad", failing.url)
        _, one = await daemon.post_event("task.created", {"n": 1})
        _, two = await daemon.post_event("invoice.paid", {"n": 2})
        ids = [d["id"] for e in (one, two) for d in e["deliveries"]]
        await daemon.shown_settled(*ids)

    page = daemon.deliveries_page
    everything = await page("")
    assert len(everything["items"]) == 4
    assert everything["next_cursor"] is None
    assert [i["id"] for i in everything["items"]] == list(reversed(ids))  # newest first
    first = everything["items"][-1]
    assert set(first) >= {
        "id",
        "event_id",
        "endpoint",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "created_at",
    }
    assert first["created_at"].endswith("Z")

    def ids_of(p: dict[str, Any]) -> set[tuple[str, str]]:
        return {(i["endpoint"], i["event_type"]) for i in p["items"]}

    assert ids_of(await page("endpoint=bad")) == {
        ("bad", "task.created"),
        ("bad", "invoice.paid"),
    }
    assert ids_of(await page("status=failed")) == ids_of(await page("code=500"))
    assert ids_of(await page("code=5xx")) == ids_of(await page("endpoint=bad"))
    assert ids_of(await page("status=succeeded&type=task.*")) == {("good", "task.created")}
    assert ids_of(await page("type=invoice.paid&endpoint=good")) == {("good", "invoice.paid")}
    assert {i["event_id"] for i in (await page(f"event={one['id']}"))["items"]} == {one["id"]}
    assert (await page("status=pending"))["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("code=600", "code"),
        ("code=abc", "code"),
        ("cursor=not-a-cursor", "cursor"),
        ("staus=failed", "staus"),
    ],
)
async def test_list_rejects_bad_filters(daemon: Daemon, query: str, field: str) -> None:
    status, answer = await daemon.request("GET", f"/v1/deliveries?{query}")
    assert status == 400
    assert answer["error"]["field"] == field


async def test_pagination_is_stable_under_concurrent_inserts(
    daemon: Daemon, sink: Receiver
) -> None:
    """Walking pages while events keep arriving returns every older delivery exactly once."""
    await endpoint(daemon, "ep", sink.url)
    original = []
    for n in range(23):
        _, accepted = await daemon.post_event("x.y", {"n": n})
        original.append(accepted["deliveries"][0]["id"])

    stop = asyncio.Event()

    async def keep_inserting() -> None:
        n = 0
        while not stop.is_set():
            await daemon.post_event("x.new", {"n": n})
            n += 1

    inserter = asyncio.create_task(keep_inserting())
    seen: list[str] = []
    try:
        listing = await daemon.deliveries_page("limit=4&type=x.y")
        seen += [i["id"] for i in listing["items"]]
        while listing["next_cursor"]:
            await daemon.post_event("x.y", {"late": True})  # newer than the cursor: never seen
            listing = await daemon.deliveries_page(
                f"limit=4&type=x.y&cursor={listing['next_cursor']}"
            )
            seen += [i["id"] for i in listing["items"]]
    finally:
        stop.set()
        await inserter
    assert seen == list(reversed(original))


# --------------------------------------------------------------------------- one delivery


async def test_show_has_payload_headers_and_attempts(daemon: Daemon, sink: Receiver) -> None:
    await endpoint(
        daemon,
        "tv",
        sink.url,
        body="taskview",
        headers={"X-Team": "core", "X-Api-Token": "tok-123"},
        signing={"scheme": "hmac-sha256", "secret": "abc"},
    )
    sink.responses = [500]
    _, accepted = await daemon.post_event(
        "task.updated", {"id": 7}, timestamp="2024-05-01T12:00:00Z"
    )
    [delivery] = accepted["deliveries"]
    [shown] = await daemon.shown_settled(delivery["id"])
    assert shown["payload"] == {
        "event": "task.updated",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "id": 7,
    }
    headers = shown["request_headers"]
    assert headers["X-Team"] == "[redacted]"  # an endpoint's own header values are hidden
    assert headers["X-Api-Token"] == "[redacted]"
    assert headers["Content-Type"] == "application/json"
    [attempt] = shown["attempts"]
    assert attempt["n"] == 1
    assert attempt["status_code"] == 500
    assert attempt["error"] == "HTTP 500"
    assert attempt["response_body"] == "status 500"
    assert attempt["latency_ms"] >= 0
    assert attempt["started_at"].endswith("Z")
    assert "tok-123" not in str(shown)


async def test_unknown_delivery_and_event_are_404(daemon: Daemon) -> None:
    for path in ("/v1/deliveries/dlv_nope", "/v1/events/evt_nope"):
        status, answer = await daemon.request("GET", path)
        assert (status, answer["error"]["code"]) == (404, "not_found")
    status, _ = await daemon.request("POST", "/v1/deliveries/dlv_nope/retry")
    assert status == 404


async def test_event_shows_its_deliveries(daemon: Daemon, sink: Receiver) -> None:
    await endpoint(daemon, "a", sink.url)
    await endpoint(daemon, "b", sink.url)
    _, accepted = await daemon.post_event("x.y", {"k": [1, 2]}, id="order-1")
    status, event = await daemon.request("GET", "/v1/events/order-1")
    assert status == 200
    assert (event["id"], event["type"], event["data"]) == ("order-1", "x.y", {"k": [1, 2]})
    assert event["timestamp"].endswith("Z")
    assert event["created_at"].endswith("Z")
    assert [d["id"] for d in event["deliveries"]] == [d["id"] for d in accepted["deliveries"]]


# --------------------------------------------------------------------------- manual retry


async def test_manual_retry_of_a_failed_delivery_succeeds_and_keeps_history(
    daemon: Daemon, sink: Receiver
) -> None:
    await endpoint(daemon, "ep", sink.url)
    sink.responses = [500]
    _, accepted = await daemon.post_event("x.y", {})
    delivery_id = accepted["deliveries"][0]["id"]
    [failed] = await daemon.shown_settled(delivery_id)
    assert failed["status"] == "failed"

    status, answer = await daemon.request("POST", f"/v1/deliveries/{delivery_id}/retry")
    assert status == 202
    assert answer["id"] == delivery_id
    [done] = await daemon.shown_settled(delivery_id)
    assert done["status"] == "succeeded"
    assert [a["status_code"] for a in done["attempts"]] == [500, 200]
    assert sink.requests[0].headers["webhook-id"] == sink.requests[1].headers["webhook-id"]

    status, answer = await daemon.request("POST", f"/v1/deliveries/{delivery_id}/retry")
    assert status == 409
    assert "only failed deliveries" in answer["error"]["message"]


async def test_manual_retry_of_an_exhausted_delivery_gets_exactly_one_attempt(
    daemon: Daemon, sink: Receiver
) -> None:
    """Like a manual resend in Svix: the attempt count goes on, so a delivery that used up its
    policy (2 attempts) fails again after one more attempt instead of starting a new schedule."""
    await endpoint(daemon, "ep", sink.url, policy="twice")
    sink.responses = [500, 500, 500]  # then 200, which only a fresh schedule would reach
    _, accepted = await daemon.post_event("x.y", {})
    delivery_id = accepted["deliveries"][0]["id"]
    [failed] = await daemon.shown_settled(delivery_id)
    assert [a["status_code"] for a in failed["attempts"]] == [500, 500]
    status, _ = await daemon.request("POST", f"/v1/deliveries/{delivery_id}/retry")
    assert status == 202
    await wait_for(lambda: len(sink.requests) == 3)
    [again] = await daemon.shown_settled(delivery_id)
    assert (again["status"], again["attempt_count"]) == ("failed", 3)
    assert [a["status_code"] for a in again["attempts"]] == [500, 500, 500]


async def test_request_headers_show_signatures_and_hide_credentials(
    daemon: Daemon, sink: Receiver
) -> None:
    """Stored ``request_headers``: signature headers of every built-in scheme are visible
    (they are not secrets); every custom header value is redacted."""
    custom = {
        "Authorization": "Bearer t1",
        "Cookie": "c=1",
        "X-Api-Key": "k1",
        "X-Auth-Token": "t2",
        "X-Client-Secret": "s1",
        "X-Password": "p1",
        "X-Team": "core",
    }
    await endpoint(daemon, "sw", sink.url, events=["sw.*"], headers=custom)
    await endpoint(
        daemon, "hm", sink.url, events=["hm.*"], signing={"scheme": "hmac-sha256", "secret": "abc"}
    )
    await endpoint(daemon, "rs", sink.url, events=["rs.*"], signing={"scheme": "rsa-sha256"})
    shown: dict[str, dict[str, str]] = {}
    for kind in ("sw", "hm", "rs"):
        _, accepted = await daemon.post_event(f"{kind}.x", {})
        [done] = await daemon.shown_settled(accepted["deliveries"][0]["id"])
        shown[kind] = done["request_headers"]
    by_header = {"sw": "webhook-signature", "hm": "X-Webhook-Signature", "rs": "x-wh-signature"}
    for kind, header in by_header.items():
        value = shown[kind][header]
        assert value != "[redacted]"
        assert any(r.headers.get(header) == value for r in sink.requests)
    assert shown["sw"]["webhook-signature"].startswith("v1,")
    assert shown["hm"]["X-Webhook-Signature"].startswith("sha256=")
    for name in custom:
        assert shown["sw"][name] == "[redacted]"  # every custom header value is hidden


# --------------------------------------------------------------------------- replay


async def test_replay_requeues_failed_deliveries_in_the_window(
    daemon: Daemon, sink: Receiver
) -> None:
    await endpoint(daemon, "ep", sink.url)
    sink.default = 500
    ids = []
    for n in range(3):
        _, accepted = await daemon.post_event("x.y", {"n": n})
        ids.append(accepted["deliveries"][0]["id"])
    assert all(d["status"] == "failed" for d in await daemon.shown_settled(*ids))
    sink.default = 200

    future = "2999-01-01T00:00:00Z"
    status, answer = await daemon.request("POST", "/v1/endpoints/ep/replay", json={"since": future})
    assert (status, answer["queued"]) == (202, 0)
    status, answer = await daemon.request("POST", "/v1/endpoints/ep/replay", json={"since": "1h"})
    assert (status, answer["queued"]) == (202, 3)
    assert all(d["status"] == "succeeded" for d in await daemon.shown_settled(*ids))

    n = len(sink.requests)
    status, answer = await daemon.request(
        "POST", "/v1/endpoints/ep/replay", json={"status": "all", "since": "1h"}
    )
    assert (status, answer["queued"]) == (202, 3)
    await wait_for(lambda: len(sink.requests) == n + 3)
    first_ids = {r.headers["webhook-id"] for r in sink.requests[:3]}
    assert {r.headers["webhook-id"] for r in sink.requests[n:]} == first_ids


async def test_replay_delivers_events_missed_while_disabled(daemon: Daemon, sink: Receiver) -> None:
    await daemon.post_event("order.before", {})  # before the endpoint existed: not missed
    await endpoint(daemon, "late", sink.url, events=["order.*"])
    await endpoint(daemon, "other", sink.url + "/other")
    await daemon.request("POST", "/v1/endpoints/other/test")
    await daemon.request("POST", "/v1/endpoints/late/disable")
    missed = []
    for kind in ("order.one", "order.two", "user.one"):
        _, accepted = await daemon.post_event(kind, {})
        assert "late" not in [d["endpoint"] for d in accepted["deliveries"]]
        if kind.startswith("order."):
            missed.append(accepted["id"])
    await daemon.request("POST", "/v1/endpoints/late/enable")

    status, answer = await daemon.request("POST", "/v1/endpoints/late/replay", json={})
    assert status == 202
    assert answer == {"queued": 2, "requeued": 0, "created": 2}
    await wait_for(lambda: len([r for r in sink.requests if r.path == "/hook"]) == 2)
    got = [r.headers["webhook-id"] for r in sink.requests if r.path == "/hook"]
    assert sorted(got) == sorted(missed)
    listing = await daemon.deliveries_page("endpoint=late")
    assert {i["origin"] for i in listing["items"]} == {"replay"}

    _, again = await daemon.request("POST", "/v1/endpoints/late/replay", json={})
    assert again["created"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-13-01T00:00:00Z"}, "since"),
        ({"until": "1h"}, "until"),
    ],
)
async def test_replay_rejects_bad_bodies(
    daemon: Daemon, sink: Receiver, body: dict[str, Any], field: str
) -> None:
    await endpoint(daemon, "ep", sink.url)
    status, answer = await daemon.request("POST", "/v1/endpoints/ep/replay", json=body)
    assert (status, answer["error"]["field"]) == (400, field)
