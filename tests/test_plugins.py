"""Plugins: loading (path or module), option checks, errors naming the YAML entry, and a plugin
that fails at delivery time failing only that attempt (SPEC §5, §6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hookd import plugins
from hookd.config import parse
from hookd.errors import ConfigError
from hookd.registry import EndpointView, Event, Registry
from tests.support import Receiver, config, endpoint, running_daemon, wait_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "example_plugin.py"


def registry_for(yaml_text: str, source: Path) -> Registry:
    source.write_text(yaml_text)
    return plugins.load_registry(parse(yaml_text, source=str(source), env={}))


def test_the_example_plugin_adds_a_format_a_filter_and_an_observer(tmp_path: Path) -> None:
    """plugins/example_plugin.py registers ``cloudevents``, ``data_match`` and a failure log."""
    registry = registry_for(
        f"plugins:\n  - path: {EXAMPLE}\n"
        "    options: {source: 'urn:app', failures_log: x.jsonl}\n",
        tmp_path / "hookd.yaml",
    )
    event = Event(
        id="evt_1", type="task.updated", timestamp="2026-01-02T03:04:05.000Z", data={"a": 1}
    )
    assert json.loads(registry.formats["cloudevents"](event)) == {
        "specversion": "1.0",
        "id": "evt_1",
        "source": "urn:app",
        "type": "task.updated",
        "time": "2026-01-02T03:04:05.000Z",
        "datacontenttype": "application/json",
        "data": {"a": 1},
    }
    match = registry.filters["data_match"]
    view = EndpointView(id="e", url="https://e/", events=("*",), options={"match": {"a": 1}})
    assert match(event, view)
    assert not match(Event(id="2", type="t", timestamp="", data={"a": 2}), view)
    assert len(registry.observers) == 1
    assert "standard" in registry.formats  # the built-ins are still there


def test_plugin_options_are_checked_when_the_config_is_loaded(tmp_path: Path) -> None:
    """An unknown or missing option fails the load with the plugin's FILE:LINE: plugins[i]."""
    text = f"listen: 8080\nplugins:\n  - path: {EXAMPLE}\n    options: {{colour: blue}}\n"
    with pytest.raises(ConfigError) as caught:
        registry_for(text, tmp_path / "hookd.yaml")
    [problem] = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'hookd.yaml'}:3: plugins[0]: cannot load ")
    assert problem.endswith("unknown option 'colour' (known: failures_log, source)")


BROKEN = {
    "no_setup.py": ("x = 1\n", "has no setup(registry, options) function"),
    "raises.py": ("def setup(registry, options):\n    raise RuntimeError('boom')\n", "boom"),
    "async_setup.py": (
        "async def setup(registry, options):\n    pass\n",
        "must be a plain function",
    ),
    "syntax.py": ("def setup(:\n", "invalid syntax"),
    "clash.py": (
        "def setup(registry, options):\n    registry.add_format('standard', lambda e: b'')\n",
        "body format 'standard' is already registered",
    ),
}


def test_every_broken_plugin_is_reported_at_once_naming_its_entry(tmp_path: Path) -> None:
    """Five broken plugins and a missing file: six problems, each at its own plugins[i] line."""
    entries = []
    for name, (code, _) in BROKEN.items():
        (tmp_path / name).write_text(code)
        entries.append(f"  - path: {name}\n")
    entries.append("  - path: missing.py\n")
    text = "plugins:\n" + "".join(entries)
    with pytest.raises(ConfigError) as caught:
        registry_for(text, tmp_path / "hookd.yaml")
    problems = caught.value.problems
    expected = [why for _, why in BROKEN.values()] + ["no such file"]
    assert len(problems) == len(expected)
    for i, (problem, why) in enumerate(zip(problems, expected, strict=True)):
        assert problem.startswith(f"{tmp_path / 'hookd.yaml'}:{i + 2}: plugins[{i}]: cannot load")
        assert why in problem, problem


def test_a_plugin_can_be_an_importable_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``module: dotted.name`` imports the module from sys.path and calls its setup."""
    package = tmp_path / "acme_hooks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "formats.py").write_text(
        "def setup(registry, options):\n"
        "    registry.add_format(options['name'], lambda event: b'{}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = registry_for(
        "plugins:\n  - {module: acme_hooks.formats, options: {name: empty}}\n",
        tmp_path / "hookd.yaml",
    )
    assert registry.formats["empty"](Event(id="1", type="t", timestamp="", data=None)) == b"{}"


CLOUD = config(
    endpoint(
        "acme",
        "URL/acme",
        body="cloudevents",
        filter="data_match",
        options="{match: {tenant: acme}}",
    )
    + endpoint("flaky", "URL/flaky", events='["flaky.*"]', policy="once"),
    policies="  once: {delays: []}\n",
    extra=f"plugins:\n  - path: {EXAMPLE}\n"
    '    options: {source: "https://app.example.com", failures_log: FAILURES}\n',
)


async def test_the_example_plugin_shapes_routes_and_logs_real_deliveries(
    tmp_path: Path, sink: Receiver
) -> None:
    """In the running daemon: only acme's events reach the acme endpoint, as CloudEvents; a
    delivery that ends failed (HTTP 500, no retries) is appended to the failures log."""
    failures = tmp_path / "failures.jsonl"
    text = CLOUD.replace("URL", sink.url.removesuffix("/hook")).replace("FAILURES", str(failures))
    sink.responses = []
    async with running_daemon(tmp_path, text) as d:
        status, body = await d.post_event("task.created", {"tenant": "acme", "n": 1})
        assert status == 202
        assert [x["endpoint"] for x in body["deliveries"]] == ["acme"]
        status, body = await d.post_event("task.created", {"tenant": "globex"})
        assert body["deliveries"] == []
        await wait_for(lambda: sink.requests)
        cloud = json.loads(sink.requests[0].body)
        assert cloud["source"] == "https://app.example.com"
        assert cloud["data"] == {"tenant": "acme", "n": 1}

        sink.default = 500
        status, body = await d.post_event("flaky.thing", {})
        # (the plugin's thread opens the file, then writes: wait for a whole line)
        await wait_for(lambda: failures.exists() and failures.read_text().endswith("\n"))
        line = json.loads(failures.read_text().splitlines()[0])
        assert line["delivery"] == body["deliveries"][0]["id"]
        assert (line["endpoint"], line["status_code"], line["attempts"]) == ("flaky", 500, 1)


FAULTY_PLUGIN = """
def setup(registry, options):
    def explode(event):
        raise RuntimeError("the format exploded")

    def loud_observer(outcome):
        raise RuntimeError("the observer exploded")

    class HeaderToken:
        blocking = False

        def __init__(self, config):
            self.header = config.options["header"]
            self.value = config.keys[0].material

        def sign(self, msg, now):
            return {self.header: self.value}

        def public_keys(self):
            return []

    registry.add_format("explode", explode)
    registry.add_observer(loud_observer)
    registry.add_signer("header-token", HeaderToken)
"""

FAULTY = config(
    endpoint("broken", "URL", body="explode", policy="once")
    + endpoint(
        "fine",
        "URL",
        signing="{scheme: header-token, secret: key-123, options: {header: X-Api-Key}}",
    ),
    policies="  once: {delays: []}\n",
    extra="plugins:\n  - path: faulty.py\n",
)


async def test_a_plugin_that_raises_fails_only_that_attempt(tmp_path: Path, sink: Receiver) -> None:
    """A body format that raises fails its delivery with the error recorded; an observer that
    raises is ignored; the daemon keeps serving and a plugin signer (with options) signs."""
    (tmp_path / "faulty.py").write_text(FAULTY_PLUGIN)
    async with running_daemon(tmp_path, FAULTY.replace("URL", sink.url)) as d:
        status, body = await d.post_event("task.created", {"n": 1})
        assert status == 202
        ids = {x["endpoint"]: x["id"] for x in body["deliveries"]}
        broken, fine = await d.settled(ids["broken"], ids["fine"])
        [failed] = await d.attempts(ids["broken"])
        [succeeded] = await d.attempts(ids["fine"])
        assert (broken.status, fine.status) == ("failed", "succeeded")
        assert failed.error is not None
        assert "RuntimeError: the format exploded" in failed.error
        assert broken.last_error == failed.error
        assert succeeded.error is None
        assert [r.headers["X-Api-Key"] for r in sink.requests] == ["key-123"]
        status, _ = await d.request("GET", "/readyz")
        assert status == 200
        assert (await d.post_event("task.created", {"n": 2}))[0] == 202
