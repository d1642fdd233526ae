"""``reconcile``: both sides must describe the same sessions identically."""

from __future__ import annotations

import hashlib
from pathlib import Path

from helpers.audit_pairs import (
    HOLDER_ORG,
    HOLDER_ORIGIN,
    REQUESTER_ORG,
    REQUESTER_ORIGIN,
    Session,
    run_session,
)

from blindmatch.audit import AuditLog, reconcile

SID = "5e" * 16


def _reopen(pair: tuple[Path, Path]) -> tuple[AuditLog, AuditLog]:
    return AuditLog.open(pair[0], HOLDER_ORIGIN), AuditLog.open(pair[1], REQUESTER_ORIGIN)


def _close_session(
    log: AuditLog, peer: str, transcript: bytes, elements: int, peer_log: AuditLog, peer_transcript: bytes
) -> None:
    log.append(
        "session_closed",
        session_id=SID,
        peer=peer,
        elements=elements,
        transcript_hash=transcript.hex(),
        own_signature=log.sign_transcript(bytes.fromhex(SID), transcript).hex(),
        peer_signature=peer_log.sign_transcript(bytes.fromhex(SID), peer_transcript).hex(),
        peer_audit_key=peer_log.public_key.hex(),
    )


def test_session_known_to_one_side_only(pair: tuple[Path, Path]) -> None:
    holder, requester = _reopen(pair)
    holder.append("session_refused", session_id=SID, peer=REQUESTER_ORG, official="", reason="unsigned", status="UNAUTHENTICATED")
    holder.close()
    requester.close()
    result = reconcile(*pair)
    assert not result.ok
    assert result.mismatches == [f"session {SID}: appears only in the holder log"]


def test_different_transcript_and_counts(pair: tuple[Path, Path]) -> None:
    holder, requester = _reopen(pair)
    t1, t2 = hashlib.sha256(b"one").digest(), hashlib.sha256(b"two").digest()
    _close_session(holder, REQUESTER_ORG, t1, 10, requester, t1)
    _close_session(requester, HOLDER_ORG, t2, 11, holder, t2)
    holder.close()
    requester.close()
    mismatches = reconcile(*pair).mismatches
    assert any("transcript_hash differs" in m for m in mismatches)
    assert any("elements differs (holder 10, requester 11)" in m for m in mismatches)


def test_forged_peer_signature_and_wrong_peer_key(pair: tuple[Path, Path]) -> None:
    holder, requester = _reopen(pair)
    transcript = hashlib.sha256(b"t").digest()
    # The holder stores a "requester signature" over a different transcript.
    _close_session(holder, REQUESTER_ORG, transcript, 5, requester, hashlib.sha256(b"x").digest())
    requester.append(
        "session_closed", session_id=SID, peer=HOLDER_ORG, elements=5,
        transcript_hash=transcript.hex(),
        own_signature=requester.sign_transcript(bytes.fromhex(SID), transcript).hex(),
        peer_signature=holder.sign_transcript(bytes.fromhex(SID), transcript).hex(),
        peer_audit_key=requester.public_key.hex(),  # not the holder's key
    )
    holder.close()
    requester.close()
    mismatches = reconcile(*pair).mismatches
    assert f"session {SID}: requester transcript signature stored by the holder does not verify" in mismatches
    assert any("requester recorded a peer audit key that is not the holder's" in m for m in mismatches)


def test_batch_hashes_must_agree(pair: tuple[Path, Path]) -> None:
    holder, requester = _reopen(pair)
    run_session(holder, requester, 99, Session("alice@benefits.example", 10, batches=1))
    holder.append("batch_evaluated", session_id=SID, seq=0, count=3, blinded_sha256="aa" * 32, evaluated_sha256="bb" * 32)
    requester.append("batch_received", session_id=SID, seq=0, count=3, blinded_sha256="aa" * 32, evaluated_sha256="bc" * 32)
    transcript = hashlib.sha256(b"t").digest()
    _close_session(holder, REQUESTER_ORG, transcript, 3, requester, transcript)
    _close_session(requester, HOLDER_ORG, transcript, 3, holder, transcript)
    holder.close()
    requester.close()
    assert reconcile(*pair).mismatches == [
        f"session {SID}: batch counts or message hashes differ between holder and requester"
    ]


def test_session_closed_on_one_side_only(pair: tuple[Path, Path]) -> None:
    holder, requester = _reopen(pair)
    for log in (holder, requester):
        log.append("session_refused", session_id=SID, peer="x", official="", reason="expired", status="PERMISSION_DENIED")
    transcript = hashlib.sha256(b"t").digest()
    _close_session(holder, REQUESTER_ORG, transcript, 1, requester, transcript)
    holder.close()
    requester.close()
    assert reconcile(*pair).mismatches == [f"session {SID}: closed in the holder log only"]


def test_unverifiable_log_fails_reconcile(pair: tuple[Path, Path]) -> None:
    log_file = pair[1] / "audit" / "log.jsonl"
    lines = log_file.read_bytes().splitlines(keepends=True)
    log_file.write_bytes(b"".join(lines[:3] + lines[4:]))
    result = reconcile(*pair)
    assert not result.ok
    assert result.mismatches[0].startswith("requester log does not verify: log.jsonl line 4")


def test_same_log_twice_is_rejected(pair: tuple[Path, Path]) -> None:
    assert reconcile(pair[0], pair[0]).mismatches == ["holder and requester use the same audit key"]
