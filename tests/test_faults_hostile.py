"""Hostile input, generated: hypothesis bodies for ingest and the admin API and schemathesis over
the ingest and endpoint operations of ``/openapi.json``, both against a real ``hookd run``; and
hypothesis YAML for the config loader.

For every request: never a 5xx; a refusal is the JSON error model; and a refused request leaves
the database as it was (row counts, and every endpoint's definition: no partial write). After
all of them: not one traceback or ``http.unhandled`` line in the daemon's log. For every YAML
text: a Config, or ConfigError problems of the form ``FILE:LINE: path: message``, each one
printable line (never another exception).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from hookd.config import parse
from hookd.errors import ConfigError
from tests.support import (
    ADMIN,
    INGEST,
    Process,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    start_process,
    stopped_at_exit,
    wait_ready,
)
from tests.support.backends import snapshot

EXAMPLES = 150  # per hypothesis strategy below
SCHEMA_EXAMPLES = 25  # per operation and generation mode
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# --------------------------------------------------------------------------- strategies

# Text with everything in it: lone surrogates (sent as \ud800 escapes), controls, NUL, RTL marks.
hostile_text = st.text(st.characters(exclude_categories=()), max_size=40)
names = st.sampled_from(["order.paid", "task.updated", "hookd.test", "x", ""]) | hostile_text
numbers = st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
scalars = st.none() | st.booleans() | numbers | hostile_text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=16,
)
stamps = st.sampled_from(
    ["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "now"]
)
events = st.fixed_dictionaries(
    {"type": names},
    optional={
        "data": json_values,
        "id": hostile_text,
        "timestamp": stamps | hostile_text,
        "tenant": st.sampled_from(["acme", "*", ""]) | hostile_text,
        "extra": json_values,
    },
)
urls = st.sampled_from(
    ["http://127.0.0.1:9/x", "https://example.com/h", "ftp://x", "http://", "http://[::1", ""]
) | hostile_text.map(lambda t: "http://example.com/" + t)
endpoint_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["fuzzed", "yaml", "api"]) | hostile_text,
        "url": urls,
        "events": st.lists(names, max_size=3) | json_values,
        "policy": st.sampled_from(["standard", "taskview", "none"]) | hostile_text,
        "headers": st.dictionaries(hostile_text, hostile_text, max_size=3) | json_values,
        "signing": st.fixed_dictionaries(
            {}, optional={"scheme": names, "secret": hostile_text, "header": hostile_text}
        )
        | json_values,
        "tenant": st.sampled_from(["acme", "*", None]) | hostile_text,
        "filter": json_values,
        "rate_limit": st.sampled_from(["10/s", "1e-300/s", "0/s", "5"]) | hostile_text,
        "max_in_flight": numbers | hostile_text,
        "ordering": st.sampled_from(["fifo", "none"]) | hostile_text,
        "enabled": json_values,
        "tls": json_values,
    },
)


def encodings(value: Any) -> st.SearchStrategy[bytes]:
    """The JSON text of ``value``, or bytes that only look like it."""
    text = json.dumps(value, ensure_ascii=True)
    return st.sampled_from([text.encode(), text.encode()[:-1], text.encode() + b"\x00"])


# A request: (method, path, body bytes, headers).
Request = tuple[str, str, bytes, dict[str, str]]

JSON = {"Content-Type": "application/json"}


def requests_() -> st.SearchStrategy[Request]:
    ingest = events.flatmap(encodings).map(
        lambda b: ("POST", "/v1/events", b, {**JSON, **bearer(INGEST)})
    )
    batch = (
        st.lists(events | json_values, max_size=4)
        .flatmap(encodings)
        .map(lambda b: ("POST", "/v1/events/batch", b, {**JSON, **bearer(INGEST)}))
    )
    raw = st.tuples(
        st.sampled_from(["/v1/events", "/v1/events/batch", "/v1/endpoints"]),
        st.binary(max_size=64),
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    ).map(lambda t: ("POST", t[0], t[1], {"Content-Type": t[2], **bearer(ADMIN)}))
    create = endpoint_bodies.flatmap(encodings).map(
        lambda b: ("POST", "/v1/endpoints", b, {**JSON, **bearer(ADMIN)})
    )
    patch = st.tuples(st.sampled_from(["api", "yaml"]), endpoint_bodies.flatmap(encodings)).map(
        lambda t: ("PATCH", f"/v1/endpoints/{t[0]}", t[1], {**JSON, **bearer(ADMIN)})
    )
    actions = st.tuples(
        st.sampled_from(["rotate-secret", "replay", "test", "disable", "enable"]),
        st.fixed_dictionaries(
            {},
            optional={"grace": json_values, "since": stamps | json_values, "status": json_values},
        ).flatmap(encodings),
    ).map(lambda t: ("POST", f"/v1/endpoints/api/{t[0]}", t[1], {**JSON, **bearer(ADMIN)}))
    filters = (
        st.fixed_dictionaries({"filter": json_values, "event": json_values | events})
        .flatmap(encodings)
        .map(lambda b: ("POST", "/v1/filters/test", b, {**JSON, **bearer(ADMIN)}))
    )
    tokens = st.tuples(hostile_text, st.fixed_dictionaries({}, optional={"ttl": json_values})).map(
        lambda t: (
            "POST",
            f"/v1/tenants/{requests.utils.quote(t[0], safe='')}/tokens",
            json.dumps(t[1]).encode(),
            {**JSON, **bearer(ADMIN)},
        )
    )
    header_values = hostile_text.filter(lambda t: t == t.strip() and not set(t) & set("\r\n\0"))
    headers = st.tuples(events.flatmap(encodings), header_values).map(
        lambda t: (
            "POST",
            "/v1/events",
            t[0],
            {**JSON, **bearer(INGEST), "Idempotency-Key": t[1].encode("utf-8", "surrogatepass")
             .decode("latin-1")},
        )
    )  # fmt: skip
    return st.one_of(ingest, batch, raw, create, patch, actions, filters, tokens, headers)


# --------------------------------------------------------------------------- the daemon


@dataclass
class Target:
    process: Process
    backend: str
    where: Path


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver, backend: str) -> AsyncIterator[Target]:
    text = config(
        endpoint("yaml", sink.url, events='["order.*", "task.*"]'),
        extra=auth(ingest=True) + "limits: {max_body: 64KiB}\n",
    )
    with stopped_at_exit(start_process(tmp_path, text)) as process:
        await wait_ready(process)
        async with (
            aiohttp.ClientSession(headers=bearer(ADMIN)) as http,
            http.post(process.url + "/v1/endpoints", json={"id": "api", "url": sink.url}) as resp,
        ):
            assert resp.status == 201, await resp.text()
        yield Target(process, backend, tmp_path)


def check(target: Target, send: Callable[[], requests.Response]) -> requests.Response:
    """Send one request; no 5xx, and a refusal changes nothing in the database."""
    before = snapshot(target.where)
    response = send()
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert snapshot(target.where) == before, response.text[:500]
        if response.headers.get("Content-Type", "").startswith("application/json"):
            error = response.json()["error"]
            assert re.fullmatch(r"[a-z_]+", error["code"]), error
            assert error["message"], error
    return response


def assert_clean_log(process: Process) -> None:
    log = process.log()
    assert "Traceback" not in log
    assert not [e for e in process.log_events() if e.get("event") == "http.unhandled"]


# --------------------------------------------------------------------------- hypothesis


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_generated_requests_never_5xx_and_a_refusal_writes_nothing(
    daemon: Target,
) -> None:
    statuses: dict[int, int] = {}

    def fuzz() -> None:
        with requests.Session() as session:

            @SETTINGS
            @given(req=requests_())
            def one(req: Request) -> None:
                method, path, body, headers = req
                response = check(
                    daemon,
                    lambda: session.request(
                        method, daemon.process.url + path, data=body, headers=headers, timeout=10
                    ),
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

            one()

    await asyncio.to_thread(fuzz)
    print(dict(sorted(statuses.items())))
    assert sum(statuses.values()) >= EXAMPLES
    assert sum(n for s, n in statuses.items() if s < 300) > 0  # some got through
    assert sum(n for s, n in statuses.items() if s >= 400) > EXAMPLES / 2
    assert_clean_log(daemon.process)


# --------------------------------------------------------------------------- schemathesis

OPERATIONS = ("/v1/events", "/v1/events/batch", "/v1/endpoints", "/v1/endpoints/{id}")


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_schemathesis_refusals_write_nothing(daemon: Target) -> None:
    """Schemathesis, positive and negative cases, on ingest and endpoint operations (with the
    admin token: ingest takes it too): no 5xx and no partial write."""
    sent: list[int] = []

    def run(session: requests.Session, strategy: Any, with_id: bool) -> None:
        @settings(SETTINGS, max_examples=SCHEMA_EXAMPLES)
        @given(case=strategy)
        def one(case: schemathesis.Case) -> None:
            if with_id:
                case.path_parameters = {"id": "api"}
            response = check(
                daemon,
                lambda: case.call(
                    base_url=daemon.process.url, session=session, headers=bearer(ADMIN), timeout=10
                ),
            )
            sent.append(response.status_code)

        one()

    def fuzz() -> None:
        schema = schemathesis.openapi.from_url(
            daemon.process.url + "/openapi.json",
            config=schemathesis.Config.from_dict({"headers": bearer(ADMIN)}),
            timeout=10,
        )
        with requests.Session() as session:
            for result in schema.get_all_operations():
                operation = result.ok()
                if operation.path not in OPERATIONS:
                    continue
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    strategy = operation.as_strategy(generation_mode=mode)
                    try:
                        run(session, strategy, "{id}" in operation.path)
                    except Unsatisfiable:
                        assert mode is GenerationMode.NEGATIVE

    await asyncio.to_thread(fuzz)
    print(f"schemathesis: {len(sent)} requests, statuses {sorted(set(sent))}")
    assert len(sent) >= 100
    assert_clean_log(daemon.process)


# --------------------------------------------------------------------------- the YAML loader

# One line each, printable: a key with a newline or a terminal escape in it is shown escaped.
PROBLEM = re.compile(r"hostile\.yaml(:\d+)?: \S.*")
keys = st.sampled_from(
    ["listen", "storage", "auth", "limits", "delivery", "policies", "endpoints", "plugins",
     "event_types", "log", "shutdown_timeout", "path", "url", "id", "events", "delays",
     "timeout", "jitter", "signing", "secret", "secret_file", "tls", "filter", "tenant"]
) | hostile_text  # fmt: skip
yaml_values = st.recursive(
    scalars | st.sampled_from(["10s", "1MiB", "${NOPE}", "*", "0.0000001/s", "!!python/none"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=24,
)
yaml_texts = (
    st.dictionaries(keys, yaml_values, max_size=6).map(
        lambda d: yaml.safe_dump(d, allow_unicode=True)
    )
    | st.text(st.sampled_from(list("ab:- \n\t{}[]&*!|>'\"%@`#,?0.\\")), max_size=80)
    | hostile_text
)


@SETTINGS
@given(text=yaml_texts)
@example(text='"a\\nb": 1\n')  # a key with a newline in it
@example(text='"\\e[31mred": 1\n')  # a key with a terminal escape in it
@example(text="a: 1\nb: \x9a\n")  # a character YAML refuses (PyYAML says so on two lines)
@example(text="? '\x85  '\n: null\n")  # a key of spaces (NEL folds to one): shown quoted
@example(text="' FZ': 1\n")  # a key that begins with a space (found by the generator)
@example(text="{}:")  # a mapping as a key (the path tracker popped an empty stack)
@example(text="? [a, {b: 1}]\n: x\nlisten: 1\n")  # a sequence holding a mapping as a key
def test_generated_yaml_is_a_config_or_problems_with_a_line(text: str) -> None:
    problems: list[str] = []
    try:
        parse(text, source="hostile.yaml")
    except ConfigError as exc:
        problems = list(exc.problems) or ["(ConfigError without a problem)"]
    if text == "a: 1\nb: \x9a\n":
        assert problems[0].startswith("hostile.yaml:2: YAML syntax error: unacceptable"), problems
    if text == "' FZ': 1\n":
        assert problems == [
            "hostile.yaml:1: ' FZ': unknown key (expected one of: listen, shutdown_timeout, auth,"
            " storage, limits, delivery, policies, endpoints, plugins, log, event_types)"
        ]
    if text == "{}:":
        assert problems == ["hostile.yaml:1: ?: a key must be text, not a mapping"]
    for problem in problems:
        assert PROBLEM.fullmatch(problem), problem
        assert problem.isprintable(), problem
