"""``policies`` in the YAML: named retry policies, each starting from a preset (or
``standard``) and overriding what it names. The policy itself is :mod:`hookd.delivery.policy`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hookd.config.paths import join
from hookd.config.values import (
    DAY,
    HOUR,
    ID_PATTERN,
    at_most,
    duration_up_to,
    float_at_least,
    int_at_least,
    int_between,
    kind_of,
    nonneg,
    parse_bool,
    parse_delays,
    positive,
)
from hookd.config.yamlread import YamlReader
from hookd.delivery import policy as retry

POLICY_KEYS = (
    "timeout",
    "retry_on",
    "delays",
    "backoff",
    "jitter",
    "honor_retry_after",
    "retry_after_max",
    "disable_after",
    "disable_on",
)
BACKOFF_KEYS = ("initial", "factor", "max", "attempts")


def _up_to(high: float, shown: str, sign: Any = positive) -> Any:
    return sign(duration_up_to(high, shown))


def read_policies(doc: YamlReader, value: Any) -> dict[str, retry.RetryPolicy]:
    out = dict(retry.PRESETS)
    if value is None:
        return out
    if not isinstance(value, dict):
        doc.error("policies", f"expected a mapping of policy names, got {kind_of(value)}")
        return out
    for name, spec in value.items():
        path = join("policies", name)
        if not ID_PATTERN.match(str(name)):
            doc.error(path, "a policy name is letters, digits, '_', '-', '.', ':'")
        base = retry.PRESETS.get(name, retry.PRESETS["standard"])
        out[name] = _policy(doc, spec, path, replace(base, name=name))
    return out


def _policy(doc: YamlReader, value: Any, path: str, base: retry.RetryPolicy) -> retry.RetryPolicy:
    data = doc.mapping(value, path, POLICY_KEYS)
    kw = doc.kwargs(
        data,
        path,
        timeout=_up_to(HOUR, "1h"),
        retry_on=retry.parse_retry_on,
        jitter=retry.parse_jitter,
        honor_retry_after=parse_bool,
        retry_after_max=_up_to(30 * DAY, "30d", nonneg),
        disable_after=int_at_least(0),
        disable_on=retry.parse_status_codes,
        delays=parse_delays,
    )
    if "delays" in data and "backoff" in data:
        doc.error(join(path, "backoff"), "give either delays or backoff, not both")
    elif "backoff" in data:
        delays = _backoff(doc, data["backoff"], join(path, "backoff"))
        if delays is not None:
            kw["delays"] = delays
    return replace(base, **kw)


def _backoff(doc: YamlReader, value: Any, path: str) -> tuple[float, ...] | None:
    data = doc.mapping(value, path, BACKOFF_KEYS)
    missing = [k for k in ("initial", "attempts") if k not in data]
    for key in missing:
        doc.error(join(path, key), "required")
    kw = doc.kwargs(
        data,
        path,
        initial=_up_to(30 * DAY, "30d"),
        factor=at_most(float_at_least(1.0), 100.0, "100"),
        max=_up_to(30 * DAY, "30d"),
        attempts=int_between(1, 1000),
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
