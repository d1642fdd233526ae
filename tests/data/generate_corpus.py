"""Generate the scored normalisation corpus (address_pairs.csv, name_pairs.csv). Seeded: rerun gives the same files.

Provenance (everything is written into this file; nothing is downloaded):
* street suffix / directional / unit / state spellings: USPS Publication 28 (a US federal
  government work, public domain), typed in as the lists below;
* street names: the most common US street names as published in US Census TIGER/Line
  summaries (facts, public domain), plus Pub 28's own examples;
* city / state / ZIP combinations: real USPS ZIP codes of US cities (public facts);
* personal names: common US given names and surnames (US Census surname and SSA
  given-name frequency lists, public domain), plus hand-picked names with accents,
  apostrophes and hyphens.
The variant writers here are independent of ``blindmatch.pilot.synthetic`` and do not read the
normaliser's tables, so the corpus scores the rules, not a copy of them.

Usage: python tests/data/generate_corpus.py   (writes next to this file)
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20240305
N_PER_KIND = 300

STREETS = ["Second", "Third", "First", "Fourth", "Park", "Fifth", "Main", "Sixth", "Oak", "Seventh", "Pine", "Maple", "Cedar", "Eighth", "Elm", "View", "Washington", "Ninth", "Lake", "Hill", "Walnut", "Spring", "Ridge", "Church", "Willow", "Mill", "Sunset", "Railroad", "Jackson", "Cherry", "Highland", "Johnson", "Forest", "Wilson", "Meadow", "Dogwood", "Lincoln", "River", "Center", "Madison", "Adams", "Hickory", "Chestnut", "Lakeview", "Jefferson", "Spruce", "Laurel", "Locust", "Magnolia", "Sycamore", "Birch", "Valley", "Franklin", "Prospect", "Woodland", "Broadway", "Market", "Union", "Liberty", "Summit", "Canal", "Harbor", "Bridge", "Academy", "Orchard", "Grand", "Kings", "Queens", "Beacon", "Commerce", "College", "School", "Pleasant", "Green", "Bay", "Shore", "Industrial"]
ORDINAL_STREETS = {
    "1st": "First", "2nd": "Second", "3rd": "Third", "4th": "Fourth", "5th": "Fifth", "6th": "Sixth",
    "7th": "Seventh", "8th": "Eighth", "9th": "Ninth", "10th": "Tenth", "11th": "Eleventh",
    "12th": "Twelfth", "13th": "Thirteenth", "15th": "Fifteenth", "20th": "Twentieth",
    "21st": "Twenty-first", "22nd": "Twenty Second", "33rd": "Thirty-Third", "44th": "Forty Fourth",
    "52nd": "Fifty-Second", "96th": "Ninety-Sixth", "110th": "One Hundred Tenth",
}
# standard abbreviation -> spellings seen in records (Pub 28 App. C1 entries)
SUFFIXES = {
    "St": ["Street", "Str", "Strt", "ST.", "street"],
    "Ave": ["Avenue", "Av", "Avenu", "Aven", "Avn", "Avnue"],
    "Blvd": ["Boulevard", "Boul", "Boulv"],
    "Rd": ["Road", "RD."],
    "Dr": ["Drive", "Driv", "Drv"],
    "Ln": ["Lane"],
    "Ct": ["Court", "Crt"],
    "Pl": ["Place"],
    "Cir": ["Circle", "Circ", "Circl", "Crcl", "Crcle"],
    "Ter": ["Terrace", "Terr"],
    "Pkwy": ["Parkway", "Parkwy", "Pkway", "Pky"],
    "Hwy": ["Highway", "Highwy", "Hiway", "Hiwy", "Hway"],
    "Trl": ["Trail", "Trails", "Trls"],
    "Way": ["Wy"],
    "Sq": ["Square", "Sqr", "Squ"],
    "Expy": ["Expressway", "Expw", "Express"],
    "Xing": ["Crossing", "Crssng"],
}
DIRS = {"N": ["North", "N."], "S": ["South", "S."], "E": ["East", "E."], "W": ["West", "W."],
        "NE": ["Northeast", "N.E.", "N E"], "NW": ["Northwest", "N.W.", "North West"],
        "SE": ["Southeast", "S.E."], "SW": ["Southwest", "S.W.", "South West"]}
UNIT_WORDS = ["Apt", "Apt.", "Apartment", "Unit", "Ste", "Suite", "#", "Rm", "Room", "Spc", "Lot"]
PLACES = [
    ("Springfield", "IL", "Illinois", "62704"), ("Columbus", "OH", "Ohio", "43215"),
    ("Madison", "WI", "Wisconsin", "53703"), ("Portland", "ME", "Maine", "04101"),
    ("Salem", "OR", "Oregon", "97301"), ("Franklin", "TN", "Tennessee", "37064"),
    ("Greenville", "SC", "South Carolina", "29601"), ("Fairfax", "VA", "Virginia", "22030"),
    ("Trenton", "NJ", "New Jersey", "08608"), ("Santa Fe", "NM", "New Mexico", "87501"),
    ("Bismarck", "ND", "North Dakota", "58501"), ("Pierre", "SD", "South Dakota", "57501"),
    ("Concord", "NH", "New Hampshire", "03301"), ("Providence", "RI", "Rhode Island", "02903"),
    ("Charleston", "WV", "West Virginia", "25301"), ("Washington", "DC", "District of Columbia", "20002"),
    ("Brooklyn", "NY", "New York", "11201"), ("Oakland", "CA", "California", "94612"),
    ("Tacoma", "WA", "Washington", "98402"), ("Mobile", "AL", "Alabama", "36602"),
    ("Juneau", "AK", "Alaska", "99801"), ("Mesa", "AZ", "Arizona", "85201"),
    ("Aurora", "CO", "Colorado", "80012"), ("Dover", "DE", "Delaware", "19901"),
    ("Tampa", "FL", "Florida", "33602"), ("Macon", "GA", "Georgia", "31201"),
    ("Hilo", "HI", "Hawaii", "96720"), ("Pocatello", "ID", "Idaho", "83201"),
    ("Gary", "IN", "Indiana", "46402"), ("Ames", "IA", "Iowa", "50010"),
    ("Wichita", "KS", "Kansas", "67202"), ("Lexington", "KY", "Kentucky", "40507"),
    ("Shreveport", "LA", "Louisiana", "71101"), ("Annapolis", "MD", "Maryland", "21401"),
    ("Worcester", "MA", "Massachusetts", "01608"), ("Lansing", "MI", "Michigan", "48933"),
    ("Duluth", "MN", "Minnesota", "55802"), ("Jackson", "MS", "Mississippi", "39201"),
    ("Saint Louis", "MO", "Missouri", "63103"), ("Billings", "MT", "Montana", "59101"),
    ("Lincoln", "NE", "Nebraska", "68508"), ("Reno", "NV", "Nevada", "89501"),
    ("Durham", "NC", "North Carolina", "27701"), ("Tulsa", "OK", "Oklahoma", "74103"),
    ("Erie", "PA", "Pennsylvania", "16501"), ("Austin", "TX", "Texas", "78701"),
    ("Provo", "UT", "Utah", "84601"), ("Burlington", "VT", "Vermont", "05401"),
    ("Casper", "WY", "Wyoming", "82601"), ("San Juan", "PR", "Puerto Rico", "00901"),
    ("Fort Wayne", "IN", "Indiana", "46802"), ("Mount Pleasant", "SC", "South Carolina", "29464"),
]
GIVEN = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen", "Charles", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily", "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Timothy", "Deborah"]
ACCENTED_GIVEN = ["José", "María", "Zoë", "Chloé", "Renée", "André", "Inés", "Björn", "Sofía",
                  "Raúl", "Joaquín", "Noël", "Agnès", "Françoise", "Jürgen", "Łukasz", "Søren", "Ángel"]
SURNAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright"]
ACCENTED_SURNAMES = ["Peña", "Muñoz", "Núñez", "Ibáñez", "Müller", "Schröder", "Gómez", "Óscarsson",
                     "Brontë", "Lefèvre", "Dvořák", "Ångström"]
APOSTROPHE_SURNAMES = ["O'Brien", "O'Connor", "D'Angelo", "O'Neil", "D'Amico", "O'Hara", "N'Diaye", "L'Heureux"]
HYPHEN_SURNAMES = ["Garcia-Lopez", "Smith-Jones", "Lloyd-Webber", "Perez-Martin", "Taylor-Johnson",
                   "Bonham-Carter", "Day-Lewis", "Zeta-Jones"]
HONORIFICS = ["Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Dr", "Dr.", "Prof.", "Rev.", "Miss"]
SUFFIX_FORMS = {"JR": ["Jr", "Jr.", "Junior", "JR"], "SR": ["Sr", "Sr.", "Senior"], "II": ["II", "2nd"],
                "III": ["III", "3rd"], "IV": ["IV", "4th"]}

Address = dict


def _address(rng: random.Random) -> Address:
    ordinal = rng.random() < 0.25
    street = rng.choice(list(ORDINAL_STREETS)) if ordinal else rng.choice(STREETS)
    place = rng.choice(PLACES)
    return {
        "house": str(rng.choice([rng.randrange(1, 100), rng.randrange(100, 2000), rng.randrange(2000, 99999)])),
        "predir": rng.choice(["", "", "", *DIRS]),
        "street": street,
        "suffix": rng.choice(list(SUFFIXES)),
        "postdir": rng.choice(["", "", "", "", "", "NW", "SE", "N"]),
        "unit_word": rng.choice(UNIT_WORDS),
        "unit": rng.choice(["", "", "", str(rng.randrange(1, 40)), f"{rng.randrange(1, 30)}{rng.choice('ABCD')}",
                            str(rng.randrange(100, 2000)), rng.choice("ABCDEFGH")]),
        "city": place[0], "state": place[1], "state_name": place[2], "zip": place[3], "zip4": "",
        "comma": True,
    }


def _render(a: Address) -> str:
    words = [a["house"], a["predir"], a["street"], a["suffix"], a["postdir"]]
    line = " ".join(w for w in words if w)
    if a["unit"]:
        line += f" {a['unit_word']} {a['unit']}" if a["unit_word"] != "#" or rng_hash(a) else f" #{a['unit']}"
    zip_ = a["zip"] + (f"-{a['zip4']}" if a["zip4"] else "")
    sep = ", " if a["comma"] else " "
    return f"{line}{sep}{a['city']}{sep}{a['state']} {zip_}"


def rng_hash(a: Address) -> bool:
    return int(a["house"]) % 2 == 0  # "# 204" and "#204" both occur


# ---- same place, written differently ---------------------------------------------------
def v_case(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    return a, rng.choice(["upper", "lower", "title"])


def v_punct(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    b = dict(a, comma=not a["comma"])
    b["suffix"] = a["suffix"] + "."
    if b["predir"]:
        b["predir"] = ".".join(b["predir"]) + "."
    return b, "spaces"


def v_abbrev(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    return dict(a, suffix=rng.choice(SUFFIXES[a["suffix"]])), None


def v_state(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    return dict(a, state=a["state_name"]), None


def v_zip4(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    return dict(a, zip4=f"{rng.randrange(10000):04d}"), None


def v_directional(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    b = dict(a)
    if not a["predir"] and not a["postdir"]:
        b["predir"] = a["predir"] = rng.choice(list(DIRS))
    if b["predir"]:
        b["predir"] = rng.choice(DIRS[b["predir"]])
    if b["postdir"]:
        b["postdir"] = rng.choice(DIRS[b["postdir"]])
    return b, None


def v_unit_designator(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    if not a["unit"]:
        a["unit"] = str(rng.randrange(1, 500))
    return dict(a, unit_word=rng.choice([w for w in UNIT_WORDS if w not in ("#", a["unit_word"])])), None


def v_ordinal_words(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    if a["street"] not in ORDINAL_STREETS:
        a["street"] = rng.choice(list(ORDINAL_STREETS))
    return dict(a, street=ORDINAL_STREETS[a["street"]]), None


def v_hash_unit(a: Address, rng: random.Random) -> tuple[Address, str | None]:
    if not a["unit"]:
        a["unit"] = str(rng.randrange(1, 500))
    return dict(a, unit_word="#"), None


# ---- another place ----------------------------------------------------------------------
def d_house(a: Address, rng: random.Random) -> Address:
    return dict(a, house=str(int(a["house"]) + rng.choice([1, 2, 10, 100])))


def d_zip(a: Address, rng: random.Random) -> Address:
    return dict(a, zip=f"{(int(a['zip']) + rng.randrange(1, 50)) % 100000:05d}")


def d_suffix(a: Address, rng: random.Random) -> Address:
    return dict(a, suffix=rng.choice([s for s in SUFFIXES if s != a["suffix"]]))


def d_directional(a: Address, rng: random.Random) -> Address:
    return dict(a, predir=rng.choice([d for d in ["", "N", "S", "E", "W"] if d != a["predir"]]))


def d_unit_missing(a: Address, rng: random.Random) -> Address:
    if not a["unit"]:
        a["unit"] = str(rng.randrange(1, 500))
    return dict(a, unit="")


def d_unit_number(a: Address, rng: random.Random) -> Address:
    if not a["unit"]:
        a["unit"] = str(rng.randrange(1, 500))
    return dict(a, unit=a["unit"] + "1")


SAME = {"case": v_case, "punctuation": v_punct, "abbreviation": v_abbrev, "state_name": v_state,
        "zip4": v_zip4, "directional": v_directional, "unit_designator": v_unit_designator,
        "ordinal_words": v_ordinal_words, "hash_unit": v_hash_unit}
APART = {"house_number": d_house, "zip": d_zip, "suffix": d_suffix, "directional": d_directional,
         "unit_missing": d_unit_missing, "unit_number": d_unit_number}


def _style(text: str, style: str | None, rng: random.Random) -> str:
    if style == "upper":
        return text.upper()
    if style == "lower":
        return text.lower()
    if style == "title":
        return text.title()
    if style == "spaces":
        return "  ".join(text.split(" ")) + " "
    return text


def address_pairs(rng: random.Random) -> list[tuple[str, str, int, str]]:
    rows = []
    for kind, fn in SAME.items():
        for _ in range(N_PER_KIND):
            a = _address(rng)
            b, style = fn(a, rng)
            rows.append((_render(a), _style(_render(b), style, rng), 1, kind))
    for kind, fn in APART.items():
        for _ in range(N_PER_KIND):
            a = _address(rng)
            b = fn(a, rng)
            b2, style = rng.choice(list(SAME.values()))(dict(b), rng)  # written differently too
            if kind in ("unit_missing",) and b2["unit"]:
                b2 = b
            if kind == "directional" and b2["predir"] and b2["predir"].rstrip(".")[:1] == (a["predir"] or "?")[:1]:
                b2 = b
            if kind == "suffix" and b2["suffix"] in SUFFIXES.get(a["suffix"], []):
                b2 = b
            rows.append((_render(a), _style(_render(b2), style, rng), 0, kind))
    # Pub 28 and hand-written examples: PO boxes, rural routes, highway names, Saint/St
    for a, b, same, kind in [
        ("PO Box 4421, Austin, TX 78701", "P.O. BOX 4421 AUSTIN TEXAS 78701-4421", 1, "po_box"),
        ("Post Office Box 12, Juneau AK 99801", "PO BOX 12, JUNEAU, ALASKA 99801", 1, "po_box"),
        ("PO Box 12, Juneau AK 99801", "PO Box 13, Juneau AK 99801", 0, "po_box"),
        ("RR 2 Box 152, Ames IA 50010", "Rural Route 2, Box 152, Ames, Iowa 50010", 1, "rural_route"),
        ("RR 2 Box 152, Ames IA 50010", "RR 3 Box 152, Ames IA 50010", 0, "rural_route"),
        ("HC 68 Box 23A, Casper WY 82601", "Highway Contract 68 Box 23A Casper Wyoming 82601", 1, "rural_route"),
        ("1600 Pennsylvania Ave NW, Washington, DC 20500", "1600 PENNSYLVANIA AVENUE N.W. WASHINGTON D.C. 20500", 1, "pub28"),
        ("102 Main St Apt 101, Burlington VT 05401", "102 MAIN ST # 101 BURLINGTON VT 05401", 1, "pub28"),
        ("1 Saint James Pl, Brooklyn NY 11201", "1 St. James Place, Brooklyn, NY 11201", 1, "pub28"),
        ("4700 Hwy 61, Jackson MS 39201", "4700 Highway 61 Jackson Mississippi 39201", 1, "pub28"),
        ("12 Park Place Ct, Franklin TN 37064", "12 PARK PLACE COURT FRANKLIN TN 37064", 1, "pub28"),
        ("12 Park Place Ct, Franklin TN 37064", "12 Park Place, Franklin TN 37064", 0, "pub28"),
    ]:
        rows.append((a, b, same, kind))
    return rows


# ---- names ------------------------------------------------------------------------------
def _person(rng: random.Random) -> dict:
    pool = rng.random()
    surname = rng.choice(ACCENTED_SURNAMES if pool < 0.15 else APOSTROPHE_SURNAMES if pool < 0.3
                         else HYPHEN_SURNAMES if pool < 0.45 else SURNAMES)
    given = rng.choice(ACCENTED_GIVEN if rng.random() < 0.2 else GIVEN)
    middle = rng.choice(["", "", "", rng.choice(GIVEN), rng.choice("ABCDEFGHJKLMRST")])
    return {"given": given, "middle": middle, "surname": surname,
            "suffix": rng.choice(["", "", "", "", "JR", "SR", "II", "III"]), "suffix_form": None,
            "honorific": "", "reorder": False}


def _render_name(p: dict, rng: random.Random) -> str:
    suffix = p["suffix_form"] or (SUFFIX_FORMS[p["suffix"]][0] if p["suffix"] else "")
    given = " ".join(w for w in (p["given"], p["middle"]) if w)
    if p["reorder"]:
        text = f"{p['surname']}, {given}" + (f", {suffix}" if suffix else "")
    else:
        text = " ".join(w for w in (given, p["surname"], suffix) if w)
    return f"{p['honorific']} {text}" if p["honorific"] and not p["reorder"] else text


def _fold_ascii(text: str) -> str:
    import unicodedata
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).replace("Ł", "L").replace("ł", "l").replace("Ø", "O").replace("ø", "o")


def name_pairs(rng: random.Random) -> list[tuple[str, str, int, str]]:
    rows = []
    same = {
        "case": lambda p: (p, rng.choice([str.upper, str.lower, str.title])),
        "accent": lambda p: (dict(p, given=_fold_ascii(p["given"] if p["given"] in ACCENTED_GIVEN else rng.choice(ACCENTED_GIVEN)), surname=_fold_ascii(p["surname"])), None),
        "apostrophe": lambda p: (dict(p, surname=p["surname"].replace("'", rng.choice(["", "’"]))), None),
        "suffix": lambda p: (dict(p, suffix_form=rng.choice(SUFFIX_FORMS[p["suffix"]])), None),
        "reorder": lambda p: (dict(p, reorder=True), None),
        "honorific": lambda p: (dict(p, honorific=rng.choice(HONORIFICS)), None),
        "hyphen": lambda p: (dict(p, surname=p["surname"].replace("-", rng.choice([" ", " - "]))), None),
    }
    for kind, fn in same.items():
        for _ in range(N_PER_KIND):
            p = _person(rng)
            if kind == "apostrophe":
                p["surname"] = rng.choice(APOSTROPHE_SURNAMES)
            if kind == "hyphen":
                p["surname"] = rng.choice(HYPHEN_SURNAMES)
            if kind == "suffix" and not p["suffix"]:
                p["suffix"] = rng.choice(list(SUFFIX_FORMS))
            if kind == "accent" and p["given"] not in ACCENTED_GIVEN:
                p["given"] = rng.choice(ACCENTED_GIVEN)
            q, style = fn(dict(p))
            b = _render_name(q, rng)
            rows.append((_render_name(p, rng), style(b) if style else b, 1, kind))
    apart = {
        "given_name": lambda p: dict(p, given=rng.choice([g for g in GIVEN if g != p["given"]])),
        "surname": lambda p: dict(p, surname=rng.choice([s for s in SURNAMES if s != p["surname"]])),
        "jr_sr": lambda p: dict(p, suffix={"JR": "SR", "SR": "JR", "II": "III", "III": "II"}.get(p["suffix"], "JR")),
    }
    for kind, fn in apart.items():
        for _ in range(N_PER_KIND):
            p = _person(rng)
            if kind == "jr_sr" and not p["suffix"]:
                p["suffix"] = "SR"
            q = fn(dict(p))
            q2, style = rng.choice([same["case"], same["reorder"], same["honorific"]])(dict(q))
            b = _render_name(q2, rng)
            rows.append((_render_name(p, rng), style(b) if style else b, 0, kind))
    return rows


def main() -> None:
    here = Path(__file__).parent
    rng = random.Random(SEED)
    for filename, rows in (("address_pairs.csv", address_pairs(rng)), ("name_pairs.csv", name_pairs(rng))):
        with open(here / filename, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["a", "b", "same", "kind"])
            w.writerows(rows)


if __name__ == "__main__":
    main()
