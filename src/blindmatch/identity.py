"""Names of organisations and officials, as the policy, the configs and the audit log accept them.

One rule for all three, so that a name the holder's policy accepts can always be written
to the audit log (a session must never be debited and then fail to be recorded). The rule
is SPEC.md section 10.2.2 (``ident``); ``tests/test_spec_ident.py`` checks this module
against the rule and the examples written there.

Real names are allowed: letters and digits of any script (``José Núñez``), combining marks
after them, single spaces and a few separators common in names (``O'Brien & Sons, Inc.``,
``Dept. of Revenue (North)``). Everything else is refused: control and format characters,
quotes, other whitespace and line breaks could forge log lines or disguise a name in a
report. Values must already be in NFC and are never normalised here, because the policy,
the signed request and the log compare names byte for byte.
"""

from __future__ import annotations

import unicodedata

IDENTITY_MAX = 128  # UTF-8 bytes; fits the 256-byte name fields of a signed request
IDENTITY_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd"})
IDENTITY_ASCII = frozenset(".'&:@/=+,()#_-")
_MARK_BASES = frozenset({"L", "M", "N"})  # first letters of the categories a mark may follow


def identity_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable identity, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    problem = _problem(value)
    return None if problem is None else f"must be an identity (1..{IDENTITY_MAX} UTF-8 bytes): {problem}"


def _problem(value: str) -> str | None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "not encodable as UTF-8"
    if not 0 < size <= IDENTITY_MAX:
        return f"{size} bytes long"
    if not unicodedata.is_normalized("NFC", value):
        return "not in Unicode normalisation form NFC"
    if value[0] == " " or value[-1] == " " or "  " in value:
        return "words must be separated by single spaces, without leading or trailing space"
    previous = " "
    for position, char in enumerate(value, 1):
        category = unicodedata.category(char)
        if char != " " and char not in IDENTITY_ASCII and category not in IDENTITY_CATEGORIES:
            return f"character {position} (U+{ord(char):04X}, category {category}) is not allowed"
        if category[0] == "M" and unicodedata.category(previous)[0] not in _MARK_BASES:
            return f"character {position} (U+{ord(char):04X}) is a mark that does not follow a letter or digit"
        previous = char
    return None
