"""The web page at ``/ui/``: the operator's dashboard and a tenant's portal, over the API.

The page is static files shipped in the package (:mod:`hookd.ui`: ``index.html``, ES modules,
``app.css``): no build step, nothing from another origin. ``/ui/`` answers ``index.html``
(never cached); the files it loads are at ``/ui/static/<key>/<name>``, where the key is hookd's
version and a digest of the files, so they are cached for a year and a new hookd never meets a
stale copy. The Content-Security-Policy allows scripts, styles and requests from hookd itself
only (no inline script or style at all).

The page itself needs no token; every call it makes goes through the API with the token the
operator types in, kept in ``sessionStorage`` for the tab only. A tenant's portal link,
``/ui/#token=<tenant token>``, puts the token there instead: the page takes it from the
fragment (which never reaches a server or a Referer), removes it from the address bar, and
shows what that token may see and do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from hookd import __version__
from hookd.api.access import OPEN, route
from hookd.api.http import ApiProblem

PACKAGE = "hookd.ui"
TYPES = {".js": "text/javascript", ".css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=31536000, immutable",
}


@dataclass(frozen=True, slots=True)
class Assets:
    key: str  # the path segment that names this hookd's files: version and digest
    page: str  # index.html, its placeholders filled in
    files: dict[str, tuple[bytes, str]]  # name -> (content, content type)


def load() -> Assets:
    """The page's files from the installed package."""
    root = resources.files(PACKAGE)
    files: dict[str, tuple[bytes, str]] = {}
    for item in sorted(root.iterdir(), key=lambda i: i.name):
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in TYPES:
            files[item.name] = (item.read_bytes(), TYPES[suffix])
    digest = hashlib.sha256()
    for name, (content, _) in files.items():
        digest.update(name.encode() + b"\0" + content)
    key = f"{__version__}-{digest.hexdigest()[:12]}"
    page = (root / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{assets}}", key).replace("{{version}}", __version__)
    return Assets(key=key, page=page, files=files)


ASSETS: web.AppKey[Assets] = web.AppKey("ui_assets", Assets)


async def page(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    return web.Response(text=assets.page, content_type="text/html", headers=_PAGE_HEADERS)


async def static(request: web.Request) -> web.Response:
    assets = request.app[ASSETS]
    name = request.match_info["name"]
    found = assets.files.get(name)
    if request.match_info["version"] != assets.key or found is None:
        raise ApiProblem(404, "not_found", f"no file {name!r} for this version of the page")
    content, ctype = found
    return web.Response(body=content, content_type=ctype, charset="utf-8", headers=_ASSET_HEADERS)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ui")


def add_routes(app: web.Application) -> None:
    app[ASSETS] = load()
    route(app, "GET", "/ui", page, OPEN)
    route(app, "GET", "/ui/", page, OPEN)  # the portal link: /ui/#token=...
    route(app, "GET", "/ui/static/{version}/{name}", static, OPEN)
    route(app, "GET", "/", root, OPEN)
