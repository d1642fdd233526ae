"""The synthetic population: distinct, deterministic, streamable; queries with known truth."""

import datetime
import random

from blindmatch.normalize import default_schema
from blindmatch.pilot.synthetic import generate_people, iter_people, make_queries, vary_person


def test_people_distinct_deterministic_and_streamed_alike() -> None:
    people = generate_people(20000, seed=5)
    assert len({(p["name"], p["address"]) for p in people}) == 20000
    assert generate_people(50, seed=5) == people[:50]
    assert generate_people(50, seed=6) != people[:50]
    assert [p for chunk in iter_people(20000, seed=5, chunk=3000) for p in chunk] == people
    schema = default_schema()
    keys = {schema.match_keys(p, "holder")[0][1] for p in people}
    assert len(keys) == 20000  # distinct after normalisation too


def test_variants_normalise_to_the_same_keys() -> None:
    schema = default_schema()
    rng = random.Random(1)
    people = generate_people(3000, seed=2)
    changed = 0
    for p in people:
        v = vary_person(p, rng)
        changed += v != p
        assert schema.match_keys(v, "holder") == schema.match_keys(p, "holder")
    assert changed > 2900


def test_queries_truth_matches_psi_outcome() -> None:
    schema = default_schema()
    today = datetime.date(2025, 6, 1)
    people = generate_people(5000, seed=3)
    holder = {k for p in people for _, k in schema.match_keys(p, "holder")}
    queries, truth = make_queries(people, 2000, 0.3, seed=4, today=today)
    assert len(queries) == len(truth) == 2000 and sum(truth) == 600
    for q, t in zip(queries, truth, strict=False):
        assert schema.check_basis(q, today) is None
        confirming = schema.confirming_tiers()  # review-tier candidates are not matches of the truth
        assert any(k in holder for tier, k in schema.match_keys(q, "requester") if tier in confirming) == t
