"""A plugin that hangs or raises fails that attempt with its error recorded, bounded in time,
and the daemon keeps serving (SPEC §6; hookd/isolation.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hookd import isolation
from tests.support import Receiver, running_daemon, wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

HANGING = """
import os, time

RELEASE = {release!r}

def _hang():
    while not os.path.exists(RELEASE):  # until the test lets go
        time.sleep(0.02)

def setup(registry, options):
    def stuck(event):
        _hang()
        return b"{{}}"

    def raising(event):
        raise ValueError("no layout for " + event.type)

    class StuckSigner:
        blocking = False

        def __init__(self, config):
            pass

        def sign(self, msg, now):
            _hang()
            return {{}}

        def public_keys(self):
            return []

    registry.add_format("stuck", stuck)
    registry.add_format("raising", raising)
    registry.add_signer("stuck-signer", StuckSigner)
"""

CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
policies:
  once: {{{{delays: []}}}}
plugins:
  - path: PLUGIN
endpoints:
  - {{{{id: stuck-format, url: URL, events: [a], policy: once, body: stuck,
      signing: {{{{secret: {SECRET}}}}}}}}}
  - {{{{id: stuck-signer, url: URL, events: [b], policy: once,
      signing: {{{{scheme: stuck-signer, secret: x}}}}}}}}
  - {{{{id: raising, url: URL, events: [c], policy: once, body: raising,
      signing: {{{{secret: {SECRET}}}}}}}}}
  - {{{{id: healthy, url: URL, events: ["*"], signing: {{{{secret: {SECRET}}}}}}}}}
"""


@pytest.fixture
def release(tmp_path: Path) -> Iterator[Path]:
    """The file whose existence lets every hung plugin call return (at the end of the test)."""
    path = tmp_path / "release"
    try:
        yield path
    finally:
        path.touch()


async def test_hung_and_raising_plugins_fail_their_attempt_and_nothing_else(
    tmp_path: Path, sink: Receiver, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "PLUGIN_TIMEOUT_S", 0.5)
    plugin = tmp_path / "hanging.py"
    plugin.write_text(HANGING.format(release=str(release)))
    text = CONFIG.replace("PLUGIN", str(plugin)).replace("URL", sink.url)
    async with running_daemon(tmp_path, text) as d:
        ids = {}
        for kind in ("a", "b", "c"):
            status, body = await d.post_event(kind, {"n": 1})
            assert status == 202
            ids[kind] = {x["endpoint"]: x["id"] for x in body["deliveries"]}

        async def final(delivery_id: str) -> dict[str, object] | None:
            row = await d.delivery(delivery_id)
            return row if row["status"] == "failed" else None

        stuck_format = await wait_for(lambda: final(ids["a"]["stuck-format"]))
        stuck_signer = await wait_for(lambda: final(ids["b"]["stuck-signer"]))
        raising = await wait_for(lambda: final(ids["c"]["raising"]))
        assert "plugin" in str(stuck_format["last_error"])
        assert "body format 'stuck' did not return within 0.5s" in str(stuck_format["last_error"])
        assert "signing scheme 'stuck-signer' did not return" in str(stuck_signer["last_error"])
        assert "ValueError: no layout for c" in str(raising["last_error"])
        # the daemon kept serving: health, the admin API and the healthy endpoint's deliveries
        status, _ = await d.request("GET", "/healthz")
        assert status == 200
        await wait_for(lambda: len(sink.requests) >= 3)
        assert all(r.path == "/hook" for r in sink.requests)
        # a delivery view whose format hangs answers, without a payload
        view = await d.delivery(ids["a"]["stuck-format"])
        assert view["payload"] is None


FILTERS = """
import os, time

RELEASE = {release!r}

def setup(registry, options):
    def stuck(event, endpoint):
        while not os.path.exists(RELEASE):
            time.sleep(0.02)
        return True

    def broken(event, endpoint):
        raise KeyError("customer")

    registry.add_filter("stuck", stuck)
    registry.add_filter("broken", broken)
"""

FILTER_CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
plugins:
  - path: PLUGIN
endpoints:
  - {{{{id: stuck, url: URL, filter: stuck, signing: {{{{secret: {SECRET}}}}}}}}}
  - {{{{id: broken, url: URL, filter: broken, signing: {{{{secret: {SECRET}}}}}}}}}
  - {{{{id: plain, url: URL, signing: {{{{secret: {SECRET}}}}}}}}}
"""


async def test_a_plugin_filter_that_hangs_or_raises_says_no_and_ingest_goes_on(
    tmp_path: Path, sink: Receiver, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event is accepted and goes where no failing filter stands in the way; the failed
    decisions are logged; a replay decides the same way."""
    monkeypatch.setattr(isolation, "PLUGIN_TIMEOUT_S", 0.3)
    plugin = tmp_path / "filters.py"
    plugin.write_text(FILTERS.format(release=str(release)))
    text = FILTER_CONFIG.replace("PLUGIN", str(plugin)).replace("URL", sink.url)
    async with running_daemon(tmp_path, text) as d:
        status, body = await d.post_event("x", {"n": 1})
        assert status == 202
        assert [x["endpoint"] for x in body["deliveries"]] == ["plain"]
        status, replayed = await d.request("POST", "/v1/endpoints/broken/replay", json={})
        assert (status, replayed["created"]) == (202, 0)
        status, _ = await d.request("GET", "/healthz")
        assert status == 200
        await wait_for(lambda: sink.requests)
