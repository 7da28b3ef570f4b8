"""An endpoint's signing keys: from the YAML, or sealed in the database for API endpoints.

API endpoints' keys are stored sealed with the daemon's :class:`~hookd.secretbox.SecretBox` (the
endpoint id is bound in as associated data), each with the time its rotation grace ends.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from hookd.config import SigningConfig
from hookd.registry import SigningKey
from hookd.secretbox import SecretBox
from hookd.signing import (
    RSA_SHA256,
    STANDARD_WEBHOOKS,
    generate_ed25519,
    generate_rsa,
    generate_standard_secret,
)


def config_keys(signing: SigningConfig) -> tuple[SigningKey, ...]:
    """A YAML endpoint's one key: its private key (PEM) or its secret, if it has either."""
    material = signing.private_key if signing.private_key is not None else signing.secret
    return (SigningKey(material=material),) if material else ()


async def new_secret(scheme: str, like: str | None = None) -> str:
    """Fresh key material for ``scheme`` (an ed25519 key when ``like`` is one)."""
    if scheme == STANDARD_WEBHOOKS:
        if like is not None and like.startswith("whsk_"):
            return generate_ed25519()[0]
        return generate_standard_secret()
    if scheme == RSA_SHA256:
        private, _ = await asyncio.to_thread(generate_rsa)
        return private.decode("ascii")
    return secrets.token_urlsafe(32)  # hmac-sha256 and plugin schemes


def open_keys(
    endpoint_id: str, sealed: list[dict[str, Any]], box: SecretBox | None, now: float
) -> tuple[SigningKey, ...]:
    """Unseal an API endpoint's live keys (newest first), dropping those past their grace."""
    keys = []
    for item in sealed:
        expires = item.get("expires_at")
        if expires is not None and expires <= now:
            continue
        material = (
            item["secret"] if box is None else box.open(item["secret"], aad=_aad(endpoint_id))
        )
        keys.append(SigningKey(material=material, expires_at=expires))
    return tuple(keys)


def seal_keys(
    endpoint_id: str, keys: list[tuple[str, float | None]], box: SecretBox | None
) -> list[dict[str, Any]]:
    """``(material, expires_at)`` pairs as stored: sealed, unless there is no box."""
    return [
        {
            "secret": material if box is None else box.seal(material, aad=_aad(endpoint_id)),
            "expires_at": expires,
        }
        for material, expires in keys
    ]


def _aad(endpoint_id: str) -> bytes:
    return f"hookd-endpoint:{endpoint_id}".encode()
