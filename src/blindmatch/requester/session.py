"""One signed session with its requester-side audit trail: opened, each batch, closed, refused or failed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from blindmatch.audit import AuditLog, entries
from blindmatch.audit.peer_checkpoints import store_peer_checkpoint, verify_peer_note
from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import BatchReceived, Event, SessionClosed
from blindmatch.core.messages import Close, Closed
from blindmatch.core.requester import RequesterSession
from blindmatch.policy import SessionRequest
from blindmatch.requester.holder_client import (
    HolderClient,
    HolderError,
)


def run_session(
    client: HolderClient,
    audit: AuditLog,
    session: RequesterSession,
    request: SessionRequest,
    envelope: bytes,
    peer: str,
    window: int,
    holder_audit_key: bytes,
    on_batch: Callable[[BatchReceived], None],
) -> Closed:
    """One signed session with its requester-side audit trail: opened, each batch, closed or refused.

    ``on_batch`` runs after a batch is looked up and logged (the runner persists there).
    """
    audit.record(entries.session_opened("requester", session.session_id, peer, request, envelope))

    def recorded(event: Event) -> None:
        """The audit adapter: one entry per core event (the Close/Closed pair is logged below)."""
        if isinstance(event, BatchReceived):
            audit.record(entries.batch_evaluated(session.session_id, event))
            on_batch(event)

    signatures: dict[bytes, bytes] = {}

    def seal(close: Close) -> Close:
        """Sign the transcript and hand over a checkpoint covering this session so far (SPEC.md 10.4.1)."""
        signatures[close.transcript_hash] = audit.sign_transcript(close.session_id, close.transcript_hash)
        return replace(close, signature=signatures[close.transcript_hash], signer_key=audit.public_key,
                       checkpoint_note=audit.checkpoint().note.encode())

    try:
        closed = client.match(session, envelope, window, seal, holder_audit_key, recorded)
    except HolderError as exc:
        if exc.code and exc.reason.is_refusal:
            audit.record(entries.session_refused(
                session.session_id, peer, request.official, exc.reason, exc.status or "UNKNOWN"))
            audit.checkpoint()
        raise
    except ProtocolError as exc:
        # This side stopped the session (e.g. a proof that does not verify) and told the holder.
        audit.record(entries.session_failed(session.session_id, peer, exc.code, exc.code.status))
        audit.checkpoint()
        raise
    event = SessionClosed(session.session_id, closed.transcript_hash, session.element_count, closed=closed)
    audit.record(entries.session_closed(event, peer, signatures[closed.transcript_hash], closed.signature,
                                        closed.signer_key, matches=session.match_count))
    store_peer_checkpoint(audit.path, verify_peer_note(closed.checkpoint_note, holder_audit_key))
    audit.checkpoint()
    return closed
