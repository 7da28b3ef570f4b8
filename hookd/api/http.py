"""What every route shares: the app's state, the JSON error model, JSON bodies in and out.

An error leaves as ``{"error": {"code", "message", "field"?}}`` (SPEC §3): a handler raises
:class:`ApiProblem`; :mod:`hookd.api.middleware` turns every other error into one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hookd import jsontext
from hookd.config import values
from hookd.errors import HookdError
from hookd.secretbox import SecretBoxError
from hookd.state import State
from hookd.timestamps import format_timestamp

STATE: web.AppKey[State] = web.AppKey("state", State)


class ApiProblem(web.HTTPException, HookdError):
    """An error answered as ``{"error": {"code", "message", "field"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status_code = status
        body: dict[str, Any] = {"code": code, "message": message}
        if field is not None:
            body["field"] = field
        super().__init__(
            text=json.dumps({"error": body}), content_type="application/json", headers=headers
        )


def invalid(field: str | None, message: str) -> ApiProblem:
    """400 ``invalid_field``: a value in the body is wrong."""
    return ApiProblem(400, "invalid_field", message, field=field)


def only(body: Mapping[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    """400 ``unknown_field`` for the first key of ``body`` not in ``allowed``."""
    for key in body:
        if key not in allowed:
            raise ApiProblem(
                400,
                "unknown_field",
                f"unknown field {prefix + key!r} (expected: {', '.join(allowed)})",
                field=prefix + key,
            )


def duration_field(value: Any, field: str, *, low: float, high: float, shown: str) -> float:
    """A duration in a body: seconds (a number) or text like ``1h``, from ``low`` to ``high``
    (``shown`` says the range in words); else 400 naming ``field``."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        else:
            seconds = values.parse_duration(value)
    except ValueError as exc:
        raise invalid(field, f"{field} is a duration like 1h or 7d: {exc}") from exc
    if not low <= seconds <= high:
        raise invalid(field, f"{field} is {shown}")
    return seconds


def state_of(request: web.Request) -> State:
    return request.app[STATE]


# --------------------------------------------------------------------------- page cursors


def seal_cursor(state: State, scope: str | None, cursor: str | None) -> str | None:
    """A store's page cursor as the API hands it out: encrypted and bound to the caller's scope,
    so it shows nothing (not even how many deliveries exist) and works for that scope only."""
    if cursor is None or state.box is None:
        return cursor
    sealed = state.box.seal(cursor, aad=_cursor_aad(scope)).removeprefix("v1:")
    return sealed.replace("+", "-").replace("/", "_").rstrip("=")


def open_cursor(state: State, scope: str | None, cursor: str | None) -> str | None:
    """The store's cursor inside one :func:`seal_cursor` gave this scope; else 400."""
    if cursor is None or state.box is None:
        return cursor
    text = "v1:" + cursor.replace("-", "+").replace("_", "/") + "=" * (-len(cursor) % 4)
    try:
        return state.box.open(text, aad=_cursor_aad(scope))
    except SecretBoxError as exc:
        raise ApiProblem(
            400, "invalid_query", "not a cursor this API gave out", field="cursor"
        ) from exc


def _cursor_aad(scope: str | None) -> bytes:
    return b"hookd-cursor:" + (scope or "").encode()


# --------------------------------------------------------------------------- request bodies


async def read_json(request: web.Request, limit: int) -> Any:
    """The request's JSON body, enforcing ``limits.max_body`` and the content type."""
    return parse_json(await read_raw(request, limit))


async def read_raw(request: web.Request, limit: int) -> bytes:
    """The request's body, not empty, enforcing ``limits.max_body`` and the content type."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiProblem(
            413, "payload_too_large", f"the body is over limits.max_body ({limit} bytes)"
        )
    ctype = request.content_type
    if (
        request.body_exists
        and ctype not in ("application/json", "")
        and not ctype.endswith("+json")
    ):
        raise ApiProblem(415, "unsupported_media_type", "send Content-Type: application/json")
    deadline = state_of(request).config.limits.body_timeout
    try:
        raw = await _read_body(request, limit, deadline)
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        raise _unreadable(request) from exc
    except TimeoutError as exc:
        problem = ApiProblem(
            408, "request_timeout", f"the body did not arrive within {deadline:g}s"
        )
        problem.force_close()  # the rest of the body is still on its way: drop the connection
        raise problem from exc
    size = len(raw)
    if ctype == "" and size:
        raise ApiProblem(415, "unsupported_media_type", "send Content-Type: application/json")
    if not raw:
        raise ApiProblem(400, "invalid_json", "the body is empty; send a JSON document")
    return raw


def parse_json(raw: bytes) -> Any:
    """A body as JSON hookd can keep (:func:`hookd.jsontext.loads`), else 400 saying why."""
    try:
        return jsontext.loads(raw)
    except jsontext.Unfit as exc:  # JSON, but not what hookd can store and send back
        raise ApiProblem(400, "invalid_json", str(exc), field=exc.field) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ApiProblem(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc


async def _read_body(request: web.Request, limit: int, deadline: float) -> bytes:
    """The whole body, at most ``limit`` bytes (else 413), within ``deadline`` seconds. A body
    that has arrived whole already (most do: it came with the headers) is taken as it is."""
    content = request.content
    if content.is_eof():
        raw = content.read_nowait(-1)
        if len(raw) <= limit:
            return raw
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(deadline):
        async for chunk in content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "payload_too_large", f"the body is over limits.max_body ({limit} bytes)")


def _unreadable(request: web.Request) -> ApiProblem:
    """400 for a body that cannot be read: not the Content-Encoding it claims, or malformed."""
    encoding = request.headers.get("Content-Encoding")
    if encoding:
        message = f"the body does not decode as its Content-Encoding {encoding!r}"
    else:
        message = "the body could not be read (malformed chunked encoding?)"
    return ApiProblem(400, "invalid_body", message)


async def optional_object(request: web.Request, state: State) -> dict[str, Any]:
    """A JSON object body, or ``{}`` when the request has no body."""
    if not request.body_exists or request.content_length == 0:
        return {}
    body = await read_json(request, state.config.limits.max_body)
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_body", "the body must be a JSON object")
    return body


# --------------------------------------------------------------------------- answers


def json_response(data: Any, status: int = 200) -> web.Response:
    """Compact UTF-8 JSON (:func:`hookd.jsontext.dumps`), ``application/json; charset=utf-8``."""
    return web.Response(
        body=jsontext.dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def ts(value: float | None) -> str | None:
    """A time in an answer: RFC 3339, or null."""
    return None if value is None else format_timestamp(value)
