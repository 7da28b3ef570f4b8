"""structlog setup: one JSON object per line, or a console renderer on a TTY.

hookd logs with structlog (stable event names plus key-values). Libraries underneath (aiohttp,
asyncio, ``warnings``) log through the standard library; their records are rendered by the same
processors, so a log file never mixes JSON lines with plain text.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from hookd.redact import REDACTED, redact_url

_SECRET_KEY = re.compile(r"secret|token|password|private_key|authorization", re.IGNORECASE)
_HANDLER_MARK = "_hookd_handler"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A last guard: values under secret-looking keys, and URL passwords, never reach a line."""
    for key in list(event):
        if _SECRET_KEY.search(key) and event[key] is not None:
            event[key] = REDACTED
        elif key == "url" and isinstance(event[key], str):
            event[key] = redact_url(event[key])
    return event


def _serialize(value: Any, **kw: Any) -> str:
    """JSON for a log line with orjson (5-10x json's speed); json for what orjson refuses."""
    try:
        return orjson.dumps(
            value, default=kw.get("default"), option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, **kw)


def configure(level: str = "info", fmt: str = "auto", *, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library's logging to ``stream`` (default: stderr).

    ``fmt`` is ``json``, ``console``, or ``auto`` (console on a TTY, JSON otherwise). Calling it
    again (a reload) replaces the previous setup.
    """
    out = sys.stderr if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=_serialize)
    )
    # The console renderer prints exceptions itself; JSON needs them as a string field.
    exceptions: list[Any] = [] if console else [structlog.processors.format_exc_info]
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    levelno = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,  # a reload may configure again
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(allow=_PoolWarnings.KEYS),
                *shared,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                renderer,
            ],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(levelno)
    logging.captureWarnings(True)
    pool = logging.getLogger(_PoolWarnings.LOGGER)
    for stale in [f for f in pool.filters if isinstance(f, _PoolWarnings)]:
        pool.removeFilter(stale)
    pool.addFilter(_PoolWarnings())


class _PoolWarnings(logging.Filter):
    """psycopg_pool's warnings, one line per 10 s: while PostgreSQL is down every pooled
    connection's reconnect attempt and every broken connection writes one (62 lines in a 10 s
    outage, growing with its length). The line let through is ``store.pool_warning``, libpq's
    words on one line in ``detail`` and how many were held back in ``suppressed``."""

    LOGGER = "psycopg.pool"
    KEYS = ("detail", "suppressed")

    def __init__(self) -> None:
        super().__init__()
        self.throttle = Throttle()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        suppressed = self.throttle.allow()
        if suppressed is None:
            return False
        record.detail = " ".join(record.getMessage().split())[:500]
        record.suppressed = suppressed
        record.msg, record.args = "store.pool_warning", None
        return True


class Throttle:
    """One line per ``every`` seconds for a condition that can recur on every request (a
    database that takes no write, under load, would otherwise log once per refused request):
    the first occurrence is logged at once, later ones are counted, and the count goes out with
    the next line that is let through (``suppressed=N``)."""

    def __init__(self, every: float = 10.0, *, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self._clock = clock
        self._last = -math.inf
        self._suppressed = 0

    def allow(self) -> int | None:
        """How many were held back since the last line, when this one may be logged; else
        None (and this one is counted)."""
        now = self._clock()
        if now - self._last < self.every:
            self._suppressed += 1
            return None
        self._last = now
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed
