"""The YAML configuration, parsed once into frozen dataclasses.

Every problem is collected (not just the first) as ``FILE:LINE: key.path: message``. Scalars may
use ``${VAR}``; signing secrets may come from ``secret_file``. Unknown keys are errors.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

from hookd import policy as retry
from hookd.builtin import builtin_registry
from hookd.errors import ConfigError, HookdError
from hookd.redact import redact_url
from hookd.registry import SignerConfig, SigningKey
from hookd.units import parse_duration, parse_rate, parse_size

EMBEDDED_SOURCE = "<embedded default>"
EMBEDDED_DEFAULT = """\
listen: 127.0.0.1:8080
storage: {path: ./hookd.db}
"""
SYNCHRONOUS = ("off", "normal", "full", "extra")
BUILTIN_SCHEMES = ("standard-webhooks", "hmac-sha256", "rsa-sha256")
KEY_SOURCES = ("secret", "secret_file", "private_key_file")

# Every key the YAML may hold, by section (``*`` is a policy name, ``[]`` any list item).
# Anything else is an error; config.example.yaml and docs/configuration.md show all of them.
SCHEMA: Mapping[str, tuple[str, ...]] = {
    "": (
        "listen",
        "shutdown_timeout",
        "auth",
        "storage",
        "limits",
        "delivery",
        "policies",
        "endpoints",
        "plugins",
        "log",
    ),
    "auth": ("ingest_tokens", "admin_tokens"),
    "storage": ("path", "synchronous", "retention", "secret_key", "secret_key_file"),
    "limits": ("max_body", "max_pending"),
    "delivery": ("concurrency", "allow_private_networks", "max_response_body"),
    "policies.*": (
        "timeout",
        "retry_on",
        "delays",
        "backoff",
        "jitter",
        "honor_retry_after",
        "retry_after_max",
        "disable_after",
    ),
    "policies.*.backoff": ("initial", "factor", "max", "attempts"),
    "endpoints[]": (
        "id",
        "url",
        "events",
        "policy",
        "body",
        "signing",
        "headers",
        "rate_limit",
        "max_in_flight",
        "ordering",
        "filter",
        "options",
    ),
    "endpoints[].signing": (
        "scheme",
        "secret",
        "secret_file",
        "private_key_file",
        "header",
        "prefix",
        "options",
    ),
    "plugins[]": ("path", "module", "options"),
    "log": ("level", "format"),
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthConfig:
    ingest_tokens: tuple[str, ...] = field(default=(), repr=False)
    admin_tokens: tuple[str, ...] = field(default=(), repr=False)

    @property
    def open(self) -> bool:
        return not self.ingest_tokens and not self.admin_tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class StorageConfig:
    path: Path = Path("hookd.db")
    synchronous: Literal["off", "normal", "full", "extra"] = "full"
    retention: float = 30 * 86400.0
    secret_key: str | None = field(default=None, repr=False)  # seals API-created endpoint secrets


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitsConfig:
    max_body: int = 1024 * 1024
    max_pending: int = 1_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryConfig:
    concurrency: int = 256
    allow_private_networks: bool = False
    max_response_body: int = 4096


@dataclass(frozen=True, kw_only=True, slots=True)
class SigningConfig:
    scheme: str = "standard-webhooks"
    secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # PEM text from private_key_file
    header: str | None = None
    prefix: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointConfig:
    id: str
    url: str
    events: tuple[str, ...] = ("*",)
    policy: str = "standard"
    body: str = "standard"
    signing: SigningConfig = field(default_factory=SigningConfig)
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: float | None = None  # requests per second
    max_in_flight: int | None = None
    ordering: Literal["none", "fifo"] = "none"
    filter: str | None = None  # a plugin filter's name
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class PluginConfig:
    path: Path | None = None
    module: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else str(self.module)


@dataclass(frozen=True, kw_only=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    source: str = EMBEDDED_SOURCE
    listen: tuple[ListenAddress, ...] = (ListenAddress(host="127.0.0.1", port=8080),)
    shutdown_timeout: float = 30.0
    auth: AuthConfig = field(default_factory=AuthConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    policies: Mapping[str, retry.RetryPolicy] = field(default_factory=lambda: dict(retry.PRESETS))
    endpoints: tuple[EndpointConfig, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()
    log: LogConfig = field(default_factory=LogConfig)
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)
    # The YAML path of each list item that parsed, by (section, position among those that did):
    # when an item failed (``hookd check`` goes on), the ones after it keep their own lines.
    item_paths: Mapping[tuple[str, int], str] = field(
        default_factory=dict, repr=False, compare=False
    )

    def where(self, path: str) -> str:
        """``FILE:LINE: path`` for messages about a key found after loading (plugins, signers)."""
        return f"{self.source}:{_line_for(self.lines, path)}: {path}"

    def where_item(self, section: str, index: int) -> str:
        """:meth:`where` for ``config.endpoints[index]`` (or ``plugins``): its place in the file."""
        return self.where(self.item_paths.get((section, index), _join(section, index)))

    def summary(self) -> str:
        return (
            f"ok: {len(self.endpoints)} endpoints, {len(self.policies)} policies, "
            f"{len(self.plugins)} plugins"
        )


# --------------------------------------------------------------------------- loading


def find_config_path(explicit: str | None) -> Path | None:
    """SPEC §2: ``-c``, else ``$HOOKD_CONFIG``, else ``./hookd.yaml``, else the embedded default."""
    if explicit:
        return Path(explicit)
    if env := os.environ.get("HOOKD_CONFIG"):
        return Path(env)
    local = Path("hookd.yaml")
    return local if local.exists() else None


def load(path: Path | None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file (or the embedded default). Raises ConfigError."""
    if path is None:
        return parse(EMBEDDED_DEFAULT, source=EMBEDDED_SOURCE, env=env)
    return parse(_read(path), source=str(path), env=env)


def load_partial(
    path: Path | None, *, env: Mapping[str, str] | None = None
) -> tuple[Config | None, list[str]]:
    """Every problem of a config file (``hookd check``) and the Config of what parsed: its
    endpoints and plugins are those without problems. None when the file is not readable YAML.
    """
    try:
        if path is None:
            return _parse(EMBEDDED_DEFAULT, source=EMBEDDED_SOURCE, env=env)
        return _parse(_read(path), source=str(path), env=env)
    except ConfigError as exc:
        return None, exc.problems


def parse(text: str, *, source: str, env: Mapping[str, str] | None = None) -> Config:
    config, problems = _parse(text, source=source, env=env)
    if problems:
        raise ConfigError(problems)
    return config


def by_line(problems: list[str]) -> list[str]:
    """``FILE:LINE: ...`` problems in the order of their lines (stable for one line)."""
    return sorted(problems, key=_line_of_problem)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read: {reason}"]) from exc


def _parse(
    text: str, *, source: str, env: Mapping[str, str] | None = None
) -> tuple[Config, list[str]]:
    """The Config of what parsed and every problem, by line. Raises ConfigError if not YAML."""
    base = Path(source).absolute().parent if source != EMBEDDED_SOURCE else Path.cwd()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_problem(text, source, exc)]) from exc
    reader = _Reader(source=source, env=os.environ if env is None else env, base=base)
    raw = reader.to_python(node, "") if node is not None else {}
    config = reader.build(raw)
    return config, by_line(reader.problems)


# --------------------------------------------------------------------------- internals

T = TypeVar("T")


def _syntax_problem(text: str, source: str, exc: yaml.YAMLError) -> str:
    """``FILE:LINE: key.path: YAML syntax error: ...`` for a file PyYAML cannot parse."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    last_line = max(1, len(text.splitlines()))
    line = min(mark.line + 1, last_line) if mark is not None else 1
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and min(context_mark.line + 1, last_line) != line:
        problem += f" ({context} that starts on line {context_mark.line + 1})"
    path = _path_at_syntax_error(text)
    where = f"{source}:{line}: {path}: " if path else f"{source}:{line}: "
    return f"{where}YAML syntax error: {problem}"


def _path_at_syntax_error(text: str) -> str:
    """The key path PyYAML was inside when it gave up, from the events it produced before."""
    # One frame per open collection: [path, key or index, True while a mapping awaits a key].
    frames: list[list[Any]] = []

    def child_path(*, failed: bool = False) -> str:
        if not frames:
            return ""
        path, key, awaiting_key = frames[-1]
        if isinstance(key, int):  # a sequence: its item, or the sequence when the error is
            return path if failed else _join(path, key)  # between items
        return path if awaiting_key or key is None else _join(path, key)

    def node_done() -> None:
        if frames and isinstance(frames[-1][1], str | type(None)) and frames[-1][2] is False:
            frames[-1][2] = True  # a mapping's value ended: the next node is a key

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.NodeEvent) and frames:
                top = frames[-1]
                if isinstance(top[1], int):
                    top[1] += 1  # the next item of a sequence
                elif top[2]:  # a mapping key
                    top[1] = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
                    top[2] = False
                    continue
            if isinstance(event, yaml.MappingStartEvent):
                frames.append([child_path(), None, True])
            elif isinstance(event, yaml.SequenceStartEvent):
                frames.append([child_path(), -1, None])
            elif isinstance(event, yaml.CollectionEndEvent):
                frames.pop()
                node_done()
            elif isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                node_done()
    except yaml.YAMLError:
        return child_path(failed=True)
    return ""


def _line_for(lines: Mapping[str, int], path: str) -> int:
    """The line of ``path``, else of its closest ancestor that the file has, else line 1."""
    while path:
        if path in lines:
            return lines[path]
        parent = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", path)
        path = "" if parent == path else parent  # a top-level key the file does not have
    return lines.get("", 1)


def _line_of_problem(problem: str) -> int:
    m = re.match(r"^.*?:(\d+): ", problem)
    return int(m.group(1)) if m else 0


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reader:
    """Turns a composed YAML node into plain values, remembering every path's line."""

    def __init__(self, *, source: str, env: Mapping[str, str], base: Path) -> None:
        self.source = source
        self.env = env
        self.base = base
        self.lines: dict[str, int] = {}
        self.item_paths: dict[tuple[str, int], str] = {}
        self.problems: list[str] = []
        self._failed: set[str] = set()
        self._env_failed: set[str] = set()  # keys whose ${VAR} is unset
        # A scalar that is exactly ``${VAR}`` stays a string (a secret of digits is a string),
        # but a number or boolean key accepts the variable's YAML reading: ``max_pending: ${N}``.
        self.env_typed: dict[str, Any] = {}
        self._scalars = yaml.SafeLoader("")  # constructs scalar nodes (ints, bools, strings)
        self.with_plugins = False  # plugins may add schemes, formats and filters: names wait
        self.builtins = builtin_registry()

    # -- YAML → python, with lines and ${VAR}

    def to_python(self, node: yaml.Node, path: str) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                sub = _join(path, key)
                self.lines[sub] = key_node.start_mark.line + 1
                if key in out:
                    self.error(sub, "duplicate key")
                out[key] = self.to_python(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.to_python(item, _join(path, i)) for i, item in enumerate(node.value)]
        value = self._scalars.construct_object(node)
        if isinstance(value, str) and "${" in value:
            whole = _ENV.fullmatch(value) is not None
            value = self.expand(value, path)
            if whole and path not in self._failed:
                self.env_typed[path] = self._typed(value)
        return value

    def _typed(self, text: str) -> Any:
        """What ``text`` would be as a plain YAML scalar (``8080`` an int, ``true`` a bool)."""
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text
        return value if isinstance(value, bool | int | float) else text

    def expand(self, value: str, path: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.error(path, f"environment variable {name} is not set")
                self._env_failed.add(path)
                return ""
            return self.env[name]

        return _ENV.sub(sub, value)

    # -- helpers

    def error(self, path: str, message: str) -> None:
        if path in self._failed:
            return  # one problem per key: the first is the cause
        if any(f.startswith((f"{path}.", f"{path}[")) for f in self._env_failed):
            return  # a missing ${VAR} below this key is the cause; say only that
        self._failed.add(path)
        line = _line_for(self.lines, path)
        where = f"{self.source}:{line}: {path}: " if path else f"{self.source}:{line}: "
        self.problems.append(where + message)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                self.error(_join(path, key), f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def convert(
        self, data: dict[str, Any], key: str, path: str, fn: Callable[[Any], T]
    ) -> T | None:
        if key not in data or data[key] is None:
            return None
        return self.apply(fn, data[key], _join(path, key))

    def apply(self, fn: Callable[[Any], T], value: Any, path: str) -> T | None:
        """``fn(value)``, or None with the problem recorded at ``path``."""
        try:
            return fn(value)
        except ValueError as exc:
            if path in self.env_typed:
                with contextlib.suppress(ValueError):
                    return fn(self.env_typed[path])
            self.error(path, str(exc))
            return None

    def kwargs(
        self, data: dict[str, Any], path: str, **fns: Callable[[Any], Any]
    ) -> dict[str, Any]:
        out = {}
        for key, fn in fns.items():
            value = self.convert(data, key, path, fn)
            if value is not None:
                out[key] = value
        return out

    # -- the schema

    def build(self, raw: Any) -> Config:
        top = self.mapping(raw, "", SCHEMA[""])
        kw: dict[str, Any] = {"source": self.source, "lines": self.lines}
        kw["item_paths"] = self.item_paths
        listen = self.listen(top.get("listen"))
        if listen:
            kw["listen"] = listen
        kw.update(self.kwargs(top, "", shutdown_timeout=_nonneg(parse_duration)))
        auth = self.auth(top.get("auth"))
        kw["auth"] = auth
        kw["storage"] = self.storage(top.get("storage"))
        kw["limits"] = LimitsConfig(
            **self.kwargs(
                self.mapping(top.get("limits"), "limits", SCHEMA["limits"]),
                "limits",
                max_body=_positive(parse_size),
                max_pending=_int_at_least(1),
            )
        )
        delivery = self.mapping(top.get("delivery"), "delivery", SCHEMA["delivery"])
        kw["delivery"] = DeliveryConfig(
            **self.kwargs(
                delivery,
                "delivery",
                concurrency=_int_at_least(1),
                allow_private_networks=_bool,
                max_response_body=parse_size,
            )
        )
        policies = self.policies(top.get("policies"))
        kw["policies"] = policies
        kw["plugins"] = self.plugins(top.get("plugins"))
        self.with_plugins = bool(top.get("plugins"))
        kw["endpoints"] = self.endpoints(top.get("endpoints"), policies)
        log = self.mapping(top.get("log"), "log", SCHEMA["log"])
        kw["log"] = LogConfig(
            **self.kwargs(
                log,
                "log",
                level=_choice("debug", "info", "warning", "error"),
                format=_choice("auto", "json", "console"),
            )
        )
        for address in listen or ():
            if not address.is_loopback and auth.open:
                self.error(
                    "listen",
                    f"{address} is not a loopback address; set auth.ingest_tokens or "
                    "auth.admin_tokens before listening beyond this machine",
                )
        return Config(**kw)

    def listen(self, value: Any) -> tuple[ListenAddress, ...]:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            path = _join("listen", i) if isinstance(value, list) else "listen"
            if (address := self.apply(_parse_listen, item, path)) is not None:
                out.append(address)
        if isinstance(value, list) and not value:
            self.error("listen", "needs at least one address")
        return tuple(out)

    def auth(self, value: Any) -> AuthConfig:
        data = self.mapping(value, "auth", SCHEMA["auth"])
        kw = {}
        for key in ("ingest_tokens", "admin_tokens"):
            tokens = self.convert(data, key, "auth", _token_list)
            if tokens is not None:
                kw[key] = tokens
        return AuthConfig(**kw)

    def storage(self, value: Any) -> StorageConfig:
        data = self.mapping(value, "storage", SCHEMA["storage"])
        kw = self.kwargs(
            data,
            "storage",
            synchronous=_synchronous,
            retention=_positive(parse_duration),
            secret_key=_nonempty_str,
        )
        # Relative paths are relative to the YAML file, the default one included.
        path = self.convert(data, "path", "storage", _nonempty_str) or "hookd.db"
        kw["path"] = self.base / path if path != ":memory:" else Path(path)
        if "secret_key" in data and "secret_key_file" in data:
            self.error("storage.secret_key_file", "give either secret_key or secret_key_file")
        elif "secret_key_file" in data:
            secret = self.read_secret_file(data["secret_key_file"], "storage.secret_key_file")
            if secret is not None:
                kw["secret_key"] = secret
        return StorageConfig(**kw)

    def read_secret_file(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(path, "expected a file path")
            return None
        try:
            return (self.base / value).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.error(path, f"cannot read {value}: {reason}")
            return None

    def policies(self, value: Any) -> dict[str, retry.RetryPolicy]:
        out = dict(retry.PRESETS)
        if value is None:
            return out
        if not isinstance(value, dict):
            self.error("policies", f"expected a mapping of policy names, got {_kind(value)}")
            return out
        for name, spec in value.items():
            path = _join("policies", name)
            if not _ID.match(str(name)):
                self.error(path, "a policy name is letters, digits, '_', '-', '.', ':'")
            base = retry.PRESETS.get(name, retry.PRESETS["standard"])
            out[name] = self.policy(spec, path, replace(base, name=name))
        return out

    def policy(self, value: Any, path: str, base: retry.RetryPolicy) -> retry.RetryPolicy:
        data = self.mapping(value, path, SCHEMA["policies.*"])
        kw = self.kwargs(
            data,
            path,
            timeout=_positive(parse_duration),
            retry_on=retry.parse_retry_on,
            jitter=retry.parse_jitter,
            honor_retry_after=_bool,
            retry_after_max=_nonneg(parse_duration),
            disable_after=_int_at_least(0),
            delays=_delays,
        )
        if "delays" in data and "backoff" in data:
            self.error(_join(path, "backoff"), "give either delays or backoff, not both")
        elif "backoff" in data:
            delays = self.backoff(data["backoff"], _join(path, "backoff"))
            if delays is not None:
                kw["delays"] = delays
        return replace(base, **kw)

    def backoff(self, value: Any, path: str) -> tuple[float, ...] | None:
        data = self.mapping(value, path, SCHEMA["policies.*.backoff"])
        missing = [k for k in ("initial", "attempts") if k not in data]
        for key in missing:
            self.error(_join(path, key), "required")
        kw = self.kwargs(
            data,
            path,
            initial=_positive(parse_duration),
            factor=_float_at_least(1.0),
            max=_positive(parse_duration),
            attempts=_int_at_least(1),
        )
        if missing or len(kw) < len([k for k in data if data[k] is not None]):
            return None
        initial = kw["initial"]
        return retry.backoff_delays(
            initial=initial,
            factor=kw.get("factor", 2.0),
            max=kw.get("max", max(initial, 86400.0)),
            attempts=kw["attempts"],
        )

    def endpoints(
        self, value: Any, policies: Mapping[str, retry.RetryPolicy]
    ) -> tuple[EndpointConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error("endpoints", f"expected a list, got {_kind(value)}")
            return ()
        out: list[EndpointConfig] = []
        seen: set[str] = set()
        for i, spec in enumerate(value):
            path = _join("endpoints", i)
            endpoint_id = spec.get("id") if isinstance(spec, dict) else None
            if isinstance(endpoint_id, str) and endpoint_id in seen:
                self.error(_join(path, "id"), f"duplicate endpoint id {endpoint_id!r}")
            elif isinstance(endpoint_id, str):
                seen.add(endpoint_id)
            endpoint = self.endpoint(spec, path, policies)
            if endpoint is not None:
                self.item_paths["endpoints", len(out)] = path
                out.append(endpoint)
        return tuple(out)

    def endpoint(
        self, value: Any, path: str, policies: Mapping[str, retry.RetryPolicy]
    ) -> EndpointConfig | None:
        data = self.mapping(value, path, SCHEMA["endpoints[]"])
        before = len(self.problems)
        for key in ("id", "url"):
            if key not in data:
                self.error(_join(path, key), "required")
        kw = self.kwargs(
            data,
            path,
            id=_endpoint_id,
            url=_url,
            events=_patterns,
            policy=_nonempty_str,
            body=_nonempty_str,
            headers=_headers,
            rate_limit=parse_rate,
            max_in_flight=_int_at_least(1),
            ordering=_choice("none", "fifo"),
            filter=_nonempty_str,
            options=_mapping,
        )
        if "policy" in kw and kw["policy"] not in policies:
            known = ", ".join(sorted(policies))
            self.error(_join(path, "policy"), f"no policy named {kw['policy']!r} (known: {known})")
        if not self.with_plugins and kw.get("body", "standard") not in self.builtins.formats:
            known = ", ".join(sorted(self.builtins.formats))
            self.error(_join(path, "body"), f"no body format named {kw['body']!r} (known: {known})")
        if not self.with_plugins and "filter" in kw:
            self.error(
                _join(path, "filter"), f"no filter named {kw['filter']!r} (plugins add them)"
            )
        kw["signing"] = self.signing(data.get("signing"), _join(path, "signing"))
        env_failed = any(f.startswith((f"{path}.", f"{path}[")) for f in self._env_failed)
        if len(self.problems) > before or env_failed or "id" not in kw or "url" not in kw:
            return None
        return EndpointConfig(**kw)

    def signing(self, value: Any, path: str) -> SigningConfig:
        data = self.mapping(value, path, SCHEMA["endpoints[].signing"])
        kw = self.kwargs(
            data,
            path,
            scheme=_nonempty_str,
            secret=_nonempty_str,
            header=_header_name,
            prefix=_str,
            options=_mapping,
        )
        if "secret" in data and "secret_file" in data:
            self.error(_join(path, "secret_file"), "give either secret or secret_file, not both")
        elif "secret_file" in data:
            secret = self.read_secret_file(data["secret_file"], _join(path, "secret_file"))
            if secret is not None:
                kw["secret"] = secret
        if "private_key_file" in data:
            pem = self.read_secret_file(data["private_key_file"], _join(path, "private_key_file"))
            if pem is not None:
                kw["private_key"] = pem
        scheme = kw.get("scheme", "standard-webhooks")
        has_secret = "secret" in data or "secret_file" in data
        if scheme in ("standard-webhooks", "hmac-sha256") and not has_secret:
            self.error(path, f"{scheme} needs secret or secret_file")
        if scheme == "rsa-sha256" and "private_key_file" not in data:
            self.error(path, "rsa-sha256 needs private_key_file (a PEM private key)")
        if scheme not in self.builtins.signers and not self.with_plugins:
            known = ", ".join(sorted(self.builtins.signers))
            self.error(
                _join(path, "scheme"), f"no signing scheme named {scheme!r} (known: {known})"
            )
        if scheme in BUILTIN_SCHEMES and kw.get("options"):
            self.error(_join(path, "options"), f"{scheme} takes no options (plugin schemes do)")
        signing = SigningConfig(**kw)
        if scheme in self.builtins.signers and not self.failed_under(path):
            self.try_signer(signing, data, path)
        return signing

    def failed_under(self, path: str) -> bool:
        return any(p == path or p.startswith((path + ".", path + "[")) for p in self._failed)

    def try_signer(self, signing: SigningConfig, data: dict[str, Any], path: str) -> None:
        """Build a built-in signer now, so a bad key or header is reported with the rest."""
        factory = self.builtins.signers[signing.scheme]
        material = signing.private_key if signing.private_key is not None else signing.secret
        keys = (SigningKey(material=material),) if material else ()
        key_path = next((k for k in KEY_SOURCES if k in data), None)
        checks: list[tuple[str, str | None, str | None]] = [
            (_join(path, key_path) if key_path else path, None, None)
        ]
        if signing.header is not None or signing.prefix is not None:
            where = "header" if signing.header is not None else "prefix"
            checks.append((_join(path, where), signing.header, signing.prefix))
        for where, header, prefix in checks:
            config = SignerConfig(
                scheme=signing.scheme,
                keys=keys,
                header=header,
                prefix=prefix,
                options=signing.options,
            )
            try:
                factory(config)
            except (ValueError, TypeError, HookdError) as exc:
                self.error(where, str(exc))
                return

    def plugins(self, value: Any) -> tuple[PluginConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error("plugins", f"expected a list, got {_kind(value)}")
            return ()
        out: list[PluginConfig] = []
        for i, spec in enumerate(value):
            path = _join("plugins", i)
            data = self.mapping(spec, path, SCHEMA["plugins[]"])
            kw = self.kwargs(data, path, module=_nonempty_str, options=_mapping)
            if (file := self.convert(data, "path", path, _nonempty_str)) is not None:
                kw["path"] = self.base / file
            if ("path" in kw) == ("module" in kw):
                self.error(path, "give exactly one of path or module")
                continue
            self.item_paths["plugins", len(out)] = path
            out.append(PluginConfig(**kw))
        return tuple(out)


# --------------------------------------------------------------------------- value parsers


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _parse_listen(value: Any) -> ListenAddress:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"127.0.0.1:{value}"
    if not isinstance(value, str):
        raise ValueError(f"expected host:port, got {_kind(value)}")
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\s]+):(\d+)$", value)
    if not m:
        raise ValueError(f"expected host:port (or [v6]:port), got {value!r}")
    port = int(m.group(2))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return ListenAddress(host=m.group(1), port=port)


def _token_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError("expected a list of token strings")
    tokens = tuple(t.strip() for t in value)
    if any(len(t) < 16 for t in tokens):
        raise ValueError("every token needs at least 16 characters")
    return tokens


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    return value


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {_kind(value)}")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def _synchronous(value: Any) -> str:
    if value is False:  # YAML 1.1 reads a bare `off` as false
        return "off"
    return _choice(*SYNCHRONOUS)(value)


def _int_at_least(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"expected a whole number >= {low}, got {value!r}")
        return value

    return check


def _float_at_least(low: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise ValueError(f"expected a number >= {low}, got {value!r}")
        return float(value)

    return check


def _positive(fn: Callable[[Any], float]) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        result = fn(value)
        if result <= 0:
            raise ValueError(f"must be greater than zero, got {value!r}")
        return result

    return check


def _nonneg(fn: Callable[[Any], float]) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        result = fn(value)
        if result < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return result

    return check


def _delays(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of durations like [10s, 20s], got {_kind(value)}")
    return tuple(parse_duration(item) for item in value)


def _endpoint_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(
            f"an endpoint id is 1-64 letters, digits, '_', '-', '.', ':' (got {value!r})"
        )
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an http(s) URL, got {_kind(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"expected an http:// or https:// URL with a host, got {redact_url(value)!r}"
        )
    return value


def _patterns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list of event type patterns like ['task.*']")
    if not all(isinstance(p, str) and p for p in value):
        raise ValueError("every event type pattern is a non-empty string")
    return tuple(value)


_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "transfer-encoding", "connection"}


def _header_name(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER.match(value):
        raise ValueError(f"not a valid HTTP header name: {value!r}")
    return value


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of header names to values, got {_kind(value)}")
    out = {}
    for name, item in value.items():
        _header_name(name)
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name} is set by hookd and cannot be overridden")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"header {name}: expected a string value")
        text = str(item)
        if "\n" in text or "\r" in text:
            raise ValueError(f"header {name}: value must not contain line breaks")
        out[name] = text
    return out
