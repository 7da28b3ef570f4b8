"""``hmac-sha256`` (the "TaskView" row): ``<header>: <prefix><hex HMAC-SHA256(body)>``.

The header defaults to ``X-Webhook-Signature`` and the prefix to ``sha256=``. The key is the
UTF-8 bytes of the whole secret text, even when it looks like ``whsec_…`` (nothing is decoded),
and is used byte for byte. During a rotation grace, older live keys sign ``<header>-Previous``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from hookd.registry import Message, SignerConfig
from hookd.signing.common import Key, check_header_and_prefix, live_keys, parse_all, with_previous

HMAC_SHA256 = "hmac-sha256"
DEFAULT_HMAC_HEADER = "X-Webhook-Signature"
DEFAULT_HMAC_PREFIX = "sha256="


def parse_hmac(material: str) -> bytes:
    if not material:
        raise ValueError("the hmac-sha256 secret is empty")
    if material.startswith(("whsk_", "whpk_")):
        raise ValueError("an ed25519 key cannot sign hmac-sha256; use scheme standard-webhooks")
    if "-----BEGIN" in material:
        raise ValueError("a PEM key cannot sign hmac-sha256; use scheme rsa-sha256")
    return material.encode()


class HmacSha256Signer:
    """``<header>: <prefix><hex>`` by the newest key; grace keys in ``<header>-Previous``."""

    __slots__ = ("_header", "_keys", "_prefix")
    blocking: bool = False

    def __init__(self, keys: Sequence[Key[bytes]], *, header: str, prefix: str) -> None:
        self._keys = tuple(keys)
        self._header = header
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"HmacSha256Signer(header={self._header!r}, keys={len(self._keys)})"

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        values = [
            self._prefix + hmac.new(key.material, msg.body, hashlib.sha256).hexdigest()
            for key in live_keys(self._keys, now)
        ]
        return with_previous(self._header, values)

    def public_keys(self) -> list[str]:
        return []


def hmac_sha256_factory(config: SignerConfig) -> HmacSha256Signer:
    check_header_and_prefix(config)
    return HmacSha256Signer(
        parse_all(config.keys, parse_hmac),
        header=config.header or DEFAULT_HMAC_HEADER,
        prefix=DEFAULT_HMAC_PREFIX if config.prefix is None else config.prefix,
    )
