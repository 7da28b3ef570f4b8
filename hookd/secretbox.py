"""Secrets at rest for API-created endpoints: AES-256-GCM with the endpoint id as associated data.

A sealed secret is ``"v1:" + base64(nonce (12 random bytes) + ciphertext + GCM tag)``. The caller
passes the endpoint id as ``aad``, so a sealed secret copied onto another endpoint's row does not
open. A wrong key, a wrong ``aad`` and any tampering all fail the same way, with
:class:`SecretBoxError` (GCM cannot tell them apart).

The key text (:meth:`SecretBox.from_text`) is either base64 of exactly 32 bytes, as
:func:`generate_key_text` prints, or any other non-empty text, which is treated as a passphrase
and stretched to 32 bytes with HKDF-SHA256 (no salt, info ``b"hookd secretbox v1"``). HKDF does
not slow down guessing, so a passphrase must already be long and random; prefer a generated key.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hookd.errors import HookdError

_VERSION = "v1:"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_HKDF_INFO = b"hookd secretbox v1"


class SecretBoxError(HookdError):
    """A sealed secret could not be opened."""


def generate_key_text() -> str:
    """A new random key as base64 text (44 characters), for ``SecretBox.from_text``."""
    return base64.b64encode(os.urandom(_KEY_BYTES)).decode("ascii")


class SecretBox:
    """Seals and opens endpoint secrets with one AES-256-GCM key; the key never shows in a repr."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a secret box key must be {_KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self._key = key

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for another purpose (HKDF-SHA256, ``info`` = ``purpose``): related to
        this one only through HKDF, so neither reveals the other."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=purpose)
        return hkdf.derive(self._key)

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        """Base64 of 32 bytes is the key itself; any other text is a passphrase fed to HKDF."""
        text = text.strip()
        if not text:
            raise ValueError("the secret box key is empty")
        try:
            key = base64.b64decode(text, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != _KEY_BYTES:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=_HKDF_INFO)
            key = hkdf.derive(text.encode())
        return cls(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, *, aad: bytes = b"") -> str:
        """Encrypt ``plaintext`` under a fresh random nonce, bound to ``aad``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), aad)
        return _VERSION + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, *, aad: bytes = b"") -> str:
        """Decrypt a token made by :meth:`seal` with the same key and ``aad``."""
        if not token.startswith(_VERSION):
            raise SecretBoxError("not a sealed secret (expected the 'v1:' prefix)")
        try:
            blob = base64.b64decode(token[len(_VERSION) :], validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: not ASCII
            raise SecretBoxError("sealed secret is not valid base64") from exc
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretBoxError("sealed secret is truncated")
        try:
            plaintext = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise SecretBoxError(
                "cannot open sealed secret: wrong key, wrong endpoint, or tampered data"
            ) from exc
        return plaintext.decode()
