"""The stats routes (SPEC §14) on a running daemon: ``GET /v1/endpoints/{id}/stats`` for an
admin and for the endpoint's own tenant (404 for another's), ``GET /v1/stats`` for an admin
only, the window rules, and ``retrying`` in ``/v1/status``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
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
    endpoint,
    opened_store,
    running_daemon,
    seed_attempts,
    wait_for,
)


@pytest.fixture
async def seeded_at(tmp_path: Path) -> float:
    """Known attempts, recorded before the daemon starts (so it has nothing left to attempt):
    acme-hooks has latencies 10..100 ms, 3 of 10 failed; globex-hooks one failure."""
    now = time.time()
    async with opened_store(tmp_path / "hookd.db") as store:
        await store.reconcile_config_endpoints(
            {"acme-hooks": "acme", "globex-hooks": "globex", "ops": None}
        )
        await seed_attempts(
            store,
            "acme-hooks",
            [(now - 10 - i, 10.0 * (i + 1), i not in (2, 5, 8)) for i in range(10)],
        )
        await seed_attempts(store, "globex-hooks", [(now - 30, 999.0, False)], tag="g")
    return now


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver, seeded_at: float) -> AsyncIterator[Daemon]:
    base = sink.url.removesuffix("/hook")
    text = config(
        endpoint("acme-hooks", f"{base}/acme", tenant="acme")
        + endpoint("globex-hooks", f"{base}/globex", tenant="globex")
        + endpoint("ops", f"{base}/ops"),
        extra=auth(),
    )
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        yield d


async def mint(d: Daemon, tenant: str) -> str:
    status, answer = await d.request("POST", f"/v1/tenants/{tenant}/tokens", json={})
    assert status == 201, answer
    token: str = answer["token"]
    return token


async def test_an_endpoints_stats_are_exact_over_seeded_attempts(
    daemon: Daemon, seeded_at: float
) -> None:
    now = seeded_at
    status, body = await daemon.request("GET", "/v1/endpoints/acme-hooks/stats?window=1h")
    assert status == 200, body
    assert body["endpoint"] == "acme-hooks"
    assert body["window"] == "1h"
    assert (body["attempts"], body["succeeded"], body["failed"]) == (10, 7, 3)
    assert body["success_rate"] == 0.7
    assert body["latency_ms"] == {"p50": 50.0, "p99": 100.0}
    last_ok = datetime.fromisoformat(body["last_success_at"]).timestamp()
    last_bad = datetime.fromisoformat(body["last_failure_at"]).timestamp()
    assert last_ok == pytest.approx(now - 10, abs=0.001)
    assert last_bad == pytest.approx(now - 12, abs=0.001)
    minutes = body["by_minute"]
    assert len(minutes) == 61
    assert sum(m["succeeded"] for m in minutes) == 7
    assert sum(m["failed"] for m in minutes) == 3
    assert minutes == sorted(minutes, key=lambda m: m["minute"])
    assert datetime.fromisoformat(body["since"]) == datetime.fromisoformat(minutes[0]["minute"])


async def test_the_default_window_is_a_day_and_long_windows_have_no_minutes(
    daemon: Daemon,
) -> None:
    status, day = await daemon.request("GET", "/v1/endpoints/acme-hooks/stats")
    assert status == 200
    assert day["window"] == "24h"
    assert len(day["by_minute"]) == 1441
    status, month = await daemon.request("GET", "/v1/endpoints/acme-hooks/stats?window=30d")
    assert status == 200
    assert "by_minute" not in month
    assert (month["attempts"], month["latency_ms"]["p50"]) == (10, 50.0)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("window=30s", "window"),
        ("window=31d", "window"),
        ("window=soon", "window"),
        ("window=", "window"),
        ("windw=1h", "windw"),
    ],
)
async def test_a_window_outside_one_minute_to_thirty_days_is_refused(
    daemon: Daemon, query: str, field: str
) -> None:
    for path in ("/v1/endpoints/ops/stats", "/v1/stats"):
        status, body = await daemon.request("GET", f"{path}?{query}")
        assert status == 400, body
        assert body["error"]["code"] == "invalid_query"
        assert body["error"]["field"] == field
        assert "1m to 30d" in body["error"]["message"] or "unknown" in body["error"]["message"]


async def test_stats_of_an_unknown_endpoint_are_404(daemon: Daemon) -> None:
    status, body = await daemon.request("GET", "/v1/endpoints/nope/stats")
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def test_a_tenant_reads_its_own_endpoints_stats_only(daemon: Daemon) -> None:
    token = await mint(daemon, "acme")
    status, own = await daemon.request(
        "GET", "/v1/endpoints/acme-hooks/stats?window=1h", headers=bearer(token)
    )
    assert status == 200
    assert own["attempts"] == 10
    absent = await daemon.request("GET", "/v1/endpoints/nope/stats", headers=bearer(token))
    for other in ("globex-hooks", "ops"):
        got = await daemon.request("GET", f"/v1/endpoints/{other}/stats", headers=bearer(token))
        assert got[0] == 404
        assert got[1]["error"]["message"].replace(other, "X") == absent[1]["error"][
            "message"
        ].replace("nope", "X")
    status, body = await daemon.request("GET", "/v1/stats", headers=bearer(token))
    assert status == 403
    assert body["error"]["code"] == "forbidden"


async def test_the_daemons_stats_add_up_by_endpoint_and_by_tenant(daemon: Daemon) -> None:
    status, body = await daemon.request("GET", "/v1/stats?window=1h")
    assert status == 200, body
    assert (body["attempts"], body["succeeded"], body["failed"]) == (11, 7, 4)
    assert len(body["by_minute"]) == 61
    by_endpoint = {e["endpoint"]: e for e in body["endpoints"]}
    assert set(by_endpoint) == {"acme-hooks", "globex-hooks", "ops"}
    assert by_endpoint["acme-hooks"]["latency_ms"] == {"p50": 50.0, "p99": 100.0}
    assert by_endpoint["globex-hooks"]["tenant"] == "globex"
    assert by_endpoint["ops"]["attempts"] == 0
    assert by_endpoint["ops"]["success_rate"] is None
    assert body["tenants"] == [
        {"tenant": "acme", "attempts": 10, "succeeded": 7, "failed": 3, "failure_rate": 0.3},
        {"tenant": "globex", "attempts": 1, "succeeded": 0, "failed": 1, "failure_rate": 1.0},
    ]


async def test_real_deliveries_show_in_the_stats_and_retries_in_the_status(
    tmp_path: Path, sink: Receiver
) -> None:
    """Attempts the daemon makes land in the stats; a delivery waiting for its retry is
    counted in /v1/status's ``retrying``."""
    sink.decide = lambda hit, n: 500 if hit.path == "/bad" else 200
    base = sink.url.removesuffix("/hook")
    text = config(
        endpoint("good", f"{base}/good") + endpoint("bad", f"{base}/bad", policy="later"),
        policies="  later: {delays: [1h]}\n",
        extra=auth(),
    )
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        ids = await d.send("x.y")
        await d.settled(ids["good"])

        async def stats() -> dict[str, Any] | None:
            status, body = await d.request("GET", "/v1/stats?window=5m")
            assert status == 200
            return body if body["attempts"] == 2 else None

        body = await wait_for(stats, timeout=10)
        assert (body["succeeded"], body["failed"]) == (1, 1)
        status, state = await d.request("GET", "/v1/status")
        assert status == 200
        assert state["retrying"] == 1
