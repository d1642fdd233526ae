"""The one builder of signed session requests: what an official signs for one requester session."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.core.requester import RequesterSession
from blindmatch.policy import SessionRequest, sign_request


def sign_session_request(
    session: RequesterSession,
    key: Ed25519PrivateKey,
    *,
    organisation: str,
    official: str,
    legal_basis: str,
    key_id: bytes,
    issued_at: datetime,
    lifetime: timedelta,
    held_back: int = 0,
    nonce: bytes | None = None,
) -> tuple[SessionRequest, bytes]:
    """The request binding ``session`` (its id, count, mode, index and blinded batches) and its signed envelope.

    ``nonce`` is fresh unless given (the demo's replay probe reuses one on purpose).
    """
    request = SessionRequest(
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
    return request, sign_request(request, key)
