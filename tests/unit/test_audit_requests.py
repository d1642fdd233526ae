"""audit.requests: the signed requests a log keeps are re-verified, against the policy when given."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import entries
from blindmatch.audit.events import validate_fields
from blindmatch.audit.requests import check_entry, check_requests
from blindmatch.policy import Policy, testvector
from blindmatch.policy.request import seal_envelope, sign_encoded

ALICE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # testvector.SEED
BOB = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
REQUEST = testvector.REQUEST


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes_raw()


def opened(*signers: Ed25519PrivateKey, keys: list[bytes] | None = None) -> dict[str, object]:
    envelope = seal_envelope(REQUEST, [sign_encoded(REQUEST, k) for k in signers])
    entry = entries.session_opened("holder", REQUEST.session_id, "Peer Org", REQUEST, envelope,
                                   keys if keys is not None else [public(k) for k in signers])
    validate_fields(entry.event, entry.fields)
    return {"event": entry.event, **entry.fields}


def policy(tmp_path: Path, valid_until: str = "2099-01-01T00:00:00Z") -> Policy:
    rows = "\n".join(
        f'[[organisations."{REQUEST.organisation}".officials]]\nname = "{name}"\nrole = "Clerk"\n'
        f'public_key = "{public(key).hex()}"\nvalid_from = 2000-01-01T00:00:00Z\nvalid_until = {until}\n'
        'modes = ["membership", "cardinality"]\n'
        for name, key, until in ((REQUEST.official, ALICE, valid_until), ("Bob Cosigner", BOB, "2099-01-01T00:00:00Z"))
    )
    path = tmp_path / "policy.toml"
    path.write_text(f'[organisations."{REQUEST.organisation}"]\nsession_max_records = 1\nday_records = 1\n'
                    "thirty_day_records = 1\nofficial_day_records = 1\nofficial_thirty_day_records = 1\n\n" + rows)
    return Policy.load(path)


def test_kept_request_reverifies_with_its_signers(tmp_path: Path) -> None:
    approval, problems = check_entry(opened(ALICE, BOB), [policy(tmp_path)])
    assert problems == [] and approval is not None
    assert approval.signers == (REQUEST.official, "Bob Cosigner") and approval.signer_keys == (public(ALICE), public(BOB))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"records": 999}, "records differs from the signed request"),
        ({"official": "Someone Else"}, "official differs"),
        ({"request_sha256": "00" * 32}, "does not hash to request_sha256"),
    ],
)
def test_entry_that_disagrees_with_its_request_fails(change: dict[str, object], problem: str) -> None:
    _, problems = check_entry({**opened(ALICE), **change})
    assert any(problem in p for p in problems), problems


def test_forged_signature_or_swapped_key_fails() -> None:
    entry = opened(ALICE)
    forged = {**entry, "signatures": ("00" * 64)}
    assert any("signature 1 does not verify" in p for p in check_entry(forged)[1])
    swapped = opened(ALICE, keys=[public(BOB)])
    assert any("signature 1 does not verify" in p for p in check_entry(swapped)[1])
    small_order = opened(ALICE, keys=[bytes([1]) + bytes(31)])
    assert any("signature 1 does not verify" in p for p in check_entry(small_order)[1])


def test_policy_decides_whose_key_it_was(tmp_path: Path) -> None:
    stranger = Ed25519PrivateKey.generate()
    _, problems = check_entry(opened(stranger), [policy(tmp_path)])
    assert any("is no official of" in p for p in problems)
    _, problems = check_entry(opened(ALICE), [policy(tmp_path, valid_until="2001-01-01T00:00:00Z")])
    assert any("had no mandate when the request was issued" in p for p in problems)
    _, problems = check_entry(opened(BOB), [policy(tmp_path)])
    assert any("did not sign" in p for p in problems)


def test_refused_sessions_only_warn_and_old_entries_are_skipped() -> None:
    bad = {**opened(ALICE), "signatures": "00" * 64}
    refused = {"event": "session_refused", "session_id": bad["session_id"]}
    review = check_requests([bad, refused])
    assert review.problems == [] and review.warnings and review.approvals == []
    old = {k: v for k, v in opened(ALICE).items() if k not in ("request", "signatures", "signer_keys")}
    assert check_requests([old]).problems == [] and check_requests([bad]).problems


def test_the_report_names_who_approved_each_session(tmp_path: Path) -> None:
    """The HTML report's sessions table re-verifies each kept request: names with the policy,
    key fingerprints without it, and a forged approval never passes for a real one."""
    from blindmatch.audit.report import _sessions_table

    dual = opened(ALICE, BOB)
    forged = {**opened(ALICE), "session_id": "ab" * 16, "signatures": "00" * 64}
    named = _sessions_table([dual, forged], [policy(tmp_path)])
    assert f"{REQUEST.official}, Bob Cosigner (verified)" in named
    assert "NOT VERIFIED" in named and "signature 1 does not verify" in named
    unnamed = _sessions_table([dual], [])
    assert "2 keys: " in unnamed and "(verified; names with --policy)" in unnamed
