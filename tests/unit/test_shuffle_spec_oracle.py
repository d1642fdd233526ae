"""SPEC 6.1 implemented a second time, from the SPEC text alone, over the test oracle.

The shuffle proof's own tests exercise ``blindmatch.crypto.shuffle``; this module is a
separate reading of ``protocol/SPEC.md`` section 6.1 and RFC 9497 section 2.2 written
against ``helpers.oracle_ristretto255`` (pure Python, nothing from ``blindmatch``), so a
gap or an ambiguity in the SPEC shows up as a disagreement with
``protocol/test-vectors/shuffle-proof.json``: it rebuilds the header, records and
outputs from the listed randomness byte for byte, verifies the valid proof, and checks
that each invalid proof fails the check the file names.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from helpers import oracle_ristretto255 as o
from helpers.vector_files import VECTOR_DIR

VECTORS = VECTOR_DIR / "shuffle-proof.json"
POPRF_CONTEXT = b"OPRFV1-\x02-ristretto255-SHA512"
L = o.L
Point = o.Point


class Rejected(ValueError):
    """The oracle verifier's verdict; its message is the check that failed."""


def _element(hex_text: str) -> Point:
    try:
        point = o.decode(bytes.fromhex(hex_text))
    except o.OracleDecodeError:
        raise Rejected("decode") from None
    if o.equals(point, o.IDENTITY):
        raise Rejected("decode")
    return point


def _scalar(hex_text: str) -> int:
    value = int.from_bytes(bytes.fromhex(hex_text), "little")
    if value >= L:
        raise Rejected("decode")
    return value


def _sum(*points: Point) -> Point:
    total = o.IDENTITY
    for point in points:
        total = o.point_add(total, point)
    return total


def _mul(k: int, point: Point) -> Point:
    return o.scalar_mult(k % L, point)


def _enc(*points: Point) -> bytes:
    return b"".join(o.encode(p) for p in points)


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _hash_to_scalar_s(data: bytes) -> int:
    return o.scalar_reduce(o.expand_message_xmd(data, b"HashToScalar-blindmatch-v1-shuffle", 64))


def _generators(n: int) -> list[Point]:
    dst = b"blindmatch-v1-shuffle-generator"
    return [o.from_uniform_bytes(o.expand_message_xmd(i.to_bytes(4, "big"), dst, 64)) for i in range(n + 1)]


def _seed_u(ctx: bytes, t: Point, h: Point, b: list[Point], a1: list[Point], b1: list[Point], c: list[Point]) -> bytes:
    pairs = b"".join(_enc(x, y) for x, y in zip(a1, b1, strict=True))
    return hashlib.sha512(b"blindmatch-v1-shuffle-u" + _lp(ctx) + _enc(t, h, *b) + pairs + _enc(*c)).digest()


def _challenge(seed_u: bytes, chain: list[Point], ts: tuple[Point, ...], t_hat: list[Point]) -> int:
    return _hash_to_scalar_s(hashlib.sha512(b"blindmatch-v1-shuffle-c" + seed_u + _enc(*chain, *ts, *t_hat)).digest())


def _rfc9497_verify(a: Point, b: Point, cs: list[Point], ds: list[Point], proof: bytes) -> bool:
    """RFC 9497 VerifyProof with ComputeComposites, POPRF contextString."""
    def rfc_hash_to_scalar(data: bytes) -> int:
        return o.hash_to_scalar(data, dst=b"HashToScalar-" + POPRF_CONTEXT)

    bm = o.encode(b)
    seed = hashlib.sha512(_lp(bm) + _lp(b"Seed-" + POPRF_CONTEXT)).digest()
    m = z = o.IDENTITY
    for i, (ci, di) in enumerate(zip(cs, ds, strict=True)):
        d = rfc_hash_to_scalar(_lp(seed) + i.to_bytes(2, "big") + _lp(o.encode(ci)) + _lp(o.encode(di)) + b"Composite")
        m, z = _sum(m, _mul(d, ci)), _sum(z, _mul(d, di))
    c, s = int.from_bytes(proof[:32], "little"), int.from_bytes(proof[32:], "little")
    t2, t3 = _sum(_mul(s, a), _mul(c, b)), _sum(_mul(s, m), _mul(c, z))
    transcript = b"".join(_lp(o.encode(p)) for p in (b, m, z, t2, t3)) + b"Challenge"
    return rfc_hash_to_scalar(transcript) == c


def _check(name: str, left: Point, right: Point) -> None:
    if not o.equals(left, right):
        raise Rejected(name)


def verify(v: dict[str, Any], header: dict[str, str], records: list[dict[str, str]], chunk_proofs: list[str],
           outputs: list[str]) -> None:
    """SPEC 6.1's verifier, checks 0-4 in order; raises Rejected naming the first failure."""
    g, neg = o.BASE, o.point_neg
    n, chunk, ctx = len(v["blinded"]), v["chunk"], bytes.fromhex(v["ctx"])
    t, b = _element(v["tweaked_key"]), [_element(x) for x in v["blinded"]]
    h_key = _element(header["H"])
    ts = tuple(_element(header[k]) for k in ("t1", "t2", "t3", "t4a", "t4b"))
    s1, s2, s3, s4 = (_scalar(header[k]) for k in ("s1", "s2", "s3", "s4"))
    a1, b1, a2, b2, cs, chain, t_hat = ([_element(r[k]) for r in records] for k in ("a'", "b'", "a''", "b''", "c", "c^", "t^"))
    s_hat, s_prime = ([_scalar(r[k]) for r in records] for k in ("s^", "s'"))
    z = [_element(x) for x in outputs]
    diff = [_sum(b2[i], neg(z[i])) for i in range(n)]
    if any(o.equals(d, o.IDENTITY) for d in diff):
        raise Rejected("decode")
    h = _generators(n)
    seed_u = _seed_u(ctx, t, h_key, b, a1, b1, cs)
    u = [_hash_to_scalar_s(seed_u + j.to_bytes(4, "big")) for j in range(1, n + 1)]
    c = _challenge(seed_u, chain, ts, t_hat)
    t1, t2, t3, t4a, t4b = ts
    product_u = 1
    for value in u:
        product_u = product_u * value % L
    _check("t1", t1, _sum(_mul(s1, g), neg(_mul(c, _sum(*cs, *(neg(x) for x in h[1:]))))))
    _check("t2", t2, _sum(_mul(s2, g), neg(_mul(c, _sum(chain[-1], neg(_mul(product_u, h[0])))))))
    _check("t3", t3, _sum(_mul(s3, g), *(_mul(s_prime[i], h[i + 1]) for i in range(n)),
                          neg(_mul(c, _sum(*(_mul(u[j], cs[j]) for j in range(n)))))))
    _check("t4a", t4a, _sum(*(_mul(s_prime[i], a1[i]) for i in range(n)), neg(_mul(s4, g))))
    _check("t4b", t4b, _sum(*(_mul(s_prime[i], b1[i]) for i in range(n)), neg(_mul(s4, h_key)),
                            neg(_mul(c, _sum(*(_mul(u[j], b[j]) for j in range(n)))))))
    previous = [h[0], *chain[:-1]]
    for i in range(n):
        _check("t^", t_hat[i], _sum(_mul(s_hat[i], g), _mul(s_prime[i], previous[i]), neg(_mul(c, chain[i]))))
    spans = [range(k * chunk, min(n, (k + 1) * chunk)) for k in range(-(-n // chunk))]
    for k, span in enumerate(spans):
        if not _rfc9497_verify(g, t, [p for i in span for p in (a2[i], b2[i])],
                               [p for i in span for p in (a1[i], b1[i])], bytes.fromhex(chunk_proofs[k])[:64]):
            raise Rejected(f"chunk {k}: exponentiation")
    for k, span in enumerate(spans):
        if not _rfc9497_verify(g, h_key, [a2[i] for i in span], [diff[i] for i in span],
                               bytes.fromhex(chunk_proofs[k])[64:]):
            raise Rejected(f"chunk {k}: decryption")


def _scalar_hex(value: int) -> str:
    return (value % L).to_bytes(32, "little").hex()


def prove_from_listed_randomness(v: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]], list[str]]:
    """SPEC 6.1 prover steps 1-8 and 9-10's elements from the file's randomness (pi 1-based)."""
    g, rnd, n = o.BASE, v["randomness"], len(v["blinded"])
    t_inverse = pow(_scalar(v["t"]), -1, L)
    t, b, ctx = _element(v["tweaked_key"]), [_element(x) for x in v["blinded"]], bytes.fromhex(v["ctx"])
    s = _scalar(rnd["s"])
    h_key = _mul(s, g)
    pi = [p - 1 for p in rnd["pi"]]
    rho, r, r_hat, w_hat, w_prime = ([_scalar(x) for x in rnd[k]] for k in ("rho", "r", "r_hat", "w_hat", "w_prime"))
    w1, w2, w3, w4 = (_scalar(x) for x in rnd["w1_w4"])
    a1 = [_mul(rho[i], g) for i in range(n)]
    b1 = [_sum(_mul(rho[i], h_key), b[pi[i]]) for i in range(n)]
    h = _generators(n)
    cs = [o.IDENTITY] * n
    for i in range(n):
        cs[pi[i]] = _sum(_mul(r[pi[i]], g), h[i + 1])
    seed_u = _seed_u(ctx, t, h_key, b, a1, b1, cs)
    u = [_hash_to_scalar_s(seed_u + j.to_bytes(4, "big")) for j in range(1, n + 1)]
    u_prime = [u[pi[i]] for i in range(n)]
    chain, link = [], h[0]
    for i in range(n):
        link = _sum(_mul(r_hat[i], g), _mul(u_prime[i], link))
        chain.append(link)
    v_weights = [1] * (n + 1)
    for i in range(n, 0, -1):
        v_weights[i - 1] = u_prime[i - 1] * v_weights[i] % L
    r_bar, r_tilde = sum(r), sum(r[j] * u[j] for j in range(n))
    r_hat_total = sum(r_hat[i] * v_weights[i + 1] for i in range(n))
    r_prime = sum(rho[i] * u_prime[i] for i in range(n))
    ts = (_mul(w1, g), _mul(w2, g), _sum(_mul(w3, g), *(_mul(w_prime[i], h[i + 1]) for i in range(n))),
          _sum(*(_mul(w_prime[i], a1[i]) for i in range(n)), o.point_neg(_mul(w4, g))),
          _sum(*(_mul(w_prime[i], b1[i]) for i in range(n)), o.point_neg(_mul(w4, h_key))))
    t_hat = [_sum(_mul(w_hat[i], g), _mul(w_prime[i], ([h[0], *chain])[i])) for i in range(n)]
    c = _challenge(seed_u, chain, ts, t_hat)
    header = {"H": o.encode(h_key).hex(), **{k: o.encode(p).hex() for k, p in zip(("t1", "t2", "t3", "t4a", "t4b"), ts, strict=True)},
              "s1": _scalar_hex(w1 + c * r_bar), "s2": _scalar_hex(w2 + c * r_hat_total),
              "s3": _scalar_hex(w3 + c * r_tilde), "s4": _scalar_hex(w4 + c * r_prime)}
    a2, b2 = [_mul(t_inverse, x) for x in a1], [_mul(t_inverse, x) for x in b1]
    records = [{"a'": o.encode(a1[i]).hex(), "b'": o.encode(b1[i]).hex(), "a''": o.encode(a2[i]).hex(),
                "b''": o.encode(b2[i]).hex(), "c": o.encode(cs[i]).hex(), "c^": o.encode(chain[i]).hex(),
                "t^": o.encode(t_hat[i]).hex(), "s^": _scalar_hex(w_hat[i] + c * r_hat[i]),
                "s'": _scalar_hex(w_prime[i] + c * u_prime[i])} for i in range(n)]
    outputs = [o.encode(_sum(b2[i], o.point_neg(_mul(s, a2[i])))).hex() for i in range(n)]
    return header, records, outputs


VECTOR: dict[str, Any] = json.loads(VECTORS.read_text())


def test_the_spec_alone_rebuilds_the_proof_byte_for_byte() -> None:
    header, records, outputs = prove_from_listed_randomness(VECTOR)
    assert header == VECTOR["header"]
    assert records == VECTOR["records"]
    assert outputs == VECTOR["outputs"]


def test_the_spec_alone_accepts_the_valid_proof() -> None:
    verify(VECTOR, VECTOR["header"], VECTOR["records"], VECTOR["chunk_proofs"], VECTOR["outputs"])


def _tampered(case: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, str]], list[str], list[str]]:
    header, records = dict(VECTOR["header"]), [dict(r) for r in VECTOR["records"]]
    chunk_proofs, outputs = list(VECTOR["chunk_proofs"]), list(VECTOR["outputs"])
    part, index, field, value = case["part"], case["index"], case["field"], case["value"]
    if part == "header":
        header[field] = value
    elif part == "records":
        records[index][field] = value
    elif part == "chunk_proofs":
        offset = {"exp c": 0, "exp s": 64, "dec c": 128, "dec s": 192}[field]
        chunk_proofs[index] = chunk_proofs[index][:offset] + value + chunk_proofs[index][offset + 64:]
    elif part == "outputs":
        outputs = [value[i : i + 64] for i in range(0, len(value), 64)]
    else:
        raise AssertionError(f"the vector file names an unknown part {part!r}")
    return header, records, chunk_proofs, outputs


def _expected(error: str) -> str:
    """The file's error message, reduced to the check it names."""
    if "not a canonical" in error or "not reduced" in error:
        return "decode"
    for name in ("t1", "t2", "t3", "t4a", "t4b", "t^"):
        if error == f"shuffle proof: {name} does not verify":
            return name
    chunk, kind = error.split(": ")[:2]
    return f"{chunk}: {kind.split()[0]}"


@pytest.mark.parametrize("case", VECTOR["invalid"], ids=[c["description"] for c in VECTOR["invalid"]])
def test_the_spec_alone_rejects_each_invalid_proof_at_the_named_check(case: dict[str, Any]) -> None:
    with pytest.raises(Rejected) as verdict:
        verify(VECTOR, *_tampered(case))
    assert str(verdict.value) == _expected(case["error"])
