"""Realistic holder and requester audit logs written through the public API.

Other ``test_audit_*`` modules import :func:`write_pair` from here; the tests
in this module are the end-to-end acceptance check of the issue: after a
demo-like run both logs verify and reconcile.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.peer_checkpoints import store_peer_checkpoint

HOLDER_ORIGIN = "holder.tax-agency.example/audit"
REQUESTER_ORIGIN = "requester.benefits-office.example/audit"
HOLDER_ORG = "Tax Agency"
REQUESTER_ORG = "Benefits Office"
LEGAL_BASIS = "Tax Code §6103(l)(7) final order 2024-17"


class FakeClock:
    """Deterministic wall clock advancing a little on every reading."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start or datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now

    def next_day(self) -> None:
        self.now += timedelta(days=1)


@dataclass(frozen=True)
class Session:
    """One request as the daemons would see it."""

    official: str
    records: int
    batches: int = 2
    mode: str = "membership"
    refused: str | None = None  # refusal reason


def _sha(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


SESSIONS_BY_DAY: list[list[Session]] = [
    [Session("alice@benefits.example", 120), Session("bob@benefits.example", 40, batches=1)],
    [Session("alice@benefits.example", 300, batches=3), Session("eve@benefits.example", 10, refused="unknown_official")],
    [
        Session("bob@benefits.example", 80, mode="cardinality"),
        Session("bob@benefits.example", 5000, refused="over_budget"),
        Session("alice@benefits.example", 60),
    ],
]


def run_session(
    holder: AuditLog, requester: AuditLog, number: int, spec: Session
) -> str:
    """Log one session on both sides, as the two daemons would; returns its id."""
    sid = hashlib.sha256(f"session {number}".encode()).hexdigest()[:32]
    request_sha = _sha("request", number)
    request_sig = _sha("request signature", number) * 2
    if spec.refused:
        for log, peer in ((holder, REQUESTER_ORG), (requester, HOLDER_ORG)):
            log.append(
                "session_refused",
                session_id=sid,
                peer=peer,
                official=spec.official,
                reason=spec.refused,
                status="PERMISSION_DENIED" if spec.refused != "over_budget" else "RESOURCE_EXHAUSTED",
            )
        return sid
    for log, peer, role in ((requester, HOLDER_ORG, "requester"), (holder, REQUESTER_ORG, "holder")):
        log.append(
            "session_opened",
            session_id=sid,
            peer=peer,
            official=spec.official,
            mode=spec.mode,
            records=spec.records,
            held_back=0,
            legal_basis=LEGAL_BASIS,
            request_sha256=request_sha,
            request_signature=request_sig,
            role=role,
        )
    holder.append(
        "budget_debited",
        session_id=sid,
        organisation=REQUESTER_ORG,
        official=spec.official,
        records=spec.records,
        day_used=spec.records + 100,
        day_limit=1000,
        month_used=spec.records * 3 + 500,
        month_limit=10000,
    )
    remaining = spec.records
    for seq in range(spec.batches):
        count = remaining if seq == spec.batches - 1 else spec.records // spec.batches
        remaining -= count
        blinded, evaluated = _sha("blinded", number, seq), _sha("evaluated", number, seq)
        for log, event in ((holder, "batch_evaluated"), (requester, "batch_received")):
            log.append(event, session_id=sid, seq=seq, count=count, blinded_sha256=blinded, evaluated_sha256=evaluated)
    transcript = hashlib.sha256(f"transcript {number}".encode()).digest()
    h_sig = holder.sign_transcript(bytes.fromhex(sid), transcript)
    r_sig = requester.sign_transcript(bytes.fromhex(sid), transcript)
    common = dict(session_id=sid, elements=spec.records, transcript_hash=transcript.hex())
    # The checkpoints cross as in the daemons (SPEC.md 10.4.1): the requester's in its Close,
    # the holder's (covering its session_closed) in its Closed.
    store_peer_checkpoint(holder.path, requester.checkpoint())
    holder.append(
        "session_closed", peer=REQUESTER_ORG, own_signature=h_sig.hex(), peer_signature=r_sig.hex(),
        peer_audit_key=requester.public_key.hex(), **common,
    )
    holder_checkpoint = holder.checkpoint()
    requester.append(
        "session_closed", peer=HOLDER_ORG, own_signature=r_sig.hex(), peer_signature=h_sig.hex(),
        peer_audit_key=holder.public_key.hex(), matches=spec.records // 7, **common,
    )
    store_peer_checkpoint(requester.path, holder_checkpoint)
    requester.checkpoint()
    return sid


def write_pair(root: Path, clock: FakeClock | None = None) -> tuple[Path, Path]:
    """Write a demo-like holder/requester pair under ``root``; returns their working dirs."""
    clock = clock or FakeClock()
    holder_dir, requester_dir = root / "holder", root / "requester"
    holder = AuditLog.open(holder_dir, HOLDER_ORIGIN, clock=clock)
    requester = AuditLog.open(requester_dir, REQUESTER_ORIGIN, clock=clock)
    holder.append("daemon_started", role="holder", version="0.1.0")
    requester.append("daemon_started", role="requester", version="0.1.0")
    holder.append("index_built", digest=_sha("index", 1), entries=250000, kind="membership")
    number = 0
    for day, sessions in enumerate(SESSIONS_BY_DAY):
        if day == 2:
            holder.append("key_rotated", key_id=_sha("oprf key", 2)[:16])
            holder.append("index_built", digest=_sha("index", 2), entries=251000, kind="membership")
        for spec in sessions:
            number += 1
            run_session(holder, requester, number, spec)
        clock.next_day()
    holder.append("daemon_stopped", role="holder", version="0.1.0")
    requester.append("daemon_stopped", role="requester", version="0.1.0")
    holder.close()
    requester.close()
    return holder_dir, requester_dir


def copy_pair(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of a pair written once per module (writing costs many fsyncs)."""
    shutil.copytree(pristine, tmp_path / "pair")
    return tmp_path / "pair" / "holder", tmp_path / "pair" / "requester"
