"""Match quality per source and tier: recall of same-person pairs, false matches of different ones.

Sources (benchmarks/data/, extracted by extract_external.py; tests/data/):
* ``usaddress``: real US address strings of the usaddress package's labeled training data.
  Each raw string is paired with a clean comma-separated rendering of its own labels (same
  place), the rendering without its street type or unit (same place, part missing), and
  the rendering with another house number or another record's street name (different
  places). The name is fixed, so the address alone decides.
* ``febrl``: FEBRL names and their corrupted duplicates (typos, swaps, missing parts),
  all at one address; different people are other originals (same surname where possible).
* ``households``: different people at one address (Jr/Sr, siblings with one initial,
  spouses with one surname), generated here: none may meet at a confirmation tier.
* ``corpus``: tests/data/address_pairs.csv and name_pairs.csv (written with the rules: optimistic).
* ``ranges``: house-number ranges and Queens-style numbers drawn on the usaddress records' streets.
* ``nicknames``: formal/nickname pairs of the nickname table itself (not independent: it
  shows the tier works, not how often real nicknames are in the table).

Every source is split by a hash of the pair into ``dev`` and ``heldout`` halves, reported
apart, for each built-in schema. Writes benchmarks/results/match_quality.json. Run: .venv/bin/python benchmarks/match_quality.py
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from blindmatch.normalize import BUILTIN_SCHEMAS, NormalizationError, Schema, builtin_schema, normalize_address
from blindmatch.normalize.tables import TABLES
from blindmatch.pilot.synthetic import generate_people

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks/data"
PLACE = "Springfield, IL 62704"
ANCHOR_NAME = "John Q Public"
ANCHOR_ADDRESS = "400 Elm St, Springfield IL 62704"
DIRS = {"N": "North", "S": "South", "E": "East", "W": "West", "NE": "Northeast", "NW": "Northwest", "SE": "Southeast", "SW": "Southwest"}
Pair = tuple[str, str, dict[str, str], dict[str, str], bool]  # source, kind, requester, holder, same


def _render(labels: list[list[str]], drop: str = "", replace: dict[str, str] | None = None) -> str:
    """A clean rendering of usaddress labels: street, unit, city, state ZIP, comma separated.

    Street labels keep their order; a pre-directional is spelt out; ``drop`` leaves out the
    street type (``"type"``) or the unit (``"unit"``); ``replace`` puts one value in place of
    the tokens of a label.
    """
    replace = replace or {}
    street: list[str] = []
    unit: list[str] = []
    place: dict[str, list[str]] = defaultdict(list)
    done: set[str] = set()
    for tag, text in labels:
        text = text.strip(",. ")
        if tag in replace:
            if tag in done:
                continue
            done.add(tag)
            text = replace[tag]
        if tag.startswith(("AddressNumber", "StreetName")):
            if tag == "StreetNamePostType" and drop == "type":
                continue
            if tag == "StreetNamePreDirectional":
                text = DIRS.get(text.upper().replace(".", ""), text)
            street.append(text)
        elif tag.startswith(("Occupancy", "Subaddress")):
            if drop != "unit" and text != "#":
                unit.append(text)
        elif tag in ("PlaceName", "StateName", "ZipCode"):
            place[tag].append(text)
    if unit and not any(t.startswith("Occupancy") and t != "OccupancyIdentifier" for t, _ in labels):
        unit.insert(0, "#")
    zipcode = "" if drop == "zip" else place["ZipCode"][0][:5] if place["ZipCode"] else ""
    if drop == "zip" and place["PlaceName"] and place["StateName"]:
        return ", ".join(p for p in (" ".join(street), " ".join(unit), " ".join(place["PlaceName"]),
                                     " ".join(place["StateName"])) if p)
    where = f"{' '.join(place['PlaceName'])}, {' '.join(place['StateName'])} {zipcode}" if zipcode else PLACE
    return ", ".join(p for p in (" ".join(street), " ".join(unit), where) if p)


def _street_key(street: str) -> str:
    """A street name as the normaliser writes it (FIFTH = 5TH), to draw a truly different one."""
    try:
        return normalize_address(f"1 {street} Zz, 00000")
    except NormalizationError:
        return street.upper()


def usaddress_pairs(rng: random.Random) -> Iterator[Pair]:
    rows = [json.loads(line) for line in (DATA / "usaddress_labeled.jsonl").read_text("utf-8").splitlines()]
    rows = [r for r in rows if {"AddressNumber", "StreetName"} <= {t for t, _ in r["labels"]}]
    streets = [" ".join(x for t, x in r["labels"] if t == "StreetName") for r in rows]
    cities = sorted({" ".join(x for t, x in r["labels"] if t == "PlaceName") for r in rows} - {""})
    for r in rows:
        tags = {t for t, _ in r["labels"]}
        raw = r["raw"] if "ZipCode" in tags else f"{r['raw']}, {PLACE}"
        person = lambda a: {"name": ANCHOR_NAME, "address": a}  # noqa: E731
        yield "usaddress", "same:clean_rendering", person(raw), person(_render(r["labels"])), True
        if "StreetNamePostType" in tags:
            yield "usaddress", "same:street_type_one_side", person(raw), person(_render(r["labels"], "type")), True
        if "OccupancyIdentifier" in tags:
            yield "usaddress", "same:unit_one_side", person(raw), person(_render(r["labels"], "unit")), True
        if {"ZipCode", "PlaceName", "StateName"} <= tags:
            # the requester without the ZIP; or without it and with another city of the record set
            yield "usaddress", "same:zip_on_holder_side_only", person(_render(r["labels"], "zip")), person(raw), True
            city = rng.choice(cities)
            if city.upper() != " ".join(x for t, x in r["labels"] if t == "PlaceName").upper():
                other = _render(r["labels"], "zip", replace={"PlaceName": city})
                yield "usaddress", "apart?:same_line_other_city_no_zip", person(other), person(raw), False
            # the holder record without the ZIP, the requester's with it
            yield "usaddress", "same:zip_on_requester_side_only", person(raw), person(_render(r["labels"], "zip")), True
            if city.upper() != " ".join(x for t, x in r["labels"] if t == "PlaceName").upper():
                other = _render(r["labels"], "zip", replace={"PlaceName": city})
                yield "usaddress", "apart?:same_line_other_city_holder_no_zip", person(raw), person(other), False
        number = next(x for t, x in r["labels"] if t == "AddressNumber")
        if number.isdigit():
            other = _render(r["labels"], replace={"AddressNumber": str(int(number) + 2)})
            yield "usaddress", "apart:other_house_number", person(raw), person(other), False
            if {"ZipCode", "PlaceName", "StateName"} <= tags:
                other = _render(r["labels"], "zip", replace={"AddressNumber": str(int(number) + 2)})
                yield "usaddress", "apart:other_house_number_holder_no_zip", person(raw), person(other), False
            yield from _range_pairs(r["labels"], int(number), person)
        street = rng.choice(streets)
        if _street_key(street) != _street_key(" ".join(x for t, x in r["labels"] if t == "StreetName")):
            other = _render(r["labels"], replace={"StreetName": street})
            yield "usaddress", "apart:other_street", person(raw), person(other), False


def _range_pairs(labels: list[list[str]], n: int, person: Callable[[str], dict[str, str]]) -> Iterator[Pair]:
    """House-number ranges and Queens-style numbers drawn on a real record's street.

    A range ``n-(n+6)`` (one side of the street) against its abbreviation and its ends (same
    building), another range and a number past its end (different places); a Queens-style
    ``a-bb`` against ``a-(bb+2)`` and against ``a`` alone (different places: one number each).
    """
    at = lambda h: _render(labels, replace={"AddressNumber": h})  # noqa: E731
    lo, hi = n, n + 6
    full = at(f"{lo}-{hi}")
    if len(str(lo)) > 2 and str(lo)[:-2] == str(hi)[:-2]:
        yield "ranges", "same:range_abbreviated_one_side", person(full), person(at(f"{lo}-{str(hi)[-2:]}")), True
    yield "ranges", "same:range_end_holder", person(full), person(at(str(lo if n % 4 else hi))), True
    yield "ranges", "same:range_end_requester", person(at(str(hi if n % 4 else lo))), person(full), True
    yield "ranges", "apart:other_range", person(full), person(at(f"{lo + 10}-{hi + 10}")), False
    yield "ranges", "apart:past_the_range_end", person(full), person(at(str(hi + 2))), False
    block, house = n % 250 + 1, n % 89 + 10
    queens = at(f"{block}-{house:02d}")
    yield "ranges", "apart:queens_other_house", person(queens), person(at(f"{block}-{house + 2:02d}")), False
    yield "ranges", "apart:queens_block_alone", person(queens), person(at(str(block))), False
    yield "ranges", "apart:queens_house_alone", person(at(str(house))), person(queens), False


def febrl_pairs(rng: random.Random) -> Iterator[Pair]:
    with open(DATA / "febrl4_names.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    name = lambda r: f"{r['given_name']} {r['surname']}".strip()  # noqa: E731
    originals = {r["rec_id"].split("-")[1]: r for r in rows if r["rec_id"].endswith("-org")}
    by_surname: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in originals.values():
        by_surname[r["surname"]].append(r)
    person = lambda n: {"name": n, "address": ANCHOR_ADDRESS}  # noqa: E731
    for r in rows:
        if "-dup-" in r["rec_id"] and r["rec_id"].split("-")[1] in originals:
            org = originals[r["rec_id"].split("-")[1]]
            yield "febrl", "same:corrupted_duplicate", person(name(r)), person(name(org)), True
    values = list(originals.values())
    for r in values:
        kin = [o for o in by_surname[r["surname"]] if o is not r and o["given_name"] != r["given_name"]]
        if kin:
            yield "febrl", "apart:same_surname", person(name(r)), person(name(rng.choice(kin))), False
        o = rng.choice(values)
        if name(o) != name(r):
            yield "febrl", "apart:random", person(name(r)), person(name(o)), False


def household_pairs() -> Iterator[Pair]:
    givens = ["John", "James", "Mary", "Maria", "Mario", "Robert", "Roberta", "Daniel", "Danielle", "Chris", "Carl", "Carla"]
    surnames = ["Smith", "Garcia", "Nguyen", "O'Brien", "Kowalski", "Johnson"]
    for k, s in enumerate(surnames):
        addr = f"{100 + k} Oak Ave Apt {k + 1}, Springfield IL 62704"
        p = lambda n, a=addr: {"name": n, "address": a}  # noqa: E731
        for g in givens:
            yield "households", "apart:jr_sr", p(f"{g} {s} Jr"), p(f"{g} {s} Sr"), False
            yield "households", "apart:jr_none", p(f"{g} {s} Jr"), p(f"{g} {s}"), False
            yield "households", "apart:ii_iii", p(f"{g} {s} II"), p(f"{g} {s} III"), False
            for g2 in givens:
                if g2 != g:
                    kind = "apart:sibling_same_initial" if g2[0] == g[0] else "apart:spouse_or_sibling"
                    yield "households", kind, p(f"{g} {s}"), p(f"{g2} {s}"), False
                    yield "households", "apart:same_initial_written" if g2[0] == g[0] else "apart:other_given_middle", \
                        p(f"{g} A {s}"), p(f"{g2} A {s}"), False


def corpus_pairs() -> Iterator[Pair]:
    for field, path in (("address", "address_pairs.csv"), ("name", "name_pairs.csv")):
        with open(ROOT / "tests/data" / path, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                base = {"name": ANCHOR_NAME, "address": ANCHOR_ADDRESS}
                same = row["same"] == "1"
                yield ("corpus", f"{'same' if same else 'apart'}:{field}:{row['kind']}",
                       {**base, field: row["a"]}, {**base, field: row["b"]}, same)


def nickname_pairs() -> Iterator[Pair]:
    for formal, nicks in sorted(TABLES.formal_nicknames.items()):
        for nick in nicks:
            yield ("nicknames", "same:nickname", {"name": f"{nick} Public", "address": ANCHOR_ADDRESS},
                   {"name": f"{formal} Public", "address": ANCHOR_ADDRESS}, True)


def meeting_tiers(schema: Schema, req: dict[str, str], hold: dict[str, str]) -> list[str]:
    """Every tier at which the requester's keys meet the holder's, strongest first ([] also on errors)."""
    try:
        held = {k for _, k in schema.match_keys(hold, "holder")}
        return list(dict.fromkeys(t for t, k in schema.match_keys(req, "requester") if k in held))
    except NormalizationError:
        return []


def _split(req: dict[str, str], hold: dict[str, str]) -> str:
    return "dev" if hashlib.sha256(json.dumps([req, hold]).encode()).digest()[0] % 2 == 0 else "heldout"


Met = list[tuple[Pair, list[str]]]


def score(schema: Schema, met: Met) -> dict[str, object]:
    confirming = set(schema.confirming_tiers())
    table: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for (source, kind, req, hold, _), tiers in met:
        for split in (_split(req, hold), "all"):
            table[(source, split, kind)][tiers[0] if tiers else "none"] += 1
    out: dict[str, object] = {}
    for (source, split, kind), firsts in sorted(table.items()):
        n = sum(firsts.values())
        conf = sum(v for t, v in firsts.items() if t in confirming)
        anyt = n - firsts["none"]
        entry = {"pairs": n, "at_confirmation": round(conf / n, 4), "at_any_tier": round(anyt / n, 4),
                 "first_tier": dict(firsts.most_common())}
        out.setdefault(source, {}).setdefault(split, {})[kind] = entry  # type: ignore[union-attr]
    return out


def _apart(met: Met) -> Met:
    # "apart?" pairs may be one place (a borough for the city): reported per source, not here
    return [(p, t) for p, t in met if not p[4] and p[0] != "corpus" and not p[1].startswith("apart?")]


def per_tier_false(schema: Schema, met: Met) -> dict[str, object]:
    """For each tier: pairs of different places/people whose strongest meeting tier it is, of all such pairs."""
    apart = _apart(met)
    counts: Counter[str] = Counter(t[0] if t else "none" for _, t in apart)
    places = [(p, t) for p, t in apart if p[0] in ("usaddress", "ranges")]
    return {"different_pairs": len(apart), "met_at": {t: counts[t] for t in schema.tier_names()},
            "rate_any_tier": round((len(apart) - counts["none"]) / len(apart), 5),
            "different_place_pairs": len(places),
            "different_place_rate_any_tier": round(sum(1 for _, t in places if t) / len(places), 5)}


def marginal(schema: Schema, met: Met) -> dict[str, object]:
    """Per tier, the same-person pairs found there and at no other tier: what dropping it would lose."""
    only: Counter[str] = Counter()
    at: Counter[str] = Counter()
    for p, tiers in met:
        if p[4]:
            at.update(tiers)
            if len(tiers) == 1:
                only[tiers[0] + "|" + p[0]] += 1
    return {t: {"same_pairs_meeting": at[t],
                "found_only_here": {k.split("|")[1]: v for k, v in sorted(only.items()) if k.split("|")[0] == t}}
            for t in schema.tier_names()}


def costs(schema: Schema, records: list[dict[str, str]]) -> dict[str, object]:
    """Elements (requester keys) and index entries (holder keys) per record, per tier, on real records."""
    req: Counter[str] = Counter()
    hold: Counter[str] = Counter()
    n = 0
    for r in records:
        try:
            rk, hk = schema.match_keys(r, "requester"), schema.match_keys(r, "holder")
        except NormalizationError:
            continue
        n += 1
        req.update(t for t, _ in rk)
        hold.update(t for t, _ in hk)
    return {"records": n, "requester_elements_per_record": round(sum(req.values()) / n, 3),
            "holder_entries_per_record": round(sum(hold.values()) / n, 3),
            "per_tier": {t: {"requester": round(req[t] / n, 3), "holder": round(hold[t] / n, 3)} for t in schema.tier_names()}}


def throughput(values: list[str]) -> float:
    """Addresses per second of this process's CPU time (one core; the machine is shared), best of three."""
    best = 0.0
    for _ in range(3):
        start = time.process_time()
        for v in values:
            with contextlib.suppress(NormalizationError):
                normalize_address(v)
        best = max(best, len(values) / (time.process_time() - start))
    return round(best)


def evaluate(schema: Schema, pairs: list[Pair], addresses: list[str], febrl_people: list[dict[str, str]]) -> dict[str, object]:
    """Every figure of one schema: per source, per tier, what each tier alone finds, and its cost."""
    met = [(p, meeting_tiers(schema, p[2], p[3])) for p in pairs]
    return {
        "schema_fingerprint": schema.fingerprint.hex(),
        "confirming_tiers": schema.confirming_tiers(),
        "by_source": score(schema, met),
        "different_pairs_by_tier": per_tier_false(schema, met),
        "found_only_at_tier": marginal(schema, met),
        "cost": costs(schema, [{"name": f"Person {i}", "address": a} for i, a in enumerate(addresses[:2000])] + febrl_people),
        "cost_synthetic_us_names": costs(schema, generate_people(5000, seed=16)),
    }


def main() -> None:
    rng = random.Random(16)
    pairs = [*usaddress_pairs(rng), *febrl_pairs(rng), *household_pairs(), *corpus_pairs(), *nickname_pairs()]
    febrl_people = [p[2] for p in pairs if p[0] == "febrl"][:3000]
    addresses = [p[2]["address"] for p in pairs if p[0] == "usaddress"]
    results = {name: evaluate(builtin_schema(name), pairs, addresses, febrl_people) for name in BUILTIN_SCHEMAS}
    results["addresses_per_s_one_core"] = throughput(addresses[:3000] * 3)
    out = ROOT / "benchmarks/results/match_quality.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    summary = {n: {k: results[n][k] for k in ("different_pairs_by_tier",)} for n in BUILTIN_SCHEMAS}  # type: ignore[index]
    print(json.dumps({**summary, "addresses_per_s_one_core": results["addresses_per_s_one_core"]}, indent=1))


if __name__ == "__main__":
    main()
