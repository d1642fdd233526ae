"""What one Match call of the holder's service has got to, how long the requester may be
silent, and the check of the requester's Close.

Kept apart from ``holder.service`` so the servicer stays an adapter: these decide what a
failed call is logged as, when a silent requester is given up on, and whether a Close
carries a valid audit signature.
"""

from __future__ import annotations

from dataclasses import dataclass

from blindmatch.audit import verify_transcript_signature
from blindmatch.audit.checkpoint import CheckpointError
from blindmatch.audit.peer_checkpoints import verify_peer_note
from blindmatch.core.errors import ProtocolError
from blindmatch.core.holder import HolderSession, HolderState
from blindmatch.core.messages import Close, Hello
from blindmatch.vocabulary import Mode, Reason


@dataclass
class MatchProgress:
    """How far one Match call got, which decides what its failure is logged as."""

    hello: Hello | None = None  # the Hello, once parsed: refusals of it are audited
    granted: bool = False  # the policy granted (and debited) the session
    closed: bool = False  # the session ended with Closed sent and the stream half-closed
    # ``session_closed`` is in the audit log: the session's outcome is recorded, and nothing
    # the requester sends after its Close (a batch, a second Close, an Abort, silence) can
    # add a ``session_failed`` to it; the call still ends with the status of what it sent.
    close_recorded: bool = False
    reason: str = ""  # why it ended otherwise

    @property
    def failure_to_record(self) -> bool:
        """Whether an end of the call is this granted session's failure (its ``session_failed``)."""
        return self.granted and not self.close_recorded

    @property
    def outcome(self) -> str:
        """For the metrics: closed, failed (after the grant), refused (a Hello was refused) or abandoned."""
        if self.closed or self.close_recorded:
            return "closed"
        if self.granted:
            return "failed"
        return "refused" if self.hello is not None else "abandoned"


def close_is_signed(close: Close) -> bool:
    """The requester's audit signature over its transcript hash verifies (SPEC.md 10.3.3),
    and its checkpoint is signed by the same audit key (SPEC.md 10.4.1)."""
    if not verify_transcript_signature(close.signer_key, close.session_id, close.transcript_hash, close.signature):
        return False
    try:
        verify_peer_note(close.checkpoint_note, close.signer_key)
    except CheckpointError as exc:
        raise ProtocolError(Reason.BAD_REQUEST, f"the checkpoint in the requester's Close: {exc}") from None
    return True


def quiet_allowed(session: HolderSession, idle_timeout: float) -> float:
    """Seconds the requester may now be silent (SPEC.md 9.7): one idle timeout, but once a
    cardinality session's answer is out, one per evaluated batch, since the requester checks
    the whole session's shuffle proof (its cost grows with the session) before its Close."""
    hello = session.hello
    if hello is None or hello.mode is not Mode.CARDINALITY or session.state is not HolderState.AWAITING_CLOSE:
        return idle_timeout
    return idle_timeout * max(1, len(hello.batch_digests))
