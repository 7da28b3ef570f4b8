"""Plugin code runs fenced: bounded in time, off the event loop, its failures contained.

A plugin's body format, signer or filter is ordinary synchronous Python that hookd cannot
trust to return: it may raise, loop forever or block on I/O. :func:`call_plugin` runs it on one
of a few daemon threads of its own and waits at most ``timeout`` seconds; an exception or a
timeout becomes a :class:`PluginFailure` naming the plugin, which the caller records as that
attempt's error (or that filter decision's). The daemon keeps serving: the event loop never
runs plugin code, and a plugin stuck forever holds one of these threads, not the process
(they are daemon threads, so they never delay an exit either). Built-in formats and signers do
not pay for the hop: only what a plugin registered goes through here.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from hookd.errors import PluginError

T = TypeVar("T")
PLUGIN_TIMEOUT_S = 5.0
WORKERS = 4


class PluginFailure(PluginError):
    """A plugin's callable raised or did not return in time."""


class _Workers:
    """A few daemon threads taking calls from one queue (created on first use)."""

    def __init__(self, count: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._count = count
        self._started = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        self._start()
        future: Future[T] = Future()
        self._jobs.put((future, fn))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for i in range(self._count):
                threading.Thread(target=self._run, name=f"hookd-plugin-{i}", daemon=True).start()
            self._started = True

    def _run(self) -> None:
        while True:
            future, fn = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue  # its caller gave up before it started
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_workers = _Workers(WORKERS)


async def call_plugin(owner: str, what: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a plugin thread within :data:`PLUGIN_TIMEOUT_S`; else PluginFailure."""
    timeout = PLUGIN_TIMEOUT_S
    future = _workers.submit(lambda: fn(*args))
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        future.cancel()  # if it has not started yet, it never will
        raise PluginFailure(f"plugin {owner}: {what} did not return within {timeout:g}s") from None
    except Exception as exc:
        raise PluginFailure(f"plugin {owner}: {what} raised {type(exc).__name__}: {exc}") from exc
