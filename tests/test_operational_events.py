"""hookd's own operational events (SPEC §11) and 410 Gone (SPEC §13), end to end through a real
receiver with their signatures verified: exhausted deliveries, endpoints disabled by
disable_after, by a 410 and by a call, enabled again; routed only to hookd.-prefixed patterns of
the concerned tenant; never about a delivery of a hookd.* event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from tests.support import (
    ADMIN,
    SECRET,
    Daemon,
    Received,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    running_daemon,
    wait_for,
)

POLICIES = (
    "  fragile: {delays: [], disable_after: 2}\n"
    "  patient: {delays: [1h], disable_on: []}\n"
    "  gone: {delays: [1h]}\n"
)


def ops_config(sink: Receiver) -> str:
    base = sink.url.removesuffix("/hook")
    endpoints = (
        endpoint("flaky", "URL/flaky", tenant="acme", events='["task.*"]', policy="fragile")
        + endpoint("acme-ops", "URL/acme-ops", tenant="acme", events='["hookd.*"]')
        + endpoint("globex-ops", "URL/globex-ops", tenant="globex", events='["hookd.*"]')
        + endpoint(
            "ops", "URL/ops", tenant='"*"', events='["hookd.endpoint.*", "hookd.delivery.*"]'
        )
        + endpoint("star", "URL/star", tenant='"*"')  # a plain "*" gets no hookd.* event
        + endpoint("retired", "URL/retired", tenant="acme", events='["gone.*"]', policy="gone")
        + endpoint("tolerant", "URL/tolerant", events='["keep.*"]', policy="patient")
        + endpoint("loud-ops", "URL/loud-ops", events='["hookd.*"]', policy="fragile")
    ).replace("URL", base)
    return config(endpoints, policies=POLICIES, extra=auth())


def answer(request: Received, n: int) -> int:
    return {"/flaky": 500, "/retired": 410, "/tolerant": 410, "/loud-ops": 500}.get(
        request.path, 200
    )


def notices(sink: Receiver, path: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The operational events that reached ``path``, verified as Standard Webhooks."""
    out = []
    for r in sink.requests:
        if r.path != path:
            continue
        Webhook(SECRET).verify(r.body, r.headers)
        body = json.loads(r.body)
        if kind is None or body["type"] == kind:
            out.append(body)
    return out


async def run(tmp_path: Path, sink: Receiver) -> Any:
    sink.decide = answer
    return running_daemon(tmp_path, ops_config(sink), headers=bearer(ADMIN))


async def test_an_exhausted_delivery_and_an_auto_disable_are_announced(
    tmp_path: Path, sink: Receiver
) -> None:
    async with await run(tmp_path, sink) as d:
        ids = []
        for n in range(2):
            status, body = await d.post_event("task.failed", {"n": n}, tenant="acme")
            assert status == 202
            ids.append(next(x["id"] for x in body["deliveries"] if x["endpoint"] == "flaky"))
        await wait_for(lambda: len(notices(sink, "/acme-ops", "hookd.delivery.exhausted")) == 2)
        await wait_for(lambda: notices(sink, "/acme-ops", "hookd.endpoint.disabled"))
        exhausted = notices(sink, "/acme-ops", "hookd.delivery.exhausted")
        assert {e["data"]["delivery"] for e in exhausted} == set(ids)
        first = exhausted[0]["data"]
        assert first == {
            "delivery": first["delivery"],
            "event": first["event"],
            "endpoint": "flaky",
            "tenant": "acme",
            "event_type": "task.failed",
            "attempts": 1,
            "last_status_code": 500,
            "last_error": "HTTP 500",
        }
        [disabled] = notices(sink, "/acme-ops", "hookd.endpoint.disabled")
        assert disabled["data"] == {
            "endpoint": "flaky",
            "tenant": "acme",
            "reason": "2 consecutive failed deliveries",
            "consecutive_failures": 2,
        }
        # the operator's "*" hookd.* endpoint gets them too; another tenant's and plain "*" not
        await wait_for(lambda: len(notices(sink, "/ops")) >= 3)
        assert not notices(sink, "/globex-ops")
        assert not [r for r in sink.requests if r.path == "/star" and b"hookd." in r.body]
        status, event = await d.request("GET", f"/v1/events/{disabled_event_id(sink)}")
        assert (status, event["tenant"], event["type"]) == (200, "acme", "hookd.endpoint.disabled")


def disabled_event_id(sink: Receiver) -> str:
    [r] = [r for r in sink.requests if r.path == "/acme-ops" and b"endpoint.disabled" in r.body]
    return r.headers["webhook-id"]


async def test_410_disables_at_once_unless_disable_on_is_empty(
    tmp_path: Path, sink: Receiver
) -> None:
    async with await run(tmp_path, sink) as d:
        retired = await d.send("gone.away", {}, tenant="acme")
        tolerant = await d.send("keep.going", {})
        [row] = await d.settled(retired["retired"])
        assert (row.status, row.attempt_count, row.last_status_code) == ("failed", 1, 410)
        _, ep = await d.request("GET", "/v1/endpoints/retired")
        assert ep["enabled"] is False
        assert "410" in ep["disabled_reason"]
        await wait_for(lambda: notices(sink, "/acme-ops", "hookd.endpoint.disabled"))
        [notice] = notices(sink, "/acme-ops", "hookd.endpoint.disabled")
        assert "410" in notice["data"]["reason"]
        # disable_on: [] and a retry policy that covers 410: just retried later, still enabled
        row = await wait_for(lambda: _attempted(d, tolerant["tolerant"]))
        assert (row.status, row.last_status_code) == ("pending", 410)
        _, kept = await d.request("GET", "/v1/endpoints/tolerant")
        assert kept["enabled"] is True


async def _attempted(d: Daemon, delivery_id: str) -> Any:
    row = await d.row(delivery_id)
    return row if row.attempt_count >= 1 else None


async def test_calls_that_disable_and_enable_are_announced(tmp_path: Path, sink: Receiver) -> None:
    async with await run(tmp_path, sink) as d:
        status, _ = await d.request(
            "POST", "/v1/endpoints/retired/disable", json={"reason": "maintenance"}
        )
        assert status == 200
        status, _ = await d.request("POST", "/v1/endpoints/retired/disable", json={})
        assert status == 200  # already disabled: no second notice
        status, _ = await d.request("POST", "/v1/endpoints/retired/enable")
        assert status == 200
        await wait_for(lambda: len(notices(sink, "/acme-ops")) == 2)
        kinds = [n["type"] for n in notices(sink, "/acme-ops")]
        assert sorted(kinds) == ["hookd.endpoint.disabled", "hookd.endpoint.enabled"]
        disabled = notices(sink, "/acme-ops", "hookd.endpoint.disabled")[0]["data"]
        assert (disabled["reason"], disabled["tenant"]) == ("maintenance", "acme")
        enabled = notices(sink, "/acme-ops", "hookd.endpoint.enabled")[0]["data"]
        assert enabled == {"endpoint": "retired", "tenant": "acme"}


async def test_no_operational_event_about_a_delivery_of_an_operational_event(
    tmp_path: Path, sink: Receiver
) -> None:
    """loud-ops receives hookd.* events and fails them all: its deliveries end failed, and it is
    disabled, but no hookd.delivery.exhausted is made about them (no loop)."""
    async with await run(tmp_path, sink) as d:
        await d.request("POST", "/v1/endpoints/tolerant/disable", json={"reason": "r1"})
        await d.request("POST", "/v1/endpoints/tolerant/enable")
        await wait_for(lambda: len([r for r in sink.requests if r.path == "/loud-ops"]) == 2)

        async def loud_done() -> bool:
            _, page = await d.request("GET", "/v1/deliveries?endpoint=loud-ops")
            return all(x["status"] == "failed" for x in page["items"]) and len(page["items"]) == 2

        await wait_for(loud_done)
        _, ep = await d.request("GET", "/v1/endpoints/loud-ops")
        assert ep["enabled"] is False  # fragile: disabled after 2 failed deliveries
        _, everything = await d.request("GET", "/v1/deliveries?type=hookd.delivery.exhausted")
        assert everything["items"] == []
