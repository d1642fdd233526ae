"""Prepared sessions and officials' approvals, in the requester's job store.

No official's private key is in the daemon. The daemon *prepares* a job: it fixes each
session's id, element selection and blinds (the signed request commits to the blinded
batches, so the blinds cannot be re-drawn later) and the exact canonical request to be
sent. Officials then approve with their own keys (``blindmatch official approve``): an
approval is the official's Ed25519 signature over that canonical request, stored here
with the official's public key. Only a released job runs, and it sends exactly the
prepared requests with the stored signatures.

The tables live in the job store's SQLite file (created here if missing, so the job
schema does not change). Blinds are secrets: the store is in the 0700 state directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from blindmatch.crypto.ed25519 import WeakPublicKeyError
from blindmatch.policy.request import SessionRequest, seal_envelope, verify_request_signature
from blindmatch.requester.jobs import JobStore, _now
from blindmatch.vocabulary import BlindmatchError, JobState

_TABLES = (
    """CREATE TABLE IF NOT EXISTS prepared_sessions (
        session_id TEXT PRIMARY KEY,
        job_id     TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        elements   BLOB NOT NULL,
        blinds     BLOB NOT NULL,
        request    BLOB NOT NULL,
        state      TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS prepared_by_job ON prepared_sessions (job_id, state, seq)",
    """CREATE TABLE IF NOT EXISTS approvals (
        job_id     TEXT NOT NULL,
        session_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        signature  BLOB NOT NULL,
        approved_at TEXT NOT NULL,
        PRIMARY KEY (session_id, public_key))""",
    """CREATE TABLE IF NOT EXISTS job_approval (
        job_id   TEXT PRIMARY KEY,
        decision TEXT NOT NULL,
        detail   TEXT NOT NULL DEFAULT '',
        at       TEXT NOT NULL)""",
)


class Decision(StrEnum):
    """Where the officials' decision on a prepared job stands."""

    AWAITING = "awaiting"
    RELEASED = "released"
    REJECTED = "rejected"


class SessionState(StrEnum):
    PENDING = "pending"  # prepared, not yet sent
    SENT = "sent"  # its session id reached the holder: never sent again
    DROPPED = "dropped"  # not sendable as approved (expired, rejected, holder changed): never sent


class ApprovalError(BlindmatchError, ValueError):
    """An approval that cannot be accepted (wrong job state, bad signature, changed request)."""


@dataclass(frozen=True)
class PreparedSession:
    session_id: bytes
    seq: int
    elements: np.ndarray
    blinds: bytes
    request: SessionRequest
    signatures: tuple[tuple[bytes, bytes], ...]  # (public key, signature), in approval order

    def envelope(self) -> bytes:
        """The signed envelope to send: the request and every approval's signature."""
        return seal_envelope(self.request, [sig for _, sig in self.signatures])


def requests_digest(requests: Sequence[SessionRequest]) -> bytes:
    """SHA-256 over the canonical requests in session order: what an official approves,
    shown by ``official show`` and checked by ``official approve --digest``."""
    digest = hashlib.sha256(b"BLINDMATCH-APPROVAL-V1")
    for request in requests:
        encoded = request.encode()
        digest.update(len(encoded).to_bytes(4, "big") + encoded)
    return digest.digest()


class Approvals:
    """Prepared sessions, approvals and decisions of the jobs in one job store."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        with store.transaction() as db:
            for statement in _TABLES:
                db.execute(statement)

    # -- the daemon's side ---------------------------------------------------------------

    def prepare(self, job_id: str, sessions: Sequence[tuple[bytes, np.ndarray, bytes, SessionRequest]]) -> None:
        """Store a new set of prepared sessions (id, elements, blinds, request) and wait for officials."""
        with self.store.transaction() as db:
            db.execute("UPDATE prepared_sessions SET state = ? WHERE job_id = ? AND state = ?",
                       (SessionState.DROPPED, job_id, SessionState.PENDING))
            db.executemany(
                "INSERT INTO prepared_sessions (session_id, job_id, seq, elements, blinds, request, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((sid.hex(), job_id, seq, elements.astype("<u4").tobytes(), blinds, request.encode(), SessionState.PENDING)
                 for seq, (sid, elements, blinds, request) in enumerate(sessions)),
            )
            db.execute("INSERT OR REPLACE INTO job_approval (job_id, decision, detail, at) VALUES (?, ?, '', ?)",
                       (job_id, Decision.AWAITING, _now()))

    def mark(self, session_id: bytes, state: SessionState) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE prepared_sessions SET state = ? WHERE session_id = ?", (state, session_id.hex()))

    def decision(self, job_id: str) -> tuple[Decision | None, str]:
        row = self.store.connection().execute(
            "SELECT decision, detail FROM job_approval WHERE job_id = ?", (job_id,)).fetchone()
        return (None, "") if row is None else (Decision(row["decision"]), row["detail"])

    def pending(self, job_id: str) -> list[PreparedSession]:
        """The job's prepared, unsent sessions in order, each with its approvals."""
        db = self.store.connection()
        rows = db.execute("SELECT * FROM prepared_sessions WHERE job_id = ? AND state = ? ORDER BY seq",
                          (job_id, SessionState.PENDING)).fetchall()
        result = []
        for row in rows:
            approvals = db.execute(
                "SELECT public_key, signature FROM approvals WHERE session_id = ? ORDER BY approved_at, public_key",
                (row["session_id"],)).fetchall()
            result.append(PreparedSession(
                session_id=bytes.fromhex(row["session_id"]),
                seq=row["seq"],
                elements=np.frombuffer(row["elements"], dtype="<u4").astype(np.uint32),
                blinds=bytes(row["blinds"]),
                request=SessionRequest.decode(bytes(row["request"])),
                signatures=tuple((bytes.fromhex(a["public_key"]), bytes(a["signature"])) for a in approvals),
            ))
        return result

    # -- the officials' side -------------------------------------------------------------

    def _awaiting(self, job_id: str) -> list[PreparedSession]:
        job = self.store.get(job_id)
        decision, _ = self.decision(job_id)
        if job.state != JobState.AWAITING_APPROVAL or decision is not Decision.AWAITING:
            raise ApprovalError(f"job {job_id} is {job.state}, not awaiting approval; nothing was signed")
        sessions = self.pending(job_id)
        if not sessions:
            raise ApprovalError(f"job {job_id} has no prepared sessions; nothing was signed")
        return sessions

    def summary_of(self, job_id: str) -> list[PreparedSession]:
        """The prepared sessions an official is asked to approve (raises unless awaiting)."""
        return self._awaiting(job_id)

    def approve(
        self, job_id: str, public_key: bytes, signatures: Sequence[bytes], digest: bytes, *, release: bool, now: datetime
    ) -> list[PreparedSession]:
        """Store one official's signatures (one per prepared session, in order).

        ``digest`` is what the official was shown: when the prepared requests changed
        since (another preparation, another job), nothing is stored. Every signature is
        verified against ``public_key`` before anything is stored.
        """
        sessions = self._awaiting(job_id)
        if requests_digest([s.request for s in sessions]) != digest:
            raise ApprovalError(f"job {job_id}'s requests differ from the ones approved (digest mismatch); "
                                "run `official show` again; nothing was signed")
        if len(signatures) != len(sessions):
            raise ApprovalError(f"job {job_id} has {len(sessions)} sessions, {len(signatures)} signatures given")
        for session, signature in zip(sessions, signatures, strict=True):
            try:
                valid = verify_request_signature(session.request, signature, public_key)
            except WeakPublicKeyError:
                valid = False
            if not valid:
                raise ApprovalError(f"the signature of session {session.seq} does not verify; nothing was stored")
            if session.request.expires_at <= now:
                raise ApprovalError(f"job {job_id}'s requests expired at {session.request.expires_at:%Y-%m-%dT%H:%M:%SZ}; "
                                    "the daemon prepares new ones when the job is submitted again")
        with self.store.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO approvals (job_id, session_id, public_key, signature, approved_at) "
                "VALUES (?, ?, ?, ?, ?)",
                ((job_id, s.session_id.hex(), public_key.hex(), sig, _now()) for s, sig in zip(sessions, signatures, strict=True)),
            )
            if release:
                db.execute("UPDATE job_approval SET decision = ?, at = ? WHERE job_id = ?", (Decision.RELEASED, _now(), job_id))
                db.execute("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?", (JobState.QUEUED, _now(), job_id))
        return self.pending(job_id)

    def reject(self, job_id: str, detail: str) -> None:
        """Refuse the job: it ends ``rejected`` and none of its prepared requests is ever sent."""
        self._awaiting(job_id)
        with self.store.transaction() as db:
            db.execute("UPDATE job_approval SET decision = ?, detail = ?, at = ? WHERE job_id = ?",
                       (Decision.REJECTED, detail, _now(), job_id))
            db.execute("UPDATE prepared_sessions SET state = ? WHERE job_id = ? AND state = ?",
                       (SessionState.DROPPED, job_id, SessionState.PENDING))
            db.execute("UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE id = ?",
                       (JobState.REJECTED, detail, _now(), job_id))
