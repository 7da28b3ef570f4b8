"""An in-process daemon: ``hookd.daemon.run`` in the test's event loop, with an HTTP client.

The test reaches the daemon's :class:`~hookd.state.State` (its store, dispatcher, wheel) through
:attr:`Daemon.state`, so outcomes are read through the store's interface, never from the file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp

from hookd import config as configuration
from hookd import daemon
from hookd.state import State
from hookd.store import AttemptRow, DeliveryRow, Store
from tests.support import backends
from tests.support.polling import free_port, wait_for


def write_config(
    tmp_path: Path, text: str, *, port: int | None = None, name: str = "hookd"
) -> Path:
    """``tmp_path/NAME.yaml`` from ``text`` with ``{port}``, ``{storage}`` (where the test's
    backend keeps the outbox: :func:`tests.support.backends.storage`) and ``{db}`` (the SQLite
    file ``tmp_path/hookd.db``, for YAML about SQLite itself) filled in."""
    path = tmp_path / f"{name}.yaml"
    filled = text.format(
        port=port or free_port(), storage=backends.storage(tmp_path), db=tmp_path / "hookd.db"
    )
    path.write_text(filled)
    return path


@dataclass
class Daemon:
    """A daemon running inside the test's event loop, with an HTTP client to it."""

    url: str
    config_path: Path
    http: aiohttp.ClientSession
    task: asyncio.Task[int]
    state: State

    @property
    def store(self) -> Store:
        """The daemon's own store (reads on their own connections: what is committed)."""
        return self.state.store

    async def request(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, **kw) as resp:
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()

    async def post_event(self, type_: str, data: Any = None, **kw: Any) -> tuple[int, Any]:
        body = {"type": type_, "data": {} if data is None else data, **kw}
        return await self.request("POST", "/v1/events", json=body)

    async def send(self, type_: str, data: Any = None, **kw: Any) -> dict[str, str]:
        """Post one event that must be accepted: ``{"event": id, endpoint: delivery id, ...}``."""
        status, body = await self.post_event(type_, {"n": 1} if data is None else data, **kw)
        assert status == 202, body
        return {"event": body["id"], **{x["endpoint"]: x["id"] for x in body["deliveries"]}}

    async def create_endpoint(self, **body: Any) -> dict[str, Any]:
        """``POST /v1/endpoints`` that must succeed (201); the answer (with the secret)."""
        status, answer = await self.request("POST", "/v1/endpoints", json=body)
        assert status == 201, answer
        result: dict[str, Any] = answer
        return result

    async def deliveries_page(self, query: str = "") -> dict[str, Any]:
        """``GET /v1/deliveries?QUERY`` that must succeed: ``{"items", "next_cursor"}``."""
        status, answer = await self.request("GET", f"/v1/deliveries?{query}")
        assert status == 200, answer
        result: dict[str, Any] = answer
        return result

    async def delivery(self, delivery_id: str) -> dict[str, Any]:
        """``GET /v1/deliveries/{id}`` (with payload and attempts)."""
        status, body = await self.request("GET", f"/v1/deliveries/{delivery_id}")
        assert status == 200, body
        result: dict[str, Any] = body
        return result

    async def row(self, delivery_id: str) -> DeliveryRow:
        """The delivery as the store has it."""
        row = await self.store.delivery(delivery_id)
        assert row is not None, delivery_id
        return row

    async def attempts(self, delivery_id: str) -> list[AttemptRow]:
        return await self.store.attempts(delivery_id)

    async def settled(self, *delivery_ids: str, within: float = 10) -> list[DeliveryRow]:
        """Wait until every delivery is final (not pending); their rows, in the order given."""

        async def final() -> list[DeliveryRow] | None:
            rows = [await self.row(i) for i in delivery_ids]
            return rows if all(r.status != "pending" for r in rows) else None

        rows: list[DeliveryRow] = await wait_for(final, timeout=within, interval=0.02)
        return rows

    async def shown_settled(self, *delivery_ids: str, within: float = 10) -> list[dict[str, Any]]:
        """Like :meth:`settled`, through ``GET /v1/deliveries/{id}`` (payload, attempts)."""

        async def final() -> list[dict[str, Any]] | None:
            shown = [await self.delivery(i) for i in delivery_ids]
            return shown if all(s["status"] != "pending" for s in shown) else None

        result: list[dict[str, Any]] = await wait_for(final, timeout=within)
        return result

    async def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint's entry in ``GET /v1/status``."""
        code, body = await self.request("GET", "/v1/status")
        assert code == 200, body
        [entry] = [e for e in body["endpoints"] if e["id"] == endpoint_id]
        result: dict[str, Any] = entry
        return result


@contextlib.asynccontextmanager
async def running_daemon(
    tmp_path: Path, yaml_text: str, *, headers: dict[str, str] | None = None
) -> AsyncIterator[Daemon]:
    """Start ``daemon.run`` in this loop with ``yaml_text`` (filled in by :func:`write_config`).

    The daemon's signal handlers go on this loop; the daemon is stopped by cancelling it.
    """
    port = free_port()
    path = write_config(tmp_path, yaml_text, port=port)
    cfg = configuration.load(path)
    url = f"http://127.0.0.1:{port}"
    # The state is built inside run(); seeing it pass through make_app is how the test gets it.
    with mock.patch.object(daemon, "make_app", wraps=daemon.make_app) as make_app:
        task = asyncio.create_task(daemon.run(cfg, path), name="daemon-under-test")
        await wait_for(lambda: make_app.called or task.done())
    if not make_app.called:
        task.result()  # raise the daemon's startup error in the test
    state: State = make_app.call_args.args[0]
    async with aiohttp.ClientSession(headers=headers or {}) as http:

        async def ready() -> bool:
            if task.done():
                task.result()  # raise the daemon's startup error in the test
            try:
                async with http.get(url + "/readyz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        try:
            await wait_for(ready, timeout=10)
            yield Daemon(url=url, config_path=path, http=http, task=task, state=state)
        finally:
            await _stop(task)


async def _stop(task: asyncio.Task[int]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
