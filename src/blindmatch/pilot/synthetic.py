"""Synthetic people at realistic US addresses, and queries that write them differently.

Used by the demo and the benchmarks: no real person is involved. Names come from common
US given names and surnames, streets from common US street names, and cities with
their real ZIP codes (public facts). People are distinct by construction: record ``i``
is a bijective mix of ``i`` into (given name, surname, house number, street, suffix,
city), so 10**7 people can be streamed without a set of seen records.
"""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Iterator, Sequence

from blindmatch.normalize.tables import TABLES

GIVEN = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Dorothy", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa", "Edward", "Deborah", "Ronald", "Stephanie", "Timothy", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen", "Anna", "Larry", "Brenda", "Justin", "Pamela", "Scott", "Nicole", "Brandon", "Emma", "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Frank", "Debra", "Alexander", "Rachel", "Raymond", "Catherine", "Patrick", "Carolyn", "Jack", "Janet", "Dennis", "Ruth", "Jerry", "Maria", "Jose", "Zoë", "Chloé", "Renée", "André", "Noël", "Inés", "Björn", "Sofía", "Raúl", "Joaquín", "Aoife", "Seán"]
SURNAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "O'Brien", "O'Connor", "D'Angelo", "McDonald", "MacArthur", "Garcia-Lopez", "Smith-Jones", "Peña", "Muñoz", "Núñez", "Ibáñez", "Müller", "Schröder"]
STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park", "Walnut", "Spring", "North", "Ridge", "Lincoln", "Church", "Willow", "Meadow", "Forest", "Jackson", "Sunset", "Highland", "River", "Franklin", "Chestnut", "Jefferson", "Madison", "Adams", "Center", "Mill", "Hickory", "Dogwood", "Lakeview", "Cherry", "Spruce", "Birch", "Laurel", "Valley", "Holly", "Sycamore", "Magnolia", "Poplar", "Railroad", "Woodland", "Broad", "Market", "Front", "Union", "Liberty", "Prospect", "Pleasant", "Summit", "Forest-Hill", "Grove", "Aspen", "Hillcrest", "Fairview", "Jones", "Johnson", "Smith", "Green", "King", "Kennedy", "Martin-Luther-King", "Bay", "Heritage", "Colonial", "Windsor", "1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th", "14th", "21st", "22nd", "23rd", "31st", "42nd", "101st", "125th"]
SUFFIXES = ["St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Pl", "Way", "Cir", "Ter", "Pkwy", "Trl", "Hwy"]
CITIES = (
    ("New York", "NY", "10001"), ("New York", "NY", "10027"), ("Los Angeles", "CA", "90012"),
    ("Chicago", "IL", "60614"), ("Houston", "TX", "77002"), ("Phoenix", "AZ", "85004"),
    ("Philadelphia", "PA", "19103"), ("San Antonio", "TX", "78205"), ("San Diego", "CA", "92101"),
    ("Dallas", "TX", "75201"), ("Austin", "TX", "78701"), ("Jacksonville", "FL", "32202"),
    ("Columbus", "OH", "43215"), ("Charlotte", "NC", "28202"), ("Indianapolis", "IN", "46204"),
    ("Seattle", "WA", "98101"), ("Denver", "CO", "80202"), ("Washington", "DC", "20001"),
    ("Boston", "MA", "02108"), ("Nashville", "TN", "37203"), ("Detroit", "MI", "48226"),
    ("Portland", "OR", "97205"), ("Las Vegas", "NV", "89101"), ("Memphis", "TN", "38103"),
    ("Louisville", "KY", "40202"), ("Baltimore", "MD", "21202"), ("Milwaukee", "WI", "53202"),
    ("Albuquerque", "NM", "87102"), ("Tucson", "AZ", "85701"), ("Fresno", "CA", "93721"),
    ("Sacramento", "CA", "95814"), ("Kansas City", "MO", "64106"), ("Atlanta", "GA", "30303"),
    ("Omaha", "NE", "68102"), ("Raleigh", "NC", "27601"), ("Miami", "FL", "33130"),
    ("Minneapolis", "MN", "55401"), ("Tulsa", "OK", "74103"), ("Cleveland", "OH", "44113"),
    ("Saint Louis", "MO", "63101"), ("Saint Paul", "MN", "55101"), ("Fort Worth", "TX", "76102"),
    ("Springfield", "IL", "62701"), ("Springfield", "MA", "01103"), ("Burlington", "VT", "05401"),
    ("Boise", "ID", "83702"), ("Anchorage", "AK", "99501"), ("Honolulu", "HI", "96813"),
    ("Des Moines", "IA", "50309"), ("Little Rock", "AR", "72201"), ("Salt Lake City", "UT", "84111"),
    ("Providence", "RI", "02903"), ("Hartford", "CT", "06103"), ("Richmond", "VA", "23219"),
    ("Charleston", "WV", "25301"), ("Mount Vernon", "NY", "10550"), ("Lake Forest", "IL", "60045"),
    ("Wilmington", "DE", "19801"), ("Cheyenne", "WY", "82001"), ("Bismarck", "ND", "58501"),
)
UNIT_IDS = ("1", "2", "3", "4", "5", "6", "7", "8", "10", "12", "1A", "2B", "3C", "101", "204", "305", "1210")
_HOUSES = 9999
_RADICES = (len(GIVEN), len(SURNAMES), _HOUSES, len(STREETS), len(SUFFIXES), len(CITIES))
_SPACE = math.prod(_RADICES)
_STATE_NAMES = {code: " ".join(w.capitalize() for w in name) for name, code in TABLES.states.items() if len(name) > 1 or len(name[0]) > 2}
_STATE_FULL = {code: name for code, name in sorted(_STATE_NAMES.items(), key=lambda kv: -len(kv[1]))}
for _words, _code in TABLES.states.items():
    if " ".join(_words) in ("DISTRICT OF COLUMBIA",) or (len(_words[0]) > 4 and _code not in _STATE_FULL):
        _STATE_FULL[_code] = " ".join(w.capitalize() for w in _words)
_SUFFIX_VARIANTS: dict[str, list[str]] = {}
for _variant, _std in TABLES.suffixes.items():
    _SUFFIX_VARIANTS.setdefault(_std, []).append(_variant)
_DIR_WORDS = {"N": "North", "S": "South", "E": "East", "W": "West"}
_ORDINAL_WORDS = {v: k for k, v in TABLES.ordinal_words.items()}
_TENS = {v: k for k, v in TABLES.cardinal_words.items() if v >= 20}
_ACCENTS = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú", "n": "ñ", "c": "ç"}


def _mix(seed: int) -> tuple[int, int]:
    rng = random.Random(f"blindmatch-synthetic-{seed}")
    while True:
        a = rng.randrange(_SPACE // 3, _SPACE)
        if math.gcd(a, _SPACE) == 1:
            return a, rng.randrange(_SPACE)


def _person(i: int, a: int, b: int) -> dict[str, str]:
    q = (a * i + b) % _SPACE
    d: list[int] = []
    for r in _RADICES:
        q, x = divmod(q, r)
        d.append((x + (q * 2654435761 >> 5)) % r)  # a bijection of x for each higher part q
    g, s, h, st, sx, c = d
    extra = (i * 0x9E3779B1 + b) & 0xFFFF  # extras do not take part in distinctness
    name = f"{GIVEN[g]} {SURNAMES[s]}"
    gen = extra % 50
    if gen == 0:
        name += " Jr"
    elif gen == 1:
        name += " Sr"
    elif gen == 2:
        name += " III"
    street = STREETS[st].replace("-", " ")
    pre = (extra >> 6) % 12
    if pre < 4:
        street = f"{'NSEW'[pre]} {street}"
    unit = (extra >> 10) % 6
    unit_text = f" Apt {UNIT_IDS[(extra >> 3) % len(UNIT_IDS)]}" if unit == 0 else ""
    city, state, zip5 = CITIES[c]
    return {"name": name, "address": f"{h + 1} {street} {SUFFIXES[sx]}{unit_text}, {city}, {state} {zip5}"}


def iter_people(n: int, seed: int, chunk: int = 65536) -> Iterator[list[dict[str, str]]]:
    """The people of :func:`generate_people`, in chunks of ``chunk``, for populations too large to hold."""
    if n > _SPACE:
        raise ValueError(f"at most {_SPACE} distinct synthetic people")
    a, b = _mix(seed)
    for start in range(0, n, chunk):
        yield [_person(i, a, b) for i in range(start, min(n, start + chunk))]


def generate_people(n: int, seed: int) -> list[dict[str, str]]:
    """``n`` distinct people ``{"name", "address"}`` in clean form, the same for the same seed."""
    return [p for part in iter_people(n, seed, chunk=max(n, 1)) for p in part]


def _ordinal_words(n: int) -> str | None:
    if n in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[n].capitalize()
    if n < 100 and n // 10 * 10 in _TENS and n % 10 in _ORDINAL_WORDS:
        return f"{_TENS[n // 10 * 10].capitalize()}-{_ORDINAL_WORDS[n % 10].capitalize()}"
    return None


def _case(text: str, rng: random.Random) -> str:
    return rng.choice((str.upper, str.lower, str.title, str))(text)


def vary_address(address: str, rng: random.Random) -> str:
    """The same address written differently, with variants the normaliser handles exactly."""
    line, city, state_zip = address.rsplit(", ", 2)
    state, zip5 = state_zip.split()
    words = line.split()
    out: list[str] = []
    for k, w in enumerate(words):
        up = w.upper()
        if k == 0:
            out.append(w)
        elif up in _DIR_WORDS and rng.random() < 0.5:
            out.append(rng.choice((_DIR_WORDS[up], f"{up}.")))
        elif (up in _SUFFIX_VARIANTS and k == len(words) - 1) or (up in _SUFFIX_VARIANTS and k + 1 < len(words) and words[k + 1] == "Apt"):
            out.append(rng.choice(_SUFFIX_VARIANTS[up]) if rng.random() < 0.6 else w + ".")
        elif w == "Apt":
            out.append(rng.choice(("Apt", "Apt.", "Apartment", "Unit", "#", "Ste", "Suite", "# ")).strip())
        elif up[-2:] in ("ST", "ND", "RD", "TH") and up[:-2].isdigit() and rng.random() < 0.4 and (word := _ordinal_words(int(up[:-2]))):
            out.append(word)
        else:
            out.append(w)
    line = " ".join(out)
    if rng.random() < 0.4:
        state = _STATE_FULL.get(state, state)
    if rng.random() < 0.3:
        zip5 = f"{zip5}-{rng.randrange(10000):04d}"
    sep = rng.choice((", ", " ", ",  "))
    text = f"{line}{sep}{city}{sep}{state} {zip5}"
    return _case(text, rng)


def vary_name(name: str, rng: random.Random) -> str:
    """The same name written differently: case, order, honorific, accents, apostrophes, suffix forms."""
    words = name.split()
    gen = words.pop() if words[-1] in ("Jr", "Sr", "III") else ""
    given, surname = words[0], " ".join(words[1:])
    if "'" in surname and rng.random() < 0.5:
        surname = surname.replace("'", rng.choice(("", "’")))
    if "-" in surname and rng.random() < 0.5:
        surname = surname.replace("-", " ")
    if rng.random() < 0.2:
        given = "".join(_ACCENTS.get(c, c) if rng.random() < 0.3 else c for c in given)
    gen_text = {"Jr": ("Jr.", "Junior", "JR"), "Sr": ("Sr.", "Senior"), "III": ("III", "3rd")}.get(gen, ("",))
    gen = rng.choice(gen_text)
    if rng.random() < 0.3:
        text = f"{surname}, {given}" + (f", {gen}" if gen else "")
    else:
        text = f"{given} {surname}" + (f" {gen}" if gen else "")
    if rng.random() < 0.15:
        text = f"{rng.choice(('Mr.', 'Mrs', 'Ms.', 'Dr.', 'Dr'))} {text}" if "," not in text else text
    return _case(text, rng)


def vary_person(person: dict[str, str], rng: random.Random) -> dict[str, str]:
    """The same person written differently (name and address), other columns copied."""
    return {**person, "name": vary_name(person["name"], rng), "address": vary_address(person["address"], rng)}


def _near_miss(person: dict[str, str], rng: random.Random) -> dict[str, str]:
    """Another person who looks alike: other house number, Jr vs Sr, other unit, other given name."""
    name, address = person["name"], person["address"]
    kind = rng.randrange(4)
    if kind == 2 and " Apt " not in address:
        kind = 0  # a unit where the holder has none is a tier-2 match by design, not a miss
    if kind == 0:
        house, rest = address.split(" ", 1)
        address = f"{int(house) % _HOUSES + 1} {rest}"
    elif kind == 1:
        name = name[:-3] + " Sr" if name.endswith(" Jr") else name.removesuffix(" Sr").removesuffix(" III") + " Jr"
    elif kind == 2:
        line, place = address.split(", ", 1)
        line = line.split(" Apt ")[0]
        address = f"{line} Apt {rng.choice(UNIT_IDS)}9, {place}"
    else:
        given, rest = name.split(" ", 1)
        name = f"{rng.choice([g for g in GIVEN[:40] if g != given])} {rest}"
    return {"name": name, "address": address}


def _order_date(rng: random.Random, today: datetime.date) -> str:
    d = today - datetime.timedelta(days=rng.randrange(1, 3000))
    return rng.choice((d.isoformat(), f"{d.month:02d}/{d.day:02d}/{d.year}", f"{d.month}/{d.day}/{d.year % 100:02d}"))


def make_queries(
    people: Sequence[dict[str, str]], m: int, match_share: float, seed: int, today: datetime.date
) -> tuple[list[dict[str, str]], list[bool]]:
    """``m`` queries (name, address, order_date) and whether each is one of ``people``.

    Matches are varied copies of people; non-matches are other synthetic people or near
    misses of ones in ``people`` that are checked not to be in it.
    """
    rng = random.Random(f"blindmatch-queries-{seed}")
    known = {(p["name"], p["address"]) for p in people}
    n_match = round(m * match_share) if people else 0
    queries: list[dict[str, str]] = []
    truth: list[bool] = []
    for _ in range(n_match):
        queries.append(vary_person(dict(rng.choice(people)), rng))
        truth.append(True)
    strangers = iter_people(10**9, seed ^ 0x5EED5EED, chunk=1024)
    pool: list[dict[str, str]] = []
    while len(queries) < m:
        if people and rng.random() < 0.3:
            cand = _near_miss(rng.choice(people), rng)
        else:
            if not pool:
                pool = next(strangers)
            cand = pool.pop()
        if (cand["name"], cand["address"]) in known:
            continue
        queries.append(vary_person(cand, rng))
        truth.append(False)
    order = list(range(m))
    rng.shuffle(order)
    out_q = [{**queries[i], "order_date": _order_date(rng, today)} for i in order]
    return out_q, [truth[i] for i in order]
