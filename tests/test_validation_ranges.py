"""Values are checked for form and range by one set of parsers (hookd/config/values.py), so the
YAML (``FILE:LINE: path: message``) and the admin API (400 with ``field``) agree: RFC 3339
timestamps, rates, durations, standard-webhooks secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hookd.config import parse, values
from hookd.errors import ConfigError
from tests.support import Daemon, Receiver, running_daemon

ADMIN = "admin-token-0123456789"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SHORT_SECRET = "whsec_YWJj"  # 3 bytes
CONFIG = f"""
listen: 127.0.0.1:{{port}}
storage: {{{{path: {{db}}}}}}
delivery: {{{{allow_private_networks: true}}}}
auth: {{{{admin_tokens: [{ADMIN}]}}}}
endpoints:
  - id: a
    url: URL
    signing: {{{{secret: {SECRET}}}}}
"""


@pytest.fixture
async def daemon(tmp_path: Path, sink: Receiver) -> AsyncIterator[Daemon]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with running_daemon(tmp_path, CONFIG.replace("URL", sink.url), headers=headers) as d:
        yield d


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, source="h.yaml", env={})
    return caught.value.problems


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"),
        ("2026-01-02t03:04:05z", "2026-01-02T03:04:05.000Z"),
        ("2026-01-02T03:04:05.123456789+01:30", "2026-01-02T01:34:05.123Z"),
        ("2026-01-02T03:04:05-00:00", "2026-01-02T03:04:05.000Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z"),  # a leap second
    ],
)
async def test_rfc3339_timestamps_are_accepted(daemon: Daemon, text: str, expected: str) -> None:
    status, answer = await daemon.post_event("x", {}, timestamp=text)
    assert status == 202, answer
    _, event = await daemon.request("GET", f"/v1/events/{answer['id']}")
    assert event["timestamp"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "20260101T000000Z",
        "2026-01-02 03:04:05Z",
        "2026-01-02T03:04Z",
        "2026-01-02T03:04:05",
        "2026-01-02T03:04:05+0100",
        "2026-01-02T03:04:05+24:00",
        "2026-02-30T03:04:05Z",
        "2026-W01-1T00:00:00Z",
        "２０２６-01-02T03:04:05Z",
    ],
)
async def test_timestamps_that_are_not_rfc3339_are_refused(daemon: Daemon, text: str) -> None:
    status, answer = await daemon.post_event("x", {}, timestamp=text)
    assert (status, answer["error"]["field"]) == (400, "timestamp"), answer
    status, answer = await daemon.request(
        "POST", "/v1/endpoints/a/replay", json={"since": text, "status": "all"}
    )
    assert (status, answer["error"]["field"]) == (400, "since"), answer


def test_the_shared_timestamp_parser() -> None:
    assert values.parse_timestamp("2026-01-02t03:04:05+01:00") == datetime(
        2026, 1, 2, 2, 4, 5, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="RFC 3339"):
        values.parse_timestamp("20260101T000000Z")


# --------------------------------------------------------------------------- rates


async def test_a_rate_that_would_wait_forever_is_refused_by_api_and_yaml(
    daemon: Daemon, sink: Receiver
) -> None:
    for rate in (1e-300, 0.0001, "0.01/m", "1e-300/s"):
        status, answer = await daemon.request(
            "POST", "/v1/endpoints", json={"url": sink.url, "rate_limit": rate}
        )
        assert (status, answer["error"]["field"]) == (400, "rate_limit"), (rate, answer)
    status, answer = await daemon.request(
        "POST", "/v1/endpoints", json={"url": sink.url, "rate_limit": "1/h"}
    )
    assert status == 201, answer
    ep = f"endpoints:\n  - id: a\n    url: https://x.example/\n    signing: {{secret: {SECRET}}}\n"
    assert problems_of(ep + "    rate_limit: 0.0000001/s\n") == [
        "h.yaml:5: endpoints[0].rate_limit: a rate is at least 1/h and at most 1000000/s, "
        "got '0.0000001/s'"
    ]


# --------------------------------------------------------------------------- secrets


async def test_a_three_byte_whsec_secret_is_refused_by_api_and_yaml(
    daemon: Daemon, sink: Receiver
) -> None:
    status, answer = await daemon.request(
        "POST", "/v1/endpoints", json={"url": sink.url, "signing": {"secret": SHORT_SECRET}}
    )
    assert (status, answer["error"]["field"]) == (400, "signing.secret"), answer
    assert "at least 24 bytes" in answer["error"]["message"]
    status, created = await daemon.request("POST", "/v1/endpoints", json={"url": sink.url})
    assert status == 201
    status, answer = await daemon.request(
        "POST", f"/v1/endpoints/{created['id']}/rotate-secret", json={"secret": SHORT_SECRET}
    )
    assert (status, answer["error"]["field"]) == (400, "secret"), answer
    ep = "endpoints:\n  - id: a\n    url: https://x.example/\n"
    assert problems_of(ep + f"    signing: {{secret: {SHORT_SECRET}}}\n") == [
        "h.yaml:4: endpoints[0].signing.secret: a standard-webhooks secret holds at least 24 "
        "bytes (this one 3); make one with `hookd keygen standard-webhooks`"
    ]


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("yaml_text", "line", "path", "message"),
    [
        ("policies: {p: {timeout: 99999999999d}}\n", 1, "policies.p.timeout", "at most 1h"),
        ("policies: {p: {delays: [1s, 1000000d]}}\n", 1, "policies.p.delays", "at most 30d"),
        ("policies: {p: {retry_after_max: 400d}}\n", 1, "policies.p.retry_after_max", "30d"),
        (
            "policies:\n  p:\n    backoff: {initial: 1s, factor: 1.0e+308, attempts: 5}\n",
            3,
            "policies.p.backoff.factor",
            "at most 100",
        ),
        (
            "policies:\n  p:\n    backoff: {initial: 1s, attempts: 1000000000}\n",
            3,
            "policies.p.backoff.attempts",
            "from 1 to 1000",
        ),
        ("policies: {p: {jitter: 0s..400d}}\n", 1, "policies.p.jitter", "at most 1d"),
        ("shutdown_timeout: 1000000h\n", 1, "shutdown_timeout", "at most 1h"),
        ("storage: {retention: 100000d}\n", 1, "storage.retention", "at most 3650d"),
        ("limits: {header_timeout: 2h}\n", 1, "limits.header_timeout", "at most 1h"),
    ],
)
def test_absurd_durations_are_config_problems(
    yaml_text: str, line: int, path: str, message: str
) -> None:
    [problem] = problems_of(yaml_text)
    assert problem.startswith(f"h.yaml:{line}: {path}: "), problem
    assert message in problem


def test_durations_at_the_bounds_are_accepted() -> None:
    config = parse(
        "shutdown_timeout: 1h\nstorage: {retention: 3650d}\n"
        "policies: {p: {timeout: 1h, delays: [30d], retry_after_max: 30d, jitter: 0s..1d}}\n",
        source="h.yaml",
        env={},
    )
    assert config.policies["p"].delays == (30 * 86400.0,)
