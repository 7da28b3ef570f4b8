"""``GET /openapi.json``: the OpenAPI 3.1 description of every route (:mod:`.openapi_doc`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hookd.api.access import OPEN, route
from hookd.api.http import json_response
from hookd.api.openapi_doc import document

DOCUMENT_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi_document", dict)


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(request.app[DOCUMENT_KEY])


def add_routes(app: web.Application) -> None:
    app[DOCUMENT_KEY] = document()
    route(app, "GET", "/openapi.json", get_openapi, OPEN)
