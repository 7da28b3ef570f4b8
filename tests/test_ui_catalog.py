"""The event-type catalog page and the filter editor in real headless Chromium (SPEC §9, §10):
with the routes, the catalog lists each type with its schema, the add-endpoint form offers the
types, and the editor tries a filter against a sample event (matches, does not match, and a
filter that is not valid, named); without them (a hookd that answers 404), both pages say so
in a sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookd import config as configuration
from hookd.errors import ConfigError
from tests.support import (
    ADMIN,
    Daemon,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    running_daemon,
    write_config,
)
from tests.support.browser import LAPTOP, Watch, shoot

pytestmark = pytest.mark.slow  # real Chromium

CATALOG = """\
event_types:
  types:
    invoice.paid:
      description: An invoice was paid
      schema: {type: object, required: [amount], properties: {amount: {type: number}}}
    invoice.voided: {description: An invoice was voided, deprecated: true}
"""


def catalog_config(sink: Receiver) -> str:
    return config(endpoint("shop", sink.url, tenant="acme"), extra=auth() + CATALOG)


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    text = catalog_config(sink)
    try:
        configuration.load(write_config(tmp_path, text, name="probe"))
    except ConfigError as exc:
        pytest.skip(f"this hookd's configuration has no event_types yet (SPEC §10): {exc}")
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        if (await d.request("GET", "/v1/event-types"))[0] == 404:
            pytest.skip("this hookd has no GET /v1/event-types yet (SPEC §10)")
        yield d


async def open_page(browser: Any, d: Daemon, route: str, token: str = ADMIN) -> tuple[Any, Watch]:
    context = await browser.new_context(viewport=LAPTOP)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch(page, d.url)
    await page.goto(d.url + "/ui/")
    await page.evaluate("(t) => sessionStorage.setItem('hookd-token', t)", token)
    await page.goto(d.url + "/ui/" + route)
    return page, watch


async def test_the_catalog_lists_each_type_with_its_schema(
    daemon: Daemon, browser: Any, request: pytest.FixtureRequest
) -> None:
    page, watch = await open_page(browser, daemon, "#/event-types")
    rows = page.locator("#event-types tbody tr")
    await rows.first.wait_for()
    text = await page.inner_text("#event-types")
    assert "invoice.paid" in text
    assert "An invoice was paid" in text
    voided = await page.locator("#event-types tbody tr", has_text="invoice.voided").inner_text()
    assert "deprecated" in voided
    await page.get_by_text("Show schema").first.click()
    assert '"required"' in await page.locator("#event-types pre").first.inner_text()
    await shoot(page, request, "event-types")
    await page.goto(daemon.url + "/ui/#/endpoints")
    await page.get_by_role("button", name="Add endpoint").click()
    dialog = page.locator("dialog[open]")
    await dialog.get_by_role("checkbox", name="invoice.paid").check()
    await dialog.get_by_label("More patterns").fill("")
    await dialog.get_by_label("URL").fill(daemon.url + "/nowhere")
    await dialog.get_by_role("button", name="Add endpoint").click()
    await dialog.locator("input[data-secret]").wait_for()
    status, listed = await daemon.request("GET", "/v1/endpoints")
    assert status == 200
    assert ["invoice.paid"] in [e["events"] for e in listed["items"]]
    assert watch.errors == []


@pytest.mark.parametrize("as_tenant", [False, True])
async def test_the_filter_editor_tries_a_filter_against_a_sample_event(
    daemon: Daemon, browser: Any, request: pytest.FixtureRequest, as_tenant: bool
) -> None:
    token = ADMIN
    if as_tenant:
        status, minted = await daemon.request("POST", "/v1/tenants/acme/tokens", json={})
        assert status == 201
        token = minted["token"]
    page, watch = await open_page(browser, daemon, "#/filters", token)
    result = page.locator("#filter-result")
    await page.get_by_label("Filter", exact=True).fill('{"data.amount": {"$gte": 100}}')
    await page.get_by_label("Sample event type").fill("invoice.paid")
    await page.get_by_label("Sample data (JSON)").fill('{"amount": 250}')
    await page.get_by_role("button", name="Test filter").click()
    await result.get_by_text("matches: it would be delivered").wait_for()
    await page.get_by_label("Sample data (JSON)").fill('{"amount": 5}')
    await page.get_by_role("button", name="Test filter").click()
    await result.get_by_text("does not match").wait_for()
    if not as_tenant:
        await shoot(page, request, "filters")
    await page.get_by_label("Filter", exact=True).fill('{"data.amount": {"$gtt": 1}}')
    await page.get_by_role("button", name="Test filter").click()
    await result.get_by_text("The filter is not valid").wait_for()
    assert "$gtt" in await result.inner_text()
    await page.get_by_label("Sample data (JSON)").fill("{not json")
    await page.get_by_role("button", name="Test filter").click()
    await result.get_by_text("Sample data is not valid JSON").wait_for()
    assert watch.errors == []


async def test_without_the_routes_both_pages_say_they_are_not_available(
    tmp_path: Path, sink: Receiver, browser: Any
) -> None:
    text = config(endpoint("shop", sink.url), extra=auth())
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        if (await d.request("GET", "/v1/event-types"))[0] != 404:
            pytest.skip("this hookd has the catalog routes: the tests above cover them")
        page, watch = await open_page(browser, d, "#/event-types")
        message = page.locator(".unavailable")
        await message.wait_for()
        assert "The event-type catalog is not available on this hookd." in (
            await message.inner_text()
        )
        await page.goto(d.url + "/ui/#/filters")
        await page.get_by_role("button", name="Test filter").click()
        await page.locator("#filter-result .unavailable").wait_for()
        assert "Trying filters is not available" in await page.inner_text("#filter-result")
        assert watch.errors == []
