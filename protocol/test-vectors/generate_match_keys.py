"""Writes match-keys.json: test vectors for protocol/SPEC.md section 8.

Run: .venv/bin/python protocol/test-vectors/generate_match_keys.py   (tests check the file matches)
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from blindmatch.normalize import default_schema, normalize_address, normalize_name
from blindmatch.normalize.matchkey import canonical_json
from blindmatch.normalize.schema import NORMALIZER_VERSIONS

RECORDS = [
    {"name": "Dr. José O'Brien-García Jr.", "address": "123 North Main Street Apt. 4, Springfield, Illinois 62704-1234"},
    {"name": "OBRIEN GARCIA, JOSE, JR", "address": "123 N MAIN ST # 4 SPRINGFIELD IL 62704"},
    {"name": "Mary Smith", "address": "45 Twelfth Avenue, New York, NY 10011"},
    {"name": "Mary Smith", "address": "PO Box 77, Austin TX 78701"},
]
ADDRESSES = [
    "1600 Pennsylvania Avenue Northwest, Washington, District of Columbia 20500",
    "100 Twenty-First St Ste 204 Springfield IL 62704",
    "Rural Route 2, Box 15, Ames, Iowa 50010",
    "9 Saint James Pl, Brooklyn NY",
]
NAMES = ["Smith, John, Jr.", "Mrs. Zoë de la Cruz", "Seán Mac Donald III"]


def build() -> dict:
    schema = default_schema()
    return {
        "description": "blindmatch match keys v1: see protocol/SPEC.md section 8",
        "schema_toml": resources.files("blindmatch.normalize").joinpath("default_schema.toml").read_text("utf-8"),
        "canonical_schema": canonical_json(schema.canonical_doc()).decode("utf-8"),
        "normalizer_versions": canonical_json(NORMALIZER_VERSIONS).decode("utf-8"),
        "fingerprint": schema.fingerprint.hex(),
        "match_keys": [
            {"record": r, "side": side, "keys": [{"tier": t, "key": k.hex()} for t, k in schema.match_keys(r, side)]}
            for r in RECORDS
            for side in ("holder", "requester")
        ],
        "addresses": [{"input": a, "canonical": normalize_address(a)} for a in ADDRESSES],
        "names": [{"input": n, "canonical": normalize_name(n)} for n in NAMES],
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("match-keys.json")
    out.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
