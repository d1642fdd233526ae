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

from blindmatch.normalize.errors import NormalizationError
from blindmatch.normalize.tables import TABLES
from blindmatch.normalize.text import fold

ALGORITHM_VERSION = "address/1"

_SUFFIXES = TABLES.suffixes
_DIRS = TABLES.directionals
_UNITS = TABLES.units
_UNITS_NEED_NUMBER = TABLES.units_needing_number
_STATES = TABLES.states
_NAME_WORDS = TABLES.name_words
_ORDINALS = TABLES.ordinal_words
_CARDINALS = TABLES.cardinal_words

# Street types frequent enough (US Census TIGER) that, in an address written without
# commas, their first occurrence after the street name is taken as the suffix.
_COMMON_SUFFIXES = frozenset(
    ["ALY", "AVE", "BLVD", "CIR", "CT", "CV", "DR", "EXPY", "FWY", "HWY", "LN", "LOOP", "PKWY", "PL", "PLZ", "RD", "RTE", "SQ", "ST", "TER", "TRL", "WAY", "XING"]
)
_SINGLE_DIRS = frozenset("NSEW")
_PUNCT = str.maketrans(
    {
        **{c: " " for c in "!\"$%&()*+:;<=>?@[\\]^_`{|}~.\t"},
        ",": " , ",
        "#": " # ",
        "'": "",
        "\u2019": "",
    }
)
_ZIP_RE = re.compile(r"(\d{5})(?:-?(\d{4}))?")
_DIGIT_RE = re.compile(r"\d")
_NUMBER_WORDS = frozenset({"#", "NO", "NUMBER", "NBR", "NUM"})
_NUMERIC_ORDINAL_RE = re.compile(r"(\d+)(ST|ND|RD|TH|D)")
_ALNUM_HYPHEN_RE = re.compile(r"[0-9A-Z]+-[0-9A-Z]+")
_NUM_HYPHEN_RE = re.compile(r"\d+-\d+")
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


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 13:
        return f"{n}TH"
    return f"{n}{ {1: 'ST', 2: 'ND', 3: 'RD'}.get(n % 10, 'TH') }"


def _ordinal_phrase(toks: list[str], i: int) -> tuple[int, int] | None:
    """An ordinal written in words starting at ``toks[i]``: (value, index after), or None."""
    tok = toks[i]
    if tok in _ORDINALS:
        return _ORDINALS[tok], i + 1
    if tok not in _CARDINALS:
        return None
    value, j = 0, i
    card = _CARDINALS[tok]
    if card < 10 and j + 1 < len(toks) and toks[j + 1] in ("HUNDRED", "HUNDREDTH"):
        if toks[j + 1] == "HUNDREDTH":
            return card * 100, j + 2
        value, j = card * 100, j + 2
        if j < len(toks) and toks[j] == "AND":
            j += 1
        if j >= len(toks):
            return None
        tok = toks[j]
        if tok in _ORDINALS and _ORDINALS[tok] < 100:
            return value + _ORDINALS[tok], j + 1
        if tok not in _CARDINALS:
            return None
        card = _CARDINALS[tok]
    if card >= 20 and card % 10 == 0 and j + 1 < len(toks):
        nxt = toks[j + 1]
        if nxt in _ORDINALS and _ORDINALS[nxt] < 10:
            return value + card + _ORDINALS[nxt], j + 2
    return None


def _tokens(text: str) -> list[str]:
    """Upper-case tokens with punctuation resolved; ``","`` tokens mark commas."""
    out: list[str] = []
    for tok in fold(text).translate(_PUNCT).split():
        if "-" in tok:
            if _NUM_HYPHEN_RE.fullmatch(tok):
                out.append(tok)  # ZIP+4 or a hyphenated house number (Queens: 123-45)
            elif _ALNUM_HYPHEN_RE.fullmatch(tok) and _DIGIT_RE.search(tok):
                out.append(tok.replace("-", ""))  # 123-A, 4-B
            else:
                out.extend(p for p in tok.split("-") if p)  # TWENTY-FIRST, WILKES-BARRE
        else:
            out.append(tok)
    return out


def _merge_words(toks: list[str]) -> list[str]:
    """Ordinals in words to digits and split directionals (``N W``, ``NORTH WEST``) to one token."""
    out: list[str] = []
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        if tok in _ORDINALS or tok in _CARDINALS:
            hit = _ordinal_phrase(toks, i)
            if hit is not None:
                out.append(_ordinal(hit[0]))
                i = hit[1]
                continue
        m = _NUMERIC_ORDINAL_RE.fullmatch(tok)
        if m:
            out.append(_ordinal(int(m.group(1))))
            i += 1
            continue
        if i + 1 < n and tok in _DIRS and toks[i + 1] in _DIRS:
            a, b = _DIRS[tok], _DIRS[toks[i + 1]]
            if a in ("N", "S") and b in ("E", "W") and (len(tok) == 1) == (len(toks[i + 1]) == 1):
                out.append(a + b)
                i += 2
                continue
        out.append(tok)
        i += 1
    return out


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
    if tok == "#":
        if i + 1 < n and toks[i + 1] not in (",", "#"):
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
            return _unit_id(toks[j]), j + 1
        return None
    # FRONT, REAR, UPPER...: ordinary words too, so a unit only right after a street type
    return (std, i + 1) if i >= 2 and toks[i - 1] in _SUFFIXES else None


def _map_word(tok: str) -> str:
    """A street or city word in its Pub 28 abbreviation."""
    return _DIRS.get(tok) or _SUFFIXES.get(tok) or _NAME_WORDS.get(tok) or tok


def _street_end_without_commas(toks: list[str], start: int, stop: int) -> int:
    """Where the street ends when no comma says so: after the first suffix or ``RTE 9``."""
    best = -1
    for common_only in (True, False):
        for i in range(start, stop):
            std = _SUFFIXES.get(toks[i])
            if std is None or (common_only and std not in _COMMON_SUFFIXES):
                continue
            if i + 1 < stop and toks[i + 1].isdigit():
                return i + 2  # highway-style name: HWY 61, COUNTY RD 12
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


def parse_address(text: str, field: str = "address") -> Address:
    """Parse a one-line US address; raises :class:`NormalizationError` naming ``field``."""
    if text is None or not text.strip():
        raise NormalizationError(field, "missing")
    toks, state, zip5, zip4 = _split_state_zip(_tokens(text))
    toks = _merge_words(toks)
    if not toks:
        raise NormalizationError(field, "no street address or box")

    house = predir = name = suffix = postdir = box = ""
    street: list[str] = []
    units: list[str] = []
    n = len(toks)
    po = _match_prefix(toks, _PO_BOX_PREFIXES)
    route = None if po else _match_prefix(toks, _ROUTE_PREFIXES)
    if po:
        i = po[0]
        if i < n and toks[i] == "#":
            i += 1
        if i >= n or toks[i] == ",":
            raise NormalizationError(field, "PO box without a number")
        kind, box, i = "po_box", f"PO BOX {_unit_id(toks[i])}", i + 1
    elif route:
        i = route[0]
        if i < n and toks[i] in ("NO", "#"):
            i += 1
        if i >= n or not toks[i].isdigit():
            raise NormalizationError(field, "rural route without a number")
        kind, box, i = "route", f"{route[1]} {int(toks[i])}", i + 1
        if i < n and toks[i] == ",":
            i += 1
        if i + 1 < n and toks[i] == "BOX":
            j = i + 2 if toks[i + 1] != "#" else i + 3
            if j - 1 < n:
                box, i = f"{box} BOX {_unit_id(toks[j - 1])}", j
    else:
        if not _DIGIT_RE.match(toks[0]):
            raise NormalizationError(field, "no house number")
        kind, house, i = "street", toks[0], 1
        if i < n and _FRACTION_RE.fullmatch(toks[i]):
            house, i = f"{house} {toks[i]}", i + 1
        start = i
        last_comma = max((k for k in range(start, n) if toks[k] == ","), default=-1)
        stop = last_comma if last_comma >= 0 else n
        unit_start = next((k for k in range(start + 1, stop) if _unit_at(toks, k)), -1)
        if unit_start >= 0:
            end = unit_start
        elif last_comma >= 0:
            end = stop
        else:
            end = _street_end_without_commas(toks, start, stop)
        street = [t for t in toks[start:end] if t != ","]
        if not street:
            raise NormalizationError(field, "no street name")
        i = end
        # a bare numeric street name before a suffix is an ordinal: 5 AVE = 5TH AVE
        if (
            len(street) >= 2
            and street[-2].isdigit()
            and street[-1] in _SUFFIXES
            and (len(street) == 2 or street[-3] in _DIRS)
        ):
            street[-2] = _ordinal(int(street[-2]))
        street = [_map_word(t) for t in street]
        predir, name, suffix, postdir = _label_street(street)

    # secondary units, then (up to the last comma, if any) leftovers that look like units
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
    city = " ".join(_map_word(t) for t in toks[i:] if t != ",")

    line = " ".join([house, *street]) if kind == "street" else box
    if zip5:
        place = zip5
    elif city and state:
        place = f"{city} {state}"
    else:
        raise NormalizationError(field, "no ZIP code, and no city and state")
    without_unit = f"{line}, {place}"
    canonical = f"{line} # {' # '.join(units)}, {place}" if units else without_unit
    return Address(
        kind=kind,
        house_number=house,
        predirectional=predir,
        street_name=name,
        suffix=suffix,
        postdirectional=postdir,
        units=tuple(units),
        box=box,
        city=city,
        state=state,
        zip5=zip5,
        zip4=zip4,
        canonical=canonical,
        without_unit=without_unit,
    )


def _label_street(street: list[str]) -> tuple[str, str, str, str]:
    """Split mapped street words into (predirectional, name, suffix, postdirectional), for display."""
    lo, hi = 0, len(street)
    predir = suffix = postdir = ""
    if hi - lo >= 3 and street[hi - 1] in _DIRS and street[hi - 2] in _SUFFIXES:
        postdir, hi = street[hi - 1], hi - 1
    if hi - lo >= 2 and street[hi - 1] in _SUFFIXES and not (hi - lo == 2 and street[lo] in _SUFFIXES):
        suffix, hi = street[hi - 1], hi - 1
    if hi - lo >= 2 and street[lo] in _DIRS:
        predir, lo = street[lo], lo + 1
    return predir, " ".join(street[lo:hi]), suffix, postdir


def normalize_address(text: str, field: str = "address") -> str:
    """The canonical one-line form, e.g. ``"123 N MAIN ST # 4, 62704"``."""
    return parse_address(text, field).canonical
