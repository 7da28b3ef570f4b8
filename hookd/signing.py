"""The built-in signing schemes, their verification, and key generation.

Three schemes register through the same door plugins use (:func:`register`):

``standard-webhooks`` (default; https://www.standardwebhooks.com)
    Headers ``webhook-id`` (the event id, stable across retries), ``webhook-timestamp`` (unix
    seconds of *this attempt*) and ``webhook-signature``. The signed content is
    ``f"{id}.{timestamp}.".encode() + body``. A ``whsec_<base64>`` secret signs ``v1,<base64
    HMAC-SHA256>``; a ``whsk_<base64 32-byte seed>`` key signs ``v1a,<base64 ed25519>`` and
    publishes ``whpk_<base64 raw public key>``. A secret without a prefix is base64-decoded,
    exactly as the ``standardwebhooks`` and ``svix`` libraries decode a string secret, so a
    receiver can pass the configured text to them unchanged; text that is not base64 is refused.
    During a rotation grace there is one signature per live key, newest first, space-separated.

``hmac-sha256`` (the "TaskView" row)
    One header (default ``X-Webhook-Signature``) holding ``<prefix><hex HMAC-SHA256(body)>``,
    prefix default ``sha256=``. The key is the UTF-8 bytes of the whole secret text, even when it
    looks like ``whsec_…`` (nothing is decoded), and is used byte for byte.

``rsa-sha256`` (the "Taskee" row)
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
held in objects whose repr never shows it, and no error message quotes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hookd.errors import HookdError
from hookd.registry import Message, Registry, SignerConfig, SigningKey

STANDARD_WEBHOOKS = "standard-webhooks"
HMAC_SHA256 = "hmac-sha256"
RSA_SHA256 = "rsa-sha256"

DEFAULT_HMAC_HEADER = "X-Webhook-Signature"
DEFAULT_HMAC_PREFIX = "sha256="
DEFAULT_RSA_HEADER = "x-wh-signature"
PREVIOUS_SUFFIX = "-Previous"
MIN_RSA_BITS = 2048
RSA_CACHE_SIZE = 4096

_K = TypeVar("_K")
_T = TypeVar("_T")


class SigningError(HookdError):
    """A message could not be signed (for instance: no key is live any more)."""


@dataclass(frozen=True, slots=True)
class _Key(Generic[_K]):
    """Parsed key material with its grace expiry; the material never shows in a repr."""

    material: _K = field(repr=False)
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


def _live(keys: Sequence[_Key[_T]], now: float) -> list[_Key[_T]]:
    live = [key for key in keys if key.live(now)]
    if not live:
        raise SigningError("no live signing key: every key's grace period has ended")
    return live


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64 decode that tolerates missing padding (as the verification libraries do)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _parse_all(keys: Sequence[SigningKey], parse: Callable[[str], _T]) -> list[_Key[_T]]:
    if not keys:
        raise ValueError("no signing key configured")
    parsed = []
    for index, key in enumerate(keys):
        try:
            parsed.append(_Key(parse(key.material), key.expires_at))
        except ValueError as exc:
            if len(keys) == 1:
                raise
            raise ValueError(f"key {index + 1} of {len(keys)}: {exc}") from exc
    return parsed


def _with_previous(header: str, values: list[str]) -> dict[str, str]:
    headers = {header: values[0]}
    if len(values) > 1:
        headers[header + PREVIOUS_SUFFIX] = " ".join(values[1:])
    return headers


def _check_header_and_prefix(config: SignerConfig) -> None:
    if config.header is not None and (not config.header or any(c.isspace() for c in config.header)):
        raise ValueError("header must be a non-empty header name without spaces")
    if config.prefix is not None and any(c.isspace() for c in config.prefix):
        raise ValueError("prefix must not contain whitespace")


# --- standard-webhooks ----------------------------------------------------------------------


def _parse_standard(material: str) -> bytes | Ed25519PrivateKey:
    text = material.strip()
    if text.startswith("whsk_"):
        try:
            raw = _unb64(text[5:])
        except binascii.Error as exc:
            raise ValueError("a whsk_ key must be 'whsk_' followed by base64") from exc
        if len(raw) not in (32, 64):
            raise ValueError("a whsk_ key must hold a 32-byte ed25519 seed (base64)")
        private = Ed25519PrivateKey.from_private_bytes(raw[:32])
        if len(raw) == 64 and raw[32:] != private.public_key().public_bytes_raw():
            raise ValueError("a 64-byte whsk_ key must be seed + its own public key")
        return private
    if text.startswith("whpk_"):
        raise ValueError("a whpk_ key is a public key; signing needs the whsk_ private key")
    if "-----BEGIN" in text:
        raise ValueError("a PEM key cannot sign standard-webhooks; use scheme rsa-sha256")
    try:
        secret = _unb64(text.removeprefix("whsec_"))
    except binascii.Error as exc:
        raise ValueError(
            "a standard-webhooks secret must be 'whsec_<base64>' (or bare base64, as the "
            "verification libraries read it); make one with `hookd keygen standard-webhooks`"
        ) from exc
    if not secret:
        raise ValueError("the standard-webhooks secret is empty")
    return secret


class StandardWebhooksSigner:
    """``webhook-id``/``webhook-timestamp``/``webhook-signature``, one signature per live key."""

    __slots__ = ("_keys",)
    blocking: bool = False

    def __init__(self, keys: Sequence[_Key[bytes | Ed25519PrivateKey]]) -> None:
        self._keys = tuple(keys)

    def __repr__(self) -> str:
        return f"StandardWebhooksSigner(keys={len(self._keys)})"

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        content = f"{msg.event_id}.{msg.timestamp}.".encode() + msg.body
        signatures = []
        for key in _live(self._keys, now):
            if isinstance(key.material, bytes):
                digest = hmac.new(key.material, content, hashlib.sha256).digest()
                signatures.append("v1," + _b64(digest))
            else:
                signatures.append("v1a," + _b64(key.material.sign(content)))
        return {
            "webhook-id": msg.event_id,
            "webhook-timestamp": str(msg.timestamp),
            "webhook-signature": " ".join(signatures),
        }

    def public_keys(self) -> list[str]:
        return [
            "whpk_" + _b64(key.material.public_key().public_bytes_raw())
            for key in self._keys
            if isinstance(key.material, Ed25519PrivateKey) and key.live(time.time())
        ]


def standard_webhooks_factory(config: SignerConfig) -> StandardWebhooksSigner:
    if config.header is not None or config.prefix is not None:
        raise ValueError("standard-webhooks has fixed header names; header/prefix do not apply")
    return StandardWebhooksSigner(_parse_all(config.keys, _parse_standard))


# --- hmac-sha256 ----------------------------------------------------------------------------


def _parse_hmac(material: str) -> bytes:
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

    def __init__(self, keys: Sequence[_Key[bytes]], *, header: str, prefix: str) -> None:
        self._keys = tuple(keys)
        self._header = header
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"HmacSha256Signer(header={self._header!r}, keys={len(self._keys)})"

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        values = [
            self._prefix + hmac.new(key.material, msg.body, hashlib.sha256).hexdigest()
            for key in _live(self._keys, now)
        ]
        return _with_previous(self._header, values)

    def public_keys(self) -> list[str]:
        return []


def hmac_sha256_factory(config: SignerConfig) -> HmacSha256Signer:
    _check_header_and_prefix(config)
    return HmacSha256Signer(
        _parse_all(config.keys, _parse_hmac),
        header=config.header or DEFAULT_HMAC_HEADER,
        prefix=DEFAULT_HMAC_PREFIX if config.prefix is None else config.prefix,
    )


# --- rsa-sha256 -----------------------------------------------------------------------------


class SignatureCache:
    """A thread-safe bounded LRU of RSA signatures keyed by (key fingerprint, sha256(body))."""

    def __init__(self, maxsize: int = RSA_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[bytes, bytes], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[bytes, bytes]) -> str | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return value

    def put(self, key: tuple[bytes, bytes], value: str) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)


_RSA_CACHE = SignatureCache()


@dataclass(frozen=True, slots=True)
class _RsaKey:
    private: rsa.RSAPrivateKey = field(repr=False)
    fingerprint: bytes  # sha256 of the SPKI DER: names the key in the cache
    public_pem: str


def _load_private_pem(material: str) -> object:
    try:
        return serialization.load_pem_private_key(material.strip().encode(), password=None)
    except TypeError as exc:  # cryptography's way of saying "encrypted, and no password given"
        raise ValueError("encrypted PEM private keys are not supported; decrypt it first") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("the key is not a readable PEM private key") from exc


def _parse_rsa(material: str) -> _RsaKey:
    private = _load_private_pem(material)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise ValueError(f"rsa-sha256 needs an RSA private key, not {type(private).__name__}")
    if private.key_size < MIN_RSA_BITS:
        raise ValueError(f"the RSA key has {private.key_size} bits; at least {MIN_RSA_BITS}")
    public = private.public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _RsaKey(private, hashlib.sha256(der).digest(), pem.decode("ascii"))


class RsaSha256Signer:
    """Base64 PKCS#1 v1.5 SHA-256 over the body; blocking, with a signature cache."""

    __slots__ = ("_cache", "_header", "_keys", "_prefix")
    blocking: bool = True

    def __init__(
        self,
        keys: Sequence[_Key[_RsaKey]],
        *,
        header: str,
        prefix: str = "",
        cache: SignatureCache | None = None,
    ) -> None:
        self._keys = tuple(keys)
        self._header = header
        self._prefix = prefix
        self._cache = _RSA_CACHE if cache is None else cache

    def __repr__(self) -> str:
        return f"RsaSha256Signer(header={self._header!r}, keys={len(self._keys)})"

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        body_digest = hashlib.sha256(msg.body).digest()
        values = []
        for key in _live(self._keys, now):
            cache_key = (key.material.fingerprint, body_digest)
            signature = self._cache.get(cache_key)
            if signature is None:
                raw = key.material.private.sign(msg.body, padding.PKCS1v15(), hashes.SHA256())
                signature = _b64(raw)
                self._cache.put(cache_key, signature)
            values.append(self._prefix + signature)
        return _with_previous(self._header, values)

    def public_keys(self) -> list[str]:
        return [key.material.public_pem for key in self._keys if key.live(time.time())]


def rsa_sha256_factory(config: SignerConfig) -> RsaSha256Signer:
    _check_header_and_prefix(config)
    return RsaSha256Signer(
        _parse_all(config.keys, _parse_rsa),
        header=config.header or DEFAULT_RSA_HEADER,
        prefix=config.prefix or "",
    )


def register(registry: Registry) -> None:
    """Add the built-in schemes to ``registry``."""
    registry.add_signer(STANDARD_WEBHOOKS, standard_webhooks_factory)
    registry.add_signer(HMAC_SHA256, hmac_sha256_factory)
    registry.add_signer(RSA_SHA256, rsa_sha256_factory)


# --- verification ---------------------------------------------------------------------------


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
        if not secret:
            raise ValueError("hmac-sha256 verification needs the secret")
        digest = hmac.new(_parse_hmac(secret), body, hashlib.sha256).hexdigest()
        expected = ((DEFAULT_HMAC_PREFIX if prefix is None else prefix) + digest).encode()
        return _verify_single(
            lowered, header or DEFAULT_HMAC_HEADER, lambda v: hmac.compare_digest(v, expected)
        )
    if scheme == RSA_SHA256:
        verifier = _rsa_public_key(public_key or secret)
        strip = (prefix or "").encode()

        def check(value: bytes) -> bool:
            if not value.startswith(strip):
                return False
            try:
                signature = _unb64(value[len(strip) :].decode("ascii"))
                verifier.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
            except (ValueError, InvalidSignature):
                return False
            return True

        return _verify_single(lowered, header or DEFAULT_RSA_HEADER, check)
    raise ValueError(f"unknown signing scheme {scheme!r}")


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


def _rsa_public_key(pem: str | None) -> rsa.RSAPublicKey:
    if not pem:
        raise ValueError("rsa-sha256 verification needs a PEM public (or private) key")
    if "PRIVATE KEY" in pem:
        return _parse_rsa(pem).private.public_key()
    try:
        public = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("the key is not a readable PEM public key") from exc
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError(f"rsa-sha256 needs an RSA public key, not {type(public).__name__}")
    return public


def _verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | None,
    public_key: str | None,
    tolerance: float | None,
    now: float | None,
) -> tuple[bool, str]:
    hmac_key: bytes | None = None
    verifier: Ed25519PublicKey | None = None
    if secret:
        parsed = _parse_standard(secret)
        if isinstance(parsed, bytes):
            hmac_key = parsed
        else:
            verifier = parsed.public_key()
    if public_key:
        verifier = parse_public_key(public_key)
    if hmac_key is None and verifier is None:
        raise ValueError("standard-webhooks verification needs a secret or a whpk_ public key")

    fields = {}
    for name in ("id", "timestamp", "signature"):
        value = headers.get(f"webhook-{name}") or headers.get(f"svix-{name}")
        if not value:
            return False, f"missing webhook-{name} header"
        fields[name] = value
    try:
        timestamp = int(fields["timestamp"])
    except ValueError:
        return False, "webhook-timestamp is not unix seconds"
    if tolerance is not None:
        skew = (time.time() if now is None else now) - timestamp
        if skew > tolerance:
            return False, f"timestamp too old ({skew:.0f} s, tolerance {tolerance:g} s)"
        if skew < -tolerance:
            return False, f"timestamp too new ({-skew:.0f} s ahead, tolerance {tolerance:g} s)"

    content = f"{fields['id']}.{fields['timestamp']}.".encode() + body
    expected = hmac.new(hmac_key, content, hashlib.sha256).digest() if hmac_key else None
    for item in fields["signature"].split():
        version, _, encoded = item.partition(",")
        try:
            signature = _unb64(encoded)
        except binascii.Error:
            continue
        if version == "v1" and expected is not None and hmac.compare_digest(expected, signature):
            return True, "v1 signature matches"
        if version == "v1a" and verifier is not None:
            try:
                verifier.verify(signature, content)
            except InvalidSignature:
                continue
            return True, "v1a signature matches"
    return False, "no matching signature"


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A ``whpk_<base64 32 bytes>`` public key (``ValueError`` if it is not one)."""
    text = text.strip()
    if not text.startswith("whpk_"):
        raise ValueError("an ed25519 public key must start with 'whpk_'")
    try:
        raw = _unb64(text[5:])
    except binascii.Error as exc:
        raise ValueError("a whpk_ key must be 'whpk_' followed by base64") from exc
    if len(raw) != 32:
        raise ValueError("a whpk_ key must hold a 32-byte ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)


# --- key generation -------------------------------------------------------------------------


def generate_standard_secret() -> str:
    """A new ``whsec_`` secret: 24 random bytes, base64 (the svix format)."""
    return "whsec_" + _b64(os.urandom(24))


def generate_ed25519() -> tuple[str, str]:
    """A new ``(whsk_…, whpk_…)`` pair: the base64 32-byte seed and raw public key."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes_raw()
    return "whsk_" + _b64(private.private_bytes_raw()), "whpk_" + _b64(public)


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
