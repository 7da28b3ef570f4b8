"""The command line as users run it: help, one-line errors, finding the daemon, send, status."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from hookd.cli.client import resolve_url
from hookd.cli.parser import build_parser
from tests.support import (
    ADMIN,
    INGEST,
    Receiver,
    assert_one_line_error,
    auth,
    clean_env,
    config,
    endpoint,
    free_port,
    hmac_signing,
    hookd,
    running_daemon,
    wait_for,
)

CONFIG = config(endpoint("sink", "URL", events='["task.*"]', signing=hmac_signing()))

TOKENS = config(extra=auth(ingest=True))

COMMANDS = [
    "run",
    "check",
    "send",
    "status",
    "endpoints",
    "deliveries",
    "replay",
    "receive",
    "keygen",
    "demo",
]
LEAVES = [
    ["run"],
    ["check"],
    ["send"],
    ["status"],
    ["endpoints"],
    *(["endpoints", a] for a in ("list", "show", "enable", "disable", "test", "rotate-secret")),
    ["deliveries"],
    *(["deliveries", a] for a in ("list", "show", "retry")),
    ["replay"],
    ["receive"],
    ["keygen"],
    ["demo"],
]


@pytest.mark.slow
async def test_top_level_help_lists_every_command_with_a_line_of_help() -> None:
    result = await hookd("--help")
    assert result.code == 0
    for command in COMMANDS:
        line = next(s for s in result.out.splitlines() if s.strip().startswith(command + " "))
        assert len(line.split()) > 2, line  # the name, then its one-line help


def _help_of(words: list[str]) -> str:
    parser: argparse.ArgumentParser = build_parser()
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser.format_help()


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_every_command_help_has_a_description_and_an_example(words: list[str]) -> None:
    text = _help_of(words)
    usage, _, rest = text.partition("\n\n")
    assert usage.startswith(f"usage: hookd {' '.join(words)}")
    assert rest.split("\n")[0].strip(), "no description"
    assert "example" in text
    assert "\n  hookd " + words[0] in text.split("example", 1)[1]


@pytest.mark.slow
async def test_a_subcommand_help_runs_as_a_command() -> None:
    result = await hookd("deliveries", "list", "--help")
    assert result.code == 0
    assert "--status" in result.out
    assert "example" in result.out


@pytest.mark.slow
async def test_client_options_are_accepted_after_the_subcommand() -> None:
    """--url, -c and --json come after the (sub)command they belong to."""
    options = ("--url", "http://127.0.0.1:1", "--json", "-c", "nope.yaml")
    result = await hookd("deliveries", "show", "d", *options)
    assert_one_line_error(result, 1, "cannot reach hookd at http://127.0.0.1:1")


@pytest.mark.slow
async def test_an_unreachable_daemon_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = await hookd("status", "--url", url)
    line = assert_one_line_error(result, 1, f"cannot reach hookd at {url}", "is it running?")
    assert "(hookd run)" in line


def test_without_any_setting_the_default_address_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("HOOKD_URL", "HOOKD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_url(argparse.Namespace(url=None, config=None)) == "http://127.0.0.1:8080"


@pytest.mark.slow
async def test_bad_data_json_is_a_usage_error_on_one_line() -> None:
    result = await hookd("send", "task.updated", "--data", "{bad", "--url", "http://127.0.0.1:1")
    assert_one_line_error(result, 2, "--data is not valid JSON")


@pytest.mark.slow
async def test_a_malformed_url_is_a_usage_error() -> None:
    option, env = await asyncio.gather(
        hookd("status", "--url", "localhost:8080"),
        hookd("status", env=clean_env(HOOKD_URL="ftp://x")),
    )
    assert_one_line_error(option, 2, "--url must look like http://")
    assert_one_line_error(env, 2, "$HOOKD_URL")


@pytest.mark.slow
async def test_unknown_options_and_missing_arguments_exit_2() -> None:
    cases = {
        ("status", "--bogus"): "unrecognized arguments",
        ("endpoints",): "required",
        ("deliveries", "list", "--status", "lost"): "invalid choice",
        ("replay", "ci", "--since", "yesterday"): "--since",
        ("receive", "--status", "500,abc"): "--status",
    }
    results = await asyncio.gather(*(hookd(*args) for args in cases))
    for result, needle in zip(results, cases.values(), strict=True):
        assert_one_line_error(result, 2, needle)


@pytest.mark.slow
async def test_an_unreadable_config_is_reported_as_such(tmp_path: Path) -> None:
    result = await hookd("status", "-c", str(tmp_path / "missing.yaml"))
    assert result.code == 2
    assert "cannot read" in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
async def test_send_posts_an_event_and_prints_its_deliveries(
    tmp_path: Path, sink: Receiver
) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        result = await hookd("send", "task.updated", "--data", '{"a": 1}', "--url", d.url)
        assert result.code == 0, result.err
        assert "1 delivery queued" in result.out
        assert "sink" in result.out
        await wait_for(lambda: sink.requests)
        assert json.loads(sink.requests[0].body)["data"] == {"a": 1}

        answer = await hookd("send", "task.created", "--id", "e-1", "--json", "--url", d.url)
        body = json.loads(answer.out)
        assert body["id"] == "e-1"
        assert [x["endpoint"] for x in body["deliveries"]] == ["sink"]

        nobody = await hookd("send", "order.created", "--url", d.url)
        assert nobody.code == 0
        assert "no enabled endpoint subscribes to order.created" in nobody.out


@pytest.mark.slow
async def test_send_repeated_id_creates_nothing_new(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        first = await hookd("send", "task.x", "--id", "same", "--url", d.url, "--json")
        again = await hookd("send", "task.x", "--id", "same", "--url", d.url)
        assert again.code == 0
        assert "already accepted" in again.out
        assert json.loads(first.out)["deliveries"][0]["id"] in again.out


@pytest.mark.slow
async def test_send_reads_data_from_a_file_and_from_stdin(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        (tmp_path / "event.json").write_text('{"from": "file"}')
        result = await hookd("send", "task.f", "--data", f"@{tmp_path}/event.json", "--url", d.url)
        assert result.code == 0, result.err
        result = await hookd("send", "task.s", "--data", "-", "--url", d.url, stdin='{"s": 1}')
        assert result.code == 0, result.err
        await wait_for(lambda: len(sink.requests) == 2)
        datas = sorted(json.dumps(json.loads(r.body)["data"]) for r in sink.requests)
        assert datas == ['{"from": "file"}', '{"s": 1}']


@pytest.mark.slow
async def test_status_prints_a_table_and_json(tmp_path: Path, sink: Receiver) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        await d.post_event("task.updated")
        await wait_for(lambda: sink.requests)
        text = await hookd("status", "--url", d.url)
        assert text.code == 0, text.err
        assert text.out.startswith("hookd ")
        assert "deliveries:" in text.out
        assert "scheduled" in text.out
        assert "in flight" in text.out
        row = next(line for line in text.out.splitlines() if line.startswith("sink "))
        assert row.split()[1:3] == ["enabled", "0"]
        raw = json.loads((await hookd("status", "--json", "--url", d.url)).out)
        assert {"version", "uptime_s", "deliveries", "scheduled", "in_flight"} <= set(raw)
        assert [ep["id"] for ep in raw["endpoints"]] == ["sink"]


@pytest.mark.slow
async def test_the_url_comes_from_config_then_environment(tmp_path: Path, sink: Receiver) -> None:
    """-c FILE, $HOOKD_URL, $HOOKD_CONFIG and ./hookd.yaml each lead to the daemon."""
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        config = str(d.config_path)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        cases: list[tuple[list[str], dict[str, str], Path]] = [
            (["-c", config], clean_env(), elsewhere),
            ([], clean_env(HOOKD_URL=d.url), elsewhere),
            ([], clean_env(HOOKD_CONFIG=config), elsewhere),
            ([], clean_env(), d.config_path.parent),  # ./hookd.yaml
            (["-c", config], clean_env(HOOKD_URL="http://127.0.0.1:1"), elsewhere),
        ]
        results = await asyncio.gather(
            *(hookd("status", "--json", *args, env=env, cwd=cwd) for args, env, cwd in cases)
        )
        for result in results:
            assert result.code == 0, result.err
            assert json.loads(result.out)["endpoints"][0]["id"] == "sink"


@pytest.mark.slow
async def test_a_config_missing_a_secret_variable_still_gives_its_address(
    tmp_path: Path, sink: Receiver
) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d:
        port = d.url.rsplit(":", 1)[1]
        other = tmp_path / "client.yaml"
        other.write_text(
            f"listen: 127.0.0.1:{port}\nendpoints:\n  - id: x\n    url: https://e.com\n"
            "    signing: {scheme: hmac-sha256, secret: '${NOT_SET_HERE}'}\n"
        )
        result = await hookd("status", "-c", str(other))
        assert result.code == 0, result.err


@pytest.mark.slow
async def test_tokens_come_from_the_environment(tmp_path: Path) -> None:
    async with running_daemon(tmp_path, TOKENS) as d:
        ingest_only = clean_env(HOOKD_INGEST_TOKEN=INGEST)
        admin_only = clean_env(HOOKD_ADMIN_TOKEN=ADMIN)
        sent, sent_as_admin, status, denied, anonymous = await asyncio.gather(
            hookd("send", "a.b", "--url", d.url, env=ingest_only),
            hookd("send", "a.b", "--url", d.url, env=admin_only),
            hookd("status", "--url", d.url, env=admin_only),
            hookd("status", "--url", d.url, env=ingest_only),
            hookd("status", "--url", d.url),
        )
        assert (sent.code, sent_as_admin.code, status.code) == (0, 0, 0)
        assert_one_line_error(denied, 1, "HTTP 403", "$HOOKD_ADMIN_TOKEN")
        assert_one_line_error(anonymous, 1, "HTTP 401")
