"""Retry policies: frozen data plus pure functions answering "attempt n ended so; retry when?".

Nothing here does I/O or reads a clock: the caller passes ``now`` and a seeded ``random.Random``,
so every decision can be tested with plain parametrized cases (SPEC §5 and §7 "Retry policy").
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_tz
from types import MappingProxyType
from typing import Literal, TypeAlias, get_args

import msgspec

from hookd.units import parse_duration

__all__ = [
    "PRESETS",
    "RETRY_CLASSES",
    "Jitter",
    "JitterKind",
    "Outcome",
    "RetryClass",
    "RetryPolicy",
    "backoff_delays",
    "disables",
    "is_retryable",
    "next_delay",
    "parse_jitter",
    "parse_retry_after",
    "parse_retry_on",
    "parse_status_codes",
]

RetryClass: TypeAlias = str | int
"""``"non-2xx"``, ``"4xx"``, ``"5xx"``, ``"timeout"``, ``"network"`` or an exact HTTP code."""

RETRY_CLASSES: frozenset[str] = frozenset({"non-2xx", "4xx", "5xx", "timeout", "network"})

JitterKind: TypeAlias = Literal["none", "full", "equal", "percent", "range"]
_JITTER_KINDS: frozenset[str] = frozenset(get_args(JitterKind))

MAX_JITTER = 86400.0  # seconds a range jitter may add
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_DELTA_SECONDS = re.compile(r"^[0-9]+$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Jitter:
    """How a policy delay is randomised; see :func:`parse_jitter` for the YAML spellings."""

    kind: JitterKind = "none"
    fraction: float = 0.0  # for percent: 0.1 means 10%
    low: float = 0.0  # for range, seconds
    high: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _JITTER_KINDS:
            raise ValueError(
                f"jitter kind must be one of {sorted(_JITTER_KINDS)}, got {self.kind!r}"
            )
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(
                f"jitter percentage must be between 0% and 100%, got {self.fraction:.0%}"
            )
        if not 0.0 <= self.low <= self.high or not math.isfinite(self.high):
            raise ValueError(f"jitter range must be 0 <= low <= high, got {self.low}..{self.high}")

    def apply(self, delay: float, rng: random.Random) -> float:
        """The jittered wait for a policy ``delay`` (seconds); never negative."""
        d = max(0.0, delay)
        match self.kind:
            case "none":
                out = d
            case "full":
                out = rng.uniform(0.0, d)
            case "equal":
                out = d / 2 + rng.uniform(0.0, d / 2)
            case "percent":
                out = rng.uniform(d * (1 - self.fraction), d * (1 + self.fraction))
            case "range":
                out = d + rng.uniform(self.low, self.high)
        return max(0.0, out)


_NAMED_JITTERS: Mapping[str, Jitter] = MappingProxyType(
    {"none": Jitter(), "full": Jitter(kind="full"), "equal": Jitter(kind="equal")}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """A named retry policy, as configured under ``policies:`` or taken from :data:`PRESETS`."""

    name: str
    timeout: float = 15.0  # seconds, bounds a whole attempt
    retry_on: frozenset[RetryClass] = frozenset({"non-2xx", "timeout", "network"})
    delays: tuple[float, ...] = ()  # waits between attempts; attempts in all = 1 + len(delays)
    jitter: Jitter = Jitter()
    honor_retry_after: bool = True
    retry_after_max: float = 3600.0
    disable_after: int = 0  # consecutive failed deliveries; 0 = never
    disable_on: frozenset[int] = frozenset({410})  # answers that disable the endpoint at once

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a positive duration, got {self.timeout!r}")
        for delay in self.delays:
            if not (delay >= 0 and math.isfinite(delay)):
                raise ValueError(f"delays must be durations >= 0, got {delay!r}")
        if not self.retry_after_max >= 0:
            raise ValueError(f"retry_after_max must be >= 0, got {self.retry_after_max!r}")
        if self.disable_after < 0:
            raise ValueError(f"disable_after must be >= 0, got {self.disable_after!r}")
        for code in self.disable_on:
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                raise ValueError(f"disable_on: {code!r} is not an HTTP status code (100-599)")
        for item in self.retry_on:
            if not _is_retry_class(item):
                raise ValueError(f"retry_on: {item!r} is not a retry class nor an HTTP status code")

    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first one included."""
        return 1 + len(self.delays)


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How one attempt ended. ``error`` wins over ``status_code`` when both are set.

    (A msgspec Struct, like Response: one of each per attempt, built in C in a fifth of a
    frozen dataclass's time.)"""

    status_code: int | None = None  # HTTP status if a response came back
    # timeout: no full response within policy.timeout; network: DNS/connect/reset/etc;
    # refused: hookd itself refused to send (SSRF guard, bad URL, signer error): never retried.
    error: Literal["timeout", "network", "refused"] | None = None
    retry_after: float | None = None  # seconds parsed from a Retry-After header, if any

    def __post_init__(self) -> None:
        if self.status_code is None and self.error is None:
            raise ValueError("an Outcome needs a status_code or an error")

    @property
    def succeeded(self) -> bool:
        """A 2xx response arrived in full."""
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def _is_retry_class(item: object) -> bool:
    if isinstance(item, str):
        return item in RETRY_CLASSES
    return isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599


def _range_end(text: str) -> float:
    return 0.0 if text.strip() == "0" else parse_duration(text)  # "0..5m" reads naturally


def parse_jitter(value: object) -> Jitter:
    """A :class:`Jitter` from ``none``, ``full``, ``equal``, ``10%`` or ``0s..5m``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NAMED_JITTERS:
            return _NAMED_JITTERS[text]
        if m := _PERCENT.match(text):
            percent = float(m.group(1))
            if percent > 100:
                raise ValueError(f"jitter percentage must be at most 100%, got {value!r}")
            return Jitter(kind="percent", fraction=percent / 100)
        if ".." in text:
            low_text, _, high_text = text.partition("..")
            try:
                low, high = _range_end(low_text), _range_end(high_text)
            except ValueError as exc:
                raise ValueError(
                    f"jitter range must be two durations like 0s..5m, got {value!r}"
                ) from exc
            if low > high:
                raise ValueError(f"jitter range must go from low to high, got {value!r}")
            if high > MAX_JITTER:
                raise ValueError(f"a jitter range reaches at most 1d, got {value!r}")
            return Jitter(kind="range", low=low, high=high)
    raise ValueError(
        "jitter must be none, full, equal, a percentage like 10% or a range like 0s..5m, "
        f"got {value!r}"
    )


def parse_status_codes(items: object) -> frozenset[int]:
    """A list of HTTP status codes (``disable_on: [410, 404]``; ``[]`` for none)."""
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list of HTTP status codes like [410], got {items!r}")
    out = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
            raise ValueError(f"{item!r} is not an HTTP status code (100-599)")
        out.add(item)
    return frozenset(out)


def parse_retry_on(items: object) -> frozenset[RetryClass]:
    """The ``retry_on`` list of classes (non-2xx, 4xx, 5xx, timeout, network) and status codes."""
    if not isinstance(items, list | tuple):
        raise ValueError(
            f"retry_on must be a list like [non-2xx, timeout, network] or [429], got {items!r}"
        )
    out: set[RetryClass] = set()
    for item in items:
        if isinstance(item, str) and item.strip().lower() in RETRY_CLASSES:
            out.add(item.strip().lower())
            continue
        code: int | None = None
        if isinstance(item, int) and not isinstance(item, bool):
            code = item
        elif isinstance(item, str) and item.strip().isascii() and item.strip().isdigit():
            code = int(item.strip())
        if code is None or not 100 <= code <= 599:
            raise ValueError(
                f"retry_on: {item!r} is neither an HTTP status code (100-599) nor one of "
                f"{', '.join(sorted(RETRY_CLASSES))}"
            )
        out.add(code)
    return frozenset(out)


def backoff_delays(
    *, initial: float, factor: float, max: float, attempts: int
) -> tuple[float, ...]:
    """Delays for ``attempts`` attempts in all: initial, initial*factor, ..., each capped at max."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"backoff attempts must be an integer >= 1, got {attempts!r}")
    if not (initial >= 0 and math.isfinite(initial)):
        raise ValueError(f"backoff initial must be a duration >= 0, got {initial!r}")
    if not (factor >= 1 and math.isfinite(factor)):
        raise ValueError(f"backoff factor must be >= 1, got {factor!r}")
    if not (max >= initial and math.isfinite(max)):
        raise ValueError(f"backoff max must be a duration >= initial ({initial}), got {max!r}")
    out: list[float] = []
    delay = initial
    for _ in range(attempts - 1):
        out.append(min(delay, max))
        delay = min(delay * factor, max)  # capping here keeps long schedules from overflowing
    return tuple(out)


def parse_retry_after(header: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date relative to ``now``.

    ``None`` when the header is absent or unparseable; a date in the past gives 0.0.
    """
    if header is None:
        return None
    text = header.strip()
    if _DELTA_SECONDS.match(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        parts = parsedate_tz(text)  # IMF-fixdate, RFC 850 and asctime, as RFC 9110 §5.6.7 asks
        if parts is None:
            return None
        when = datetime(*parts[:6], tzinfo=UTC).timestamp() - (parts[9] or 0)
    except (ValueError, OverflowError, IndexError):  # out-of-range fields; old parser quirks
        return None
    return max(0.0, when - now)


def disables(policy: RetryPolicy, outcome: Outcome) -> bool:
    """Whether this answer disables the endpoint at once (``disable_on``, default ``[410]``: the
    receiver said the endpoint is gone, as the Standard Webhooks guidance asks senders to heed)."""
    return outcome.error is None and outcome.status_code in policy.disable_on


def disable_reason(policy: RetryPolicy, outcome: Outcome) -> str | None:
    """The endpoint's ``disabled_reason`` when this answer disables it (:func:`disables`)."""
    if not disables(policy, outcome):
        return None
    return f"HTTP {outcome.status_code} from the endpoint (policy {policy.name}: disable_on)"


def is_retryable(policy: RetryPolicy, outcome: Outcome) -> bool:
    """Whether ``policy.retry_on`` covers this failed outcome (never a success, ``refused``, nor
    an answer in ``disable_on``)."""
    if outcome.succeeded or outcome.error == "refused" or disables(policy, outcome):
        return False
    if outcome.error is not None:
        return outcome.error in policy.retry_on
    code = outcome.status_code
    if code is None:  # unreachable: Outcome insists on a status or an error
        return False
    retry_on = policy.retry_on
    return (
        code in retry_on
        or "non-2xx" in retry_on
        or ("4xx" in retry_on and 400 <= code <= 499)
        or ("5xx" in retry_on and 500 <= code <= 599)
    )


def next_delay(
    policy: RetryPolicy, attempt: int, outcome: Outcome, rng: random.Random
) -> float | None:
    """Seconds to wait before the next attempt, after attempt number ``attempt`` (1-based) ended.

    ``None`` means no retry: success, an outcome ``retry_on`` does not cover, or no attempts left.
    """
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if attempt >= policy.max_attempts or not is_retryable(policy, outcome):
        return None
    wait = policy.jitter.apply(policy.delays[attempt - 1], rng)
    if policy.honor_retry_after and outcome.retry_after is not None:
        wait = max(wait, min(max(0.0, outcome.retry_after), policy.retry_after_max))
    return wait


STANDARD = RetryPolicy(
    name="standard",
    timeout=15.0,
    retry_on=frozenset({"non-2xx", "timeout", "network"}),
    delays=(5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
    jitter=Jitter(kind="percent", fraction=0.1),
    honor_retry_after=True,
    disable_after=0,
)
"""The Standard Webhooks / Svix recommended schedule: at once, then after 5s, 5m, 30m, 2h, 5h,
10h and 10h (8 attempts in all), each wait within 10%."""

TASKVIEW = RetryPolicy(
    name="taskview",
    timeout=10.0,
    retry_on=frozenset({"non-2xx", "timeout", "network"}),
    delays=(10.0, 20.0),
    jitter=Jitter(kind="percent", fraction=0.1),
    honor_retry_after=True,
    disable_after=10,
)
"""The "TaskView" provider (SPEC §1): any non-2xx or 10s silence, retried after ~10s and ~20s;
the endpoint is disabled after 10 consecutive failed deliveries."""

TASKEE = RetryPolicy(
    name="taskee",
    timeout=30.0,
    retry_on=frozenset({429}),
    delays=(600.0,) * 6,
    jitter=Jitter(kind="range", low=5.0, high=300.0),
    honor_retry_after=True,
    disable_after=0,
)
"""The "Taskee Portal" provider (SPEC §1): only HTTP 429 is retried, up to 6 times 10 minutes
apart, each wait plus 5s..5m of random jitter."""

PRESETS: Mapping[str, RetryPolicy] = MappingProxyType(
    {p.name: p for p in (STANDARD, TASKVIEW, TASKEE)}
)
"""The built-in policies by name."""
