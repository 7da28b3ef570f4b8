"""Hostile input to a real daemon: values JSON or SQLite cannot carry, nesting, calendar edges,
bytes that are not text. Each is a 400 naming the field (never a 202 that cannot be delivered,
a 503 that invites retries forever, or a 500), and stores nothing."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookd import jsontext
from tests.hostile import raw_exchange, split_answer
from tests.support import Daemon, Receiver, running_daemon

ADMIN = "admin-token-0123456789"
INGEST = "ingest-token-0123456789"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
auth: {{{{admin_tokens: [{ADMIN}], ingest_tokens: [{INGEST}]}}}}
endpoints:
  - id: a
    url: URL
    signing: {{{{secret: {SECRET}}}}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        yield d


def port_of(daemon: Daemon) -> int:
    return int(daemon.url.rsplit(":", 1)[1])


def stored(daemon: Daemon, table: str) -> int:
    with sqlite3.connect(daemon.config_path.parent / "hookd.db") as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


async def post_raw(
    daemon: Daemon, body: bytes, path: str = "/v1/events", **headers: str
) -> tuple[int, Any]:
    """POST ``body`` as it is (JSON text the client library would never produce)."""
    async with daemon.http.post(
        daemon.url + path, data=body, headers={"Content-Type": "application/json", **headers}
    ) as resp:
        return resp.status, await resp.json()


def assert_refused(status: int, answer: Any, field: str | None, *words: str) -> None:
    assert status == 400, answer
    assert set(answer) == {"error"}
    assert answer["error"].get("field") == field, answer
    for word in words:
        assert word in answer["error"]["message"], answer


# --------------------------------------------------------------------------- numbers (defect 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"type": "x", "data": {"big": 1e400}}', "data.big"),
        (b'{"type": "x", "data": [1, 2, -1.5e999]}', "data[2]"),
        (
            b'[{"type": "x", "data": {}}, {"type": "x", "data": {"n": {"m": 2e308}}}]',
            "[1].data.n.m",
        ),
    ],
)
async def test_a_number_json_cannot_carry_is_refused_naming_its_field(
    daemon: Daemon, body: bytes, field: str
) -> None:
    """1e400 parses as infinity, which no JSON can carry: 400, nothing stored or delivered."""
    path = "/v1/events/batch" if body.startswith(b"[") else "/v1/events"
    status, answer = await post_raw(daemon, body, path)
    assert_refused(status, answer, field, "finite")
    assert stored(daemon, "events") == 0


async def test_every_event_answer_is_valid_json(daemon: Daemon) -> None:
    """What is accepted reads back as strict JSON (no Infinity, no NaN)."""
    status, answer = await post_raw(daemon, b'{"type": "x", "data": {"n": 1.7976931348623157e308}}')
    assert status == 202, answer
    async with daemon.http.get(f"{daemon.url}/v1/events/{answer['id']}") as resp:
        text = await resp.text()
    event = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text}"))
    assert event["data"] == {"n": 1.7976931348623157e308}


# --------------------------------------------------------------------------- text (defect 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"type": "x\\ud800", "data": 1}', "type"),
        (b'{"type": "x", "data": {"k": ["ok", "\\udfff"]}}', "data.k[1]"),
        (b'{"type": "x", "data": {"\\ud800": 1}}', "data"),
        (b'{"type": "x", "data": 1, "id": "\\ud800"}', "id"),
        (b'{"type": "x", "data": "\xed\xa0\x80"}', "data"),
    ],
)
async def test_text_sqlite_cannot_store_is_a_400_not_a_503(
    daemon: Daemon, body: bytes, field: str
) -> None:
    """A lone surrogate is bad input: 400 with the field, no Retry-After, nothing stored."""
    async with daemon.http.post(
        daemon.url + "/v1/events", data=body, headers={"Content-Type": "application/json"}
    ) as resp:
        status, answer = resp.status, await resp.json()
        assert "Retry-After" not in resp.headers
    assert_refused(status, answer, field, "surrogate")
    assert stored(daemon, "events") == 0


async def test_a_valid_surrogate_pair_is_text_and_accepted(daemon: Daemon) -> None:
    status, answer = await post_raw(daemon, b'{"type": "x", "data": "\\ud83d\\ude00"}')
    assert status == 202, answer
    _, event = await daemon.request("GET", f"/v1/events/{answer['id']}")
    assert event["data"] == "\U0001f600"


async def test_an_idempotency_key_that_is_not_utf8_is_a_400(daemon: Daemon) -> None:
    body = b'{"type": "x", "data": 1}'
    raw = (
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + INGEST.encode() + b"\r\n"
        b"Idempotency-Key: k-\xff\xfe\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    status, headers, answer = split_answer(await raw_exchange(port_of(daemon), raw + body))
    assert (status, answer["error"]["field"]) == (400, "Idempotency-Key"), answer
    assert "retry-after" not in headers
    assert stored(daemon, "events") == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/endpoints", {"url": "http://127.0.0.1:9/\ud800"}, "url"),
        ("/v1/endpoints", {"id": "e\ud800", "url": "http://127.0.0.1:9/"}, "id"),
        (
            "/v1/endpoints",
            {"url": "http://127.0.0.1:9/", "headers": {"X-A": "\udc80"}},
            "headers.X-A",
        ),
        ("/v1/endpoints", {"url": "http://127.0.0.1:9/", "options": {"\ud800": 1}}, "options"),
        ("/v1/endpoints/a/disable", {"reason": "\ud800"}, "reason"),
    ],
)
async def test_admin_bodies_with_lone_surrogates_are_400(
    daemon: Daemon, path: str, body: dict[str, Any], field: str
) -> None:
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \\udXXX
    status, answer = await post_raw(daemon, raw, path)
    assert_refused(status, answer, field)
    _, endpoints = await daemon.request("GET", "/v1/endpoints")
    assert [(e["id"], e["enabled"]) for e in endpoints["items"]] == [("a", True)]


# --------------------------------------------------------------------------- 500s (defect 4)


async def test_json_nested_a_thousand_levels_is_a_400(daemon: Daemon) -> None:
    """Deep enough to exhaust the parser's recursion, or merely past the limit: a 400."""
    for depth, field in ((1000, None), (200, "data")):
        body = b'{"type": "x", "data": ' + b"[" * depth + b"]" * depth + b"}"
        status, answer = await post_raw(daemon, body)
        assert_refused(status, answer, field, "nests deeper than 128 levels")
    status, answer = await post_raw(daemon, b"[" * 100_000 + b"]" * 100_000, "/v1/events/batch")
    assert_refused(status, answer, None, "nests deeper than 128 levels")
    assert stored(daemon, "events") == 0


async def test_json_nested_within_the_limit_is_accepted(daemon: Daemon) -> None:
    status, answer = await post_raw(
        daemon, b'{"type": "x", "data": ' + b"[" * 120 + b"]" * 120 + b"}"
    )
    assert status == 202, answer


@pytest.mark.parametrize(
    "stamp",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999-00:01"],
)
async def test_timestamps_at_the_edges_of_the_calendar_are_400(daemon: Daemon, stamp: str) -> None:
    status, answer = await daemon.post_event("x", {}, timestamp=stamp)
    assert_refused(status, answer, "timestamp", "out of range")
    status, answer = await daemon.request(
        "POST", "/v1/endpoints/a/replay", json={"since": stamp, "status": "all"}
    )
    assert_refused(status, answer, "since", "out of range")
    assert stored(daemon, "events") == 0


async def test_a_bearer_token_of_non_ascii_bytes_is_401(daemon: Daemon) -> None:
    """No credentials needed to try it: it must be a plain 'unknown token'."""
    for route in (b"GET /v1/status", b"POST /v1/events"):
        raw = route + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc3\xa9\xff\xfe\r\n"
        raw += b"Content-Length: 0\r\n\r\n"
        status, headers, answer = split_answer(await raw_exchange(port_of(daemon), raw))
        assert (status, answer["error"]["code"]) == (401, "unauthorized"), answer
        assert headers["www-authenticate"] == "Bearer"


async def test_a_body_that_says_gzip_but_is_not_is_a_400(daemon: Daemon) -> None:
    status, answer = await post_raw(
        daemon, b'{"type": "x", "data": 1}', **{"Content-Encoding": "gzip"}
    )
    assert (status, answer["error"]["code"]) == (400, "invalid_body"), answer
    assert "gzip" in answer["error"]["message"]
    assert stored(daemon, "events") == 0


async def test_a_real_gzip_body_is_accepted(daemon: Daemon) -> None:
    body = gzip.compress(b'{"type": "x", "data": {"zipped": true}}')
    status, answer = await post_raw(daemon, body, **{"Content-Encoding": "gzip"})
    assert status == 202, answer


# --------------------------------------------------------------------------- the parser alone


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (rb'"\ud800"', None),
        (rb'{"a": "x\ud83d"}', "a"),
        (rb'{"a": ["\ud83d", "\ude00"]}', "a[0]"),
        (rb'{"a": "\ud83d\ud83d\ude00"}', "a"),
        (b'{"a": {"b": "\xed\xbf\xbf"}}', "a.b"),
        (b'{"a": 1e999}', "a"),
        (b'[1, {"x": -1e999}]', "[1].x"),
    ],
)
def test_jsontext_refuses_what_it_cannot_keep(raw: bytes, field: str | None) -> None:
    with pytest.raises(jsontext.Unfit) as caught:
        jsontext.loads(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (rb'"\ud83d\ude00 and \\ud800"', "\U0001f600 and \\ud800"),  # an escaped backslash
        (b'{"n": 1.7976931348623157e308, "m": -0.0}', {"n": 1.7976931348623157e308, "m": -0.0}),
        (b"[" * 128 + b"]" * 128, json.loads(b"[" * 128 + b"]" * 128)),
    ],
)
def test_jsontext_keeps_what_is_fine(raw: bytes, value: Any) -> None:
    assert jsontext.loads(raw) == value
