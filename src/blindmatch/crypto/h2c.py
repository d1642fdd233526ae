"""RFC 9380 section 5.3.1 ``expand_message_xmd`` with SHA-512.

This is the only part of hash-to-group that is not in libsodium: the ristretto255
one-way map itself (RFC 9496 section 4.3.4) is ``crypto_core_ristretto255_from_hash``.
"""

from __future__ import annotations

import hashlib

_B_IN_BYTES = 64  # SHA-512 output size
_S_IN_BYTES = 128  # SHA-512 block size
_Z_PAD = bytes(_S_IN_BYTES)


def expand_message_xmd_sha512(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """Expand ``msg`` to ``len_in_bytes`` uniform bytes under domain separation tag ``dst``."""
    if len(dst) > 255:
        # RFC 9380 5.3.3 allows hashing long DSTs; RFC 9497 DSTs are all short, so refuse instead.
        raise ValueError("domain separation tag longer than 255 bytes")
    ell = -(-len_in_bytes // _B_IN_BYTES)
    if ell > 255 or len_in_bytes > 65535:
        raise ValueError("requested output too long for expand_message_xmd")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(_Z_PAD + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    b_prev = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    for i in range(2, ell + 1):
        b_prev = hashlib.sha512(bytes(x ^ y for x, y in zip(b0, b_prev, strict=False)) + bytes([i]) + dst_prime).digest()
        out.append(b_prev)
    return b"".join(out)[:len_in_bytes]
