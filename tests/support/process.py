"""A real ``hookd run`` process, talked to over HTTP and signals like systemd would."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.daemon import write_config
from tests.support.polling import free_port, wait_for
from tests.support.slow import require_slow


@dataclass
class Process:
    """A real ``hookd run`` process; its output (JSON log lines) goes to ``log_path``."""

    proc: subprocess.Popen[bytes]
    url: str
    config_path: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The log as JSON objects: every line must be one (not a TTY → JSON lines)."""
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    async def logged(self, event: str, within: float = 10) -> dict[str, Any]:
        """The first log entry named ``event``, waiting for it to appear."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.log_events() if e.get("event") == event), None)

        found: dict[str, Any] = await wait_for(find, timeout=within, interval=0.02)
        return found

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    async def exited(self, within: float = 20) -> int:
        """Wait for the exit without blocking the loop (receivers in it keep answering)."""
        await wait_for(lambda: self.proc.poll() is not None, timeout=within, interval=0.02)
        code = self.proc.returncode
        assert code is not None
        return code


def start_process(
    tmp_path: Path,
    yaml_text: str,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    name: str = "hookd",
) -> Process:
    """Launch ``python -m hookd run -c FILE`` (filled in by ``write_config``); not yet ready."""
    require_slow("hookd run")
    port = port or free_port()
    path = write_config(tmp_path, yaml_text, port=port, name=name)
    log_path = tmp_path / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "HOOKD_CONFIG")}
    full_env.update(env or {})
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hookd", "run", "-c", str(path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    return Process(proc=proc, url=f"http://127.0.0.1:{port}", config_path=path, log_path=log_path)


async def wait_ready(process: Process, timeout: float = 20) -> None:
    """Wait until ``/readyz`` answers 200; fail at once if the process exits."""
    async with aiohttp.ClientSession() as http:

        async def ready() -> bool:
            if process.proc.poll() is not None:
                raise AssertionError(f"hookd exited {process.proc.returncode}:\n{process.log()}")
            try:
                async with http.get(process.url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, timeout=timeout, interval=0.05)


@contextlib.contextmanager
def stopped_at_exit(process: Process) -> Iterator[Process]:
    """Kill the process on the way out if it is still running."""
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
