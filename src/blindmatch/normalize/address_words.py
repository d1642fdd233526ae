"""Tokens of an address line: punctuation, notes, number words and compound directionals.

Split from :mod:`blindmatch.normalize.address` so that the grammar there reads as the
protocol states it; everything here turns free text into a clean token list first.
"""

from __future__ import annotations

import re

from blindmatch.normalize.tables import TABLES
from blindmatch.normalize.text import fold

_DIRS = TABLES.directionals
_ORDINALS = TABLES.ordinal_words
_CARDINALS = TABLES.cardinal_words
_NOTES = TABLES.note_words

_PUNCT = str.maketrans(
    {
        **{c: " " for c in "!\"$%&()*+:;<=>?@[\\]^_`{|}~.\t"},
        ",": " , ",
        "#": " # ",
        "'": "",
        "\u2019": "",
    }
)
_PARENS_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_DIGIT_RE = re.compile(r"\d")
_NUMERIC_ORDINAL_RE = re.compile(r"(\d+)(ST|ND|RD|TH|D)")
_ALNUM_HYPHEN_RE = re.compile(r"[0-9A-Z]+-[0-9A-Z]+")
_NUM_HYPHEN_RE = re.compile(r"\d+-\d+")
# a dash between two numbers, however typed (spaces, en dash, minus sign, doubled): one hyphen
_NUMBER_DASH_RE = re.compile(r"(?<=\d)\s*[-\u2010-\u2015\u2212]+\s*(?=\d)")


def ordinal(n: int) -> str:
    """``21`` -> ``"21ST"``."""
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


def cardinal_phrase(toks: list[str]) -> tuple[int, int] | None:
    """A house number written in words at the start (``TWELVE``, ``ONE HUNDRED TEN``): (value, tokens used)."""
    value, j, n = 0, 0, len(toks)
    if j < n and toks[j] in _CARDINALS and _CARDINALS[toks[j]] < 10 and j + 1 < n and toks[j + 1] == "HUNDRED":
        value, j = _CARDINALS[toks[j]] * 100, j + 2
        if j < n and toks[j] == "AND":
            j += 1
    if j < n and toks[j] in _CARDINALS and toks[j] != "HUNDRED":
        card = _CARDINALS[toks[j]]
        value, j = value + card, j + 1
        if card >= 20 and card % 10 == 0 and j < n and toks[j] in _CARDINALS and _CARDINALS[toks[j]] < 10:
            value, j = value + _CARDINALS[toks[j]], j + 1
    if j == 0 or value == 0 or j >= n:
        return None
    return value, j


def tokens(text: str) -> list[str]:
    """Upper-case tokens with punctuation resolved, bracketed notes removed; ``","`` marks commas."""
    out: list[str] = []
    folded = fold(text)
    if "(" in folded or "[" in folded:
        folded = _PARENS_RE.sub(" , ", folded)
    folded = _join_number_dashes(folded)
    for tok in folded.translate(_PUNCT).split():
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


def _join_number_dashes(text: str) -> str:
    """``310 - 316``, ``310--316`` or an en dash between the numbers -> ``310-316`` (Pub 28 D1: one number)."""
    if "-" not in text and text.isascii():
        return text
    return _NUMBER_DASH_RE.sub("-", text)


def drop_notes(toks: list[str]) -> list[str]:
    """Remove delivery notes: from a note word (``BETWEEN``, ``NEAR``...) to the next comma."""
    if not _NOTES.intersection(toks):
        return toks
    out: list[str] = []
    skipping = False
    for i, tok in enumerate(toks):
        if tok == ",":
            skipping = False
        elif tok in _NOTES and i > 0:
            skipping = True
        if not skipping:
            out.append(tok)
    return out


def merge_words(toks: list[str]) -> list[str]:
    """Ordinals in words to digits and split directionals (``N W``, ``NORTH WEST``) to one token."""
    out: list[str] = []
    i, n = 0, len(toks)
    while i < n:
        tok = toks[i]
        if tok in _ORDINALS or tok in _CARDINALS:
            hit = _ordinal_phrase(toks, i)
            if hit is not None:
                out.append(ordinal(hit[0]))
                i = hit[1]
                continue
        m = _NUMERIC_ORDINAL_RE.fullmatch(tok)
        if m:
            out.append(ordinal(int(m.group(1))))
            i += 1
            continue
        if tok == "U" and i + 1 < n and toks[i + 1] == "S":
            out.append("US")  # U.S. HIGHWAY
            i += 2
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
