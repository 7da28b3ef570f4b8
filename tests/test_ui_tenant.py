"""The /ui page in tenant mode, in real headless Chromium: a portal link's token is taken from
the fragment and removed from the address bar, and nothing of another tenant ever reaches the
page (every response it receives is checked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import ADMIN, Receiver, auth, bearer, config, endpoint, running_daemon
from tests.support.browser import screenshot_dir


async def test_a_portal_link_shows_its_tenant_only(
    tmp_path: Path, sink: Receiver, browser: Any, request: pytest.FixtureRequest
) -> None:
    base = sink.url.removesuffix("/hook")
    text = config(
        endpoint("acme-hooks", f"{base}/acme", tenant="acme")
        + endpoint("globex-hooks", f"{base}/globex", tenant="globex")
        + endpoint("ops", f"{base}/ops", tenant='"*"'),
        extra=auth(),
    )
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        for tenant in ("acme", "globex"):
            await d.post_event("invoice.paid", {"for": tenant}, tenant=tenant)
        status, minted = await d.request("POST", "/v1/tenants/acme/tokens", json={"ttl": "1h"})
        assert status == 201
        page = await browser.new_page()
        bodies: list[str] = []

        async def keep(response: Any) -> None:
            if response.url.startswith(d.url + "/v1/"):
                bodies.append(await response.text())

        page.on("response", keep)
        await page.goto(d.url + minted["portal_path"])
        await page.wait_for_selector("#endpoints tbody tr")
        await page.wait_for_selector("#deliveries tbody tr")
        assert "#token" not in page.url  # taken out of the address bar
        stored = await page.evaluate("sessionStorage.getItem('hookd-token')")
        assert stored == minted["token"]  # kept for this tab only
        assert "Tenant acme" in await page.inner_text("#who")
        endpoints = await page.inner_text("#endpoints tbody")
        deliveries = await page.inner_text("#deliveries tbody")
        assert "acme-hooks" in endpoints
        assert "acme-hooks" in deliveries
        await page.screenshot(path=str(screenshot_dir(request) / "tenant-portal.png"))
        await page.close()
    assert bodies, "the page fetched nothing"
    every = "\n".join(bodies)
    for foreign in ("globex", "ops"):
        assert foreign not in every, foreign
    assert all("forbidden" not in b for b in bodies)  # it asked for nothing it may not see
    assert any(json.loads(b).get("items") for b in bodies if b.startswith("{"))
