"""The web page at /ui: served without a token, locked down, its files cached by version, and
driven by the API."""

from __future__ import annotations

import re
from pathlib import Path

from hookd import __version__
from tests.support import ADMIN, auth, config, running_daemon

CONFIG = config(extra=auth())


async def test_ui_page_is_served_without_a_token_with_a_strict_policy(tmp_path: Path) -> None:
    """GET /ui answers the page to anyone under a CSP with no inline script or style; /
    redirects there; the data behind it still needs a token."""
    async with running_daemon(tmp_path, CONFIG) as d:
        for path in ("/ui", "/ui/"):
            async with d.http.get(d.url + path) as resp:
                assert resp.status == 200
                assert resp.content_type == "text/html"
                csp = resp.headers["Content-Security-Policy"]
                assert resp.headers["Cache-Control"] == "no-store"
                page = await resp.text()
        for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'"):
            assert directive in csp
        assert "unsafe-inline" not in csp
        for inline in ("<script>", "<style", "style="):
            assert inline not in page
        assert ADMIN not in page
        assert f"v{__version__}" in page
        async with d.http.get(d.url + "/", allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/ui"
        status, _ = await d.request("GET", "/v1/status")
        assert status == 401  # the data behind the page still needs the admin token


async def test_the_page_files_are_cached_by_version_and_nothing_comes_from_elsewhere(
    tmp_path: Path,
) -> None:
    """Every file the page loads is under /ui/static/<version-digest>/, cached for a year;
    another version's path is 404; no file names another origin."""
    async with running_daemon(tmp_path, CONFIG) as d:
        async with d.http.get(d.url + "/ui/") as resp:
            page = await resp.text()
        linked = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page)
        assert {p.rsplit("/", 1)[1] for p in linked} == {"app.js", "app.css"}
        key = linked[0].split("/")[3]
        assert key.startswith(__version__ + "-")
        scripts = ""
        for name in ("app.js", "api.js", "dom.js", "chart.js", "deliveries.js", "app.css"):
            async with d.http.get(f"{d.url}/ui/static/{key}/{name}") as resp:
                assert resp.status == 200, name
                assert "immutable" in resp.headers["Cache-Control"]
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.content_type == (
                    "text/css" if name.endswith("css") else "text/javascript"
                )
                text = await resp.text()
            urls = set(re.findall(r"https?://[^\s\"'`]+", text))
            assert urls <= {"http://www.w3.org/2000/svg", "https://example.com/webhooks"}, urls
            scripts += text
        for called in ("/v1/deliveries", "Authorization", "sessionStorage"):
            assert called in scripts
        for wrong in ("/ui/static/0.0.0-abc/app.js", f"/ui/static/{key}/nope.js"):
            async with d.http.get(d.url + wrong) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "not_found"
