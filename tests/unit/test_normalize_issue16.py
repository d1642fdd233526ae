"""The failure classes of issue 16: each must find the same place/person, and never a household mix-up."""

import pytest

from blindmatch.cli.explain import explain
from blindmatch.normalize import Schema, builtin_schema, default_schema, normalize_address, normalize_name

S = default_schema()
EXTENDED = builtin_schema("extended")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("77 Larkspur Ave Dayton, Dayton OH 45402", "77 Larkspur Ave, Dayton OH 45402"),
        ("77 Larkspur Ave between Elm and Oak, Dayton OH 45402", "77 Larkspur Ave, Dayton OH 45402"),
        ("77 Larkspur Ave (rear entrance), Dayton OH 45402", "77 Larkspur Ave, Dayton OH 45402"),
        ("5 Sunset Blv, Reno NV 89501", "5 Sunset Boulevard, Reno NV 89501"),
        ("5 Hill La, Reno NV 89501", "5 Hill Lane, Reno NV 89501"),
        ("12 Main St 2nd Fl, Reno NV 89501", "12 Main St Second Floor, Reno NV 89501"),
        ("12 Main St Fl 2, Reno NV 89501", "12 Main St Second Floor, Reno NV 89501"),
        ("88 Birch Rd, 212, Reno NV 89501", "88 Birch Rd Apt 212, Reno NV 89501"),
        ("88 Birch Ave 212, Reno NV 89501", "88 Birch Ave Apt 212, Reno NV 89501"),
        ("9 Ash Ct, Boston MA 2134", "9 Ash Ct, Boston MA 02134"),
        ("Twelve Ash Ct, Boston MA 02134", "12 Ash Ct, Boston MA 02134"),
        ("Lincoln Center 10 Plaza Dr, New York NY 10023", "10 Plaza Dr, New York NY 10023"),
    ],
)
def test_same_place(a: str, b: str) -> None:
    assert normalize_address(a) == normalize_address(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("12 Main St PH 4, Reno NV 89501", "12 Main St PH 5, Reno NV 89501"),
        ("12 Main St Number 5C, Reno NV 89501", "12 Main St Number 6C, Reno NV 89501"),
        ("88 Birch Ave 212, Reno NV 89501", "88 Birch Ave 213, Reno NV 89501"),
    ],
)
def test_different_places(a: str, b: str) -> None:
    assert normalize_address(a) != normalize_address(b)


def test_only_the_suffix_is_abbreviated() -> None:
    assert normalize_address("88 Mill Creek Road, Palm Springs, CA") == "88 MILL CREEK RD, PALM SPRINGS CA"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Margaret (Peggy) Olsen", "Margaret Olsen"),
        ('Margaret "Peggy" Olsen', "Margaret Olsen"),
        ("Ana M. Ruiz, CPA", "Ruiz, Ana M."),
        ("Maj. Gen. John Smith", "John Smith"),
        ("The Honorable Jane Doe", "Jane Doe"),
        ("Mr Major Taylor", "Major Taylor"),
    ],
)
def test_same_name(a: str, b: str) -> None:
    assert normalize_name(a) == normalize_name(b)


def test_a_given_name_that_is_a_title_is_kept() -> None:
    assert normalize_name("Major Taylor") != normalize_name("Taylor")


def _at(req: tuple[str, str], hold: tuple[str, str], schema: Schema = S) -> tuple[str | None, bool]:
    r = explain(schema, {"name": req[0], "address": req[1]}, {"name": hold[0], "address": hold[1]})
    return r["tier"], r["confirms"]


HOME = "2218 W Maple Ave Apt 3, Chicago IL 60612"


@pytest.mark.parametrize(
    ("req", "hold", "tier", "confirms"),
    [
        (("Ann Lee", "2218 W Maple, Chicago IL 60612"), ("Ann Lee", "2218 W Maple Ave, Chicago IL 60612"),
         "name+address-street-type-requester-lacks", True),
        (("Ann Lee", "2218 W Maple Ave, Chicago IL 60612"), ("Ann Lee", "2218 W Maple, Chicago IL 60612"),
         "name+address-street-type-holder-lacks", True),
        (("Ann Lee", "9 Lakeview Dr SW, Reno NV 89501"), ("Ann Lee", "9 Lakeview Dr, Reno NV 89501"),
         "name+address-postdirectional-holder-lacks", True),
        (("Ann Lee", "2218 W Maple Ave, Chicago IL 60612"), ("Ann Lee", HOME), "name+address-unit-requester-lacks", True),
        (("Mary Ann Lee", HOME), ("Maryann Lee", HOME), "name-words-joined+address", True),
        (("Ann Lee", "77 Larkspur Ave, Dayton OH"), ("Ann Lee", "77 Larkspur Ave, Dayton OH 45402"),
         "name+address-by-city", True),
        (("Ann Lee", "12 Court St, Brooklyn NY"), ("Ann Lee", "12 Court St, New York NY 11201"),
         "name+address-by-state", False),
        (("Bill Smith", HOME), ("William Smith", HOME), "nickname+address", False),
        (("Smith John", HOME), ("John Smith", HOME), "name-any-order+address", False),
        (("Maria Garcia", HOME), ("Maria Garcia Lopez", HOME), "name-word-missing-requester+address", False),
        (("Maria Garcia Lopez", HOME), ("Maria Garcia", HOME), "name-word-missing-holder+address", False),
        (("John Adam Smith", HOME), ("John A Smith", HOME), "name-middle-initial+address", False),
        (("Jon Smyth", HOME), ("John Smith", HOME), "name-sounds-alike+address", False),
        (("Jhon Smith", HOME), ("John Smith", HOME), "name-one-edit+address", False),
        (("John Smtih", HOME), ("John Smith", HOME), "name-one-edit+address", False),
        (("Ann Lee", "77 Larkspur Ave, Dayton OH 45402"), ("Ann Lee", "77 Larkspur Ave, Dayton OH"),
         "name+address-by-city-holder-lacks-zip", True),
        (("Ann Lee", "310-16 Grant St, Reno NV 89501"), ("Ann Lee", "310-316 Grant St, Reno NV 89501"),
         "name+address-house-range", False),
    ],
)
def test_tiers(req: tuple[str, str], hold: tuple[str, str], tier: str, confirms: bool) -> None:
    schema = S if tier in S.tier_names() else EXTENDED
    assert _at(req, hold, schema) == (tier, confirms)


@pytest.mark.parametrize(
    ("req", "hold"),
    [
        ("John Smith Jr", "John Smith Sr"),
        ("John Smith Jr", "John Smith"),
        ("John Smith II", "John Smith III"),
        ("John Smith", "James Smith"),
        ("Mary Smith", "John Smith"),
        ("Maria Garcia", "Mario Garcia"),
    ],
)
@pytest.mark.parametrize("schema", [S, EXTENDED], ids=["default", "extended"])
def test_households_never_confirm(req: str, hold: str, schema: Schema) -> None:
    assert not _at((req, HOME), (hold, HOME), schema)[1]


def test_different_street_types_never_meet() -> None:
    assert _at(("Ann Lee", "2218 W Maple Ave, Chicago IL 60612"), ("Ann Lee", "2218 W Maple St, Chicago IL 60612"))[0] is None
