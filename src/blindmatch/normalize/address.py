"""US postal addresses to a canonical USPS Publication 28 form.

Exact PSI only finds a person when both sides produce the same bytes, so the canonical
form keeps exactly what identifies a delivery point and drops what is written loosely:

* the delivery line: house number, directionals, street name (ordinals as digits),
  suffix, each word in its Pub 28 abbreviation; or ``PO BOX n`` / ``RR n BOX m`` / ``HC n BOX m``;
* secondary units by their identifier only (``APT 4``, ``UNIT 4``, ``# 4`` -> ``# 4``),
  because designators are used loosely;
* the 5-digit ZIP, which with the delivery line names the place (Pub 28 sec. 2); city and
  state are then left out, so ``ST LOUIS`` / ``SAINT LOUIS`` or a missing state cannot
  break a match. Without a ZIP the city and state code stand in its place.

A deterministic token grammar driven by the Pub 28 tables (``data/``) does the parsing:
it is about ten times faster than the CRF parser ``usaddress`` and behaves the same for
every input on both peers. Commas, when present, mark where the city starts; without
them the first common street suffix (or a highway-style ``RTE 9``) ends the street.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blindmatch.normalize.address_words import cardinal_phrase, drop_notes, merge_words, ordinal, tokens
from blindmatch.normalize.errors import NormalizationError
from blindmatch.normalize.tables import TABLES

ALGORITHM_VERSION = "address/3"

_SUFFIXES = TABLES.suffixes
_DIRS = TABLES.directionals
_UNITS = TABLES.units
_UNITS_NEED_NUMBER = TABLES.units_needing_number
_STATES = TABLES.states
_NAME_WORDS = TABLES.name_words

# Street types frequent enough (US Census TIGER) that their first occurrence after the
# street name is taken as the suffix.
_COMMON_SUFFIXES = frozenset(
    ["ALY", "AVE", "BLVD", "CIR", "CT", "CV", "DR", "EXPY", "FWY", "HWY", "LN", "LOOP", "PKWY", "PL", "PLZ", "RD", "RTE", "SQ", "ST", "TER", "TRL", "WAY", "XING"]
)
# Street types that name a numbered road: "HWY 61", "RTE 9" (and "COUNTY RD 12", see below).
_HIGHWAY_TYPES = frozenset(["HWY", "RTE", "FWY", "EXPY", "TPKE", "PIKE"])
_ROAD_AUTHORITIES = frozenset(["COUNTY", "CO", "STATE", "FARM", "TOWNSHIP", "TWP", "FOREST", "FM", "RANCH"])
_SINGLE_DIRS = frozenset("NSEW")
_ZIP_RE = re.compile(r"(\d{5})(?:-?(\d{4}))?")
_DIGIT_RE = re.compile(r"\d")
_NUMBER_WORDS = frozenset({"#", "NO", "NUMBER", "NBR", "NUM"})
_NUMERIC_ORDINAL_RE = re.compile(r"(\d+)(ST|ND|RD|TH|D)")
_FRACTION_RE = re.compile(r"\d+/\d+")

_PO_BOX_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    (p, "PO BOX")
    for p in (("POST", "OFFICE", "BOX"), ("P", "O", "BOX"), ("PO", "BOX"), ("POBOX",), ("P", "O", "B"), ("POB",), ("BOX",))
)
_ROUTE_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("RURAL", "ROUTE"), "RR"),
    (("R", "R"), "RR"),
    (("RR",), "RR"),
    (("RFD",), "RR"),
    (("HIGHWAY", "CONTRACT"), "HC"),
    (("HC",), "HC"),
    (("STAR", "ROUTE"), "HC"),
)


@dataclass(frozen=True, slots=True)
class Address:
    """Parsed components and the canonical forms that match keys are built from."""

    kind: str  # "street", "po_box" or "route"
    house_number: str
    predirectional: str
    street_name: str
    suffix: str
    postdirectional: str
    units: tuple[str, ...]
    box: str
    city: str
    state: str
    zip5: str
    zip4: str
    canonical: str
    without_unit: str

    @property
    def unit(self) -> str:
        """The secondary unit identifiers (``"4B"``, ``"5 # 3"``), or ``""`` when there is none."""
        return " # ".join(self.units)

    @property
    def place(self) -> str:
        """What names the town: the ZIP, or without one the city and state."""
        return self.zip5 or f"{self.city} {self.state}"

    def form(
        self, *, suffix: bool = True, postdirectional: bool = True, units: bool = True, place: str | None = None,
        house: str | None = None,
    ) -> str:
        """The canonical form with the street type, post-directional or units left out, another place or house number."""
        if self.kind == "street":
            words = [self.house_number if house is None else house, self.predirectional, self.street_name]
            words += [self.suffix if suffix else "", self.postdirectional if postdirectional else ""]
            line = " ".join(w for w in words if w)
        else:
            line = self.box
        if units and self.units:
            line = f"{line} # {' # '.join(self.units)}"
        return f"{line}, {self.place if place is None else place}"


def _is_unit_id(tok: str) -> bool:
    return tok != "," and ((len(tok) == 1 and tok.isalpha()) or bool(_DIGIT_RE.search(tok)))


def _unit_id(tok: str) -> str:
    return tok.lstrip("0") or "0" if tok.isdigit() else tok


def _unit_at(toks: list[str], i: int) -> tuple[str, int] | None:
    """A secondary unit starting at ``toks[i]``: (identifier, index after), or None."""
    n = len(toks)
    tok = toks[i]
    floor = _NUMERIC_ORDINAL_RE.fullmatch(tok)
    if floor and i + 1 < n and _UNITS.get(toks[i + 1]) == "FL" and (i + 2 >= n or toks[i + 2] not in _SUFFIXES):
        return _unit_id(floor.group(1)), i + 2  # "3RD FLOOR" is FL 3; only floors are named so
    if tok in _NUMBER_WORDS:
        # "# 4"; "NUMBER 5C" or "NO 4" only after the street (i > 1), with a digit in the
        # identifier, and not in a highway's name ("HWY NO 130")
        if tok != "#" and _SUFFIXES.get(toks[i - 1]) in _HIGHWAY_TYPES and i + 1 < n and toks[i + 1].isdigit():
            return None
        if i + 1 < n and toks[i + 1] not in (",", "#") and (tok == "#" or (i > 1 and _DIGIT_RE.search(toks[i + 1]))):
            return _unit_id(toks[i + 1]), i + 2
        return None
    std = _UNITS.get(tok)
    if std is None:
        return None
    j = i + 1
    if j < n and toks[j] in _NUMBER_WORDS:  # APT # 4, APT NO 4, APARTMENT NUMBER 4
        j += 1
    if std in _UNITS_NEED_NUMBER:
        if j < n and (_is_unit_id(toks[j]) or (j > i + 1 and toks[j] != ",")):
            ident = toks[j]
            m = _NUMERIC_ORDINAL_RE.fullmatch(ident) if std == "FL" else None
            return _unit_id(m.group(1) if m else ident), j + 1
        return None
    # PENTHOUSE, REAR, UPPER...: ordinary words too, so a unit only right after a street type
    # (or another unit); an identifier with a digit may follow ("PH 4")
    if i >= 2 and (toks[i - 1] in _SUFFIXES or toks[i - 1] in _UNITS or _DIGIT_RE.search(toks[i - 1])):
        if j < n and toks[j] != "," and _DIGIT_RE.search(toks[j]):
            return f"{std} {_unit_id(toks[j])}", j + 1
        return std, i + 1
    return None


def _highway_number_at(toks: list[str], i: int, stop: int) -> int:
    """Tokens after ``toks[i]`` that, with it, name a numbered road: 1 for HWY 61, 2 for HWY NO 61,
    1 for COUNTY RD 12 or COUNTY RD MM (a county code); 0 when ``toks[i]`` does not start one."""
    std = _SUFFIXES.get(toks[i])
    county = std == "RD" and i > 0 and toks[i - 1] in _ROAD_AUTHORITIES
    if not (std in _HIGHWAY_TYPES or county) or i + 1 >= stop:
        return 0
    nxt = toks[i + 1]
    if nxt.isdigit() or (county and (bool(_DIGIT_RE.search(nxt)) or (len(nxt) <= 3 and nxt.isalpha()))):
        return 1
    if nxt in ("NO", "NUMBER") and i + 2 < stop and toks[i + 2].isdigit():
        return 2
    return 0


def _street_end(toks: list[str], start: int, stop: int) -> int:
    """Where the street ends within ``toks[start:stop]``: after the first suffix or ``HWY 61``."""
    best = -1
    for common_only in (True, False):
        for i in range(start, stop):
            std = _SUFFIXES.get(toks[i])
            if std is None or (common_only and std not in _COMMON_SUFFIXES):
                continue
            taken = _highway_number_at(toks, i, stop)
            if taken:
                return i + 1 + taken
            if i == start:
                continue  # the street name itself: PARK AVE, COURT ST
            best = i + 1
            break
        if best > 0:
            break
    if best < 0:
        return stop
    # a run of street types belongs to the street (PARK PLACE CT); ST may be SAINT of the city
    while best < stop and _SUFFIXES.get(toks[best]) in _COMMON_SUFFIXES and toks[best] not in _NAME_WORDS:
        best += 1
    if best < stop:
        nxt = toks[best]
        if nxt in _DIRS and (len(_DIRS[nxt]) == 2 or nxt in _SINGLE_DIRS):
            best += 1  # post-directional; NORTH spelt out more likely starts the city
    return best


def _split_state_zip(toks: list[str]) -> tuple[list[str], str, str, str]:
    """Strip ZIP and state off the end: (rest, state, zip5, zip4)."""
    end = len(toks)
    while end and toks[end - 1] == ",":
        end -= 1
    zip5 = zip4 = ""
    if end > 2 and len(toks[end - 1]) == 4 and toks[end - 1].isdigit() and _ZIP_RE.fullmatch(toks[end - 2]):
        toks = [*toks[: end - 2], f"{toks[end - 2]}-{toks[end - 1]}"]  # ZIP+4 written "62704 1234"
        end -= 1
    if end > 2 and len(toks[end - 1]) == 4 and toks[end - 1].isdigit() and (toks[end - 2],) in _STATES:
        toks = [*toks[: end - 1], "0" + toks[end - 1]]  # a ZIP that lost its leading zero: "MA 2134"
    if end:
        m = _ZIP_RE.fullmatch(toks[end - 1])
        if m and end > 1:
            zip5, zip4 = m.group(1), m.group(2) or ""
            end -= 1
            while end and toks[end - 1] == ",":
                end -= 1
    state = ""
    for k in range(min(TABLES.state_max_words, end - 1), 0, -1):
        window = tuple(toks[end - k : end])
        code = _STATES.get(window)
        if code is not None:
            state, end = code, end - k
            break
    while end and toks[end - 1] == ",":
        end -= 1
    return toks[:end], state, zip5, zip4


def _match_prefix(toks: list[str], prefixes: tuple[tuple[tuple[str, ...], str], ...]) -> tuple[int, str] | None:
    """(number of tokens, label) of the first prefix that ``toks`` starts with."""
    for prefix, label in prefixes:
        k = len(prefix)
        if tuple(toks[:k]) == prefix:
            return k, label
    return None


def _house_number_first(toks: list[str], field: str) -> list[str]:
    """Tokens starting with the house number: number words to digits, a leading place name dropped."""
    if _DIGIT_RE.match(toks[0]):
        return toks
    words = cardinal_phrase(toks)
    if words is not None:
        return [str(words[0]), *toks[words[1] :]]
    # "LINCOLN CENTER 10 PLAZA DR": a building or place name before the house number
    for k in range(1, len(toks) - 1):
        tok = toks[k]
        if tok == ",":
            continue
        if tok.isdigit() and toks[k - 1] not in _UNITS and toks[k - 1] not in _NUMBER_WORDS and toks[k + 1] != ",":
            return toks[k:]
    raise NormalizationError(field, "no house number")


def _street_tokens(toks: list[str], start: int) -> tuple[list[str], int]:
    """The street's tokens from ``start`` and the index after them (before units and city)."""
    n = len(toks)
    first_comma = next((k for k in range(start, n) if toks[k] == ","), n)
    unit_start = next((k for k in range(start + 1, first_comma) if _unit_at(toks, k)), -1)
    stop = unit_start if unit_start >= 0 else first_comma
    end = _street_end(toks, start, stop)
    if end < stop and first_comma < n:
        # words left between the street type and the comma: the city written twice
        # ("77 LARKSPUR AVE DAYTON, DAYTON"), a bare unit ("AVE 212"), or part of the street
        # ("COUNTY ROAD MM", "PARK AVE SOUTH")
        tail = toks[end:stop]
        after = [t for t in toks[first_comma + 1 :] if t != ","]
        if after[: len(tail)] == tail:
            return toks[start:end], stop
        if not all(_is_unit_id(t) and _DIGIT_RE.search(t) for t in tail):
            return toks[start:stop], stop
    elif (end == stop and first_comma < n and stop - start >= 3 and toks[stop - 1].isdigit()
          and toks[stop - 2] not in _SUFFIXES and toks[stop - 2] not in _NUMBER_WORDS):
        # no street type, a number last before the comma: "1020 W BRYN MAWR 211, ..." is a unit
        return toks[start : stop - 1], stop - 1
    return toks[start:end], end


def parse_address(text: str, field: str = "address") -> Address:
    """Parse a one-line US address; raises :class:`NormalizationError` naming ``field``."""
    if text is None or not text.strip():
        raise NormalizationError(field, "missing")
    toks, state, zip5, zip4 = _split_state_zip(drop_notes(tokens(text)))
    toks = merge_words(toks)
    while toks and toks[0] == ",":
        toks = toks[1:]
    if not toks:
        raise NormalizationError(field, "no street address or box")

    house = predir = name = suffix = postdir = box = ""
    units: list[str] = []
    po = _match_prefix(toks, _PO_BOX_PREFIXES)
    route = None if po else _match_prefix(toks, _ROUTE_PREFIXES)
    if po:
        kind, box, i = "po_box", *_po_box(toks, po[0], field)
    elif route:
        kind, box, i = "route", *_route(toks, route, field)
    else:
        toks = _house_number_first(toks, field)
        kind, house, i = "street", toks[0], 1
        if i < len(toks) and _FRACTION_RE.fullmatch(toks[i]):
            house, i = f"{house} {toks[i]}", i + 1
        elif (i + 1 < len(toks) and len(toks[i]) == 1 and toks[i].isalpha() and toks[i] not in _SINGLE_DIRS
              and house.isdigit() and toks[i + 1] != "," and len(toks[i + 1]) > 1 and toks[i + 1] not in _SUFFIXES and toks[i + 1] not in _DIRS):
            house, i = house + toks[i], i + 1  # "221 B BAKER ST" = "221B BAKER ST"
        street, i = _street_tokens(toks, i)
        # commas go, and the NO of "HWY NO 130"
        street = [t for k, t in enumerate(street) if t != "," and not (
            t in _NUMBER_WORDS and t != "#" and k > 0 and _SUFFIXES.get(street[k - 1]) in _HIGHWAY_TYPES)]
        n = len(toks)
        if (i + 1 < n and toks[i] == "," and toks[i + 1] in _DIRS and len(street) >= 2 and street[-1] in _SUFFIXES
                and (i + 2 == n or toks[i + 2] == "," or _unit_at(toks, i + 2))):
            street, i = [*street, toks[i + 1]], i + 2  # "1800 M ST, NW, ..."
        if not street:
            raise NormalizationError(field, "no street name")
        predir, name, suffix, postdir = _label_street(street)
    i, units = _units(toks, i)
    city = " ".join(_DIRS.get(t) or _NAME_WORDS.get(t) or t for t in toks[i:] if t != ",")
    if not zip5 and not (city and state):
        raise NormalizationError(field, "no ZIP code, and no city and state")
    a = Address(kind, house, predir, name, suffix, postdir, tuple(units), box, city, state, zip5, zip4, "", "")
    object.__setattr__(a, "canonical", a.form())
    object.__setattr__(a, "without_unit", a.form(units=False))
    return a


def _po_box(toks: list[str], i: int, field: str) -> tuple[str, int]:
    n = len(toks)
    if i < n and toks[i] in _NUMBER_WORDS:
        i += 1
    if i >= n or toks[i] == ",":
        raise NormalizationError(field, "PO box without a number")
    return f"PO BOX {_unit_id(toks[i])}", i + 1


def _route(toks: list[str], route: tuple[int, str], field: str) -> tuple[str, int]:
    n, i = len(toks), route[0]
    if i < n and toks[i] in ("NO", "#"):
        i += 1
    if i >= n or not toks[i].isdigit():
        raise NormalizationError(field, "rural route without a number")
    box, i = f"{route[1]} {int(toks[i])}", i + 1
    if i < n and toks[i] == ",":
        i += 1
    if i + 1 < n and toks[i] == "BOX":
        j = i + 2 if toks[i + 1] != "#" else i + 3
        if j - 1 < n:
            box, i = f"{box} BOX {_unit_id(toks[j - 1])}", j
    return box, i


def _units(toks: list[str], i: int) -> tuple[int, list[str]]:
    """Secondary units from ``toks[i]``, then (up to the last comma) leftovers that look like units."""
    n = len(toks)
    units: list[str] = []
    limit = max((k for k in range(i, n) if toks[k] == ","), default=-1)
    while i < n:
        if toks[i] == ",":
            i += 1
            continue
        hit = _unit_at(toks, i)
        if hit is not None:
            units.append(hit[0])
            i = hit[1]
        elif i < limit or (not units and _is_unit_id(toks[i]) and any(c.isdigit() for c in toks[i])):
            units.append(_unit_id(toks[i]))  # a unit without designator: "123 MAIN ST, 4B, ..."
            i += 1
        else:
            break
    return i, units


def _is_street_type(tok: str) -> bool:
    """A last street word is its type when the type is common (AVE, however spelt) or written
    as its abbreviation (PT, SHR); a rarer type written in full (POINT, SHORE, CREEK) is taken
    as a name word, so that "LAKE SHORE" and "LAKE SHORE BLVD" differ only by the type."""
    std = _SUFFIXES.get(tok)
    return std is not None and (std in _COMMON_SUFFIXES or tok == std)


def _label_street(street: list[str]) -> tuple[str, str, str, str]:
    """(predirectional, name, suffix, postdirectional) with Pub 28 abbreviations where Pub 28 uses them.

    Only the directionals and the street type (suffix) are abbreviated: name words that
    happen to be street types stay as written (MILL CREEK RD, not MILL CRK RD); name words
    of the name-word table (SAINT = ST, MOUNT = MT) take its one spelling. A leading type
    word with no type at the end (AVENUE B, HIGHWAY 61) is abbreviated too.
    """
    lo, hi = 0, len(street)
    predir = suffix = postdir = ""
    if hi - lo >= 2 and street[hi - 1] in _DIRS and street[hi - 2] not in _DIRS:
        postdir, hi = _DIRS[street[hi - 1]], hi - 1
    if hi - lo >= 2 and _is_street_type(street[hi - 1]) and not (
        hi - lo == 2 and street[lo] in _DIRS and _SUFFIXES[street[hi - 1]] not in _COMMON_SUFFIXES
    ):
        suffix, hi = _SUFFIXES[street[hi - 1]], hi - 1
        if hi - lo >= 2 and suffix in _HIGHWAY_TYPES and street[hi - 1].isdigit():
            hi, suffix = hi + 1, ""  # "HWY 61" is the name, not a name and a type
    if hi - lo >= 2 and street[lo] in _DIRS:
        predir, lo = _DIRS[street[lo]], lo + 1
    words = street[lo:hi]
    # a bare number directly before the street type is an ordinal: 5 AVE = 5TH AVE
    if suffix and len(words) == 1 and words[0].isdigit():
        words = [ordinal(int(words[0]))]
    mapped = [_NAME_WORDS.get(w, w) for w in words]
    for k, w in enumerate(words):
        numbered = k + 1 < len(words) and (words[k + 1].isdigit() or (k > 0 and words[k - 1] in _ROAD_AUTHORITIES))
        leading = k == 0 and not suffix and len(words) == 2 and (len(words[1]) == 1 or words[1].isdigit())
        if w in _SUFFIXES and (numbered or leading):
            mapped[k] = _SUFFIXES[w]
    return predir, " ".join(mapped), suffix, postdir


def normalize_address(text: str, field: str = "address") -> str:
    """The canonical one-line form, e.g. ``"123 N MAIN ST # 4, 62704"``."""
    return parse_address(text, field).canonical
