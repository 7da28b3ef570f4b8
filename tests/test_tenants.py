"""Tenants (SPEC §8): routing isolation, tenant tokens, and one access layer that confines a
tenant token on every route of the OpenAPI document."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookd.api.openapi_doc import document
from tests.support import (
    ADMIN,
    INGEST,
    Daemon,
    Receiver,
    auth,
    bearer,
    config,
    endpoint,
    running_daemon,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backend")

ENDPOINTS = (
    endpoint("acme-a", "URL/acme-a", tenant="acme")
    + endpoint("acme-b", "URL/acme-b", tenant="acme", events='["task.*"]')
    + endpoint("globex", "URL/globex", tenant="globex")
    + endpoint("every", "URL/every", tenant='"*"')
    + endpoint("plain", "URL/plain")
)


def tenant_config(sink: Receiver, *, limit: int = 100) -> str:
    base = sink.url.removesuffix("/hook")
    return config(
        ENDPOINTS.replace("URL", base),
        extra=auth(ingest=True) + f"limits: {{max_endpoints_per_tenant: {limit}}}\n",
    )


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    async with running_daemon(tmp_path, tenant_config(sink), headers=bearer(ADMIN)) as d:
        yield d


async def mint(d: Daemon, tenant: str, **body: Any) -> str:
    status, answer = await d.request("POST", f"/v1/tenants/{tenant}/tokens", json=body)
    assert status == 201, answer
    assert answer["tenant"] == tenant
    assert answer["portal_path"] == "/ui/#token=" + answer["token"]
    token: str = answer["token"]
    return token


async def as_token(d: Daemon, token: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    return await d.request(method, path, headers=bearer(token), **kw)


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("tenant", "receivers"),
    [
        ("acme", {"acme-a", "acme-b", "every"}),
        ("globex", {"globex", "every"}),
        ("initech", {"every"}),  # a tenant with no endpoint of its own
        (None, {"plain", "every"}),
    ],
)
async def test_an_event_reaches_its_tenants_endpoints_and_star_ones_only(
    daemon: Daemon, sink: Receiver, tenant: str | None, receivers: set[str]
) -> None:
    extra = {} if tenant is None else {"tenant": tenant}
    status, body = await daemon.post_event("task.created", {"n": 1}, **extra)
    assert status == 202, body
    assert {x["endpoint"] for x in body["deliveries"]} == receivers
    await wait_for(lambda: len(sink.requests) == len(receivers))
    assert {r.path.strip("/") for r in sink.requests} == receivers
    event = (await daemon.request("GET", f"/v1/events/{body['id']}"))[1]
    assert event["tenant"] == tenant
    assert {x["tenant"] for x in event["deliveries"]} == {tenant}


async def test_a_batch_routes_each_event_by_its_own_tenant(daemon: Daemon) -> None:
    batch = [
        {"type": "x", "data": {}, "tenant": "acme"},
        {"type": "x", "data": {}, "tenant": "globex"},
        {"type": "x", "data": {}},
    ]
    status, body = await daemon.request("POST", "/v1/events/batch", json=batch)
    assert status == 202
    got = [{x["endpoint"] for x in item["deliveries"]} for item in body["items"]]
    assert got == [{"acme-a", "every"}, {"globex", "every"}, {"plain", "every"}]


@pytest.mark.parametrize("tenant", ["", "-acme", "a" * 65, "acme corp", "acme/x", 7, "*"])
async def test_a_bad_tenant_on_an_event_is_400_naming_tenant(daemon: Daemon, tenant: Any) -> None:
    status, body = await daemon.post_event("x", {}, tenant=tenant)
    assert (status, body["error"]["field"]) == (400, "tenant")
    status, body = await daemon.request(
        "POST", "/v1/events/batch", json=[{"type": "x", "data": {}, "tenant": tenant}]
    )
    assert (status, body["error"]["field"]) == (400, "[0].tenant")


async def test_the_same_id_under_another_tenant_is_a_conflict(daemon: Daemon) -> None:
    assert (await daemon.post_event("x", {}, id="e1", tenant="acme"))[0] == 202
    assert (await daemon.post_event("x", {}, id="e1", tenant="acme"))[0] == 200
    status, body = await daemon.post_event("x", {}, id="e1", tenant="globex")
    assert (status, body["error"]["code"]) == (409, "conflict")


async def test_admin_lists_filter_by_tenant_and_tenants_are_counted(daemon: Daemon) -> None:
    await daemon.post_event("task.x", {}, tenant="acme")
    await daemon.post_event("task.x", {}, tenant="globex")
    await daemon.post_event("task.x", {}, tenant="initech")
    _, eps = await daemon.request("GET", "/v1/endpoints?tenant=acme")
    assert [e["id"] for e in eps["items"]] == ["acme-a", "acme-b"]
    _, dels = await daemon.request("GET", "/v1/deliveries?tenant=acme")
    assert {d["endpoint"] for d in dels["items"]} == {"acme-a", "acme-b", "every"}
    status, tenants = await daemon.request("GET", "/v1/tenants")
    assert status == 200
    by_name = {t["tenant"]: t for t in tenants["items"]}
    assert set(by_name) == {"acme", "globex", "initech"}
    assert by_name["acme"]["endpoints"] == 2
    assert sum(by_name["acme"]["deliveries"].values()) == 3
    assert (by_name["initech"]["endpoints"], sum(by_name["initech"]["deliveries"].values())) == (
        0,
        1,
    )


# --------------------------------------------------------------------------- tokens


async def test_a_tenant_token_sees_and_manages_only_its_own(daemon: Daemon) -> None:
    token = await mint(daemon, "acme")
    _, body = await daemon.post_event("task.x", {"secret": "acme's"}, tenant="acme")
    _, other = await daemon.post_event("task.x", {"secret": "globex's"}, tenant="globex")
    status, eps = await as_token(daemon, token, "GET", "/v1/endpoints")
    assert status == 200
    assert [e["id"] for e in eps["items"]] == ["acme-a", "acme-b"]
    _, eps = await as_token(daemon, token, "GET", "/v1/endpoints?tenant=globex")
    assert [e["id"] for e in eps["items"]] == ["acme-a", "acme-b"]  # its scope wins
    _, dels = await as_token(daemon, token, "GET", "/v1/deliveries")
    assert {d["endpoint"] for d in dels["items"]} == {"acme-a", "acme-b"}  # not "every"
    assert (await as_token(daemon, token, "GET", f"/v1/events/{body['id']}"))[0] == 200
    status, answer = await as_token(daemon, token, "GET", f"/v1/events/{other['id']}")
    assert status == 404
    assert answer["error"]["message"] == f"no event with id {other['id']!r}"


async def test_another_tenants_object_answers_exactly_as_an_absent_one(daemon: Daemon) -> None:
    """Same status, code and message shape for another tenant's id as for one that never was."""
    token = await mint(daemon, "acme")
    _, sent = await daemon.post_event("task.x", {}, tenant="globex")
    globex_delivery = next(x["id"] for x in sent["deliveries"] if x["endpoint"] == "globex")
    cases = [
        ("GET", "/v1/endpoints/{}", "globex", "no endpoint with id {!r}"),
        ("POST", "/v1/endpoints/{}/disable", "every", "no endpoint with id {!r}"),
        ("DELETE", "/v1/endpoints/{}", "plain", "no endpoint with id {!r}"),
        ("GET", "/v1/deliveries/{}", globex_delivery, "no delivery with id {!r}"),
        ("POST", "/v1/deliveries/{}/retry", globex_delivery, "no delivery with id {!r}"),
        ("GET", "/v1/events/{}", sent["id"], "no event with id {!r}"),
    ]
    for method, path, existing, message in cases:
        for object_id in (existing, "does-not-exist"):
            status, body = await as_token(daemon, token, method, path.format(object_id))
            assert status == 404, (method, path, object_id, body)
            assert body["error"] == {"code": "not_found", "message": message.format(object_id)}


async def test_a_tenant_creates_endpoints_of_its_own_tenant_within_its_limit(
    tmp_path: Path, sink: Receiver
) -> None:
    async with running_daemon(tmp_path, tenant_config(sink, limit=3), headers=bearer(ADMIN)) as d:
        token = await mint(d, "acme")
        url = sink.url
        status, created = await as_token(d, token, "POST", "/v1/endpoints", json={"url": url})
        assert status == 201, created
        assert created["tenant"] == "acme"
        assert created["secret"].startswith("whsec_")
        for body, code in (
            ({"url": url, "tenant": "globex"}, 403),
            ({"url": url, "tenant": "*"}, 403),
            ({"url": url, "id": "chosen"}, 400),  # else another tenant's id would show
        ):
            status, answer = await as_token(d, token, "POST", "/v1/endpoints", json=body)
            assert status == code, answer
        status, answer = await as_token(d, token, "POST", "/v1/endpoints", json={"url": url})
        assert (status, answer["error"]["code"]) == (409, "tenant_limit")
        status, answer = await as_token(
            d, token, "PATCH", f"/v1/endpoints/{created['id']}", json={"tenant": "globex"}
        )
        assert (status, answer["error"]["field"]) == (400, "tenant")
        status, _ = await as_token(
            d, token, "PATCH", f"/v1/endpoints/{created['id']}", json={"events": ["task.*"]}
        )
        assert status == 200
        _, sent = await d.post_event("task.done", {}, tenant="acme")
        assert created["id"] in {x["endpoint"] for x in sent["deliveries"]}


async def test_tokens_expire_are_revoked_at_once_and_resist_tampering(daemon: Daemon) -> None:
    token = await mint(daemon, "acme")
    short = await mint(daemon, "acme", ttl="1s")
    assert (await as_token(daemon, token, "GET", "/v1/endpoints"))[0] == 200
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "globex"}).encode())
    for bad in (
        f"{header}.{forged.decode().rstrip('=')}.{signature}",  # another tenant, same signature
        f"{header}.{payload}.{signature[:-2]}AA",  # a changed signature
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY21lIn0.",  # alg none
    ):
        status, body = await as_token(daemon, bad, "GET", "/v1/endpoints")
        assert (status, body["error"]["code"]) == (401, "unauthorized")

    async def expired() -> bool:
        return (await as_token(daemon, short, "GET", "/v1/endpoints"))[0] == 401

    await wait_for(expired, timeout=15)
    status, body = await daemon.request("POST", "/v1/tenants/acme/revoke-tokens")
    assert (status, body) == (200, {"tenant": "acme", "revoked": True})
    status, body = await as_token(daemon, token, "GET", "/v1/endpoints")
    assert (status, body["error"]["message"]) == (401, "the tenant token was revoked")
    fresh = await mint(daemon, "acme")
    assert (await as_token(daemon, fresh, "GET", "/v1/endpoints"))[0] == 200
    globex = await mint(daemon, "globex")  # revoking acme's tokens leaves globex's alone
    assert (await as_token(daemon, globex, "GET", "/v1/endpoints"))[0] == 200


async def test_a_token_survives_a_restart(tmp_path: Path, sink: Receiver) -> None:
    text = tenant_config(sink)
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        token = await mint(d, "acme", ttl="1h")
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        status, eps = await as_token(d, token, "GET", "/v1/endpoints")
        assert status == 200
        assert [e["id"] for e in eps["items"]] == ["acme-a", "acme-b"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tenants/acme/tokens", {"ttl": "31d"}, "ttl"),
        ("/v1/tenants/acme/tokens", {"ttl": "soon"}, "ttl"),
        ("/v1/tenants/acme/tokens", {"ttl": 0}, "ttl"),
        ("/v1/tenants/acme/tokens", {"colour": 1}, "colour"),
        ("/v1/tenants/-bad/tokens", {}, "tenant"),
        ("/v1/tenants/-bad/revoke-tokens", {}, "tenant"),
    ],
)
async def test_bad_token_requests_are_400_naming_the_field(
    daemon: Daemon, path: str, body: dict[str, Any], field: str
) -> None:
    status, answer = await daemon.request("POST", path, json=body)
    assert (status, answer["error"]["field"]) == (400, field)


async def test_a_tenant_pages_its_deliveries_with_cursors_bound_to_it(daemon: Daemon) -> None:
    token = await mint(daemon, "acme")
    for n in range(5):
        await daemon.post_event("task.x", {"n": n}, tenant="acme")
        await daemon.post_event("task.x", {"n": n}, tenant="globex")
    seen: list[str] = []
    path = "/v1/deliveries?limit=3"
    while True:
        status, page = await as_token(daemon, token, "GET", path)
        assert status == 200
        seen += [d["id"] for d in page["items"]]
        assert {d["endpoint"] for d in page["items"]} <= {"acme-a", "acme-b"}
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        assert not cursor.isdigit()
        path = f"/v1/deliveries?limit=3&cursor={cursor}"
    assert len(seen) == len(set(seen)) == 10  # 5 events x 2 acme endpoints
    _, admin_page = await daemon.request("GET", "/v1/deliveries?limit=1")
    status, answer = await as_token(
        daemon, token, "GET", f"/v1/deliveries?cursor={admin_page['next_cursor']}"
    )
    assert (status, answer["error"]["field"]) == (400, "cursor")  # the admin's, not the tenant's


# --------------------------------------------------------------------------- the route matrix


def _operations() -> list[tuple[str, str, bool]]:
    """Every (method, path, tenant allowed) of the OpenAPI document."""
    out = []
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if method == "parameters" or op.get("security") == []:
                continue
            allowed = {"tenantToken": []} in op.get("security", [])
            out.append((method.upper(), path, allowed))
    return out


BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/events"): {"type": "x", "data": {}},
    ("POST", "/v1/events/batch"): [{"type": "x", "data": {}}],
    ("POST", "/v1/endpoints"): {"url": "http://127.0.0.1:9/new"},
    ("PATCH", "/v1/endpoints/{id}"): {"events": ["*"]},
}


async def test_every_route_is_confined_or_refused_for_a_tenant_token(
    daemon: Daemon, sink: Receiver
) -> None:
    """Every route of the OpenAPI document, with a tenant token: a route open to tenants
    answers for the tenant's own objects and 404 for another tenant's, exactly as for an absent
    one; every other route answers 403. A route added without a rule is admin-only, so it lands
    in the second group (and this test fails until the document says which it is)."""
    token = await mint(daemon, "acme")
    created = await daemon.create_endpoint(url=sink.url, tenant="acme", id="acme-api")
    assert created["tenant"] == "acme"
    _, mine = await daemon.post_event("task.x", {}, tenant="acme")
    _, theirs = await daemon.post_event("task.x", {}, tenant="globex")
    own = {
        "endpoint": "acme-api",
        "delivery": next(x["id"] for x in mine["deliveries"] if x["endpoint"] == "acme-a"),
        "event": mine["id"],
        "tenant": "acme",
    }
    other = {
        "endpoint": "globex",
        "delivery": next(x["id"] for x in theirs["deliveries"] if x["endpoint"] == "globex"),
        "event": theirs["id"],
        "tenant": "globex",
    }
    operations = _operations()
    # disabling and deleting last, so the other routes find the tenant's endpoint working
    operations.sort(key=lambda o: (o[0] == "DELETE", o[1].endswith("/disable")))
    assert len(operations) >= 20
    for method, path, allowed in operations:
        body = BODIES.get((method, path))
        kind = _kind(path)
        for ids, confined in ((own, False), (other, True)):
            concrete = path.replace("{id}", str(ids.get(kind, ""))).replace(
                "{tenant}", ids["tenant"]
            )
            status, answer = await as_token(daemon, token, method, concrete, json=body)
            where = f"{method} {concrete}"
            if not allowed:
                assert status == 403, where
                assert answer["error"]["code"] == "forbidden", where
            elif confined and "{id}" in path:
                assert status == 404, where
            else:  # reached the handler: an answer, or a refusal that is not about access
                assert status < 500, (where, answer)
                assert status not in (401, 403, 404), (where, answer)
                _assert_only_acme(answer, where)
            if "{" not in path:
                break  # a path without an id has no other tenant's object to try


def _kind(path: str) -> str:
    if path.startswith("/v1/endpoints"):
        return "endpoint"
    if path.startswith("/v1/deliveries"):
        return "delivery"
    return "event"


def _assert_only_acme(answer: Any, where: str) -> None:
    """Nothing of another tenant anywhere in an answer: no endpoint, tenant or data of theirs."""
    text = json.dumps(answer)
    for foreign in ('"globex"', '"plain"', '"every"', '"tenant": "globex"', '"tenant": null'):
        assert foreign not in text, (where, foreign, text[:500])


async def test_ingest_and_admin_tokens_keep_their_roles(daemon: Daemon) -> None:
    status, _ = await daemon.request("GET", "/v1/tenants", headers=bearer(INGEST))
    assert status == 403
    status, _ = await daemon.request(
        "POST", "/v1/events", json={"type": "x", "data": {}}, headers=bearer(INGEST)
    )
    assert status == 202
    status, body = await daemon.request("GET", "/v1/endpoints", headers=bearer("eyJ.bogus.x"))
    assert (status, body["error"]["code"]) == (401, "unauthorized")
