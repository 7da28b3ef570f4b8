"""Stats routes (SPEC §14): ``GET /v1/endpoints/{id}/stats`` (an admin, or the endpoint's
tenant) and ``GET /v1/stats`` (admin: the whole daemon, each endpoint and each tenant), both
over a ``window`` from 1m to 30d (default 24h). What a window covers, and how percentiles are
computed, is in :mod:`hookd.store.stats`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hookd.api.access import ADMIN, TenantAllowed, route
from hookd.api.http import ApiProblem, json_response, state_of, ts
from hookd.store import Tally, Window
from hookd.store import stats as attempt_stats
from hookd.units import parse_duration

DEFAULT_WINDOW = "24h"


def _window(query: Mapping[str, str], now: float) -> tuple[str, Window]:
    for name in query:
        if name != "window":
            raise ApiProblem(
                400,
                "invalid_query",
                f"unknown query parameter {name!r} (expected: window)",
                field=name,
            )
    text = query.get("window", DEFAULT_WINDOW).strip()
    message = f"window is a duration from 1m to 30d, like 1h or 7d; got {text!r}"
    try:
        seconds = parse_duration(text)
        return text, attempt_stats.window(seconds, now)
    except ValueError as exc:
        raise ApiProblem(400, "invalid_query", message, field="window") from exc


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 6)


def _tally(t: Tally) -> dict[str, Any]:
    return {
        "attempts": t.attempts,
        "succeeded": t.succeeded,
        "failed": t.failed,
        "success_rate": _rate(t.succeeded, t.attempts),
        "latency_ms": {"p50": t.p50, "p99": t.p99},
        "last_success_at": ts(t.last_success_at),
        "last_failure_at": ts(t.last_failure_at),
    }


def _answer(text: str, result: attempt_stats.AttemptStats) -> dict[str, Any]:
    """The SPEC §14 fields, then ``since``/``until`` (what the window covers) and
    ``by_minute`` for windows up to 24h."""
    win = result.window
    answer = {"window": text, **_tally(result.total), "since": ts(win.start), "until": ts(win.end)}
    if result.by_minute is not None:
        answer["by_minute"] = [
            {"minute": _minute(m.minute), "succeeded": m.succeeded, "failed": m.failed}
            for m in result.by_minute
        ]
    return answer


def _minute(minute: int) -> str:
    """A minute's start as ``ts`` writes it (``2026-01-02T03:04:00.000Z``), from its hour's
    prefix: a day's 1,441 minutes cost 25 formattings, not 1,441."""
    hour, rest = divmod(minute, 60)
    return f"{_hour_prefix(hour)}{rest:02d}:00.000Z"


@functools.lru_cache(maxsize=1024)
def _hour_prefix(hour: int) -> str:
    return time.strftime("%Y-%m-%dT%H:", time.gmtime(hour * 3600))


async def endpoint_stats(request: web.Request) -> web.Response:
    state = state_of(request)
    ep = state.endpoints.require(request.match_info["id"])
    text, win = _window(request.query, time.time())
    result = await state.store.attempt_stats(win, endpoint=ep.id)
    return json_response({"endpoint": ep.id, **_answer(text, result)})


async def daemon_stats(request: web.Request) -> web.Response:
    """The whole daemon's attempts in the window, with each endpoint's (every endpoint, also
    those without attempts) and each tenant's (over the tenant's own endpoints)."""
    state = state_of(request)
    text, win = _window(request.query, time.time())
    result = await state.store.attempt_stats(win)
    endpoints = []
    tenants: dict[str, list[int]] = {}
    for ep in state.endpoints:
        tally = result.endpoints.get(ep.id, Tally())
        endpoints.append({"endpoint": ep.id, "tenant": ep.tenant, **_tally(tally)})
        if ep.tenant is not None and ep.tenant != "*":
            counts = tenants.setdefault(ep.tenant, [0, 0])
            counts[0] += tally.succeeded
            counts[1] += tally.failed
    answer = _answer(text, result)
    answer["endpoints"] = endpoints
    answer["tenants"] = [
        {
            "tenant": tenant,
            "attempts": ok + bad,
            "succeeded": ok,
            "failed": bad,
            "failure_rate": _rate(bad, ok + bad),
        }
        for tenant, (ok, bad) in sorted(tenants.items())
    ]
    return json_response(answer)


def add_routes(app: web.Application) -> None:
    route(app, "GET", "/v1/endpoints/{id}/stats", endpoint_stats, TenantAllowed("endpoint"))
    route(app, "GET", "/v1/stats", daemon_stats, ADMIN)
