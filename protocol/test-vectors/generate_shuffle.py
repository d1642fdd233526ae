"""Generate protocol/test-vectors/shuffle-proof.json (SPEC.md section 6.1) from the implementation.

Run: python protocol/test-vectors/generate_shuffle.py
tests/unit/test_shuffle_vectors.py recomputes the file and requires byte equality, checks
the outputs from first principles (``Z_i = t^-1 * B_pi(i)``), verifies the valid proof and
requires each invalid one to fail at its named check. Every random value of the proof is
fixed here (derived from labels, for the vectors only) and listed in the file, so another
implementation can reproduce the proof byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from blindmatch.core.keys import HolderKey
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import group, oprf, poprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import i2osp, length_prefixed
from blindmatch.crypto.shuffle import (
    RECORD_BYTES,
    ShuffleProof,
    ShuffleProofError,
    ShuffleRandomness,
    challenge_c,
    challenge_u,
    columns,
    generators,
    seed_u,
)
from blindmatch.vocabulary import Mode

HERE = Path(__file__).resolve().parent
SEED = bytes.fromhex("a3" * 32)
KEY_INFO = b"blindmatch test vector key"
ORGANISATION = "Example County"
SESSION_ID = bytes(range(16))
INPUTS = [b"alice|1 MAIN ST|12345", b"bob|2 ELM AVE APT 3|54321", b"carol|3 OAK DR|11111", b"dave|4 PINE RD|22222",
          b"erin|5 BIRCH LN|33333"]
CHUNK = 2
PI = (4, 1, 5, 3, 2)  # pi(i) for positions i = 1..n, 1-based as in SPEC 6.1
RECORD_FIELDS = ("a'", "b'", "a''", "b''", "c", "c^", "t^", "s^", "s'")
HEADER_FIELDS = ("H", "t1", "t2", "t3", "t4a", "t4b", "s1", "s2", "s3", "s4")


def fixed_scalars(label: str, count: int) -> bytes:
    """Deterministic non-zero scalars for the vectors only; real proofs draw them from a CSPRNG."""
    return b"".join(oprf.hash_to_scalar(f"blindmatch shuffle test vector {label}".encode() + i2osp(i, 4))
                    for i in range(count))


def _randomness(n: int, chunks: int) -> ShuffleRandomness:
    return ShuffleRandomness(
        s=fixed_scalars("s", 1), permutation=tuple(p - 1 for p in PI), rho=fixed_scalars("rho", n),
        r=fixed_scalars("r", n), r_hat=fixed_scalars("r_hat", n), w=fixed_scalars("w", 4),
        w_hat=fixed_scalars("w_hat", n), w_prime=fixed_scalars("w_prime", n), dleq_nonces=fixed_scalars("dleq", 2 * chunks))


def _hexes(data: bytes, size: int = 32) -> list[str]:
    return [data[i : i + size].hex() for i in range(0, len(data), size)]


def _plus_one(scalar: bytes) -> bytes:
    return ((int.from_bytes(scalar, "little") + 1) % group.ORDER).to_bytes(32, "little")


def field_offset(part: str, index: int, field: str) -> tuple[str, int]:
    """Which bytes attribute of the proof, and the offset, a named field lives at."""
    if part == "header":
        return "header", 32 * HEADER_FIELDS.index(field)
    if part == "records":
        return "records", index * RECORD_BYTES + 32 * RECORD_FIELDS.index(field)
    return "chunk_proofs", 128 * index + {"exp c": 0, "exp s": 32, "dec c": 64, "dec s": 96}[field]


# (description, part, index, field, how the new value is made from the old one)
INVALID = [
    ("s3 changed", "header", 0, "s3", "plus one"),
    ("s' of position 3 changed", "records", 2, "s'", "plus one"),
    ("s^ of position 2 changed", "records", 1, "s^", "plus one"),
    ("a'' of position 4 replaced by the generator", "records", 3, "a''", "generator"),
    ("b' of position 1 replaced by the generator (the Fiat-Shamir hash changes)", "records", 0, "b'", "generator"),
    ("decryption proof s of chunk 2 changed", "chunk_proofs", 2, "dec s", "plus one"),
    ("exponentiation proof c of chunk 0 changed", "chunk_proofs", 0, "exp c", "plus one"),
    ("c of input 1 is the identity", "records", 0, "c", "identity"),
    ("s4 not reduced modulo L", "header", 0, "s4", "order"),
]


def _mutated(proof: ShuffleProof, part: str, index: int, field: str, how: str) -> tuple[ShuffleProof, bytes]:
    attribute, at = field_offset(part, index, field)
    data = getattr(proof, attribute)
    old = data[at : at + 32]
    new = {"plus one": lambda: _plus_one(old), "generator": lambda: group.base_mult(_plus_one(bytes(32))),
           "identity": lambda: group.IDENTITY, "order": lambda: group.ORDER.to_bytes(32, "little")}[how]()
    return dataclasses.replace(proof, **{attribute: data[:at] + new + data[at + 32 :]}), new


def _failure(engine: BatchEngine, tweaked: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof, ctx: bytes) -> str:
    try:
        engine.verify_shuffled_evaluation(tweaked, blinded, outputs, proof, ctx)
    except ShuffleProofError as exc:
        return str(exc)
    raise AssertionError("an invalid vector verified")


def _invalid(engine: BatchEngine, tweaked: bytes, blinded: bytes, outputs: bytes, proof: ShuffleProof,
             ctx: bytes) -> list[dict]:
    out = []
    for description, part, index, field, how in INVALID:
        changed, value = _mutated(proof, part, index, field, how)
        where = {"part": part, "index": index, "field": field, "value": value.hex()}
        out.append({"description": description, **where,
                    "error": _failure(engine, tweaked, blinded, outputs, changed, ctx)})
    z = [outputs[i : i + 32] for i in range(0, len(outputs), 32)]
    swapped = b"".join([z[1], z[0], *z[2:]])
    out.append({"description": "outputs Z_1 and Z_2 swapped, the proof kept", "part": "outputs", "index": 0,
                "field": "Z", "value": swapped.hex(),
                "error": _failure(engine, tweaked, blinded, swapped, proof, ctx)})
    return out


def shuffle_vectors() -> dict:
    key = HolderKey(poprf.derive_key_pair(SEED, KEY_INFO)[0])
    info = evaluation_info(ORGANISATION, Mode.CARDINALITY, key.key_id)
    t, tweaked = poprf.tweaked_secret(key.sk, info), poprf.tweaked_key(group.base_mult(key.sk), info)
    ctx = length_prefixed(SESSION_ID) + length_prefixed(info)
    blind = fixed_scalars("blind", 1)
    blinded = b"".join(group.scalar_mult(blind, poprf.input_element(x)) for x in INPUTS)
    n, chunks = len(INPUTS), -(-len(INPUTS) // CHUNK)
    randomness = _randomness(n, chunks)
    engine = BatchEngine(workers=1, backend="libsodium")
    outputs, proof = engine.prove_shuffled_evaluation(t, blinded, ctx, CHUNK, randomness)
    engine.verify_shuffled_evaluation(tweaked, blinded, outputs, proof, ctx)
    column = {name: b"".join(proof.records[i * RECORD_BYTES + 32 * k :][:32] for i in range(n))
              for k, name in enumerate(RECORD_FIELDS)}
    seed = seed_u(ctx, tweaked, proof.header[:32], blinded, columns(column["a'"], column["b'"]), column["c"])
    return {
        "description": "A shuffled cardinality evaluation with its proof (SPEC 6.1): RFC 9497 POPRF key, the "
                       "cardinality info of the organisation, n = 5 blinded inputs, chunk = 2 (three chunks, the last "
                       "short). All random values are fixed and listed; pi is 1-based as in SPEC 6.1.",
        "seed": SEED.hex(), "key_info": KEY_INFO.decode(), "skS": key.sk.hex(), "pkS": group.base_mult(key.sk).hex(),
        "organisation": ORGANISATION, "info": info.hex(), "t": t.hex(), "tweaked_key": tweaked.hex(),
        "session_id": SESSION_ID.hex(), "ctx": ctx.hex(), "chunk": CHUNK,
        "inputs": [x.decode() for x in INPUTS], "blind": blind.hex(), "blinded": _hexes(blinded),
        "randomness": {"s": randomness.s.hex(), "pi": list(PI), "rho": _hexes(randomness.rho),
                       "r": _hexes(randomness.r), "r_hat": _hexes(randomness.r_hat), "w1_w4": _hexes(randomness.w),
                       "w_hat": _hexes(randomness.w_hat), "w_prime": _hexes(randomness.w_prime),
                       "dleq_nonces_exp_dec_per_chunk": _hexes(randomness.dleq_nonces)},
        "generators_h0_hn": _hexes(generators(n + 1)),
        "seed_u": seed.hex(), "u": [x.hex() for x in challenge_u(engine, seed, n)],
        "c": challenge_c(seed, column["c^"], proof.header[32:192], column["t^"]).hex(),
        "header": {name: proof.header[32 * k :][:32].hex() for k, name in enumerate(HEADER_FIELDS)},
        "records": [{name: proof.records[i * RECORD_BYTES + 32 * k :][:32].hex() for k, name in enumerate(RECORD_FIELDS)}
                    for i in range(n)],
        "chunk_proofs": _hexes(proof.chunk_proofs, 128),
        "batch_parts": [proof.batch_part(k).hex() for k in range(chunks)],
        "outputs": _hexes(outputs),
        "invalid": _invalid(engine, tweaked, blinded, outputs, proof, ctx),
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    (HERE / "shuffle-proof.json").write_text(render(shuffle_vectors()))


if __name__ == "__main__":
    main()
