"""The one root exception, and the few kinds callers tell apart."""

from __future__ import annotations


class HookdError(Exception):
    """Root of every error hookd raises on purpose."""


class ConfigError(HookdError):
    """A configuration could not be loaded; ``problems`` holds every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(HookdError):
    """The outbox could not do what was asked."""


class PluginError(HookdError):
    """A plugin failed to load or misbehaved."""
