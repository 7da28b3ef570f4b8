"""Reaching a running daemon: where it is, the options that say so, and a small admin client.

Where the daemon is (SPEC §7 "CLI"): ``--url``, ``-c``, ``$HOOKD_URL``, ``$HOOKD_CONFIG``,
``./hookd.yaml``, the default. :class:`AdminClient` is a synchronous-looking HTTP client for the
admin and ingest APIs (aiohttp under :func:`asyncio.run`); every problem becomes one
:class:`~hookd.errors.HookdError`. (The daemon's own delivery client is
:mod:`hookd.delivery.client`.)
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hookd import __version__
from hookd.cli.errors import UsageError
from hookd.errors import ConfigError, HookdError

DEFAULT_URL = "http://127.0.0.1:8080"
REQUEST_TIMEOUT = 30.0


class ApiError(HookdError):
    """The daemon answered with an HTTP error; the message is the API's own."""

    def __init__(self, message: str, *, status: int, code: str | None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


def client_options(*, json_output: bool = True) -> argparse.ArgumentParser:
    """``--url``, ``-c`` (and ``--json``) for a command that talks to a running daemon."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("reaching the daemon")
    group.add_argument(
        "--url",
        help="the daemon's address (default: $HOOKD_URL, else the listen address of the "
        f"config, else {DEFAULT_URL})",
    )
    group.add_argument(
        "-c",
        "--config",
        help="read the listen address from this config (default: $HOOKD_CONFIG, ./hookd.yaml)",
    )
    if json_output:
        parent.add_argument(
            "--json", action="store_true", help="print the API's JSON answer instead of text"
        )
    return parent


# --------------------------------------------------------------------------- the daemon's URL


def resolve_url(args: argparse.Namespace) -> str:
    """SPEC §7: ``--url``, ``-c``, ``$HOOKD_URL``, ``$HOOKD_CONFIG``/``./hookd.yaml``, default.

    Explicit options come before the environment, as usual; a config is read only for its
    ``listen`` address, so a secret variable missing from this shell does not get in the way.
    """
    if getattr(args, "url", None):
        return checked_url(args.url, "--url")
    config = getattr(args, "config", None)
    if not config and (env := os.environ.get("HOOKD_URL")):
        return checked_url(env, "$HOOKD_URL")
    from hookd import config as configuration

    path = configuration.find_config_path(config)
    return DEFAULT_URL if path is None else listen_url(path)


def checked_url(url: str, where: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where} must look like http://127.0.0.1:8080, got {url!r}")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError as exc:
        raise UsageError(f"{where} has a bad port: {url!r}") from exc
    return url.strip().rstrip("/")


def listen_url(path: Path) -> str:
    """The first listen address of the config at ``path``, as a URL."""
    import yaml

    from hookd import config as configuration

    try:
        return configuration.load(path).listen[0].url
    except ConfigError as exc:
        # Elsewhere broken (an unset ${VAR}, an unreadable secret_file): try the listen key alone.
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            raise exc from None
        if not isinstance(raw, dict):
            raise exc from None
        listen = raw.get("listen")
        if listen is None:
            return DEFAULT_URL
        try:
            only = configuration.parse(yaml.safe_dump({"listen": listen}), source=str(path))
        except ConfigError:
            raise exc from None
        return only.listen[0].url


# --------------------------------------------------------------------------- the HTTP client


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class AdminClient:
    """A tiny blocking client for the daemon's API; every problem becomes one HookdError."""

    def __init__(self, url: str, token: str | None, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Answer:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Answer:
        return self.request("POST", path, body=body)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Answer:
        import asyncio

        return asyncio.run(self._request(method, path, body, params))

    def all_pages(
        self, path: str, params: Mapping[str, str | int]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every item of a list route, following ``next_cursor``; the merged body for --json."""
        items: list[dict[str, Any]] = []
        params = dict(params)
        while True:
            body = self.get(path, params).body
            if isinstance(body, list):  # tolerate a bare array
                return body, {"items": body, "next_cursor": None}
            items.extend(body.get("items") or [])
            cursor = body.get("next_cursor")
            if not cursor:
                return items, {"items": items, "next_cursor": None}
            params["cursor"] = cursor

    async def _request(
        self, method: str, path: str, body: Any, params: Mapping[str, str | int] | None
    ) -> Answer:
        import aiohttp

        headers = {"Accept": "application/json", "User-Agent": f"hookd-cli/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        kwargs: dict[str, Any] = {"headers": headers, "params": dict(params or {})}
        if body is not None or method == "POST":
            kwargs["json"] = {} if body is None else body
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(method, self.url + path, **kwargs) as resp,
            ):
                text = await resp.text(errors="replace")
                status = resp.status
        except TimeoutError as exc:
            raise HookdError(
                f"hookd at {self.url} did not answer within {self.timeout:g}s"
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise UsageError(f"not a usable URL: {self.url + path!r}") from exc
        except aiohttp.ClientError as exc:
            raise HookdError(
                f"cannot reach hookd at {self.url}: {_reason(exc)} — is it running? (hookd run)"
            ) from exc
        try:
            data = json.loads(text) if text else None
        except json.JSONDecodeError:
            data = text
        if status >= 400:
            raise _api_error(status, data, self.url + path)
        return Answer(status, data)


def _reason(exc: BaseException) -> str:
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return "connection refused"
        return os_error.strerror or str(os_error) or type(os_error).__name__
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection closed before an answer"
    return str(exc) or type(exc).__name__


def _api_error(status: int, data: Any, where: str) -> ApiError:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or "no message")
        field = error.get("field")
        if field and not message.startswith(f"{field}:"):
            message = f"{field}: {message}"
    else:
        code = None
        snippet = " ".join(str(data or "").split())[:160]
        message = f"unexpected answer from {where}" + (f": {snippet}" if snippet else "")
    hint = ""
    if status == 401:
        hint = " (set $HOOKD_ADMIN_TOKEN, or $HOOKD_INGEST_TOKEN for send)"
    elif status == 403:
        hint = " (this needs an admin token in $HOOKD_ADMIN_TOKEN)"
    label = f"HTTP {status} {code}" if code else f"HTTP {status}"
    return ApiError(f"{message} ({label}){hint}", status=status, code=code)


def admin_client(args: argparse.Namespace) -> AdminClient:
    # An ingest token alone still goes along, so that the daemon can say "needs an admin token".
    token = os.environ.get("HOOKD_ADMIN_TOKEN") or os.environ.get("HOOKD_INGEST_TOKEN") or None
    return AdminClient(resolve_url(args), token)


def ingest_client(args: argparse.Namespace) -> AdminClient:
    token = os.environ.get("HOOKD_INGEST_TOKEN") or os.environ.get("HOOKD_ADMIN_TOKEN") or None
    return AdminClient(resolve_url(args), token)


def path_id(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")


def delivery_ids(body: dict[str, Any]) -> list[str]:
    """Delivery ids in a 202 answer, whichever shape it takes."""
    found = [str(d["id"]) for d in body.get("deliveries") or [] if isinstance(d, dict)]
    if isinstance(body.get("delivery"), dict):
        found.append(str(body["delivery"].get("id")))
    if not found and str(body.get("id", "")).startswith("dlv"):
        found.append(str(body["id"]))
    return found
