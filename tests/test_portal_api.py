"""What the tenant portal relies on from the API: a tenant sees the test deliveries it sends
to its own endpoints (their event carries the endpoint's tenant)."""

from __future__ import annotations

from pathlib import Path

from tests.support import ADMIN, Receiver, auth, bearer, config, endpoint, running_daemon


async def test_a_tenant_sees_the_test_delivery_it_sent(tmp_path: Path, sink: Receiver) -> None:
    text = config(endpoint("acme-hooks", sink.url, tenant="acme"), extra=auth())
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        status, minted = await d.request("POST", "/v1/tenants/acme/tokens", json={})
        assert status == 201
        acme = bearer(minted["token"])
        status, queued = await d.request("POST", "/v1/endpoints/acme-hooks/test", headers=acme)
        assert status == 202, queued
        delivery_id = queued["delivery_id"]
        await d.settled(delivery_id)
        status, shown = await d.request("GET", f"/v1/deliveries/{delivery_id}", headers=acme)
        assert status == 200, shown
        assert (shown["event_type"], shown["tenant"], shown["status"]) == (
            "hookd.test",
            "acme",
            "succeeded",
        )
        status, listed = await d.request("GET", "/v1/deliveries", headers=acme)
        assert [x["id"] for x in listed["items"]] == [delivery_id]
        status, event = await d.request("GET", f"/v1/events/{queued['event_id']}", headers=acme)
        assert (status, event["tenant"]) == (200, "acme")
