"""``hookd endpoints …``, ``hookd deliveries …`` and ``hookd replay`` against a real daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    Daemon,
    Receiver,
    assert_one_line_error,
    config,
    endpoint,
    hmac_signing,
    hookd,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test here runs python -m hookd

CONFIG = config(
    endpoint("sink", "URL", policy="once", signing=hmac_signing()),
    policies="  once: {delays: []}\n",
)


async def _settled(d: Daemon, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries exist and none is pending; return them."""

    async def done() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await d.deliveries_page())["items"]
        ok = len(items) == count and all(i["status"] != "pending" for i in items)
        return items if ok else None

    result: list[dict[str, Any]] = await wait_for(done, timeout=15)
    return result


async def test_endpoints_list_and_show(tmp_path: Path, sink: Receiver) -> None:
    """``endpoints list`` prints one row per endpoint (or JSON); ``show`` prints its fields without
    the secret; an unknown id is one line."""
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        listing = await hookd("endpoints", "list", "--url", d.url)
        assert listing.code == 0, listing.err
        header, row = listing.out.splitlines()
        assert header.split()[:3] == ["ID", "STATE", "URL"]
        assert row.split() == [
            "sink",
            "enabled",
            sink.url,
            "*",
            "hmac-sha256",
            "once",
            "config",
            "0",
        ]
        raw = json.loads((await hookd("endpoints", "list", "--json", "--url", d.url)).out)
        assert [ep["id"] for ep in raw["items"]] == ["sink"]

        show = await hookd("endpoints", "show", "sink", "--url", d.url)
        assert show.code == 0, show.err
        fields = dict(line.split(None, 1) for line in show.out.splitlines())
        assert fields["url"] == sink.url
        assert fields["signing"] == "hmac-sha256"
        assert "topsecret" not in show.out
        missing = await hookd("endpoints", "show", "nope", "--url", d.url)
        assert_one_line_error(missing, 1, "HTTP 404", "nope")


async def test_disable_and_enable_an_endpoint(tmp_path: Path, sink: Receiver) -> None:
    """``endpoints disable --reason`` shows in ``status`` and stops new deliveries; ``enable``
    brings them back."""
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        off = await hookd("endpoints", "disable", "sink", "--reason", "maintenance", "--url", d.url)
        assert off.code == 0, off.err
        assert "sink: disabled" in off.out
        status = await hookd("status", "--url", d.url)
        row = next(line for line in status.out.splitlines() if line.startswith("sink "))
        assert row.split()[1] == "disabled"
        assert "maintenance" in row
        skipped = await hookd("send", "task.updated", "--url", d.url)
        assert "no enabled endpoint subscribes" in skipped.out

        on = await hookd("endpoints", "enable", "sink", "--url", d.url)
        assert on.code == 0, on.err
        assert "sink: enabled" in on.out
        await d.post_event("task.updated")
        await wait_for(lambda: sink.requests)


async def test_endpoint_test_sends_a_hookd_test_event(tmp_path: Path, sink: Receiver) -> None:
    """``endpoints test`` queues a ``hookd.test`` event to that endpoint and names the delivery."""
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        result = await hookd("endpoints", "test", "sink", "--url", d.url)
        assert result.code == 0, result.err
        assert "hookd deliveries show dlv_" in result.out
        await wait_for(lambda: sink.requests)
        assert json.loads(sink.requests[0].body)["type"] == "hookd.test"


async def test_rotate_secret_prints_the_new_secret_once(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        owned = await hookd("endpoints", "rotate-secret", "sink", "--url", d.url)
        assert_one_line_error(owned, 1, "HTTP 409")

        status, created = await d.request(
            "POST", "/v1/endpoints", json={"id": "api", "url": sink.url}
        )
        assert status == 201, created
        result = await hookd("endpoints", "rotate-secret", "api", "--grace", "1h", "--url", d.url)
        assert result.code == 0, result.err
        secret = next(line for line in result.out.splitlines() if line.startswith("whsec_"))
        assert secret != created["secret"]
        assert "keeps signing alongside it for 1h" in result.out
        shown = await hookd("endpoints", "show", "api", "--url", d.url)
        assert secret not in shown.out
        bad = await hookd("endpoints", "rotate-secret", "api", "--grace", "soon", "--url", d.url)
        assert bad.code == 2


async def test_deliveries_list_filters_pages_and_shows(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        sink.responses = [500]
        for n in range(3):
            await d.post_event("task.updated" if n else "task.created", {"n": n})
        items = await _settled(d, 3)
        [failed] = [i for i in items if i["status"] == "failed"]

        listing = await hookd("deliveries", "list", "--url", d.url)
        assert listing.code == 0, listing.err
        assert len(listing.out.splitlines()) == 4  # header and three rows
        only = json.loads(
            (await hookd("deliveries", "list", "--status", "failed", "--json", "--url", d.url)).out
        )
        assert [i["id"] for i in only["items"]] == [failed["id"]]
        typed = await hookd(
            "deliveries", "list", "--type", "task.created", "--json", "--url", d.url
        )
        assert [i["event_type"] for i in json.loads(typed.out)["items"]] == ["task.created"]

        page = await hookd("deliveries", "list", "--limit", "1", "--url", d.url)
        assert len(page.out.splitlines()) == 2
        assert "--all" in page.err
        everything = await hookd(
            "deliveries", "list", "--limit", "1", "--all", "--json", "--url", d.url
        )
        merged = json.loads(everything.out)
        assert sorted(i["id"] for i in merged["items"]) == sorted(i["id"] for i in items)
        assert merged["next_cursor"] is None

        show = await hookd("deliveries", "show", failed["id"], "--url", d.url)
        assert show.code == 0, show.err
        assert "failed after 1 attempt" in show.out
        attempt = next(line for line in show.out.splitlines() if line.startswith("1 "))
        assert " 500 " in attempt
        payload = show.out.split("payload:\n", 1)[1]
        assert json.loads(payload)["type"] == failed["event_type"]
        raw = json.loads(
            (await hookd("deliveries", "show", failed["id"], "--json", "--url", d.url)).out
        )
        assert raw["attempts"][0]["status_code"] == 500


async def test_retry_requeues_a_failed_delivery(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        sink.responses = [500]
        await d.post_event("task.updated")
        [failed] = await _settled(d, 1)
        assert failed["status"] == "failed"

        result = await hookd("deliveries", "retry", failed["id"], "--url", d.url)
        assert result.code == 0, result.err
        await wait_for(lambda: len(sink.requests) == 2)
        [again] = await _settled(d, 1)
        assert again["status"] == "succeeded"

        twice = await hookd("deliveries", "retry", failed["id"], "--url", d.url)
        assert_one_line_error(twice, 1, "HTTP 409")


async def test_unknown_delivery_is_one_line_with_the_api_message(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", "http://127.0.0.1:9/x")) as d:
        for action in ("show", "retry"):
            result = await hookd("deliveries", action, "dlv_nope", "--url", d.url)
            assert_one_line_error(result, 1, "dlv_nope", "HTTP 404 not_found")


async def test_replay_requeues_failed_deliveries(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        sink.responses = [500]
        await d.post_event("task.updated")
        await _settled(d, 1)

        result = await hookd("replay", "sink", "--since", "1h", "--url", d.url)
        assert result.code == 0, result.err
        assert "1 delivery queued" in result.out
        await wait_for(lambda: len(sink.requests) == 2)
        again = await hookd("replay", "sink", "--status", "failed", "--json", "--url", d.url)
        assert json.loads(again.out)["queued"] == 0
