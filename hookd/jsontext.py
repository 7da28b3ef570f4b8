"""JSON that hookd can keep: parsed from a request body, refused when it could not be stored in
SQLite (UTF-8 text) or written back as strict JSON.

Python's parser accepts three things hookd cannot carry: numbers out of a double's range
(``1e400`` becomes infinity, which ``json.dumps`` writes as the non-JSON ``Infinity``), lone
UTF-16 surrogates (``"\\ud800"``, which no UTF-8 encoder takes), and nesting deep enough to
exhaust the interpreter's recursion. :func:`loads` refuses each with :class:`Unfit`, whose
``field`` names where (``data.items[2]``; ``[3].data`` in a batch).

The usual body is parsed by msgspec, which refuses all three itself (and keeps integers of any
size exact, as Python's parser does); only a body it refuses goes through Python's parser again,
so that the answer says exactly what is wrong and where, as it always has. Depth (collections
only) is walked only when the body has more brackets than the limit. :func:`dumps` writes compact
JSON with orjson, byte for byte what ``json.dumps(value, separators=(",", ":"),
ensure_ascii=False)`` writes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec
import orjson

MAX_DEPTH = 128
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")  # never UTF-8; Python's parser takes it
_DECODER = msgspec.json.Decoder()
# Where orjson and Python write a finite float differently (magnitudes below 1e-4: Python
# writes 1e-05 and 1e-07, orjson 0.00001 and 1e-7), orjson's text has one of these.
_FLOAT_DIFFERS = re.compile(rb"\de-\d|0\.0000")


class Unfit(ValueError):
    """A JSON document hookd cannot keep; ``field`` is where (None: the whole document)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class _NotFinite(ValueError):
    pass


def loads(raw: bytes) -> Any:
    """The JSON document in ``raw``. Raises Unfit for what hookd cannot keep, ValueError
    (``json.JSONDecodeError``, ``UnicodeDecodeError``) for what is not JSON."""
    try:
        value = _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # not JSON, or not what hookd keeps: say why
        return _loads_checked(raw)
    if may_be_too_deep(raw, value):
        check(value)  # raises, naming where
    return value


def may_be_too_deep(raw: bytes, value: Any) -> bool:
    """Whether ``value`` (parsed from ``raw``, or a value as deep) nests deeper than MAX_DEPTH;
    walked only when ``raw`` has more brackets than that."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than_limit(value)


def _loads_checked(raw: bytes) -> Any:
    """Python's parser with hookd's checks: the errors answers have always given (and a value
    for what msgspec alone refuses, such as a UTF-8 byte order mark)."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError as exc:
        raise Unfit(_too_deep()) from exc
    except _NotFinite:
        value = _parse_to_locate(raw)
        check(value)  # raises, naming where the number is
    if _may_hold_lone_surrogate(raw):
        check(value)
    elif raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than_limit(value):
        check(value)  # raises, naming where
    return value


def _may_hold_lone_surrogate(raw: bytes) -> bool:
    """Whether the raw text has a surrogate escape that is not half of a pair (``\\ud83d\\ude00``
    is one character), or an encoded surrogate. True only means: look closer."""
    if b"\xed" in raw and _ENCODED_SURROGATE.search(raw):
        return True
    high_end = -1  # where the last high-surrogate escape ended, while it awaits its low half
    for match in _SURROGATE_ESCAPE.finditer(raw):
        is_high = match.group()[3:4] in b"89abAB"
        if high_end >= 0 and (is_high or match.start() != high_end):
            return True  # the high half before this one found no low half
        if not is_high and high_end != match.start():
            return True  # a low half with no high half before it
        high_end = match.end() if is_high else -1
    return high_end >= 0


def _deeper_than_limit(value: Any) -> bool:
    """Whether collections nest deeper than MAX_DEPTH (level by level, collections only)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(c for c in children if isinstance(c, dict | list))
        if not below:
            return False
        level = below
    return True


def _parse_to_locate(raw: bytes) -> Any:
    """``raw`` parsed with infinite numbers allowed, for :func:`check` to say where they are."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise Unfit(_too_deep()) from exc


def check(value: Any, prefix: str = "") -> None:
    """Raise Unfit at the first value hookd cannot keep: a non-finite number, text with a lone
    surrogate, nesting deeper than MAX_DEPTH. Walks without recursion."""
    stack: list[tuple[Any, str, int]] = [(value, prefix.rstrip("."), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise Unfit(_too_deep(), _top(path))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in reversed(list(pairs)):
                if isinstance(key, str):
                    _text(key, path or None, "a key")
                    sub = f"{path}.{key}" if path else key
                else:
                    sub = f"{path}[{key}]"
                stack.append((child, sub, depth + 1))
        elif isinstance(item, float) and not math.isfinite(item):
            raise Unfit(
                "the number is out of range: JSON numbers must be finite doubles", path or None
            )
        elif isinstance(item, str):
            _text(item, path or None, "the text")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of a value made of JSON types with finite numbers: the bytes
    ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` gives, 5-10x faster."""
    try:
        out = orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return _dumps_slowly(value)
    if (b"e-" in out or b"0.0000" in out) and _FLOAT_DIFFERS.search(out):
        return _dumps_slowly(value)
    return out


def _dumps_slowly(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text(text: str, field: str | None, what: str) -> None:
    if has_surrogate(text):
        raise Unfit(
            f"{what} holds a lone UTF-16 surrogate ({_shown(text)}), which is not Unicode text",
            field,
        )


def _shown(text: str) -> str:
    """The first lone surrogate of ``text``, escaped (it cannot be sent back as it is)."""
    bad = next(c for c in text if "\ud800" <= c <= "\udfff")
    return f"\\u{ord(bad):04x}"


def _top(path: str) -> str | None:
    """The first part of a path (the whole of a deep one is too long to be useful)."""
    if not path:
        return None
    if path.startswith("["):
        return path[: path.index("]") + 1]
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _too_deep() -> str:
    return f"the JSON nests deeper than {MAX_DEPTH} levels"


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotFinite(text)
    return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
