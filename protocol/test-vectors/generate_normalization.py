"""Writes normalization.json: canonical forms (or rejections) of addresses and names, and tier keys.

Inputs are real address strings of the usaddress package's labeled data
(benchmarks/data/usaddress_labeled.jsonl), the repository's corpora (tests/data/) and
FEBRL names (benchmarks/data/febrl4_names.csv), so an implementation written from
protocol/ alone can check its output byte for byte. A rejection is given as its reason
(section 8.3), e.g. ``"no house number"``.

Run: .venv/bin/python protocol/test-vectors/generate_normalization.py   (a test checks the file)
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from blindmatch.normalize import NormalizationError, Schema, builtin_schema, normalize_address, normalize_name

ROOT = Path(__file__).resolve().parent.parent.parent


# hyphenated house numbers (Pub 28 D1): one number as written, dashes however typed
HOUSE_NUMBERS = [
    "310-16 Grant St, Springfield IL 62704",
    "310-316 Grant St, Springfield IL 62704",
    "310 - 316 Grant St, Springfield IL 62704",
    "310\u2013316 Grant St, Springfield IL 62704",
    "310--16 Grant St, Springfield IL 62704",
    "31-16 30th Ave, Astoria NY 11102",
    "31-06 30th Ave, Astoria NY 11102",
    "118-35 Queens Blvd, Forest Hills NY 11375",
    "94-1060 Kahuamoku St, Waipahu HI 96797",
    "8938-40 Grant St, Springfield IL 62704",
    "12-A Main St, Springfield IL 62704",
]
# one input per rule of SPEC 8.3 that real data rarely exercises (found by an independent
# implementation written from protocol/ alone): each pins a sentence of the text
SPEC_RULE_ADDRESSES = [
    "12 Main St (rear (side)) Springfield IL 62704",  # innermost brackets only, one pass
    "3102 Wilkes\u2013Barre Bayberry Dr SW Cedar Rapids 52404",  # a dash not between digits stays
    "1238 Center St Apartment \u2014 17C, Hilo, HI 96720",  # a lone dash is a token
    "JONAS KELSTRUP\n\n 1019 MARKET ST\n SAN FRANCISCO CA 94103",  # white space splits
    "12 Stra\u00dfe Rd Springfield IL 62704",  # \u00df upper-cases to SS
    "85201 1234",  # a ZIP+4 join needs three tokens
    "AVE S KENWOOD 606371755 5553",  # a joined token longer than ZIP+4 is no ZIP
    "10 park dr ONE HUNDREDTH s cherry hill 08003-1128",  # ONE HUNDREDTH
    "41728 HUNDRED FIRST S 6th Dr # A, Franklin, TN 37064",  # HUNDRED counts as tens: 101ST
    "13021 nw 1 st apt # 109 pembroke pines fl, 33028",  # a designator skips a number word
    "0 LIGHTHOUSE VW REAR # 02134 LOT 9 AYDLETT 27916",  # so does a needs_number 0 one
    "10693 NW 110th Market Pkwy LOWER 0012, Salem, OR 97301",  # STD id loses leading zeros
    "2153 U S 401 HWY S LOUISBURG 27549",  # a HWY type after a number is no street type
    "1 S.E. Bay 1234 Expy. Apt. E Lexington KY 40507",  # idem
    "96 02134 Cir. SE Fairfax VA 22030",  # the ordinal of 02134 is 2134TH
    "1549 Laurel Rd Southeast Apt. Annapolis, MD 21401",  # a spelt-out two-letter directional
    "100 route river e toms 37 nj 08753",  # idem after a non-common type
    "66 harbor, se, wi 53703",  # comma-directional needs a street of two tokens
    "12188 Old HWY Number 12-14 6 # Highway, Eutawville, SC 29048",  # HWY NUMBER + a non-number
    "212 W. Washington 5 # 1506, Chicago, 60606",  # a number before the comma starts the units
    "100 1st Ave , 52401 Unit 1504 Cedar Rapids IA",  # units go on after the last comma
    "RR 02 Box 007, Ames, Iowa 50010",  # route and box numbers lose leading zeros
    "221 B # 4 Baker St, Springfield IL 62704",  # no house letter before a one-character token
    "",  # missing
]
SPEC_RULE_NAMES = [
    "&",  # no word at all: only a title
    "Major Judge Mrs Williams III",  # leading honorifics first, then trailing suffixes
    "Bj\u00f6rn van Jr Lewis Junior IV",  # a generational word goes before particles join
    "Mary de la Cruz",  # a chain of particles joins on
    "O'Brien 3",  # Soundex of a word without letters keeps the word
    "   ",  # missing
]
RANGE_RECORDS = [
    {"name": "Ann Lee", "address": a}
    for a in ("310-16 Grant St, Springfield IL 62704", "310-316 Grant St, Springfield IL 62704",
              "31-16 30th Ave, Astoria NY 11102", "105-25 65th Ave, Forest Hills NY 11375")
]


def _pick(values: list[str], count: int) -> list[str]:
    """A fixed spread of distinct values: sorted by a hash, so the choice does not follow file order."""
    unique = sorted(set(values), key=lambda v: hashlib.sha256(v.encode()).digest())
    return unique[:count]


def _canonical(fn, value: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    try:
        return {"input": value, "canonical": fn(value)}
    except NormalizationError as exc:
        return {"input": value, "rejected": exc.reason}


def _inputs() -> tuple[list[str], list[str]]:
    real = [json.loads(line)["raw"] for line in (ROOT / "benchmarks/data/usaddress_labeled.jsonl").open(encoding="utf-8")]
    with open(ROOT / "tests/data/address_pairs.csv", encoding="utf-8") as f:
        corpus = [v for row in csv.DictReader(f) for v in (row["a"], row["b"])]
    with open(ROOT / "tests/data/name_pairs.csv", encoding="utf-8") as f:
        names = [v for row in csv.DictReader(f) for v in (row["a"], row["b"])]
    with open(ROOT / "benchmarks/data/febrl4_names.csv", encoding="utf-8") as f:
        febrl = [f"{r['given_name']} {r['surname']}".strip() for r in csv.DictReader(f)]
    return (_pick(real, 500) + _pick(corpus, 200) + HOUSE_NUMBERS + SPEC_RULE_ADDRESSES,
            _pick(names, 250) + _pick(febrl, 100) + SPEC_RULE_NAMES)


def _tier_keys(schema: Schema, records: list[dict[str, str]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for r in records:
        for side in ("holder", "requester"):
            try:
                keys = [{"tier": t, "key": k.hex()} for t, k in schema.match_keys(r, side)]  # type: ignore[arg-type]
            except NormalizationError as exc:
                keys, side_error = [], exc.reason
            else:
                side_error = None
            out.append({"record": r, "side": side, "keys": keys, "rejected": side_error})
    return out


def build() -> dict[str, object]:
    schema, extended = builtin_schema("default"), builtin_schema("extended")
    addresses, names = _inputs()
    records = [{"name": n, "address": a} for n, a in zip(names[:200], addresses[200:400], strict=True)] + RANGE_RECORDS
    return {
        "description": "blindmatch normalisers address/3, name/2 and the built-in schemas' tier keys: protocol/SPEC.md section 8",
        "fingerprint": schema.fingerprint.hex(),
        "addresses": [_canonical(normalize_address, a) for a in addresses],
        "names": [_canonical(normalize_name, n) for n in names],
        "tier_keys": _tier_keys(schema, records),
        "extended": {"fingerprint": extended.fingerprint.hex(), "tier_keys": _tier_keys(extended, records[:100] + RANGE_RECORDS)},
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("normalization.json")
    out.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
