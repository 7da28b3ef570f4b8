"""An endpoint's settings as the admin API takes them (``POST``/``PATCH /v1/endpoints``).

The values are checked by the same parsers as the YAML (:mod:`hookd.config.values`), with what
JSON adds: a URL without spaces or control characters, header values in printable ASCII, event
patterns as a list, a rate as a number. Errors are 400 ``invalid_field`` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yarl

from hookd.api.http import invalid, only
from hookd.catalog import Catalog
from hookd.config import values
from hookd.delivery import policy as retry
from hookd.delivery.tls import TLSConfig, TLSProblem
from hookd.delivery.tls import check as check_tls
from hookd.filters import FilterError, compile_filter
from hookd.redact import REDACTED, redact_url
from hookd.registry import Registry
from hookd.signing import STANDARD_WEBHOOKS

_NULLABLE = ("rate_limit", "max_in_flight", "filter")
_SIGNING = ("scheme", "secret", "header", "prefix")


def parse_api_url(value: Any) -> str:
    url = values.parse_url(value)
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected a URL starting with http:// or https://")
    if len(url) > 2048 or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise ValueError("expected a URL of at most 2048 characters without spaces")
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    if not parsed.host:
        raise ValueError("expected an http:// or https:// URL with a host")
    return url


def parse_api_headers(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
        raise ValueError("header values are strings")
    headers = values.parse_headers(value)
    for name, text in headers.items():
        if any(not (" " <= c <= "~") and c != "\t" for c in text):
            raise ValueError(f"header {name}: value must be printable ASCII")
    return headers


def parse_api_patterns(value: Any) -> list[str]:
    if not isinstance(value, list):  # YAML also takes one string; JSON clients send a list
        raise ValueError("expected a non-empty list of event type patterns like ['task.*']")
    return list(values.parse_patterns(value))


def parse_api_rate(value: Any) -> float:
    """Requests per second: a number, or a rate like ``50/s``; the YAML's range either way."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return values.check_rate(float(value), value)
    return values.parse_rate(value)


def parse_api_filter(value: Any) -> str | dict[str, Any]:
    """A plugin filter's name, or a payload filter (SPEC §9): 400 with ``field`` naming where
    inside the filter it is wrong (``filter.data.total.$gtt``)."""
    if isinstance(value, str):
        return values.parse_nonempty_str(value)
    if not isinstance(value, dict):
        raise ValueError("a filter is a plugin filter's name or a payload filter object")
    try:
        compile_filter(value)
    except FilterError as exc:
        where = f"filter.{exc.path}" if exc.path else "filter"
        raise invalid(where, f"{where}: {exc.message}") from exc
    return value


def check_listed(events: Any, catalog: Catalog) -> None:
    """With ``event_types.strict``, each ``events`` pattern must match a listed type."""
    for pattern in events if catalog.strict else ():
        if not catalog.covers(pattern):
            raise invalid(
                "events", f"pattern {pattern!r} matches no type in event_types (strict: true)"
            )


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "url": parse_api_url,
    "events": parse_api_patterns,
    "policy": values.parse_nonempty_str,
    "body": values.parse_nonempty_str,
    "headers": parse_api_headers,
    "rate_limit": parse_api_rate,
    "max_in_flight": values.int_at_least(1),
    "ordering": values.choice("none", "fifo"),
    "filter": lambda value: parse_api_filter(value),
    "options": values.parse_mapping,
}
SETTINGS = ("signing", "tls", *_PARSERS)  # every setting a body may hold
_TLS = ("ca_pem", "client_cert_pem", "client_key_pem")


def merge_settings(
    body: Mapping[str, Any],
    base: Mapping[str, Any],
    *,
    policies: Mapping[str, retry.RetryPolicy],
    registry: Registry,
) -> tuple[dict[str, Any], str | None]:
    """``base`` with the settings in ``body`` applied and checked; also the new secret, if any."""
    spec = _apply(body, base)
    spec["signing"], secret = _signing(body, base)
    if "url" not in spec:
        raise invalid("url", "url is required")
    spec.pop("tls", None)
    if tls := _tls(body, base):
        if not str(spec["url"]).startswith("https://"):
            raise invalid("tls", "tls applies to https:// URLs; this endpoint's url is not one")
        spec["tls"] = tls
    spec.setdefault("events", ["*"])
    _check_names(spec, policies, registry)
    return spec, secret


def patch_settings(
    body: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    policies: Mapping[str, retry.RetryPolicy],
    registry: Registry,
) -> tuple[dict[str, Any], str | None]:
    """PATCH: :func:`merge_settings` onto the stored settings. The URL as answers show it (its
    password masked) sent back keeps the stored URL, password included; so does a header value
    sent back masked.
    """
    url = str(current.get("url", ""))
    if body.get("url") == redact_url(url) != url:  # our masked form sent back
        body = {**body, "url": url}
    if isinstance(body.get("headers"), dict):
        body = {**body, "headers": _unmasked(body["headers"], current.get("headers") or {})}
    return merge_settings(body, current, policies=policies, registry=registry)


def _unmasked(given: Mapping[str, Any], stored: Mapping[str, str]) -> dict[str, Any]:
    """Headers of a PATCH with our masked value sent back for a header already stored: that
    header keeps its stored value (answers never show header values)."""
    by_name = {name.lower(): value for name, value in stored.items()}
    return {
        name: by_name.get(name.lower(), value) if value == REDACTED else value
        for name, value in given.items()
    }


def _apply(body: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with every setting of ``body`` but signing: parsed, or removed when null."""
    spec = dict(base)
    for key, value in body.items():
        if key in ("signing", "tls"):
            continue
        if value is None:
            if key not in _NULLABLE:
                raise invalid(key, f"{key} cannot be null")
            spec.pop(key, None)
            continue
        try:
            spec[key] = _PARSERS[key](value)
        except ValueError as exc:
            raise invalid(key, f"{key}: {exc}") from exc
    return spec


def _signing(body: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The signing settings of ``base`` changed by ``body``'s, and the secret it gives."""
    signing = dict(base.get("signing") or {"scheme": STANDARD_WEBHOOKS})
    if "signing" not in body:
        return signing, None
    given = body["signing"]
    if not isinstance(given, dict):
        raise invalid("signing", "signing must be an object")
    only(given, _SIGNING, "signing.")
    for key in ("scheme", "header", "prefix"):
        if key in given:
            signing[key] = _signing_value(key, given[key])
            if signing[key] is None:
                del signing[key]
    if "secret" not in given:
        return signing, None
    if not isinstance(given["secret"], str) or not given["secret"].strip():
        raise invalid("signing.secret", "a non-empty string")
    try:
        values.check_signing_secret(str(signing.get("scheme")), given["secret"])
    except ValueError as exc:
        raise invalid("signing.secret", f"signing.secret: {exc}") from exc
    return signing, given["secret"].strip()


def _tls(body: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, str] | None:
    """The TLS material of ``base`` changed by ``body``'s (a part given replaces, a null removes,
    ``tls: null`` removes all), checked: each part parses, the key is the certificate's."""
    tls = dict(base.get("tls") or {})
    if "tls" not in body:
        return tls or None
    given = body["tls"]
    if given is None:
        return None
    if not isinstance(given, dict):
        raise invalid("tls", "tls is an object of ca_pem, client_cert_pem, client_key_pem")
    only(given, _TLS, "tls.")
    for key, value in given.items():
        if value is None:
            tls.pop(key, None)
        elif isinstance(value, str) and value.strip():
            tls[key] = value
        else:
            raise invalid(f"tls.{key}", f"tls.{key} is PEM text")
    if not tls:
        return None
    try:
        check_tls(TLSConfig(**tls))
    except TLSProblem as exc:
        raise invalid(f"tls.{exc.part}_pem", f"tls.{exc.part}_pem: {exc}") from exc
    return tls


def _signing_value(key: str, value: Any) -> str | None:
    parse = {
        "scheme": values.parse_nonempty_str,
        "header": values.parse_header_name,
        "prefix": values.parse_str,
    }[key]
    if value is None and key != "scheme":
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise invalid(f"signing.{key}", f"signing.{key}: {exc}") from exc


def _check_names(
    spec: Mapping[str, Any], policies: Mapping[str, retry.RetryPolicy], registry: Registry
) -> None:
    for field, name, known in (
        ("policy", spec.get("policy", "standard"), policies),
        ("body", spec.get("body", "standard"), registry.formats),
        ("signing.scheme", spec["signing"].get("scheme"), registry.signers),
        (
            "filter",
            spec.get("filter") if isinstance(spec.get("filter"), str) else None,
            registry.filters,
        ),
    ):
        if name is not None and name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise invalid(field, f"no {field} named {name!r} (known: {names})")
