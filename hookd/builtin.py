"""The built-in registry: hookd's own signing schemes and body formats.

They register through exactly the same door a plugin's ``setup(registry, options)`` uses (the
``add_*`` methods of :class:`hookd.registry.Registry`); the registry itself knows none of them.
"""

from __future__ import annotations

from hookd import bodies, signing
from hookd.registry import Registry


def builtin_registry() -> Registry:
    """A registry holding the built-in schemes and formats."""
    registry = Registry()
    signing.register(registry)
    bodies.register(registry)
    return registry
