"""Signing schemes, cross-checked against verification code nobody here wrote."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import pytest
import standardwebhooks.webhooks
import svix.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hookd import signing
from hookd.builtin import builtin_registry
from hookd.registry import Message, Registry, Signer, SignerConfig, SigningKey
from hookd.signing import common, rsa_sha256
from tests.support import SECRET

BODY = b'{"type":"user.created","timestamp":"2024-05-01T12:00:00Z","data":{"name":"Zo\xc3\xab"}}'
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def _msg(timestamp: int | None = None, body: bytes = BODY, event_id: str = "evt_1") -> Message:
    ts = int(time.time()) if timestamp is None else timestamp
    return Message(event_id=event_id, delivery_id="dlv_1", timestamp=ts, body=body)


def _signer(scheme: str, *keys: SigningKey, header: str | None = None) -> Signer:
    return builtin_registry().signers[scheme](SignerConfig(scheme=scheme, keys=keys, header=header))


def _std(*materials: str) -> Signer:
    return _signer(signing.STANDARD_WEBHOOKS, *(SigningKey(material=m) for m in materials))


LibVerify = Callable[[str, bytes, dict[str, str]], None]


def _verify_standardwebhooks(secret: str, body: bytes, headers: dict[str, str]) -> None:
    standardwebhooks.webhooks.Webhook(secret).verify(body, headers)


def _verify_svix(secret: str, body: bytes, headers: dict[str, str]) -> None:
    svix.webhooks.Webhook(secret).verify(body, headers)


LIBRARIES = pytest.mark.parametrize(
    ("lib_verify", "lib_error"),
    [
        pytest.param(
            _verify_standardwebhooks,
            standardwebhooks.webhooks.WebhookVerificationError,
            id="standardwebhooks",
        ),
        pytest.param(_verify_svix, svix.webhooks.WebhookVerificationError, id="svix"),
    ],
)


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    """Two RSA-2048 private keys (PKCS#8 PEM), made once: RSA keygen is slow."""
    return signing.generate_rsa()[0].decode(), signing.generate_rsa()[0].decode()


def _rsa_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


# --- standard-webhooks ----------------------------------------------------------------------


def test_register_adds_the_three_builtin_schemes() -> None:
    registry = Registry()
    signing.register(registry)
    assert set(registry.signers) == {"standard-webhooks", "hmac-sha256", "rsa-sha256"}


def test_standard_webhooks_headers_name_the_event_and_attempt_time() -> None:
    headers = _std(SECRET).sign(_msg(1_714_564_800), now=0)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == "1714564800"
    assert headers["webhook-signature"].startswith("v1,")


@LIBRARIES
def test_libraries_verify_standard_webhooks_hmac(lib_verify: LibVerify, lib_error: type) -> None:
    """The headers and body exactly as hookd produces them pass the reference libraries."""
    headers = _std(SECRET).sign(_msg(), now=time.time())
    lib_verify(SECRET, BODY, headers)


@LIBRARIES
def test_libraries_verify_bare_base64_secret(lib_verify: LibVerify, lib_error: type) -> None:
    """A secret without whsec_ is base64-decoded, as the libraries decode a string secret."""
    bare = SECRET.removeprefix("whsec_")
    lib_verify(bare, BODY, _std(bare).sign(_msg(), now=time.time()))


@LIBRARIES
def test_libraries_reject_tampered_body(lib_verify: LibVerify, lib_error: type) -> None:
    headers = _std(SECRET).sign(_msg(), now=time.time())
    with pytest.raises(lib_error, match="No matching signature"):
        lib_verify(SECRET, BODY.replace(b"Zo", b"Zu"), headers)


@LIBRARIES
def test_timestamp_is_per_attempt(lib_verify: LibVerify, lib_error: type) -> None:
    """A 10-minute-old signature fails the 5-minute tolerance; re-signing as a retry does passes."""
    signer = _std(SECRET)
    stale = signer.sign(_msg(int(time.time()) - 600), now=time.time())
    with pytest.raises(lib_error, match="too old"):
        lib_verify(SECRET, BODY, stale)
    fresh = signer.sign(_msg(), now=time.time())
    assert fresh["webhook-id"] == stale["webhook-id"]
    lib_verify(SECRET, BODY, fresh)


@LIBRARIES
def test_rotation_grace_sends_one_signature_per_live_secret(
    lib_verify: LibVerify, lib_error: type
) -> None:
    now = time.time()
    signer = _signer(
        signing.STANDARD_WEBHOOKS,
        SigningKey(material=SECRET),
        SigningKey(material=OLD_SECRET, expires_at=now + 3600),
    )
    during = signer.sign(_msg(), now=now)
    assert len(during["webhook-signature"].split(" ")) == 2
    lib_verify(SECRET, BODY, during)
    lib_verify(OLD_SECRET, BODY, during)

    after = signer.sign(_msg(), now=now + 3601)
    assert len(after["webhook-signature"].split(" ")) == 1
    lib_verify(SECRET, BODY, after)
    with pytest.raises(lib_error, match="No matching signature"):
        lib_verify(OLD_SECRET, BODY, after)


def test_rotation_signatures_are_newest_first() -> None:
    now = time.time()
    headers = _std(SECRET, OLD_SECRET).sign(_msg(int(now)), now=now)
    first, second = headers["webhook-signature"].split(" ")
    for signature, secret, other in ((first, SECRET, OLD_SECRET), (second, OLD_SECRET, SECRET)):
        alone = {**headers, "webhook-signature": signature}
        assert signing.verify("standard-webhooks", alone, BODY, secret=secret, now=now)[0]
        assert not signing.verify("standard-webhooks", alone, BODY, secret=other, now=now)[0]


def test_ed25519_v1a_matches_the_spec_construction() -> None:
    """v1a is ed25519 over f"{id}.{ts}.{body}", checked with cryptography directly."""
    whsk, whpk = signing.generate_ed25519()
    signer = _std(whsk)
    headers = signer.sign(_msg(1_714_564_800), now=0)
    version, encoded = headers["webhook-signature"].split(",")
    assert version == "v1a"
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))
    public.verify(base64.b64decode(encoded), b"evt_1.1714564800." + BODY)
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(encoded), b"evt_1.1714564800." + BODY + b" ")
    assert signer.public_keys() == [whpk]
    assert signer.blocking is False


def test_mixed_hmac_and_ed25519_keys_each_sign() -> None:
    whsk, whpk = signing.generate_ed25519()
    headers = _std(whsk, SECRET).sign(_msg(), now=time.time())
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1a", "v1"]
    assert signing.verify("standard-webhooks", headers, BODY, public_key=whpk)[0]
    assert signing.verify("standard-webhooks", headers, BODY, secret=whsk)[0]
    assert signing.verify("standard-webhooks", headers, BODY, secret=SECRET)[0]


def test_own_verify_standard_webhooks_reasons() -> None:
    """hookd's own Standard Webhooks check says why it refuses: another body, a timestamp out of
    tolerance, another secret, a missing header."""
    now = 1_714_564_800.0
    headers = _std(SECRET).sign(_msg(int(now)), now=now)
    assert signing.verify("standard-webhooks", headers, BODY, secret=SECRET, now=now) == (
        True,
        "v1 signature matches",
    )
    ok, reason = signing.verify("standard-webhooks", headers, BODY + b"x", secret=SECRET, now=now)
    assert (ok, reason) == (False, "no matching signature")
    ok, reason = signing.verify("standard-webhooks", headers, BODY, secret=SECRET, now=now + 301)
    assert not ok
    assert "too old" in reason
    ok, reason = signing.verify("standard-webhooks", headers, BODY, secret=SECRET, now=now - 301)
    assert not ok
    assert "too new" in reason
    assert signing.verify(
        "standard-webhooks", headers, BODY, secret=SECRET, now=now + 9999, tolerance=None
    )[0]
    assert not signing.verify("standard-webhooks", headers, BODY, secret=OLD_SECRET, now=now)[0]
    missing = {k: v for k, v in headers.items() if k != "webhook-id"}
    assert signing.verify("standard-webhooks", missing, BODY, secret=SECRET, now=now) == (
        False,
        "missing webhook-id header",
    )


def test_own_verify_accepts_any_header_case_and_svix_names() -> None:
    now = 1_714_564_800.0
    headers = _std(SECRET).sign(_msg(int(now)), now=now)
    svix_style = {k.replace("webhook-", "Svix-"): v for k, v in headers.items()}
    assert signing.verify("standard-webhooks", svix_style, BODY, secret=SECRET, now=now)[0]


# --- hmac-sha256 ----------------------------------------------------------------------------


def test_hmac_sha256_is_prefixed_hex_of_the_raw_body() -> None:
    signer = _signer("hmac-sha256", SigningKey(material="s3cret"))
    headers = signer.sign(_msg(), now=time.time())
    expected = "sha256=" + hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert list(headers) == ["X-Webhook-Signature"]
    assert hmac.compare_digest(headers["X-Webhook-Signature"], expected)
    assert signer.public_keys() == []
    assert signer.blocking is False


def test_hmac_sha256_uses_whole_whsec_text_as_key() -> None:
    headers = _signer("hmac-sha256", SigningKey(material=SECRET)).sign(_msg(), now=0)
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == expected


def test_hmac_sha256_header_and_prefix_are_configurable() -> None:
    config = SignerConfig(
        scheme="hmac-sha256", keys=(SigningKey(material="k"),), header="X-Sig", prefix=""
    )
    headers = signing.hmac_sha256_factory(config).sign(_msg(), now=0)
    assert headers == {"X-Sig": hmac.new(b"k", BODY, hashlib.sha256).hexdigest()}


def test_hmac_sha256_rotation_grace_uses_previous_header() -> None:
    now = 1_000.0
    signer = _signer(
        "hmac-sha256",
        SigningKey(material="new"),
        SigningKey(material="old", expires_at=now + 60),
    )
    during = signer.sign(_msg(), now=now)
    assert during["X-Webhook-Signature"] == (
        "sha256=" + hmac.new(b"new", BODY, hashlib.sha256).hexdigest()
    )
    assert during["X-Webhook-Signature-Previous"] == (
        "sha256=" + hmac.new(b"old", BODY, hashlib.sha256).hexdigest()
    )
    assert signing.verify("hmac-sha256", during, BODY, secret="old") == (
        True,
        "signature in X-Webhook-Signature-Previous matches",
    )
    after = signer.sign(_msg(), now=now + 60)
    assert "X-Webhook-Signature-Previous" not in after
    assert not signing.verify("hmac-sha256", after, BODY, secret="old")[0]


def test_own_verify_hmac_sha256() -> None:
    """hookd's own hmac-sha256 check accepts its signature (any header case) and refuses another
    body, key or a missing header."""
    headers = _signer("hmac-sha256", SigningKey(material="k")).sign(_msg(), now=0)
    lower = {k.lower(): v for k, v in headers.items()}
    assert signing.verify("hmac-sha256", lower, BODY, secret="k")[0]
    assert not signing.verify("hmac-sha256", headers, BODY + b" ", secret="k")[0]
    assert not signing.verify("hmac-sha256", headers, BODY, secret="other")[0]
    assert signing.verify("hmac-sha256", {}, BODY, secret="k") == (
        False,
        "missing X-Webhook-Signature header",
    )


# --- rsa-sha256 -----------------------------------------------------------------------------


def test_rsa_sha256_verifies_with_cryptography(rsa_pems: tuple[str, str]) -> None:
    pem, _ = rsa_pems
    signer = _signer("rsa-sha256", SigningKey(material=pem))
    headers = signer.sign(_msg(), now=time.time())
    assert list(headers) == ["x-wh-signature"]
    signature = base64.b64decode(headers["x-wh-signature"])
    _rsa_public(pem).verify(signature, BODY, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        _rsa_public(pem).verify(signature, BODY + b" ", padding.PKCS1v15(), hashes.SHA256())
    assert signer.blocking is True


def test_rsa_public_keys_are_spki_pem(rsa_pems: tuple[str, str]) -> None:
    pem, _ = rsa_pems
    (published,) = _signer("rsa-sha256", SigningKey(material=pem)).public_keys()
    assert published.startswith("-----BEGIN PUBLIC KEY-----")
    loaded = serialization.load_pem_public_key(published.encode())
    assert isinstance(loaded, rsa.RSAPublicKey)
    assert loaded.public_numbers() == _rsa_public(pem).public_numbers()


def test_rsa_rotation_grace_uses_previous_header(rsa_pems: tuple[str, str]) -> None:
    new, old = rsa_pems
    now = 1_000.0
    signer = _signer(
        "rsa-sha256", SigningKey(material=new), SigningKey(material=old, expires_at=now + 60)
    )
    during = signer.sign(_msg(), now=now)
    for header, pem in (("x-wh-signature", new), ("x-wh-signature-Previous", old)):
        signature = base64.b64decode(during[header])
        _rsa_public(pem).verify(signature, BODY, padding.PKCS1v15(), hashes.SHA256())
    assert len(signer.public_keys()) == 1  # the old key's grace ended long ago in real time
    after = signer.sign(_msg(), now=now + 61)
    assert set(after) == {"x-wh-signature"}


def test_own_verify_rsa_sha256(rsa_pems: tuple[str, str]) -> None:
    """hookd's own rsa-sha256 check accepts the public (or private) key and refuses another body,
    key or a garbled signature."""
    pem, other = rsa_pems
    signer = _signer("rsa-sha256", SigningKey(material=pem))
    headers = signer.sign(_msg(), now=0)
    (public,) = signer.public_keys()
    assert signing.verify("rsa-sha256", headers, BODY, public_key=public)[0]
    assert signing.verify("rsa-sha256", headers, BODY, public_key=pem)[0]  # private: derived
    assert not signing.verify("rsa-sha256", headers, BODY + b" ", public_key=public)[0]
    assert not signing.verify("rsa-sha256", headers, BODY, public_key=other)[0]
    assert not signing.verify("rsa-sha256", {"x-wh-signature": "%%"}, BODY, public_key=pem)[0]


def test_rsa_retry_of_same_body_reuses_the_signature(
    rsa_pems: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The private key runs once for a body; a retry (new timestamp, same bytes) hits the cache."""
    cache = signing.SignatureCache(maxsize=8)
    monkeypatch.setattr(rsa_sha256, "_RSA_CACHE", cache)
    signer = _signer("rsa-sha256", SigningKey(material=rsa_pems[0]))
    first = signer.sign(_msg(1000), now=0)
    second = signer.sign(_msg(2000), now=0)
    assert first == second
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
    signer.sign(_msg(body=BODY + b" "), now=0)
    assert (cache.misses, len(cache)) == (2, 2)


def test_rsa_cache_keys_by_key_as_well_as_body(rsa_pems: tuple[str, str]) -> None:
    cache = signing.SignatureCache()
    keys = [common.Key(rsa_sha256.parse_rsa(pem), None) for pem in rsa_pems]
    one = signing.RsaSha256Signer(keys[:1], header="s", cache=cache).sign(_msg(), now=0)
    two = signing.RsaSha256Signer(keys[1:], header="s", cache=cache).sign(_msg(), now=0)
    assert one != two
    assert cache.misses == 2


def test_signature_cache_is_a_bounded_lru() -> None:
    cache = signing.SignatureCache(maxsize=2)
    cache.put((b"k", b"1"), "one")
    cache.put((b"k", b"2"), "two")
    assert cache.get((b"k", b"1")) == "one"  # 1 is now the most recent
    cache.put((b"k", b"3"), "three")
    assert len(cache) == 2
    assert cache.get((b"k", b"2")) is None
    assert cache.get((b"k", b"1")) == "one"


# --- key material -------------------------------------------------------------------------


def test_no_live_key_is_an_error() -> None:
    signer = _signer("hmac-sha256", SigningKey(material="k", expires_at=10.0))
    with pytest.raises(signing.SigningError, match="no live signing key"):
        signer.sign(_msg(), now=11.0)


@pytest.mark.parametrize(
    ("scheme", "material", "message"),
    [
        ("standard-webhooks", "whsec_not base64!!", "must be 'whsec_<base64>'"),
        ("standard-webhooks", "whsk_" + base64.b64encode(b"x" * 16).decode(), "32-byte"),
        ("standard-webhooks", "whpk_" + base64.b64encode(b"x" * 32).decode(), "public key"),
        ("standard-webhooks", "whsec_", "empty"),
        ("hmac-sha256", "", "empty"),
        ("hmac-sha256", "whsk_c2VjcmV0c2VjcmV0", "ed25519"),
        ("hmac-sha256", "-----BEGIN PRIVATE KEY-----\nabc\n", "rsa-sha256"),
        ("rsa-sha256", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n", "PEM"),
        ("rsa-sha256", "whsec_c2VjcmV0c2VjcmV0", "PEM"),
    ],
)
def test_bad_key_material_is_refused_without_echoing_it(
    scheme: str, material: str, message: str
) -> None:
    factory = builtin_registry().signers[scheme]
    with pytest.raises(ValueError, match=message) as info:
        factory(SignerConfig(scheme=scheme, keys=(SigningKey(material=material),)))
    secret_part = material.removeprefix("whsec_").removeprefix("whsk_").removeprefix("whpk_")
    if secret_part:
        assert secret_part not in str(info.value)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


@pytest.mark.parametrize(
    ("make_pem", "message"),
    [
        (lambda: _pem(rsa.generate_private_key(65537, 1024), None), "1024 bits; at least 2048"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1()), None), "needs an RSA private key"),
        (lambda: _pem(rsa.generate_private_key(65537, 2048), b"pw"), "encrypted"),
    ],
    ids=["rsa-1024", "ec", "encrypted"],
)
def test_rsa_factory_refuses_unsuitable_keys(make_pem: Callable[[], str], message: str) -> None:
    config = SignerConfig(scheme="rsa-sha256", keys=(SigningKey(material=make_pem()),))
    with pytest.raises(ValueError, match=message):
        signing.rsa_sha256_factory(config)


def test_bad_key_error_names_which_rotation_key() -> None:
    keys = (SigningKey(material=SECRET), SigningKey(material="whsec_!!"))
    with pytest.raises(ValueError, match=r"^key 2 of 2: "):
        signing.standard_webhooks_factory(SignerConfig(scheme="standard-webhooks", keys=keys))


def test_standard_webhooks_refuses_header_override() -> None:
    config = SignerConfig(
        scheme="standard-webhooks", keys=(SigningKey(material=SECRET),), header="X"
    )
    with pytest.raises(ValueError, match="fixed header names"):
        signing.standard_webhooks_factory(config)


def test_signers_never_show_secrets(rsa_pems: tuple[str, str]) -> None:
    whsk, _ = signing.generate_ed25519()
    for scheme, material in [
        ("standard-webhooks", SECRET),
        ("standard-webhooks", whsk),
        ("hmac-sha256", "plain-secret"),
        ("rsa-sha256", rsa_pems[0]),
    ]:
        key = SigningKey(material=material)
        signer = _signer(scheme, key)
        for text in (repr(signer), str(signer), repr(key)):
            assert material not in text
            assert material.removeprefix("whsec_").removeprefix("whsk_") not in text
        assert material not in repr(common.parse_all([key], lambda m: m.encode()))


# --- key generation -----------------------------------------------------------------------


def test_generate_standard_secret_is_svix_shaped() -> None:
    secret = signing.generate_standard_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert secret != signing.generate_standard_secret()
    standardwebhooks.webhooks.Webhook(secret)  # the library accepts it


def test_generate_ed25519_pair() -> None:
    """generate_ed25519 makes a whsk_ secret and its whpk_ public key, 32 bytes each."""
    whsk, whpk = signing.generate_ed25519()
    assert whsk.startswith("whsk_")
    assert whpk.startswith("whpk_")
    assert len(base64.b64decode(whsk[5:], validate=True)) == 32
    assert len(base64.b64decode(whpk[5:], validate=True)) == 32
    assert _std(whsk).public_keys() == [whpk]


def test_generate_rsa_pair(rsa_pems: tuple[str, str]) -> None:
    """generate_rsa makes a matching 2048-bit PKCS#8 private and SPKI public PEM, and refuses fewer
    bits."""
    private_pem, public_pem = signing.generate_rsa()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    private = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    with pytest.raises(ValueError, match="at least 2048"):
        signing.generate_rsa(1024)


def test_whsk_may_also_hold_seed_plus_public_key() -> None:
    """Some tools write ed25519 secret keys as 64 bytes (seed + public); both forms sign alike."""
    whsk, whpk = signing.generate_ed25519()
    seed = base64.b64decode(whsk[5:])
    long_form = "whsk_" + base64.b64encode(seed + base64.b64decode(whpk[5:])).decode()
    assert _std(long_form).sign(_msg(1), now=0) == _std(whsk).sign(_msg(1), now=0)
    mismatched = "whsk_" + base64.b64encode(seed + bytes(32)).decode()
    with pytest.raises(ValueError, match="seed \\+ its own public key"):
        _std(mismatched)
