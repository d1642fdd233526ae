"""The scored corpus (tests/data) meets the targets; the corpus file matches its generator."""

import csv
import importlib.util
import random
from pathlib import Path

from blindmatch.normalize import NormalizationError, normalize_address, normalize_name

DATA = Path(__file__).resolve().parents[1] / "data"
CORE_ADDRESS = {"case", "punctuation", "abbreviation", "state_name", "zip4", "directional", "unit_designator"}
CORE_NAME = {"case", "accent", "apostrophe", "suffix", "reorder"}


def _rates(filename: str, fn, core: set[str]) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    ok = {"core": [0, 0], "all": [0, 0], "apart": [0, 0]}
    with open(DATA / filename, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                equal = fn(row["a"]) == fn(row["b"])
            except NormalizationError:
                equal = False
            groups = ["apart"] if row["same"] == "0" else ["all"] + (["core"] if row["kind"] in core else [])
            for g in groups:
                ok[g][0] += equal == (row["same"] == "1")
                ok[g][1] += 1
    return tuple(a / b for a, b in (ok["core"], ok["all"], ok["apart"]))  # type: ignore[return-value]


def test_address_targets() -> None:
    core, all_, apart = _rates("address_pairs.csv", normalize_address, CORE_ADDRESS)
    assert core >= 0.99 and all_ >= 0.95 and apart >= 0.995


def test_name_targets() -> None:
    core, all_, apart = _rates("name_pairs.csv", normalize_name, CORE_NAME)
    assert core >= 0.99 and all_ >= 0.93 and apart >= 0.995


def test_corpus_is_reproducible() -> None:
    spec = importlib.util.spec_from_file_location("gen_corpus", DATA / "generate_corpus.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    rng = random.Random(gen.SEED)
    rows = gen.address_pairs(rng)
    with open(DATA / "address_pairs.csv", encoding="utf-8") as f:
        stored = [tuple(r) for r in csv.reader(f)][1:]
    assert stored == [(a, b, str(s), k) for a, b, s, k in rows]
