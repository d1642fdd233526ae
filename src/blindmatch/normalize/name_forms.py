"""Looser forms of a parsed name, for the review tiers of a schema (protocol/SPEC.md 8.4.3).

Each form answers one way the same person is written differently: words split or joined
(MARY ANN / MARYANN), a nickname, given name
and surname swapped, a word missing (middle name, one part of a compound surname), a
middle name written as its initial, a one-letter typo (American Soundex per word). The
generational suffix is kept exactly in every form, so JR and SR never meet.
"""

from __future__ import annotations

from blindmatch.normalize.name import Name
from blindmatch.normalize.tables import TABLES

_FORMALS = TABLES.nickname_formals
_NICKNAMES = TABLES.formal_nicknames
_SOUNDEX = {c: str(d) for d, letters in enumerate(("AEIOUYHW", "BFPV", "CGJKQSXZ", "DT", "L", "MN", "R")) for c in letters}


def _with(words: tuple[str, ...] | list[str], suffix: str) -> str:
    return " ".join((*words, suffix)) if suffix else " ".join(words)


def nickname_query(n: Name) -> str:
    """The requester's nickname form: the given name's one formal name, else the given name itself.

    Empty when the given name is in no nickname group (no holder form can then differ from
    the exact name), so the requester spends no element on it.
    """
    given = n.words[0]
    formals = _FORMALS.get(given, ())
    if len(formals) == 1 and given not in _NICKNAMES:
        given = formals[0]
    elif not formals and given not in _NICKNAMES:
        return ""
    return _with((given, *n.words[1:]), n.suffix)


def nickname_forms(n: Name) -> tuple[str, ...]:
    """The holder's nickname forms: the name with its given name replaced by each formal name and nickname of it."""
    given = n.words[0]
    candidates = set(_FORMALS.get(given, ())) | set(_NICKNAMES.get(given, ()))
    if given in _NICKNAMES:
        candidates.add(given)
    return tuple(sorted(_with((g, *n.words[1:]), n.suffix) for g in candidates))


def joined(n: Name) -> str:
    """The words written as one ("MARY ANN" = "MARYANN", "MORR ISON" = "MORRISON"), the suffix apart."""
    return _with(["".join(n.words)], n.suffix)


def sorted_words(n: Name) -> str:
    """The words in alphabetical order (suffix last): "SMITH JOHN" = "JOHN SMITH"."""
    return _with(sorted(n.words), n.suffix)


def one_word_less(n: Name) -> tuple[str, ...]:
    """The name with one word after the given name removed (names of three words or more)."""
    w = n.words
    if len(w) < 3:
        return ()
    return tuple(sorted({_with(w[:k] + w[k + 1 :], n.suffix) for k in range(1, len(w))}))


def middle_initials(n: Name) -> str:
    """Given name, the initials of the middle words, surname (names of three words or more), else empty."""
    w = n.words
    if len(w) < 3:
        return ""
    return _with((w[0], *(m[0] for m in w[1:-1]), w[-1]), n.suffix)


def soundex(word: str) -> str:
    """American Soundex (four characters; H and W do not separate equal codes)."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return word
    out, last = letters[0], _SOUNDEX.get(letters[0], "")
    for c in letters[1:]:
        code = _SOUNDEX.get(c, "")
        if c in "HW":
            continue
        if code != last and code != "0":
            out += code
        last = code
    return (out + "000")[:4]


def phonetic(n: Name) -> str:
    """Soundex of every word, in order, and the suffix as written."""
    return _with([soundex(w) for w in n.words], n.suffix)


# the shortest word a letter is deleted from: shorter words give too many neighbours (JO / BO)
MIN_DELETION_LETTERS = 3


def _deletions(word: str) -> set[str]:
    if len(word) < MIN_DELETION_LETTERS:
        return set()
    return {word[:k] + word[k + 1 :] for k in range(len(word))}


def one_deletion(n: Name) -> tuple[str, ...]:
    """The name, and the name with one letter deleted from the given name or from the surname.

    Both sides emit this set (symmetric-delete spelling correction): two names that differ
    by one inserted, deleted or replaced letter (or two swapped neighbours) in the given
    name or the surname share a member, JON / JOHN by JON, SMYTH / SMITH by SMTH. Words of
    fewer than three letters and the middle words are kept as they are; the suffix is kept.
    """
    w = n.words
    forms = {_with(w, n.suffix)}
    last = len(w) - 1
    forms.update(_with((d, *w[1:]), n.suffix) for d in _deletions(w[0]))
    if last > 0:
        forms.update(_with((*w[:last], d), n.suffix) for d in _deletions(w[last]))
    return tuple(sorted(forms))
