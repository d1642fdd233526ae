"""Signing a prepared job's requests as one official, with a key file or a token.

The CLI (``official approve``) and the pilot and test helpers that play officials all
go through :func:`sign_and_approve`, so a test approval is the same code path as a
person's. The daemon never calls this: it holds no official's key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.officials.config import TokenConfig
from blindmatch.officials.token import sign_on_token
from blindmatch.requester.approvals import Approvals, PreparedSession


class Signer(Protocol):
    """One official's key: signs messages and says which public key verifies them."""

    def sign_all(self, messages: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
        """``(public key, one signature per message)``."""
        ...


@dataclass(frozen=True)
class KeySigner:
    """A key decrypted from the official's passphrase-encrypted PEM file, in their own process."""

    key: Ed25519PrivateKey

    def sign_all(self, messages: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
        return self.key.public_key().public_bytes_raw(), [self.key.sign(m) for m in messages]


@dataclass(frozen=True)
class TokenSigner:
    """A key that stays in a PKCS#11 token; the PIN logs in for this one use."""

    config: TokenConfig
    pin: str

    def __repr__(self) -> str:  # never show the PIN, not even in a traceback's locals
        return f"TokenSigner(token={self.config.token_label!r}, key={self.config.key_label!r})"

    def sign_all(self, messages: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
        return sign_on_token(self.config, self.pin, messages)


def sign_and_approve(
    approvals: Approvals, job_id: str, signer: Signer, digest: bytes, *, release: bool, now: datetime
) -> list[PreparedSession]:
    """Sign every prepared request of the job and store the approval (see ``Approvals.approve``).

    ``digest`` is what the official was shown; the store re-checks it and every
    signature before anything is kept, so a changed job or a wrong key stores nothing.
    """
    sessions = approvals.summary_of(job_id)
    public_key, signatures = signer.sign_all([s.request.encode() for s in sessions])
    return approvals.approve(job_id, public_key, signatures, digest, release=release, now=now)
