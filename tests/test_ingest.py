"""Ingest (SPEC §3, §7): validation, fan-out, commit-before-202, batches, idempotency, errors.

The 503-while-draining answer needs a real SIGTERM: test_lifecycle.py proves it on a process.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookd import ingest
from tests.support import (
    ADMIN,
    INGEST,
    Daemon,
    Receiver,
    auth,
    bearer,
    capped,
    config,
    endpoint,
    every_delivery,
    every_event,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

CONFIG = config(
    endpoint("tasks", "URL", events='["task.*"]') + endpoint("everything", "URL"),
    extra=auth(ingest=True) + "limits: {max_body: 64KiB}\n",
)


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    headers = bearer(INGEST)
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        yield d


async def counts(d: Daemon) -> tuple[int, int]:
    """How many events and deliveries the daemon's store holds."""
    return len(await every_event(d.store)), len(await every_delivery(d.store))


async def post(d: Daemon, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
    async with d.http.post(d.url + path, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body, dict(resp.headers)


def assert_error(body: Any, code: str, field: str | None = None) -> None:
    """The SPEC §3 error model: {"error": {"code": snake_case, "message": str, "field"?: str}}."""
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*", error["code"])
    assert isinstance(error["message"], str)
    assert error["message"]
    if field is None:
        assert "field" not in error
    else:
        assert error["field"] == field
    assert set(error) <= {"code", "message", "field"}


# --------------------------------------------------------------------------- pure validation


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ([], None, "an event is a JSON object"),
        ({"data": {}}, "type", "type is required"),
        ({"type": "", "data": {}}, "type", "type is required"),
        ({"type": "has space", "data": {}}, "type", "without spaces"),
        ({"type": "a"}, "data", "data is required"),
        ({"type": "a", "data": {}, "extra": 1}, "extra", "unknown field 'extra'"),
        ({"type": "a", "data": {}, "id": 7}, "id", "id must be a string"),
        ({"type": "a", "data": {}, "timestamp": "2026-01-02"}, "timestamp", "RFC 3339"),
        ({"type": "a", "data": {}, "timestamp": "2026-01-02T03:04:05"}, "timestamp", "zone"),
    ],
)
def test_parse_event_names_the_bad_field(event: Any, field: str | None, message: str) -> None:
    """Every malformed event is refused with the field that is wrong."""
    with pytest.raises(ingest.InvalidEvent, match=message) as caught:
        ingest.parse_event(event)
    assert caught.value.field == field


def test_parse_event_normalises_the_timestamp_to_utc() -> None:
    """A timestamp with any zone is kept as the same instant, in UTC, with a Z."""
    posted = ingest.parse_event(
        {"type": "a", "data": None, "id": "e1", "timestamp": "2026-01-02T05:04:05+02:00"}
    )
    assert (posted.type, posted.data, posted.id) == ("a", None, "e1")
    assert posted.timestamp == "2026-01-02T03:04:05.000Z"


# --------------------------------------------------------------------------- the HTTP API


async def test_202_comes_after_the_event_and_deliveries_are_committed(
    daemon: Daemon, sink: Receiver
) -> None:
    """The 202 answer lists one delivery per subscribed endpoint (glob fan-out), and at that
    moment the event and those deliveries are already committed: the store's read connection,
    which sees only committed rows, returns them."""
    status, body, _ = await post(daemon, "/v1/events", json={"type": "task.updated", "data": {}})
    committed = await daemon.store.event_deliveries(body["id"])
    event = await daemon.store.event(body["id"])
    assert status == 202
    assert set(body) == {"id", "deliveries"}
    assert sorted(d["endpoint"] for d in body["deliveries"]) == ["everything", "tasks"]
    assert sorted((r.id, r.endpoint) for r in committed) == sorted(
        (d["id"], d["endpoint"]) for d in body["deliveries"]
    )
    assert event is not None
    assert event.type == "task.updated"

    status, body, _ = await post(daemon, "/v1/events", json={"type": "invoice.paid", "data": 1})
    assert status == 202
    assert [d["endpoint"] for d in body["deliveries"]] == ["everything"]
    await wait_for(lambda: len(sink.requests) == 3)


async def test_an_event_matching_no_endpoint_is_accepted_with_no_deliveries(
    tmp_path: Path,
) -> None:
    """Fan-out to zero endpoints is not an error: 202 with an empty list, the event is kept."""
    nowhere = "http://127.0.0.1:9/"
    text = config(
        endpoint("tasks", nowhere, events='["x.*"]')
        + endpoint("everything", nowhere, events="[y]"),
        extra=auth(ingest=True),
    )
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        status, body, _ = await post(d, "/v1/events", json={"type": "task.a", "data": {}})
        stored = await every_event(d.store)
    assert (status, body["deliveries"]) == (202, [])
    assert [(e.id, e.type) for e in stored] == [(body["id"], "task.a")]


async def test_caller_supplied_id_and_timestamp_are_kept(daemon: Daemon, sink: Receiver) -> None:
    """``id`` and ``timestamp`` from the caller are the event's; the body carries them."""
    event = {
        "type": "task.done",
        "data": {"n": 1},
        "id": "evt-42",
        "timestamp": "2026-03-04T05:06:07Z",
    }
    status, body, _ = await post(daemon, "/v1/events", json=event)
    assert status == 202
    assert body["id"] == "evt-42"
    await wait_for(lambda: len(sink.requests) == 2)
    got = sink.requests[0]
    assert got.headers["webhook-id"] == "evt-42"
    assert json.loads(got.body) == {
        "type": "task.done",
        "timestamp": "2026-03-04T05:06:07.000Z",
        "data": {"n": 1},
    }


async def test_a_batch_answers_one_result_per_event_in_order(daemon: Daemon) -> None:
    """``POST /v1/events/batch`` → 202 with ``items``: one {id, deliveries} per event, in order."""
    batch = [
        {"type": "task.a", "data": {}},
        {"type": "other", "data": [1]},
        {"type": "task.b", "data": "x", "id": "b-1"},
    ]
    status, body, _ = await post(daemon, "/v1/events/batch", json=batch)
    assert status == 202
    items = body["items"]
    assert [len(i["deliveries"]) for i in items] == [2, 1, 2]
    assert items[2]["id"] == "b-1"
    assert await counts(daemon) == (3, 5)


async def test_a_batch_with_one_bad_event_stores_nothing(daemon: Daemon) -> None:
    """Batches are atomic: one invalid event → 400 naming ``[i].field``, and no event stored."""
    batch = [{"type": "task.a", "data": {}}, {"data": {}}]
    status, body, _ = await post(daemon, "/v1/events/batch", json=batch)
    assert status == 400
    assert_error(body, "invalid_event", "[1].type")
    assert await counts(daemon) == (0, 0)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([{"type": "a", "data": 0}] * 1001, "batch_too_large"),
        ([], "invalid_batch"),
        ({"type": "a", "data": 0}, "invalid_batch"),
    ],
)
async def test_batch_shape_errors_are_400(daemon: Daemon, payload: Any, code: str) -> None:
    """Over 1000 events, an empty batch, or not an array: 400 with its own code."""
    status, body, _ = await post(daemon, "/v1/events/batch", json=payload)
    assert status == 400
    assert_error(body, code)


async def test_a_batch_of_exactly_1000_is_accepted(daemon: Daemon) -> None:
    """1000 is the limit, inclusive."""
    status, body, _ = await post(
        daemon, "/v1/events/batch", json=[{"type": "x", "data": i} for i in range(1000)]
    )
    assert status == 202
    assert len(body["items"]) == 1000
    assert len(await every_event(daemon.store)) == 1000


# --------------------------------------------------------------------------- idempotency


async def test_a_repeated_id_with_the_same_content_returns_the_original_answer(
    daemon: Daemon,
) -> None:
    """Same id, same content: 200 with the first answer (same delivery ids), nothing new."""
    event = {"type": "task.a", "data": {"k": [1, 2]}, "id": "once"}
    first = await post(daemon, "/v1/events", json=event)
    again = await post(daemon, "/v1/events", json=dict(reversed(list(event.items()))))
    assert (first[0], again[0]) == (202, 200)
    assert again[1] == first[1]
    assert await counts(daemon) == (1, 2)


async def test_a_repeated_id_with_different_content_is_409(daemon: Daemon) -> None:
    """Same id, other content: 409 conflict naming ``id``; the stored event is unchanged."""
    await post(daemon, "/v1/events", json={"type": "task.a", "data": 1, "id": "dup"})
    status, body, _ = await post(
        daemon, "/v1/events", json={"type": "task.a", "data": 2, "id": "dup"}
    )
    assert status == 409
    assert_error(body, "conflict", "id")
    assert [(e.id, e.data) for e in await every_event(daemon.store)] == [("dup", "1")]


async def test_an_explicit_id_equal_to_a_generated_one_is_409_and_creates_nothing(
    daemon: Daemon,
) -> None:
    """An ``id`` that an earlier event got generated (posted without id, or keyed only by
    ``Idempotency-Key``) is taken: 409 conflict naming ``id``, not 503; nothing is created."""
    _, plain, _ = await post(daemon, "/v1/events", json={"type": "task.a", "data": 1})
    keyed = await post(
        daemon, "/v1/events", json={"type": "task.a", "data": 1}, headers={"Idempotency-Key": "k"}
    )
    for taken in (plain["id"], keyed[1]["id"]):
        for body in (
            {"type": "task.a", "data": 1, "id": taken},
            {"type": "task.b", "data": 2, "id": taken},
        ):
            status, answer, _ = await post(daemon, "/v1/events", json=body)
            assert status == 409, answer
            assert_error(answer, "conflict", "id")
        status, answer, _ = await post(
            daemon, "/v1/events/batch", json=[{"type": "task.c", "data": 3}, body]
        )
        assert status == 409, answer
        assert_error(answer, "conflict", "[1].id")
    assert await counts(daemon) == (2, 4)


async def test_idempotency_key_header_dedupes_events_without_id(daemon: Daemon) -> None:
    """``Idempotency-Key``: a retried POST gets the first answer; other content under it → 409."""
    key = {"Idempotency-Key": "order-77"}
    first = await post(daemon, "/v1/events", json={"type": "task.a", "data": 1}, headers=key)
    again = await post(daemon, "/v1/events", json={"type": "task.a", "data": 1}, headers=key)
    other = await post(daemon, "/v1/events", json={"type": "task.a", "data": 2}, headers=key)
    assert (first[0], again[0], other[0]) == (202, 200, 409)
    assert again[1] == first[1]
    assert_error(other[1], "conflict", "Idempotency-Key")


async def test_repeats_inside_a_batch_and_across_batches(daemon: Daemon) -> None:
    """In one batch a repeated id gets the same answer twice; a differing repeat fails the whole
    batch with 409 at ``[i].id``; a batch of only known events is 200 with the old answers."""
    a = {"type": "task.a", "data": 1, "id": "a"}
    status, body, _ = await post(daemon, "/v1/events/batch", json=[a, a])
    assert status == 202
    assert body["items"][0] == body["items"][1]
    assert [e.id for e in await every_event(daemon.store)] == ["a"]

    b = {"type": "task.b", "data": 1, "id": "b"}
    conflicting = {**a, "data": 2}
    status, body, _ = await post(daemon, "/v1/events/batch", json=[b, conflicting])
    assert status == 409
    assert_error(body, "conflict", "[1].id")
    assert [e.id for e in await every_event(daemon.store)] == ["a"]  # b was not stored either

    status, again, _ = await post(daemon, "/v1/events/batch", json=[a])
    assert status == 200
    assert again["items"][0]["id"] == "a"


async def test_a_retried_batch_with_an_idempotency_key_creates_nothing_new(
    daemon: Daemon,
) -> None:
    """``Idempotency-Key`` on a batch keys each event (without its own id) by its position."""
    batch = [{"type": "task.a", "data": 1}, {"type": "task.b", "data": 2}]
    key = {"Idempotency-Key": "batch-9"}
    first = await post(daemon, "/v1/events/batch", json=batch, headers=key)
    again = await post(daemon, "/v1/events/batch", json=batch, headers=key)
    assert (first[0], again[0]) == (202, 200)
    assert again[1] == first[1]
    assert len(await every_event(daemon.store)) == 2


# --------------------------------------------------------------------------- errors


async def test_bad_json_is_400_invalid_json(daemon: Daemon) -> None:
    """A body that is not JSON (or NaN, or empty) is 400 ``invalid_json``."""
    for raw in (b"{not json", b'{"type": "a", "data": NaN}', b""):
        status, body, _ = await post(
            daemon, "/v1/events", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == 400, raw
        assert_error(body, "invalid_json")


async def test_bad_fields_are_400_naming_the_field(daemon: Daemon) -> None:
    """A JSON body with a wrong field is 400 ``invalid_event`` with ``field``."""
    status, body, _ = await post(daemon, "/v1/events", json={"type": "a b", "data": {}})
    assert status == 400
    assert_error(body, "invalid_event", "type")


async def test_missing_or_unknown_token_is_401(daemon: Daemon) -> None:
    """No Authorization header, or an unknown token: 401 with WWW-Authenticate: Bearer."""
    event = {"type": "a", "data": {}}
    for header in ("", "Bearer not-a-known-token-000", "Basic abc"):
        status, body, headers = await post(
            daemon, "/v1/events", json=event, headers={"Authorization": header}
        )
        assert status == 401
        assert headers["WWW-Authenticate"] == "Bearer"
        assert_error(body, "unauthorized")


async def test_an_ingest_token_on_an_admin_route_is_403(daemon: Daemon) -> None:
    """Ingest tokens post events and nothing else; the admin token may post events too."""
    async with daemon.http.get(daemon.url + "/v1/status") as resp:
        assert resp.status == 403
        assert_error(await resp.json(), "forbidden")
    status, _, _ = await post(
        daemon,
        "/v1/events",
        json={"type": "a", "data": {}},
        headers=bearer(ADMIN),
    )
    assert status == 202


async def test_a_body_over_max_body_is_413(daemon: Daemon) -> None:
    """Over ``limits.max_body`` (64KiB here), with or without a Content-Length: 413."""
    big = json.dumps({"type": "a", "data": "x" * 70_000}).encode()
    status, body, _ = await post(
        daemon, "/v1/events", data=big, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert_error(body, "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    status, body, _ = await post(
        daemon, "/v1/events", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert_error(body, "payload_too_large")


async def test_a_body_that_is_not_json_typed_is_415(daemon: Daemon) -> None:
    """Content-Type other than application/json (or +json) is 415."""
    status, body, _ = await post(
        daemon, "/v1/events", data=b'{"type":"a","data":1}', headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert_error(body, "unsupported_media_type")
    status, _, _ = await post(
        daemon,
        "/v1/events",
        data=b'{"type":"a","data":1}',
        headers={"Content-Type": "application/vnd.api+json; charset=utf-8"},
    )
    assert status == 202


async def test_an_ingest_that_would_pass_max_pending_is_429_whole(tmp_path: Path) -> None:
    """With 2 of 3 pending, a batch of 2 is refused whole (429, Retry-After, nothing stored);
    one more event still fits; after that even a single event is 429."""
    async with running_daemon(tmp_path, capped(3)) as d:
        for n in range(2):
            assert (await d.post_event("a", n))[0] == 202
        status, body, headers = await post(
            d, "/v1/events/batch", json=[{"type": "a", "data": 2}, {"type": "a", "data": 3}]
        )
        assert status == 429
        assert int(headers["Retry-After"]) > 0
        assert_error(body, "over_capacity")
        assert await counts(d) == (2, 2)
        assert (await d.post_event("a", 4))[0] == 202
        status, body, headers = await post(d, "/v1/events", json={"type": "a", "data": 5})
        assert status == 429
        assert "Retry-After" in headers
        assert (await d.store.counts_by_status())["pending"] == 3
        assert await counts(d) == (3, 3)


async def test_unknown_routes_and_methods_answer_in_the_error_model(daemon: Daemon) -> None:
    """Even aiohttp's own 404/405 leave as ``{"error": {...}}`` JSON."""
    async with daemon.http.get(daemon.url + "/v1/events") as resp:
        assert resp.status in (403, 405)  # an admin-only path for an ingest token, or no GET
        assert_error(await resp.json(), "forbidden" if resp.status == 403 else "method_not_allowed")
    async with daemon.http.get(daemon.url + "/nope", headers=bearer(ADMIN)) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        assert_error(await resp.json(), "not_found")
