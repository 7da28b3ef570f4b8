"""Endpoint header values and URL passwords are secrets: every answer shows header names with
masked values, and API endpoints keep them sealed at rest like signing secrets. Deliveries
still carry the real values; the masked forms sent back on PATCH keep what is stored."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookd.secretbox import SecretBox
from tests.support import Daemon, Receiver, running_daemon, wait_for

ADMIN = "admin-token-0123456789"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MASK = "[redacted]"
HEADERS = {"X-Hub-Pass": "hub-pass-0001", "X-Team": "core-team-0002"}
CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
auth: {{{{admin_tokens: [{ADMIN}]}}}}
policies: {{{{fast: {{{{delays: [], timeout: 2s}}}}}}}}
endpoints:
  - id: yaml
    url: URL
    events: ["yaml.*"]
    policy: fast
    headers: {{{{X-Yaml-Pass: yaml-pass-0003}}}}
    signing: {{{{secret: {SECRET}}}}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        yield d


def with_password(url: str, password: str = "url-pass-0004") -> str:
    return url.replace("http://", f"http://user:{password}@")


async def create(daemon: Daemon, sink: Receiver, **extra: Any) -> dict[str, Any]:
    body = {
        "id": "api",
        "url": with_password(sink.url),
        "events": ["api.*"],
        "policy": "fast",
        "headers": HEADERS,
        **extra,
    }
    status, answer = await daemon.request("POST", "/v1/endpoints", json=body)
    assert status == 201, answer
    result: dict[str, Any] = answer
    return result


def db_text(daemon: Daemon) -> str:
    with sqlite3.connect(daemon.config_path.parent / "hookd.db") as db:
        return "\n".join(
            str(row)
            for table in ("endpoints", "attempts")
            for row in db.execute(f"SELECT * FROM {table}")
        )


async def delivered(daemon: Daemon, sink: Receiver, kind: str) -> tuple[dict[str, Any], Any]:
    """Post an event of ``kind``; the delivery as the API shows it once final, and the request
    the receiver got."""
    status, accepted = await daemon.post_event(f"{kind}.x", {})
    assert status == 202, accepted
    delivery_id = accepted["deliveries"][0]["id"]

    async def final() -> dict[str, Any] | None:
        shown = await daemon.delivery(delivery_id)
        return shown if shown["status"] != "pending" else None

    shown: dict[str, Any] = await wait_for(final)
    return shown, sink.requests[-1]


async def test_answers_show_header_names_with_masked_values(daemon: Daemon, sink: Receiver) -> None:
    created = await create(daemon, sink)
    _, shown = await daemon.request("GET", "/v1/endpoints/api")
    _, listed = await daemon.request("GET", "/v1/endpoints")
    _, yaml_ep = await daemon.request("GET", "/v1/endpoints/yaml")
    for answer in (created, shown, *listed["items"]):
        if answer["id"] == "api":
            assert answer["headers"] == {"X-Hub-Pass": MASK, "X-Team": MASK}
            assert answer["url"] == with_password(sink.url, "***")
    assert yaml_ep["headers"] == {"X-Yaml-Pass": MASK}
    text = json.dumps([created, shown, listed, yaml_ep])
    for secret in ("hub-pass-0001", "core-team-0002", "yaml-pass-0003", "url-pass-0004"):
        assert secret not in text


@pytest.mark.parametrize("kind", ["api", "yaml"])
async def test_deliveries_carry_the_values_and_show_them_masked(
    daemon: Daemon, sink: Receiver, kind: str
) -> None:
    await create(daemon, sink)
    shown, request = await delivered(daemon, sink, kind)
    assert shown["status"] == "succeeded", shown
    headers = shown["request_headers"]
    custom = HEADERS if kind == "api" else {"X-Yaml-Pass": "yaml-pass-0003"}
    for name, value in custom.items():
        assert request.headers[name] == value
        assert headers[name] == MASK
    for name in ("Content-Type", "User-Agent", "webhook-id", "webhook-timestamp"):
        assert headers[name] == request.headers[name]
    assert headers["webhook-signature"] == request.headers["webhook-signature"]  # as before
    if kind == "api":
        expected = "Basic " + base64.b64encode(b"user:url-pass-0004").decode()
        assert request.headers["Authorization"] == expected
    assert not {"hub-pass-0001", "core-team-0002", "yaml-pass-0003"} & set(
        json.dumps(shown).split('"')
    )


async def test_a_delivery_not_attempted_yet_shows_masked_headers(
    daemon: Daemon, sink: Receiver
) -> None:
    await create(daemon, sink)
    sink.delay = 1.5  # the first attempt is still in flight while we look
    _, accepted = await daemon.post_event("api.x", {})
    shown = await daemon.delivery(accepted["deliveries"][0]["id"])
    assert shown["attempts"] == []
    assert {k: shown["request_headers"][k] for k in HEADERS} == {k: MASK for k in HEADERS}


async def test_header_values_and_url_passwords_are_sealed_at_rest(
    daemon: Daemon, sink: Receiver
) -> None:
    await create(daemon, sink)
    await delivered(daemon, sink, "api")
    text = db_text(daemon)
    assert "X-Hub-Pass" in text  # the names stay readable
    for secret in ("hub-pass-0001", "core-team-0002", "url-pass-0004"):
        assert secret not in text


async def test_patch_with_masked_values_keeps_the_stored_ones(
    daemon: Daemon, sink: Receiver
) -> None:
    """GET, change one setting, PATCH the whole answer back: URL password and header values
    stay; a header given in clear is replaced, a new one added, one left out removed."""
    await create(daemon, sink)
    _, shown = await daemon.request("GET", "/v1/endpoints/api")
    body = {k: shown[k] for k in ("url", "events", "headers")}
    body["headers"] = {**shown["headers"], "X-Team": "new-team-0005", "X-New": "n"}
    status, patched = await daemon.request("PATCH", "/v1/endpoints/api", json=body)
    assert status == 200, patched
    assert patched["headers"] == {"X-Hub-Pass": MASK, "X-Team": MASK, "X-New": MASK}
    _, request = await delivered(daemon, sink, "api")
    assert request.headers["X-Hub-Pass"] == "hub-pass-0001"
    assert request.headers["X-Team"] == "new-team-0005"
    assert request.headers["X-New"] == "n"
    assert request.headers["Authorization"].startswith("Basic ")

    status, _ = await daemon.request(
        "PATCH", "/v1/endpoints/api", json={"headers": {"X-New": MASK}}
    )
    assert status == 200
    _, request = await delivered(daemon, sink, "api")
    assert "X-Hub-Pass" not in request.headers
    assert request.headers["X-New"] == "n"
    assert "new-team-0005" not in db_text(daemon)


async def test_an_endpoint_stored_before_sealing_still_works_and_is_sealed_at_start(
    tmp_path: Path, sink: Receiver
) -> None:
    """A row written by an older hookd (plain URL and headers) loads, delivers, and is sealed."""
    text = CONFIG.replace("URL", sink.url)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with running_daemon(tmp_path, text, headers=auth) as daemon:
        pass
    box = SecretBox.from_text((tmp_path / "hookd.db.key").read_text())
    spec = {
        "url": with_password(sink.url),
        "events": ["api.*"],
        "headers": HEADERS,
        "signing": {"scheme": "standard-webhooks"},
        "policy": "fast",
    }
    secrets = [{"secret": box.seal(SECRET, aad=b"hookd-endpoint:api"), "expires_at": None}]
    with sqlite3.connect(tmp_path / "hookd.db") as db:
        db.execute(
            "INSERT INTO endpoints (id, source, spec, secrets, created_at, updated_at)"
            " VALUES ('api', 'api', ?, ?, 0, 0)",
            (json.dumps(spec), json.dumps(secrets)),
        )
    async with running_daemon(tmp_path, text, headers=auth) as daemon:
        _, request = await delivered(daemon, sink, "api")
        assert request.headers["X-Hub-Pass"] == "hub-pass-0001"
        assert "hub-pass-0001" not in db_text(daemon)
        assert "url-pass-0004" not in db_text(daemon)
