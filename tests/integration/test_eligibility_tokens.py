"""Sessions on eligibility tokens, end to end: issuer, holder index over tokens, requester jobs.

The holder's index is built over the issuer's tokens (blind, verifiable evaluation in
process); the requester's job reads the signed token file. Records the issuer refused
have no token and match nothing, and a requester that makes up its own tokens for
people in the holder's records finds nobody.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.job_runner import job_runner

from blindmatch.crypto import group, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.evaluation import BlindEvaluator
from blindmatch.issuer.issue import issue_tokens
from blindmatch.issuer.keys import load_signing_key
from blindmatch.issuer.linkage import approve_request
from blindmatch.issuer.tokenfile import TokenHeader, read_token_file, render
from blindmatch.normalize import default_schema
from blindmatch.pilot import synthetic
from blindmatch.pilot.processes import HolderProcess
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import EligibilityConfig, load_requester_config
from blindmatch.requester.runner import JobRunner
from blindmatch.vocabulary import Mode
from tests.helpers.issuer_setup import make_issuer, write_orders
from tests.helpers.officials import run_approved

pytestmark = pytest.mark.timeout(240)
HOLDER_RECORDS = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, engine: BatchEngine) -> Iterator[tuple[Workspace, IssuerConfig]]:
    root = tmp_path_factory.mktemp("tokens")
    ws = create_workspace(root, holder_records=HOLDER_RECORDS, queries=20, matching={"batch_size": 16, "window": 2})
    holder_config = load_holder_config(ws.holder_config)
    issuer = make_issuer(root / "issuer", {holder_config.organisation: HOLDER_RECORDS})
    evaluator = BlindEvaluator(issuer, engine)
    epoch, pk = evaluator.public_key()
    tokens = IssuerTokens(lambda blinded: evaluator.evaluate(holder_config.organisation, blinded, epoch.name),
                          pk, epoch, engine, batch_elements=128)
    build_index(ws.records, holder_config, progress=False, engine=engine, tokens=tokens)
    evaluator.close()
    assert tokens.evaluated > HOLDER_RECORDS  # every record's tiers, in several batches
    process = HolderProcess(ws.holder_config, root / "logs")
    process.start()
    yield ws, issuer
    process.terminate()


def _runner(ws: Workspace, issuer: IssuerConfig, tokens: Path) -> Iterator[JobRunner]:
    config = load_requester_config(ws.requester_config)
    config = dataclasses.replace(config, eligibility=EligibilityConfig(issuer.signing_key.with_name("issuer.key.pub"), tokens))
    with job_runner(config) as runner:
        yield runner


def _people() -> list[dict[str, str]]:
    return synthetic.generate_people(6, 2025)  # the holder's first records


def _key_count(rows: list[dict[str, str]]) -> int:
    """How many elements a requester sends for ``rows``: one per tier each record has a key in."""
    schema = default_schema()
    return sum(len(schema.match_keys(row, "requester")) for row in rows)


def _results(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["matched"], row["status"]) for row in csv.DictReader(handle)]


def test_only_records_with_tokens_match(setup: tuple[Workspace, IssuerConfig], tmp_path: Path) -> None:
    ws, issuer = setup
    p = _people()
    today = datetime.now(UTC).date().isoformat()
    orders = [
        {"name": p[0]["name"], "address": p[0]["address"], "order_date": "2024-01-02"},
        {"name": p[1]["name"], "address": p[1]["address"], "order_date": "2024-01-02", "order_status": "pending"},
        {"name": p[2]["name"], "address": p[2]["address"], "order_date": "2999-01-01"},
        {"name": p[3]["name"], "address": p[3]["address"], "order_date": today},
        {"name": "Nobody Known", "address": "1 Nowhere Rd, Springfield, IL 62701", "order_date": "2024-01-02"},
    ]
    queries = tmp_path / "orders.csv"
    write_orders(queries, orders)
    tokens = tmp_path / "tokens.txt"
    report = issue_tokens(queries, issuer, tokens)
    assert (report.issued, report.rows) == (3, 5)
    for runner in _runner(ws, issuer, tokens):
        job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, job.id).exit_state == "succeeded"
        # Only the three rows with tokens were sent, each with its tiers' tokens; nothing for the others.
        assert runner.store.get(job.id).elements_done == _key_count([orders[0], orders[3], orders[4]])
    assert _results(tmp_path / "r.csv") == [
        ("true", "ok"), ("", "ineligible: no token"), ("", "ineligible: order_date in the future"),
        ("true", "ok"), ("false", "ok"),
    ]


def test_an_approved_linkage_request_matches_the_holders_record(setup: tuple[Workspace, IssuerConfig],
                                                              tmp_path: Path) -> None:
    """The court's records have two people at other addresses than the holder's; a clerk approves one link."""
    ws, issuer = setup
    p = _people()
    orders = tmp_path / "court-records.csv"
    write_orders(orders, [
        {"name": p[0]["name"], "address": "9 Old Mill Rd, Springfield, IL 62701", "order_date": "2024-01-02",
         "case_ref": "2024-CV-1"},
        {"name": p[1]["name"], "address": p[1]["address"], "order_date": "2024-01-02", "case_ref": "2024-CV-2"},
        {"name": p[2]["name"], "address": "7 Old Mill Rd, Springfield, IL 62701", "order_date": "2024-01-02",
         "case_ref": "2024-CV-3"},
    ])
    queries = tmp_path / "queries.csv"
    rows = [{"name": p[i]["name"], "address": p[i]["address"], "order_date": "2024-01-02",
             "case_ref": f"2024-CV-{i + 1}"} for i in range(3)]
    write_orders(queries, rows)
    request = tmp_path / "request.csv"
    write_orders(request, rows[:1])
    assert approve_request(request, orders, issuer, "Jane Clerk").approved == [1]
    tokens = tmp_path / "tokens.txt"
    issued = issue_tokens(queries, issuer, tokens, orders=orders)
    assert (issued.issued, issued.by_approval, issued.unlinked) == (2, 1, [3])
    for runner in _runner(ws, issuer, tokens):
        job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, job.id).exit_state == "succeeded"
    # The approved link matches the holder's record at that address; the unapproved one was never sent.
    assert _results(tmp_path / "r.csv") == [("true", "ok"), ("true", "ok"), ("", "ineligible: no token")]


def test_cardinality_on_tokens(setup: tuple[Workspace, IssuerConfig], tmp_path: Path) -> None:
    ws, issuer = setup
    queries = tmp_path / "orders.csv"
    people = synthetic.generate_people(40, 2025)  # a cardinality session needs enough records
    rows = [{"name": x["name"], "address": x["address"], "order_date": "2024-01-02"} for x in people]
    write_orders(queries, [{**row, "order_status": "final" if i % 2 else "open"} for i, row in enumerate(rows)])
    tokens = tmp_path / "tokens.txt"
    assert issue_tokens(queries, issuer, tokens).issued == 20
    for runner in _runner(ws, issuer, tokens):
        job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.CARDINALITY)
        assert run_approved(ws, runner, job.id).exit_state == "succeeded"
        assert runner.store.get(job.id).matches == 20


def test_made_up_tokens_find_nobody(setup: tuple[Workspace, IssuerConfig], tmp_path: Path) -> None:
    """A requester that skips every check and makes tokens under its own key matches none of the holder's people."""
    ws, issuer = setup
    p = _people()
    queries = tmp_path / "orders.csv"
    write_orders(queries, [{"name": x["name"], "address": x["address"], "order_date": "2024-01-02"} for x in p])
    real = issue_tokens(queries, issuer, tmp_path / "real.txt")
    header = read_token_file(tmp_path / "real.txt", _pinned(issuer)).header
    made_up_key = group.random_scalar()
    schema = default_schema()
    rows: list[tuple[int, list[bytes | None]]] = []
    with queries.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=1):
            row: list[bytes | None] = [None] * len(schema.tier_names())
            for name, key in schema.match_keys(record, "requester"):
                row[schema.tier_rank[name]] = voprf.evaluate(made_up_key, key)
            rows.append((number, row))
    # The adversary signs with the issuer's file format but its own tokens; here it even has the
    # signing key, to isolate the cryptographic claim: the tokens themselves are what cannot be forged.
    forged = tmp_path / "forged.txt"
    forged.write_bytes(render(dataclasses.replace(header, rows=len(rows)), rows, load_signing_key(issuer.signing_key)))
    for runner in _runner(ws, issuer, forged):
        job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, job.id).exit_state == "succeeded"
    assert real.issued == len(p)
    assert _results(tmp_path / "r.csv") == [("false", "ok")] * len(p)


def _pinned(issuer: IssuerConfig) -> bytes:
    return bytes.fromhex(issuer.signing_key.with_name("issuer.key.pub").read_text())


def test_token_header_round_trips(setup: tuple[Workspace, IssuerConfig], tmp_path: Path) -> None:
    _, issuer = setup
    queries = tmp_path / "orders.csv"
    write_orders(queries, [{"name": x["name"], "address": x["address"], "order_date": "2024-01-02"} for x in _people()[:2]])
    issue_tokens(queries, issuer, tmp_path / "t.txt")
    parsed = read_token_file(tmp_path / "t.txt", _pinned(issuer))
    assert isinstance(parsed.header, TokenHeader) and sorted(parsed.tokens) == [1, 2] and not parsed.bad_rows


def test_plain_match_keys_against_the_token_index_find_nobody(setup: tuple[Workspace, IssuerConfig], tmp_path: Path) -> None:
    """Today's requester client (match keys, no tokens) against a live holder whose index is over tokens."""
    ws, _ = setup
    queries = tmp_path / "q.csv"
    write_orders(queries, [{"name": x["name"], "address": x["address"], "order_date": "2024-01-02"} for x in _people()])
    with job_runner(ws.requester_config) as runner:
        job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, job.id).exit_state == "succeeded"
        assert runner.store.get(job.id).elements_done == _key_count(_people())
    assert _results(tmp_path / "r.csv") == [("false", "ok")] * len(_people())
