"""A recording webhook receiver: a real aiohttp server on an ephemeral 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from tests.support.polling import wait_for

# A status code, a (status, headers) pair, or a callable building the whole response.
Answer = int | tuple[int, dict[str, str]] | Callable[[web.Request], web.StreamResponse]


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: CIMultiDict[str]  # names in any case, as HTTP has them (hookd sends lower case)
    body: bytes
    at: float  # time.time() when the request arrived

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every request and answers it.

    The answer is the next of ``responses`` while any are left, else ``decide(request, n)`` when
    set (``n``: how many times this ``webhook-id`` has arrived, 1 on the first), else
    ``default``. ``delay`` sleeps before answering; ``hold`` keeps each request open until
    ``release()`` (an attempt in flight). ``active``/``peak`` count requests being handled at
    once; ``answered`` counts the answers sent.
    """

    base: str = ""
    path: str = "/hook"
    requests: list[Received] = field(default_factory=list)
    responses: list[Answer] = field(default_factory=list)
    default: Answer = 200
    decide: Callable[[Received, int], Answer] | None = None
    delay: float = 0.0
    hold: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    active: int = 0
    peak: int = 0
    answered: int = 0

    @property
    def url(self) -> str:
        """The receiver's URL (``/hook`` unless told otherwise)."""
        return self.base + self.path

    def url_for(self, path: str) -> str:
        return self.base + path

    def of(self, webhook_id: str) -> list[Received]:
        """The requests carrying this ``webhook-id``, in arrival order."""
        return [r for r in self.requests if r.headers.get("webhook-id") == webhook_id]

    def webhook_ids(self) -> list[str]:
        return [r.headers.get("webhook-id", "") for r in self.requests]

    def clear(self) -> None:
        self.requests.clear()

    def release(self) -> None:
        """Let held requests (``hold``) answer."""
        self.gate.set()

    async def received(self, count: int = 1, *, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` requests have arrived; all of them."""
        await wait_for(lambda: len(self.requests) >= count, timeout=timeout)
        return self.requests

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        hit = Received(request.path, CIMultiDict(request.headers), body, time.time())
        self.requests.append(hit)
        n = len(self.of(hit.webhook_id)) if "webhook-id" in hit.headers else 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.hold:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.gate.wait(), timeout=30)
            if self.responses:
                answer = self.responses.pop(0)
            elif self.decide is not None:
                answer = self.decide(hit, n)
            else:
                answer = self.default
        finally:
            self.active -= 1
        response = _response(answer, request)
        self.answered += 1
        return response


def _response(answer: Answer, request: web.Request) -> web.StreamResponse:
    if callable(answer):
        return answer(request)
    if isinstance(answer, tuple):
        status, headers = answer
        return web.Response(status=status, headers=headers, text="answer")
    return web.Response(status=int(answer), text=f"status {answer}")


@contextlib.asynccontextmanager
async def receiver(
    path: str = "/hook",
    *,
    decide: Callable[[Received, int], Answer] | None = None,
    delay: float = 0.0,
) -> AsyncIterator[Receiver]:
    """A running :class:`Receiver`; held requests are released on the way out."""
    rec = Receiver(path=path, decide=decide, delay=delay)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    rec.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield rec
    finally:
        rec.release()  # a held handler finishes, so the server stops at once
        await runner.cleanup()


def fail_first(times: int, status: int = 500) -> Callable[[Received, int], Answer]:
    """A ``decide``: ``status`` to the first ``times`` arrivals of each webhook id, then 200."""
    return lambda hit, n: status if n <= times else 200


def gaps(hits: list[Received]) -> list[float]:
    """Seconds between consecutive arrivals."""
    return [b.at - a.at for a, b in itertools.pairwise(hits)]
