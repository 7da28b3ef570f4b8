"""Building blocks of the OpenAPI document: operations, responses, parameters.

Each operation declares who may call it (``access``): ``open``, ``ingest``, ``admin`` or
``tenant`` (an admin token, or a tenant token confined to its tenant's objects; SPEC §8). That
choice sets the operation's ``security`` and the errors it can give.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hookd.api.openapi_schemas import JSON, STR, Schema, ref

# --------------------------------------------------------------------------- responses

_ERRORS = {
    "400": (
        "The request is malformed: bad JSON (or JSON hookd cannot keep: a number out of a "
        "double's range, a lone surrogate, nesting past 128 levels), an invalid field or query "
        "parameter, a body that does not decode as its Content-Encoding"
    ),
    "408": "The body did not arrive within limits.body_timeout; the connection is closed",
    "401": "No token, or an unknown one",
    "403": "A token that may not call this route (an ingest or tenant token on an admin route)",
    "404": "No such resource",
    "409": "A conflict with the current state",
    "413": "The body is over limits.max_body",
    "415": "The body is not JSON",
    "429": "Over capacity (limits.max_pending); retry after Retry-After seconds",
    "503": (
        "Draining, or the database is unavailable (full, read-only, locked by another process, "
        "or no answer within 10 s); retry after Retry-After seconds"
    ),
}
_ERROR_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": STR}},
    "429": {"Retry-After": {"schema": STR}},
    "503": {"Retry-After": {"schema": STR}},
}


def error(code: str, description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description or _ERRORS[code],
        "content": {JSON: {"schema": ref("Error")}},
    }
    if code in _ERROR_HEADERS:
        out["headers"] = _ERROR_HEADERS[code]
    return out


def ok(description: str, schema: Schema | None = None, **headers: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {JSON: {"schema": schema}}
    if headers:
        out["headers"] = {name.replace("_", "-"): {"schema": s} for name, s in headers.items()}
    return out


def op(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    access: str = "admin",
    body: Schema | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    errors: Iterable[str | tuple[str, str]] = (),
    description: str | None = None,
) -> dict[str, Any]:
    """One operation; the errors every route of its kind can give are added here."""
    out: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    if description is not None:
        out["description"] = description
    codes: list[str | tuple[str, str]] = list(errors)
    if access == "open":
        out["security"] = []
    else:
        codes += ["401", "403", "503"]
    if access == "tenant":
        out["security"] = [{"bearer": []}, {"tenantToken": []}]
    elif access in ("admin", "ingest"):
        out["security"] = [{"bearer": []}]
    if body is not None:
        out["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
        codes += ["400", "408", "413", "415"]
    if params:
        out["parameters"] = params
    for item in codes:
        code, description = item if isinstance(item, tuple) else (item, None)
        out["responses"].setdefault(code, error(code, description))
    return out


def query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PATH_ID = [{"name": "id", "in": "path", "required": True, "schema": STR}]
NOT_FOUND = ("404", "No endpoint with this id")
YAML_OWNED = ("409", "The endpoint is declared in the YAML, which owns it")


def item_action(
    summary: str,
    responses: dict[str, Any],
    *,
    tag: str,
    body: Schema,
    errors: Iterable[str | tuple[str, str]],
    description: str | None = None,
    access: str = "tenant",
) -> dict[str, Any]:
    """``POST /v1/<things>/{id}/<action>``: an action on one resource, its body optional."""
    return {
        "parameters": PATH_ID,
        "post": op(
            summary,
            responses,
            tag=tag,
            access=access,
            body=body,
            body_required=False,
            errors=errors,
            description=description,
        ),
    }
