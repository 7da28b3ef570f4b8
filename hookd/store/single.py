"""The coordination half of :class:`~hookd.store.base.Store` for a backend that one process
owns (SQLite): no other process changes anything, so there is nothing to wait for, and the
only live node is this one."""

from __future__ import annotations

import asyncio
import socket
import time

from hookd.ids import new_id
from hookd.store.base import START
from hookd.store.leases import Leases
from hookd.store.records import Changes, NodeRow


class SingleProcess:
    """Mixed into a one-process backend; ``due`` and the leases are the backend's own."""

    _node: NodeRow | None = None
    _leases: Leases

    async def due(
        self, *, after: tuple[float, int], end: float, limit: int
    ) -> list[tuple[str, float, int]]:
        raise NotImplementedError

    @property
    def shared(self) -> bool:
        return False

    @property
    def node_id(self) -> str:
        return self._me().id

    def _me(self) -> NodeRow:
        if self._node is None:
            now = time.time()
            host = socket.gethostname()
            self._node = NodeRow(id=new_id("node"), host=host, started_at=now, last_seen_at=now)
        return self._node

    async def wait_changes(self, wait_s: float) -> Changes:
        await asyncio.sleep(wait_s)
        return Changes()

    async def endpoints_version(self) -> int:
        return 0

    async def ready(self, *, per_endpoint: int, grace_s: float = 0.0) -> list[tuple[str, float]]:
        """(Bounded by ``per_endpoint`` in all, not per endpoint: nobody else adds work here.)"""
        rows = await self.due(after=START, end=time.time() - grace_s, limit=per_endpoint)
        return [(i, due) for i, due, _ in rows if not self._leases.live(i)]

    async def heartbeat(self) -> None:
        return None

    async def nodes(self) -> list[NodeRow]:
        me = self._me()
        return [NodeRow(id=me.id, host=me.host, started_at=me.started_at, last_seen_at=time.time())]
