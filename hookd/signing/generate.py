"""New signing material in the formats hookd and receivers expect (``hookd keygen``)."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hookd.signing.common import b64
from hookd.signing.rsa_sha256 import MIN_RSA_BITS


def generate_standard_secret() -> str:
    """A new ``whsec_`` secret: 24 random bytes, base64 (the svix format)."""
    return "whsec_" + b64(os.urandom(24))


def generate_ed25519() -> tuple[str, str]:
    """A new ``(whsk_…, whpk_…)`` pair: the base64 32-byte seed and raw public key."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    return "whsk_" + b64(private.private_bytes_raw()), "whpk_" + b64(public)


def generate_rsa(bits: int = 2048) -> tuple[bytes, bytes]:
    """A new ``(private PKCS#8 PEM, public SPKI PEM)`` RSA pair, unencrypted."""
    if bits < MIN_RSA_BITS:
        raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits")
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem
