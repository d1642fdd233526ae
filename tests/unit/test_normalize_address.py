"""Each address rule: variants that must agree and differences that must stay apart."""

import pytest

from blindmatch.normalize import NormalizationError, normalize_address, parse_address

BASE = "123 N MAIN ST # 4, 62704"


@pytest.mark.parametrize(
    "text",
    [
        "123 North Main Street Apt 4, Springfield, Illinois 62704",  # spelt out, state name
        "123 n. main st. apt. 4 springfield il 62704",  # case, periods, no commas
        "123  N  MAIN   STR  UNIT 4 ,SPRINGFIELD ,IL 62704",  # spacing, misspelt suffix, designator
        "123 N Main Strt Suite 4, Springfield, IL 62704-1234",  # ZIP+4
        "123 N Main St # 4, Springfield IL 62704",
        "123 N Main St #4, Springfield IL 62704",
        "123 N Main St Apt #04, Springfield IL 62704",  # leading zero
    ],
)
def test_same_place_written_differently(text: str) -> None:
    assert normalize_address(text) == BASE


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("45 Twelfth Avenue, New York, NY 10011", "45 12th Ave New York NY 10011"),
        ("100 Twenty-First St, Austin TX 78701", "100 21st street austin tx 78701"),
        ("1 One Hundred Twenty Fifth St, New York NY 10027", "1 125th St New York NY 10027"),
        ("5 Second Ave, Austin TX 78701", "5 2d Ave Austin TX 78701"),
        ("5 5 Ave, Austin TX 78701", "5 Fifth Ave Austin TX 78701"),
        ("1600 Pennsylvania Ave N.W., Washington, DC 20500", "1600 Pennsylvania Avenue Northwest Washington DC 20500"),
        ("1600 Pennsylvania Ave North West, Washington DC 20500", "1600 PENNSYLVANIA AVE NW WASHINGTON DC 20500"),
        ("8 Bluff Boulevard, Reno NV 89501", "8 bluff boulv reno nevada 89501"),
        ("8 Oak Av, Reno NV 89501", "8 Oak Avenu, Reno, NV 89501"),
        ("9 Saint James Pl, Brooklyn NY 11238", "9 St. James Place Brooklyn NY 11238"),
        ("12 Mount Vernon Rd, Reno NV 89501", "12 Mt Vernon Road, Reno NV 89501"),
        ("12 Park Place Ct Lake Forest IL 60045", "12 Park Place Court, Lake Forest, IL 60045"),
        ("77 Hwy 61 Tunica MS 38676", "77 Highway 61, Tunica, Mississippi 38676"),
        ("550 E Front Cir Cleveland OH 44113", "550 East Front Circle, Cleveland, OH 44113"),
        ("10 Main St Apt 4-B Reno NV 89501", "10 Main St, #4b, Reno NV 89501"),
        ("10 Main St Rear, Reno NV 89501", "10 Main Street REAR Reno NV 89501"),
        ("PO Box 123, Austin TX 78701", "P.O. Box 123 Austin, Texas 78701-0001"),
        ("Post Office Box 0123, Austin TX 78701", "POB 123 Austin TX 78701"),
        ("RR 2 Box 15, Ames IA 50010", "Rural Route 2, Box 15, Ames, Iowa 50010"),
        ("HC 68 Box 23A, Casper WY 82601", "Highway Contract 68 Box 23A Casper Wyoming 82601"),
        ("9 Main St, Zoë Springs, CO", "9 Main St, Zoe Springs, Colorado"),  # no ZIP: city + state
        ("500 E Main St Fl 3, Columbus OH 43215", "500 East Main Street, 3rd Floor, Columbus, OH 43215"),
        ("123 Main St Apt 4, Springfield IL 62704", "123 Main Street Apartment No. 4, Springfield, Illinois 62704"),
        ("123 Main St Apt 4, Springfield IL 62704", "123 Main St Apt Number 4 Springfield IL 62704"),
        ("123 Main St, Springfield IL 62704-1234", "123 Main St, Springfield IL 62704 1234"),
    ],
)
def test_pairs_that_agree(a: str, b: str) -> None:
    assert normalize_address(a) == normalize_address(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("123 N Main St, Springfield IL 62704", "125 N Main St, Springfield IL 62704"),  # house number
        ("123 N Main St, Springfield IL 62704", "123 N Main St, Springfield IL 62705"),  # ZIP
        ("123 N Main St, Springfield IL 62704", "123 N Main Ave, Springfield IL 62704"),  # suffix
        ("123 N Main St, Springfield IL 62704", "123 S Main St, Springfield IL 62704"),  # directional
        ("123 Main St, Springfield IL 62704", "123 N Main St, Springfield IL 62704"),
        ("1600 Pennsylvania Ave NW, DC 20500", "1600 Pennsylvania Ave NE, DC 20500"),
        ("123 N Main St Apt 4, Springfield IL 62704", "123 N Main St, Springfield IL 62704"),  # unit missing
        ("123 N Main St Apt 4, Springfield IL 62704", "123 N Main St Apt 5, Springfield IL 62704"),  # unit
        ("123 N Main St Apt 4A, Springfield IL 62704", "123 N Main St Apt 4B, Springfield IL 62704"),
        ("PO Box 12, Juneau AK 99801", "PO Box 13, Juneau AK 99801"),
        ("RR 2 Box 15, Ames IA 50010", "RR 3 Box 15, Ames IA 50010"),
        ("12 Park Place Ct, Lake Forest IL 60045", "12 Park Place, Lake Forest IL 60045"),
        ("500 E Main St 3rd Floor, Columbus OH 43215", "500 E Main St 4th Floor, Columbus OH 43215"),
        ("12 W 2nd Fl Rd, Columbus OH 43215", "12 W 2nd Fl, Columbus OH 43215"),  # a street, not a floor
        ("123 Main St Apt No 4, Springfield IL 62704", "123 Main St, Springfield IL 62704"),  # unit kept
        ("12 No Name Rd Apt 3, Reno NV 89501", "12 Name Rd Apt 3, Reno NV 89501"),  # NO only fills after a unit word
    ],
)
def test_pairs_kept_apart(a: str, b: str) -> None:
    assert normalize_address(a) != normalize_address(b)


def test_components() -> None:
    a = parse_address("1600 Pennsylvania Ave N.W. Apt 4, Washington, D.C. 20500-0003")
    assert (a.kind, a.house_number, a.street_name, a.suffix, a.postdirectional) == (
        "street", "1600", "PENNSYLVANIA", "AVE", "NW")
    assert (a.city, a.state, a.zip5, a.zip4, a.unit) == ("WASHINGTON", "DC", "20500", "0003", "4")
    assert a.canonical == "1600 PENNSYLVANIA AVE NW # 4, 20500"
    assert a.without_unit == "1600 PENNSYLVANIA AVE NW, 20500"
    b = parse_address("123 North Main Street, Springfield IL 62704")
    assert (b.predirectional, b.street_name, b.suffix, b.unit) == ("N", "MAIN", "ST", "")
    assert parse_address("PO Box 9, Austin TX 78701").box == "PO BOX 9"


def test_letter_street_is_not_a_directional() -> None:
    a = parse_address("123 N St NW, Washington DC 20001")
    assert (a.predirectional, a.street_name, a.suffix, a.postdirectional) == ("", "N", "ST", "NW")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "missing"),
        ("   ", "missing"),
        ("Main Street, Springfield IL 62704", "no house number"),
        ("123 Main St", "no ZIP code, and no city and state"),
        ("PO Box, Austin TX 78701", "PO box without a number"),
        ("RR Box 5, Ames IA 50010", "rural route without a number"),
        ("62704", "no street name"),
        (", IL 62704", "no street address or box"),
    ],
)
def test_errors_name_the_field_not_the_value(text: str, reason: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize_address(text, field="home")
    assert exc.value.field == "home"
    assert exc.value.reason == reason
    assert str(exc.value) == f"home: {reason}"
