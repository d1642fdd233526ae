"""Every place that loads an official or audit key, or checks their signatures, is strict."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import AuditKeyError, format_verifier_key, parse_verifier_key, verify_ed25519
from blindmatch.audit.verify import verify_log
from blindmatch.policy import Policy, PolicyError, open_envelope, sign_request, testvector
from blindmatch.policy.keys import OfficialKeyError, parse_public_key
from blindmatch.policy.request import verify_request_signature

IDENTITY = bytes([1]) + bytes(31)
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
FORGERY = IDENTITY + bytes(32)

POLICY = """\
[organisations."County Court"]
session_max_records = 5000
day_records = 20000
thirty_day_records = 200000
official_day_records = 10000
official_thirty_day_records = 100000

[[organisations."County Court".officials]]
name = "Judge Ames"
role = "Judge"
{key_line}
valid_from = 2026-01-01T00:00:00Z
valid_until = 2027-12-31T23:59:59Z
modes = ["membership"]
"""


def test_small_order_official_key_in_policy_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY.format(key_line=f'public_key = "{base64.b64encode(IDENTITY).decode()}"'))
    with pytest.raises(PolicyError, match=r"policy\.toml: .*officials\[0\]\.public_key: .*prime-order.*\(official 'Judge Ames'\)"):
        Policy.load(path)


def test_small_order_official_key_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "ames.pub").write_text(base64.b64encode(ORDER_8).decode() + "\n")
    path = tmp_path / "policy.toml"
    path.write_text(POLICY.format(key_line='public_key_file = "ames.pub"'))
    with pytest.raises(PolicyError, match=r"ames\.pub: public key is not an Ed25519 point .*\(official 'Judge Ames'\)"):
        Policy.load(path)


def test_parse_public_key_refuses_non_canonical_identity() -> None:
    with pytest.raises(OfficialKeyError, match="non-canonical"):
        parse_public_key(((2**255 - 18).to_bytes(32, "little")).hex())


def test_small_order_audit_verifier_key_is_refused() -> None:
    text = format_verifier_key("holder.example/audit", IDENTITY)
    with pytest.raises(AuditKeyError, match=r"verifier key 'holder\.example/audit' is not an Ed25519 point"):
        parse_verifier_key(text)


def test_forgery_with_small_order_key_fails_every_signature_check() -> None:
    assert not verify_ed25519(IDENTITY, FORGERY, b"checkpoint body")
    assert not verify_request_signature(testvector.REQUEST, FORGERY, IDENTITY)
    signed = sign_request(testvector.REQUEST, Ed25519PrivateKey.from_private_bytes(testvector.SEED))
    request, (signature,) = open_envelope(signed)
    public = Ed25519PrivateKey.from_private_bytes(testvector.SEED).public_key().public_bytes_raw()
    assert verify_request_signature(request, signature, public)


def test_small_order_key_in_audit_pub_is_refused_naming_the_file(tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    audit_dir.mkdir()
    (audit_dir / "audit.pub").write_text(format_verifier_key("holder.example/audit", ORDER_8) + "\n")
    result = verify_log(tmp_path)
    assert not result.ok
    assert re.search(r"audit\.pub: verifier key 'holder\.example/audit' is not an Ed25519 point", result.error or "")
