"""The built-in signing schemes, their verification, and key generation.

Three schemes register through the same door plugins use (:func:`register`):

``standard-webhooks`` (default; https://www.standardwebhooks.com), in :mod:`.standard_webhooks`
    Headers ``webhook-id`` (the event id, stable across retries), ``webhook-timestamp`` (unix
    seconds of *this attempt*) and ``webhook-signature``. The signed content is
    ``f"{id}.{timestamp}.".encode() + body``. A ``whsec_<base64>`` secret signs ``v1,<base64
    HMAC-SHA256>``; a ``whsk_<base64 32-byte seed>`` key signs ``v1a,<base64 ed25519>`` and
    publishes ``whpk_<base64 raw public key>``. A secret without a prefix is base64-decoded,
    exactly as the ``standardwebhooks`` and ``svix`` libraries decode a string secret, so a
    receiver can pass the configured text to them unchanged; text that is not base64 is refused.
    During a rotation grace there is one signature per live key, newest first, space-separated.

``hmac-sha256`` (the "TaskView" row), in :mod:`.hmac_sha256`
    One header (default ``X-Webhook-Signature``) holding ``<prefix><hex HMAC-SHA256(body)>``,
    prefix default ``sha256=``. The key is the UTF-8 bytes of the whole secret text, even when it
    looks like ``whsec_…`` (nothing is decoded), and is used byte for byte.

``rsa-sha256`` (the "Taskee" row), in :mod:`.rsa_sha256`
    One header (default ``x-wh-signature``) holding base64 RSASSA-PKCS1-v1_5 SHA-256 over the
    raw body (prefix default empty). Key material is an unencrypted PEM RSA private key of at
    least 2048 bits. Signing costs about a millisecond, so the signer is ``blocking`` (the
    dispatcher calls it in a worker thread) and a bounded LRU keyed by (key, sha256(body)) lets
    a retry of the same body skip the private-key operation: PKCS#1 v1.5 is deterministic.

Rotation grace for the single-signature schemes (``hmac-sha256``, ``rsa-sha256``): the primary
header carries the signature made with the NEWEST key; every older key still in its grace
(``expires_at > now``) adds its signature to a second header ``<header>-Previous``,
space-separated when there are several. A receiver still holding the old key checks that header;
once the grace ends the header is no longer sent.

A key is live when its ``expires_at`` is ``None`` or later than ``now``. Parsed key material is
held in objects whose repr never shows it, and no error message quotes it
(:mod:`.common`). Receivers' checks are in :mod:`.verification`, new keys in :mod:`.generate`.
"""

from __future__ import annotations

from hookd.registry import Registry
from hookd.signing.common import PREVIOUS_SUFFIX, SigningError
from hookd.signing.generate import generate_ed25519, generate_rsa, generate_standard_secret
from hookd.signing.hmac_sha256 import (
    DEFAULT_HMAC_HEADER,
    DEFAULT_HMAC_PREFIX,
    HMAC_SHA256,
    HmacSha256Signer,
    hmac_sha256_factory,
)
from hookd.signing.rsa_sha256 import (
    DEFAULT_RSA_HEADER,
    MIN_RSA_BITS,
    RSA_CACHE_SIZE,
    RSA_SHA256,
    RsaSha256Signer,
    SignatureCache,
    rsa_sha256_factory,
)
from hookd.signing.standard_webhooks import (
    STANDARD_WEBHOOKS,
    StandardWebhooksSigner,
    parse_public_key,
    standard_webhooks_factory,
)
from hookd.signing.verification import verify

__all__ = [
    "DEFAULT_HMAC_HEADER",
    "DEFAULT_HMAC_PREFIX",
    "DEFAULT_RSA_HEADER",
    "HMAC_SHA256",
    "MIN_RSA_BITS",
    "PREVIOUS_SUFFIX",
    "RSA_CACHE_SIZE",
    "RSA_SHA256",
    "STANDARD_WEBHOOKS",
    "HmacSha256Signer",
    "RsaSha256Signer",
    "SignatureCache",
    "SigningError",
    "StandardWebhooksSigner",
    "generate_ed25519",
    "generate_rsa",
    "generate_standard_secret",
    "hmac_sha256_factory",
    "parse_public_key",
    "register",
    "rsa_sha256_factory",
    "standard_webhooks_factory",
    "verify",
]


def register(registry: Registry) -> None:
    """Add the built-in schemes to ``registry``."""
    registry.add_signer(STANDARD_WEBHOOKS, standard_webhooks_factory)
    registry.add_signer(HMAC_SHA256, hmac_sha256_factory)
    registry.add_signer(RSA_SHA256, rsa_sha256_factory)
