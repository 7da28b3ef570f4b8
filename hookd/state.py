"""What the HTTP handlers share with the rest of the daemon: one object, built in daemon.run()."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hookd.config import Config
from hookd.endpoints import EndpointTable
from hookd.logs import Throttle
from hookd.metrics import Metrics
from hookd.registry import Registry
from hookd.secretbox import SecretBox
from hookd.store import Store
from hookd.tokens import TenantTokens

if TYPE_CHECKING:
    from hookd.delivery.dispatcher import Dispatcher
    from hookd.delivery.scheduler import Scheduler


@dataclass(kw_only=True, eq=False)
class State:
    config: Config
    registry: Registry
    store: Store
    endpoints: EndpointTable
    metrics: Metrics = field(default_factory=Metrics)
    box: SecretBox | None = None
    tokens: TenantTokens | None = None  # made with the box, once the database is open
    scheduler: Scheduler | None = None
    dispatcher: Dispatcher | None = None
    draining: bool = False
    # held by every change to the endpoint table (admin routes, SIGHUP reload)
    endpoints_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    # requests refused because the database failed: logged once per 10 s, with a count
    store_errors: Throttle = field(default_factory=Throttle)
