"""``hookd receive`` verifies real deliveries from a real daemon, for every built-in scheme."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookd import signing
from tests.support import (
    Daemon,
    Running,
    assert_one_line_error,
    config,
    endpoint,
    hookd,
    receiver_url,
    running,
    running_daemon,
)

pytestmark = pytest.mark.slow  # every test here runs python -m hookd

QUICK = "  quick: {delays: [100ms]}\n"


@contextlib.asynccontextmanager
async def receive_and_daemon(
    tmp_path: Path, signing_yaml: str, *receive_args: str
) -> AsyncIterator[tuple[Running, Daemon]]:
    """``hookd receive --port 0 ARGS`` and an in-process daemon whose endpoint points at it."""
    async with running("receive", "--port", "0", *receive_args) as rx:
        url = await receiver_url(rx)
        signing = "{" + ", ".join(signing_yaml.strip().splitlines()) + "}"
        text = config(
            endpoint("rx", url + "/hook", policy="quick", signing=signing), policies=QUICK
        )
        async with running_daemon(tmp_path, text) as d:
            yield rx, d


async def _one_delivery(rx: Running, d: Daemon, verdict: str) -> str:
    """Post an event; the receiver's verdict line for it (and check the block around it)."""
    status, body = await d.post_event("task.updated", {"n": 7})
    assert status == 202, body
    line = await rx.wait_line(lambda s: s.strip().startswith(verdict))
    await rx.wait_line(lambda s: '"n": 7' in s)
    if "webhook-id" in rx.text:
        assert f"webhook-id: {body['id']}" in rx.text
    return line


async def test_standard_webhooks_whsec_delivery_is_valid(tmp_path: Path) -> None:
    secret = signing.generate_standard_secret()
    signed = f'scheme: standard-webhooks\nsecret: "{secret}"'
    async with receive_and_daemon(tmp_path, signed, "--secret", secret) as (rx, d):
        line = await _one_delivery(rx, d, "Valid")
        assert "v1 signature matches" in line
        assert any(s.strip().startswith("webhook-timestamp: ") for s in rx.lines)


async def test_standard_webhooks_ed25519_delivery_is_valid(tmp_path: Path) -> None:
    private, public = signing.generate_ed25519()
    signed = f'scheme: standard-webhooks\nsecret: "{private}"'
    async with receive_and_daemon(tmp_path, signed, "--public-key", public) as (rx, d):
        assert "v1a signature matches" in await _one_delivery(rx, d, "Valid")


async def test_hmac_sha256_delivery_is_valid(tmp_path: Path) -> None:
    signed = "scheme: hmac-sha256\nsecret: topsecret"
    args = ("--scheme", "hmac-sha256", "--secret", "topsecret")
    async with receive_and_daemon(tmp_path, signed, *args) as (rx, d):
        assert "X-Webhook-Signature" in await _one_delivery(rx, d, "Valid")


async def test_rsa_sha256_delivery_is_valid_with_the_public_key(tmp_path: Path) -> None:
    private_pem, public_pem = signing.generate_rsa()
    (tmp_path / "key.pem").write_bytes(private_pem)
    (tmp_path / "key.pem.pub").write_bytes(public_pem)
    signed = f"scheme: rsa-sha256\nprivate_key_file: {tmp_path / 'key.pem'}"
    args = ("--scheme", "rsa-sha256", "--public-key", str(tmp_path / "key.pem.pub"))
    async with receive_and_daemon(tmp_path, signed, *args) as (rx, d):
        assert "x-wh-signature" in await _one_delivery(rx, d, "Valid")


async def test_a_wrong_secret_is_reported_invalid(tmp_path: Path) -> None:
    signed = f'scheme: standard-webhooks\nsecret: "{signing.generate_standard_secret()}"'
    other = signing.generate_standard_secret()
    async with receive_and_daemon(tmp_path, signed, "--secret", other) as (rx, d):
        line = await _one_delivery(rx, d, "INVALID")
        assert "no matching signature" in line
        code, _ = await rx.stop(signal.SIGINT)
        assert code == 0
        assert "1 received, 0 valid, 1 invalid" in rx.lines[-1]


async def test_status_sequence_and_delay_are_honoured(tmp_path: Path) -> None:
    """--status 500,200: the first attempt gets 500, the retry 200; --delay holds each answer."""
    signed = "scheme: hmac-sha256\nsecret: s3cret"
    args = ("--scheme", "hmac-sha256", "--secret", "s3cret", "--status", "500,200")
    async with receive_and_daemon(tmp_path, signed, *args, "--delay", "200ms") as (rx, d):
        _, body = await d.post_event("task.updated")
        [got] = await d.shown_settled(body["deliveries"][0]["id"], within=15)
        assert got["status"] == "succeeded"
        assert [a["status_code"] for a in got["attempts"]] == [500, 200]
        assert all(a["latency_ms"] >= 200 for a in got["attempts"])
        heads = [line for line in rx.lines if line.startswith("#")]
        assert [(h.split()[0], h.split()[-1]) for h in heads] == [("#1", "500"), ("#2", "200")]

        code, err = await rx.stop(signal.SIGTERM)
        assert code == 0, err
        assert rx.lines[-1] == "hookd receive: stopped; 2 received, 2 valid"


async def test_without_a_key_requests_are_printed_unverified(tmp_path: Path) -> None:
    async with receive_and_daemon(tmp_path, "scheme: hmac-sha256\nsecret: x") as (rx, d):
        line = await _one_delivery(rx, d, "unverified")
        assert "no --secret or --public-key" in line
        port = (await receiver_url(rx)).rsplit(":", 1)[1]
        taken = await hookd("receive", "--port", port)
        assert_one_line_error(taken, 1, f"cannot listen on 127.0.0.1:{port}")


async def test_unusable_key_material_is_a_usage_error() -> None:
    result = await hookd("receive", "--port", "0", "--scheme", "rsa-sha256", "--secret", "nope")
    assert_one_line_error(result, 2, "--secret")
    result = await hookd("receive", "--port", "0", "--secret", "not base64!")
    assert_one_line_error(result, 2, "--secret", "whsec_")
