"""The operator's pages in real headless Chromium, against a real daemon with history: sign in,
read the overview and its chart, filter deliveries to failed ones, open one and retry it until
it succeeds, disable and enable an endpoint, rotate a secret (the new one really signs), edit
and delete an API endpoint; readable on a phone, in dark mode, in the viewer's time zone.
Screenshots of each page go under the test's output directory (and to docs/screenshots with
HOOKD_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from standardwebhooks.webhooks import Webhook

from tests.support import (
    ADMIN,
    Daemon,
    Receiver,
    an_hour_of_attempts,
    auth,
    bearer,
    config,
    endpoint,
    opened_store,
    running_daemon,
    seed_attempts,
)
from tests.support.browser import LAPTOP, PHONE, Watch, shoot

pytestmark = pytest.mark.slow  # real Chromium

FAILING = {"on": True}


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    """``shop`` (acme) always answers 200; ``flaky`` (globex) answers 500 while FAILING is
    on, with no retries; ``billing`` (every tenant's orders) is made through the API. Six
    orders, three for each tenant: 12 attempts, the 3 to flaky failed. ``crm`` (acme) has an
    hour of history, and gets no orders."""
    FAILING["on"] = True
    sink.decide = lambda hit, n: 500 if hit.path == "/flaky" and FAILING["on"] else 200
    async with opened_store(tmp_path / "hookd.db") as store:
        await store.reconcile_config_endpoints({"shop": "acme", "flaky": "globex", "crm": "acme"})
        await seed_attempts(store, "crm", an_hour_of_attempts(time.time()), tenant="acme")
    base = sink.url.removesuffix("/hook")
    text = config(
        endpoint("shop", f"{base}/shop", tenant="acme")
        + endpoint("flaky", f"{base}/flaky", tenant="globex", policy="once")
        + endpoint("crm", f"{base}/crm", tenant="acme", events='["crm.*"]'),
        policies="  once: {delays: []}\n",
        extra=auth(),
    )
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        await d.create_endpoint(id="billing", url=f"{base}/billing", events=["order.*"], tenant="*")
        ids = []
        for n in range(6):
            tenant = "acme" if n % 2 else "globex"
            ids.append(await d.send("order.created", {"order": n, "total": 10 * n}, tenant=tenant))
        await d.settled(*[x for i in ids for k, x in i.items() if k != "event"])
        yield d


async def signed_in(browser: Any, d: Daemon, **context: Any) -> tuple[Any, Watch]:
    ctx = await browser.new_context(viewport=LAPTOP, **context)
    page = await ctx.new_page()
    page.set_default_timeout(10_000)
    watch = Watch(page, d.url)
    await page.goto(d.url + "/ui/")
    await page.get_by_label("Admin or tenant token").fill(ADMIN)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("svg.chart")
    return page, watch


async def test_the_operator_overview_shows_counts_and_a_chart_of_the_last_hour(
    daemon: Daemon, browser: Any, request: pytest.FixtureRequest
) -> None:
    page, watch = await signed_in(browser, daemon)
    status, stats = await daemon.request("GET", "/v1/stats?window=1h")
    assert status == 200
    crm = sum(1 for _ in an_hour_of_attempts(time.time()))
    assert stats["attempts"] == 12 + crm
    chart = page.locator("svg.chart")
    assert int(await chart.get_attribute("data-total") or -1) == stats["attempts"]
    assert int(await chart.get_attribute("data-failed") or -1) == stats["failed"]
    bars = page.locator("svg.chart g.bar")
    assert await bars.count() == 61  # one bar a minute
    heights = [
        (
            int(await b.get_attribute("data-succeeded") or 0),
            int(await b.get_attribute("data-failed") or 0),
        )
        for b in await bars.all()
    ]
    # the page's bars are the API's minutes (a minute may have turned between the two reads)
    page_minutes = [s + f for s, f in heights if s + f]
    api_minutes = [m["succeeded"] + m["failed"] for m in stats["by_minute"]]
    assert page_minutes == [n for n in api_minutes if n]
    assert sum(1 for s, f in heights if s + f) > 50  # the hour's history, minute by minute
    described = await chart.get_attribute("aria-labelledby") or ""
    summary = await page.locator(f"#{described.split()[1]}").text_content()
    expected = (
        f"{stats['attempts']} attempts: {stats['succeeded']} succeeded, {stats['failed']} failed"
    )
    assert expected in (summary or "")
    status, counts = await daemon.request("GET", "/v1/status")
    cards = await page.locator(".cards").first.inner_text()
    assert f"Failed\n{counts['deliveries']['failed']}" in cards
    assert f"Succeeded\n{counts['deliveries']['succeeded']}" in cards
    tenants = await page.locator("#tenants").inner_text()
    assert "globex" in tenants
    assert "100%" in tenants  # globex's three attempts all failed (acme's crm had some too)
    await shoot(page, request, "overview", docs=True)
    assert "Times are shown in your time zone" in await page.inner_text("footer")
    assert watch.errors == []  # no script error, no CSP violation


async def test_filter_to_failed_open_one_and_retry_it_until_it_succeeds(
    daemon: Daemon, browser: Any, request: pytest.FixtureRequest
) -> None:
    page, watch = await signed_in(browser, daemon)
    await page.get_by_role("link", name="Deliveries").click()
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_label("Endpoint").select_option("flaky")
    await page.get_by_role("button", name="Apply").click()
    await expect(page).to_have_url(re.compile(r"#/deliveries\?status=failed&endpoint=flaky$"))
    rows = page.locator("#deliveries tbody tr")
    await expect(rows).to_have_count(3)
    for row in await rows.all():
        assert "failed" in await row.inner_text()
        assert "flaky" in await row.inner_text()
    await shoot(page, request, "deliveries")
    first = rows.first.locator("a[href^='#/deliveries/']")
    delivery_id = await first.inner_text()
    await first.click()
    await page.wait_for_selector("#attempts tbody tr")
    shown = await daemon.delivery(delivery_id)
    payload = json.loads(await page.locator("pre.payload").inner_text())
    assert payload == shown["payload"]
    assert payload["data"]["order"] in range(6)
    headers = await page.locator("main").inner_text()
    assert "webhook-signature" in headers
    assert "500" in await page.locator("#attempts").inner_text()
    await shoot(page, request, "delivery")
    FAILING["on"] = False
    await page.get_by_role("button", name=f"Retry delivery {delivery_id}").click()
    await page.locator("#delivery-status").get_by_text("succeeded").wait_for()
    assert (await daemon.delivery(delivery_id))["status"] == "succeeded"
    assert await page.locator("#attempts tbody tr").count() == 2
    assert watch.errors == []


async def test_disable_and_enable_an_endpoint_and_rotate_a_secret(
    daemon: Daemon, sink: Receiver, browser: Any, request: pytest.FixtureRequest
) -> None:
    page, watch = await signed_in(browser, daemon)
    await page.get_by_role("link", name="Endpoints").click()
    await page.wait_for_selector("#endpoints tbody tr")
    await shoot(page, request, "endpoints")
    await page.get_by_role("button", name="Disable shop").click()
    await page.get_by_role("button", name="Enable shop").wait_for()
    assert (await daemon.endpoint_status("shop"))["enabled"] is False
    assert "disabled" in await page.locator("#endpoints tbody tr", has_text="shop").inner_text()
    await page.get_by_role("button", name="Enable shop").click()
    await page.get_by_role("button", name="Disable shop").wait_for()
    assert (await daemon.endpoint_status("shop"))["enabled"] is True

    await page.get_by_role("link", name="billing").click()
    await page.get_by_role("button", name="Rotate secret").click()
    dialog = page.locator("dialog[open]")
    await dialog.get_by_role("button", name="Rotate secret").click()
    secret = await dialog.locator("input[data-secret]").input_value()
    assert secret.startswith("whsec_")
    await shoot(page, request, "rotated-secret")
    await dialog.get_by_role("button", name="Done").click()
    sink.clear()
    await page.get_by_role("button", name="Send a test event to billing").click()
    [hit] = await sink.received(1)
    assert hit.path == "/billing"
    Webhook(secret).verify(hit.body, hit.headers)  # the new secret, shown once, signs
    await shoot(page, request, "endpoint")
    assert watch.errors == []


async def test_edit_and_delete_an_api_endpoint_with_confirmation(
    daemon: Daemon, browser: Any
) -> None:
    page, watch = await signed_in(browser, daemon)
    await page.goto(daemon.url + "/ui/#/endpoints/billing")
    await page.get_by_role("button", name="Edit").click()
    dialog = page.locator("dialog[open]")
    await dialog.get_by_label("Event types").fill("order.*, refund.issued")
    await dialog.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved billing.").wait_for()
    status, body = await daemon.request("GET", "/v1/endpoints/billing")
    assert (status, body["events"]) == (200, ["order.*", "refund.issued"])
    await dialog.get_by_label("URL").wait_for(state="detached")
    await page.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Cancel").click()  # a second thought: nothing goes
    assert (await daemon.request("GET", "/v1/endpoints/billing"))[0] == 200
    await page.get_by_role("button", name="Delete").click()
    assert "all of its delivery history" in await dialog.inner_text()
    await dialog.get_by_role("button", name="Delete endpoint").click()
    await expect(page).to_have_url(re.compile(r"#/endpoints$"))
    assert (await daemon.request("GET", "/v1/endpoints/billing"))[0] == 404
    await page.get_by_text("Deleted billing.").wait_for()
    assert watch.errors == []


async def test_a_yaml_endpoint_offers_no_edit_and_an_api_error_is_shown_readably(
    daemon: Daemon, browser: Any
) -> None:
    page, _ = await signed_in(browser, daemon)
    await page.goto(daemon.url + "/ui/#/endpoints/shop")
    await page.get_by_role("button", name="Disable").wait_for()
    for action in ("Edit", "Rotate secret", "Delete"):
        assert await page.get_by_role("button", name=action).is_disabled()
    await page.goto(daemon.url + "/ui/#/endpoints/nope")
    alert = page.locator("#messages .alert")
    await alert.wait_for()
    assert "Not found: No endpoint with id 'nope'." in await alert.inner_text()
    await page.goto(daemon.url + "/ui/#/deliveries?code=abc")
    await alert.wait_for()
    assert "code" in await alert.inner_text()


async def test_the_pages_fit_a_phone_in_dark_mode_in_the_viewers_time_zone(
    daemon: Daemon, browser: Any, request: pytest.FixtureRequest
) -> None:
    page, watch = await signed_in(
        browser, daemon, color_scheme="dark", timezone_id="Asia/Tokyo", locale="en-GB"
    )
    await page.set_viewport_size(PHONE)
    for route, ready, name in (
        ("#/overview", "svg.chart", "overview-phone-dark"),
        ("#/endpoints", "#endpoints tbody tr", "endpoints-phone-dark"),
        ("#/deliveries", "#deliveries tbody tr", "deliveries-phone-dark"),
    ):
        await page.goto(daemon.url + "/ui/" + route)
        await page.wait_for_selector(ready)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{route} scrolls sideways ({width}px)"
        await shoot(page, request, name)
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"  # the dark palette
    first = page.locator("#deliveries tbody tr time").first
    iso = await first.get_attribute("datetime") or ""
    tokyo = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo:%H:%M:%S}" in await first.inner_text()
    assert "Asia/Tokyo" in await page.inner_text("footer")
    assert watch.errors == []


async def test_every_control_has_a_label_and_the_keyboard_reaches_the_pages(
    daemon: Daemon, browser: Any
) -> None:
    page, _ = await signed_in(browser, daemon)
    for route in ("#/deliveries", "#/endpoints", "#/filters"):
        await page.goto(daemon.url + "/ui/" + route)
        await page.wait_for_selector("main form, main table")
        unlabelled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
               .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
               .map((el) => el.name || el.id)"""
        )
        assert unlabelled == [], route
    await page.goto(daemon.url + "/ui/#/overview")
    await page.reload()  # a fresh page: the token is kept for the tab
    await page.wait_for_selector("svg.chart")
    await page.keyboard.press("Tab")  # the skip link comes first
    assert await page.evaluate("document.activeElement.id") == "skip"
    for _ in range(8):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Deliveries":
            break
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#deliveries")
    outline = await page.evaluate(
        "(() => { const a = document.querySelector('nav a'); a.focus();"
        " return getComputedStyle(a).outlineStyle; })()"
    )
    assert outline == "solid"  # focus is visible
