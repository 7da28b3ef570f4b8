"""Checking a received request as a receiver would, for every built-in scheme.

Used by ``hookd receive`` and ``hookd demo``, and by tests that cross-check the signers.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hookd.signing.common import PREVIOUS_SUFFIX, unb64
from hookd.signing.hmac_sha256 import (
    DEFAULT_HMAC_HEADER,
    DEFAULT_HMAC_PREFIX,
    HMAC_SHA256,
    parse_hmac,
)
from hookd.signing.rsa_sha256 import DEFAULT_RSA_HEADER, RSA_SHA256, rsa_public_key
from hookd.signing.standard_webhooks import (
    STANDARD_WEBHOOKS,
    parse_public_key,
    parse_standard,
    signed_content,
)


def verify(
    scheme: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str | None = None,
    public_key: str | None = None,
    header: str | None = None,
    prefix: str | None = None,
    tolerance: float | None = 300,
    now: float | None = None,
) -> tuple[bool, str]:
    """Check a received request as a receiver would; returns ``(valid, reason)``.

    Header names are matched case-insensitively. ``tolerance`` (seconds, ``None`` to skip) bounds
    the ``webhook-timestamp`` skew for standard-webhooks. For the single-signature schemes a
    signature in ``<header>-Previous`` is accepted too (a receiver still on the old key).
    Missing or unusable key material is the caller's mistake and raises ``ValueError``.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if scheme == STANDARD_WEBHOOKS:
        return _verify_standard(lowered, body, secret, public_key, tolerance, now)
    if scheme == HMAC_SHA256:
        return _verify_hmac(lowered, body, secret, header, prefix)
    if scheme == RSA_SHA256:
        return _verify_rsa(lowered, body, public_key or secret, header, prefix)
    raise ValueError(f"unknown signing scheme {scheme!r}")


# --- the single-signature schemes -----------------------------------------------------------


def _verify_hmac(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    header: str | None,
    prefix: str | None,
) -> tuple[bool, str]:
    if not secret:
        raise ValueError("hmac-sha256 verification needs the secret")
    digest = hmac.new(parse_hmac(secret), body, hashlib.sha256).hexdigest()
    expected = ((DEFAULT_HMAC_PREFIX if prefix is None else prefix) + digest).encode()
    return _verify_single(
        headers, header or DEFAULT_HMAC_HEADER, lambda v: hmac.compare_digest(v, expected)
    )


def _verify_rsa(
    headers: Mapping[str, str],
    body: bytes,
    key: str | None,
    header: str | None,
    prefix: str | None,
) -> tuple[bool, str]:
    verifier = rsa_public_key(key)
    strip = (prefix or "").encode()

    def check(value: bytes) -> bool:
        if not value.startswith(strip):
            return False
        try:
            signature = unb64(value[len(strip) :].decode("ascii"))
            verifier.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return False
        return True

    return _verify_single(headers, header or DEFAULT_RSA_HEADER, check)


def _verify_single(
    headers: Mapping[str, str], header: str, check: Callable[[bytes], bool]
) -> tuple[bool, str]:
    primary = headers.get(header.lower())
    previous = headers.get((header + PREVIOUS_SUFFIX).lower(), "")
    if primary is None:
        return False, f"missing {header} header"
    if check(primary.encode()):
        return True, f"signature in {header} matches"
    if any(check(value.encode()) for value in previous.split()):
        return True, f"signature in {header}{PREVIOUS_SUFFIX} matches"
    return False, "no matching signature"


# --- standard-webhooks ----------------------------------------------------------------------


def _verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    public_key: str | None,
    tolerance: float | None,
    now: float | None,
) -> tuple[bool, str]:
    hmac_key, verifier = _standard_keys(secret, public_key)
    fields = {}
    for name in ("id", "timestamp", "signature"):
        value = headers.get(f"webhook-{name}") or headers.get(f"svix-{name}")
        if not value:
            return False, f"missing webhook-{name} header"
        fields[name] = value
    problem = _timestamp_problem(fields["timestamp"], tolerance, now)
    if problem is not None:
        return False, problem
    content = signed_content(fields["id"], fields["timestamp"], body)
    return _match_standard(fields["signature"], content, hmac_key, verifier)


def _standard_keys(
    secret: str | None, public_key: str | None
) -> tuple[bytes | None, Ed25519PublicKey | None]:
    """The HMAC key and the ed25519 public key to check with (at least one of them)."""
    hmac_key: bytes | None = None
    verifier: Ed25519PublicKey | None = None
    if secret:
        parsed = parse_standard(secret)
        if isinstance(parsed, bytes):
            hmac_key = parsed
        else:
            verifier = parsed.public_key()
    if public_key:
        verifier = parse_public_key(public_key)
    if hmac_key is None and verifier is None:
        raise ValueError("standard-webhooks verification needs a secret or a whpk_ public key")
    return hmac_key, verifier


def _timestamp_problem(text: str, tolerance: float | None, now: float | None) -> str | None:
    """Why ``webhook-timestamp`` is unacceptable, or ``None`` when it is within ``tolerance``."""
    try:
        timestamp = int(text)
    except ValueError:
        return "webhook-timestamp is not unix seconds"
    if tolerance is None:
        return None
    skew = (time.time() if now is None else now) - timestamp
    if skew > tolerance:
        return f"timestamp too old ({skew:.0f} s, tolerance {tolerance:g} s)"
    if skew < -tolerance:
        return f"timestamp too new ({-skew:.0f} s ahead, tolerance {tolerance:g} s)"
    return None


def _match_standard(
    signatures: str,
    content: bytes,
    hmac_key: bytes | None,
    verifier: Ed25519PublicKey | None,
) -> tuple[bool, str]:
    """Whether one of the space-separated ``v1,…``/``v1a,…`` signatures matches ``content``."""
    expected = hmac.new(hmac_key, content, hashlib.sha256).digest() if hmac_key else None
    for item in signatures.split():
        version, _, encoded = item.partition(",")
        try:
            signature = unb64(encoded)
        except binascii.Error:
            continue
        if version == "v1" and expected is not None and hmac.compare_digest(expected, signature):
            return True, "v1 signature matches"
        if version == "v1a" and verifier is not None and _ed25519_ok(verifier, signature, content):
            return True, "v1a signature matches"
    return False, "no matching signature"


def _ed25519_ok(verifier: Ed25519PublicKey, signature: bytes, content: bytes) -> bool:
    try:
        verifier.verify(signature, content)
    except InvalidSignature:
        return False
    return True
