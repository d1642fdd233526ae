"""Text folding shared by the normalisers: Unicode to upper-case ASCII letters."""

from __future__ import annotations

import unicodedata

# Latin letters that NFKD does not decompose into a base letter and a mark.
_LATIN_EXTRA = str.maketrans({"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Æ": "AE",
                              "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "TH", "þ": "th", "ı": "i"})


def fold(text: str) -> str:
    """NFKD with combining marks removed, upper-cased (``"Zoë"`` -> ``"ZOE"``, ``"ß"`` -> ``"SS"``).

    ASCII input (nearly all records) skips the Unicode work, which keeps the hot path fast.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_LATIN_EXTRA))
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text.upper()
