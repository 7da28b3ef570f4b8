"""The ``hookd`` command line. Errors are one line on stderr and a non-zero exit.

This module holds the parser and what every client command shares: where the daemon is (SPEC §7
"CLI": ``--url``, ``-c``, ``$HOOKD_URL``, ``$HOOKD_CONFIG``, ``./hookd.yaml``, the default), a small
synchronous-looking HTTP client (aiohttp under :func:`asyncio.run`), and plain aligned tables.
The commands themselves live in :mod:`hookd.commands`, :mod:`hookd.receive`, :mod:`hookd.demo`
and :mod:`hookd.keygen`; each adds itself to the parser through ``register(sub)``.

Exit codes: 0 ok, 1 failure (unreachable daemon, API error), 2 usage (bad option or config).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hookd import __version__
from hookd.errors import ConfigError, HookdError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
DEFAULT_URL = "http://127.0.0.1:8080"
REQUEST_TIMEOUT = 30.0


class UsageError(HookdError):
    """The command line asks for something impossible (bad --data, bad --url): exit 2."""


class ApiError(HookdError):
    """The daemon answered with an HTTP error; the message is the API's own."""

    def __init__(self, message: str, *, status: int, code: str | None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"hookd: {message} (see {self.prog} --help)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps description and example line breaks; room for long command names."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures subcommand names without their extra indent, then wraps them.
        subactions: list[argparse.Action] = getattr(action, "_choices_actions", [])
        for sub in subactions:
            width = len(self._format_action_invocation(sub)) + self._current_indent + 2
            self._action_max_length = max(self._action_max_length, width)


def add_command(
    sub: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> Parser:
    """A subcommand with a one-line ``help``, a description and an ``example:`` epilog."""
    label = "example" if len(examples) == 1 else "examples"
    parser: Parser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"{label}:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=Formatter,
        parents=list(parents),
    )
    return parser


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


def build_parser() -> Parser:
    parser = Parser(
        prog="hookd",
        description="hookd: a self-hosted webhook delivery daemon.",
        epilog=(
            "Client commands find the daemon with --url, -c FILE, $HOOKD_URL, $HOOKD_CONFIG or\n"
            "./hookd.yaml (in that order), and authenticate with $HOOKD_ADMIN_TOKEN\n"
            "(send: $HOOKD_INGEST_TOKEN, else the admin token).\n"
            "Run 'hookd COMMAND --help' for a command's options and an example."
        ),
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"hookd {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser, title="commands"
    )
    sub.required = True

    run = add_command(
        sub,
        "run",
        help="run the daemon",
        description="Run the hookd daemon until SIGTERM or Ctrl-C (SIGHUP reloads the config).",
        examples=["hookd run -c /etc/hookd/hookd.yaml"],
    )
    run.add_argument(
        "-c",
        "--config",
        help="YAML config (default: $HOOKD_CONFIG, else ./hookd.yaml, else a built-in default)",
    )
    run.set_defaults(handler=cmd_run)

    check = add_command(
        sub,
        "check",
        help="validate a config file",
        description="Validate a config; print every problem as FILE:LINE: key.path: message.",
        examples=["hookd check -c hookd.yaml"],
    )
    check.add_argument("-c", "--config", help="the YAML file to check")
    check.set_defaults(handler=cmd_check)

    from hookd import commands, demo, keygen, receive

    commands.register(sub)
    receive.register(sub)
    keygen.register(sub)
    demo.register(sub)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from hookd import config as configuration
    from hookd import daemon, logs

    path = configuration.find_config_path(args.config)
    config = configuration.load(path)
    logs.configure(config.log.level, config.log.format)
    return daemon.main(config, path)


def cmd_check(args: argparse.Namespace) -> int:
    from hookd import config as configuration
    from hookd import endpoints, plugins

    path = configuration.find_config_path(args.config)
    # Every problem at once: the YAML's, the plugins', and those of resolving each endpoint
    # that parsed (a scheme or format no plugin registers, key material its signer refuses).
    config, problems = configuration.load_partial(path)
    if config is not None:
        registry, plugin_problems = plugins.load_plugins(config)
        problems += plugin_problems + endpoints.resolve_config(config, registry)[1]
    if problems:
        raise ConfigError(configuration.by_line(problems))
    assert config is not None
    print(config.summary())
    return 0


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


class Client:
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


def admin_client(args: argparse.Namespace) -> Client:
    # An ingest token alone still goes along, so that the daemon can say "needs an admin token".
    token = os.environ.get("HOOKD_ADMIN_TOKEN") or os.environ.get("HOOKD_INGEST_TOKEN") or None
    return Client(resolve_url(args), token)


def ingest_client(args: argparse.Namespace) -> Client:
    token = os.environ.get("HOOKD_INGEST_TOKEN") or os.environ.get("HOOKD_ADMIN_TOKEN") or None
    return Client(resolve_url(args), token)


def path_id(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value, safe="")


# --------------------------------------------------------------------------- output


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Plain text columns, left-aligned, two spaces apart; ``None`` shows as ``-``."""
    grid = [list(headers), *([cell(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(headers))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in grid
    )


# --------------------------------------------------------------------------- main


def _tolerant_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HookdError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout's reader went away (``hookd deliveries list | head``): say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:
        print(f"hookd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        if os.environ.get("HOOKD_DEBUG"):
            traceback.print_exc()
        else:
            print(
                f"hookd: unexpected error: {type(exc).__name__}: {exc} "
                "(set HOOKD_DEBUG=1 to see the traceback)",
                file=sys.stderr,
            )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
