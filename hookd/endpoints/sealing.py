"""An API endpoint's settings at rest: what may be a credential is sealed, the rest stays JSON.

Sealed (with the daemon's :class:`~hookd.secretbox.SecretBox`, like signing secrets; the endpoint
id is bound in): the URL when it carries a password, every header value (a header's name says
nothing about whether its value is a credential), and TLS material. The stored settings keep
their shape for people reading the database: the URL with its password masked, header names
with ``[redacted]`` values, and the sealed part under ``"sealed"``. Rows an older hookd stored in
clear still open as they are; :func:`needs_sealing` finds them to seal them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hookd.redact import hide_values, redact_url, url_password
from hookd.secretbox import SecretBox, SecretBoxError

SEALED = "sealed"
SECRET_SETTINGS = ("url", "headers", "tls")


def seal_spec(endpoint_id: str, spec: Mapping[str, Any], box: SecretBox | None) -> dict[str, Any]:
    """The settings as stored: the secret ones sealed, and shown masked beside."""
    secret = _secret_part(spec)
    if box is None or not secret:
        return dict(spec)
    stored = {k: v for k, v in spec.items() if k not in secret}
    if "url" in secret:
        stored["url"] = redact_url(secret["url"])
    if "headers" in secret:
        stored["headers"] = hide_values(secret["headers"])
    if "tls" in secret:
        stored["tls"] = {key: True for key in secret["tls"]}
    stored[SEALED] = box.seal(json.dumps(secret), aad=_aad(endpoint_id))
    return stored


def open_spec(endpoint_id: str, stored: Mapping[str, Any], box: SecretBox | None) -> dict[str, Any]:
    """The settings with their secret part opened. Raises SecretBoxError."""
    if SEALED not in stored:
        return dict(stored)  # nothing secret, or stored in clear by an older hookd
    if box is None:
        raise SecretBoxError("the endpoint's settings are sealed and no secret key is set")
    secret = json.loads(box.open(str(stored[SEALED]), aad=_aad(endpoint_id)))
    spec = {k: v for k, v in stored.items() if k != SEALED}
    spec.update(secret)
    return spec


def needs_sealing(stored: Mapping[str, Any], box: SecretBox | None) -> bool:
    """Whether stored settings hold a secret in clear (a row an older hookd wrote)."""
    return box is not None and SEALED not in stored and bool(_secret_part(stored))


def _secret_part(spec: Mapping[str, Any]) -> dict[str, Any]:
    secret = {k: spec[k] for k in SECRET_SETTINGS if spec.get(k)}
    if "url" in secret and url_password(str(secret["url"])) is None:
        del secret["url"]  # a URL without a password is no secret
    return secret


def _aad(endpoint_id: str) -> bytes:
    return f"hookd-endpoint-settings:{endpoint_id}".encode()
