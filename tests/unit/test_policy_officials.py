"""Holder policy file loading: the documented example, key forms, strict errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.policy import Limits, Policy, PolicyError

ORG = "County Court of Example"
PUB = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32).public_key().public_bytes_raw()
PUB2 = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32).public_key().public_bytes_raw()

LIMITS = """\
session_max_records = 5000
day_records = 20000
thirty_day_records = 200000
official_day_records = 10000
official_thirty_day_records = 100000
"""


def official_entry(name: str = "Alice Clerk", key: str | None = None, extra: str = "") -> str:
    key_line = key if key is not None else f'public_key = "{base64.b64encode(PUB).decode()}"'
    return f"""
[[organisations."{ORG}".officials]]
name = "{name}"
role = "Chief Clerk"
{key_line}
valid_from = 2026-01-01T00:00:00Z
valid_until = 2027-12-31T23:59:59Z
modes = ["membership", "cardinality"]
{extra}"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Policy:
    return Policy.load(write(tmp_path, text))


def test_documented_example(tmp_path: Path) -> None:
    policy = load(tmp_path, f'[organisations."{ORG}"]\n{LIMITS}{official_entry()}')
    assert policy.organisations() == [ORG]
    assert policy.limits(ORG) == Limits(5000, 20000, 200000, 10000, 100000)
    (alice,) = policy.officials(ORG)
    assert alice.organisation == ORG and alice.name == "Alice Clerk" and alice.role == "Chief Clerk"
    assert alice.public_key == PUB
    assert alice.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert alice.valid_until == datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert alice.modes == frozenset({"membership", "cardinality"})
    assert policy.officials("Nobody") == []
    assert policy.officials_named("Alice Clerk") == [alice]


def test_public_key_hex_and_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bob.pub").write_text(base64.b64encode(PUB2).decode() + "\n")
    text = (
        f'[organisations."{ORG}"]\n{LIMITS}'
        + official_entry(key=f'public_key = "{PUB.hex()}"')
        + official_entry("Bob Deputy", key='public_key_file = "keys/bob.pub"')
    )
    alice, bob = load(tmp_path, text).officials(ORG)
    assert (alice.public_key, bob.public_key) == (PUB, PUB2)


def test_per_official_overrides(tmp_path: Path) -> None:
    text = f'[organisations."{ORG}"]\n{LIMITS}' + official_entry(extra="day_records = 50\nthirty_day_records = 70\n")
    policy = load(tmp_path, text)
    assert policy.limits(ORG, "Alice Clerk") == Limits(5000, 20000, 200000, 50, 70)
    assert policy.limits(ORG, "Someone Else") == Limits(5000, 20000, 200000, 10000, 100000)


def test_cardinality_minimum_defaults_to_ten(tmp_path: Path) -> None:
    """Optional, so existing policy files keep loading; the default still forbids tiny count sessions."""
    assert load(tmp_path, f'[organisations."{ORG}"]\n{LIMITS}').limits(ORG).cardinality_min_records == 10
    text = f'[organisations."{ORG}"]\n{LIMITS}cardinality_min_records = 50\n' + official_entry(extra="day_records = 5\n")
    policy = load(tmp_path, text)
    assert policy.limits(ORG).cardinality_min_records == policy.limits(ORG, "Alice Clerk").cardinality_min_records == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'[organisations."{ORG}"]\n{LIMITS}day_record = 3\n', rf'organisations."{ORG}".day_record: unknown key'),
        (
            f'[organisations."{ORG}"]\n' + LIMITS.replace("day_records = 20000\n", ""),
            rf'organisations."{ORG}".day_records: missing',
        ),
        (
            f'[organisations."{ORG}"]\n' + LIMITS.replace("5000", "-1"),
            "session_max_records: must be a non-negative integer",
        ),
        (f'[organisations."{ORG}"]\n{LIMITS}' + official_entry().replace("Z\n", "\n"), r"officials\[0\].valid_from"),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry().replace('"cardinality"', '"everything"'),
            r"officials\[0\].modes: unknown mode 'everything'",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry(key='public_key = "c2hvcnQ="'),
            r"officials\[0\].public_key: public key must be 32 raw bytes",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry(key='public_key_file = "missing.pub"'),
            r"officials\[0\].public_key_file: cannot read public key file",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry(key=""),
            r"officials\[0\]: exactly one of public_key or public_key_file",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry() + official_entry("Bob"),
            r"officials\[1\].public_key: same key as",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}' + official_entry() + official_entry(key=f'public_key = "{PUB2.hex()}"'),
            r"officials\[1\].name: duplicate official",
        ),
        (
            f'[organisations."{ORG}"]\n{LIMITS}'
            + official_entry().replace("valid_until = 2027-12-31T23:59:59Z", "valid_until = 2025-01-01T00:00:00Z"),
            r"officials\[0\].valid_until: must be after valid_from",
        ),
        (f'[organisations."{ORG}"]\n{LIMITS}' + official_entry().replace("role", "rank"), r"officials\[0\].rank"),
        (
            f'[organisations."{ORG}"]\n{LIMITS}cardinality_min_records = 0\n',
            rf'organisations."{ORG}".cardinality_min_records: must be an integer >= 1',
        ),
        ("[organisations]\n", "at least one organisation"),
        ("organisations = [", "not valid TOML"),
    ],
)
def test_errors_name_the_offending_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load(tmp_path, text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load(tmp_path / "absent.toml")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'[organisations."Caf\xe9"]\n')  # Latin-1, as an old editor would save it
    with pytest.raises(PolicyError, match=r"policy file .* is not valid TOML: not UTF-8 text \(invalid byte at offset 19\)"):
        Policy.load(path)


def test_unknown_organisation_limits(tmp_path: Path) -> None:
    policy = load(tmp_path, f'[organisations."{ORG}"]\n{LIMITS}')
    with pytest.raises(KeyError):
        policy.limits("Other")
