"""Plugins: Python modules with ``setup(registry, options)``, loaded from a path or a module name.

A plugin registers signers, body formats, filters and observers through the same
:class:`~hookd.registry.Registry` methods the built-ins use. Errors name the plugin's YAML entry.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from types import ModuleType

from hookd.builtin import builtin_registry
from hookd.config import Config, PluginConfig
from hookd.errors import ConfigError
from hookd.registry import Registry


def load_registry(config: Config) -> Registry:
    """The built-ins plus every configured plugin. Raises ConfigError listing every failure."""
    registry, problems = load_plugins(config)
    if problems:
        raise ConfigError(problems)
    return registry


def load_plugins(config: Config) -> tuple[Registry, list[str]]:
    """The built-ins plus every configured plugin that loads, and a problem for each that fails."""
    registry = builtin_registry()
    problems = []
    for i, plugin in enumerate(config.plugins):
        try:
            module = _import(plugin)
            setup = getattr(module, "setup", None)
            if not callable(setup):
                raise TypeError("the module has no setup(registry, options) function")
            if inspect.iscoroutinefunction(setup):
                raise TypeError("setup(registry, options) must be a plain function, not async")
            registry.loading = plugin.name
            try:
                result = setup(registry, dict(plugin.options))
            finally:
                registry.loading = None
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()  # never run: no "coroutine was never awaited" warning
                raise TypeError("setup(registry, options) must return None, not an awaitable")
        except Exception as exc:
            problems.append(f"{config.where_item('plugins', i)}: cannot load {plugin.name}: {exc}")
    return registry, problems


def _import(plugin: PluginConfig) -> ModuleType:
    if plugin.module is not None:
        return importlib.import_module(plugin.module)
    assert plugin.path is not None
    if not plugin.path.is_file():
        raise FileNotFoundError(f"no such file {plugin.path}")
    name = f"hookd_plugin_{plugin.path.stem}_{abs(hash(str(plugin.path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, plugin.path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {plugin.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
