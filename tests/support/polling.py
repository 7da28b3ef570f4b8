"""Waiting for a condition with a deadline (never sleeping "long enough"), and free ports."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(
    predicate: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll until ``predicate()`` is truthy; return its value, or fail after ``timeout``.

    ``predicate`` may be a plain function or a coroutine function. The deadline is how long to
    wait before calling the test failed, not a claim about how fast anything is. ``describe``
    adds what was seen to the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f":\n{describe()}" if describe is not None else ""
            raise AssertionError(f"condition not met within {timeout}s{seen}")
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
