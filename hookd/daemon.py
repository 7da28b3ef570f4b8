"""The daemon: open the database, start the named background tasks, serve, wait, drain, close.

Signal handlers only set events. aiohttp's ``cleanup_ctx`` owns the database, the HTTP client
session and the background tasks: their teardown runs only if their startup did.

Secrets of endpoints created through the API are stored sealed (AES-GCM, :mod:`hookd.secretbox`),
never as plaintext. The key is ``storage.secret_key`` (or ``storage.secret_key_file``), else
``$HOOKD_SECRET_KEY``, else a key file next to the database, ``<storage.path>.key``: 32 random
bytes as base64, created with mode 0600 on first start. Back that file up with the database;
without it the API endpoints' secrets cannot be opened. A ``:memory:`` database gets a key that
lives as long as the process. With PostgreSQL there is no file next to the database, and every
process must open the others' sealed secrets: the key must be given (config or environment).

With a shared store (PostgreSQL) the ``cluster`` task keeps this process in step with the
others (:mod:`hookd.cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from hookd import cluster, logs, plugins, retention, systemd, tokens
from hookd import config as configuration
from hookd import endpoints as eps
from hookd.api import make_app, status
from hookd.api.server import ListenSite
from hookd.config import Config
from hookd.delivery.client import make_session
from hookd.delivery.dispatcher import Dispatcher
from hookd.delivery.scheduler import Scheduler
from hookd.delivery.wheel import TimerWheel
from hookd.endpoints import changes
from hookd.errors import ConfigError, HookdError
from hookd.secretbox import SecretBox, generate_key_text
from hookd.state import State
from hookd.store import describe, open_store
from hookd.tokens import TenantTokens

log = structlog.get_logger("hookd.daemon")

# The cyclic collector's thresholds for ``hookd run`` (Python's defaults: 700, 10, 10).
GC_THRESHOLD = (7000, 20, 20)


async def run(config: Config, config_path: Path | None) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 when a background task died."""
    registry = plugins.load_registry(config)
    configured = _resolve(config, registry)
    state = State(
        config=config,
        registry=registry,
        store=open_store(config),
        endpoints=eps.EndpointTable(),
    )
    stop, reload = asyncio.Event(), asyncio.Event()
    tasks: dict[str, asyncio.Task[Any]] = {}

    app = make_app(state)
    app.cleanup_ctx.append(_database(state, configured))
    app.cleanup_ctx.append(_delivery(state, tasks))
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_GRACE
    )
    exit_code = 0
    try:
        # A SIGHUP while starting is a reload once serving, not the default death. SIGTERM and
        # SIGINT keep their default until then, so a start that hangs can still be stopped.
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload.set)
        await _start(runner, state)
        _install_signals(stop, reload)
        _start_task(tasks, "watchdog", _watchdog)
        systemd.notify("READY=1")
        log.info(
            "hookd.ready",
            listen=[str(a) for a in config.listen],
            loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
            database=describe(config),
            node=state.store.node_id,
            endpoints=len(state.endpoints),
            pending=state.store.pending,
            plugins=[p.name for p in config.plugins],
        )
        if config.auth.open:
            log.warning("auth.open", detail="no tokens configured: every route is open on loopback")
        exit_code = await _serve_until_stopped(state, config_path, stop, reload, tasks)

        state.draining = True  # readiness false and ingest 503 from here on
        grace = state.config.shutdown_timeout  # a SIGHUP may have changed it
        budget_us = int((grace + HTTP_SHUTDOWN_GRACE + 5) * 1_000_000)  # systemd waits this long
        systemd.notify(f"STOPPING=1\nEXTEND_TIMEOUT_USEC={budget_us}")
        log.info("hookd.stopping", grace_s=grace)
        if state.dispatcher is not None:
            await state.dispatcher.drain(grace)
    finally:
        _remove_signals()
        await runner.cleanup()
    log.info("hookd.stopped", exit_code=exit_code)
    return exit_code


# --------------------------------------------------------------------------- parts of run()

HTTP_SHUTDOWN_GRACE = 5.0  # seconds for HTTP requests still running once the listener closes


async def _start(runner: web.AppRunner, state: State) -> None:
    """Open the database and start the tasks (the app's cleanup_ctx), then listen.

    An OS-level failure (a port in use, a database directory that cannot be made) becomes one
    HookdError naming what failed, which the CLI prints as one line.
    """
    config = state.config
    try:
        await runner.setup()
    except OSError as exc:
        raise HookdError(f"cannot open database {config.storage.path}: {_os_reason(exc)}") from exc
    for address in config.listen:
        site = ListenSite(runner, address.host, address.port, limits=lambda: state.config.limits)
        try:
            await site.start()
        except OSError as exc:
            raise HookdError(f"cannot listen on {address}: {_os_reason(exc)}") from exc


def _os_reason(exc: OSError) -> str:
    """``address already in use``: the errno's words, without the loop's own wrapping."""
    reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
    reason = reason or type(exc).__name__
    return reason[0].lower() + reason[1:]


def _resolve(config: Config, registry: Any) -> dict[str, eps.Endpoint]:
    configured, problems = eps.resolve_config(config, registry)
    if problems:
        raise ConfigError(problems)
    return configured


def _secret_box(config: Config) -> SecretBox:
    """The key sealing API endpoints' secrets (see the module docstring for where it comes from)."""
    text = config.storage.secret_key or os.environ.get("HOOKD_SECRET_KEY")
    if text:
        return SecretBox.from_text(text)
    if config.storage.backend == "postgres":
        raise HookdError(
            "storage.backend postgres needs storage.secret_key, storage.secret_key_file or "
            "$HOOKD_SECRET_KEY (the same key in every process: it seals API endpoints' secrets)"
        )
    if str(config.storage.path) == ":memory:":
        return SecretBox.from_text(generate_key_text())  # the sealed secrets die with the db
    return SecretBox.from_text(_key_file(Path(f"{config.storage.path}.key")))


def _key_file(path: Path) -> str:
    """Read the key file, or create it (mode 0600, 32 random bytes as base64) on first use."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise HookdError(f"cannot read secret key file {path}: {exc}") from exc
    else:
        if not text:
            raise HookdError(f"secret key file {path} is empty; delete it or fill it")
        return text
    text = generate_key_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _key_file(path)  # another hookd made it first
    except OSError as exc:
        raise HookdError(f"cannot create secret key file {path}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text + "\n")
        out.flush()
        os.fsync(out.fileno())
    log.info("secretbox.key_created", path=str(path))
    return text


def _database(
    state: State, configured: dict[str, eps.Endpoint]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if state.config.storage.backend == "postgres":  # no key file: refuse before connecting
            state.box = _secret_box(state.config)
        await state.store.open()
        try:
            state.box = state.box or _secret_box(state.config)  # once the database dir is there
            state.tokens = TenantTokens(state.box.derive(tokens.PURPOSE))
            await _load_endpoints(state, configured)
            yield
        finally:
            await state.store.close()

    return ctx


async def _load_endpoints(state: State, configured: dict[str, eps.Endpoint]) -> None:
    """The live endpoint table at start: the YAML's endpoints and the database's."""
    await changes.load_from_config(state, configured)


def _delivery(
    state: State, tasks: dict[str, asyncio.Task[Any]]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        delivery = state.config.delivery
        session = make_session(
            concurrency=delivery.concurrency,
            allow_private_networks=delivery.allow_private_networks,
            proxy=delivery.proxy,
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
            lease_slack=state.config.storage.lease_slack,
        )
        state.metrics.gauges(lambda: status.gauges(state))
        await state.scheduler.load_once()
        _start_task(tasks, "wheel", lambda: wheel.run(state.dispatcher.fire))  # type: ignore[union-attr]
        _start_task(tasks, "scheduler", state.scheduler.run)
        _start_task(tasks, "dispatcher", state.dispatcher.run)
        _start_task(tasks, "retention", lambda: retention.run(state))
        if state.store.shared:
            _start_task(tasks, "cluster", lambda: cluster.run(state))
        try:
            yield
        finally:
            if state.dispatcher is not None:  # already drained after SIGTERM; not when cancelled
                await state.dispatcher.drain(0)
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
        systemd.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            await reload_config(state, config_path)
        except Exception:  # a reload must never take the running daemon down
            log.exception("config.reload_failed")
        finally:
            systemd.notify("READY=1")


async def reload_config(state: State, config_path: Path | None) -> bool:
    """SIGHUP: load the YAML again; a bad file is logged and the running config stays.

    Reading, parsing and resolving the file (keys, certificates) run in a worker thread: a slow
    disk or a large file never stops the daemon serving and delivering meanwhile.
    """
    old = state.config
    try:
        new = _keep(await asyncio.to_thread(configuration.load, config_path), old)
        configured = await asyncio.to_thread(_resolve, new, state.registry)
    except (ConfigError, HookdError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        source = str(config_path or configuration.EMBEDDED_SOURCE)
        log.error("config.reload_rejected", source=source, problems=problems)
        return False
    try:
        await changes.reload_from_config(state, new, configured)
    except HookdError as exc:
        log.error("config.reload_failed", error=str(exc))
        return False
    state.store.max_pending = new.limits.max_pending
    if state.dispatcher is not None:
        state.dispatcher.config = new.delivery
    if new.log != old.log:
        logs.configure(new.log.level, new.log.format)
    log.info("config.reloaded", endpoints=len(state.endpoints), source=new.source)
    return True


def _keep(new: Config, old: Config) -> Config:
    """Settings that only take effect at start keep their running values (and say so).

    Raises ConfigError when the kept listener would be left without the tokens it needs.
    """
    restart = [
        key for key in ("listen", "storage", "plugins") if getattr(new, key) != getattr(old, key)
    ]
    for key in ("concurrency", "allow_private_networks", "proxy"):  # built into the session
        if getattr(new.delivery, key) != getattr(old.delivery, key):
            restart.append(f"delivery.{key}")
    for key in restart:
        log.warning("config.restart_needed", key=key)
    exposed = [str(a) for a in old.listen if not a.is_loopback]
    if exposed and new.auth.open:
        raise ConfigError(
            [
                f"{new.where('auth')}: hookd listens on {', '.join(exposed)}, beyond this "
                "machine; a reload cannot remove every token (change listen and restart)"
            ]
        )
    delivery = replace(
        new.delivery,
        concurrency=old.delivery.concurrency,
        allow_private_networks=old.delivery.allow_private_networks,
        proxy=old.delivery.proxy,
    )
    return replace(
        new, listen=old.listen, storage=old.storage, plugins=old.plugins, delivery=delivery
    )


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


def tune_gc() -> None:
    """Set the cyclic garbage collector for a server that allocates briskly and keeps little.

    Every delivery and request allocates a dozen tracked objects (coroutines, tasks, futures,
    header dicts) that reference counting frees, so Python's default first threshold (700) ran
    the collector ~80 times a second under load, and each third-generation pass walked the
    ~40,000 objects that the imports made and the process keeps for life: 6-7% of the event
    loop's time at 4,000 deliveries/s. Those objects are frozen (moved out of every generation:
    :func:`gc.freeze`), and the first generation is collected every 7,000 allocations net of
    frees: 2-3 times a second, ~1% of the loop. Garbage in reference cycles still goes, a little
    later; what is frozen is never collected, which for what the imports made is no loss.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def main(config: Config, config_path: Path | None) -> int:
    """Entry for ``hookd run``: uvloop when importable, the collector tuned, then :func:`run`."""
    tune_gc()
    try:
        import uvloop

        runner: Callable[..., int] = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(run(config, config_path))
