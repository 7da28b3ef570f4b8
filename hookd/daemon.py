"""The daemon: open the database, start the named background tasks, serve, wait, drain, close.

Signal handlers only set events. aiohttp's ``cleanup_ctx`` owns the database, the HTTP client
session and the background tasks: their teardown runs only if their startup did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from hookd import config as configuration
from hookd import endpoints as eps
from hookd import plugins, server, status, systemd
from hookd.client import make_session
from hookd.config import Config
from hookd.dispatcher import Dispatcher
from hookd.errors import ConfigError, HookdError
from hookd.scheduler import Scheduler
from hookd.secretbox import SecretBox
from hookd.state import State
from hookd.store import SQLiteStore
from hookd.wheel import TimerWheel

log = structlog.get_logger("hookd.daemon")


async def run(config: Config, config_path: Path | None) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 when a background task died."""
    registry = plugins.load_registry(config)
    configured = _resolve(config, registry)
    state = State(
        config=config,
        registry=registry,
        store=SQLiteStore(
            config.storage.path,
            synchronous=config.storage.synchronous,
            max_pending=config.limits.max_pending,
        ),
        endpoints=eps.EndpointTable(),
        box=_secret_box(config),
    )
    stop, reload = asyncio.Event(), asyncio.Event()
    tasks: dict[str, asyncio.Task[Any]] = {}

    app = server.make_app(state)
    app.cleanup_ctx.append(_database(state, configured))
    app.cleanup_ctx.append(_delivery(state, tasks))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    exit_code = 0
    try:
        for address in config.listen:
            await web.TCPSite(runner, address.host, address.port, reuse_address=True).start()
        _install_signals(stop, reload)
        _start_task(tasks, "watchdog", _watchdog)
        systemd.notify("READY=1")
        log.info(
            "hookd.ready",
            listen=[str(a) for a in config.listen],
            database=str(config.storage.path),
            endpoints=len(state.endpoints),
            pending=state.store.pending,
        )
        if config.auth.open:
            log.warning("auth.open", detail="no tokens configured: every route is open on loopback")
        exit_code = await _serve_until_stopped(state, config_path, stop, reload, tasks)

        state.draining = True  # readiness false and ingest 503 from here on
        systemd.notify("STOPPING=1")
        log.info("hookd.stopping", grace_s=config.shutdown_timeout)
        if state.dispatcher is not None:
            await state.dispatcher.drain(config.shutdown_timeout)
    finally:
        _remove_signals()
        await runner.cleanup()
    log.info("hookd.stopped", exit_code=exit_code)
    return exit_code


# --------------------------------------------------------------------------- parts of run()


def _resolve(config: Config, registry: Any) -> dict[str, eps.Endpoint]:
    configured, problems = eps.resolve_config(config, registry)
    if problems:
        raise ConfigError(problems)
    return configured


def _secret_box(config: Config) -> SecretBox | None:
    text = config.storage.secret_key or os.environ.get("HOOKD_SECRET_KEY")
    return SecretBox.from_text(text) if text else None


def _database(
    state: State, configured: dict[str, eps.Endpoint]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await state.store.open()
        try:
            await _load_endpoints(state, configured)
            yield
        finally:
            await state.store.close()

    return ctx


async def _load_endpoints(state: State, configured: dict[str, eps.Endpoint]) -> None:
    await state.store.reconcile_config_endpoints(configured)
    rows = await state.store.endpoints()
    table, problems = eps.load_table(state.config, configured, rows, state.registry, state.box)
    for problem in problems:
        log.error("endpoint.unloadable", problem=problem)
    state.endpoints.replace_all(table)


def _delivery(
    state: State, tasks: dict[str, asyncio.Task[Any]]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        delivery = state.config.delivery
        session = make_session(
            concurrency=delivery.concurrency,
            allow_private_networks=delivery.allow_private_networks,
        )
        wheel: TimerWheel[str] = TimerWheel(clock=time.time)
        state.scheduler = Scheduler(state.store, wheel)
        state.dispatcher = Dispatcher(
            store=state.store,
            endpoints=state.endpoints,
            scheduler=state.scheduler,
            wheel=wheel,
            session=session,
            config=delivery,
            observers=state.registry.observers,
            metrics=state.metrics,
        )
        state.metrics.gauges(lambda: status.gauges(state))
        await state.scheduler.load_once()
        _start_task(tasks, "wheel", lambda: wheel.run(state.dispatcher.fire))  # type: ignore[union-attr]
        _start_task(tasks, "scheduler", state.scheduler.run)
        _start_task(tasks, "dispatcher", state.dispatcher.run)
        try:
            yield
        finally:
            for task in tasks.values():
                task.cancel()
            for name, task in tasks.items():
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(task, timeout=5)
                if not task.done():
                    log.error("task.did_not_stop", task=name)
            await session.close()

    return ctx


def _start_task(
    tasks: dict[str, asyncio.Task[Any]], name: str, fn: Callable[[], Coroutine[Any, Any, Any]]
) -> None:
    tasks[name] = asyncio.create_task(fn(), name=name)


async def _serve_until_stopped(
    state: State,
    config_path: Path | None,
    stop: asyncio.Event,
    reload: asyncio.Event,
    tasks: dict[str, asyncio.Task[Any]],
) -> int:
    """Wait for a stop signal, reloading on SIGHUP; a dead background task stops the daemon."""
    while True:
        waiters = {
            asyncio.ensure_future(stop.wait()): "stop",
            asyncio.ensure_future(reload.wait()): "reload",
        }
        watched = {task: name for name, task in tasks.items()}
        done, _ = await asyncio.wait([*waiters, *watched], return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        for task in done:
            if task in watched:
                name = watched[task]
                error = task.exception() if not task.cancelled() else None
                log.error("task.died", task=name, error=repr(error))
                return 1
        if stop.is_set():
            log.info("hookd.stop_requested")
            return 0
        reload.clear()
        await reload_config(state, config_path)


async def reload_config(state: State, config_path: Path | None) -> bool:
    """SIGHUP: load the YAML again; a bad file is logged and the running config stays."""
    try:
        new = configuration.load(config_path)
        configured = _resolve(new, state.registry)
    except (ConfigError, HookdError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        log.error("config.reload_rejected", problems=problems)
        return False
    old = state.config
    for key in ("listen", "storage", "plugins"):
        if getattr(new, key) != getattr(old, key):
            log.warning("config.restart_needed", key=key)
    new = _keep(new, old)
    state.config = new
    await _load_endpoints(state, configured)
    if state.dispatcher is not None:
        state.dispatcher.config = new.delivery
    if state.scheduler is not None:
        state.scheduler.reset()
    log.info("config.reloaded", endpoints=len(state.endpoints), source=new.source)
    return True


def _keep(new: Config, old: Config) -> Config:
    """Settings that only take effect at start keep their running values."""
    from dataclasses import replace

    return replace(new, listen=old.listen, storage=old.storage, plugins=old.plugins)


async def _watchdog() -> None:
    interval = systemd.watchdog_interval()
    if interval is None:
        await asyncio.Event().wait()  # nothing to do; park until cancelled
    while True:
        systemd.notify("WATCHDOG=1")
        await asyncio.sleep(interval or 0)


_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _install_signals(stop: asyncio.Event, reload: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)


def _remove_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)


def main(config: Config, config_path: Path | None) -> int:
    """Entry for ``hookd run``: uvloop when importable, then :func:`run`."""
    try:
        import uvloop

        runner: Callable[..., int] = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(run(config, config_path))
