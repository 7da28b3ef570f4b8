"""Tenant tokens (SPEC §8): a customer's scoped credential for its own endpoints and history.

A token is a JWT (RFC 7519) signed with HMAC-SHA256 by PyJWT: a standard, well-kept format,
readable by the portal page (its expiry) and by any JWT tool, with the algorithm pinned on
verification (no ``alg: none``, no algorithm confusion). The signing key is derived from the
daemon's secret key (the one that seals endpoint secrets) with HKDF, so a token cannot be made
without that key, and every process sharing the key accepts the same tokens (they survive a
restart). Claims: ``sub`` (the tenant), ``iat``, ``exp``, ``gen`` and ``jti``, with ``iss``
``hookd`` and ``aud`` ``hookd:tenant``.

Revocation: each tenant has a token *generation* in the database; a token carries the
generation it was minted under and is valid only while that is still the tenant's generation.
``POST /v1/tenants/{tenant}/revoke-tokens`` bumps it, so every token issued before stops at
once, in every process (the generation is read per request).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from hookd.config.values import TENANT_PATTERN
from hookd.errors import HookdError

ISSUER = "hookd"
AUDIENCE = "hookd:tenant"
PURPOSE = b"hookd tenant tokens v1"
DEFAULT_TTL_S = 3600.0
MAX_TTL_S = 30 * 86400.0
_ALGORITHM = "HS256"


class InvalidToken(HookdError):
    """Not a valid tenant token: malformed, tampered, expired, or of another key."""


@dataclass(frozen=True, kw_only=True, slots=True)
class TenantClaims:
    tenant: str
    generation: int
    expires_at: float


class TenantTokens:
    """Mints and checks tenant tokens with one key (see the module docstring)."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def __repr__(self) -> str:
        return "TenantTokens(<key hidden>)"

    def mint(self, tenant: str, *, ttl: float, generation: int) -> tuple[str, float]:
        """A token for ``tenant`` valid for ``ttl`` seconds; the token and its expiry."""
        now = self._clock()
        expires = now + ttl
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": tenant,
            "iat": int(now),
            "exp": int(expires),
            "gen": generation,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM), float(int(expires))

    def verify(self, token: str) -> TenantClaims:
        """The claims of a well-signed, unexpired token; else InvalidToken. The caller still
        compares ``generation`` with the tenant's current one (revocation)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=0,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the tenant token has expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("not a valid tenant token") from exc
        if claims["exp"] <= self._clock():  # PyJWT's own check uses the system clock
            raise InvalidToken("the tenant token has expired")
        tenant, generation = claims.get("sub"), claims.get("gen")
        if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
            raise InvalidToken("not a valid tenant token")
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise InvalidToken("not a valid tenant token")
        return TenantClaims(tenant=tenant, generation=generation, expires_at=float(claims["exp"]))


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts: worth verifying as a tenant token (a static token never is)."""
    return token.count(".") == 2 and token.startswith("ey")
