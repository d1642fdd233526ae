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
    PolicyError,
    PolicyRefusal,
    SessionRequest,
    sign_request,
)
from blindmatch.policy.request import MAX_SIGNATURES, RequestFormatError, open_envelope, seal_envelope, sign_encoded

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
    assert len(REASONS) == 10  # with key_spent (the key lifetime cap) and dual_control_missing
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


def test_clock_skew_is_named_as_such(authorizer: Authorizer) -> None:
    """A requester clock 10 minutes ahead is told so, not just "expired" (issue 17)."""
    ahead = envelope(issued_at=NOW + timedelta(minutes=10), expires_at=NOW + timedelta(minutes=30))
    refusal = refused(authorizer, ahead)
    assert refusal.reason == "expired"
    assert "the requester's clock is 600 s ahead of the holder's" in refusal.message
    behind = refused(authorizer, envelope(), now=NOW + timedelta(minutes=16))
    assert "expired 360 s ago by the holder's clock" in behind.message
    assert "the requester's clock is 1020 s behind the holder's" in behind.message


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


# -- dual control (several officials sign one request) and no name oracle ------------

DUAL = POLICY.replace(
    "official_thirty_day_records = 8000\n\n[organisations.",
    "official_thirty_day_records = 8000\ndual_control_records = 50\ndual_control_day_records = 150\n\n[organisations.",
    1,
) + official("Mallory", COURT)


@pytest.fixture
def dual(tmp_path: Path, budgets: BudgetStore) -> Authorizer:
    (tmp_path / "policy.toml").write_text(DUAL)
    return Authorizer(Policy.load(tmp_path / "policy.toml"), budgets)


def signed_by(*signers: str, **changes: object) -> bytes:
    request = SessionRequest.decode(envelope(signers[0], **changes)[:-64])
    return seal_envelope(request, [sign_encoded(request, KEYS[name]) for name in signers])


def reason(authorizer: Authorizer, env: bytes, **kwargs: object) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        authorize(authorizer, env, **kwargs)
    return info.value


def test_large_session_needs_two_officials(dual: Authorizer, budgets: BudgetStore) -> None:
    refusal = reason(dual, envelope())
    assert refusal.reason == "dual_control_missing" and refusal.status == "PERMISSION_DENIED"
    assert "needs the signatures of 2 distinct officials" in str(refusal)
    assert budgets.debits() == []  # a refusal debits nothing
    grant = authorize(dual, signed_by("Alice", "Mallory"))
    assert grant.official.name == "Alice" and [o.name for o in grant.cosigners] == ["Mallory"]


def test_the_same_official_twice_is_one_official(dual: Authorizer) -> None:
    assert reason(dual, signed_by("Alice", "Alice")).reason == "dual_control_missing"


def test_small_session_needs_one_until_the_day_total_is_large(dual: Authorizer) -> None:
    for n in range(1, 5):
        ids = {"session_id": bytes([n]) * 16, "record_count": 40}
        env = envelope(nonce=bytes([n]) * 16, **ids)
        if n < 4:
            authorize(dual, env, **ids)
        else:  # 120 used today: 40 more would take the organisation's day above 150
            assert reason(dual, env, **ids).reason == "dual_control_missing"
            authorize(dual, signed_by("Alice", "Mallory", nonce=bytes([n]) * 16, **ids), **ids)


@pytest.mark.parametrize(
    ("cosigner", "expected"),
    [("Eve", "unsigned"), ("Dave", "expired"), ("Carol", "mode_not_allowed")],
    ids=["other-organisation", "mandate-ended", "mode-not-allowed"],
)
def test_every_cosignature_is_verified(dual: Authorizer, cosigner: str, expected: str) -> None:
    mode = {"mode": "cardinality"} if expected == "mode_not_allowed" else {}
    assert reason(dual, signed_by("Alice", cosigner, **mode), **mode).reason == expected


def test_a_forged_cosignature_is_unsigned(dual: Authorizer) -> None:
    request = SessionRequest.decode(envelope()[:-64])
    env = seal_envelope(request, [sign_encoded(request, KEYS["Alice"]), sign_encoded(request, Ed25519PrivateKey.generate())])
    refusal = reason(dual, env)
    assert refusal.reason == "unsigned" and "co-signature 1 is by no official" in str(refusal)


def test_envelope_carries_one_to_max_signatures() -> None:
    request = SessionRequest.decode(envelope()[:-64])
    sig = sign_encoded(request, KEYS["Alice"])
    assert open_envelope(seal_envelope(request, [sig] * MAX_SIGNATURES))[1] == (sig,) * MAX_SIGNATURES
    with pytest.raises(RequestFormatError):
        seal_envelope(request, [])
    with pytest.raises(PolicyRefusal, match=r"1\.\.8 signatures"):
        open_envelope(request.encode() + sig * (MAX_SIGNATURES + 1))


def test_dual_control_officials_must_be_two_or_more(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text(DUAL.replace("dual_control_day_records = 150", "dual_control_officials = 1"))
    with pytest.raises(PolicyError, match=r"dual_control_officials: must be an integer in 2\.\.8"):
        Policy.load(tmp_path / "policy.toml")


def test_no_name_oracle(authorizer: Authorizer) -> None:
    """A name of another organisation's official and a name nobody has are refused alike."""
    eve_forged = SessionRequest.decode(envelope("Eve")[:-64])
    forged = seal_envelope(eve_forged, [sign_encoded(eve_forged, Ed25519PrivateKey.generate())])
    nobody = replace(eve_forged, official="Nobody At All")
    unknown = seal_envelope(nobody, [sign_encoded(nobody, Ed25519PrivateKey.generate())])
    first, second = reason(authorizer, forged), reason(authorizer, unknown)
    assert first.reason == second.reason == "unknown_official"
    assert str(first).replace("Eve", "X") == str(second).replace("Nobody At All", "X")


def test_no_timing_oracle_either(authorizer: Authorizer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusing another organisation's official's name costs the same verifications as a name nobody has."""
    from blindmatch.policy import authorize as authorize_module

    calls: list[str] = []
    real = authorize_module.verify_request_signature

    def counting(request: SessionRequest, signature: bytes, public_key: bytes) -> bool:
        calls.append(request.official)
        return real(request, signature, public_key)

    monkeypatch.setattr(authorize_module, "verify_request_signature", counting)
    eve_forged = SessionRequest.decode(envelope("Eve")[:-64])
    nobody = replace(eve_forged, official="Nobody At All")
    for request in (eve_forged, nobody):
        keys = [Ed25519PrivateKey.generate() for _ in range(2)]
        reason(authorizer, seal_envelope(request, [sign_encoded(request, k) for k in keys]))
    assert calls.count("Eve") == calls.count("Nobody At All") == 2


def test_signatures_in_any_order_and_their_keys_are_kept(dual: Authorizer) -> None:
    grant = authorize(dual, signed_by("Mallory", "Alice", official="Alice"))
    assert grant.official.name == "Alice" and [o.name for o in grant.cosigners] == ["Mallory"]
    assert grant.signer_keys == (KEYS["Mallory"].public_key().public_bytes_raw(), KEYS["Alice"].public_key().public_bytes_raw())
