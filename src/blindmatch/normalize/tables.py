"""Loads the Pub 28 and name tables shipped as data files, once, at import.

The files are copies of ``protocol/tables/`` (a test checks they are equal): the protocol
folder is normative, the package carries them so that it runs without the repository.

The tables are data, not code, so that they can be reviewed against the publication
and so that their digest can enter the schema fingerprint: two peers with different
tables would turn the same person into different bytes, and must refuse to match.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from importlib import resources

TABLE_FILES: tuple[str, ...] = (
    "street_suffixes.csv",
    "directionals.csv",
    "secondary_units.csv",
    "states.csv",
    "name_words.csv",
    "ordinals.csv",
    "name_affixes.csv",
    "street_suffix_extras.csv",
    "address_notes.csv",
    "nicknames.csv",
)


def _rows(filename: str) -> list[list[str]]:
    """Data rows of a table: comments and blank lines skipped, cells stripped."""
    text = resources.files("blindmatch.normalize").joinpath("data").joinpath(filename).read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return [[cell.strip() for cell in row] for row in csv.reader(lines)]


def _variant_map(rows: list[list[str]], sep: str | None = None) -> dict[str, str]:
    """``variant -> standard`` from rows ``standard,variants``; the standard maps to itself."""
    out: dict[str, str] = {}
    for row in rows:
        standard = row[0]
        out[standard] = standard
        for variant in row[-1].split(sep):
            out[variant.strip()] = standard
    return out


@dataclass(frozen=True)
class Tables:
    """All lookup tables, as plain dicts and sets for O(1) use on the hot path."""

    suffixes: dict[str, str]
    directionals: dict[str, str]
    units: dict[str, str]
    units_needing_number: frozenset[str]
    states: dict[tuple[str, ...], str]
    state_max_words: int
    name_words: dict[str, str]
    ordinal_words: dict[str, int]
    cardinal_words: dict[str, int]
    honorifics: frozenset[str]
    postnominals: frozenset[str]
    generational: dict[str, str]
    particles: frozenset[str]
    note_words: frozenset[str]
    nickname_formals: dict[str, tuple[str, ...]]
    formal_nicknames: dict[str, tuple[str, ...]]
    digest: str


def _load() -> Tables:
    raw = {name: _rows(name) for name in TABLE_FILES}

    units_rows = raw["secondary_units.csv"]
    states: dict[tuple[str, ...], str] = {}
    for code, variants in raw["states.csv"]:
        states[(code,)] = code
        for variant in variants.split("|"):
            states[tuple(variant.split())] = code

    ordinal_words: dict[str, int] = {}
    cardinal_words: dict[str, int] = {}
    for word, value, kind in raw["ordinals.csv"]:
        (ordinal_words if kind == "ordinal" else cardinal_words)[word] = int(value)

    honorifics: set[str] = set()
    postnominals: set[str] = set()
    generational: dict[str, str] = {}
    particles: set[str] = set()
    for kind, standard, variants in raw["name_affixes.csv"]:
        words = variants.split()
        if kind == "honorific":
            honorifics.update(words)
        elif kind == "postnominal":
            postnominals.update(words)
        elif kind == "generational":
            generational.update(dict.fromkeys(words, standard))
        elif kind == "particle":
            particles.update(words)
        else:
            raise ValueError(f"name_affixes.csv: unknown kind {kind!r}")

    formals: dict[str, set[str]] = {}
    nicks: dict[str, set[str]] = {}
    for formal, nick in raw["nicknames.csv"]:
        formals.setdefault(nick, set()).add(formal)
        nicks.setdefault(formal, set()).add(nick)
    suffixes = _variant_map(raw["street_suffixes.csv"])
    for variant, standard in _variant_map(raw["street_suffix_extras.csv"]).items():
        suffixes.setdefault(variant, standard)  # Pub 28 wins where both list a spelling

    # Digest over the parsed rows (not the file bytes), so line endings or comments do not
    # change it but every change of content does.
    h = hashlib.sha256()
    for name in TABLE_FILES:
        h.update(name.encode() + b"\x00")
        for row in raw[name]:
            h.update("\x1f".join(row).encode("utf-8") + b"\x1e")
    return Tables(
        suffixes=suffixes,
        directionals=_variant_map(raw["directionals.csv"]),
        units=_variant_map(units_rows),
        units_needing_number=frozenset(r[0] for r in units_rows if r[1] == "1"),
        states=states,
        state_max_words=max(len(k) for k in states),
        name_words=_variant_map(raw["name_words.csv"]),
        ordinal_words=ordinal_words,
        cardinal_words=cardinal_words,
        honorifics=frozenset(honorifics),
        postnominals=frozenset(postnominals),
        generational=generational,
        particles=frozenset(particles),
        note_words=frozenset(row[0] for row in raw["address_notes.csv"]),
        nickname_formals={k: tuple(sorted(v)) for k, v in formals.items()},
        formal_nicknames={k: tuple(sorted(v)) for k, v in nicks.items()},
        digest=h.hexdigest(),
    )


TABLES: Tables = _load()
