"""``hookd send --tenant``, ``endpoints list/create --tenant`` and ``hookd tenants`` as
subprocesses against a real daemon (SPEC §8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import (
    ADMIN,
    Receiver,
    assert_one_line_error,
    auth,
    bearer,
    clean_env,
    config,
    endpoint,
    hookd,
    running_daemon,
)

pytestmark = pytest.mark.slow  # every test here runs python -m hookd


async def test_the_tenant_commands_against_a_running_daemon(tmp_path: Path, sink: Receiver) -> None:
    text = config(endpoint("acme-yaml", sink.url, tenant="acme"), extra=auth())
    async with running_daemon(tmp_path, text, headers=bearer(ADMIN)) as d:
        env = clean_env(HOOKD_URL=d.url, HOOKD_ADMIN_TOKEN=ADMIN)
        made = await hookd("endpoints", "create", sink.url, "--tenant", "globex", env=env)
        assert made.code == 0, made.err
        assert "tenant" in made.out
        assert "globex" in made.out

        sent = await hookd("send", "task.done", "--tenant", "acme", "--data", "{}", env=env)
        assert sent.code == 0, sent.err
        assert "acme-yaml" in sent.out
        sent = await hookd("send", "task.done", "--tenant", "globex", env=env)
        assert "acme-yaml" not in sent.out

        listed = await hookd("endpoints", "list", "--tenant", "acme", env=env)
        assert listed.code == 0, listed.err
        rows = listed.out.splitlines()[1:]
        assert len(rows) == 1
        assert rows[0].split()[0] == "acme-yaml"
        assert rows[0].split()[-1] == "acme"  # the TENANT column

        tenants = await hookd("tenants", "list", env=env)
        assert tenants.code == 0, tenants.err
        names = [line.split()[0] for line in tenants.out.splitlines()[1:]]
        assert names == ["acme", "globex"]

        token = await hookd("tenants", "token", "acme", "--ttl", "2h", env=env)
        assert token.code == 0, token.err
        lines = token.out.splitlines()
        jwt = lines[1]
        assert lines[-1] == f"{d.url}/ui/#token={jwt}"
        status, eps = await d.request("GET", "/v1/endpoints", headers=bearer(jwt))
        assert status == 200
        assert [e["id"] for e in eps["items"]] == ["acme-yaml"]

        revoked = await hookd("tenants", "revoke", "acme", env=env)
        assert revoked.code == 0, revoked.err
        assert (await d.request("GET", "/v1/endpoints", headers=bearer(jwt)))[0] == 401

        bad = await hookd("tenants", "token", "a b", env=env)
        assert_one_line_error(bad, 1, "tenant")
        bad = await hookd("send", "x", "--tenant", "acme corp", env=env)
        assert_one_line_error(bad, 1, "tenant")
