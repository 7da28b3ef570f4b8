"""Payload filters: MongoDB-style documents matched against an event (SPEC §9).

A filter is matched against the event seen as ``{"type": ..., "tenant": ..., "data": ...}``.
Keys are dotted paths (``data.order.total``, ``data.items.0.sku``); a value is a literal
(equality) or an operator document (``$eq $neq $gt $gte $lt $lte $in $nin $exist $regex``).
``$and: [f, …]``, ``$or: [f, …]`` and ``$not: f`` combine whole filters; several keys in one
document must all match.

Semantics, as operators know them from MongoDB, Convoy and Outpost:

- comparing values of different JSON types is false, never an error (``1`` is not ``true``,
  ``"1"`` is not ``1``); ``$gt``-style operators order numbers and strings only;
- a missing path makes every operator false except ``$exist: false``, ``$neq`` and ``$nin``;
- when the value at a path is an array, a scalar condition matches if any element matches
  (equality with an array literal compares the whole array); a path segment that is not an index
  reaches into every object of an array (``data.items.sku``);
- ``$regex`` is RE2 (linear time, so no filter can stall ingest), unanchored, strings only.

:func:`compile_filter` checks a filter once and turns it into a tree of closures; matching an
event is then a few dict lookups and comparisons per condition. A filter that is not valid
raises :class:`FilterError` naming the path inside the filter where it is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import re2

from hookd.errors import HookdError

Matcher = Callable[[Mapping[str, Any]], bool]
_Test = Callable[[Any], bool]  # a condition on one value (present)

_MISSING = object()
_ORDERED = {"$gt", "$gte", "$lt", "$lte"}
OPERATORS = ("$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exist", "$regex")
COMBINATORS = ("$and", "$or", "$not")
MAX_DEPTH = 16  # nested combinators
MAX_CONDITIONS = 256
MAX_PATTERN = 1024

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error comes back as an exception, not on stderr


class FilterError(HookdError):
    """A filter that is not valid; ``path`` is where inside the filter (``data.total``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def compile_filter(document: Any) -> Matcher:
    """Check ``document`` and compile it; raises FilterError."""
    counter = [0]
    return _compile(document, "", 0, counter)


_SHARED: dict[str, Matcher] = {}
SHARED_MAX = 4096  # distinct filters kept compiled for sharing


def shared_filter(document: Any) -> Matcher:
    """:func:`compile_filter`, the same matcher for the same filter: endpoints that hold one
    filter (a customer's endpoints, one per channel) share it, and routing decides it once per
    event (:meth:`hookd.endpoints.EndpointTable.route`). Raises FilterError."""
    try:
        key = json.dumps(document, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return compile_filter(document)  # compile_filter says what is wrong with it
    found = _SHARED.get(key)
    if found is None:
        found = compile_filter(document)
        if len(_SHARED) >= SHARED_MAX:
            _SHARED.clear()
        _SHARED[key] = found
    return found


def matches(matcher: Matcher, *, type: str, tenant: str | None, data: Any) -> bool:
    return matcher({"type": type, "tenant": tenant, "data": data})


# --------------------------------------------------------------------------- compiling


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _compile(document: Any, where: str, depth: int, counter: list[int]) -> Matcher:
    if not isinstance(document, Mapping):
        raise FilterError(where, "a filter is an object of paths and conditions")
    if depth > MAX_DEPTH:
        raise FilterError(where, f"filters nest at most {MAX_DEPTH} levels deep")
    parts: list[Matcher] = []
    for key, value in document.items():
        if not isinstance(key, str) or not key:
            raise FilterError(where, "a filter's keys are non-empty strings")
        if key.startswith("$"):
            parts.append(_combinator(key, value, _join(where, key), depth, counter))
        else:
            parts.append(_condition(key, value, _join(where, key), counter))
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    return _all_of(parts)


def _all_of(parts: list[Matcher]) -> Matcher:
    def match(event: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110 (a loop, not all(genexpr): no generator per event)
            if not part(event):
                return False
        return True

    return match


def _always(event: Mapping[str, Any]) -> bool:
    return True


def _combinator(key: str, value: Any, where: str, depth: int, counter: list[int]) -> Matcher:
    if key == "$not":
        inner = _compile(value, where, depth + 1, counter)
        return lambda event: not inner(event)
    if key not in ("$and", "$or"):
        if key in OPERATORS:
            raise FilterError(where, f"{key} needs a path: {{'data.x': {{'{key}': ...}}}}")
        raise FilterError(where, f"unknown operator {key!r} (combinators: $and, $or, $not)")
    if not isinstance(value, list) or not value:
        raise FilterError(where, f"{key} takes a non-empty list of filters")
    parts = [_compile(f, f"{where}[{i}]", depth + 1, counter) for i, f in enumerate(value)]
    if key == "$and":
        return _all_of(parts)

    def any_of(event: Mapping[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110 (as in _all_of)
            if part(event):
                return True
        return False

    return any_of


def _condition(path: str, value: Any, where: str, counter: list[int]) -> Matcher:
    segments = tuple(path.split("."))
    if any(not s for s in segments):
        raise FilterError(where, "a path is dot-separated names like data.order.total")
    if _is_operator_document(value, where):
        tests = [_operator(op, operand, _join(where, op), counter) for op, operand in value.items()]
        missing = all(_true_when_missing(op, operand) for op, operand in value.items())
    else:
        tests = [_operator("$eq", value, where, counter)]
        missing = False

    if len(tests) == 1:
        [only] = tests

        def match_one(event: Mapping[str, Any]) -> bool:
            found = _resolve(event, segments)
            return missing if found is _MISSING else only(found)

        return match_one

    def match(event: Mapping[str, Any]) -> bool:
        found = _resolve(event, segments)
        if found is _MISSING:
            return missing
        for test in tests:  # noqa: SIM110 (as in _all_of)
            if not test(found):
                return False
        return True

    return match


def _is_operator_document(value: Any, where: str) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    ops = [k for k in value if isinstance(k, str) and k.startswith("$")]
    if not ops:
        return False  # an object literal: equality
    if len(ops) != len(value):
        raise FilterError(where, "an object mixes operators ($...) and plain keys")
    return True


def _true_when_missing(op: str, operand: Any) -> bool:
    return op in ("$neq", "$nin") or (op == "$exist" and operand is False)


def _operator(op: str, operand: Any, where: str, counter: list[int]) -> _Test:
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise FilterError(where, f"a filter holds at most {MAX_CONDITIONS} conditions")
    if op == "$eq":
        return _eq_test(_literal(operand, where))
    if op == "$neq":
        eq = _eq_test(_literal(operand, where))
        return lambda value: not eq(value)
    if op in _ORDERED:
        return _ordered(op, operand, where)
    if op in ("$in", "$nin"):
        return _membership(op, operand, where)
    if op == "$exist":
        if not isinstance(operand, bool):
            raise FilterError(where, "$exist takes true or false")
        return lambda value: operand  # called only when present
    if op == "$regex":
        return _regex(operand, where)
    raise FilterError(where, f"unknown operator {op!r} (known: {', '.join(OPERATORS)})")


def _literal(operand: Any, where: str) -> Any:
    kind = json_type(operand)
    if kind is None:
        raise FilterError(where, f"a value must be JSON, not {type(operand).__name__}")
    if kind == "array":
        for i, item in enumerate(operand):
            _literal(item, f"{where}[{i}]")
    elif kind == "object":
        for key, item in operand.items():
            if not isinstance(key, str):
                raise FilterError(where, "object keys must be strings")
            _literal(item, _join(where, key))
    return operand


def _eq_test(expected: Any) -> _Test:
    if isinstance(expected, list):  # an array literal compares the whole array

        def whole(value: Any) -> bool:
            if isinstance(value, _Many):
                return any(whole(item) for item in value)
            return _equal(value, expected)

        return whole
    return _any(lambda value: _equal(value, expected))


def _ordered(op: str, operand: Any, where: str) -> _Test:
    kind = json_type(operand)
    if kind not in ("number", "string"):
        raise FilterError(where, f"{op} compares with a number or a string")

    numeric = kind == "number"

    def compare(value: Any) -> bool:
        if numeric:
            if type(value) not in (int, float):  # bool is an int subclass, not a number here
                return False
        elif type(value) is not str:
            return False
        if op == "$gt":
            return bool(value > operand)
        if op == "$gte":
            return bool(value >= operand)
        if op == "$lt":
            return bool(value < operand)
        return bool(value <= operand)

    return _any(compare)


def _membership(op: str, operand: Any, where: str) -> _Test:
    if not isinstance(operand, list):
        raise FilterError(where, f"{op} takes a list of values")
    for i, item in enumerate(operand):
        _literal(item, f"{where}[{i}]")
    choices: Sequence[Any] = operand

    def member(value: Any) -> bool:
        return any(_equal(value, choice) for choice in choices)

    test = _any(member)
    if op == "$in":
        return test
    return lambda value: not test(value)


def _regex(operand: Any, where: str) -> _Test:
    if not isinstance(operand, str):
        raise FilterError(where, "$regex takes a string (RE2 syntax)")
    if len(operand) > MAX_PATTERN:
        raise FilterError(where, f"$regex is at most {MAX_PATTERN} characters")
    try:
        pattern = re2.compile(operand, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise FilterError(where, f"$regex does not compile (RE2 syntax): {reason}") from None
    return _any(_finder(pattern))


def _finder(pattern: Any) -> _Test:
    """Whether RE2 finds the pattern in a string. Straight through RE2's own ``Match`` when the
    binding exposes it (the Python wrapper's ``search`` builds match objects: ~6 µs against ~1
    µs), else through ``search``."""
    engine = getattr(pattern, "_regexp", None)
    anchor = getattr(getattr(engine, "Anchor", None), "UNANCHORED", None)
    if engine is None or anchor is None:
        return lambda value: isinstance(value, str) and pattern.search(value) is not None
    match = engine.Match

    def found(value: Any) -> bool:
        if type(value) is not str:
            return False
        text = value.encode("utf-8", "surrogatepass")
        return bool(match(anchor, text, 0, len(text))[0][0] != -1)

    return found


def _any(test: _Test) -> _Test:
    """A scalar condition over a value that may be an array: any element may match."""

    def check(value: Any) -> bool:
        if isinstance(value, _Many):  # gathered through an array: each value as if alone
            return any(check(item) for item in value)
        if isinstance(value, list):
            return test(value) or any(test(item) for item in value)
        return test(value)

    return check


# --------------------------------------------------------------------------- values


def json_type(value: Any) -> str | None:
    """The JSON type of a Python value as parsed from JSON (bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return None


_SCALARS = (str, int, float)


def _equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb and ta in _SCALARS:  # the common case: same scalar type
        return bool(a == b)
    kind = json_type(a)
    if kind != json_type(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=False))
    if kind == "object":
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return bool(a == b)


class _Many(list[Any]):
    """Values gathered from every object of an array by a path segment (``items.sku``)."""


def _resolve(event: Mapping[str, Any], segments: tuple[str, ...]) -> Any:
    current: Any = event
    for segment in segments:
        if type(current) is dict:  # the common case, without a call
            current = current.get(segment, _MISSING)
        else:
            current = _step(current, segment)
        if current is _MISSING:
            return _MISSING
    return current


def _step(current: Any, segment: str) -> Any:
    if isinstance(current, Mapping):
        return current.get(segment, _MISSING)
    if isinstance(current, list):
        if segment.isdigit() and not isinstance(current, _Many):
            index = int(segment)
            return current[index] if index < len(current) else _MISSING
        found = _Many()
        for item in current:
            got = _step(item, segment)
            if got is _MISSING:
                continue
            if isinstance(got, _Many):
                found.extend(got)
            else:
                found.append(got)
        return found if found else _MISSING
    return _MISSING
