"""Payload filters (SPEC §9): every operator and semantic rule as a table, pure and fast."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from hookd import config as configuration
from hookd import endpoints as eps
from hookd.builtin import builtin_registry
from hookd.filters import FilterError, compile_filter, matches, shared_filter
from hookd.registry import Event

EVENT: dict[str, Any] = {
    "order": {
        "total": 120.5,
        "count": 3,
        "currency": "EUR",
        "paid": True,
        "note": None,
        "tags": ["vip", "gift"],
        "dims": [10, 20],
    },
    "items": [
        {"sku": "A-1", "qty": 2, "labels": ["red"]},
        {"sku": "B-2", "qty": 5, "labels": ["blue", "big"]},
    ],
    "name": "Ünïcode Öle",
    "zero": 0,
}


def check(document: Any, *, tenant: str | None = "acme", event_type: str = "order.paid") -> bool:
    return matches(compile_filter(document), type=event_type, tenant=tenant, data=EVENT)


CASES: list[tuple[str, Any, bool]] = [
    # literals: equality, with JSON types kept apart
    ("literal number", {"data.order.count": 3}, True),
    ("int equals float", {"data.order.count": 3.0}, True),
    ("literal string", {"data.order.currency": "EUR"}, True),
    ("string is not a number", {"data.order.count": "3"}, False),
    ("true is not 1", {"data.order.paid": 1}, False),
    ("0 is not false", {"data.zero": False}, False),
    ("null literal", {"data.order.note": None}, True),
    ("object literal", {"data.items.0": {"sku": "A-1", "qty": 2, "labels": ["red"]}}, True),
    ("object literal differs", {"data.items.0": {"sku": "A-1"}}, False),
    ("type and tenant", {"type": "order.paid", "tenant": "acme"}, True),
    ("all keys must match", {"type": "order.paid", "data.order.count": 4}, False),
    ("empty filter matches all", {}, True),
    # $eq / $neq
    ("$eq", {"data.order.total": {"$eq": 120.5}}, True),
    ("$eq other type", {"data.order.total": {"$eq": "120.5"}}, False),
    ("$neq", {"data.order.currency": {"$neq": "USD"}}, True),
    ("$neq same", {"data.order.currency": {"$neq": "EUR"}}, False),
    ("$neq other type is true", {"data.order.count": {"$neq": "3"}}, True),
    # ordering: numbers with numbers, strings with strings
    ("$gt", {"data.order.total": {"$gt": 100}}, True),
    ("$gt equal", {"data.order.total": {"$gt": 120.5}}, False),
    ("$gte equal", {"data.order.total": {"$gte": 120.5}}, True),
    ("$lt", {"data.order.count": {"$lt": 4}}, True),
    ("$lte", {"data.order.count": {"$lte": 2}}, False),
    ("$gt string", {"data.order.currency": {"$gt": "AAA"}}, True),
    ("$gt across types is false", {"data.order.currency": {"$gt": 1}}, False),
    ("$lt bool is false", {"data.order.paid": {"$lt": 2}}, False),
    ("range", {"data.order.total": {"$gt": 100, "$lt": 200}}, True),
    ("range miss", {"data.order.total": {"$gt": 100, "$lt": 110}}, False),
    # $in / $nin
    ("$in", {"data.order.currency": {"$in": ["USD", "EUR"]}}, True),
    ("$in miss", {"data.order.currency": {"$in": ["USD", "GBP"]}}, False),
    ("$in type-strict", {"data.order.count": {"$in": ["3", True]}}, False),
    ("$nin", {"data.order.currency": {"$nin": ["USD"]}}, True),
    ("$nin hit", {"data.order.currency": {"$nin": ["EUR"]}}, False),
    # $exist
    ("$exist true", {"data.order.note": {"$exist": True}}, True),
    ("$exist false on present", {"data.order.note": {"$exist": False}}, False),
    ("$exist false on missing", {"data.order.gone": {"$exist": False}}, True),
    ("$exist true on missing", {"data.order.gone": {"$exist": True}}, False),
    # $regex: RE2, unanchored, strings only
    ("$regex unanchored", {"data.order.currency": {"$regex": "U"}}, True),
    ("$regex anchored", {"data.order.currency": {"$regex": "^U"}}, False),
    ("$regex unicode", {"data.name": {"$regex": "^Ünï"}}, True),
    ("$regex on a number", {"data.order.count": {"$regex": "3"}}, False),
    ("$regex case flag", {"data.order.currency": {"$regex": "(?i)eur"}}, True),
    # a missing path: every operator false except $exist false, $neq and $nin
    ("missing literal", {"data.nope": 1}, False),
    ("missing $eq", {"data.nope": {"$eq": None}}, False),
    ("missing $gt", {"data.nope": {"$gt": 0}}, False),
    ("missing $in", {"data.nope": {"$in": [None]}}, False),
    ("missing $regex", {"data.nope": {"$regex": ""}}, False),
    ("missing $neq", {"data.nope": {"$neq": 1}}, True),
    ("missing $nin", {"data.nope": {"$nin": [1]}}, True),
    ("missing deep", {"data.order.total.x": {"$exist": False}}, True),
    ("missing index", {"data.items.7.sku": {"$exist": False}}, True),
    # arrays: a scalar condition matches if any element does; an array literal is whole
    ("any element equals", {"data.order.tags": "gift"}, True),
    ("no element equals", {"data.order.tags": "sale"}, False),
    ("any element $gt", {"data.order.dims": {"$gt": 15}}, True),
    ("any element $regex", {"data.order.tags": {"$regex": "^v"}}, True),
    ("any element $in", {"data.order.tags": {"$in": ["sale", "vip"]}}, True),
    ("$nin with one element in", {"data.order.tags": {"$nin": ["vip"]}}, False),
    ("$neq with one element equal", {"data.order.tags": {"$neq": "vip"}}, False),
    ("array literal whole", {"data.order.tags": ["vip", "gift"]}, True),
    ("array literal order", {"data.order.tags": ["gift", "vip"]}, False),
    ("array literal is not an element", {"data.order.tags": ["vip"]}, False),
    ("index path", {"data.items.1.sku": "B-2"}, True),
    ("path through every object", {"data.items.sku": "B-2"}, True),
    ("path through every object $gt", {"data.items.qty": {"$gt": 4}}, True),
    ("path through arrays of arrays", {"data.items.labels": "big"}, True),
    ("path through objects miss", {"data.items.sku": "C-3"}, False),
    # combinators
    ("$and", {"$and": [{"data.order.count": 3}, {"type": "order.paid"}]}, True),
    ("$and miss", {"$and": [{"data.order.count": 3}, {"type": "order.new"}]}, False),
    ("$or", {"$or": [{"data.order.count": 9}, {"type": "order.paid"}]}, True),
    ("$or miss", {"$or": [{"data.order.count": 9}, {"type": "x"}]}, False),
    ("$not", {"$not": {"data.order.currency": "USD"}}, True),
    ("$not miss", {"$not": {"data.order.currency": "EUR"}}, False),
    (
        "nested",
        {"$or": [{"$and": [{"data.zero": 0}, {"$not": {"tenant": "acme"}}]}, {"data.zero": 0}]},
        True,
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_filter_semantics(document: Any, expected: bool) -> None:
    assert check(document) is expected


def test_an_untenanted_event_has_a_null_tenant() -> None:
    assert check({"tenant": None}, tenant=None)
    assert check({"tenant": {"$exist": True}}, tenant=None)
    assert not check({"tenant": "acme"}, tenant=None)


INVALID: list[tuple[str, Any, str, str]] = [
    ("unknown operator", {"data.total": {"$gtt": 5}}, "data.total.$gtt", "unknown operator '$gtt'"),
    ("operator without a path", {"$eq": 1}, "$eq", "needs a path"),
    ("unknown combinator", {"$xor": []}, "$xor", "unknown operator '$xor'"),
    ("$and not a list", {"$and": {"a": 1}}, "$and", "non-empty list"),
    ("$or empty", {"$or": []}, "$or", "non-empty list"),
    ("$and item not a filter", {"$and": [3]}, "$and[0]", "object of paths"),
    ("$not not a filter", {"$not": "x"}, "$not", "object of paths"),
    ("$gt with a list", {"data.x": {"$gt": [1]}}, "data.x.$gt", "number or a string"),
    ("$gt with null", {"data.x": {"$gt": None}}, "data.x.$gt", "number or a string"),
    ("$in not a list", {"data.x": {"$in": "a"}}, "data.x.$in", "list of values"),
    ("$exist not a bool", {"data.x": {"$exist": 1}}, "data.x.$exist", "true or false"),
    ("$regex not a string", {"data.x": {"$regex": 5}}, "data.x.$regex", "takes a string"),
    ("$regex not RE2", {"data.x": {"$regex": "(?<=a)b"}}, "data.x.$regex", "does not compile"),
    ("$regex broken", {"data.x": {"$regex": "a("}}, "data.x.$regex", "missing )"),
    ("mixed keys", {"data.x": {"$gt": 1, "y": 2}}, "data.x", "mixes operators"),
    ("empty path segment", {"data..x": 1}, "data..x", "dot-separated"),
    ("not an object", ["data.x"], "", "object of paths"),
    ("nested in $or", {"$or": [{"a": 1}, {"b": {"$bad": 1}}]}, "$or[1].b.$bad", "unknown"),
    ("not JSON", {"data.x": {1, 2}}, "data.x", "must be JSON"),
]


@pytest.mark.parametrize(
    ("document", "path", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_an_invalid_filter_names_where_it_is_wrong(document: Any, path: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(document)
    assert caught.value.path == path
    assert message in caught.value.message


def test_too_many_conditions_or_levels_are_refused() -> None:
    with pytest.raises(FilterError, match="at most 256 conditions"):
        compile_filter({f"data.k{i}": i for i in range(300)})
    deep: dict[str, Any] = {"data.x": 1}
    for _ in range(20):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match="nest at most"):
        compile_filter(deep)


def test_a_regex_is_linear_time_on_a_pathological_input() -> None:
    """RE2 has no catastrophic backtracking: ``(a+)+$`` on 100,000 a's then b answers."""
    matcher = compile_filter({"data.s": {"$regex": "^(a+)+$"}})
    assert not matches(matcher, type="t", tenant=None, data={"s": "a" * 100_000 + "b"})


URL = "url: 'http://127.0.0.1:9/'"
SIGN = "signing: {scheme: hmac-sha256, secret: s3cret}"


def test_equal_filters_share_one_matcher_whatever_their_key_order() -> None:
    first = shared_filter({"data.amount": {"$gte": 10}, "type": "order.paid"})
    again = shared_filter({"type": "order.paid", "data.amount": {"$gte": 10}})
    other = shared_filter({"type": "order.paid", "data.amount": {"$gte": 11}})
    assert first is again
    assert other is not first
    with pytest.raises(FilterError, match=r"data\.amount\.\$gtt"):
        shared_filter({"data.amount": {"$gtt": 1}})


def test_routing_decides_a_filter_endpoints_share_once_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fifty endpoints with one filter and one with another: one call each per event, and every
    endpoint still gets its own filter's answer."""
    text = "delivery: {allow_private_networks: true}\nendpoints:\n"
    for n in range(50):
        text += f"  - {{id: s{n}, {URL}, filter: {{data.n: {{$gt: 1}}}}, {SIGN}}}\n"
    text += f"  - {{id: odd, {URL}, filter: {{data.n: {{$lt: 0}}}}, {SIGN}}}\n"
    cfg = configuration.parse(text, source="h.yaml")
    configured, problems = eps.resolve_config(cfg, builtin_registry())
    assert not problems
    shared = configured["s0"].payload
    assert all(ep.payload is shared for i, ep in configured.items() if i != "odd")
    calls: list[str] = []

    def counting(inner: Any, name: str) -> Any:
        def counted(view: Any) -> bool:
            calls.append(name)
            return bool(inner(view))

        return counted

    one = counting(shared, "shared")  # what the fifty share stays one object
    table = eps.EndpointTable()
    for ep in configured.values():
        payload = counting(ep.payload, "odd") if ep.id == "odd" else one
        table.put(dataclasses.replace(ep, payload=payload))
    event = Event(id="evt_1", type="t", timestamp="2026-12-02T00:00:00Z", data={"n": 5})
    assert [ep.id for ep in table.route(event)] == [f"s{n}" for n in range(50)]
    assert calls == ["shared", "odd"]
    low = Event(id="evt_2", type="t", timestamp="2026-12-02T00:00:00Z", data={"n": -1})
    assert [ep.id for ep in table.route(low)] == ["odd"]
    assert calls == ["shared", "odd"] * 2
