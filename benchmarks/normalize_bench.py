"""Scores the normalisers on the corpus in tests/data and measures their single-core throughput.

Writes benchmarks/results/normalize.json. Run: .venv/bin/python benchmarks/normalize_bench.py
"""

from __future__ import annotations

import csv
import json
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from blindmatch.normalize import NormalizationError, default_schema, normalize_address, normalize_name
from blindmatch.pilot.synthetic import generate_people, vary_person

ROOT = Path(__file__).resolve().parent.parent
# variant kinds that the >= 0.99 targets cover; the others count only in "all_same"
CORE_ADDRESS = {"case", "punctuation", "abbreviation", "state_name", "zip4", "directional", "unit_designator"}
CORE_NAME = {"case", "accent", "apostrophe", "suffix", "reorder"}


def score(path: Path, fn: Callable[[str], str], core: set[str]) -> dict[str, object]:
    """Share of pairs judged right: equal when ``same`` is 1, different (or an error) otherwise."""
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                equal = fn(row["a"]) == fn(row["b"])
            except NormalizationError:
                equal = False
            same = row["same"] == "1"
            ok = equal == same
            for key in (
                f"{'same' if same else 'apart'}:{row['kind']}",
                "apart" if not same else "all_same",
                *(["core_same"] if same and row["kind"] in core else []),
            ):
                bucket = by_kind[key] if ":" in key else groups[key]
                bucket[0] += ok
                bucket[1] += 1
    rate = lambda b: round(b[0] / b[1], 4)  # noqa: E731
    return {
        **{k: {"rate": rate(v), "pairs": v[1]} for k, v in sorted(groups.items())},
        "by_kind": {k: {"rate": rate(v), "pairs": v[1]} for k, v in sorted(by_kind.items())},
    }


def throughput(fn: Callable[[str], object], values: list[str], min_seconds: float = 1.0) -> float:
    """Values per second of this process's CPU time (one core), best of three runs.

    CPU time, not wall time: the machine is shared, and other work would otherwise be
    counted as the normaliser's.
    """
    best = 0.0
    for _ in range(3):
        n, start = 0, time.process_time()
        while time.process_time() - start < min_seconds / 3:
            for v in values:
                fn(v)
            n += len(values)
        best = max(best, n / (time.process_time() - start))
    return round(best)


def compare_parsers(addresses: list[str]) -> dict[str, object]:
    """The well-kept parsers blindmatch could have used, measured here on the same inputs.

    Needs the ``bench`` extra (usaddress, usaddress-scourgify); absent ones are reported
    as such. scourgify also normalises, so it is scored on the same corpus: any exception
    counts as "could not normalise" (pairs judged unequal).
    """
    result: dict[str, object] = {}
    try:
        import usaddress
    except ImportError:
        result["usaddress"] = "not installed (pip install 'blindmatch[bench]')"
    else:
        def tag(text: str) -> object:
            try:
                return usaddress.tag(text)
            except usaddress.RepeatedLabelError:  # its answer for input it cannot label
                return None

        result["usaddress"] = {"version": version("usaddress"), "tag_per_s": throughput(tag, addresses)}
    try:
        from scourgify import normalize_address_record
    except ImportError:
        result["usaddress-scourgify"] = "not installed (pip install 'blindmatch[bench]')"
    else:
        def canonical(text: str) -> str:
            try:
                return "|".join(str(v) for v in normalize_address_record(text).values())
            except Exception as exc:  # scourgify raises its own error types for unparsable input
                raise NormalizationError("address", type(exc).__name__) from None

        def safe(text: str) -> object:
            try:
                return canonical(text)
            except NormalizationError:
                return None

        result["usaddress-scourgify"] = {
            "version": version("usaddress-scourgify"),
            "normalize_per_s": throughput(safe, addresses),
            "corpus": score(ROOT / "tests/data/address_pairs.csv", canonical, CORE_ADDRESS),
        }
    return result


def main() -> None:
    import random

    rng = random.Random(7)
    people = [vary_person(p, rng) for p in generate_people(20000, seed=11)]
    addresses = [p["address"] for p in people]
    names = [p["name"] for p in people]
    schema = default_schema()
    t0 = time.perf_counter()
    generate_people(2**20, seed=1)
    gen_seconds = time.perf_counter() - t0
    results = {
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "corpus": {
            "address": score(ROOT / "tests/data/address_pairs.csv", normalize_address, CORE_ADDRESS),
            "name": score(ROOT / "tests/data/name_pairs.csv", normalize_name, CORE_NAME),
        },
        "throughput_per_core": {
            "addresses_per_s": throughput(normalize_address, addresses),
            "names_per_s": throughput(normalize_name, names),
            "records_match_keys_per_s": throughput(lambda p: schema.match_keys(p, "holder"), people),
            "input": "20,000 synthetic people written with vary_person variants",
        },
        "synthetic_generate_people_2^20_seconds": round(gen_seconds, 2),
        "parser_choice": compare_parsers(addresses[:2000]),
    }
    out = ROOT / "benchmarks/results/normalize.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
