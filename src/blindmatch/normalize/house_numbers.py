"""Hyphenated house numbers: one number as written, and the range a few of them stand for.

Pub 28 (Appendix D1) keeps the hyphen of a hyphenated primary number: in Queens
``31-16 30TH AVE`` is one house (block 31, house 16), as are Hawaii's ``94-1060``. The
canonical form therefore keeps ``A-B`` as written and never merges it with ``A``, ``B``
or another ``A-C``. Elsewhere ``310-316`` (or, abbreviated, ``310-16``) names a building
from 310 to 316: :func:`house_range` gives that reading, for a review tier that lets the
abbreviated and the full spelling of one range meet. A range never meets one of its
numbers (``310``): Queens numbers of the same shape (``30-36``) would then meet other houses.
"""

from __future__ import annotations

import re

_HYPHENATED_RE = re.compile(r"(\d+)-(\d+)")
# the widest span read as one building's range (310-316, 8938-40); wider is a Hawaii-style number
MAX_RANGE_SPAN = 100


def house_range(house: str) -> tuple[int, int] | None:
    """(first, last) when ``house`` reads as a range of one side of a street, else None.

    ``A-B``: a ``B`` shorter than ``A`` replaces A's last digits (``310-16`` -> 310 to 316);
    it is a range when the last number is above the first by at most ``MAX_RANGE_SPAN`` and
    both have the same parity (one side of a street). ``31-16`` (last below first),
    ``118-35`` (118 to 135: parities differ) and ``94-1060`` (too wide) are not ranges.
    """
    m = _HYPHENATED_RE.fullmatch(house)
    if m is None or m.group(1).startswith("0"):
        return None
    first, last_text = m.group(1), m.group(2)
    if len(last_text) < len(first):
        last_text = first[: len(first) - len(last_text)] + last_text
    lo, hi = int(first), int(last_text)
    if not (lo < hi <= lo + MAX_RANGE_SPAN) or (hi - lo) % 2:
        return None
    return lo, hi


def full_range(house: str) -> str:
    """The range written in full (``310-16`` -> ``310-316``), or ``""`` when ``house`` is no range."""
    r = house_range(house)
    return f"{r[0]}-{r[1]}" if r else ""

