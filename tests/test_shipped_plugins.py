"""The plugins shipped in plugins/ (slack, discord, content_digest), end to end through a real
daemon and receiver, plus their option checks."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from hookd import plugins
from hookd.config import parse
from hookd.errors import ConfigError
from tests.support import Receiver, running_daemon, wait_for

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

CONFIG = """
listen: 127.0.0.1:{port}
storage:
  path: {db}
delivery:
  allow_private_networks: true
plugins:
  - path: PLUGINS/slack.py
    options:
      username: hookd
      templates:
        tasks: "*{{data.task.title}}* was {{type}} <{{data.by}}>"
  - path: PLUGINS/discord.py
    options:
      username: hookd
      color: 0x00FF00
  - path: PLUGINS/content_digest.py
    options:
      headers:
        X-Sender: hookd
endpoints:
  - id: slack
    url: URL/slack
    body: slack
    signing: {{secret: SECRET}}
  - id: slack-tasks
    url: URL/slack-tasks
    body: "slack:tasks"
    signing: {{secret: SECRET}}
  - id: discord
    url: URL/discord
    body: discord
    signing: {{secret: SECRET}}
  - id: digest
    url: URL/digest
    signing: {{scheme: standard-webhooks+digest, secret: SECRET}}
"""

DATA = {"task": {"title": "Ship <!channel> & co"}, "by": "@everyone"}


async def test_each_shipped_plugin_shapes_its_deliveries(tmp_path: Path, sink: Receiver) -> None:
    text = (
        CONFIG.replace("URL", sink.url.removesuffix("/hook"))
        .replace("PLUGINS", str(PLUGINS))
        .replace("SECRET", SECRET)
    )
    async with running_daemon(tmp_path, text) as d:
        status, body = await d.post_event("task.created", DATA)
        assert status == 202
        deliveries = {x["endpoint"]: x["id"] for x in body["deliveries"]}
        await wait_for(lambda: len(sink.requests) == 4)
    got = {r.path.strip("/"): r for r in sink.requests}

    slack = json.loads(got["slack"].body)
    assert slack["username"] == "hookd"
    assert slack["blocks"][0]["text"]["text"] == "task.created"
    code = slack["blocks"][2]["text"]["text"]
    assert code.startswith("```")
    assert "&lt;!channel&gt; &amp; co" in code
    assert "<!channel>" not in code

    line = json.loads(got["slack-tasks"].body)
    assert line == {
        "text": "*Ship &lt;!channel&gt; &amp; co* was task.created <@everyone>",
        "username": "hookd",
    }

    discord = json.loads(got["discord"].body)
    assert discord["allowed_mentions"] == {"parse": []}  # data cannot ping anyone
    [embed] = discord["embeds"]
    assert (embed["title"], embed["color"]) == ("task.created", 0x00FF00)
    assert json.loads(embed["description"].removeprefix("```json\n").removesuffix("\n```")) == DATA
    assert embed["fields"][0]["value"] == f"`{body['id']}`"

    digest = got["digest"]
    expected = base64.b64encode(hashlib.sha256(digest.body).digest()).decode()
    assert digest.headers["Content-Digest"] == f"sha-256=:{expected}:"
    assert digest.headers["X-Hookd-Delivery"] == deliveries["digest"]
    assert digest.headers["X-Sender"] == "hookd"
    Webhook(SECRET).verify(digest.body, digest.headers)  # the wrapped scheme still signs


@pytest.mark.parametrize(
    ("plugin", "options", "needle"),
    [
        ("slack.py", "{colour: red}", "unknown option 'colour'"),
        ("slack.py", "{template: 'broken {data'}", "write {{ and }} for literal braces"),
        ("slack.py", "{templates: [a]}", "'templates' maps a name"),
        ("discord.py", "{color: purple}", "RGB integer"),
        ("content_digest.py", "{wrap: nope}", "no signing scheme named 'nope'"),
        ("content_digest.py", "{headers: {X-A: 1}}", "string values"),
    ],
)
def test_bad_options_stop_the_load_naming_the_plugin(
    tmp_path: Path, plugin: str, options: str, needle: str
) -> None:
    text = f"plugins:\n  - path: {PLUGINS / plugin}\n    options: {options}\n"
    source = tmp_path / "hookd.yaml"
    source.write_text(text)
    with pytest.raises(ConfigError) as caught:
        plugins.load_registry(parse(text, source=str(source), env={}))
    [problem] = caught.value.problems
    assert problem.startswith(f"{source}:2: plugins[0]: cannot load {PLUGINS / plugin}")
    assert needle in problem
