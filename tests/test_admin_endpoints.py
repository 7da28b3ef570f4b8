"""The endpoint half of the admin API, against a real daemon, its store (of each backend) and a
loopback receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import stat
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookd import logs
from hookd.signing import generate_ed25519, verify
from tests.support import (
    ADMIN,
    INGEST,
    Daemon,
    Receiver,
    auth,
    backends,
    bearer,
    config,
    endpoint,
    every_delivery,
    every_event,
    hmac_signing,
    opened_store,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

CONFIG = config(
    endpoint("yaml", "URL", events='["yaml.*"]', signing=hmac_signing("yaml-secret")),
    policies="  fast: {delays: [], timeout: 2s}\n  retry1: {delays: [1s], jitter: none}\n",
    extra=auth(ingest=True),
)


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    headers = bearer(ADMIN)
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        yield d


# --------------------------------------------------------------------------- auth

ADMIN_ROUTES = [
    ("GET", "/v1/endpoints"),
    ("POST", "/v1/endpoints"),
    ("GET", "/v1/endpoints/yaml"),
    ("PATCH", "/v1/endpoints/yaml"),
    ("DELETE", "/v1/endpoints/yaml"),
    ("POST", "/v1/endpoints/yaml/enable"),
    ("POST", "/v1/endpoints/yaml/disable"),
    ("POST", "/v1/endpoints/yaml/test"),
    ("POST", "/v1/endpoints/yaml/rotate-secret"),
    ("POST", "/v1/endpoints/yaml/replay"),
    ("GET", "/v1/deliveries"),
    ("GET", "/v1/deliveries/dlv_x"),
    ("POST", "/v1/deliveries/dlv_x/retry"),
    ("GET", "/v1/events/evt_x"),
    ("GET", "/v1/signing-keys"),
    ("GET", "/v1/status"),
]


async def test_admin_routes_need_an_admin_token(daemon: Daemon) -> None:
    """No token is 401 with WWW-Authenticate; an ingest token is 403; both as JSON errors."""
    async with aiohttp.ClientSession() as anon:
        for method, path in ADMIN_ROUTES:
            async with anon.request(method, daemon.url + path) as resp:
                assert resp.status == 401, (method, path)
                assert resp.headers["WWW-Authenticate"] == "Bearer"
                assert (await resp.json())["error"]["code"] == "unauthorized"
            ingest = bearer(INGEST)
            async with anon.request(method, daemon.url + path, headers=ingest) as resp:
                assert resp.status == 403, (method, path)
                assert (await resp.json())["error"]["code"] == "forbidden"


# --------------------------------------------------------------------------- create, show, list


async def test_create_answers_the_secret_once_and_deliveries_verify(
    daemon: Daemon, sink: Receiver
) -> None:
    """A new endpoint defaults to standard-webhooks with a whsec_ secret shown only in the 201."""
    created = await daemon.create_endpoint(id="billing", url=sink.url, events=["invoice.*"])
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["source"] == "api"
    assert created["signing"] == {"scheme": "standard-webhooks"}
    status, shown = await daemon.request("GET", "/v1/endpoints/billing")
    assert status == 200
    assert "secret" not in shown
    assert shown["events"] == ["invoice.*"]
    _, listed = await daemon.request("GET", "/v1/endpoints")
    assert [e["id"] for e in listed["items"]] == ["yaml", "billing"]
    assert listed["next_cursor"] is None
    assert secret not in str(listed)

    await daemon.post_event("invoice.paid", {"n": 1})
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    assert Webhook(secret).verify(hit.body, hit.headers)["data"] == {"n": 1}


async def test_create_generates_an_id_and_accepts_a_given_hmac_secret(daemon: Daemon) -> None:
    created = await daemon.create_endpoint(
        url="https://example.com/hook",
        signing={"scheme": "hmac-sha256", "secret": "s3cret", "header": "X-Sig"},
        headers={"X-Team": "core"},
        rate_limit="10/s",
        max_in_flight=2,
        ordering="fifo",
        body="taskview",
        policy="taskview",
    )
    assert created["id"].startswith("ep_")
    assert created["secret"] == "s3cret"
    assert created["rate_limit"] == 10.0
    assert created["max_in_flight"] == 2
    assert created["ordering"] == "fifo"
    assert created["headers"] == {"X-Team": "[redacted]"}  # names shown, values never
    status, _ = await daemon.request(
        "POST", "/v1/endpoints", json={"id": created["id"], "url": "http://x.io"}
    )
    assert status == 409


async def test_rsa_endpoint_publishes_its_public_key_never_the_private_one(
    daemon: Daemon, sink: Receiver
) -> None:
    created = await daemon.create_endpoint(
        id="taskee", url=sink.url, signing={"scheme": "rsa-sha256"}
    )
    assert created["secret"] is None
    public = created["public_key"]
    assert public.startswith("-----BEGIN PUBLIC KEY-----")
    status, keys = await daemon.request("GET", "/v1/signing-keys")
    assert status == 200
    assert keys == {"keys": [{"endpoint": "taskee", "scheme": "rsa-sha256", "public_key": public}]}
    await daemon.post_event("ContactCreate", {"a": 1})
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    assert verify("rsa-sha256", hit.headers, hit.body, public_key=public)[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com"}, "url"),
        ({"url": "http://exa mple.com/"}, "url"),
        ({"url": "http://example.com", "nope": 1}, "nope"),
        ({"url": "http://example.com", "id": "bad id!"}, "id"),
        ({"url": "http://example.com", "events": []}, "events"),
        ({"url": "http://example.com", "policy": "slow"}, "policy"),
        ({"url": "http://example.com", "body": "xml"}, "body"),
        ({"url": "http://example.com", "signing": {"scheme": "md5"}}, "signing.scheme"),
        ({"url": "http://example.com", "signing": {"secret": "not base64!"}}, "signing.secret"),
        ({"url": "http://example.com", "signing": {"pepper": 1}}, "signing.pepper"),
        ({"url": "http://example.com", "signing": {"header": "X-Sig"}}, "signing.header"),
        ({"url": "http://example.com", "signing": {"secret": None}}, "signing.secret"),
        ({"url": "http://example.com", "rate_limit": "fast"}, "rate_limit"),
        ({"url": "http://example.com", "max_in_flight": 0}, "max_in_flight"),
        ({"url": "http://example.com", "ordering": "lifo"}, "ordering"),
        ({"url": "http://example.com", "headers": {"Host": "x"}}, "headers"),
        ({"url": "http://example.com", "headers": {"X-A": "caf\u00e9"}}, "headers"),
    ],
)
async def test_create_rejects_bad_settings_naming_the_field(
    daemon: Daemon, body: dict[str, Any], field: str
) -> None:
    status, answer = await daemon.request("POST", "/v1/endpoints", json=body)
    assert status == 400, answer
    assert answer["error"]["field"] == field
    _, listed = await daemon.request("GET", "/v1/endpoints")
    assert len(listed["items"]) == 1  # nothing was created


async def test_create_rejects_bodies_that_are_not_json_objects(daemon: Daemon) -> None:
    assert (await daemon.request("POST", "/v1/endpoints", json=[1]))[0] == 400
    assert (await daemon.request("POST", "/v1/endpoints", data=b"{"))[0] in (400, 415)
    status, answer = await daemon.request(
        "POST", "/v1/endpoints", data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415, answer


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/enable"),
        ("POST", "/disable"),
        ("POST", "/test"),
        ("POST", "/rotate-secret"),
        ("POST", "/replay"),
    ],
)
async def test_unknown_endpoint_is_404(daemon: Daemon, method: str, suffix: str) -> None:
    kw: dict[str, Any] = {"json": {"url": "http://example.com"}} if method == "PATCH" else {}
    status, answer = await daemon.request(method, f"/v1/endpoints/ghost{suffix}", **kw)
    assert status == 404
    assert answer["error"]["code"] == "not_found"


# --------------------------------------------------------------------------- YAML-owned endpoints


async def test_yaml_endpoint_edits_are_409_but_operations_work(
    daemon: Daemon, sink: Receiver
) -> None:
    """PATCH, DELETE and rotate-secret answer 409 naming the YAML; enable/disable/test work."""
    for method, path, body, words in [
        ("PATCH", "/v1/endpoints/yaml", {"url": "http://example.com"}, "edit it there"),
        ("DELETE", "/v1/endpoints/yaml", None, "remove it from the YAML"),
        ("POST", "/v1/endpoints/yaml/rotate-secret", None, "secret lives in the YAML"),
    ]:
        status, answer = await daemon.request(method, path, json=body)
        assert status == 409, (method, path)
        assert words in answer["error"]["message"]
        assert "hookd.yaml" in answer["error"]["message"]

    status, disabled = await daemon.request("POST", "/v1/endpoints/yaml/disable")
    assert status == 200
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "disabled by an operator"
    status, answer = await daemon.request("POST", "/v1/endpoints/yaml/test")
    assert status == 409  # a disabled endpoint gets no new deliveries, tests included
    status, enabled = await daemon.request("POST", "/v1/endpoints/yaml/enable")
    assert (status, enabled["enabled"], enabled["disabled_reason"]) == (200, True, None)

    status, queued = await daemon.request("POST", "/v1/endpoints/yaml/test")
    assert status == 202
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    assert hit.headers["X-Webhook-Signature"] == (
        "sha256=" + hmac.new(b"yaml-secret", hit.body, hashlib.sha256).hexdigest()
    )
    delivery = await daemon.delivery(queued["delivery_id"])
    assert delivery["event_id"] == queued["event_id"]
    assert delivery["event_type"] == "hookd.test"


async def test_test_event_goes_to_that_endpoint_alone_whatever_its_filter(
    daemon: Daemon, sink: Receiver
) -> None:
    await daemon.create_endpoint(id="other", url=sink.url + "/other")
    status, queued = await daemon.request("POST", "/v1/endpoints/yaml/test")
    assert status == 202
    assert queued["deliveries"] == [{"id": queued["delivery_id"], "endpoint": "yaml"}]
    await wait_for(lambda: _status_is(daemon, queued["delivery_id"], "succeeded"))
    _, event = await daemon.request("GET", f"/v1/events/{queued['event_id']}")
    assert event["type"] == "hookd.test"
    assert [d["endpoint"] for d in event["deliveries"]] == ["yaml"]
    assert [r.path for r in sink.requests] == ["/hook"]


# --------------------------------------------------------------------------- patch, delete


async def test_patch_changes_an_api_endpoint_live(daemon: Daemon, sink: Receiver) -> None:
    await daemon.create_endpoint(id="ep", url=sink.url + "/old", events=["a.*"])
    status, patched = await daemon.request(
        "PATCH", "/v1/endpoints/ep", json={"url": sink.url + "/new", "events": ["b.*"]}
    )
    assert status == 200
    assert patched["url"].endswith("/new")
    assert patched["events"] == ["b.*"]
    await daemon.post_event("a.one", {})
    await daemon.post_event("b.one", {})
    await wait_for(lambda: sink.requests)
    assert [r.path for r in sink.requests] == ["/hook/new"]

    status, answer = await daemon.request(
        "PATCH", "/v1/endpoints/ep", json={"signing": {"scheme": "hmac-sha256"}}
    )
    assert (status, answer["error"]["field"]) == (400, "signing.secret")
    status, answer = await daemon.request("PATCH", "/v1/endpoints/ep", json={"url": None})
    assert (status, answer["error"]["field"]) == (400, "url")
    status, answer = await daemon.request("PATCH", "/v1/endpoints/ep", json={"rate_limit": None})
    assert (status, answer["rate_limit"]) == (200, None)


async def test_delete_removes_the_endpoint_and_its_history(daemon: Daemon, sink: Receiver) -> None:
    await daemon.create_endpoint(id="gone", url=sink.url)
    _, accepted = await daemon.post_event("x.y", {})
    [delivery] = [d for d in accepted["deliveries"] if d["endpoint"] == "gone"]
    await wait_for(lambda: sink.requests)
    status, _ = await daemon.request("DELETE", "/v1/endpoints/gone")
    assert status == 204
    assert (await daemon.request("GET", "/v1/endpoints/gone"))[0] == 404
    assert (await daemon.request("GET", f"/v1/deliveries/{delivery['id']}"))[0] == 404
    _, page = await daemon.request("GET", "/v1/deliveries?endpoint=gone")
    assert page["items"] == []
    assert (await daemon.request("DELETE", "/v1/endpoints/gone"))[0] == 404


# --------------------------------------------------------------------------- enable / disable


async def test_disable_stops_new_deliveries_and_enable_resets_failures(
    daemon: Daemon, sink: Receiver
) -> None:
    await daemon.create_endpoint(id="ep", url=sink.url, policy="fast")
    status, _ = await daemon.request("POST", "/v1/endpoints/ep/disable", json={"reason": "maint"})
    assert status == 200
    _, shown = await daemon.request("GET", "/v1/endpoints/ep")
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "maint")
    _, accepted = await daemon.post_event("x.y", {})
    assert accepted["deliveries"] == []  # a disabled endpoint gets no new deliveries

    await daemon.request("POST", "/v1/endpoints/ep/enable")
    sink.default = 500
    await daemon.post_event("x.z", {})
    await wait_for(lambda: _failures(daemon, "ep"))
    status, enabled = await daemon.request("POST", "/v1/endpoints/ep/enable")
    assert (status, enabled["consecutive_failures"]) == (200, 0)
    assert await _failures(daemon, "ep") == 0


async def _failures(d: Daemon, endpoint_id: str) -> int:
    _, shown = await d.request("GET", f"/v1/endpoints/{endpoint_id}")
    count: int = shown["consecutive_failures"]
    return count


async def test_pending_deliveries_are_held_while_disabled_and_resume_on_enable(
    daemon: Daemon, sink: Receiver
) -> None:
    await daemon.create_endpoint(id="ep", url=sink.url, policy="retry1")
    sink.responses = [503]
    _, accepted = await daemon.post_event("x.y", {})
    [delivery] = accepted["deliveries"]
    await wait_for(lambda: sink.requests)
    await daemon.request("POST", "/v1/endpoints/ep/disable")
    due = await wait_for(lambda: _next_attempt(daemon, delivery["id"]))
    status, answer = await daemon.request("POST", f"/v1/deliveries/{delivery['id']}/retry")
    assert (status, answer["error"]["code"]) == (409, "not_failed")
    dispatcher = daemon.state.dispatcher
    assert dispatcher is not None
    # the retry's time has passed and the timer wheel has let go of it: it was not attempted
    await wait_for(lambda: time.time() > due and delivery["id"] not in dispatcher.wheel)
    assert (await daemon.delivery(delivery["id"]))["status"] == "pending"
    assert len(sink.requests) == 1  # held: not attempted, not failed
    await daemon.request("POST", "/v1/endpoints/ep/enable")
    await wait_for(lambda: _status_is(daemon, delivery["id"], "succeeded"))
    assert len(sink.requests) == 2


async def _next_attempt(d: Daemon, delivery_id: str) -> float | None:
    shown = await d.delivery(delivery_id)
    if shown["attempt_count"] < 1 or shown["next_attempt_at"] is None:
        return None
    return datetime.fromisoformat(shown["next_attempt_at"]).timestamp()


async def _status_is(d: Daemon, delivery_id: str, status: str) -> bool:
    return bool((await d.delivery(delivery_id))["status"] == status)


# --------------------------------------------------------------------------- rotation


async def test_rotate_without_grace_stops_the_old_secret_at_once(
    daemon: Daemon, sink: Receiver
) -> None:
    old = (await daemon.create_endpoint(id="rot", url=sink.url))["secret"]
    status, rotated = await daemon.request("POST", "/v1/endpoints/rot/rotate-secret")
    assert status == 200
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert rotated["previous_expires_at"] is None
    await daemon.post_event("x.y", {})
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    Webhook(new).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(hit.body, hit.headers)
    assert " " not in hit.headers["webhook-signature"]


async def test_rotate_with_grace_signs_with_both_secrets(daemon: Daemon, sink: Receiver) -> None:
    old = (await daemon.create_endpoint(id="rot", url=sink.url))["secret"]
    status, rotated = await daemon.request(
        "POST", "/v1/endpoints/rot/rotate-secret", json={"grace": "24h"}
    )
    assert status == 200
    assert rotated["previous_expires_at"] is not None
    await daemon.post_event("x.y", {})
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    assert len(hit.headers["webhook-signature"].split()) == 2
    Webhook(rotated["secret"]).verify(hit.body, hit.headers)
    Webhook(old).verify(hit.body, hit.headers)


async def test_rotate_rejects_a_bad_grace(daemon: Daemon, sink: Receiver) -> None:
    await daemon.create_endpoint(id="rot", url=sink.url)
    for grace in ("soon", "31d", -1, True):
        status, answer = await daemon.request(
            "POST", "/v1/endpoints/rot/rotate-secret", json={"grace": grace}
        )
        assert (status, answer["error"]["field"]) == (400, "grace"), grace


# --------------------------------------------------------------------------- secrets at rest


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The daemon's log output as production configures it (JSON lines, stdlib included)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure("debug", "json", stream=buffer)
    try:
        yield buffer
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        structlog.configure(**saved)


async def test_secrets_never_show_in_answers_logs_or_the_database(
    tmp_path: Path, sink: Receiver, log_buffer: io.StringIO
) -> None:
    headers = bearer(ADMIN)
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        given = "hmac-secret-given-by-the-operator"
        await d.create_endpoint(
            id="a", url=sink.url, signing={"scheme": "hmac-sha256", "secret": given}
        )
        generated = (await d.create_endpoint(id="b", url=sink.url))["secret"]
        _, rotated = await d.request("POST", "/v1/endpoints/b/rotate-secret", json={"grace": "1h"})
        await d.post_event("x.y", {})
        await wait_for(lambda: len(sink.requests) >= 2)
        answers = [
            await d.request("GET", path)
            for path in ("/v1/endpoints", "/v1/endpoints/a", "/v1/endpoints/b", "/v1/status")
        ]
        _, page = await d.request("GET", "/v1/deliveries")
        answers += [
            await d.request("GET", f"/v1/deliveries/{item['id']}") for item in page["items"]
        ]
    text = str(answers) + log_buffer.getvalue()
    assert "endpoint.created" in log_buffer.getvalue()
    stored = (await _everything_stored(tmp_path)).encode()
    db = _database_bytes(tmp_path) if backends.current() == "sqlite" else b""
    assert b"v1:" in stored  # the sealed secrets are there, ...
    for secret in (given, generated, rotated["secret"]):
        assert secret not in text
        for held in (stored, db):  # ... the secrets themselves nowhere
            assert secret.encode() not in held
            assert secret.removeprefix("whsec_").encode() not in held


async def _everything_stored(tmp_path: Path) -> str:
    """Every row the store holds, read through its interface: endpoints (settings, sealed
    keys), events, deliveries and their attempts (request headers, answers)."""
    async with opened_store(tmp_path / "hookd.db") as store:
        rows: list[object] = [*await store.endpoints(), *await every_event(store)]
        for delivery in await every_delivery(store):
            rows += [delivery, *await store.attempts(delivery.id)]
    return "\n".join(map(repr, rows))


def _database_bytes(directory: Path) -> bytes:
    """The SQLite file with its WAL, as an attacker with the disk would read it."""
    return b"".join(p.read_bytes() for p in directory.glob("hookd.db*") if p.suffix != ".key")


def _key_file(directory: Path) -> tuple[int, str]:
    key = directory / "hookd.db.key"
    return stat.S_IMODE(key.stat().st_mode), key.read_text().strip()


@pytest.mark.sqlite_only("the key file is SQLite's: PostgreSQL is given storage.secret_key")
async def test_key_file_is_made_next_to_the_database_with_mode_0600(daemon: Daemon) -> None:
    mode, text = _key_file(daemon.config_path.parent)
    assert mode == 0o600
    assert len(text) == 44  # base64 of 32 bytes


async def test_api_endpoints_survive_a_restart_with_their_sealed_keys(
    tmp_path: Path, sink: Receiver
) -> None:
    headers = bearer(ADMIN)
    config = CONFIG.replace("URL", sink.url)
    async with running_daemon(tmp_path, config, headers=headers) as d:
        secret = (await d.create_endpoint(id="keep", url=sink.url))["secret"]
        row = await d.store.endpoint("keep")
    assert row is not None
    [stored] = row.secrets
    assert stored["secret"].startswith("v1:")  # sealed, not the secret itself
    assert secret.removeprefix("whsec_") not in stored["secret"]
    async with running_daemon(tmp_path, config, headers=headers) as d:
        await d.post_event("x.y", {})
        hit = await wait_for(lambda: sink.requests and sink.requests[0])
        Webhook(secret).verify(hit.body, hit.headers)


async def test_ed25519_endpoint_publishes_whpk_and_rotates_to_a_new_ed25519_key(
    daemon: Daemon, sink: Receiver
) -> None:
    private, public = generate_ed25519()
    created = await daemon.create_endpoint(id="ed", url=sink.url, signing={"secret": private})
    assert created["public_key"] == public
    status, rotated = await daemon.request("POST", "/v1/endpoints/ed/rotate-secret")
    assert status == 200
    assert rotated["secret"].startswith("whsk_")
    new_public = rotated["public_key"]
    assert new_public.startswith("whpk_")
    assert new_public != public
    _, keys = await daemon.request("GET", "/v1/signing-keys")
    assert keys["keys"] == [
        {"endpoint": "ed", "scheme": "standard-webhooks", "public_key": new_public}
    ]
    await daemon.post_event("x.y", {})
    hit = await wait_for(lambda: sink.requests and sink.requests[0])
    assert hit.headers["webhook-signature"].startswith("v1a,")
    assert verify("standard-webhooks", hit.headers, hit.body, public_key=new_public)[0]
    assert not verify("standard-webhooks", hit.headers, hit.body, public_key=public)[0]


async def test_a_password_in_an_endpoint_url_is_masked_in_answers_and_logs_not_in_delivery(
    tmp_path: Path, sink: Receiver, log_buffer: io.StringIO
) -> None:
    """``http://user:pass@host/...`` (YAML or API) shows as ``http://user:***@host/...`` in the
    endpoint answers, ``/v1/status`` (what the UI reads) and the logs; deliveries still go to the
    real URL, its credentials sent as Basic auth."""
    password = "s3cr3t-pw"
    real = sink.url.replace("http://", f"http://hook:{password}@")
    masked = sink.url.replace("http://", "http://hook:***@")
    headers = bearer(ADMIN)
    async with running_daemon(tmp_path, CONFIG.replace("URL", real), headers=headers) as d:
        answers: list[Any] = [await d.create_endpoint(id="api", url=real, events=["x.*"])]
        patch = {"policy": "fast", "url": masked}  # the masked URL sent back keeps the real one
        answers.append(await d.request("PATCH", "/v1/endpoints/api", json=patch))
        for path in ("/v1/endpoints", "/v1/endpoints/api", "/v1/endpoints/yaml", "/v1/status"):
            answers.append((await d.request("GET", path))[1])
        assert answers[0]["url"] == answers[1][1]["url"] == answers[3]["url"] == masked
        assert {ep["id"]: ep["url"] for ep in answers[2]["items"]} == {
            "yaml": masked,
            "api": masked,
        }
        assert {ep["id"]: ep["url"] for ep in answers[5]["endpoints"]} == {
            "yaml": masked,
            "api": masked,
        }
        await d.post_event("x.y", {})
        await d.post_event("yaml.z", {})
        await wait_for(lambda: len(sink.requests) == 2)
        _, page = await d.request("GET", "/v1/deliveries")
        answers += [await d.delivery(item["id"]) for item in page["items"]]
    basic = "Basic " + base64.b64encode(f"hook:{password}".encode()).decode()
    assert [r.headers.get("Authorization") for r in sink.requests] == [basic, basic]
    assert password not in str(answers) + log_buffer.getvalue()
