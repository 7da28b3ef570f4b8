"""``hookd endpoints create | update | delete`` as subprocesses against a real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import pty
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from hookd.signing import verify
from tests.support import (
    Daemon,
    Receiver,
    Result,
    assert_one_line_error,
    completed,
    config,
    endpoint,
    hmac_signing,
    hookd,
    running_daemon,
    spawn,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test here runs python -m hookd

SAVE_NOTE = "Save this secret now; hookd will not show it again."
CONFIG = config(
    endpoint("sink", "URL", events='["yaml.*"]', policy="once", signing=hmac_signing()),
    policies="  once: {delays: []}\n",
)


def _daemon(tmp_path: Path, sink: Receiver) -> AbstractAsyncContextManager[Daemon]:
    return running_daemon(tmp_path, CONFIG.replace("URL", sink.url))


def _fields(out: str) -> dict[str, str]:
    """The ``name  value`` lines of the endpoint block (up to the first blank line), as a dict."""
    rows = (line.split(None, 1) for line in out.split("\n\n")[0].splitlines())
    return {row[0]: row[1] for row in rows if len(row) == 2}


async def _endpoint_ids(d: Daemon) -> list[str]:
    status, body = await d.request("GET", "/v1/endpoints")
    assert status == 200, body
    return [ep["id"] for ep in body["items"]]


async def _fanned_out_to(d: Daemon, type_: str) -> list[str]:
    status, body = await d.post_event(type_, {})
    assert status == 202, body
    return [item["endpoint"] for item in body["deliveries"]]


async def test_create_prints_the_secret_once_and_a_real_delivery_verifies_with_it(
    tmp_path: Path, sink: Receiver
) -> None:
    async with _daemon(tmp_path, sink) as d:
        created = await hookd(
            *f"endpoints create {sink.url} --id mine --url {d.url} --events".split(),
            "task.*, order.*",
        )
        assert created.code == 0, created.err
        assert created.out.startswith("created endpoint mine\n")
        assert SAVE_NOTE in created.out
        [secret] = [line for line in created.out.splitlines() if line.startswith("whsec_")]
        fields = _fields(created.out)
        assert fields["events"] == "task.*, order.*"
        assert fields["signing"] == "standard-webhooks"
        assert "allow_private_networks" in created.err  # 127.0.0.1 is a local address

        listing, shown = await asyncio.gather(
            hookd("endpoints", "list", "--url", d.url),
            hookd("endpoints", "show", "mine", "--url", d.url),
        )
        row = next(line.split() for line in listing.out.splitlines() if line.startswith("mine "))
        assert row[:5] == ["mine", "enabled", sink.url, "task.*,order.*", "standard-webhooks"]
        assert row[6] == "api"
        assert secret not in shown.out

        await d.post_event("task.updated", {"n": 1})
        hit = await wait_for(lambda: sink.requests and sink.requests[0])
        assert Webhook(secret).verify(hit.body, hit.headers)["data"] == {"n": 1}
        assert verify("standard-webhooks", hit.headers, hit.body, secret=secret)[0]


async def test_create_passes_every_setting_and_shows_a_public_key_for_rsa(
    tmp_path: Path, sink: Receiver
) -> None:
    async with _daemon(tmp_path, sink) as d:
        hmac_made, rsa_made = await asyncio.gather(
            hookd(
                *f"endpoints create {sink.url} --id ci --events task.* --scheme hmac-sha256"
                " --secret s3cret --policy once --body taskview --header X-Team:core"
                f" --rate-limit 50/s --max-in-flight 4 --ordering fifo --json --url {d.url}".split()
            ),
            hookd(
                *f"endpoints create {sink.url} --id crm --events Contact* --scheme rsa-sha256"
                f" --body taskee --url {d.url}".split()
            ),
        )
        assert hmac_made.code == 0, hmac_made.err
        answer = json.loads(hmac_made.out)
        assert answer["secret"] == "s3cret"
        assert answer["signing"] == {"scheme": "hmac-sha256"}
        expected: dict[str, Any] = {"policy": "once", "body": "taskview", "ordering": "fifo"}
        expected |= {"headers": {"X-Team": "[redacted]"}, "rate_limit": 50, "max_in_flight": 4}
        assert {key: answer[key] for key in expected} == expected

        assert rsa_made.code == 0, rsa_made.err
        assert SAVE_NOTE not in rsa_made.out  # the private key is never shown
        assert "the private key stays inside hookd" in rsa_made.out
        public_key = rsa_made.out[rsa_made.out.index("-----BEGIN PUBLIC KEY-----") :]
        public_key = public_key[: public_key.index("-----END PUBLIC KEY-----") + 24]

        await d.post_event("task.updated", {"task": 7})
        await d.post_event("ContactCreate", {"contact": 9})
        await wait_for(lambda: len(sink.requests) == 2)
        by_scheme = {
            "hmac-sha256" if "X-Webhook-Signature" in hit.headers else "rsa-sha256": hit
            for hit in sink.requests
        }
        ci = by_scheme["hmac-sha256"]
        assert verify("hmac-sha256", ci.headers, ci.body, secret="s3cret")[0]
        assert ci.headers["X-Team"] == "core"
        body = json.loads(ci.body)
        assert (body["event"], body["task"]) == ("task.updated", 7)  # the taskview body
        crm = by_scheme["rsa-sha256"]
        assert verify("rsa-sha256", crm.headers, crm.body, public_key=public_key)[0]


async def test_update_changes_events_and_url(tmp_path: Path, sink: Receiver) -> None:
    async with _daemon(tmp_path, sink) as d:
        await d.create_endpoint(id="mine", url=sink.url, events=["task.*"])
        updated = await hookd(
            "endpoints", "update", "mine", sink.url + "/v2", "--events", "order.*", "--url", d.url
        )
        assert updated.code == 0, updated.err
        assert updated.out.startswith("updated endpoint mine\n")
        assert _fields(updated.out)["events"] == "order.*"

        assert await _fanned_out_to(d, "task.updated") == []
        assert await _fanned_out_to(d, "order.created") == ["mine"]
        hit = await wait_for(lambda: sink.requests and sink.requests[0])
        assert hit.path == "/hook/v2"


async def test_update_errors_are_one_line(tmp_path: Path, sink: Receiver) -> None:
    """A YAML endpoint gives the API's 409; no setting at all is a usage error, exit 2."""
    async with _daemon(tmp_path, sink) as d:
        await d.create_endpoint(id="mine", url=sink.url)
        owned, empty, bad_rate = await asyncio.gather(
            hookd("endpoints", "update", "sink", "--events", "order.*", "--url", d.url),
            hookd("endpoints", "update", "mine", "--url", d.url),
            hookd("endpoints", "update", "mine", "--rate-limit", "fast", "--url", d.url),
        )
        assert_one_line_error(owned, 1, "declared in the YAML", "HTTP 409 owned_by_config")
        assert_one_line_error(empty, 2, "nothing to change")
        assert_one_line_error(bad_rate, 2, "--rate-limit", "50/s")


async def test_delete_needs_yes_off_a_terminal_and_removes_the_endpoint(
    tmp_path: Path, sink: Receiver
) -> None:
    async with _daemon(tmp_path, sink) as d:
        await d.create_endpoint(id="gone", url=sink.url)
        await d.post_event("task.updated", {})
        await wait_for(lambda: sink.requests)

        refused, owned, missing = await asyncio.gather(
            hookd("endpoints", "delete", "gone", "--url", d.url),
            hookd("endpoints", "delete", "sink", "--yes", "--url", d.url),
            hookd("endpoints", "delete", "nope", "--yes", "--url", d.url),
        )
        assert_one_line_error(refused, 2, "pass --yes")
        assert_one_line_error(owned, 1, "declared in the YAML", "HTTP 409 owned_by_config")
        assert_one_line_error(missing, 1, "HTTP 404")
        assert await _endpoint_ids(d) == ["sink", "gone"]

        deleted = await hookd("endpoints", "delete", "gone", "--yes", "--url", d.url)
        assert deleted.code == 0, deleted.err
        assert deleted.out == "deleted endpoint gone and its delivery history\n"
        listing = await hookd("endpoints", "list", "--url", d.url)
        assert [line.split()[0] for line in listing.out.splitlines()[1:]] == ["sink"]
        status, history = await d.request("GET", "/v1/deliveries", params={"endpoint": "gone"})
        assert (status, history["items"]) == (200, [])


async def _on_a_terminal(*args: str, typed: str) -> Result:
    """Run ``python -m hookd ARGS`` with a pseudo-terminal as stdin, ``typed`` waiting on it."""
    controller, terminal = pty.openpty()
    try:
        proc = await spawn(*args, stdin=terminal)
    finally:
        os.close(terminal)
    try:
        os.write(controller, typed.encode())
        return await completed(proc)
    finally:
        os.close(controller)


async def test_delete_on_a_terminal_asks_first(tmp_path: Path, sink: Receiver) -> None:
    async with _daemon(tmp_path, sink) as d:
        await d.create_endpoint(id="asked", url=sink.url)
        question = "Delete endpoint asked and its delivery history? [y/N]"

        kept = await _on_a_terminal("endpoints", "delete", "asked", "--url", d.url, typed="n\n")
        assert kept.code == 1, kept
        assert question in kept.err
        assert "not deleted" in kept.err
        assert "asked" in await _endpoint_ids(d)

        gone = await _on_a_terminal("endpoints", "delete", "asked", "--url", d.url, typed="y\n")
        assert gone.code == 0, gone
        assert question in gone.err
        assert "asked" not in await _endpoint_ids(d)


async def test_create_refuses_bad_input_with_one_line(tmp_path: Path, sink: Receiver) -> None:
    """A URL the API refuses is its 400 message (exit 1); a malformed option is exit 2."""
    async with _daemon(tmp_path, sink) as d:
        bad_url, bad_header, bad_policy = await asyncio.gather(
            hookd("endpoints", "create", "ftp://example.com/in", "--url", d.url),
            hookd("endpoints", "create", sink.url, "--header", "X-Team", "--url", d.url),
            hookd("endpoints", "create", sink.url, "--policy", "fast", "--url", d.url),
        )
        assert_one_line_error(bad_url, 1, "http:// or https:// URL", "HTTP 400 invalid_field")
        assert_one_line_error(bad_header, 2, "NAME:VALUE")
        assert_one_line_error(bad_policy, 1, "no policy named 'fast'", "HTTP 400")
        assert await _endpoint_ids(d) == ["sink"]


async def test_help_explains_each_new_command_with_an_example() -> None:
    helps = await asyncio.gather(
        *(hookd("endpoints", action, "--help") for action in ("create", "update", "delete"))
    )
    for result in helps:
        assert result.code == 0, result.err
        assert "example" in result.out
        assert "--url URL" in result.out
    create, update, delete = (result.out for result in helps)
    assert "shown only this once" in create
    assert "allow_private_networks" in create
    assert "--no-headers" in update
    assert "--yes" in delete
