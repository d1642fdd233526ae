"""RFC 9162 §2.1 Merkle tree: the fast tree and the verifiers against a naive oracle.

The oracle below is a literal transcription of the RFC's recursive definitions
of MTH, PATH and PROOF/SUBPROOF over the raw leaf data, so it shares no code
with ``blindmatch.audit.merkle`` beyond SHA-256.
"""

from __future__ import annotations

import hashlib

import pytest

from blindmatch.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_N = 64


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


# RFC 6962 / certificate-transparency reference test leaves.
CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOT_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"

DATA = [i.to_bytes(2, "big") * (i % 5) for i in range(MAX_N)]


def _tree(leaves: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    for leaf in leaves:
        tree.append(leaf)
    return tree


@pytest.fixture(scope="module")
def big_tree() -> MerkleTree:
    return _tree(DATA)


def test_ct_vector_root_of_eight_leaves() -> None:
    assert mth(CT_LEAVES).hex() == CT_ROOT_8
    assert _tree(CT_LEAVES).root().hex() == CT_ROOT_8


# Published alongside the leaves in certificate-transparency's merkle_tree_test;
# each value is also re-derived by the oracle below, so a typo cannot hide.
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    CT_ROOT_8,
]
CT_INCLUSION_0_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
CT_CONSISTENCY = {
    (1, 8): CT_INCLUSION_0_8,
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def test_ct_vector_roots_and_proofs() -> None:
    tree = _tree(CT_LEAVES)
    for n in range(1, 9):
        assert mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
        assert tree.root(n).hex() == CT_ROOTS[n - 1]
    assert [h.hex() for h in path(0, CT_LEAVES)] == CT_INCLUSION_0_8
    assert [h.hex() for h in tree.inclusion_proof(0)] == CT_INCLUSION_0_8
    for (m, n), expected in CT_CONSISTENCY.items():
        assert [h.hex() for h in proof(m, CT_LEAVES[:n])] == expected
        assert [h.hex() for h in tree.consistency_proof(m, n)] == expected
        assert verify_consistency(
            m, n, bytes.fromhex(CT_ROOTS[m - 1]), bytes.fromhex(CT_ROOTS[n - 1]),
            [bytes.fromhex(h) for h in expected],
        )


def test_empty_tree() -> None:
    assert MerkleTree().root() == EMPTY_ROOT == mth([])


def test_roots_match_oracle(big_tree: MerkleTree) -> None:
    for n in range(MAX_N + 1):
        assert big_tree.root(n) == mth(DATA[:n]), n


def test_inclusion_proofs_match_oracle_and_verify(big_tree: MerkleTree) -> None:
    for n in range(1, MAX_N + 1):
        root = mth(DATA[:n])
        for m in range(n):
            expected = path(m, DATA[:n])
            got = big_tree.inclusion_proof(m, n)
            assert got == expected, (m, n)
            assert verify_inclusion(m, n, leaf_hash(DATA[m]), got, root), (m, n)


def test_consistency_proofs_match_oracle_and_verify(big_tree: MerkleTree) -> None:
    for n in range(1, MAX_N + 1):
        new_root = mth(DATA[:n])
        for m in range(1, n + 1):
            expected = proof(m, DATA[:n])
            got = big_tree.consistency_proof(m, n)
            assert got == expected, (m, n)
            assert verify_consistency(m, n, mth(DATA[:m]), new_root, got), (m, n)


def _mutations(items: list[bytes]) -> list[list[bytes]]:
    """Every single-element corruption, plus a truncated and an extended proof."""
    out = []
    for i in range(len(items)):
        bad = list(items)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        out.append(bad)
    if items:
        out.append(items[:-1])
    out.append([*items, EMPTY_ROOT])
    return out


def test_inclusion_verifier_rejects_wrong_inputs(big_tree: MerkleTree) -> None:
    for n in range(1, MAX_N + 1):
        root = big_tree.root(n)
        for m in range(n):
            good = big_tree.inclusion_proof(m, n)
            lh = leaf_hash(DATA[m])
            for bad in _mutations(good):
                assert not verify_inclusion(m, n, lh, bad, root), (m, n)
            assert not verify_inclusion(m, n, leaf_hash(b"other"), good, root)
            assert not verify_inclusion(m, n, lh, good, EMPTY_ROOT)
            assert not verify_inclusion(n, n, lh, good, root)
            if n > 1:
                other = (m + 1) % n
                if leaf_hash(DATA[other]) != lh:
                    assert not verify_inclusion(other, n, lh, good, root), (m, n)


def test_consistency_verifier_rejects_wrong_inputs(big_tree: MerkleTree) -> None:
    for n in range(1, MAX_N + 1):
        new_root = big_tree.root(n)
        for m in range(1, n + 1):
            good = big_tree.consistency_proof(m, n)
            old_root = big_tree.root(m)
            for bad in _mutations(good):
                assert not verify_consistency(m, n, old_root, new_root, bad), (m, n)
            assert not verify_consistency(m, n, EMPTY_ROOT, new_root, good), (m, n)
            assert not verify_consistency(m, n, old_root, EMPTY_ROOT, good), (m, n)
            if m < n:
                assert not verify_consistency(m, n, new_root, old_root, good), (m, n)
    assert not verify_consistency(0, 1, EMPTY_ROOT, big_tree.root(1), [])
    assert not verify_consistency(3, 2, big_tree.root(3), big_tree.root(2), [])


def test_proof_arguments_out_of_range(big_tree: MerkleTree) -> None:
    with pytest.raises(ValueError):
        big_tree.root(MAX_N + 1)
    with pytest.raises(ValueError):
        big_tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError):
        big_tree.consistency_proof(0, 5)
    with pytest.raises(ValueError):
        big_tree.consistency_proof(6, 5)
