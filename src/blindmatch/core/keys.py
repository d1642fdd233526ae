"""The holder's OPRF key and its public identifier."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from blindmatch.crypto import group
from blindmatch.crypto.oprf import public_key

KEY_ID_DST = b"blindmatch/v1 key-id"


def key_id_of(pk: bytes) -> bytes:
    """SHA-256("blindmatch/v1 key-id" || pkS): the public name of an OPRF key (and of its epoch)."""
    return hashlib.sha256(KEY_ID_DST + pk).digest()


@dataclass(frozen=True)
class HolderKey:
    """An OPRF secret key; ``key_id`` = SHA-256("blindmatch/v1 key-id" || pkS) names it in public."""

    sk: bytes

    def __post_init__(self) -> None:
        group.decode_scalar(self.sk)

    @classmethod
    def generate(cls) -> HolderKey:
        return cls(group.random_scalar())

    @property
    def public_key(self) -> bytes:
        return public_key(self.sk)

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.public_key)

    def __repr__(self) -> str:  # never show the secret
        return f"HolderKey(key_id={self.key_id.hex()[:16]}...)"
