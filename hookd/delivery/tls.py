"""Client TLS for one endpoint (SPEC §13): a private CA to verify the receiver, and a client
certificate for mutual TLS.

The material is PEM text, from files the YAML names or from the admin API. :func:`check` reads
it once (each part parses, the key matches the certificate) and says what is wrong about which
part; :func:`make_context` builds the endpoint's one :class:`ssl.SSLContext`, made when the
endpoint is built and reused by every attempt. With a CA, only that CA (or bundle) is trusted
for the endpoint; without one, the system's. The private key never leaves memory except for an
anonymous in-memory file (``memfd``) that OpenSSL reads it from.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

Part = Literal["ca", "client_cert", "client_key"]
PARTS: tuple[Part, ...] = ("ca", "client_cert", "client_key")


@dataclass(frozen=True, kw_only=True, slots=True)
class TLSConfig:
    """An endpoint's TLS material as PEM text; any part may be absent."""

    ca_pem: str | None = None
    client_cert_pem: str | None = field(default=None, repr=False)
    client_key_pem: str | None = field(default=None, repr=False)

    def pem(self, part: Part) -> str | None:
        value: str | None = getattr(self, f"{part}_pem")
        return value


class TLSProblem(ValueError):
    """The TLS material is not usable; ``part`` says which (ca, client_cert, client_key)."""

    def __init__(self, part: Part, message: str) -> None:
        self.part = part
        super().__init__(message)


def check(tls: TLSConfig) -> None:
    """Raise TLSProblem for the first part that does not parse, a certificate without its key
    (or a key without its certificate), a key that is not the certificate's, or material
    OpenSSL refuses."""
    if tls.ca_pem is not None:
        _certificates(tls.ca_pem, "ca")
    cert, key = tls.client_cert_pem, tls.client_key_pem
    if (cert is None) != (key is None):
        missing: Part = "client_key" if key is None else "client_cert"
        raise TLSProblem(missing, "a client certificate needs both client_cert and client_key")
    if cert is not None and key is not None:
        leaf = _certificates(cert, "client_cert")[0]
        private = _private_key(key)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if private.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(
            der, spki
        ):
            raise TLSProblem("client_key", "the private key does not match the client certificate")
    make_context(tls)


def make_context(tls: TLSConfig) -> ssl.SSLContext:
    """The endpoint's SSLContext (verifying hostnames, TLS 1.2 or later). Raises TLSProblem."""
    try:
        context = ssl.create_default_context(cadata=tls.ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise TLSProblem("ca", f"OpenSSL cannot use the CA: {_reason(exc)}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.client_cert_pem is not None and tls.client_key_pem is not None:
        with _in_memory_file(tls.client_cert_pem + "\n" + tls.client_key_pem) as path:
            try:
                context.load_cert_chain(path)
            except (ssl.SSLError, ValueError) as exc:
                raise TLSProblem(
                    "client_key", f"OpenSSL cannot use the client certificate: {_reason(exc)}"
                ) from exc
    return context


def summary(tls: TLSConfig | None) -> dict[str, Any] | None:
    """What answers show of the material (never the key): which parts are set, and the client
    certificate's subject and expiry."""
    if tls is None:
        return None
    subject = expires = None
    if tls.client_cert_pem is not None:
        with contextlib.suppress(ValueError):
            leaf = x509.load_pem_x509_certificates(tls.client_cert_pem.encode())[0]
            subject = leaf.subject.rfc4514_string()
            expires = _rfc3339(leaf.not_valid_after_utc)
    return {
        "ca": tls.ca_pem is not None,
        "client_cert": tls.client_cert_pem is not None,
        "client_cert_subject": subject,
        "client_cert_expires_at": expires,
    }


def _certificates(pem: str, part: Part) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise TLSProblem(part, f"not a PEM certificate: {_reason(exc)}") from exc
    if not certificates:  # pragma: no cover - the loader raises on no certificate
        raise TLSProblem(part, "no PEM certificate found")
    return certificates


def _private_key(pem: str) -> Any:
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError as exc:  # encrypted: a passphrase would have to live next to it
        raise TLSProblem("client_key", "an encrypted private key is not supported") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TLSProblem("client_key", f"not a PEM private key: {_reason(exc)}") from exc


@contextlib.contextmanager
def _in_memory_file(text: str) -> Iterator[str]:
    """A path OpenSSL can read ``text`` from: an anonymous in-memory file where the system
    has them (Linux), else a private temporary file removed at once."""
    data = text.encode()
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("hookd-tls", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="hookd-tls-") as folder:  # pragma: no cover
        path = os.path.join(folder, "chain.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        yield path


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
