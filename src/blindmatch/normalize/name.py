"""Personal names to one canonical form: ``GIVEN [MIDDLE] SURNAME [SUFFIX]``.

Folding (NFKD, accents and case), apostrophes dropped (O'Brien = OBRIEN), hyphens and
periods as spaces, "LAST, FIRST" reordered, honorifics and post-nominals dropped. Surname
particles are joined to the word after them so that "De La Cruz", "DeLaCruz" and
"De-La-Cruz" agree. Generational suffixes are kept in one spelling (JUNIOR, JR. -> JR;
2ND -> II) because a father and son at one address are two people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blindmatch.normalize.errors import NormalizationError
from blindmatch.normalize.tables import TABLES
from blindmatch.normalize.text import fold

ALGORITHM_VERSION = "name/2"

_HONORIFICS = TABLES.honorifics
_POSTNOMINALS = TABLES.postnominals
_GENERATIONAL = TABLES.generational
_PARTICLES = TABLES.particles
_DROP_TRAILING = _POSTNOMINALS | _GENERATIONAL.keys()
# everything but letters, digits and commas becomes a space; apostrophes vanish
_TRANS = str.maketrans(
    {
        **{chr(c): " " for c in range(128) if not chr(c).isalnum() and chr(c) not in ",'"},
        "'": "",
        "\u2019": "",
        "\u02bc": "",
        "`": "",
    }
)


# a nickname written beside the name: "MARGARET (PEGGY) OLSEN", 'MARGARET "PEGGY" OLSEN'
_ASIDE_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\"[^\"]*\"|\u201c[^\u201d]*\u201d")


@dataclass(frozen=True, slots=True)
class Name:
    """A parsed name: its words in order (given name first) and the generational suffix."""

    words: tuple[str, ...]
    suffix: str

    @property
    def canonical(self) -> str:
        return " ".join((*self.words, self.suffix)) if self.suffix else " ".join(self.words)


def normalize_name(text: str, field: str = "name") -> str:
    """Canonical name, e.g. ``"Dr. O'Brien-Smith, José Jr."`` -> ``"JOSE OBRIEN SMITH JR"``."""
    return parse_name(text, field).canonical


def parse_name(text: str, field: str = "name") -> Name:
    """Parse a personal name; raises :class:`NormalizationError` naming ``field``."""
    if text is None or not text.strip():
        raise NormalizationError(field, "missing")
    folded = fold(text)
    if "(" in folded or '"' in folded or "[" in folded or "\u201c" in folded:
        stripped = _ASIDE_RE.sub(" ", folded)
        folded = stripped if stripped.strip(" ,") else folded
    folded = folded.translate(_TRANS)
    if not folded.isascii():
        folded = "".join(c if c.isascii() else " " for c in folded)
    suffix = ""
    if "," in folded:
        parts = [p.split() for p in folded.split(",")]
        # segments made only of suffixes or post-nominals ("SMITH, JOHN, JR.") are not names
        kept: list[list[str]] = []
        for words in parts:
            if words and all(w in _DROP_TRAILING for w in words):
                for w in words:
                    suffix = _GENERATIONAL.get(w, suffix)
            elif words:
                while len(words) > 1 and words[0] in _HONORIFICS:
                    words = words[1:]  # "DR. SMITH, JOHN"
                kept.append(words)
        # "ANA M RUIZ, CPA" has no second name segment once post-nominals are set aside
        if len(kept) >= 2:
            words = kept[1] + kept[0] + [w for p in kept[2:] for w in p]  # LAST, FIRST -> FIRST LAST
        else:
            words = kept[0] if kept else []
    else:
        words = folded.split()
    # leading honorifics, trailing suffixes / post-nominals (only with a name left over)
    lo, hi = 0, len(words)
    if all(w in _HONORIFICS for w in words):
        raise NormalizationError(field, "no name, only a title")
    # a title is dropped only when a given name and a surname remain: "MAJOR TAYLOR" is a name
    while hi - lo > 2 and words[lo] in _HONORIFICS:
        lo += 1
    while hi - lo > 2 and words[hi - 1] in _DROP_TRAILING:
        hi -= 1
        suffix = _GENERATIONAL.get(words[hi], suffix)
    out: list[str] = []
    joinable = False  # the last word is a surname particle (or a chain of them) that is not the first word
    for i in range(lo, hi):
        w = words[i]
        gen = _GENERATIONAL.get(w)
        if gen is not None and i > lo and len(w) > 1:
            suffix = gen  # "SMITH, JOHN JR" reordered puts JR before the surname
            continue
        if joinable:
            out[-1] += w
            joinable = w in _PARTICLES
        else:
            out.append(w)
            joinable = len(out) > 1 and w in _PARTICLES
    if not out or not any(c.isalpha() for c in "".join(out)):
        raise NormalizationError(field, "no name")
    return Name(tuple(out), suffix)
