"""``rsa-sha256`` (the "Taskee" row): base64 RSASSA-PKCS1-v1_5 SHA-256 over the raw body.

One header (default ``x-wh-signature``), prefix default empty. Key material is an unencrypted PEM
RSA private key of at least 2048 bits. Signing costs about a millisecond, so the signer is
``blocking`` (the dispatcher calls it in a worker thread) and a bounded LRU keyed by (key,
sha256(body)) lets a retry of the same body skip the private-key operation: PKCS#1 v1.5 is
deterministic. During a rotation grace, older live keys sign ``<header>-Previous``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hookd.registry import Message, SignerConfig
from hookd.signing.common import (
    Key,
    b64,
    check_header_and_prefix,
    live_keys,
    parse_all,
    with_previous,
)

RSA_SHA256 = "rsa-sha256"
DEFAULT_RSA_HEADER = "x-wh-signature"
MIN_RSA_BITS = 2048
RSA_CACHE_SIZE = 4096


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
class RsaKey:
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


def parse_rsa(material: str) -> RsaKey:
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
    return RsaKey(private, hashlib.sha256(der).digest(), pem.decode("ascii"))


def rsa_public_key(pem: str | None) -> rsa.RSAPublicKey:
    """The public key to verify with, from a PEM public key or (derived) a PEM private key."""
    if not pem:
        raise ValueError("rsa-sha256 verification needs a PEM public (or private) key")
    if "PRIVATE KEY" in pem:
        return parse_rsa(pem).private.public_key()
    try:
        public = serialization.load_pem_public_key(pem.strip().encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError("the key is not a readable PEM public key") from exc
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError(f"rsa-sha256 needs an RSA public key, not {type(public).__name__}")
    return public


class RsaSha256Signer:
    """Base64 PKCS#1 v1.5 SHA-256 over the body; blocking, with a signature cache."""

    __slots__ = ("_cache", "_header", "_keys", "_prefix")
    blocking: bool = True

    def __init__(
        self,
        keys: Sequence[Key[RsaKey]],
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
        for key in live_keys(self._keys, now):
            cache_key = (key.material.fingerprint, body_digest)
            signature = self._cache.get(cache_key)
            if signature is None:
                raw = key.material.private.sign(msg.body, padding.PKCS1v15(), hashes.SHA256())
                signature = b64(raw)
                self._cache.put(cache_key, signature)
            values.append(self._prefix + signature)
        return with_previous(self._header, values)

    def public_keys(self) -> list[str]:
        return [key.material.public_pem for key in self._keys if key.live(time.time())]


def rsa_sha256_factory(config: SignerConfig) -> RsaSha256Signer:
    check_header_and_prefix(config)
    return RsaSha256Signer(
        parse_all(config.keys, parse_rsa),
        header=config.header or DEFAULT_RSA_HEADER,
        prefix=config.prefix or "",
    )
