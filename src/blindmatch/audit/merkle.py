"""RFC 9162 (Certificate Transparency v2, §2.1) Merkle tree hashing and proofs.

The audit log is a sequence of leaves; its integrity is summarised by a single
Merkle Tree Hash (MTH). Using the exact RFC 6962/9162 construction (rather than
an ad-hoc hash chain) lets reviewers check checkpoints with any Certificate
Transparency or Go ``sumdb/tlog`` tooling, and gives logarithmic inclusion and
consistency proofs for free.

Definitions (RFC 9162 §2.1.1): leaf hash ``SHA-256(0x00 || data)``, interior
node ``SHA-256(0x01 || left || right)``, the empty tree hashes to
``SHA-256("")``, and a tree of ``n > 1`` leaves splits at ``k``, the largest
power of two strictly smaller than ``n``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf; the 0x00 prefix keeps leaves and nodes in disjoint domains."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node (0x01 prefix, see :func:`leaf_hash`)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The frontier of an append-only tree: only the roots of its maximal complete subtrees.

    What a log writer needs to append and to sign its current root, in O(log n) memory
    however long the log grows; proofs are computed from the leaves on disk when a
    witness asks (:class:`MerkleTree`).
    """

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []  # one per set bit of size, largest subtree first

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> int:
        """Append one leaf (raw data) and return its index."""
        index, merged, carry = self._size, leaf_hash(data), self._size
        while carry & 1:
            merged = node_hash(self._peaks.pop(), merged)
            carry >>= 1
        self._peaks.append(merged)
        self._size += 1
        return index

    def root(self) -> bytes:
        """MTH of all leaves: the peaks folded right to left (RFC 9162's split at powers of two)."""
        if not self._peaks:
            return EMPTY_ROOT
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result


class MerkleTree:
    """Append-only Merkle tree over leaf hashes.

    It keeps, for every level ``h``, the hashes of the complete aligned
    subtrees of ``2**h`` leaves. Every subtree that the RFC's recursive
    definitions touch is either such a complete subtree or splits into them,
    so roots of any earlier size and all proofs cost O(log² n) hashes instead
    of re-hashing the whole log.
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append one leaf (raw data) and return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, hashed_leaf: bytes) -> int:
        """Append one already hashed leaf and return its index."""
        index = self.size
        self._levels[0].append(hashed_leaf)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(node_hash(row[-2], row[-1]))
            level += 1
        return index

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash stored at ``index``."""
        return self._levels[0][index]

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``; ``start`` is aligned as in the RFC recursion."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self._levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} out of range 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        return self._subtree(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} not in a tree of size {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:size]) of RFC 9162 §2.1.4.1 (empty when the sizes are equal)."""
        size = self._check_size(size)
        if not 0 < old_size <= size:
            raise ValueError(f"no consistency proof from size {old_size} to {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end != old_size:
            k = _split(end - start)
            if old_size - start <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        if start != 0:  # the RFC's b == false: the old tree is not a left-edge subtree here
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof


def verify_inclusion(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Verify an inclusion proof exactly as RFC 9162 §2.1.3.2 prescribes."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = hashed_leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Verify a consistency proof as RFC 9162 §2.1.4.2 prescribes.

    Equal sizes are accepted only with an empty proof and equal roots (the
    RFC algorithm covers ``old_size < new_size``; Go's ``tlog`` treats the
    equal case the same way).
    """
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
