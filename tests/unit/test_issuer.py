"""The issuer's rules, the token file's integrity, epochs, and the blind evaluation's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blindmatch.audit.log import AuditLog
from blindmatch.crypto import voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.epochs import Epoch, EpochError, epoch_key_pair
from blindmatch.issuer.evaluation import BlindEvaluator, EvaluationRefused
from blindmatch.issuer.issue import audit_origin, issue_tokens
from blindmatch.issuer.keys import read_seed
from blindmatch.issuer.tokenfile import TokenFileError, read_token_file
from blindmatch.keyfile import KeyFileError
from blindmatch.normalize import default_schema
from blindmatch.requester.token_inputs import (
    NO_TOKEN,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_NOT_YET_VALID,
    load_tokens,
    prepare_token_elements,
)
from blindmatch.vocabulary import Mode
from tests.helpers.issuer_setup import make_issuer, write_orders

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
ALICE = {"name": "Alice Smith", "address": "100 Main St, Springfield, IL 62701", "order_date": "2025-01-02"}


def _address(i: int) -> str:
    return f"{100 + i} Oak Ave, Springfield, IL 62701"


@pytest.fixture
def issuer(tmp_path: Path) -> IssuerConfig:
    return make_issuer(tmp_path / "issuer", {"Example Tax Authority": 10}, cap=3)


@pytest.fixture(scope="module")
def engine() -> BatchEngine:
    return BatchEngine(workers=1)


def _pinned(issuer: IssuerConfig) -> Path:
    return issuer.signing_key.with_name("issuer.key.pub")


def _statuses(tmp_path: Path, issuer: IssuerConfig, rows: list[dict[str, str]], now: datetime = NOW) -> list[str]:
    orders = tmp_path / "orders.csv"
    write_orders(orders, rows)
    issue_tokens(orders, issuer, tmp_path / "tokens", now=now)
    tokens = load_tokens(tmp_path / "tokens", _pinned(issuer), default_schema())
    _, statuses = prepare_token_elements(orders, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=NOW,
                                         check_basis=False)
    return [status for _, status, _ in statuses]


def test_issuer_refuses_non_final_future_and_too_old_orders(tmp_path: Path, issuer: IssuerConfig) -> None:
    rows = [
        ALICE,
        {**ALICE, "order_status": "pending"},
        {**ALICE, "order_date": "2027-01-01"},
        {**ALICE, "order_date": "2001-01-01"},
        {**ALICE, "order_date": ""},
    ]
    assert _statuses(tmp_path, issuer, rows) == ["ok", NO_TOKEN, NO_TOKEN, NO_TOKEN, NO_TOKEN]


def test_address_cap_per_person_per_epoch_holds_across_runs(tmp_path: Path, issuer: IssuerConfig) -> None:
    first = [{**ALICE, "address": _address(i)} for i in range(2)]
    assert _statuses(tmp_path, issuer, first) == ["ok", "ok"]
    # The same addresses again are no new addresses; the third is the last one allowed.
    again = [*first, {**ALICE, "address": _address(2)}, {**ALICE, "address": _address(3)},
             {**ALICE, "name": "Bob Jones", "address": _address(3)}]
    assert _statuses(tmp_path, issuer, again) == ["ok", "ok", "ok", NO_TOKEN, "ok"]
    # A new epoch starts a new count.
    assert _statuses(tmp_path, issuer, [{**ALICE, "address": _address(9)}], now=datetime(2027, 1, 2, tzinfo=UTC)) \
        == [TOKEN_NOT_YET_VALID]


def test_tokens_are_the_issuer_evaluation_of_the_match_keys(tmp_path: Path, issuer: IssuerConfig) -> None:
    orders = tmp_path / "orders.csv"
    write_orders(orders, [ALICE])
    issue_tokens(orders, issuer, tmp_path / "tokens", now=NOW)
    parsed = read_token_file(tmp_path / "tokens", bytes.fromhex(_pinned(issuer).read_text()))
    sk, pk = epoch_key_pair(read_seed(issuer.seed_file), Epoch.containing(NOW))
    keys = [k for _, k in default_schema().match_keys(ALICE, "requester")]
    assert [t for t in parsed.tokens[1] if t is not None] == [voprf.evaluate(sk, k) for k in keys]
    assert parsed.header.oprf_key == pk and parsed.header.epoch.name == "2026-12"


@pytest.mark.parametrize("offset", [0, 40, 300, -30, -3])
def test_one_flipped_bit_refuses_the_file_naming_it(tmp_path: Path, issuer: IssuerConfig, offset: int) -> None:
    orders = tmp_path / "orders.csv"
    write_orders(orders, [ALICE])
    path = tmp_path / "tokens"
    issue_tokens(orders, issuer, path, now=NOW)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TokenFileError, match=str(path)):
        load_tokens(path, _pinned(issuer), default_schema())


def test_a_file_signed_by_another_issuer_is_refused(tmp_path: Path, issuer: IssuerConfig) -> None:
    other = make_issuer(tmp_path / "other", {})
    orders = tmp_path / "orders.csv"
    write_orders(orders, [ALICE])
    issue_tokens(orders, other, tmp_path / "tokens", now=NOW)
    with pytest.raises(TokenFileError, match="signature is invalid"):
        load_tokens(tmp_path / "tokens", _pinned(issuer), default_schema())


def test_expired_and_not_yet_valid_tokens_are_refused_per_row(tmp_path: Path, issuer: IssuerConfig) -> None:
    orders = tmp_path / "orders.csv"
    write_orders(orders, [ALICE, {**ALICE, "order_status": "open"}])
    issue_tokens(orders, issuer, tmp_path / "tokens", now=NOW)
    tokens = load_tokens(tmp_path / "tokens", _pinned(issuer), default_schema())
    for now, expected in [(datetime(2027, 1, 1, tzinfo=UTC), TOKEN_EXPIRED), (datetime(2026, 11, 30, tzinfo=UTC),
                                                                              TOKEN_NOT_YET_VALID)]:
        elements, statuses = prepare_token_elements(orders, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=now)
        assert [s for _, s, _ in statuses] == [expected, NO_TOKEN] and not elements.keys


def test_a_malformed_token_line_spoils_only_its_row(tmp_path: Path, issuer: IssuerConfig) -> None:
    from blindmatch.issuer.keys import load_signing_key
    from blindmatch.issuer.tokenfile import render

    orders = tmp_path / "orders.csv"
    write_orders(orders, [ALICE, {**ALICE, "address": _address(1)}])
    issue_tokens(orders, issuer, tmp_path / "tokens", now=NOW)
    parsed = read_token_file(tmp_path / "tokens", bytes.fromhex(_pinned(issuer).read_text()))
    rows = [(1, parsed.tokens[1][:1]), (2, parsed.tokens[2])]  # row 1 lost a token
    (tmp_path / "tokens").write_bytes(render(parsed.header, rows, load_signing_key(issuer.signing_key)))
    tokens = load_tokens(tmp_path / "tokens", _pinned(issuer), default_schema())
    elements, statuses = prepare_token_elements(orders, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=NOW)
    assert [s for _, s, _ in statuses] == [TOKEN_INVALID, "ok"]
    assert elements.keys == [t for t in parsed.tokens[2] if t is not None]


def test_blind_evaluation_only_for_configured_holders_within_their_count(
    tmp_path: Path, issuer: IssuerConfig, engine: BatchEngine
) -> None:
    evaluator = BlindEvaluator(issuer, engine)
    epoch, pk = evaluator.public_key()
    keys = [k for _, k in default_schema().match_keys(ALICE, "holder")]

    def stage(org: str, epoch_name: str = epoch.name) -> IssuerTokens:
        return IssuerTokens(lambda b: evaluator.evaluate(org, b, epoch_name), pk, epoch, engine)

    sk = epoch_key_pair(read_seed(issuer.seed_file), epoch)[0]
    assert stage("Example Tax Authority").convert(keys) == [voprf.evaluate(sk, k) for k in keys]
    with pytest.raises(EvaluationRefused, match="not a holder"):
        stage("County Court of Example").convert(keys)
    with pytest.raises(EvaluationRefused, match="epoch"):
        stage("Example Tax Authority", "2001-01").convert(keys)
    limit = evaluator.limit("Example Tax Authority")
    assert limit == 10 * len(default_schema().tier_names())  # 10 records x every tier, no margin
    stage("Example Tax Authority").convert([b"key %d" % i for i in range(limit - len(keys))])
    with pytest.raises(EvaluationRefused, match="allowance"):
        stage("Example Tax Authority").convert(keys)
    evaluator.close()
    with AuditLog.open(issuer.state_dir, audit_origin(issuer)) as log:
        assert log.size == 5  # two evaluations, three refusals


def test_a_wrong_issuer_proof_is_refused(tmp_path: Path, issuer: IssuerConfig, engine: BatchEngine) -> None:
    from blindmatch.crypto import dleq

    evaluator = BlindEvaluator(issuer, engine)
    epoch, _ = evaluator.public_key()
    other_pk = epoch_key_pair(bytes(32), epoch)[1]
    stage = IssuerTokens(lambda b: evaluator.evaluate("Example Tax Authority", b, epoch.name), other_pk, epoch, engine)
    with pytest.raises(dleq.ProofError):
        stage.convert([b"k1", b"k2"])
    evaluator.close()


def test_epochs() -> None:
    assert Epoch.containing(NOW).name == "2026-12"
    assert Epoch.containing(NOW, 3).name == "2026-10" and Epoch.containing(NOW, 3).expires == datetime(2027, 1, 1, tzinfo=UTC)
    assert Epoch.named("2026-07", 6).not_before == datetime(2026, 7, 1, tzinfo=UTC)
    with pytest.raises(EpochError):
        Epoch.named("2026-08", 6)
    with pytest.raises(EpochError):
        Epoch.containing(NOW, 5)
    seed = bytes(range(32))
    assert epoch_key_pair(seed, Epoch.named("2026-11")) != epoch_key_pair(seed, Epoch.named("2026-12"))


def test_seed_file_must_be_private(tmp_path: Path, issuer: IssuerConfig) -> None:
    issuer.seed_file.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_seed(issuer.seed_file)


@pytest.mark.parametrize("change", ["reordered", "edited", "row removed", "row added before"])
def test_a_token_file_for_other_records_is_refused_naming_both_files(tmp_path: Path, issuer: IssuerConfig,
                                                                     change: str) -> None:
    """Tokens are tied to rows by number; a file issued for other rows would send one person's tokens as another's."""
    people = [{**ALICE, "name": n, "address": _address(i)} for i, n in enumerate(["Alice Smith", "Bob Jones", "Carol Brown"])]
    orders = tmp_path / "orders.csv"
    write_orders(orders, people)
    issue_tokens(orders, issuer, tmp_path / "tokens", now=NOW)
    tokens = load_tokens(tmp_path / "tokens", _pinned(issuer), default_schema())
    elements, _ = prepare_token_elements(orders, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=NOW)
    assert elements.keys  # the file it was issued for is accepted
    queries = tmp_path / "queries.csv"
    changed = {
        "reordered": [people[1], people[0], people[2]],
        "edited": [people[0], {**people[1], "address": _address(9)}, people[2]],
        "row removed": people[:2],
        "row added before": [{**ALICE, "name": "Dave Other"}, *people],
    }[change]
    write_orders(queries, changed)
    with pytest.raises(TokenFileError, match="issued for other records") as refused:
        prepare_token_elements(queries, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=NOW)
    assert str(tmp_path / "tokens") in str(refused.value) and str(queries) in str(refused.value)


def test_the_same_blinded_batch_again_is_answered_but_not_counted_twice(
        issuer: IssuerConfig, engine: BatchEngine) -> None:
    """A holder whose answer was lost resends the batch with the same blinds: it learns nothing new, pays nothing."""
    from blindmatch.crypto import group
    from blindmatch.crypto.modes import VOPRF

    evaluator = BlindEvaluator(issuer, engine)
    epoch = evaluator.public_key()[0]
    keys = [b"key %d" % i for i in range(5)]
    blinded = engine.blind_in_mode(VOPRF, keys, b"".join(group.random_scalar() for _ in keys))
    first, _ = evaluator.evaluate("Example Tax Authority", blinded, epoch.name)
    again, _ = evaluator.evaluate("Example Tax Authority", blinded, epoch.name)
    assert again == first and evaluator.used("Example Tax Authority", epoch) == 5
    other = engine.blind_in_mode(VOPRF, keys, b"".join(group.random_scalar() for _ in keys))  # new blinds: new batch
    evaluator.evaluate("Example Tax Authority", other, epoch.name)
    assert evaluator.used("Example Tax Authority", epoch) == 10
    evaluator.close()
    with AuditLog.open(issuer.state_dir, audit_origin(issuer)) as log:
        assert log.size == 3
    events = [json.loads(line)["event"] for line in (issuer.state_dir / "audit" / "log.jsonl").read_text().splitlines()]
    assert events == ["blind_evaluation", "blind_evaluation_repeated", "blind_evaluation"]


def test_the_next_epoch_is_evaluated_only_within_the_window_before_it_starts(
    issuer: IssuerConfig, engine: BatchEngine
) -> None:
    """A holder may build its index for the next epoch from ``evaluate_ahead_hours`` before it starts, under
    that epoch's key and against that epoch's allowance; never earlier, never an epoch after that."""
    current = Epoch.containing(NOW)
    upcoming = Epoch.containing(current.expires)
    window_opens = upcoming.not_before - timedelta(hours=issuer.evaluate_ahead_hours)
    clock = [window_opens - timedelta(seconds=1)]
    evaluator = BlindEvaluator(issuer, engine, clock=lambda: clock[0])
    keys = [k for _, k in default_schema().match_keys(ALICE, "holder")]
    pk_next = epoch_key_pair(read_seed(issuer.seed_file), upcoming)[1]

    def stage(epoch: Epoch, pk: bytes) -> IssuerTokens:
        return IssuerTokens(lambda b: evaluator.evaluate("Example Tax Authority", b, epoch.name), pk, epoch, engine)

    assert evaluator.epoch_at(upcoming.not_before) is None  # not announced yet
    with pytest.raises(EvaluationRefused, match=f"asked for epoch {upcoming.name}, current is {current.name}"):
        stage(upcoming, pk_next).convert(keys)
    clock[0] = window_opens
    assert evaluator.epoch_at(upcoming.not_before) == (upcoming, pk_next)
    assert evaluator.epoch_at(current.not_before) == evaluator.public_key()  # the current one, as always
    sk_next = epoch_key_pair(read_seed(issuer.seed_file), upcoming)[0]
    assert stage(upcoming, pk_next).convert(keys) == [voprf.evaluate(sk_next, k) for k in keys]
    assert (evaluator.used("Example Tax Authority", upcoming), evaluator.used("Example Tax Authority", current)) \
        == (len(keys), 0)
    after = Epoch.containing(upcoming.expires)
    assert evaluator.epoch_at(after.not_before) is None  # two epochs ahead: never
    evaluator.close()
