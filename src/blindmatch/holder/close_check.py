"""The holder's check of the requester's Close: its signatures, before the session is closed.

Kept apart from the service so the session core can be handed one plain predicate.
"""

from __future__ import annotations

from blindmatch.audit import verify_transcript_signature
from blindmatch.audit.checkpoint import CheckpointError
from blindmatch.audit.peer_checkpoints import verify_peer_note
from blindmatch.core.errors import ProtocolError
from blindmatch.core.messages import Close
from blindmatch.vocabulary import Reason


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
