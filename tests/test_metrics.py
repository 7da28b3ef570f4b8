"""``/metrics`` (Prometheus text, no token) and ``/v1/status`` (SPEC §7), on a running daemon."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ADMIN,
    Daemon,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    hmac_signing,
    running_daemon,
    wait_for,
)

CONFIG = config(
    endpoint("good", "URL", policy="once", signing=hmac_signing("s"))
    + endpoint("bad", "URL/bad", policy="once", signing=hmac_signing("s")),
    policies="  once: {delays: [], timeout: 2s}\n",
    extra=auth(),
)


async def scrape(d: Daemon) -> dict[str, float]:
    """Every sample of ``/metrics`` by name and labels, fetched without a token."""
    async with aiohttp.ClientSession() as anon, anon.get(d.url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_count_ingest_outcomes_latency_queues_and_commits(
    tmp_path: Path, sink: Receiver
) -> None:
    """/metrics (no token) counts ingests, deliveries, attempts by result and their latency, and
    shows queues and disabled endpoints."""
    answers = {"/hook": 200, "/hook/bad": 500}

    def answer(request: web.Request) -> web.Response:
        return web.Response(status=answers[request.path])

    sink.responses = [answer, answer, answer, answer]
    config = CONFIG.replace("URL", sink.url)
    async with running_daemon(tmp_path, config, headers=bearer(ADMIN)) as d:
        before = await scrape(d)
        for name in (
            "hookd_events_ingested_total",
            "hookd_deliveries_created_total",
            'hookd_deliveries_finished_total{status="succeeded"}',
            'hookd_deliveries_finished_total{status="failed"}',
            'hookd_attempts_total{result="success"}',
            "hookd_attempt_duration_seconds_count",
            "hookd_deliveries_pending",
            "hookd_deliveries_scheduled",
            "hookd_deliveries_in_flight",
            "hookd_endpoints_disabled",
            "hookd_wheel_size",
            "hookd_store_commit_batch_ops_count",
            'hookd_retention_purged_total{kind="events"}',
        ):
            assert name in before, name
        assert before["hookd_events_ingested_total"] == 0

        await d.post_event("a.b", {})
        await d.post_event("a.c", {})
        await wait_for(lambda: len(sink.requests) == 4)

        async def finished() -> dict[str, float] | None:
            now = await scrape(d)
            done = now['hookd_deliveries_finished_total{status="failed"}'] == 2
            return now if done and now["hookd_deliveries_pending"] == 0 else None

        after = await wait_for(finished)
        assert after["hookd_events_ingested_total"] == 2
        assert after["hookd_deliveries_created_total"] == 4
        assert after['hookd_deliveries_finished_total{status="succeeded"}'] == 2
        assert after['hookd_attempts_total{result="success"}'] == 2
        assert after['hookd_attempts_total{result="http_error"}'] == 2
        assert after["hookd_attempt_duration_seconds_count"] == 4
        assert after["hookd_store_commit_batch_ops_count"] > 0
        assert after["hookd_deliveries_in_flight"] == 0

        await d.request("POST", "/v1/endpoints/bad/disable")
        assert (await scrape(d))["hookd_endpoints_disabled"] == 1


async def test_status_has_the_spec_fields(tmp_path: Path, sink: Receiver) -> None:
    """/v1/status reports version, uptime, delivery counts, queues, the database size and each
    endpoint."""
    config = CONFIG.replace("URL", sink.url)
    async with running_daemon(tmp_path, config, headers=bearer(ADMIN)) as d:
        sink.default = 200
        await d.post_event("a.b", {})
        await wait_for(lambda: len(sink.requests) == 2)
        await d.request("POST", "/v1/endpoints/bad/disable")

        async def settled() -> dict[str, object] | None:
            status, body = await d.request("GET", "/v1/status")
            assert status == 200
            return body if body["deliveries"]["succeeded"] == 2 else None

        body = await wait_for(settled)
        assert isinstance(body["version"], str)
        assert body["uptime_s"] >= 0
        assert body["deliveries"] == {"pending": 0, "succeeded": 2, "failed": 0}
        assert (body["scheduled"], body["in_flight"], body["due"]) == (0, 0, 0)
        assert body["db_bytes"] > 0
        endpoints = {e["id"]: e for e in body["endpoints"]}
        assert endpoints["good"]["enabled"] is True
        assert endpoints["bad"]["enabled"] is False
        assert endpoints["bad"]["consecutive_failures"] == 0
