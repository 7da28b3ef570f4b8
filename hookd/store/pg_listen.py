"""LISTEN/NOTIFY: one connection per process that hears what the other processes change.

Payloads are ``'<topic>:<node id>'`` (topics ``due`` and ``endpoints``); a process ignores its
own. A process that loses its LISTEN connection (a restart of the server, a PgBouncer in
transaction mode, a network cut) logs ``store.listen_lost`` once, falls back to polling (the
caller polls every second anyway), and tries to listen again every few seconds
(``store.listen_restored`` when it can). Nothing is lost meanwhile: NOTIFY only makes the
periodic checks happen sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from hookd.errors import StoreError
from hookd.store import pg_conn as pg
from hookd.store.pg_schema import CHANNEL
from hookd.store.records import Changes

log = structlog.get_logger("hookd.store")
RECONNECT_S = 5.0


class Listener:
    def __init__(self, dsn: str, node_id: str) -> None:
        self._dsn = dsn
        self._node = node_id
        self._conn: Any = None
        self._lost_at: float | None = None  # when we last failed to listen
        self._retry_at = 0.0

    @property
    def listening(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        """Listen; a failure here is not fatal (polling covers it) but is logged."""
        try:
            conn = await pg.connect(self._dsn)
            await conn.execute(f"LISTEN {CHANNEL}")
        except StoreError as exc:
            self._lost(exc.__cause__ or exc)
            return
        except pg.DB_ERRORS as exc:
            self._lost(exc)
            return
        self._conn = conn
        if self._lost_at is not None:
            log.info("store.listen_restored", after_s=round(time.monotonic() - self._lost_at, 1))
            self._lost_at = None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=5)

    async def wait(self, wait_s: float) -> Changes:
        """What others changed, waiting up to ``wait_s`` seconds for the first notice."""
        if self._conn is None:
            if time.monotonic() >= self._retry_at:
                await self.start()
            if self._conn is None:
                await asyncio.sleep(wait_s)
                return Changes()
        due = endpoints = False
        try:
            async for notice in self._conn.notifies(timeout=wait_s, stop_after=1):
                due, endpoints = self._topic(notice.payload, due, endpoints)
            # whatever else is already queued, without waiting
            async for notice in self._conn.notifies(timeout=0.001):
                due, endpoints = self._topic(notice.payload, due, endpoints)
        except pg.DB_ERRORS as exc:
            await self.close()
            self._lost(exc)
        return Changes(due=due, endpoints=endpoints)

    def _topic(self, payload: str, due: bool, endpoints: bool) -> tuple[bool, bool]:
        topic, _, node = payload.partition(":")
        if node == self._node:
            return due, endpoints
        return due or topic == "due", endpoints or topic == "endpoints"

    def _lost(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + RECONNECT_S
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            log.warning(
                "store.listen_lost",
                error=pg.reason(exc),
                fallback="polling the database every second",
            )
