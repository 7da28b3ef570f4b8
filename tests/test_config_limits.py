"""Config reads have limits: file sizes, YAML aliases, nesting and tags; a reload never freezes
the daemon. Every refusal is ``FILE:LINE: key: message`` and exit 2, never a traceback."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from hookd import config as configuration
from hookd.errors import ConfigError
from tests.hostile import logged
from tests.support import (
    clean_env,
    running_daemon,
    start_process,
    stopped_at_exit,
    wait_for,
    wait_ready,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEAD = "listen: 127.0.0.1:8080\n"


def alias_bomb(listen: str = "127.0.0.1:8080") -> str:
    """A few hundred bytes that expand to 387 million values: 9 levels of 9 aliases."""
    lines = [f"listen: {listen}", "a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _limited() -> None:
    """In the child: at most 2 GiB of address space, so a runaway read fails fast."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def check(path: Path, within: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookd", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=within,
        preexec_fn=_limited,
        check=False,
    )


def assert_config_problems(result: subprocess.CompletedProcess[str], path: Path) -> list[str]:
    """Exit 2; every stderr line is ``FILE:LINE: ...``; no traceback, no 'unexpected error'."""
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines, result
    for line in lines:
        assert re.match(rf"^{re.escape(str(path))}:\d+: ", line), line
    assert "Traceback" not in result.stderr
    assert "unexpected error" not in result.stderr
    return lines


def endpoint_yaml(signing: str) -> str:
    return f"{HEAD}endpoints:\n  - id: a\n    url: https://example.com/h\n    signing: {signing}\n"


# --------------------------------------------------------------------------- file sizes


def test_a_secret_file_that_never_ends_is_refused_with_its_line(tmp_path: Path) -> None:
    """``secret_file: /dev/zero`` is read no further than the limit: one clear problem."""
    path = tmp_path / "h.yaml"
    path.write_text(endpoint_yaml("{secret_file: /dev/zero}"))
    [line] = assert_config_problems(check(path), path)
    assert line == (
        f"{path}:5: endpoints[0].signing.secret_file: cannot read /dev/zero: "
        "file is over 65536 bytes"
    )


def test_a_huge_key_file_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(b"A" * (3 << 20))
    path = tmp_path / "h.yaml"
    path.write_text(
        f"{HEAD}storage: {{secret_key_file: key.pem}}\n"
        "endpoints:\n  - id: a\n    url: https://example.com/h\n"
        "    signing: {scheme: rsa-sha256, private_key_file: key.pem}\n"
    )
    lines = assert_config_problems(check(path), path)
    assert lines == [
        f"{path}:2: storage.secret_key_file: cannot read key.pem: file is over 65536 bytes",
        f"{path}:6: endpoints[0].signing.private_key_file: cannot read key.pem: "
        "file is over 65536 bytes",
    ]


def test_a_config_file_over_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(HEAD + ("# padding\n" * 120_000))
    result = check(path)
    assert result.returncode == 2, result
    assert result.stderr.strip() == f"{path}: cannot read: file is over 1048576 bytes"


# --------------------------------------------------------------------------- YAML hazards

HAZARDS = {
    "billion laughs": (alias_bomb(), 7, "YAML aliases expand to more than 100000 values"),
    "recursive alias": (HEAD + "auth: &a {admin_tokens: [*a]}\n", 2, "recursive YAML alias *a"),
    "deep nesting": (
        HEAD + "plugins: " + "[" * 5000 + "]" * 5000 + "\n",
        2,
        "nested deeper than 64 levels",
    ),
    "custom tag": (HEAD + "shutdown_timeout: !custom 10s\n", 2, "unsupported YAML tag '!custom'"),
    "python tag": (
        HEAD + "shutdown_timeout: !!python/name:os.system 10s\n",
        2,
        "unsupported YAML tag '!!python/name:os.system'",
    ),
    "tag on a mapping": (HEAD + "log: !!set {level: info}\n", 2, "unsupported YAML tag"),
    "bad explicit int": (HEAD + "limits: {max_pending: !!int many}\n", 2, "cannot read"),
    "impossible date": (HEAD + "shutdown_timeout: 2026-13-45\n", 2, "cannot read"),
}


@pytest.mark.parametrize("name", list(HAZARDS))
def test_yaml_hazards_are_config_problems_with_a_line(tmp_path: Path, name: str) -> None:
    """Alias bombs, recursive aliases, deep nesting and tags: exit 2, FILE:LINE, quickly."""
    text, line, message = HAZARDS[name]
    path = tmp_path / "h.yaml"
    path.write_text(text)
    lines = assert_config_problems(check(path, within=30), path)
    assert any(f"{path}:{line}: " in item and message in item for item in lines), lines


def test_aliases_within_the_bound_still_work() -> None:
    """Anchors and aliases stay usable: one policy's delays reused by another."""
    config = configuration.parse(
        HEAD + "policies:\n  a: {delays: &d [1s, 2s]}\n  b: {delays: *d}\n", source="h.yaml"
    )
    assert config.policies["a"].delays == config.policies["b"].delays == (1.0, 2.0)


def test_explicit_standard_tags_are_still_read() -> None:
    config = configuration.parse(HEAD + "limits: {max_pending: !!int '50'}\n", source="h.yaml")
    assert config.limits.max_pending == 50


def test_a_hazard_inside_the_parser_names_its_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        configuration.parse(HEAD + "log:\n  level: !custom info\n", source="h.yaml")
    assert caught.value.problems == ["h.yaml:3: log.level: unsupported YAML tag '!custom'"]


# --------------------------------------------------------------------------- reload


@pytest.mark.slow
async def test_an_alias_bomb_on_sighup_is_rejected_while_the_daemon_keeps_serving(
    tmp_path: Path,
) -> None:
    """The running daemon answers /healthz during the reload, rejects the bomb, keeps its
    config and keeps accepting events."""
    yaml_text = "listen: 127.0.0.1:{port}\nstorage: {{path: {db}}}\n"
    with stopped_at_exit(start_process(tmp_path, yaml_text)) as process:
        await wait_ready(process)
        process.config_path.write_text(alias_bomb(process.url.removeprefix("http://")))
        process.signal(signal.SIGHUP)

        def healthz() -> int:
            with urllib.request.urlopen(process.url + "/healthz", timeout=8) as resp:
                return int(resp.status)

        assert await asyncio.to_thread(healthz) == 200
        rejected = await logged(process, "config.reload_rejected", within=30)
        assert "YAML aliases expand to more than 100000 values" in rejected["problems"][0]
        assert await asyncio.to_thread(healthz) == 200
        process.signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait) == 0


async def test_a_slow_reload_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While SIGHUP's config load is stuck (a slow disk), /healthz still answers; then the
    reload completes and its new endpoint is live."""
    entered, release = threading.Event(), threading.Event()
    real_load = configuration.load

    def slow_load(*args: object, **kwargs: object) -> configuration.Config:
        entered.set()
        release.wait(20)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    text = "listen: 127.0.0.1:{port}\nstorage: {{path: {db}}}\n"
    async with running_daemon(tmp_path, text) as daemon:
        added = (
            "endpoints:\n  - id: new\n    url: https://example.com/\n"
            f"    signing: {{secret: {SECRET}}}\n"
        )
        daemon.config_path.write_text(daemon.config_path.read_text() + added)
        monkeypatch.setattr(configuration, "load", slow_load)

        def probe() -> int | str:
            try:
                if not entered.wait(20):
                    return "reload never started"
                with urllib.request.urlopen(daemon.url + "/healthz", timeout=3) as resp:
                    return int(resp.status)
            except OSError as exc:
                return f"no answer: {exc}"
            finally:
                release.set()

        os.kill(os.getpid(), signal.SIGHUP)
        assert await asyncio.to_thread(probe) == 200

        async def reloaded() -> bool:
            status, body = await daemon.request("GET", "/v1/endpoints")
            return status == 200 and [e["id"] for e in body["items"]] == ["new"]

        await wait_for(reloaded, timeout=20)
