"""What operators see: URL passwords masked, credential headers hidden, signatures shown."""

from __future__ import annotations

from typing import Any

import pytest

from hookd import logs
from hookd.redact import redact_headers, redact_url, url_password


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("https://user:pw@host.example/x?y=1", "https://user:***@host.example/x?y=1", "pw"),
        ("https://:pw@host.example/", "https://:***@host.example/", "pw"),
        ("http://u:p@ss@10.0.0.1:8080/a@b", "http://u:***@10.0.0.1:8080/a@b", "p@ss"),
        ("https://u:%40pw@host/", "https://u:***@host/", "%40pw"),
        ("https://user@host.example/", "https://user@host.example/", None),
        ("https://user:@host.example/", "https://user:@host.example/", None),
        ("https://host.example/path?next=a:b@c", "https://host.example/path?next=a:b@c", None),
        ("not a url", "not a url", None),
    ],
)
def test_redact_url_masks_the_password_only(url: str, shown: str, password: str | None) -> None:
    assert redact_url(url) == shown
    assert url_password(url) == password


def test_redact_headers_hides_credentials_and_shows_signatures() -> None:
    headers = {
        "Authorization": "Bearer t",
        "Proxy-Authorization": "Basic x",
        "Cookie": "c=1",
        "X-Api-Key": "k",
        "X-Auth-Token": "t",
        "X-Client-Secret": "s",
        "X-Password": "p",
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,abc=",
        "X-Webhook-Signature": "sha256=00ff",
        "x-wh-signature": "c2ln",
        "X-Team": "core",
    }
    shown = redact_headers(headers)
    hidden = {k for k, v in shown.items() if v == "[redacted]"}
    assert hidden == {
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "X-Client-Secret",
        "X-Password",
    }
    assert {k: v for k, v in shown.items() if k not in hidden} == {
        k: v for k, v in headers.items() if k not in hidden
    }


def test_the_log_guard_masks_url_passwords() -> None:
    event: dict[str, Any] = {"event": "x", "url": "https://u:pw@h/", "token": "t", "n": 1}
    assert logs._redact(None, "info", event) == {
        "event": "x",
        "url": "https://u:***@h/",
        "token": "[redacted]",
        "n": 1,
    }
