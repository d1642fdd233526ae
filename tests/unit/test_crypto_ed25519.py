"""Strict Ed25519: small-order and non-canonical keys and signatures are refused (issue 13 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from blindmatch.crypto import ed25519
from blindmatch.crypto.sodium import sodium_version

CASES = json.loads((Path(__file__).resolve().parents[1] / "data" / "ed25519-speccheck-cases.json").read_text())["cases"]
IDENTITY = bytes([1]) + bytes(31)  # the Edwards identity (0, 1)
FORGERY = IDENTITY + bytes(32)  # R = identity, S = 0
SMALL_ORDER_KEYS = {
    "identity": IDENTITY,
    "order 2 (y = -1)": (2**255 - 20).to_bytes(32, "little"),
    "order 4 (y = 0)": bytes(32),
    "order 4 (y = 0, sign bit set)": bytes(31) + b"\x80",
    "order 8": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    "order 8 (other sign)": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    "identity, non-canonical y = p + 1": (2**255 - 18).to_bytes(32, "little"),
}
# RFC 8032 section 7.1, TEST 1 (empty message).
RFC8032_KEY = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def test_bundled_libsodium_has_strict_verify() -> None:
    major, minor, patch = (int(x) for x in sodium_version().split("."))
    assert (major, minor, patch) >= (1, 0, 16)


def test_plain_verification_accepts_the_identity_key_forgery() -> None:
    """Why this module exists: ``cryptography`` alone accepts R = identity, S = 0 for the identity key."""
    for message in (b"", b"grant every request"):
        Ed25519PublicKey.from_public_bytes(IDENTITY).verify(FORGERY, message)
        assert not ed25519.verify_strict(IDENTITY, FORGERY, message)


@pytest.mark.parametrize("name", sorted(SMALL_ORDER_KEYS))
def test_small_order_keys_refused_on_load_with_the_callers_name(name: str) -> None:
    with pytest.raises(ed25519.WeakPublicKeyError, match=r"^official 'Ames' key is (not an Ed25519 point of the prime-order subgroup|a non-canonical)"):
        ed25519.load_public_key_strict(SMALL_ORDER_KEYS[name], what="official 'Ames' key")
    assert not ed25519.verify_strict(SMALL_ORDER_KEYS[name], FORGERY, b"any message")


def test_wrong_length_key_refused() -> None:
    with pytest.raises(ed25519.WeakPublicKeyError, match="must be 32 bytes, got 31"):
        ed25519.load_public_key_strict(RFC8032_KEY[:31], what="k")


@pytest.mark.parametrize("index", range(len(CASES)), ids=lambda i: f"case{i}")
def test_speccheck_case_rejected_by_a_strict_rule(index: int) -> None:
    case = CASES[index]
    key, sig, msg = (bytes.fromhex(case[f]) for f in ("pub_key", "signature", "message"))
    assert not ed25519.verify_strict(key, sig, msg)
    weak_key = not ed25519.is_strict_point(key)
    weak_r = not ed25519.is_strict_point(sig[:32])
    big_s = int.from_bytes(sig[32:], "little") >= ed25519.GROUP_ORDER
    assert weak_key or weak_r or big_s, case["condition"]
    if weak_key:
        with pytest.raises(ed25519.WeakPublicKeyError):
            ed25519.load_public_key_strict(key, what=f"speccheck case {index}")


def test_speccheck_conditions_map_to_the_rule_that_catches_them() -> None:
    for case in CASES:
        key, sig = bytes.fromhex(case["pub_key"]), bytes.fromhex(case["signature"])
        condition = case["condition"]
        if "small-order A" in condition or "mixed-order A" in condition:
            assert not ed25519.is_strict_point(key), condition
        if "small-order R" in condition or "mixed-order R" in condition:
            assert not ed25519.is_strict_point(sig[:32]), condition
        if condition.startswith("S >"):
            assert ed25519.is_strict_point(key) and int.from_bytes(sig[32:], "little") >= ed25519.GROUP_ORDER


def test_valid_signatures_still_verify() -> None:
    assert ed25519.verify_strict(RFC8032_KEY, RFC8032_SIG, b"")
    assert not ed25519.verify_strict(RFC8032_KEY, RFC8032_SIG, b"x")
    private = Ed25519PrivateKey.generate()
    public = ed25519.load_public_key_strict(private.public_key().public_bytes_raw(), what="fresh key")
    signature = private.sign(b"session request")
    assert ed25519.verify_strict(public, signature, b"session request")
    assert not ed25519.verify_strict(public, signature, b"another request")
    assert not ed25519.verify_strict(public, signature[:63], b"session request")


def test_non_canonical_s_refused_even_though_the_equation_holds() -> None:
    """S + L satisfies the verification equation; strict verification refuses it."""
    s_plus_l = (int.from_bytes(RFC8032_SIG[32:], "little") + ed25519.GROUP_ORDER).to_bytes(32, "little")
    assert not ed25519.verify_strict(RFC8032_KEY, RFC8032_SIG[:32] + s_plus_l, b"")
