"""The event-type catalog (SPEC §10) as a unit: compiled schemas, JSON paths, strict mode."""

from __future__ import annotations

from typing import Any

import pytest

from hookd.catalog import (
    CatalogError,
    EventType,
    SchemaMismatch,
    UnknownEventType,
    build_catalog,
)

TASK = {
    "type": "object",
    "required": ["task"],
    "properties": {
        "task": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
            },
        }
    },
}


def catalog(strict: bool = False) -> Any:
    return build_catalog(
        [
            EventType(name="task.created", description="A task was created", schema=TASK),
            EventType(name="task.deleted", deprecated=True),
        ],
        strict=strict,
    )


def test_valid_data_passes_and_types_without_a_schema_are_not_checked() -> None:
    c = catalog()
    c.check("task.created", {"task": {"id": 1, "tags": ["a"]}})
    c.check("task.deleted", "anything")
    c.check("not.listed", [1, 2])  # not strict


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "data"),
        ({"task": {"id": "1"}}, "data.task.id"),
        ({"task": {"id": 1, "tags": ["ok", "NO"]}}, "data.task.tags.1"),
        ([], "data"),
    ],
)
def test_a_mismatch_names_the_json_path_of_the_first_failure(data: Any, field: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        catalog().check("task.created", data)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ")


def test_strict_refuses_unlisted_types_but_not_hookd_ones() -> None:
    c = catalog(strict=True)
    with pytest.raises(UnknownEventType, match=r"'task\.updated' is not in the catalog"):
        c.check("task.updated", {})
    c.check("task.deleted", {})
    c.check("hookd.endpoint.disabled", {})


def test_patterns_are_covered_by_listed_types() -> None:
    c = catalog()
    assert c.covers("task.*")
    assert c.covers("*")
    assert c.covers("hookd.*")
    assert not c.covers("order.*")


def test_items_list_every_type_with_its_schema() -> None:
    assert catalog().items() == [
        {
            "name": "task.created",
            "description": "A task was created",
            "schema": TASK,
            "deprecated": False,
        },
        {"name": "task.deleted", "description": None, "schema": None, "deprecated": True},
    ]


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": 5}, "not a valid JSON Schema"),
        ({"$ref": "https://example.com/schema.json"}, "not a valid JSON Schema"),
        ({"type": "string", "pattern": "(?<=a)b"}, "not a valid JSON Schema"),
        ("object", "must be a JSON Schema object"),
    ],
)
def test_a_bad_schema_is_refused_when_loading(schema: Any, needle: str) -> None:
    """Including a remote $ref (never fetched) and a pattern the linear engine cannot run."""
    with pytest.raises(CatalogError, match=needle):
        build_catalog([EventType(name="x", schema=schema)])


def test_a_schema_pattern_runs_in_linear_time() -> None:
    c = build_catalog([EventType(name="x", schema={"type": "string", "pattern": "^(a+)+$"})])
    with pytest.raises(SchemaMismatch):
        c.check("x", "a" * 100_000 + "b")
