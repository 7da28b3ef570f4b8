"""Ingest and health routes: ``POST /v1/events``, ``POST /v1/events/batch``, ``/healthz``,
``/readyz`` (SPEC §3). Validation and fan-out live in :mod:`hookd.ingest`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from hookd import ingest, jsontext
from hookd.api.access import INGEST, OPEN, route
from hookd.api.http import ApiProblem, json_response, parse_json, read_raw, state_of
from hookd.catalog import Catalog
from hookd.deadlines import Deadline
from hookd.state import State
from hookd.store import Conflict, OverCapacity

# How long a request waits for the database before it is answered 503 with Retry-After (the
# writer fails a locked or full database within about a second; this bounds everything else).
STORE_DEADLINE = 10.0
READY_DEADLINE = 3.0
_STORE_BOUND = Deadline(STORE_DEADLINE)


def _refuse_when_draining(state: State) -> None:
    if state.draining:
        raise ApiProblem(
            503,
            "draining",
            "hookd is shutting down and accepts no new events",
            headers={"Retry-After": "5"},
        )


async def post_event(request: web.Request) -> web.Response:
    state = state_of(request)
    _refuse_when_draining(state)
    raw = await read_raw(request, state.config.limits.max_body)
    fast = ingest.decode_events(raw, batch=False)
    try:
        posted = fast[0] if fast else ingest.parse_event(parse_json(raw))
        ingest.check_catalog(state.config.event_types, posted)
    except ingest.InvalidEvent as exc:
        raise ApiProblem(400, exc.code, str(exc), field=exc.field) from exc
    key = _idempotency_key(request)
    event = await ingest.prepare(posted, state.endpoints, now=time.time(), idempotency_key=key)
    accepted = await _commit(state, [event], header_keyed=posted.id is None and key is not None)
    return json_response(ingest.answer(accepted[0]), 202 if accepted[0].created else 200)


def _idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header; an event's own ``id`` wins over it when both are given."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 256:
        raise ApiProblem(
            400, "invalid_header", "Idempotency-Key is 1-256 characters", field="Idempotency-Key"
        )
    if key is not None and jsontext.has_surrogate(key):  # bytes that are not UTF-8
        raise ApiProblem(
            400, "invalid_header", "Idempotency-Key must be UTF-8 text", field="Idempotency-Key"
        )
    return key


async def post_batch(request: web.Request) -> web.Response:
    state = state_of(request)
    _refuse_when_draining(state)
    raw = await read_raw(request, state.config.limits.max_body)
    catalog = state.config.event_types
    posted = ingest.decode_events(raw, batch=True)
    if posted is None:
        posted = _parse_batch(parse_json(raw), catalog)
    elif catalog:  # an empty catalog checks nothing
        for i, item in enumerate(posted):  # one bad event refuses the whole batch, naming it
            _checked(i, item, catalog)
    now = time.time()
    key = _idempotency_key(request)  # a retried batch: event i is keyed "KEY#i" unless it has an id
    keys = [f"{key}#{i}" for i in range(len(posted))] if key is not None else None
    events = await ingest.prepare_many(posted, state.endpoints, now=now, keys=keys)
    accepted = await _commit(state, events)
    status = 202 if any(a.created for a in accepted) else 200
    return json_response({"items": [ingest.answer(a) for a in accepted]}, status)


def _parse_batch(body: Any, catalog: Catalog) -> list[ingest.Posted]:
    """A batch's events checked one by one; the first bad one refuses the batch, named."""
    if not isinstance(body, list):
        raise ApiProblem(400, "invalid_batch", "a batch is a JSON array of events")
    if not body:
        raise ApiProblem(400, "invalid_batch", "a batch needs at least one event")
    if len(body) > ingest.MAX_BATCH:
        raise ApiProblem(
            400,
            "batch_too_large",
            f"a batch holds at most {ingest.MAX_BATCH} events, got {len(body)}",
        )
    return [_checked(i, item, catalog) for i, item in enumerate(body)]


def _checked(i: int, item: Any, catalog: Catalog) -> ingest.Posted:
    """Event ``i`` of a batch (posted JSON, or parsed already) checked, catalog included;
    what is wrong is a 400 naming the event."""
    prefix = f"[{i}]."
    try:
        posted = item if isinstance(item, ingest.Posted) else ingest.parse_event(item, prefix)
        ingest.check_catalog(catalog, posted, prefix=prefix)
    except ingest.InvalidEvent as exc:
        raise ApiProblem(400, exc.code, f"event {i}: {exc}", field=exc.field) from exc
    return posted


async def _commit(state: State, events: list[Any], *, header_keyed: bool = False) -> list[Any]:
    try:
        async with _STORE_BOUND():  # asyncio.timeout(STORE_DEADLINE), one timer for all
            accepted = await state.store.ingest(events)
    except TimeoutError as exc:
        raise _no_answer() from exc
    except Conflict as exc:
        if header_keyed:
            message = f"Idempotency-Key {exc.key!r} was already used with different content"
            raise ApiProblem(409, "conflict", message, field="Idempotency-Key") from exc
        field = "id" if len(events) == 1 else f"[{exc.index}].id"
        raise ApiProblem(409, "conflict", str(exc), field=field) from exc
    except OverCapacity as exc:
        raise ApiProblem(429, "over_capacity", str(exc), headers={"Retry-After": "10"}) from exc
    created = [a for a in accepted if a.created]
    state.metrics.events.inc(len(created))
    state.metrics.deliveries_created.inc(sum(len(a.deliveries) for a in created))
    if state.dispatcher is not None:
        state.dispatcher.submit(ingest.jobs(events, accepted))
    return accepted


# --------------------------------------------------------------------------- health


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when not draining and the database takes a real write within READY_DEADLINE."""
    state = state_of(request)
    if state.draining:
        return json_response({"status": "draining"}, 503)
    try:
        async with asyncio.timeout(READY_DEADLINE):
            await state.store.ping()
    except TimeoutError:
        error = f"the database did not take a write within {READY_DEADLINE:g}s"
    except Exception as exc:
        error = str(exc)
    else:
        return json_response({"status": "ready"})
    answer = json_response({"status": "unavailable", "error": error}, 503)
    answer.headers["Retry-After"] = "5"
    return answer


def _no_answer() -> ApiProblem:
    return ApiProblem(
        503,
        "unavailable",
        f"the database did not answer within {STORE_DEADLINE:g}s; nothing was stored",
        headers={"Retry-After": "5"},
    )


def add_routes(app: web.Application) -> None:
    route(app, "POST", "/v1/events", post_event, INGEST)
    route(app, "POST", "/v1/events/batch", post_batch, INGEST)
    route(app, "GET", "/healthz", healthz, OPEN)
    route(app, "GET", "/readyz", readyz, OPEN)
