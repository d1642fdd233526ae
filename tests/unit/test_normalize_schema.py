"""Schemas, tiers, key encoding, fingerprint and the legal-basis check."""

import datetime
import json
import struct
from pathlib import Path

import pytest

from blindmatch.normalize import NormalizationError, SchemaError, SchemaMismatchError, default_schema, load_schema
from blindmatch.normalize.matchkey import encode_key

ROOT = Path(__file__).resolve().parents[2]
TODAY = datetime.date(2025, 1, 1)
REC = {"name": "John Smith", "address": "123 Main St Apt 4, Springfield IL 62704", "order_date": "2024-03-05"}
NO_UNIT = {"name": "John Smith", "address": "123 Main St, Springfield IL 62704"}

MINIMAL = """
[schema]
name = "test"
version = 3
[fields.name]
normalizer = "name"
[fields.address]
normalizer = "address"
[[tiers]]
name = "all"
parts = ["name", "address"]
"""


def test_default_schema() -> None:
    s = default_schema()
    assert (s.name, s.version, s.basis_field) == ("blindmatch-person", 3, "order_date")
    assert s.tier_names()[:2] == ["name+address+unit", "name+address-no-unit"]
    review = [t for t in s.tier_names() if t.startswith(("nickname", "name-")) and t != "name-words-joined+address"]
    review.append("name+address-house-range")
    assert s.confirming_tiers() == [t for t in s.tier_names() if t not in review]
    assert len(s.fingerprint) == 32


def _tiers(record: dict[str, str], side: str) -> list[str]:
    return list(dict.fromkeys(t for t, _ in default_schema().match_keys(record, side)))  # type: ignore[arg-type]


def test_unit_tiers_are_symmetric_and_never_meet_another_unit() -> None:
    s = default_schema()
    assert "name+address-no-unit" not in _tiers(REC, "holder")
    assert "name+address-unit-requester-lacks" in _tiers(REC, "holder")
    assert "name+address-no-unit" not in _tiers(NO_UNIT, "holder")  # looked up among the exact keys
    req, req_no_unit = _tiers(REC, "requester"), _tiers(NO_UNIT, "requester")
    assert "name+address-no-unit" in req and "name+address-unit-requester-lacks" not in req
    assert "name+address-unit-requester-lacks" in req_no_unit and "name+address-no-unit" not in req_no_unit
    # a requester with a unit meets a unit-less holder record's exact key in tier 2, and the reverse in tier 3
    hold = dict(s.match_keys(NO_UNIT, "holder"))
    assert dict(s.match_keys(REC, "requester"))["name+address-no-unit"] == hold["name+address+unit"]
    other_unit = {**REC, "address": "123 Main St Apt 5, Springfield IL 62704"}
    keys = {k for _, k in s.match_keys(other_unit, "holder")}
    assert not keys & {k for t, k in s.match_keys(REC, "requester") if t in s.confirming_tiers()}


def test_keys_equal_for_variants_and_exclude_basis() -> None:
    s = default_schema()
    variant = {"name": "SMITH, JOHN", "address": "123 MAIN STREET # 4 SPRINGFIELD ILLINOIS 62704-0001",
               "order_date": "1/1/99"}
    assert s.match_keys(REC, "holder")[:1] == s.match_keys(variant, "holder")[:1]


def test_key_encoding_is_length_prefixed() -> None:
    key = encode_key("s", 7, "t", [("name", "AB")])
    expect = b"".join([
        struct.pack(">I", 23), b"blindmatch/match-key/v1", struct.pack(">I", 1), b"s", struct.pack(">I", 7),
        struct.pack(">I", 1), b"t", struct.pack(">I", 1), struct.pack(">I", 4), b"name", struct.pack(">I", 2), b"AB",
    ])
    assert key == expect
    # moving bytes between parts changes the key
    assert encode_key("s", 7, "t", [("a", "BC"), ("b", "")]) != encode_key("s", 7, "t", [("a", "B"), ("b", "C")])


def test_missing_and_invalid_fields_name_field_and_row() -> None:
    s = default_schema()
    with pytest.raises(NormalizationError) as exc:
        s.match_keys({"name": "John Smith", "address": " "}, "holder", row=12)
    assert (exc.value.field, exc.value.row, exc.value.reason) == ("address", 12, "missing")
    assert str(exc.value) == "row 12: address: missing"
    with pytest.raises(NormalizationError) as exc:
        s.match_keys({"name": "Mr.", "address": NO_UNIT["address"]}, "requester", row=3)
    assert (exc.value.field, exc.value.row) == ("name", 3)
    with pytest.raises(ValueError):
        s.match_keys(REC, "both")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "order_date missing"),
        ("", "order_date missing"),
        ("2/30/2024", "order_date invalid"),
        ("2025-01-02", "order_date in the future"),
        ("2014-12-31", "order_date older than 3650 days"),
        ("2015-01-04", None),
        ("2025-01-01", None),
    ],
)
def test_check_basis(value: str | None, reason: str | None) -> None:
    record = {"name": "x"} if value is None else {"order_date": value}
    assert default_schema().check_basis(record, TODAY) == reason


def test_fingerprint_changes_with_schema_and_mismatch_aborts() -> None:
    a = load_schema(MINIMAL)
    assert load_schema(MINIMAL + "\n# a comment\n").fingerprint == a.fingerprint
    b = load_schema(MINIMAL.replace("version = 3", "version = 4"))
    c = load_schema(MINIMAL.replace('parts = ["name", "address"]', 'parts = ["address", "name"]'))
    assert len({a.fingerprint, b.fingerprint, c.fingerprint, default_schema().fingerprint}) == 4
    a.check_peer_fingerprint(load_schema(MINIMAL).fingerprint)
    with pytest.raises(SchemaMismatchError, match="schema fingerprint mismatch: local test v3"):
        a.check_peer_fingerprint(b.fingerprint)


def test_fingerprint_covers_table_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindmatch.normalize import schema as schema_mod

    before = load_schema(MINIMAL).fingerprint
    monkeypatch.setitem(schema_mod.NORMALIZER_VERSIONS, "tables_sha256", "0" * 64)
    assert load_schema(MINIMAL).fingerprint != before


def test_load_schema_from_path(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(MINIMAL)
    assert load_schema(p).fingerprint == load_schema(str(p)).fingerprint == load_schema(MINIMAL).fingerprint


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('normalizer = "name"', 'normalizer = "soundex"'), "unknown normalizer"),
        (lambda t: t.replace('["name", "address"]', '["name", "phone"]'), "unknown field 'phone'"),
        (lambda t: t.replace('["name", "address"]', '["name", "address.city"]'), "has no view 'city'"),
        (lambda t: t.replace('["name", "address"]', "[]"), "has no parts"),
        (lambda t: t.split("[[tiers]]")[0], "missing or malformed"),
        (lambda t: t + '[basis]\nfield = "name"\n', "must be a date field"),
        (lambda t: t + "[[tiers]]\nname = \"all\"\nparts = [\"name\"]\n", "unique"),
        (lambda t: t + "[oops", "not valid TOML"),
    ],
)
def test_schema_errors(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=message):
        load_schema(edit(MINIMAL))


def test_test_vectors_match_implementation() -> None:
    from helpers.vector_files import VECTOR_DIR, load_generator

    gen = load_generator("generate_match_keys")
    stored = json.loads((VECTOR_DIR / "match-keys.json").read_text("utf-8"))
    assert stored == json.loads(json.dumps(gen.build()))
    assert load_schema(stored["schema_toml"]).fingerprint.hex() == stored["fingerprint"]
