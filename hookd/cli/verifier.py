"""What ``hookd receive`` and ``hookd demo`` share about an incoming delivery: the
:class:`Verifier` that checks its signature and :func:`decoded`, its body as JSON.

:mod:`hookd.signing` (and cryptography) load only when a request is checked, so that ``--help``
stays quick.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class Verifier:
    """What a receiver knows: the scheme and the secret or public key to check with."""

    scheme: str
    secret: str | None = field(default=None, repr=False)
    public_key: str | None = None
    header: str | None = None
    prefix: str | None = None

    def check(self, headers: Mapping[str, str], body: bytes) -> tuple[bool, str]:
        from hookd import signing

        try:
            return signing.verify(
                self.scheme,
                headers,
                body,
                secret=self.secret,
                public_key=self.public_key,
                header=self.header,
                prefix=self.prefix,
            )
        except ValueError as exc:
            return False, str(exc)

    def validate(self) -> None:
        """Raise ValueError now if the key material cannot verify anything."""
        from hookd import signing

        signing.verify(
            self.scheme,
            {},
            b"",
            secret=self.secret,
            public_key=self.public_key,
            header=self.header,
            prefix=self.prefix,
        )


def decoded(body: bytes) -> Any:
    """The body as JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
