"""The routing parts of the YAML: ``event_types`` (SPEC §10) and an endpoint's payload
``filter`` (SPEC §9), checked at load with the failing path named.

``event_types.types.NAME.schema_file`` is read relative to the YAML file (JSON or YAML, at most
1 MiB, through the same limits as the YAML itself); every schema is compiled once here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hookd.catalog import Catalog, CatalogError, EventType, build_catalog, compile_schema
from hookd.config import files
from hookd.config.paths import join
from hookd.config.values import parse_bool, parse_str
from hookd.config.yamlevents import YamlLimit, check_limits
from hookd.config.yamlread import YamlReader
from hookd.filters import FilterError, compile_filter

EVENT_TYPES_KEYS = ("strict", "types")
TYPE_KEYS = ("description", "schema", "schema_file", "deprecated")
MAX_SCHEMA_BYTES = files.MAX_CONFIG_BYTES
_TYPE_NAME_MAX = 256


def read_event_types(doc: YamlReader, value: Any, *, base: Path) -> Catalog:
    """The catalog; problems (a bad key, an unreadable file, a schema that is not one) go to
    ``doc`` at their key's line."""
    data = doc.mapping(value, "event_types", EVENT_TYPES_KEYS)
    strict = doc.convert(data, "strict", "event_types", parse_bool) or False
    types = data.get("types")
    if types is None:
        return build_catalog([], strict=strict)
    if not isinstance(types, dict):
        doc.error("event_types.types", "expected a mapping of event type names")
        return build_catalog([], strict=strict)
    out = []
    for name, spec in types.items():
        path = join("event_types.types", str(name))
        event_type = _event_type(doc, str(name), spec, path, base)
        if event_type is not None:
            out.append(event_type)
    return build_catalog(out, strict=strict)


def _event_type(doc: YamlReader, name: str, value: Any, path: str, base: Path) -> EventType | None:
    if not name or len(name) > _TYPE_NAME_MAX or any(c.isspace() for c in name):
        doc.error(path, "an event type is 1-256 characters without spaces")
        return None
    if name.startswith("hookd."):
        doc.error(path, "hookd.* types are hookd's own (operational events); pick another name")
        return None
    data = doc.mapping(value, path, TYPE_KEYS)
    if "schema" in data and "schema_file" in data:
        doc.error(join(path, "schema_file"), "give either schema or schema_file, not both")
        return None
    schema = data.get("schema")
    where = join(path, "schema")
    if "schema_file" in data:
        where = join(path, "schema_file")
        schema = _read_schema(doc, data["schema_file"], where, base)
        if schema is None:
            return None
    if schema is not None:
        try:
            compile_schema(schema, name)
        except CatalogError as exc:
            doc.error(where, str(exc))
            return None
    return EventType(
        name=name,
        description=doc.convert(data, "description", path, parse_str),
        schema=schema,
        deprecated=doc.convert(data, "deprecated", path, parse_bool) or False,
    )


def _read_schema(doc: YamlReader, value: Any, path: str, base: Path) -> Any:
    """A schema file: JSON, or YAML (a superset), within the config's limits."""
    if not isinstance(value, str) or not value:
        doc.error(path, "expected a file path")
        return None
    try:
        text = files.read_text(base / value, MAX_SCHEMA_BYTES)
    except (OSError, ValueError) as exc:
        doc.error(path, f"cannot read {value}: {files.reason(exc)}")
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        check_limits(text)
        return yaml.safe_load(text)
    except (YamlLimit, yaml.YAMLError) as exc:
        doc.error(path, f"{value} is neither JSON nor YAML: {str(exc).splitlines()[0]}")
        return None


def parse_filter(doc: YamlReader, value: Any, path: str) -> str | Mapping[str, Any] | None:
    """An endpoint's ``filter``: a plugin filter's name, or a payload filter (compiled here to
    check it; the path of what is wrong inside it is named)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            doc.error(path, "a filter is a plugin filter's name or a payload filter mapping")
            return None
        return value
    if not isinstance(value, dict):
        doc.error(path, "a filter is a plugin filter's name or a payload filter mapping")
        return None
    try:
        compile_filter(value)
    except FilterError as exc:
        doc.error(join(path, exc.path) if exc.path else path, exc.message)
        return None
    return value


def check_patterns_listed(
    doc: YamlReader, catalog: Catalog, patterns: Sequence[str], path: str
) -> None:
    """With ``event_types.strict``, every ``events`` pattern must match a listed type."""
    if not catalog.strict:
        return
    for pattern in patterns:
        if not catalog.covers(pattern):
            doc.error(
                path,
                f"pattern {pattern!r} matches no type in event_types (strict: true); "
                "list the type or fix the pattern",
            )
            return
