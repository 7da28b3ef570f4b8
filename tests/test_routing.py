"""Routing end to end (SPEC §9, §10): payload filters on YAML and API endpoints, the filter
test route, the event-type catalog at ingest (single, batch, strict, file schemas), and the
config errors that name their path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hookd import config as configuration
from hookd import daemon
from hookd.errors import ConfigError
from tests.support import ADMIN, Daemon, Receiver, auth, bearer, config, endpoint, running_daemon

FILTERED = endpoint(
    "big",
    "URL/big",
    events='["order.*"]',
    filter='{"data.total": {"$gte": 100}, "data.items.sku": {"$regex": "^EU-"}}',
)
CATALOG = """event_types:
  strict: STRICT
  types:
    order.placed:
      description: An order was placed
      schema: {type: object, required: [total], properties: {total: {type: number}}}
    order.shipped: {schema_file: schemas/shipped.json}
    order.noted: {schema_file: schemas/noted.yaml}
    order.old: {description: gone soon, deprecated: true}
"""


def write_schemas(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir(exist_ok=True)
    shipped = {"type": "object", "required": ["carrier"], "properties": {"carrier": {}}}
    (tmp_path / "schemas" / "shipped.json").write_text(json.dumps(shipped))
    (tmp_path / "schemas" / "noted.yaml").write_text(
        "type: object\nproperties:\n  note: {type: string, maxLength: 5}\n"
    )


def routing_config(sink: Receiver, *, strict: bool = False) -> str:
    base = sink.url.removesuffix("/hook")
    catalog = CATALOG.replace("STRICT", "true" if strict else "false")
    events = '["order.*"]'
    return config(
        (FILTERED + endpoint("all", "URL/all", events=events)).replace("URL", base),
        extra=auth() + catalog,
    )


async def post(d: Daemon, body: Any, path: str = "/v1/events") -> tuple[int, Any]:
    return await d.request("POST", path, json=body)


# --------------------------------------------------------------------------- payload filters


@pytest.mark.parametrize(
    ("data", "endpoints"),
    [
        ({"total": 150, "items": [{"sku": "US-1"}, {"sku": "EU-2"}]}, {"big", "all"}),
        ({"total": 150, "items": [{"sku": "US-1"}]}, {"all"}),
        ({"total": 99, "items": [{"sku": "EU-2"}]}, {"all"}),
        ({"total": "150", "items": [{"sku": "EU-2"}]}, {"all"}),  # another JSON type: no match
    ],
)
async def test_a_payload_filter_decides_at_ingest(
    tmp_path: Path, sink: Receiver, data: dict[str, Any], endpoints: set[str]
) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        status, body = await post(d, {"type": "order.filtered", "data": data})  # no schema
        assert status == 202, body
        assert {x["endpoint"] for x in body["deliveries"]} == endpoints
        status, shown = await d.request("GET", "/v1/endpoints/big")
        assert shown["filter"] == {
            "data.total": {"$gte": 100},
            "data.items.sku": {"$regex": "^EU-"},
        }


async def test_api_endpoints_take_set_and_clear_a_payload_filter(
    tmp_path: Path, sink: Receiver
) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        status, made = await post(
            d,
            {"url": sink.url, "events": ["order.*"], "filter": {"data.total": {"$lt": 10}}},
            "/v1/endpoints",
        )
        assert status == 201, made
        small = {"type": "order.placed", "data": {"total": 5}}
        _, body = await post(d, small)
        assert made["id"] in {x["endpoint"] for x in body["deliveries"]}
        status, bad = await d.request(
            "PATCH", f"/v1/endpoints/{made['id']}", json={"filter": {"data.total": {"$gtt": 1}}}
        )
        assert status == 400
        assert bad["error"]["field"] == "filter.data.total.$gtt"
        assert "unknown operator '$gtt'" in bad["error"]["message"]
        status, patched = await d.request(
            "PATCH", f"/v1/endpoints/{made['id']}", json={"filter": {"data.total": {"$gt": 10}}}
        )
        assert (status, patched["filter"]) == (200, {"data.total": {"$gt": 10}})
        _, body = await post(d, small)
        assert made["id"] not in {x["endpoint"] for x in body["deliveries"]}
        status, cleared = await d.request(
            "PATCH", f"/v1/endpoints/{made['id']}", json={"filter": None}
        )
        assert (status, cleared["filter"]) == (200, None)
        _, body = await post(d, small)
        assert made["id"] in {x["endpoint"] for x in body["deliveries"]}


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            {"filter": {"data.n": {"$in": [1, 2]}}, "event": {"type": "x", "data": {"n": 2}}},
            200,
            {"matches": True},
        ),
        (
            {"filter": {"tenant": "acme"}, "event": {"type": "x", "data": {}, "tenant": "b"}},
            200,
            {"matches": False},
        ),
        ({"filter": {"$or": {"a": 1}}, "event": {"type": "x", "data": {}}}, 400, "filter.$or"),
        (
            {"filter": {"data.s": {"$regex": "(?<=a)"}}, "event": {"type": "x", "data": {}}},
            400,
            "filter.data.s.$regex",
        ),
        ({"filter": {}, "event": {"type": "x"}}, 400, "event.data"),
        ({"event": {"type": "x", "data": {}}}, 400, "filter"),
    ],
)
async def test_a_filter_can_be_tried_against_a_sample_event(
    tmp_path: Path, sink: Receiver, body: dict[str, Any], status: int, answer: Any
) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        got, result = await post(d, body, "/v1/filters/test")
        assert got == status, result
        if status == 200:
            assert result == answer
        else:
            assert result["error"]["field"] == answer


def test_a_bad_filter_in_the_yaml_names_its_path_and_line(tmp_path: Path) -> None:
    text = (
        "endpoints:\n"
        "  - id: a\n"
        "    url: https://a.example/\n"
        "    signing: {secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
        "    filter:\n"
        "      data.total: {$gtt: 5}\n"
    )
    with pytest.raises(ConfigError) as caught:
        configuration.parse(text, source="h.yaml")
    assert caught.value.problems == [
        "h.yaml:6: endpoints[0].filter.data.total.$gtt: unknown operator '$gtt' (known: $eq, "
        "$neq, $gt, $gte, $lt, $lte, $in, $nin, $exist, $regex)"
    ]


# --------------------------------------------------------------------------- the catalog


async def test_data_is_checked_against_its_types_schema(tmp_path: Path, sink: Receiver) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        status, body = await post(d, {"type": "order.placed", "data": {"total": "12"}})
        assert status == 400
        assert body["error"]["code"] == "schema_mismatch"
        assert body["error"]["field"] == "data.total"
        assert (await post(d, {"type": "order.placed", "data": {"total": 12}}))[0] == 202
        status, body = await post(d, {"type": "order.shipped", "data": {}})  # a JSON file
        assert (status, body["error"]["field"]) == (400, "data")
        status, body = await post(d, {"type": "order.noted", "data": {"note": "too long"}})
        assert (status, body["error"]["field"]) == (400, "data.note")  # a YAML file
        assert (await post(d, {"type": "order.unlisted", "data": 1}))[0] == 202  # not strict
        status, listed = await d.request("GET", "/v1/event-types")
        assert status == 200
        assert [t["name"] for t in listed["items"]] == [
            "order.noted",
            "order.old",
            "order.placed",
            "order.shipped",
        ]
        old = next(t for t in listed["items"] if t["name"] == "order.old")
        assert old == {
            "name": "order.old",
            "description": "gone soon",
            "schema": None,
            "deprecated": True,
        }
        shipped = next(t for t in listed["items"] if t["name"] == "order.shipped")
        assert shipped["schema"]["required"] == ["carrier"]


async def test_a_batch_with_one_mismatch_is_refused_whole(tmp_path: Path, sink: Receiver) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        batch = [
            {"type": "order.placed", "data": {"total": 1}, "id": "ok-1"},
            {"type": "order.placed", "data": {"total": None}, "id": "bad-2"},
        ]
        status, body = await post(d, batch, "/v1/events/batch")
        assert status == 400
        assert (body["error"]["code"], body["error"]["field"]) == (
            "schema_mismatch",
            "[1].data.total",
        )
        assert (await d.request("GET", "/v1/events/ok-1"))[0] == 404  # nothing stored


async def test_strict_refuses_unlisted_types_and_patterns(tmp_path: Path, sink: Receiver) -> None:
    write_schemas(tmp_path)
    async with running_daemon(
        tmp_path, routing_config(sink, strict=True), headers=bearer(ADMIN)
    ) as d:
        status, body = await post(d, {"type": "order.unlisted", "data": {}})
        assert (status, body["error"]["code"], body["error"]["field"]) == (
            400,
            "unknown_event_type",
            "type",
        )
        status, body = await post(d, {"url": sink.url, "events": ["invoice.*"]}, "/v1/endpoints")
        assert (status, body["error"]["field"]) == (400, "events")
        status, _ = await post(
            d, {"url": sink.url, "events": ["order.*", "hookd.*"]}, "/v1/endpoints"
        )
        assert status == 201


@pytest.mark.parametrize(
    ("catalog", "problem"),
    [
        (
            "event_types:\n  types:\n    x.y: {schema: {type: 5}}\n",
            "h.yaml:3: event_types.types.x.y.schema: the schema of 'x.y' is not a valid JSON",
        ),
        (
            "event_types:\n  types:\n    x.y: {schema_file: missing.json}\n",
            "h.yaml:3: event_types.types.x.y.schema_file: cannot read missing.json",
        ),
        (
            "event_types:\n  strict: true\n  types: {x.y: {}}\nendpoints:\n  - id: a\n"
            "    url: https://a.example/\n    events: [z.*]\n"
            "    signing: {secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n",
            "h.yaml:7: endpoints[0].events: pattern 'z.*' matches no type in event_types",
        ),
        (
            "event_types:\n  types:\n    hookd.mine: {}\n",
            "h.yaml:3: event_types.types.hookd.mine: hookd.* types are hookd's own",
        ),
    ],
)
def test_catalog_problems_are_config_errors_at_their_line(
    tmp_path: Path, catalog: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        configuration.parse(
            catalog, source=str(tmp_path / "h.yaml").replace(str(tmp_path) + "/", "")
        )
    assert caught.value.problems[0].startswith(problem), caught.value.problems


async def test_sighup_reloads_the_catalog(tmp_path: Path, sink: Receiver) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        assert (await post(d, {"type": "order.placed", "data": {"total": "x"}}))[0] == 400
        text = d.config_path.read_text().replace("required: [total]", "required: []")
        text = text.replace("{total: {type: number}}", "{total: {}}")
        d.config_path.write_text(text)
        assert await daemon.reload_config(d.state, d.config_path)
        assert (await post(d, {"type": "order.placed", "data": {"total": "x"}}))[0] == 202


async def test_applications_cannot_post_hookd_types(tmp_path: Path, sink: Receiver) -> None:
    write_schemas(tmp_path)
    async with running_daemon(tmp_path, routing_config(sink), headers=bearer(ADMIN)) as d:
        status, body = await post(d, {"type": "hookd.endpoint.disabled", "data": {}})
        assert (status, body["error"]["field"]) == (400, "type")
