"""Issue 16, what the second pass added: house-number ranges, a ZIP on one side only, one-edit names.

Precision first: different houses, ZIPs or people never meet at a confirmation tier, and
different houses at no tier at all.
"""

import pytest

from blindmatch.normalize import Schema, SchemaError, builtin_schema, default_schema, load_schema, normalize_address
from blindmatch.normalize.house_numbers import full_range, house_range
from blindmatch.normalize.name import parse_name
from blindmatch.normalize.name_forms import one_deletion

SCHEMAS = [default_schema(), builtin_schema("extended")]
IDS = ["default", "extended"]
PLACE = "Springfield IL 62704"


def _tiers(schema: Schema, req: dict[str, str], hold: dict[str, str]) -> list[str]:
    held = {k for _, k in schema.match_keys(hold, "holder")}
    return [t for t, k in schema.match_keys(req, "requester") if k in held]


def _rec(address: str, name: str = "Ann Lee") -> dict[str, str]:
    return {"name": name, "address": address}


@pytest.mark.parametrize("typed", ["310 - 316", "310\u2013316", "310 \u2014 316", "310--316", "310\u2212316"])
def test_a_dash_between_numbers_is_one_hyphen(typed: str) -> None:
    assert normalize_address(f"{typed} Grant St, {PLACE}") == "310-316 GRANT ST, 62704"


def test_a_hyphenated_number_is_one_number_as_written() -> None:
    assert normalize_address("31-16 30th Ave, Astoria NY 11102") == "31-16 30TH AVE, 11102"
    assert normalize_address("31-06 30th Ave, Astoria NY 11102") == "31-06 30TH AVE, 11102"
    assert normalize_address("31-06 30th Ave, 11102") != normalize_address("31-6 30th Ave, 11102")
    assert normalize_address(f"310-16 Grant St, {PLACE}") != normalize_address(f"310-316 Grant St, {PLACE}")


@pytest.mark.parametrize(
    ("house", "reading"),
    [("310-16", (310, 316)), ("310-316", (310, 316)), ("8938-40", (8938, 8940)), ("9208-9214", (9208, 9214)),
     ("31-16", None), ("118-35", None), ("94-1060", None), ("94-210", None), ("310-310", None), ("031-35", None),
     ("310", None), ("12A", None)],
)
def test_which_hyphenated_numbers_read_as_a_range(house: str, reading: tuple[int, int] | None) -> None:
    assert house_range(house) == reading
    assert full_range(house) == (f"{reading[0]}-{reading[1]}" if reading else "")


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
def test_a_range_meets_its_other_spelling_for_review_only(schema: Schema) -> None:
    tiers = _tiers(schema, _rec(f"310-16 Grant St, {PLACE}"), _rec(f"310-316 Grant St, {PLACE}"))
    assert tiers == ["name+address-house-range"]
    assert "name+address-house-range" not in schema.confirming_tiers()


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
@pytest.mark.parametrize(
    ("a", "b"),
    [("31-16 30th Ave, Astoria NY 11102", "31-18 30th Ave, Astoria NY 11102"),
     ("31-16 30th Ave, Astoria NY 11102", "31 30th Ave, Astoria NY 11102"),
     ("31-16 30th Ave, Astoria NY 11102", "16 30th Ave, Astoria NY 11102"),
     ("31-16 30th Ave, Astoria NY 11102", "3116 30th Ave, Astoria NY 11102"),
     (f"310-316 Grant St, {PLACE}", f"310 Grant St, {PLACE}"),
     (f"310-316 Grant St, {PLACE}", f"316 Grant St, {PLACE}"),
     (f"310-316 Grant St, {PLACE}", f"312-318 Grant St, {PLACE}")],
)
def test_different_house_numbers_never_meet(schema: Schema, a: str, b: str) -> None:
    assert _tiers(schema, _rec(a), _rec(b)) == [] and _tiers(schema, _rec(b), _rec(a)) == []


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
def test_a_zip_on_one_side_only_confirms_both_ways(schema: Schema) -> None:
    with_zip, without = _rec("77 Larkspur Ave, Dayton OH 45402"), _rec("77 Larkspur Ave, Dayton OH")
    assert _tiers(schema, without, with_zip)[0] == "name+address-by-city"
    assert _tiers(schema, with_zip, without)[0] == "name+address-by-city-holder-lacks-zip"
    assert {"name+address-by-city", "name+address-by-city-holder-lacks-zip"} <= set(schema.confirming_tiers())


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
def test_two_different_zips_never_meet_through_the_city(schema: Schema) -> None:
    a, b = _rec("77 Larkspur Ave, Dayton OH 45402"), _rec("77 Larkspur Ave, Dayton OH 45403")
    assert _tiers(schema, a, b) == []


def test_a_requester_emits_one_by_city_key_and_a_holder_one_only_with_a_zip() -> None:
    s = default_schema()
    for address, holder_keys in (("77 Larkspur Ave, Dayton OH 45402", 1), ("77 Larkspur Ave, Dayton OH", 0)):
        for side, expected in (("requester", 1), ("holder", holder_keys)):
            tiers = [t for t, _ in s.match_keys(_rec(address), side)]  # type: ignore[arg-type]
            assert sum(t.startswith("name+address-by-city") for t in tiers) == expected


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
@pytest.mark.parametrize(
    ("req", "hold"),
    [(f"12 Main St Apt 4, {PLACE}", f"12 Main St Apt 5, {PLACE}"),
     (f"12 Main St Apt 4, {PLACE}", f"12 Main St Apt 4 # 5, {PLACE}"),
     (f"9 Lakeview Dr SW, {PLACE}", f"9 Lakeview Dr NW, {PLACE}"),
     (f"9 Lakeview Dr SW Apt 2, {PLACE}", f"9 Lakeview Dr NW, {PLACE}"),
     ("77 Larkspur Ave, Dayton OH 45402", "77 Larkspur Ave, Dayton OH 45403"),
     ("77 Larkspur Ave, Dayton OH 45402", "77 Larkspur Ave, Dayton OH 45403-1234")],
)
def test_key_tiers_never_meet_another_value_of_the_part(schema: Schema, req: str, hold: str) -> None:
    assert _tiers(schema, _rec(req), _rec(hold)) == [] and _tiers(schema, _rec(hold), _rec(req)) == []


def test_key_tiers_are_looked_up_among_the_exact_keys_and_cost_the_index_nothing() -> None:
    s = default_schema()
    keyed = [t for t in s.tiers if t.key_tier]
    assert {t.name for t in keyed} == {"name+address-no-unit", "name+address-postdirectional-holder-lacks",
                                       "name+address-by-city-holder-lacks-zip"}
    assert all(t.key_tier == "name+address+unit" for t in keyed)
    holder = {t for t, _ in s.match_keys(_rec(f"9 Lakeview Dr, {PLACE}"), "holder")}
    assert not holder & {t.name for t in keyed}
    assert _tiers(s, _rec(f"9 Lakeview Dr SW Apt 3, {PLACE}"), _rec(f"9 Lakeview Dr SW, {PLACE}"))[0] == "name+address-no-unit"
    assert _tiers(s, _rec(f"9 Lakeview Dr SW, {PLACE}"), _rec(f"9 Lakeview Dr, {PLACE}")) == [
        "name+address-postdirectional-holder-lacks"]


@pytest.mark.parametrize(
    ("tier", "message"),
    [('key_tier = "later"', "earlier tier"), ('key_tier = "first"\nholder_requires_empty = ["address.unit"]', "holder emits nothing"),
     ('key_tier = "other-parts"', "other parts")],
)
def test_key_tier_must_name_an_earlier_tier_with_the_same_parts(tier: str, message: str) -> None:
    doc = f"""[schema]
name = "t"
version = 1
[fields.name]
normalizer = "name"
[fields.address]
normalizer = "address"
[[tiers]]
name = "first"
parts = ["name", "address"]
[[tiers]]
name = "other-parts"
parts = ["name"]
[[tiers]]
name = "keyed"
parts = ["name", "address"]
requester_parts = ["name", "address.without_unit"]
{tier}
[[tiers]]
name = "later"
parts = ["name", "address"]
"""
    with pytest.raises(SchemaError, match=message):
        load_schema(doc)


def test_one_deletion_forms() -> None:
    forms = one_deletion(parse_name("John Smith Jr"))
    assert "JOHN SMITH JR" in forms and "JON SMITH JR" in forms and "JOHN SMTH JR" in forms
    assert all(f.endswith(" JR") for f in forms)
    assert len(forms) == 1 + 4 + 5  # SMITH has no double letter
    assert one_deletion(parse_name("Al Wu")) == ("AL WU",)  # words under three letters are kept
    assert "JOHN A SMITH" in one_deletion(parse_name("John A Smith"))  # middle words kept


@pytest.mark.parametrize(
    ("a", "b"),
    [("Jon Smith", "John Smith"), ("John Smyth", "John Smith"), ("Jhon Smith", "John Smith"),
     ("John Smithe", "John Smith"), ("Katherine Olsen", "Kathrine Olsen")],
)
def test_one_edit_names_meet_for_review(a: str, b: str) -> None:
    s = builtin_schema("extended")
    home = f"12 Oak Ave Apt 3, {PLACE}"
    tiers = _tiers(s, _rec(home, a), _rec(home, b))
    assert "name-one-edit+address" in tiers
    assert not set(tiers) & set(s.confirming_tiers())


@pytest.mark.parametrize(("schema"), SCHEMAS, ids=IDS)
@pytest.mark.parametrize(("a", "b"), [("John Smith Jr", "John Smith Sr"), ("John Smith Jr", "Jon Smith Sr"),
                                      ("Joan Smith", "John Smith"), ("Carla Smith", "Carl Smith")])
def test_households_never_meet_at_a_confirmation_tier(schema: Schema, a: str, b: str) -> None:
    home = f"12 Oak Ave Apt 3, {PLACE}"
    tiers = _tiers(schema, _rec(home, a), _rec(home, b))
    assert not set(tiers) & set(schema.confirming_tiers())
    if a.endswith("Jr"):
        assert tiers == []  # the generational suffix is kept in every form


def test_one_edit_names_at_other_addresses_never_meet() -> None:
    s = builtin_schema("extended")
    assert _tiers(s, _rec(f"12 Oak Ave, {PLACE}", "Jon Smith"), _rec(f"14 Oak Ave, {PLACE}", "John Smith")) == []


def test_extended_schema_is_the_default_then_more_review_tiers() -> None:
    default, extended = SCHEMAS
    d, e = default.canonical_doc()["tiers"], extended.canonical_doc()["tiers"]
    assert e[: len(d)] == d
    assert not any(t["confirms"] for t in e[len(d):])
    assert extended.name != default.name and extended.fingerprint != default.fingerprint
