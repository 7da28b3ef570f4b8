"""``/openapi.json``: a valid OpenAPI 3.1 document that covers every route and tells the truth.

The fuzz test drives schemathesis against a running daemon: for every operation it sends
generated requests (random ids, then the ids of real endpoints, deliveries and events) and checks
that no answer is a 5xx and every answer matches its documented status, content type, headers
and schema.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hookd.api import make_app
from hookd.api.openapi_doc import document
from hookd.builtin import builtin_registry
from hookd.config import Config
from hookd.endpoints import EndpointTable
from hookd.state import State
from hookd.store import SQLiteStore
from tests.support import (
    ADMIN,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    hmac_signing,
    running_daemon,
    wait_for,
)

AUTH = bearer(ADMIN)
CONFIG = config(
    endpoint(
        "yaml", "URL", events='["order.*"]', policy="once", signing=hmac_signing("yaml-secret")
    ),
    policies="  once: {delays: [], timeout: 1s}\n",
    extra=auth() + "limits: {max_body: 64KiB}\n",
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # a request the schema calls invalid must get a 4xx
    ignored_auth,  # a 2xx with the token is a 401 without it
]


def test_document_is_valid_openapi_3_1() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }


def test_manual_retry_says_an_exhausted_delivery_gets_exactly_one_attempt() -> None:
    """The retry route states its semantics: the attempt count goes on (one more attempt when
    the policy is used up), as a manual resend in Svix does."""
    retry = document()["paths"]["/v1/deliveries/{id}/retry"]["post"]
    assert "exactly one more attempt" in retry["description"]


def test_every_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    state = State(
        config=Config(),
        registry=builtin_registry(),
        store=SQLiteStore(tmp_path / "unused.db"),
        endpoints=EndpointTable(),
    )
    app = make_app(state)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert served == documented


def test_open_routes_need_no_token_and_the_rest_use_bearer() -> None:
    spec = document()
    assert spec["security"] == [{"bearer": []}]
    open_ops = {
        path
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method != "parameters" and op.get("security") == []
    }
    assert open_ops == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/ui",
        "/ui/",
        "/ui/static/{version}/{name}",
        "/",
    }


async def test_openapi_json_is_served_without_a_token(tmp_path: Path, sink: Receiver) -> None:
    async with (
        running_daemon(tmp_path, CONFIG.replace("URL", sink.url)) as d,
        aiohttp.ClientSession() as anon,
        anon.get(d.url + "/openapi.json") as resp,
    ):
        assert resp.status == 200
        assert await resp.json() == document()


# --------------------------------------------------------------------------- fuzzing

EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
KNOWN_EXAMPLES = 5
REJECTIONS = ["400", "401", "403", "404", "409", "413", "415", "429"]  # 413: over max_body


def fuzz(base_url: str, known: dict[str, str]) -> int:
    """Run every operation's generated cases; returns how many requests were checked."""
    config = schemathesis.Config.from_dict(
        {
            "headers": AUTH,
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
        }
    )
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json", config=config, timeout=10)
    sent = 0
    with requests.Session() as session:

        def run(strategy: Any, examples: int) -> None:
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def one(case: schemathesis.Case) -> None:
                nonlocal sent
                response = case.call(base_url=base_url, session=session, headers=AUTH, timeout=10)
                case.validate_response(response, checks=CHECKS, headers=AUTH)
                sent += 1

            one()

        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, examples in EXAMPLES.items():
                try:
                    run(operation.as_strategy(generation_mode=mode), examples)
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to make invalid
            path = operation.path
            if "{id}" in path:
                kind = path.split("/")[2]  # endpoints | deliveries | events
                run(operation.as_strategy(path_parameters={"id": known[kind]}), KNOWN_EXAMPLES)
    return sent


@pytest.mark.slow
async def test_schemathesis_finds_no_5xx_and_no_schema_mismatch(
    tmp_path: Path, sink: Receiver
) -> None:
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=AUTH) as d:
        status, created = await d.request(
            "POST", "/v1/endpoints", json={"id": "api", "url": sink.url, "policy": "once"}
        )
        assert status == 201, created
        _, accepted = await d.post_event("order.paid", {"total": 5}, id="evt-known")
        delivery = accepted["deliveries"][0]["id"]
        await wait_for(lambda: len(sink.requests) >= 2)
        known = {"endpoints": "api", "deliveries": delivery, "events": "evt-known"}
        sent = await asyncio.to_thread(fuzz, d.url, known)
        assert sent > 200
        status, _ = await d.request("GET", "/readyz")
        assert status == 200  # still healthy after the barrage
