"""Secrets at rest: AES-256-GCM bound to the endpoint id."""

from __future__ import annotations

import base64

import pytest

from hookd.errors import HookdError
from hookd.secretbox import SecretBox, SecretBoxError, generate_key_text
from tests.support import SECRET


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_text(generate_key_text())


def test_seal_open_roundtrip(box: SecretBox) -> None:
    token = box.seal(SECRET, aad=b"ep_1")
    assert token.startswith("v1:")
    assert SECRET not in token
    assert box.open(token, aad=b"ep_1") == SECRET


def test_each_seal_uses_a_fresh_nonce(box: SecretBox) -> None:
    assert box.seal(SECRET) != box.seal(SECRET)


def test_token_is_nonce_plus_ciphertext_plus_tag(box: SecretBox) -> None:
    blob = base64.b64decode(box.seal("abc").removeprefix("v1:"))
    assert len(blob) == 12 + 3 + 16


def test_wrong_key_fails(box: SecretBox) -> None:
    token = box.seal(SECRET, aad=b"ep_1")
    other = SecretBox.from_text(generate_key_text())
    with pytest.raises(SecretBoxError, match="wrong key, wrong endpoint, or tampered"):
        other.open(token, aad=b"ep_1")


def test_wrong_aad_fails_so_a_secret_cannot_move_endpoints(box: SecretBox) -> None:
    token = box.seal(SECRET, aad=b"ep_1")
    with pytest.raises(SecretBoxError):
        box.open(token, aad=b"ep_2")


@pytest.mark.parametrize("position", [0, 12, -1])
def test_tampered_token_fails(box: SecretBox, position: int) -> None:
    blob = bytearray(base64.b64decode(box.seal(SECRET).removeprefix("v1:")))
    blob[position] ^= 0x01
    with pytest.raises(SecretBoxError):
        box.open("v1:" + base64.b64encode(bytes(blob)).decode())


@pytest.mark.parametrize(
    ("token", "message"),
    [("v2:AAAA", "'v1:' prefix"), ("v1:@@@", "base64"), ("v1:AAAA", "truncated")],
)
def test_malformed_tokens_fail_clearly(box: SecretBox, token: str, message: str) -> None:
    with pytest.raises(SecretBoxError, match=message):
        box.open(token)


def test_errors_share_the_root_exception() -> None:
    assert issubclass(SecretBoxError, HookdError)


def test_from_text_base64_key_is_the_key_itself() -> None:
    key = bytes(range(32))
    text = base64.b64encode(key).decode()
    token = SecretBox(key).seal(SECRET)
    assert SecretBox.from_text(text).open(token) == SECRET
    assert SecretBox.from_text(f"  {text}\n").open(token) == SECRET


def test_from_text_passphrase_derives_a_stable_key() -> None:
    token = SecretBox.from_text("a long passphrase that is not base64!").seal(SECRET)
    assert SecretBox.from_text("a long passphrase that is not base64!").open(token) == SECRET
    with pytest.raises(SecretBoxError):
        SecretBox.from_text("another long passphrase, not base64").open(token)


def test_generated_key_text_is_base64_of_32_bytes() -> None:
    text = generate_key_text()
    assert len(base64.b64decode(text, validate=True)) == 32
    assert text != generate_key_text()


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")
    with pytest.raises(ValueError, match="empty"):
        SecretBox.from_text("   ")


def test_repr_hides_the_key() -> None:
    key = bytes(range(32))
    box = SecretBox(key)
    assert repr(box) == "SecretBox(<key hidden>)"
    assert base64.b64encode(key).decode() not in repr(box)
    assert not hasattr(box, "__dict__")
