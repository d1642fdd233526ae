"""Typed constructors of the session audit entries both daemons write (SPEC.md 10.2.1).

Each constructor takes the facts it needs (a core event, a signed request, a policy
debit) and returns the entry, so the two daemons cannot spell an entry differently and
the holder's and the requester's ``session_opened`` are built by one function.
``AuditLog.record(entry)`` validates and appends it as ``append`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blindmatch.core.events import BatchEvaluated, BatchReceived, SessionClosed
from blindmatch.policy.budget import Debit
from blindmatch.policy.request import SIGNATURE_BYTES, SessionRequest
from blindmatch.vocabulary import Reason


@dataclass(frozen=True)
class Entry:
    event: str
    fields: dict[str, Any]


def session_opened(
    role: str, session_id: bytes, peer: str, request: SessionRequest, envelope: bytes, signer_keys: Sequence[bytes]
) -> Entry:
    """The session's authority: who signed what, for how many records, under which law.

    The request is kept in full (``request``: its canonical encoding; ``signatures``:
    every signature of the envelope; ``signer_keys``: the key behind each, same order) so
    that a reviewer can re-verify it later (``audit.requests``, ``audit verify --policy``).
    """
    encoded = request.encode()
    signatures = envelope[len(encoded):]
    return Entry("session_opened", {
        "session_id": session_id.hex(), "peer": peer, "official": request.official, "mode": request.mode,
        "records": request.record_count, "held_back": request.held_back, "legal_basis": request.legal_basis,
        "request_sha256": hashlib.sha256(encoded).hexdigest(),
        "request_signature": signatures[:SIGNATURE_BYTES].hex(), "role": role,
        "request": encoded.hex(), "signatures": signatures.hex(), "signer_keys": b"".join(signer_keys).hex(),
    })


def budget_debited(session_id: bytes, debit: Debit, nonce: bytes) -> Entry:
    """The debit with its nonce: enough to rebuild the budget store from the log (SPEC section 7.6)."""
    return Entry("budget_debited", {
        "session_id": session_id.hex(), "organisation": debit.organisation, "official": debit.official,
        "records": debit.records, "day_used": debit.org_day.used, "day_limit": debit.org_day.limit,
        "month_used": debit.org_30d.used, "month_limit": debit.org_30d.limit, "nonce": nonce.hex(),
    })


def budget_settled(session_id: bytes, reserved: int, evaluated: int) -> Entry:
    """The session's debit after settlement: what it reserved, and the elements evaluated (at most that)."""
    return Entry("budget_settled", {"session_id": session_id.hex(), "reserved": reserved,
                                    "records": min(reserved, evaluated)})


def session_refused(session_id: bytes, peer: str, official: str, reason: Reason, status: str) -> Entry:
    return Entry("session_refused", {
        "session_id": session_id.hex(), "peer": peer, "official": official, "reason": reason, "status": status,
    })


def session_failed(session_id: bytes, peer: str, reason: Reason, status: str) -> Entry:
    return Entry("session_failed", {"session_id": session_id.hex(), "peer": peer, "reason": reason, "status": status})


def batch_evaluated(session_id: bytes, event: BatchEvaluated | BatchReceived) -> Entry:
    """``batch_evaluated`` on the holder, ``batch_received`` on the requester: the same facts."""
    name = "batch_evaluated" if isinstance(event, BatchEvaluated) else "batch_received"
    return Entry(name, {
        "session_id": session_id.hex(), "seq": event.seq, "count": event.count,
        "blinded_sha256": event.blinded_digest.hex(), "evaluated_sha256": hashlib.sha256(event.evaluated).hexdigest(),
    })


def session_closed(
    event: SessionClosed, peer: str, own_signature: bytes, peer_signature: bytes, peer_audit_key: bytes,
    matches: int | None = None,
) -> Entry:
    """Both transcripts agree; ``matches`` only on the requester (the holder never learns it)."""
    fields: dict[str, Any] = {
        "session_id": event.session_id.hex(), "peer": peer, "elements": event.element_count,
        "transcript_hash": event.transcript_hash.hex(), "own_signature": own_signature.hex(),
        "peer_signature": peer_signature.hex(), "peer_audit_key": peer_audit_key.hex(),
    }
    if matches is not None:
        fields["matches"] = matches
    return Entry("session_closed", fields)


def refusals_summarised(since: str, refused: int, peers: int, reasons: dict[str, int]) -> Entry:
    """One period's counted refusals (``audit.refusals``): how many, from how many peers, why."""
    return Entry("refusals_summarised", {"since": since, "refused": refused, "peers": peers, "reasons": reasons})


def index_downloaded(
    peer: str, kind: str, digest: bytes, key_id: bytes, sent_bytes: int, offset: int, ended: str = ""
) -> Entry:
    """An index served: who, which index (kind, digest, OPRF key id = epoch), how many bytes from which
    offset (a resumed download logs each part). ``ended=Reason.CANCELLED``: the requester cancelled or lost
    the call before the end, and ``sent_bytes`` is what was handed to the transport by then."""
    return Entry("index_downloaded", {
        "peer": peer, "kind": kind, "digest": digest.hex(), "key_id": key_id.hex(), "bytes": sent_bytes,
        "offset": offset, **({"ended": ended} if ended else {}),
    })
