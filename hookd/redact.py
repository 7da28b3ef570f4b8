"""What operators may see: credentials hidden in endpoint URLs and request headers.

API answers, ``/v1/status``, the stored ``request_headers`` and log lines show these forms;
deliveries go to the real URL with the real headers. An endpoint's own ``headers`` are set by
whoever configured it and may hold anything (``X-Hub-Pass``), so their values are always hidden,
whatever their names; so are credential-like headers. Headers hookd sets itself (Content-Type,
User-Agent, ``webhook-id``, ``webhook-timestamp``) stay visible, and so do signatures: they are
not secrets (receivers and operators compare them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

MASK = "***"
REDACTED = "[redacted]"

_CREDENTIAL_HEADER = re.compile(r"auth|token|secret|key|cookie|password", re.IGNORECASE)
# scheme://userinfo@ — userinfo runs to the authority's last "@", as urllib.parse reads it
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def url_password(url: str) -> str | None:
    """The password part of ``url``'s userinfo, as written; None when there is none."""
    m = _USERINFO.match(url)
    password = m.group(2).partition(":")[2] if m else ""
    return password or None


def redact_url(url: str) -> str:
    """``https://user:***@host/path`` for a URL with a password; any other URL as it is."""
    m = _USERINFO.match(url)
    if m is None:
        return url
    user, _, password = m.group(2).partition(":")
    if not password:
        return url
    return f"{m.group(1)}{user}:{MASK}@{url[m.end() :]}"


@functools.lru_cache(maxsize=1024)
def _credential_like(name: str) -> bool:
    """Whether a header's name says it carries a credential (asked per attempt for the same
    few names, so remembered: the regex search costs more than the lookup)."""
    return _CREDENTIAL_HEADER.search(name) is not None


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers as shown to operators: values of credential-like headers hidden."""
    return {k: REDACTED if _credential_like(k) else v for k, v in headers.items()}


def redact_custom(headers: Mapping[str, str], custom: Iterable[str]) -> dict[str, str]:
    """Headers sent to an endpoint as shown to operators: the values of the endpoint's own
    headers (``custom``, by name, any case) hidden, and those of credential-like names."""
    names = {name.lower() for name in custom}
    if not names:
        return redact_headers(headers)
    return {
        k: REDACTED if k.lower() in names or _credential_like(k) else v for k, v in headers.items()
    }


def hide_values(headers: Mapping[str, str]) -> dict[str, str]:
    """An endpoint's own headers as answers show them: every name, no value."""
    return dict.fromkeys(headers, REDACTED)
