"""Helpers for the hostile-input tests: a real process's JSON log, raw sockets, bounded probes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support import Process, wait_for


def log_events(process: Process) -> list[dict[str, Any]]:
    """The process log as JSON objects (a process not on a TTY logs JSON lines)."""
    events = []
    for line in process.log().splitlines():
        if line.strip().startswith("{"):
            events.append(json.loads(line))
    return events


async def logged(process: Process, event: str, within: float = 10) -> dict[str, Any]:
    """The first log line of ``event``, waiting for it up to ``within`` seconds."""

    def find() -> dict[str, Any] | None:
        return next((e for e in log_events(process) if e.get("event") == event), None)

    found: dict[str, Any] = await wait_for(find, timeout=within, interval=0.02)
    return found


async def raw_exchange(port: int, data: bytes, *, within: float = 8.0) -> bytes:
    """Send ``data`` on a fresh connection and read the answer (headers and a JSON body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), within)
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = await asyncio.wait_for(reader.readexactly(length), within)
        return head + body
    finally:
        writer.close()


def split_answer(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """Status, headers (lower-case names) and the decoded JSON body of a raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body else None
