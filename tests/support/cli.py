"""Running ``python -m hookd ...`` (the command line) as a real subprocess from tests.

The subprocess is driven with asyncio so that an in-process daemon or receiver in the test's
event loop keeps serving while the command runs. Every process is killed in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.polling import wait_for
from tests.support.slow import require_slow

_CLEARED = ("HOOKD_URL", "HOOKD_CONFIG", "HOOKD_ADMIN_TOKEN", "HOOKD_INGEST_TOKEN", "NOTIFY_SOCKET")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any HOOKD_* setting that would steer the command, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str


async def hookd(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    within: float = 30,
) -> Result:
    """Run ``python -m hookd ARGS`` to completion."""
    piped = asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL
    proc = await spawn(*args, stdin=piped, env=env, cwd=cwd)
    return await completed(proc, None if stdin is None else stdin.encode(), within=within)


async def spawn(
    *args: str, stdin: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m hookd ARGS`` with stdout and stderr piped (a clean env by default)."""
    require_slow(f"hookd {' '.join(args)}")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hookd",
        *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env() if env is None else env,
        cwd=cwd,
    )


async def completed(
    proc: asyncio.subprocess.Process, stdin: bytes | None = None, *, within: float = 30
) -> Result:
    """Feed ``stdin``, wait for the exit (killing it after ``within`` seconds); the result."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), within)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def run_hookd(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, within: float = 30
) -> Result:
    """Run ``python -m hookd ARGS`` synchronously (for tests with nothing in an event loop)."""
    require_slow(f"hookd {' '.join(args)}")
    proc = subprocess.run(
        [sys.executable, "-m", "hookd", *args],
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        cwd=cwd,
        timeout=within,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(
    result: Result, code: int, *needles: str, logs: bool = False, prefix: str = "hookd: "
) -> str:
    """A failed command printed exactly one ``hookd: ...`` line on stderr and no traceback.

    ``logs``: the command is ``hookd run``, whose JSON log lines on stderr are not counted;
    ``prefix``: how the line starts (a configuration problem starts with its file's path).
    """
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    if logs:
        lines = [line for line in lines if not line.startswith("{")]
    assert len(lines) == 1, result.err
    assert lines[0].startswith(prefix), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@dataclass
class Running:
    """A long-running ``hookd`` command whose stdout is collected line by line."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_line(self, predicate: Callable[[str], bool], within: float = 20) -> str:
        """The first stdout line matching ``predicate``, waiting up to ``within`` seconds."""

        def found() -> str | None:
            line = next((line for line in self.lines if predicate(line)), None)
            if line is None and self.reader is not None and self.reader.done():
                raise AssertionError(f"exited {self.proc.returncode} without it:\n{self.text}")
            return line

        line: str = await wait_for(found, timeout=within, interval=0.02, describe=lambda: self.text)
        return line

    async def stop(self, sig: int = signal.SIGTERM, within: float = 15) -> tuple[int, str]:
        """Send ``sig``; the exit code and stderr once it has exited."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.finish(within)

    async def finish(self, within: float = 15) -> tuple[int, str]:
        """Wait for exit (and the end of stdout); the exit code and stderr."""
        code = await asyncio.wait_for(self.proc.wait(), within)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, within)
        assert self.proc.stderr is not None
        err = (await self.proc.stderr.read()).decode()
        return code, err


@contextlib.asynccontextmanager
async def running(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """Start ``python -m hookd ARGS`` in the background; killed on the way out if still alive."""
    proc = await spawn(*args, stdin=asyncio.subprocess.DEVNULL, env=env)
    run = Running(proc)

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            run.lines.append(raw.decode().rstrip("\n"))

    run.reader = asyncio.create_task(read())
    try:
        yield run
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        run.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.reader


async def receiver_url(run: Running) -> str:
    """The URL ``hookd receive`` printed on its first line."""
    line = await run.wait_line(lambda s: "listening on" in s)
    match = re.search(r"http://[\d.]+:\d+", line)
    assert match, line
    return match.group(0)
