"""The one builder of session requests: what an official signs (``policy.sign_request``) for one requester session."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from datetime import datetime, timedelta

from blindmatch.core.requester import BlindedInputs, RequesterSession, _fresh_blinds, blind_ahead
from blindmatch.crypto.batch import BatchEngine
from blindmatch.policy import SessionRequest
from blindmatch.requester.approvals import Approvals, Decision
from blindmatch.vocabulary import Mode


def fresh_blinds(count: int, mode: Mode) -> bytes:
    """The blinds of a session of ``count`` keys: one per key (membership) or one (cardinality).

    Drawn at preparation and stored: the signed request commits to the blinded batches."""
    return _fresh_blinds(count, mode)


def blind_released(
    ahead: Executor, approvals: Approvals, job_id: str, keys: Sequence[bytes], mode: Mode, engine: BatchEngine
) -> dict[bytes, Future[BlindedInputs]]:
    """Blind the sessions the officials released on ``ahead``, by session id, with their stored blinds.

    Blinding needs no index (``core.requester.blind_ahead``), so it runs while the index
    downloads and while earlier sessions are sent, instead of before each session."""
    if approvals.decision(job_id)[0] is not Decision.RELEASED:
        return {}
    return {
        prepared.session_id: ahead.submit(blind_ahead, [keys[i] for i in prepared.elements], mode, engine, prepared.blinds)
        for prepared in approvals.pending(job_id)
    }


def build_session_request(
    session: RequesterSession,
    *,
    organisation: str,
    official: str,
    legal_basis: str,
    key_id: bytes,
    issued_at: datetime,
    lifetime: timedelta,
    held_back: int = 0,
    nonce: bytes | None = None,
) -> SessionRequest:
    """The request binding ``session`` (its id, count, mode, index and blinded batches), unsigned.

    ``nonce`` is fresh unless given (the demo's replay probe reuses one on purpose).
    """
    return SessionRequest(
        organisation=organisation,
        official=official,
        mode=session.mode.value,
        record_count=session.element_count,
        held_back=held_back,
        legal_basis=legal_basis,
        nonce=nonce if nonce is not None else secrets.token_bytes(16),
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
        session_id=session.session_id,
        key_id=key_id,
        index_digest=session.index_digest,
        blinded_commitment=session.blinded_commitment,
    )

