"""A request transform: add computed headers to every request of an endpoint.

Signers are hookd's door for headers computed per request: a signer gets the exact bytes that
go on the wire and returns headers to add. This plugin wraps any registered scheme (built-in or
another plugin's) into a new one that adds, on top of that scheme's own signature headers:

- ``Content-Digest: sha-256=:<base64>:`` (RFC 9530), so a receiver or a proxy can check the body
  arrived intact;
- ``X-Hookd-Delivery: <delivery id>`` (one per delivery, unlike ``webhook-id``, which is one per
  event), useful for tracing a delivery through a gateway;
- any fixed ``headers`` from the options.

::

    plugins:
      - path: plugins/content_digest.py
        options:
          wrap: standard-webhooks             # the scheme to extend (default standard-webhooks)
          name: standard-webhooks+digest      # the new scheme's name (default: <wrap>+digest)
          headers: {X-Sender: hookd}          # optional fixed headers
    endpoints:
      - id: audited
        url: https://audit.example.com/hooks
        signing: {scheme: standard-webhooks+digest, secret: "${AUDIT_SECRET}"}

The wrapped scheme's keys, rotation and public keys work unchanged (the endpoint's ``signing``
settings go to it as they are).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from hookd.registry import Message, Registry, Signer, SignerConfig

OPTIONS = frozenset({"wrap", "name", "headers"})


def setup(registry: Registry, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    wrap = str(options.get("wrap", "standard-webhooks"))
    base = registry.signers.get(wrap)
    if base is None:
        known = ", ".join(sorted(registry.signers))
        raise ValueError(f"option 'wrap': no signing scheme named {wrap!r} (known: {known})")
    fixed = options.get("headers") or {}
    if not isinstance(fixed, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fixed.items()
    ):
        raise ValueError("option 'headers' maps header names to string values")
    extra = dict(fixed)

    def factory(config: SignerConfig) -> Signer:
        return DigestSigner(base(config), extra)

    registry.add_signer(str(options.get("name", f"{wrap}+digest")), factory)


class DigestSigner:
    """The wrapped signer's headers plus the computed ones."""

    def __init__(self, inner: Signer, fixed: Mapping[str, str]) -> None:
        self.inner = inner
        self.fixed = fixed
        self.blocking = inner.blocking

    def sign(self, msg: Message, now: float) -> dict[str, str]:
        digest = base64.b64encode(hashlib.sha256(msg.body).digest()).decode()
        return {
            **self.fixed,
            **self.inner.sign(msg, now),
            "Content-Digest": f"sha-256=:{digest}:",
            "X-Hookd-Delivery": msg.delivery_id,
        }

    def public_keys(self) -> list[str]:
        return self.inner.public_keys()
