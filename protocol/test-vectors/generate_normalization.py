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
    return _pick(real, 500) + _pick(corpus, 200) + HOUSE_NUMBERS, _pick(names, 250) + _pick(febrl, 100)


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
