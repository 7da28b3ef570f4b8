"""The event-type catalog (SPEC §10): the types an application sends, with JSON Schemas.

Each listed type may carry a JSON Schema (draft 2020-12) for its ``data``; ingest checks the
data against it with a compiled validator (`jsonschema-rs`: compiled once when the catalog is
loaded, ~1 µs for a 30-field object). The first failure comes back as a JSON path under
``data`` (``data.items.0.sku``). With ``strict``, a type that is not listed is refused (except
``hookd.*``, which only hookd itself emits).

Schemas never reach the network: remote ``$ref`` is refused when the catalog is loaded, and
``pattern`` uses a linear-time regex engine, so no schema can stall ingest.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from hookd.errors import HookdError

RESERVED_PREFIX = "hookd."


class CatalogError(HookdError):
    """A schema in the catalog is not a valid JSON Schema."""


class SchemaMismatch(HookdError):
    """An event's data does not match its type's schema; ``field`` is the JSON path."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class UnknownEventType(HookdError):
    """``strict`` is on and the type is not in the catalog."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EventType:
    name: str
    description: str | None = None
    schema: Mapping[str, Any] | None = None
    deprecated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "schema": self.schema,
            "deprecated": self.deprecated,
        }


@dataclass(frozen=True, kw_only=True)
class Catalog:
    """The catalog as loaded, with each schema compiled once."""

    strict: bool = False
    types: Mapping[str, EventType] = field(default_factory=dict)
    _validators: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __bool__(self) -> bool:
        return bool(self.types) or self.strict

    def check(self, event_type: str, data: Any) -> None:
        """Raise UnknownEventType or SchemaMismatch; nothing for an unchecked type."""
        validator = self._validators.get(event_type)
        if validator is None:
            unlisted = event_type not in self.types and not event_type.startswith(RESERVED_PREFIX)
            if self.strict and unlisted:
                raise UnknownEventType(
                    f"event type {event_type!r} is not in the catalog (event_types.strict)"
                )
            return
        if validator.is_valid(data):
            return
        error = next(iter(validator.iter_errors(data)))
        path = "data" + "".join(f".{part}" for part in error.instance_path)
        raise SchemaMismatch(path, f"{path}: {_first_line(error.message)}")

    def covers(self, pattern: str) -> bool:
        """Whether an endpoint ``events`` pattern matches at least one listed type."""
        return pattern.startswith(RESERVED_PREFIX) or any(
            fnmatch.fnmatchcase(name, pattern) for name in self.types
        )

    def items(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in sorted(self.types.values(), key=lambda t: t.name)]


def build_catalog(types: Iterable[EventType], *, strict: bool = False) -> Catalog:
    """Compile every schema; raises CatalogError naming the type whose schema is bad."""
    by_name: dict[str, EventType] = {}
    validators: dict[str, Any] = {}
    for event_type in types:
        by_name[event_type.name] = event_type
        if event_type.schema is not None:
            validators[event_type.name] = compile_schema(event_type.schema, event_type.name)
    return Catalog(strict=strict, types=by_name, _validators=validators)


def compile_schema(schema: Any, name: str = "") -> Any:
    """A draft 2020-12 validator, offline and with linear-time patterns; else CatalogError."""
    if not isinstance(schema, dict | bool):
        raise CatalogError(f"the schema of {name!r} must be a JSON Schema object")
    try:
        return jsonschema_rs.Draft202012Validator(
            schema,
            validate_formats=False,
            offline=True,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        raise CatalogError(
            f"the schema of {name!r} is not a valid JSON Schema (draft 2020-12): "
            f"{_first_line(str(exc))}"
        ) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
