"""``hookd keygen`` makes material that hookd's signers and verifiers accept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from hookd import signing
from hookd.registry import Message, SignerConfig, SigningKey
from tests.support import assert_one_line_error, run_hookd

pytestmark = pytest.mark.slow  # every test here runs python -m hookd


def test_standard_webhooks_prints_a_whsec_secret() -> None:
    result = run_hookd("keygen", "standard-webhooks")
    assert result.code == 0
    [secret] = result.out.split()
    assert secret.startswith("whsec_")
    signer = signing.standard_webhooks_factory(_signer_config(secret))
    headers = signer.sign(Message(event_id="e", delivery_id="d", timestamp=1, body=b"{}"), 1.0)
    assert signing.verify("standard-webhooks", headers, b"{}", secret=secret, now=1.0)[0]


def test_ed25519_prints_a_whsk_key_then_its_whpk_public_key() -> None:
    result = run_hookd("keygen", "ed25519")
    assert result.code == 0
    private, public = result.out.split()
    assert private.startswith("whsk_")
    assert public.startswith("whpk_")
    signer = signing.standard_webhooks_factory(_signer_config(private))
    assert signer.public_keys() == [public]


def test_rsa_writes_a_private_key_and_a_pub_file(tmp_path: Path) -> None:
    out = tmp_path / "crm.pem"
    result = run_hookd("keygen", "rsa", "--out", str(out))
    assert result.code == 0, result.err
    private = serialization.load_pem_private_key(out.read_bytes(), password=None)
    public = serialization.load_pem_public_key(Path(f"{out}.pub").read_bytes())
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_misuse_is_a_one_line_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(run_hookd("keygen", "ed25519", "--out", "x"), 2, "--out")
    assert_one_line_error(run_hookd("keygen", "rsa", "--bits", "1024"), 2, "2048")
    assert_one_line_error(run_hookd("keygen", "dsa"), 2, "invalid choice")
    unwritable = run_hookd("keygen", "rsa", "--out", str(tmp_path / "no" / "such" / "k.pem"))
    assert_one_line_error(unwritable, 1, "cannot write")


def _signer_config(material: str) -> SignerConfig:
    return SignerConfig(scheme="standard-webhooks", keys=(SigningKey(material=material),))
