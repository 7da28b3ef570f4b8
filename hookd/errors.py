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


class EndpointError(HookdError):
    """A change to an endpoint was refused; ``field`` names the setting at fault, if one is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class UnknownEndpoint(EndpointError):
    """No endpoint has this id (or, for changes only the API may make, no API endpoint)."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"no endpoint with id {endpoint_id!r}")


class EndpointExists(EndpointError):
    """An endpoint with this id exists already."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"an endpoint with id {endpoint_id!r} exists")


class TenantLimit(EndpointError):
    """The tenant has ``limits.max_endpoints_per_tenant`` endpoints already."""


class OwnedByConfig(EndpointError):
    """The endpoint is declared in the YAML, which owns it: change it there."""


class SealedKeys(EndpointError):
    """The endpoint's stored keys cannot be opened (another secret key, a damaged row)."""


class InvalidEndpoint(EndpointError):
    """The settings do not make a working endpoint (a signer refused its key or header...)."""
