"""``standard-webhooks`` (default; https://www.standardwebhooks.com): HMAC and ed25519.

Headers ``webhook-id`` (the event id, stable across retries), ``webhook-timestamp`` (unix seconds
of *this attempt*) and ``webhook-signature``. The signed content is
``f"{id}.{timestamp}.".encode() + body``. A ``whsec_<base64>`` secret (or bare base64, decoded as
the ``standardwebhooks`` and ``svix`` libraries decode it) signs ``v1,<base64 HMAC-SHA256>``; a
``whsk_<base64 32-byte seed>`` key signs ``v1a,<base64 ed25519>`` and publishes ``whpk_<base64
raw public key>``. During a rotation grace there is one signature per live key, newest first,
space-separated.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hookd.registry import Message, SignerConfig
from hookd.signing.common import Key, b64, live_keys, parse_all, unb64

STANDARD_WEBHOOKS = "standard-webhooks"


def parse_standard(material: str) -> bytes | Ed25519PrivateKey:
    """A ``whsk_`` ed25519 seed, or the HMAC key of a ``whsec_`` (or bare base64) secret."""
    text = material.strip()
    if text.startswith("whsk_"):
        return _parse_whsk(text)
    if text.startswith("whpk_"):
        raise ValueError("a whpk_ key is a public key; signing needs the whsk_ private key")
    if "-----BEGIN" in text:
        raise ValueError("a PEM key cannot sign standard-webhooks; use scheme rsa-sha256")
    try:
        secret = unb64(text.removeprefix("whsec_"))
    except binascii.Error as exc:
        raise ValueError(
            "a standard-webhooks secret must be 'whsec_<base64>' (or bare base64, as the "
            "verification libraries read it); make one with `hookd keygen standard-webhooks`"
        ) from exc
    if not secret:
        raise ValueError("the standard-webhooks secret is empty")
    return secret


def _parse_whsk(text: str) -> Ed25519PrivateKey:
    try:
        raw = unb64(text[5:])
    except binascii.Error as exc:
        raise ValueError("a whsk_ key must be 'whsk_' followed by base64") from exc
    if len(raw) not in (32, 64):
        raise ValueError("a whsk_ key must hold a 32-byte ed25519 seed (base64)")
    private = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if len(raw) == 64 and raw[32:] != private.public_key().public_bytes_raw():
        raise ValueError("a 64-byte whsk_ key must be seed + its own public key")
    return private


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A ``whpk_<base64 32 bytes>`` public key (``ValueError`` if it is not one)."""
    text = text.strip()
    if not text.startswith("whpk_"):
        raise ValueError("an ed25519 public key must start with 'whpk_'")
    try:
        raw = unb64(text[5:])
    except binascii.Error as exc:
        raise ValueError("a whpk_ key must be 'whpk_' followed by base64") from exc
    if len(raw) != 32:
        raise ValueError("a whpk_ key must hold a 32-byte ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


def signed_content(event_id: str, timestamp: int | str, body: bytes) -> bytes:
    """What standard-webhooks signs: ``f"{id}.{timestamp}."`` then the raw body."""
    return f"{event_id}.{timestamp}.".encode() + body


class StandardWebhooksSigner:
    """``webhook-id``/``webhook-timestamp``/``webhook-signature``, one signature per live key."""

    __slots__ = ("_keys",)
    blocking: bool = False

    def __init__(self, keys: Sequence[Key[bytes | Ed25519PrivateKey]]) -> None:
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"StandardWebhooksSigner(keys={len(self._keys)})"

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        content = signed_content(msg.event_id, msg.timestamp, msg.body)
        signatures = []
        for key in live_keys(self._keys, now):
            if isinstance(key.material, bytes):
                digest = hmac.new(key.material, content, hashlib.sha256).digest()
                signatures.append("v1," + b64(digest))
            else:
                signatures.append("v1a," + b64(key.material.sign(content)))
        return {
            "webhook-id": msg.event_id,
            "webhook-timestamp": str(msg.timestamp),
            "webhook-signature": " ".join(signatures),
        }

    def public_keys(self) -> list[str]:
        return [
            "whpk_" + b64(key.material.public_key().public_bytes_raw())
            for key in self._keys
            if isinstance(key.material, Ed25519PrivateKey) and key.live(time.time())
        ]


def standard_webhooks_factory(config: SignerConfig) -> StandardWebhooksSigner:
    if config.header is not None or config.prefix is not None:
        raise ValueError("standard-webhooks has fixed header names; header/prefix do not apply")
    return StandardWebhooksSigner(parse_all(config.keys, parse_standard))
