"""The operator page at /ui: served without a token, locked down, and driven by the admin API."""

from __future__ import annotations

from pathlib import Path

from tests.support import ADMIN, auth, config, running_daemon

CONFIG = config(extra=auth())


async def test_ui_page_is_served_without_a_token_with_a_strict_policy(tmp_path: Path) -> None:
    """GET /ui answers the page to anyone; / redirects there; the page calls only /v1 routes."""
    async with running_daemon(tmp_path, CONFIG) as d:
        async with d.http.get(d.url + "/ui") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            csp = resp.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp
            assert "connect-src 'self'" in csp
            page = await resp.text()
        assert "/v1/status" in page
        assert "/v1/deliveries" in page
        assert "Authorization" in page  # the operator's token, never baked into the page
        assert ADMIN not in page
        async with d.http.get(d.url + "/", allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/ui"
        status, _ = await d.request("GET", "/v1/status")
        assert status == 401  # the data behind the page still needs the admin token
