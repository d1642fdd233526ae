"""The holder's side of the shuffled evaluation (SPEC section 6.1): Haenni et al.'s GenShuffleProof, then two DLEQs.

Notation follows SPEC 6.1 (additive, positions ``i`` and inputs ``j`` 1-based there,
0-based here). Every secret scalar (``t``, ``s``, ``rho``, ``r``, ``r^``, the nonces and
the permuted challenges ``u'``) meets a group element only in the backend's
constant-time ``mult``; the variable-time MSM only adds up products already computed
(all-one scalars). Scalar arithmetic modulo L goes through libsodium for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from blindmatch.crypto import dleq, group
from blindmatch.crypto.group import ELEMENT_BYTES, SCALAR_BYTES, InvalidElementError
from blindmatch.crypto.modes import POPRF
from blindmatch.crypto.shuffle import (
    ShuffleEngine,
    ShuffleProof,
    ShuffleRandomness,
    challenge_c,
    challenge_u,
    check_shape,
    chunk_count,
    columns,
    generators,
    seed_u,
)
from blindmatch.crypto.sodium import rbcl
from blindmatch.crypto.voprf import GENERATOR

_ONE = (1).to_bytes(SCALAR_BYTES, "little")
_mul = rbcl.crypto_core_ristretto255_scalar_mul
_add = rbcl.crypto_core_ristretto255_scalar_add


def _items(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


@dataclass(frozen=True)
class _Statement:
    """The public values the prover has computed before the Fiat-Shamir challenges."""

    tweaked: bytes
    h: bytes
    reencrypted: bytes  # a'_1 || b'_1 || .. per position
    a1: bytes
    b1: bytes
    commitments: bytes  # c_j per input
    gens: bytes
    shuffled: bytes  # B_pi(1) || .. || B_pi(n)


def prove(
    engine: ShuffleEngine, t: bytes, blinded: bytes, ctx: bytes, chunk: int, randomness: ShuffleRandomness | None
) -> tuple[bytes, ShuffleProof]:
    """``(Z_1 || .. || Z_n, proof)`` with ``Z_i = t^-1 * B_pi(i)`` for the randomness' permutation ``pi``."""
    if len(blinded) % ELEMENT_BYTES:
        raise InvalidElementError(f"blinded batch length {len(blinded)} is not a multiple of {ELEMENT_BYTES}")
    n = len(blinded) // ELEMENT_BYTES
    check_shape(n, chunk)
    bad = engine.first_invalid(blinded)
    if bad >= 0:
        raise InvalidElementError(f"blinded element {bad} is not a canonical non-identity ristretto255 element")
    t = group.decode_scalar(t)
    rnd = ShuffleRandomness.fresh(n, chunk) if randomness is None else randomness
    rnd.check(n, chunk)
    st = _statement(engine, t, rnd, blinded)
    seed = seed_u(ctx, st.tweaked, st.h, blinded, st.reencrypted, st.commitments)
    u = challenge_u(engine, seed, n)
    u_perm = [u[j] for j in rnd.permutation]
    chain, r_hat_total = _chain(engine, rnd, u_perm, st.gens[:ELEMENT_BYTES])
    header_ts, t_hats = _nonce_commitments(engine, rnd, st, chain)
    c = challenge_c(seed, chain, header_ts, t_hats)
    responses, s_hat, s_prime = _responses(rnd, u, u_perm, r_hat_total, c)
    t_inverse = group.invert(t)
    a2, b2 = engine.multiply(t_inverse, st.a1), engine.multiply(t_inverse, st.b1)
    decrypted_mask = engine.multiply(rnd.s, a2)  # s * a''_i = b''_i - Z_i
    outputs = engine.multiply(t_inverse, st.shuffled)  # = b''_i - s * a''_i; a multiplication costs less than a subtraction
    proofs = _chunk_proofs(engine, t, rnd, st, chunk, (a2, b2, decrypted_mask))
    records = columns(st.a1, st.b1, a2, b2, st.commitments, chain, t_hats, s_hat, s_prime)
    return outputs, ShuffleProof(st.h + header_ts + responses, records, proofs, chunk)


def _statement(engine: ShuffleEngine, t: bytes, rnd: ShuffleRandomness, blinded: bytes) -> _Statement:
    """Steps 1 to 3 and the permutation commitment: ``H``, ``e'_i``, ``c_j = r_j*G + h_{pi^-1(j)}``."""
    n = len(rnd.permutation)
    h = group.base_mult(rnd.s)
    gens = generators(n + 1)
    bases = GENERATOR * n
    a1 = engine.multiply(rnd.rho, bases)
    shuffled = b"".join(blinded[j * 32 : j * 32 + 32] for j in rnd.permutation)
    b1 = engine.add(engine.multiply(rnd.rho, h * n), shuffled)
    position_of = [0] * n
    for i, j in enumerate(rnd.permutation):
        position_of[j] = i
    generator_of_input = b"".join(gens[32 * (position_of[j] + 1) : 32 * (position_of[j] + 2)] for j in range(n))
    commitments = engine.add(engine.multiply(rnd.r, bases), generator_of_input)
    return _Statement(group.base_mult(t), h, columns(a1, b1), a1, b1, commitments, gens, shuffled)


def _chain(engine: ShuffleEngine, rnd: ShuffleRandomness, u_perm: list[bytes], h0: bytes) -> tuple[bytes, bytes]:
    """``c^_i = R_i*G + U_i*h_0`` (``U_i = prod_{k<=i} u'_k``, ``R_i = r^_i + u'_i*R_{i-1}``), and ``R_n``."""
    big_r, big_u = bytes(SCALAR_BYTES), _ONE
    rs, us = [], []
    for r_hat, u in zip(_items(rnd.r_hat), u_perm, strict=True):
        big_r = _add(r_hat, _mul(u, big_r))
        big_u = _mul(u, big_u)
        rs.append(big_r)
        us.append(big_u)
    n = len(u_perm)
    chain = engine.add(engine.multiply(b"".join(rs), GENERATOR * n), engine.multiply(b"".join(us), h0 * n))
    return chain, big_r


def _total(engine: ShuffleEngine, products: bytes) -> bytes:
    """The sum of already multiplied elements: an MSM with all-one scalars (nothing secret in it)."""
    return engine.msm(_ONE * (len(products) // ELEMENT_BYTES), products)


def _nonce_commitments(engine: ShuffleEngine, rnd: ShuffleRandomness, st: _Statement, chain: bytes) -> tuple[bytes, bytes]:
    """``t1 || t2 || t3 || t4a || t4b`` and ``t^_1 .. t^_n`` of GenShuffleProof."""
    n = len(rnd.permutation)
    w1, w2, w3, w4 = _items(rnd.w)
    minus_w4 = rbcl.crypto_core_ristretto255_scalar_sub(bytes(SCALAR_BYTES), w4)
    t3 = group.add(group.base_mult(w3), _total(engine, engine.multiply(rnd.w_prime, st.gens[ELEMENT_BYTES:])))
    t4a = group.add(_total(engine, engine.multiply(rnd.w_prime, st.a1)), group.base_mult(minus_w4))
    t4b = group.add(_total(engine, engine.multiply(rnd.w_prime, st.b1)), group.scalar_mult(minus_w4, st.h))
    previous = st.gens[:ELEMENT_BYTES] + chain[: (n - 1) * ELEMENT_BYTES]
    t_hats = engine.add(engine.multiply(rnd.w_hat, GENERATOR * n), engine.multiply(rnd.w_prime, previous))
    return group.base_mult(w1) + group.base_mult(w2) + t3 + t4a + t4b, t_hats


def _responses(
    rnd: ShuffleRandomness, u: list[bytes], u_perm: list[bytes], r_hat_total: bytes, c: bytes
) -> tuple[bytes, bytes, bytes]:
    """``s1 || s2 || s3 || s4``, ``s^_i`` and ``s'_i`` (``w + c * secret`` modulo L)."""
    zero = bytes(SCALAR_BYTES)
    r_bar, r_tilde, r_prime = zero, zero, zero
    for r_j, u_j in zip(_items(rnd.r), u, strict=True):
        r_bar, r_tilde = _add(r_bar, r_j), _add(r_tilde, _mul(r_j, u_j))
    for rho_i, u_i in zip(_items(rnd.rho), u_perm, strict=True):
        r_prime = _add(r_prime, _mul(rho_i, u_i))
    w = _items(rnd.w)
    responses = b"".join(_add(w_k, _mul(c, x)) for w_k, x in zip(w, (r_bar, r_hat_total, r_tilde, r_prime), strict=True))
    s_hat = b"".join(_add(w_i, _mul(c, r_i)) for w_i, r_i in zip(_items(rnd.w_hat), _items(rnd.r_hat), strict=True))
    s_prime = b"".join(_add(w_i, _mul(c, u_i)) for w_i, u_i in zip(_items(rnd.w_prime), u_perm, strict=True))
    return responses, s_hat, s_prime


def _chunk_proofs(
    engine: ShuffleEngine, t: bytes, rnd: ShuffleRandomness, st: _Statement, chunk: int,
    evaluated: tuple[bytes, bytes, bytes],
) -> bytes:
    """Per chunk, RFC 9497 GenerateProof for ``e'_i = t * e''_i`` (against T), then for ``b''_i - Z_i = s * a''_i`` (against H)."""
    a2, b2, mask = evaluated
    n = len(rnd.permutation)
    pairs = columns(a2, b2)
    out = []
    for k in range(chunk_count(n, chunk)):
        lo, hi = k * chunk * ELEMENT_BYTES, min(n, (k + 1) * chunk) * ELEMENT_BYTES
        nonces = rnd.dleq_nonces[2 * k * SCALAR_BYTES : (2 * k + 2) * SCALAR_BYTES]
        m, z = engine.compute_composites(POPRF, st.tweaked, pairs[2 * lo : 2 * hi], st.reencrypted[2 * lo : 2 * hi], t)
        out.append(dleq.prove_from_composites(POPRF, t, GENERATOR, st.tweaked, m, z, nonces[:SCALAR_BYTES]))
        m, z = engine.compute_composites(POPRF, st.h, a2[lo:hi], mask[lo:hi], rnd.s)
        out.append(dleq.prove_from_composites(POPRF, rnd.s, GENERATOR, st.h, m, z, nonces[SCALAR_BYTES:]))
    return b"".join(out)
