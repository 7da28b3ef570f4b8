"""What the signing schemes share: parsed keys with their grace expiry, base64, and the
``<header>-Previous`` convention of the single-signature schemes.

A key is live when its ``expires_at`` is ``None`` or later than ``now``. Parsed key material is
held in objects whose repr never shows it, and no error message quotes it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hookd.errors import HookdError
from hookd.registry import SignerConfig, SigningKey

PREVIOUS_SUFFIX = "-Previous"

_K = TypeVar("_K")
_T = TypeVar("_T")


class SigningError(HookdError):
    """A message could not be signed (for instance: no key is live any more)."""


@dataclass(frozen=True, slots=True)
class Key(Generic[_K]):
    """Parsed key material with its grace expiry; the material never shows in a repr."""

    material: _K = field(repr=False)
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


def live_keys(keys: Sequence[Key[_T]], now: float) -> list[Key[_T]]:
    live = [key for key in keys if key.live(now)]
    if not live:
        raise SigningError("no live signing key: every key's grace period has ended")
    return live


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict base64 decode that tolerates missing padding (as the verification libraries do)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_all(keys: Sequence[SigningKey], parse: Callable[[str], _T]) -> list[Key[_T]]:
    if not keys:
        raise ValueError("no signing key configured")
    parsed = []
    for index, key in enumerate(keys):
        try:
            parsed.append(Key(parse(key.material), key.expires_at))
        except ValueError as exc:
            if len(keys) == 1:
                raise
            raise ValueError(f"key {index + 1} of {len(keys)}: {exc}") from exc
    return parsed


def with_previous(header: str, values: list[str]) -> dict[str, str]:
    headers = {header: values[0]}
    if len(values) > 1:
        headers[header + PREVIOUS_SUFFIX] = " ".join(values[1:])
    return headers


def check_header_and_prefix(config: SignerConfig) -> None:
    if config.header is not None and (not config.header or any(c.isspace() for c in config.header)):
        raise ValueError("header must be a non-empty header name without spaces")
    if config.prefix is not None and any(c.isspace() for c in config.prefix):
        raise ValueError("prefix must not contain whitespace")
