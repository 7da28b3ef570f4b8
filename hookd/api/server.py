"""The listener: aiohttp's HTTP server with bounded reads, and JSON for the errors its parser
answers before any route runs (SPEC §3: every error is JSON).

Slow clients cannot hold connections open (slowloris): a request's head (request line and
headers) must arrive within ``limits.header_timeout`` of its first byte, however fast the bytes
drip; a connection with no request in progress is closed after ``limits.idle_timeout``; a body
must arrive within ``limits.body_timeout`` (:func:`hookd.api.http.read_json`). The limits are
read when a connection opens, so a reload applies to new connections.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_request import BaseRequest

from hookd.config import LimitsConfig

log = structlog.get_logger("hookd.api")

_CODES = {400: "bad_request", 408: "request_timeout", 413: "payload_too_large"}


class Connection(web.RequestHandler):
    """One client connection: aiohttp's handler with a deadline on each request head."""

    __slots__ = ("_head_deadline", "_head_timeout", "_in_request")

    def __init__(self, manager: web.Server, *, limits: LimitsConfig, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._head_timeout = limits.header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._in_request = False

    def data_received(self, data: bytes) -> None:
        # The first bytes of a head start its clock; the route's start (request_started) stops it.
        if self._head_deadline is None and not self._in_request and data:
            loop = asyncio.get_running_loop()
            self._head_deadline = loop.call_later(self._head_timeout, self._head_too_slow)
        super().data_received(data)

    def request_started(self) -> None:
        self._in_request = True
        self._cancel_deadline()

    def request_ended(self) -> None:
        self._in_request = False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self._in_request:
            log.info("http.head_timeout", timeout_s=self._head_timeout)
            self.force_close()
            if self.transport is not None:
                self.transport.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """An error aiohttp answers itself (a request it cannot parse): the JSON error model."""
        if status >= 500:
            log.error("http.server_error", status=status, error=repr(exc))
        else:  # a client's malformed request: its bytes may hold credentials, never log them
            log.debug("http.bad_request", status=status, error=type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started; cannot send an error instead")
        lines = (message or "").strip().splitlines()
        text = lines[0][:200] if lines and status < 500 else HTTPStatus(status).phrase
        body = {"error": {"code": _CODES.get(status, _code(status)), "message": text}}
        response = web.Response(
            status=status, text=json.dumps(body), content_type="application/json"
        )
        response.force_close()
        return response


def _code(status: int) -> str:
    return "internal" if status >= 500 else "http_error"


@web.middleware
async def connection_middleware(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """Tells the connection its request's head is in (its deadline stops) and when it ends."""
    connection = request.protocol
    if isinstance(connection, Connection):
        connection.request_started()
    try:
        response: web.StreamResponse = await handler(request)
        return response
    finally:
        if isinstance(connection, Connection):
            connection.request_ended()


class ListenSite(web.BaseSite):
    """A TCP listener whose connections are :class:`Connection` objects."""

    __slots__ = ("_host", "_limits", "_port")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, limits: Callable[[], LimitsConfig]
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._limits = limits

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def connection() -> Connection:
            return Connection(
                server, limits=self._limits(), loop=asyncio.get_running_loop(), access_log=None
            )

        self._server = await asyncio.get_running_loop().create_server(
            connection, self._host, self._port, reuse_address=True, family=socket.AF_UNSPEC
        )
