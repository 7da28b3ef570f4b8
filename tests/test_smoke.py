"""The whole path once: ingest, commit, sign, deliver."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from tests.support import Receiver, config, endpoint, hmac_signing, running_daemon, wait_for

CONFIG = config(endpoint("sink", "URL", signing=hmac_signing()))


async def test_event_is_delivered_signed(tmp_path: Path, sink: Receiver) -> None:
    """A 202'd event arrives at the endpoint with a valid sha256= signature."""
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        status, body = await d.post_event("task.updated", {"a": 1})
        assert status == 202
        assert [x["endpoint"] for x in body["deliveries"]] == ["sink"]
        await wait_for(lambda: sink.requests)
        got = sink.requests[0]
        expected = hmac.new(b"topsecret", got.body, hashlib.sha256).hexdigest()
        assert got.headers["X-Webhook-Signature"] == f"sha256={expected}"
