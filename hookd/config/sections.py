"""The sections of hookd.yaml (SPEC §5), read into :mod:`hookd.config.model` dataclasses.

Every problem is collected (not just the first) as ``FILE:LINE: key.path: message``, through
the :class:`~hookd.config.yamlread.YamlReader`. Unknown keys are errors; cross-field rules (a
policy that exists, a signing scheme with its key) are checked here, at load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hookd.builtin import builtin_registry
from hookd.catalog import build_catalog
from hookd.config import files, tls_section
from hookd.config.model import (
    AuthConfig,
    Config,
    DeliveryConfig,
    EndpointConfig,
    LimitsConfig,
    ListenAddress,
    LogConfig,
    PluginConfig,
    SigningConfig,
    StorageConfig,
)
from hookd.config.paths import join
from hookd.config.policy_section import BACKOFF_KEYS, POLICY_KEYS, read_policies
from hookd.config.routing_section import (
    check_patterns_listed,
    parse_filter,
    read_event_types,
)
from hookd.config.tls_section import read_tls
from hookd.config.values import (
    HOUR,
    check_signing_secret,
    choice,
    duration_up_to,
    int_at_least,
    kind_of,
    nonneg,
    parse_bool,
    parse_duration,
    parse_endpoint_id,
    parse_endpoint_tenant,
    parse_header_name,
    parse_headers,
    parse_listen,
    parse_mapping,
    parse_nonempty_str,
    parse_patterns,
    parse_proxy_url,
    parse_rate,
    parse_size,
    parse_str,
    parse_synchronous,
    parse_tokens,
    parse_url,
    positive,
)
from hookd.config.yamlread import YamlReader
from hookd.delivery import policy as retry
from hookd.errors import HookdError
from hookd.registry import SignerConfig, SigningKey

# The storage keys an unknown key's message suggests, by backend (all are accepted).
SQLITE_KEYS = ("path", "synchronous", "retention", "secret_key", "secret_key_file")
POSTGRES_KEYS = ("backend", "dsn", "retention", "secret_key", "secret_key_file", "lease_slack")
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
        "event_types",
    ),
    "auth": ("ingest_tokens", "admin_tokens"),
    "storage": (
        "backend",
        "dsn",
        "path",
        "synchronous",
        "retention",
        "secret_key",
        "secret_key_file",
        "lease_slack",
    ),
    "limits": (
        "max_body",
        "max_pending",
        "max_endpoints_per_tenant",
        "header_timeout",
        "body_timeout",
        "idle_timeout",
    ),
    "delivery": ("concurrency", "allow_private_networks", "max_response_body", "proxy"),
    "policies.*": POLICY_KEYS,
    "policies.*.backoff": BACKOFF_KEYS,
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
        "tenant",
        "tls",
    ),
    "endpoints[].tls": tls_section.KEYS,
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


def _up_to(
    high: float,
    shown: str,
    sign: Callable[[Callable[[Any], float]], Callable[[Any], float]] = positive,
) -> Callable[[Any], float]:
    """A duration that is positive (or, with ``sign=nonneg``, not negative) and at most ``high``."""
    return sign(duration_up_to(high, shown))


def build(doc: YamlReader, raw: Any, *, base: Path) -> Config:
    """The Config of what ``raw`` (the YAML as plain values) holds; problems go to ``doc``.

    Relative paths (the database, secret files, plugins) are relative to ``base``.
    """
    return _Sections(doc, base).config(raw)


class _Sections:
    """Reads each section of the schema, recording problems in the YamlReader."""

    def __init__(self, doc: YamlReader, base: Path) -> None:
        self.doc = doc
        self.base = base
        self.item_paths: dict[tuple[str, int], str] = {}
        self.with_plugins = False  # plugins may add schemes, formats and filters: names wait
        self.builtins = builtin_registry()
        self.catalog = build_catalog([])

    def config(self, raw: Any) -> Config:
        top = self.doc.mapping(raw, "", SCHEMA[""])
        kw: dict[str, Any] = {"source": self.doc.source, "lines": self.doc.lines}
        kw["item_paths"] = self.item_paths
        listen = self.listen(top.get("listen"))
        if listen:
            kw["listen"] = listen
        kw.update(self.doc.kwargs(top, "", shutdown_timeout=_up_to(HOUR, "1h", nonneg)))
        auth = self.auth(top.get("auth"))
        kw["auth"] = auth
        kw["storage"] = self.storage(top.get("storage"))
        kw["limits"] = LimitsConfig(
            **self.doc.kwargs(
                self.doc.mapping(top.get("limits"), "limits", SCHEMA["limits"]),
                "limits",
                max_body=positive(parse_size),
                max_pending=int_at_least(1),
                max_endpoints_per_tenant=int_at_least(1),
                header_timeout=_up_to(HOUR, "1h"),
                body_timeout=_up_to(HOUR, "1h"),
                idle_timeout=_up_to(HOUR, "1h"),
            )
        )
        delivery = self.doc.mapping(top.get("delivery"), "delivery", SCHEMA["delivery"])
        kw["delivery"] = DeliveryConfig(
            **self.doc.kwargs(
                delivery,
                "delivery",
                concurrency=int_at_least(1),
                allow_private_networks=parse_bool,
                max_response_body=parse_size,
                proxy=parse_proxy_url,
            )
        )
        policies = read_policies(self.doc, top.get("policies"))
        kw["policies"] = policies
        kw["plugins"] = self.plugins(top.get("plugins"))
        self.with_plugins = bool(top.get("plugins"))
        self.catalog = read_event_types(self.doc, top.get("event_types"), base=self.base)
        kw["event_types"] = self.catalog
        kw["endpoints"] = self.endpoints(top.get("endpoints"), policies)
        log = self.doc.mapping(top.get("log"), "log", SCHEMA["log"])
        kw["log"] = LogConfig(
            **self.doc.kwargs(
                log,
                "log",
                level=choice("debug", "info", "warning", "error"),
                format=choice("auto", "json", "console"),
            )
        )
        for address in listen or ():
            if not address.is_loopback and auth.open:
                self.doc.error(
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
            path = join("listen", i) if isinstance(value, list) else "listen"
            if (address := self.doc.apply(parse_listen, item, path)) is not None:
                out.append(address)
        if isinstance(value, list) and not value:
            self.doc.error("listen", "needs at least one address")
        return tuple(out)

    def auth(self, value: Any) -> AuthConfig:
        data = self.doc.mapping(value, "auth", SCHEMA["auth"])
        kw = {}
        for key in ("ingest_tokens", "admin_tokens"):
            tokens = self.doc.convert(data, key, "auth", parse_tokens)
            if tokens is not None:
                kw[key] = tokens
        return AuthConfig(**kw)

    def storage(self, value: Any) -> StorageConfig:
        postgres = isinstance(value, dict) and value.get("backend") == "postgres"
        data = self.doc.mapping(
            value, "storage", SCHEMA["storage"], POSTGRES_KEYS if postgres else SQLITE_KEYS
        )
        kw = self.doc.kwargs(
            data,
            "storage",
            backend=choice("sqlite", "postgres"),
            dsn=parse_nonempty_str,
            synchronous=parse_synchronous,
            retention=positive(parse_duration),
            secret_key=parse_nonempty_str,
            lease_slack=_up_to(HOUR, "1h"),
        )
        # Relative paths are relative to the YAML file, the default one included.
        path = self.doc.convert(data, "path", "storage", parse_nonempty_str) or "hookd.db"
        kw["path"] = self.base / path if path != ":memory:" else Path(path)
        if kw.get("backend") == "postgres" and "dsn" not in kw and "dsn" not in data:
            self.doc.error("storage.backend", "postgres needs storage.dsn (a libpq string or URL)")
        elif kw.get("backend", "sqlite") == "sqlite" and "dsn" in data:
            self.doc.error("storage.dsn", "only used with backend: postgres")
        if kw.get("lease_slack", 1.0) < 1.0:
            self.doc.error(
                "storage.lease_slack", "must be at least 1s (a lease must outlast a record)"
            )
        if kw.get("backend", "sqlite") == "sqlite" and "lease_slack" in data:
            self.doc.error(
                "storage.lease_slack",
                "only used with backend: postgres (SQLite's one process keeps no leases)",
            )
        if "secret_key" in data and "secret_key_file" in data:
            self.doc.error("storage.secret_key_file", "give either secret_key or secret_key_file")
        elif "secret_key_file" in data:
            secret = self.read_secret_file(data["secret_key_file"], "storage.secret_key_file")
            if secret is not None:
                kw["secret_key"] = secret
        return StorageConfig(**kw)

    def read_secret_file(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.doc.error(path, "expected a file path")
            return None
        try:
            return files.read_text(self.base / value, files.MAX_KEY_BYTES).strip()
        except (OSError, ValueError) as exc:  # FileTooLarge and UnicodeDecodeError included
            self.doc.error(path, f"cannot read {value}: {files.reason(exc)}")
            return None

    def endpoints(
        self, value: Any, policies: Mapping[str, retry.RetryPolicy]
    ) -> tuple[EndpointConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.doc.error("endpoints", f"expected a list, got {kind_of(value)}")
            return ()
        out: list[EndpointConfig] = []
        seen: set[str] = set()
        for i, spec in enumerate(value):
            path = join("endpoints", i)
            endpoint_id = spec.get("id") if isinstance(spec, dict) else None
            if isinstance(endpoint_id, str) and endpoint_id in seen:
                self.doc.error(join(path, "id"), f"duplicate endpoint id {endpoint_id!r}")
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
        data = self.doc.mapping(value, path, SCHEMA["endpoints[]"])
        before = len(self.doc.problems)
        for key in ("id", "url"):
            if key not in data:
                self.doc.error(join(path, key), "required")
        kw = self.doc.kwargs(
            data,
            path,
            id=parse_endpoint_id,
            url=parse_url,
            events=parse_patterns,
            policy=parse_nonempty_str,
            body=parse_nonempty_str,
            headers=parse_headers,
            rate_limit=parse_rate,
            max_in_flight=int_at_least(1),
            ordering=choice("none", "fifo"),
            options=parse_mapping,
            tenant=parse_endpoint_tenant,
        )
        flt = parse_filter(self.doc, data.get("filter"), join(path, "filter"))
        if flt is not None:
            kw["filter"] = flt
        if "events" in kw:
            check_patterns_listed(self.doc, self.catalog, kw["events"], join(path, "events"))
        if "policy" in kw and kw["policy"] not in policies:
            known = ", ".join(sorted(policies))
            self.doc.error(
                join(path, "policy"), f"no policy named {kw['policy']!r} (known: {known})"
            )
        if not self.with_plugins and kw.get("body", "standard") not in self.builtins.formats:
            known = ", ".join(sorted(self.builtins.formats))
            self.doc.error(
                join(path, "body"), f"no body format named {kw['body']!r} (known: {known})"
            )
        if not self.with_plugins and isinstance(kw.get("filter"), str):
            self.doc.error(
                join(path, "filter"), f"no filter named {kw['filter']!r} (plugins add them)"
            )
        kw["signing"] = self.signing(data.get("signing"), join(path, "signing"))
        tls_path = join(path, "tls")
        kw["tls"] = read_tls(self.doc, data.get("tls"), tls_path, base=self.base, url=kw.get("url"))
        env_failed = self.doc.env_failed_below(path)
        if len(self.doc.problems) > before or env_failed or "id" not in kw or "url" not in kw:
            return None
        return EndpointConfig(**kw)

    def signing(self, value: Any, path: str) -> SigningConfig:
        data = self.doc.mapping(value, path, SCHEMA["endpoints[].signing"])
        kw = self.doc.kwargs(
            data,
            path,
            scheme=parse_nonempty_str,
            secret=parse_nonempty_str,
            header=parse_header_name,
            prefix=parse_str,
            options=parse_mapping,
        )
        if "secret" in data and "secret_file" in data:
            self.doc.error(join(path, "secret_file"), "give either secret or secret_file, not both")
        elif "secret_file" in data:
            secret = self.read_secret_file(data["secret_file"], join(path, "secret_file"))
            if secret is not None:
                kw["secret"] = secret
        if "secret" in kw:  # too short a standard-webhooks secret: where it was given
            where = join(path, "secret_file" if "secret_file" in data else "secret")
            scheme = str(kw.get("scheme", "standard-webhooks"))
            self.doc.apply(lambda v: check_signing_secret(scheme, v), kw["secret"], where)
        if "private_key_file" in data:
            pem = self.read_secret_file(data["private_key_file"], join(path, "private_key_file"))
            if pem is not None:
                kw["private_key"] = pem
        scheme = kw.get("scheme", "standard-webhooks")
        has_secret = "secret" in data or "secret_file" in data
        if scheme in ("standard-webhooks", "hmac-sha256") and not has_secret:
            self.doc.error(path, f"{scheme} needs secret or secret_file")
        if scheme == "rsa-sha256" and "private_key_file" not in data:
            self.doc.error(path, "rsa-sha256 needs private_key_file (a PEM private key)")
        if scheme not in self.builtins.signers and not self.with_plugins:
            known = ", ".join(sorted(self.builtins.signers))
            self.doc.error(
                join(path, "scheme"), f"no signing scheme named {scheme!r} (known: {known})"
            )
        if scheme in BUILTIN_SCHEMES and kw.get("options"):
            self.doc.error(join(path, "options"), f"{scheme} takes no options (plugin schemes do)")
        signing = SigningConfig(**kw)
        if scheme in self.builtins.signers and not self.doc.failed_under(path):
            self.try_signer(signing, data, path)
        return signing

    def try_signer(self, signing: SigningConfig, data: dict[str, Any], path: str) -> None:
        """Build a built-in signer now, so a bad key or header is reported with the rest."""
        factory = self.builtins.signers[signing.scheme]
        material = signing.private_key if signing.private_key is not None else signing.secret
        keys = (SigningKey(material=material),) if material else ()
        key_path = next((k for k in KEY_SOURCES if k in data), None)
        checks: list[tuple[str, str | None, str | None]] = [
            (join(path, key_path) if key_path else path, None, None)
        ]
        if signing.header is not None or signing.prefix is not None:
            where = "header" if signing.header is not None else "prefix"
            checks.append((join(path, where), signing.header, signing.prefix))
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
                self.doc.error(where, str(exc))
                return

    def plugins(self, value: Any) -> tuple[PluginConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.doc.error("plugins", f"expected a list, got {kind_of(value)}")
            return ()
        out: list[PluginConfig] = []
        for i, spec in enumerate(value):
            path = join("plugins", i)
            data = self.doc.mapping(spec, path, SCHEMA["plugins[]"])
            kw = self.doc.kwargs(data, path, module=parse_nonempty_str, options=parse_mapping)
            if (file := self.doc.convert(data, "path", path, parse_nonempty_str)) is not None:
                kw["path"] = self.base / file
            if ("path" in kw) == ("module" in kw):
                self.doc.error(path, "give exactly one of path or module")
                continue
            self.item_paths["plugins", len(out)] = path
            out.append(PluginConfig(**kw))
        return tuple(out)
