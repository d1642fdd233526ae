"""RFC 9497 protocol modes of ristretto255-SHA512 and the hashes that depend on the mode.

The context string ``"OPRFV1-" || I2OSP(mode, 1) || "-ristretto255-SHA512"`` (section 3.1)
domain-separates HashToGroup, HashToScalar, DeriveKeyPair and the DLEQ proof seed, so an
OPRF-mode output and a VOPRF-mode output of the same key and input differ: an index
built for one mode cannot answer queries of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from blindmatch.crypto import group
from blindmatch.crypto.h2c import expand_message_xmd_sha512

SUITE_ID = b"ristretto255-SHA512"


class DeriveKeyPairError(ValueError):
    """RFC 9497 DeriveKeyPairError: no valid key after 256 attempts (probability ~2^-2048)."""


def i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def length_prefixed(data: bytes) -> bytes:
    """``I2OSP(len(data), 2) || data``, the framing of every RFC 9497 transcript field."""
    return i2osp(len(data), 2) + data


@dataclass(frozen=True)
class Mode:
    """One RFC 9497 mode (0x00 OPRF, 0x01 VOPRF, 0x02 POPRF) of ristretto255-SHA512."""

    code: int

    @cached_property
    def context_string(self) -> bytes:
        return b"OPRFV1-" + i2osp(self.code, 1) + b"-" + SUITE_ID

    @cached_property
    def hash_to_group_dst(self) -> bytes:
        return b"HashToGroup-" + self.context_string

    @cached_property
    def _hash_to_scalar_dst(self) -> bytes:
        return b"HashToScalar-" + self.context_string

    def hash_to_group(self, data: bytes) -> bytes:
        """HashToGroup: RFC 9380 expand_message_xmd to 64 bytes, then the RFC 9496 map."""
        return group.element_from_uniform(expand_message_xmd_sha512(data, self.hash_to_group_dst, 64))

    def hash_to_scalar(self, data: bytes, dst: bytes | None = None) -> bytes:
        """HashToScalar with the mode's default DST ``"HashToScalar-" || contextString``."""
        tag = self._hash_to_scalar_dst if dst is None else dst
        return group.scalar_from_uniform(expand_message_xmd_sha512(data, tag, 64))

    def derive_key_pair(self, seed: bytes, info: bytes) -> tuple[bytes, bytes]:
        """Section 3.2.1 DeriveKeyPair for this mode: deterministic ``(skS, pkS)``."""
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        derive_input = seed + length_prefixed(info)
        dst = b"DeriveKeyPair" + self.context_string
        for counter in range(256):
            sk = self.hash_to_scalar(derive_input + i2osp(counter, 1), dst)
            if any(sk):
                return sk, group.base_mult(sk)
        raise DeriveKeyPairError("could not derive a non-zero key")


OPRF = Mode(0x00)
VOPRF = Mode(0x01)
POPRF = Mode(0x02)
