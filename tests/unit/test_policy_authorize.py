"""The holder's decision: every refusal reason, check order, and no debit on refusal."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.policy import (
    REASONS,
    Authorizer,
    BudgetStore,
    Limits,
    Policy,
    PolicyRefusal,
    SessionRequest,
    sign_request,
)

COURT = "County Court of Example"
TAX = "Tax Office of Elsewhere"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEYS = {name: Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
        for i, name in enumerate(["Alice", "Carol", "Dave", "Eve", "Mallory"])}
SESSION = {
    "session_id": b"\x51" * 16,
    "key_id": b"\x4b" * 32,
    "index_digest": b"\x49" * 32,
    "blinded_commitment": b"\x42" * 32,
    "record_count": 100,
    "mode": "membership",
}


def official(name: str, org: str, modes: str = '"membership", "cardinality"',
             valid: tuple[str, str] = ("2026-01-01T00:00:00Z", "2027-12-31T23:59:59Z")) -> str:
    key = base64.b64encode(KEYS[name].public_key().public_bytes_raw()).decode()
    return f"""
[[organisations."{org}".officials]]
name = "{name}"
role = "Clerk"
public_key = "{key}"
valid_from = {valid[0]}
valid_until = {valid[1]}
modes = [{modes}]
"""


POLICY = f"""
[organisations."{COURT}"]
session_max_records = 500
day_records = 1000
thirty_day_records = 10000
official_day_records = 800
official_thirty_day_records = 8000

[organisations."{TAX}"]
session_max_records = 500
day_records = 1000
thirty_day_records = 10000
official_day_records = 800
official_thirty_day_records = 8000
""" + official("Alice", COURT) + official("Carol", COURT, modes='"membership"') + official(
    "Dave", COURT, valid=("2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z")
) + official("Eve", TAX)


@pytest.fixture
def budgets(tmp_path: Path) -> BudgetStore:
    with BudgetStore(tmp_path / "budget.sqlite") as store:
        yield store


@pytest.fixture
def authorizer(tmp_path: Path, budgets: BudgetStore) -> Authorizer:
    (tmp_path / "policy.toml").write_text(POLICY)
    return Authorizer(Policy.load(tmp_path / "policy.toml"), budgets)


def envelope(signer: str = "Alice", **changes: object) -> bytes:
    fields = {
        "organisation": COURT,
        "official": signer,
        "held_back": 3,
        "legal_basis": "Example Enforcement Act 2025 s. 12",
        "nonce": b"\x4e" * 16,
        "issued_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(minutes=10),
        **SESSION,
    }
    fields.update(changes)
    return sign_request(SessionRequest(**fields), KEYS[signer])


def authorize(authorizer: Authorizer, env: bytes, *, peer: str = COURT, now: datetime = NOW, **session: object):
    return authorizer.authorize(env, peer_organisation=peer, now=now, **{**SESSION, **session})


def refused(authorizer: Authorizer, env: bytes, **kwargs: object) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        authorize(authorizer, env, **kwargs)
    assert info.value.status == info.value.reason.status
    return info.value


def test_reason_table() -> None:
    assert len(REASONS) == 9  # with key_spent, the key lifetime cap beside the budgets
    for reason in REASONS:
        assert grpc.StatusCode[reason.status] != grpc.StatusCode.OK  # a real gRPC name the daemon can map


def test_grant(authorizer: Authorizer, budgets: BudgetStore) -> None:
    grant = authorize(authorizer, envelope())
    assert grant.official.name == "Alice" and grant.official.organisation == COURT
    assert grant.request.record_count == 100 and grant.request.held_back == 3
    assert grant.debit.records == 100 and grant.debit.official_day.used == 100
    assert [(d.session_id, d.records) for d in budgets.debits()] == [(SESSION["session_id"], 100)]


@pytest.mark.parametrize(
    ("env", "kwargs", "reason"),
    [
        (b"", {}, "unsigned"),
        (b"\x00" * 300, {}, "unsigned"),
        (envelope()[:-1] + bytes([envelope()[-1] ^ 1]), {}, "unsigned"),  # tampered signature
        (envelope()[:100] + b"X" + envelope()[101:], {}, "unsigned"),  # tampered legal basis
        # Alice's name, Mallory's key
        (sign_request(SessionRequest.decode(envelope()[:-64]), KEYS["Mallory"]), {}, "unsigned"),
        (envelope(), {"session_id": b"\x00" * 16}, "unsigned"),
        (envelope(), {"key_id": b"\x00" * 32}, "unsigned"),
        (envelope(), {"index_digest": b"\x00" * 32}, "unsigned"),
        (envelope(), {"blinded_commitment": b"\x00" * 32}, "unsigned"),
        (envelope(), {"record_count": 101}, "unsigned"),
        (envelope(), {"mode": "cardinality"}, "unsigned"),
        (envelope("Mallory"), {}, "unknown_official"),
        (envelope("Eve", organisation=TAX), {}, "wrong_organisation"),  # genuine, other org's official
        (envelope("Eve", organisation=COURT), {}, "wrong_organisation"),  # claims the peer's organisation
        (envelope("Alice", organisation=TAX), {}, "wrong_organisation"),  # claims another organisation
        (envelope("Alice"), {"peer": TAX}, "wrong_organisation"),
        (envelope("Dave"), {}, "expired"),  # mandate ended in 2025
        (envelope(), {"now": NOW + timedelta(minutes=16)}, "expired"),  # past expiry + 5 min skew
        (envelope(issued_at=NOW + timedelta(minutes=6), expires_at=NOW + timedelta(minutes=20)), {}, "expired"),
        (envelope(expires_at=NOW - timedelta(minutes=1)), {}, "expired"),  # expires before issue
        (envelope(expires_at=NOW + timedelta(hours=2)), {}, "expired"),  # lifetime over one hour
        (envelope("Carol", mode="cardinality"), {"mode": "cardinality"}, "mode_not_allowed"),
        (envelope(record_count=501), {"record_count": 501}, "over_budget"),
        (envelope(mode="cardinality", record_count=9), {"mode": "cardinality", "record_count": 9}, "too_few_records"),
    ],
)
def test_refusals_evaluate_nothing(authorizer: Authorizer, budgets: BudgetStore, env: bytes,
                                   kwargs: dict[str, object], reason: str) -> None:
    refusal = refused(authorizer, env, **kwargs)
    assert refusal.reason == reason
    assert "\n" not in refusal.message and SESSION["blinded_commitment"].hex() not in refusal.message
    assert budgets.debits() == []


def test_clock_skew_allowance(authorizer: Authorizer) -> None:
    authorize(authorizer, envelope(issued_at=NOW + timedelta(minutes=4), expires_at=NOW + timedelta(minutes=30)))
    authorize(authorizer, envelope(nonce=b"\x01" * 16, session_id=b"\x02" * 16),
              now=NOW + timedelta(minutes=14), session_id=b"\x02" * 16)


def test_official_not_yet_valid(authorizer: Authorizer) -> None:
    early = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)
    env = envelope(issued_at=early, expires_at=early + timedelta(minutes=5))
    assert refused(authorizer, env, now=early).reason == "expired"


def test_replayed(authorizer: Authorizer, budgets: BudgetStore) -> None:
    env = envelope()
    authorize(authorizer, env)
    assert refused(authorizer, env).reason == "replayed"
    # Same nonce, re-signed for a new session: still a replay.
    again = envelope(session_id=b"\x77" * 16)
    assert refused(authorizer, again, session_id=b"\x77" * 16).reason == "replayed"
    assert len(budgets.debits()) == 1


def test_over_budget_across_sessions_and_get_info(authorizer: Authorizer, budgets: BudgetStore) -> None:
    for i in range(2):
        authorize(authorizer, envelope(nonce=bytes([i]) * 16, session_id=bytes([i]) * 16, record_count=400),
                  session_id=bytes([i]) * 16, record_count=400)
    env = envelope(nonce=b"\x09" * 16, session_id=b"\x09" * 16, record_count=1)
    refusal = refused(authorizer, env, session_id=b"\x09" * 16, record_count=1)
    assert refusal.reason == "over_budget" and "official's 24-hour" in refusal.message
    info = budgets.remaining(COURT, "Alice", Limits(500, 1000, 10000, 800, 8000), NOW)
    assert info["official_day"] == 0 and info["org_day"] == 200 and info["next_session_max"] == 0


@pytest.mark.parametrize(
    ("env", "kwargs", "reason"),
    [
        # bad signature beats expiry and budget
        (envelope(expires_at=NOW - timedelta(minutes=1))[:-1] + b"\x00", {}, "unsigned"),
        # organisation beats expiry
        (envelope("Eve", organisation=TAX), {"now": NOW + timedelta(days=1)}, "wrong_organisation"),
        # expiry beats the data binding
        (envelope(), {"now": NOW + timedelta(hours=1), "record_count": 7}, "expired"),
        # binding beats mode and budget
        (envelope("Carol", mode="cardinality", record_count=501), {"record_count": 500}, "unsigned"),
        # mode beats budget
        (envelope("Carol", mode="cardinality", record_count=501), {"mode": "cardinality", "record_count": 501},
         "mode_not_allowed"),
        # mode beats the cardinality minimum
        (envelope("Carol", mode="cardinality", record_count=1), {"mode": "cardinality", "record_count": 1},
         "mode_not_allowed"),
    ],
)
def test_check_order(authorizer: Authorizer, env: bytes, kwargs: dict[str, object], reason: str) -> None:
    assert refused(authorizer, env, **kwargs).reason == reason


def test_cardinality_minimum(tmp_path: Path, budgets: BudgetStore) -> None:
    """A one-element count is that element's membership: small cardinality sessions are refused, undebited."""
    (tmp_path / "policy.toml").write_text(POLICY)
    authorizer = Authorizer(Policy.load(tmp_path / "policy.toml"), budgets)

    def session(n: int, count: int, mode: str = "cardinality", nonce: bytes | None = None) -> dict[str, object]:
        sid = bytes([n]) * 16
        env = envelope(mode=mode, record_count=count, session_id=sid, nonce=nonce or sid)
        return {"env": env, "mode": mode, "record_count": count, "session_id": sid}

    def run(args: dict[str, object]):
        env = args.pop("env")
        return authorize(authorizer, env, **args)  # type: ignore[arg-type]

    for count in (1, 9):
        with pytest.raises(PolicyRefusal) as info:
            run(session(count, count))
        assert info.value.reason == "too_few_records" and info.value.status == "FAILED_PRECONDITION"
        assert f"at least 10 elements; this one has {count}" in info.value.message
    assert budgets.debits() == []
    assert run(session(10, 10)).debit.records == 10  # the minimum itself is enough
    assert run(session(11, 1, mode="membership")).debit.records == 1  # membership has no minimum
    # Checked before the budget: a too-small session with a used nonce is not "replayed".
    with pytest.raises(PolicyRefusal, match="too_few_records"):
        run(session(12, 2, nonce=bytes([10]) * 16))

    (tmp_path / "policy.toml").write_text(POLICY.replace(f'[organisations."{TAX}"]\n', f'cardinality_min_records = 2\n[organisations."{TAX}"]\n'))
    lowered = Authorizer(Policy.load(tmp_path / "policy.toml"), budgets)
    assert authorize(lowered, envelope(mode="cardinality", record_count=2, session_id=b"\x0d" * 16, nonce=b"\x0d" * 16),
                     mode="cardinality", record_count=2, session_id=b"\x0d" * 16).debit.records == 2


def test_same_name_in_two_organisations(tmp_path: Path, budgets: BudgetStore) -> None:
    """Names need not be unique across organisations: the signature picks the official."""
    text = POLICY + official("Mallory", TAX).replace('"Mallory"', '"Alice"', 1)
    (tmp_path / "policy.toml").write_text(text)
    authorizer = Authorizer(Policy.load(tmp_path / "policy.toml"), budgets)
    tax_alice = sign_request(replace(SessionRequest.decode(envelope()[:-64]), organisation=TAX), KEYS["Mallory"])
    assert authorize(authorizer, tax_alice, peer=TAX).official.organisation == TAX
    assert authorize(authorizer, envelope(nonce=b"\x05" * 16, session_id=b"\x05" * 16),
                     session_id=b"\x05" * 16).official.organisation == COURT
