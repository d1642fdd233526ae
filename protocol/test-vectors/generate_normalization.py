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

from blindmatch.normalize import NormalizationError, default_schema, normalize_address, normalize_name

ROOT = Path(__file__).resolve().parent.parent.parent


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
    return _pick(real, 500) + _pick(corpus, 200), _pick(names, 250) + _pick(febrl, 100)


def build() -> dict[str, object]:
    schema = default_schema()
    addresses, names = _inputs()
    records = [{"name": n, "address": a} for n, a in zip(names[:200], addresses[200:400], strict=True)]
    tier_keys = []
    for r in records:
        for side in ("holder", "requester"):
            try:
                keys = [{"tier": t, "key": k.hex()} for t, k in schema.match_keys(r, side)]  # type: ignore[arg-type]
            except NormalizationError as exc:
                keys, side_error = [], exc.reason
            else:
                side_error = None
            tier_keys.append({"record": r, "side": side, "keys": keys, "rejected": side_error})
    return {
        "description": "blindmatch normalisers address/2, name/2 and the built-in schema's tier keys: protocol/SPEC.md section 8",
        "fingerprint": schema.fingerprint.hex(),
        "addresses": [_canonical(normalize_address, a) for a in addresses],
        "names": [_canonical(normalize_name, n) for n in names],
        "tier_keys": tier_keys,
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("normalization.json")
    out.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
