"""Daemon configurations for tests, and the secrets and tokens they use.

Every config text here goes through ``str.format`` when a daemon starts (``write_config`` fills
in ``{port}`` and ``{storage}``: the test's backend, see :mod:`tests.support.backends`), so the
YAML's own braces are doubled.
"""

from __future__ import annotations

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a valid Standard Webhooks secret
INGEST = "ingest-token-0123456789"
ADMIN = "admin-token-0123456789"


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def escape(text: str) -> str:
    """YAML text made safe for ``str.format`` (braces doubled)."""
    return text.replace("{", "{{").replace("}", "}}")


def config(
    endpoints: str = "",
    *,
    policies: str = "",
    delivery: str = "",
    private: bool = True,
    storage: str = "",
    extra: str = "",
) -> str:
    """A daemon on loopback with the test's database: a SQLite file in the test's directory, or
    the test's PostgreSQL database when it runs on postgres (``{storage}``).

    ``private``: ``delivery.allow_private_networks`` (receivers live on 127.0.0.1);
    ``delivery`` and ``storage``: more keys of those mappings (``", concurrency: 4"``);
    ``policies``: indented YAML lines under ``policies:``; ``endpoints``: :func:`endpoint`
    items; ``extra``: top-level YAML lines (:func:`auth`, ``limits``, ``plugins``). All are
    plain YAML: the braces are doubled here.
    """
    text = "listen: 127.0.0.1:{port}\nstorage: {{{storage}" + escape(storage) + "}}\n"
    text += escape(f"delivery: {{allow_private_networks: {str(private).lower()}{delivery}}}\n")
    text += escape(extra)
    if policies:
        text += "policies:\n" + escape(policies)
    if endpoints:
        text += "endpoints:\n" + escape(endpoints)
    return text


def auth(*, admin: bool = True, ingest: bool = False) -> str:
    """The ``auth`` line with the test's admin and/or ingest token."""
    tokens = [f"admin_tokens: [{ADMIN}]"] if admin else []
    tokens += [f"ingest_tokens: [{INGEST}]"] if ingest else []
    return "auth: {" + ", ".join(tokens) + "}\n"


def hmac_signing(secret: str = "topsecret") -> str:
    """``signing:`` for the ``sha256=`` HMAC scheme (flow style, for :func:`endpoint`)."""
    return f"{{scheme: hmac-sha256, secret: {secret}}}"


def endpoint(endpoint_id: str, url: str, **fields: str) -> str:
    """One endpoint as a flow-style YAML list item, signed with SECRET unless told otherwise."""
    parts = [f"id: {endpoint_id}", f'url: "{url}"', *(f"{k}: {v}" for k, v in fields.items())]
    if "signing" not in fields:
        parts.append(f'signing: {{secret: "{SECRET}"}}')
    return "  - {" + ", ".join(parts) + "}\n"


def capped(max_pending: int) -> str:
    """``limits.max_pending`` and one endpoint that never answers and retries only in an hour,
    so every delivery stays pending after its first attempt."""
    return config(
        endpoint("down", "http://127.0.0.1:9/never", policy="later"),
        policies="  later: {delays: [1h]}\n",
        extra=f"limits: {{max_pending: {max_pending}}}\n",
    )
