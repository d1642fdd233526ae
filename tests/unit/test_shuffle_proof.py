"""The verifiable shuffled evaluation (SPEC 6.1): complete on every backend, and every tampering fails the named check."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import pytest

from blindmatch.crypto import backend, dleq, group, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import POPRF
from blindmatch.crypto.shuffle import (
    CHUNK_PROOF_BYTES,
    HEADER_BYTES,
    RECORD_BYTES,
    ShuffleProof,
    ShuffleProofError,
    ShuffleRandomness,
)

BACKENDS = ["libsodium", *(f"native:{path}" for path in backend.native_paths())]
FASTEST = BACKENDS[-1]  # the tampering tests run on libsodium and the fastest native path
CTX = b"\x00\x10" + bytes(range(16)) + b"\x00\x04info"
N, CHUNK = 5, 2  # three chunks, the last one short
RECORD_FIELDS = ("a'", "b'", "a''", "b''", "c", "c^", "t^", "s^", "s'")
HEADER_FIELDS = ("H", "t1", "t2", "t3", "t4a", "t4b", "s1", "s2", "s3", "s4")


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[BatchEngine]:
    eng = BatchEngine(workers=2, backend=request.param)
    yield eng
    eng.close()


def _elements(n: int) -> bytes:
    return b"".join(group.base_mult(group.random_scalar()) for _ in range(n))


def _items(data: bytes) -> list[bytes]:
    return [data[i : i + 32] for i in range(0, len(data), 32)]


@dataclasses.dataclass
class Case:
    """One honest shuffled evaluation and what the requester knows of it."""

    engine: BatchEngine
    t: bytes
    blinded: bytes
    outputs: bytes
    proof: ShuffleProof

    @property
    def tweaked(self) -> bytes:
        return group.base_mult(self.t)

    def verify(self, outputs: bytes | None = None, proof: ShuffleProof | None = None, blinded: bytes | None = None,
               ctx: bytes = CTX) -> None:
        self.engine.verify_shuffled_evaluation(self.tweaked, self.blinded if blinded is None else blinded,
                                               self.outputs if outputs is None else outputs,
                                               self.proof if proof is None else proof, ctx)


def _case(engine: BatchEngine, n: int = N, chunk: int = CHUNK) -> Case:
    t, blinded = group.random_scalar(), _elements(n)
    outputs, proof = engine.prove_shuffled_evaluation(t, blinded, CTX, chunk)
    return Case(engine, t, blinded, outputs, proof)


@pytest.fixture(scope="module", params=sorted({"libsodium", FASTEST}))
def checker(request: pytest.FixtureRequest) -> Iterator[BatchEngine]:
    eng = BatchEngine(workers=2, backend=request.param)
    yield eng
    eng.close()


@pytest.fixture
def case(checker: BatchEngine) -> Case:
    return _case(checker)


@pytest.mark.parametrize(("n", "chunk"), [(1, 1), (2, 1), (2, 2), (3, 2), (8, 4), (9, 4), (64, 7), (64, 64)])
def test_honest_evaluation_verifies_and_is_the_evaluated_multiset(engine: BatchEngine, n: int, chunk: int) -> None:
    c = _case(engine, n, chunk)
    c.verify()
    t_inverse = group.invert(c.t)
    assert Counter(_items(c.outputs)) == Counter(group.scalar_mult(t_inverse, b) for b in _items(c.blinded))
    assert len(c.proof.header) == HEADER_BYTES and len(c.proof.records) == n * RECORD_BYTES
    assert len(c.proof.chunk_proofs) == -(-n // chunk) * CHUNK_PROOF_BYTES


def test_outputs_follow_the_permutation_and_backends_agree_byte_for_byte() -> None:
    t, blinded = group.random_scalar(), _elements(N)
    randomness = ShuffleRandomness.fresh(N, CHUNK)
    results = set()
    for name in BACKENDS:
        eng = BatchEngine(workers=1, backend=name)
        outputs, proof = eng.prove_shuffled_evaluation(t, blinded, CTX, CHUNK, randomness)
        results.add((outputs, proof))
    assert len(results) == 1
    outputs = results.pop()[0]
    t_inverse = group.invert(t)
    assert _items(outputs) == [group.scalar_mult(t_inverse, _items(blinded)[j]) for j in randomness.permutation]


def test_another_permutation_is_just_as_valid(engine: BatchEngine) -> None:
    t, blinded = group.random_scalar(), _elements(N)
    randomness = ShuffleRandomness.fresh(N, CHUNK)
    order = list(randomness.permutation)
    order[0], order[3] = order[3], order[0]
    swapped = dataclasses.replace(randomness, permutation=tuple(order))
    outputs, proof = engine.prove_shuffled_evaluation(t, blinded, CTX, CHUNK, swapped)
    Case(engine, t, blinded, outputs, proof).verify()


def test_fresh_randomness_is_a_random_permutation() -> None:
    first, second = ShuffleRandomness.fresh(64, 8), ShuffleRandomness.fresh(64, 8)
    assert sorted(first.permutation) == list(range(64))
    assert first.permutation != second.permutation  # equal with probability 1/64!
    assert first.rho != second.rho
    assert first.s.hex() not in repr(first) and repr(first) == "ShuffleRandomness(<64 positions, secret>)"


def test_batch_parts_round_trip_and_reject_bad_framing(case: Case) -> None:
    parts = [case.proof.batch_part(k) for k in range(3)]
    assert len(parts[0]) == HEADER_BYTES + 2 * RECORD_BYTES + CHUNK_PROOF_BYTES
    assert len(parts[2]) == RECORD_BYTES + CHUNK_PROOF_BYTES
    assert ShuffleProof.from_batch_parts(parts, N, CHUNK) == case.proof
    with pytest.raises(ShuffleProofError, match="expected 3 batch parts, got 2"):
        ShuffleProof.from_batch_parts(parts[:2], N, CHUNK)
    with pytest.raises(ShuffleProofError, match="batch 1: shuffle proof part must be"):
        ShuffleProof.from_batch_parts([parts[0], parts[1][:-1], parts[2]], N, CHUNK)
    with pytest.raises(ValueError, match="batch 3 out of range"):
        case.proof.batch_part(3)


def _record_field(proof: ShuffleProof, position: int, field: str, value: bytes) -> ShuffleProof:
    at = position * RECORD_BYTES + 32 * RECORD_FIELDS.index(field)
    return dataclasses.replace(proof, records=proof.records[:at] + value + proof.records[at + 32 :])


def _header_field(proof: ShuffleProof, field: str, value: bytes) -> ShuffleProof:
    at = 32 * HEADER_FIELDS.index(field)
    return dataclasses.replace(proof, header=proof.header[:at] + value + proof.header[at + 32 :])


def _plus_one(scalar: bytes) -> bytes:
    return ((int.from_bytes(scalar, "little") + 1) % group.ORDER).to_bytes(32, "little")


def _output(outputs: bytes, position: int, value: bytes) -> bytes:
    return outputs[: 32 * position] + value + outputs[32 * position + 32 :]


def test_an_output_under_another_key_fails_the_decryption_proof(case: Case) -> None:
    other = group.invert(group.random_scalar())
    forged = group.scalar_mult(other, _items(case.blinded)[0])
    with pytest.raises(ShuffleProofError, match=r"^chunk 1: decryption proof does not verify$"):
        case.verify(outputs=_output(case.outputs, 3, forged))


def test_a_proof_under_another_key_fails_the_exponentiation_proof(case: Case) -> None:
    """T is in the Fiat-Shamir hash: a whole proof under another key fails the shuffle equations."""
    outputs, proof = case.engine.prove_shuffled_evaluation(group.random_scalar(), case.blinded, CTX, CHUNK)
    with pytest.raises(ShuffleProofError, match=r"^shuffle proof: t1 does not verify$"):
        case.verify(outputs=outputs, proof=proof)


def test_exponentiating_under_another_key_then_decrypting_honestly_fails(checker: BatchEngine) -> None:
    """A holder that shuffles honestly, multiplies chunk 0 by t'^-1 and proves the decryption is caught."""
    t, blinded = group.random_scalar(), _elements(N)
    randomness = ShuffleRandomness.fresh(N, CHUNK)
    outputs, proof = checker.prove_shuffled_evaluation(t, blinded, CTX, CHUNK, randomness)
    other = group.invert(group.random_scalar())
    for i in range(CHUNK):
        row = proof.records[i * RECORD_BYTES :]
        a2, b2 = group.scalar_mult(other, row[:32]), group.scalar_mult(other, row[32:64])
        proof = _record_field(_record_field(proof, i, "a''", a2), i, "b''", b2)
        outputs = _output(outputs, i, group.sub(b2, group.scalar_mult(randomness.s, a2)))
    a2s = b"".join(proof.records[i * RECORD_BYTES + 64 : i * RECORD_BYTES + 96] for i in range(CHUNK))
    masks = b"".join(group.scalar_mult(randomness.s, a2) for a2 in _items(a2s))
    h = group.base_mult(randomness.s)
    decryption = dleq.generate_proof(POPRF, randomness.s, voprf.GENERATOR, h, a2s, masks)
    proof = dataclasses.replace(proof, chunk_proofs=proof.chunk_proofs[:64] + decryption + proof.chunk_proofs[128:])
    case = Case(checker, t, blinded, outputs, proof)
    with pytest.raises(ShuffleProofError, match=r"^chunk 0: exponentiation proof does not verify$"):
        case.verify()


@pytest.mark.parametrize("position", range(N))
def test_a_random_output_fails_its_chunks_decryption_proof(case: Case, position: int) -> None:
    with pytest.raises(ShuffleProofError, match=rf"^chunk {position // CHUNK}: decryption proof does not verify$"):
        case.verify(outputs=_output(case.outputs, position, _elements(1)))


def test_swapped_or_duplicated_outputs_fail_the_decryption_proof(case: Case) -> None:
    z = _items(case.outputs)
    swapped = b"".join([z[1], z[0], *z[2:]])
    with pytest.raises(ShuffleProofError, match=r"^chunk 0: decryption proof does not verify$"):
        case.verify(outputs=swapped)
    with pytest.raises(ShuffleProofError, match=r"^chunk 2: decryption proof does not verify$"):
        case.verify(outputs=_output(case.outputs, 4, z[0]))


def test_swapping_whole_records_breaks_the_fiat_shamir_binding(case: Case) -> None:
    """Moving positions 0 and 3 with their outputs is another permutation, but not the one the hashes bound."""
    rows = [case.proof.records[i * RECORD_BYTES : (i + 1) * RECORD_BYTES] for i in range(N)]
    commitment = slice(128, 160)  # c_j stays at input j's place
    row0 = rows[3][:128] + rows[0][commitment] + rows[3][160:]
    row3 = rows[0][:128] + rows[3][commitment] + rows[0][160:]
    records = b"".join([row0, rows[1], rows[2], row3, rows[4]])
    z = _items(case.outputs)
    with pytest.raises(ShuffleProofError, match=r"^shuffle proof: t1 does not verify$"):
        case.verify(outputs=b"".join([z[3], z[1], z[2], z[0], z[4]]),
                    proof=dataclasses.replace(case.proof, records=records))


def test_a_dropped_element_fails_the_lengths(case: Case) -> None:
    with pytest.raises(ShuffleProofError, match="outputs must be 160 bytes for 5 elements, got 128"):
        case.verify(outputs=case.outputs[:-32])
    with pytest.raises(ShuffleProofError, match="records must be 1152 bytes for 4 elements"):
        case.verify(outputs=case.outputs[:-32], blinded=case.blinded[:-32])
    with pytest.raises(ShuffleProofError, match="chunk proofs must be 384 bytes"):
        case.verify(proof=dataclasses.replace(case.proof, chunk_proofs=case.proof.chunk_proofs[:-CHUNK_PROOF_BYTES]))


def test_proof_over_other_inputs_or_another_context_fails(case: Case) -> None:
    other = case.blinded[:32] + _elements(1) + case.blinded[64:]
    outputs, proof = case.engine.prove_shuffled_evaluation(case.t, other, CTX, CHUNK)
    with pytest.raises(ShuffleProofError, match=r"^shuffle proof: t1 does not verify$"):
        case.verify(outputs=outputs, proof=proof)
    with pytest.raises(ShuffleProofError, match=r"^shuffle proof: t1 does not verify$"):
        case.verify(ctx=CTX + b"!")


HEADER_EXPECTED = {"H": "t1", "t1": "t1", "t2": "t1", "t3": "t1", "t4a": "t1", "t4b": "t1",
                   "s1": "t1", "s2": "t2", "s3": "t3", "s4": "t4a"}


@pytest.mark.parametrize("field", HEADER_FIELDS)
def test_each_header_field_changed_fails_its_check(case: Case, field: str) -> None:
    old = case.proof.header[32 * HEADER_FIELDS.index(field) :][:32]
    value = _plus_one(old) if field.startswith("s") else _elements(1)
    with pytest.raises(ShuffleProofError, match=rf"^shuffle proof: {HEADER_EXPECTED[field]} does not verify$"):
        case.verify(proof=_header_field(case.proof, field, value))


RECORD_EXPECTED = {"a'": "shuffle proof: t1", "b'": "shuffle proof: t1", "c": "shuffle proof: t1",
                   "c^": "shuffle proof: t1", "t^": "shuffle proof: t1", "s^": "shuffle proof: t\\^",
                   "s'": "shuffle proof: t3", "a''": "chunk 1: exponentiation proof",
                   "b''": "chunk 1: exponentiation proof"}


@pytest.mark.parametrize("field", RECORD_FIELDS)
@pytest.mark.parametrize("position", [2, 3])
def test_each_record_field_changed_fails_its_check(case: Case, field: str, position: int) -> None:
    old = case.proof.records[position * RECORD_BYTES + 32 * RECORD_FIELDS.index(field) :][:32]
    value = _plus_one(old) if field.startswith("s") else _elements(1)
    with pytest.raises(ShuffleProofError, match=rf"^{RECORD_EXPECTED[field]} does not verify$"):
        case.verify(proof=_record_field(case.proof, position, field, value))


@pytest.mark.parametrize(("offset", "expected"), [(0, "chunk 1: exponentiation"), (32, "chunk 1: exponentiation"),
                                                  (64, "chunk 1: decryption"), (96, "chunk 1: decryption")])
def test_each_chunk_proof_scalar_changed_fails_that_proof(case: Case, offset: int, expected: str) -> None:
    at = CHUNK_PROOF_BYTES + offset
    proofs = case.proof.chunk_proofs
    changed = proofs[:at] + _plus_one(proofs[at : at + 32]) + proofs[at + 32 :]
    with pytest.raises(ShuffleProofError, match=rf"^{expected} proof does not verify$"):
        case.verify(proof=dataclasses.replace(case.proof, chunk_proofs=changed))


NOT_ELEMENTS = {"identity": bytes(32), "top bit set": b"\x01" + bytes(30) + b"\x80",
                "non-canonical": b"\xff" * 31 + b"\x7f"}


@pytest.mark.parametrize("bad", NOT_ELEMENTS.values(), ids=NOT_ELEMENTS.keys())
def test_invalid_elements_anywhere_are_refused_by_name(case: Case, bad: bytes) -> None:
    message = "not a canonical non-identity ristretto255 element"
    for field in HEADER_FIELDS[:6]:
        with pytest.raises(ShuffleProofError, match=rf"^shuffle proof header: {field}: {message}$"):
            case.verify(proof=_header_field(case.proof, field, bad))
    for field in RECORD_FIELDS[:7]:
        with pytest.raises(ShuffleProofError, match=rf"^position 4: {field.replace('^', '.')}: {message}$"):
            case.verify(proof=_record_field(case.proof, 4, field, bad))
    with pytest.raises(ShuffleProofError, match=rf"^position 1: output Z: {message}$"):
        case.verify(outputs=_output(case.outputs, 1, bad))
    with pytest.raises(ShuffleProofError, match=rf"^blinded element 2: {message}$"):
        case.verify(blinded=_output(case.blinded, 2, bad))
    with pytest.raises(ShuffleProofError, match=rf"^tweaked key: {message}$"):
        case.engine.verify_shuffled_evaluation(bad, case.blinded, case.outputs, case.proof, CTX)


def test_non_canonical_scalars_are_refused_by_name(case: Case) -> None:
    order = group.ORDER.to_bytes(32, "little")
    for field in HEADER_FIELDS[6:]:
        with pytest.raises(ShuffleProofError, match=rf"^shuffle proof header: {field}: scalar not reduced"):
            case.verify(proof=_header_field(case.proof, field, order))
    for field in RECORD_FIELDS[7:]:
        with pytest.raises(ShuffleProofError, match=rf"^position 0: {field.replace('^', '.')}: scalar not reduced"):
            case.verify(proof=_record_field(case.proof, 0, field, order))
    proofs = case.proof.chunk_proofs
    changed = proofs[:96] + order + proofs[128:]
    with pytest.raises(ShuffleProofError, match=r"^chunk 0: decryption proof: s scalar is not reduced"):
        case.verify(proof=dataclasses.replace(case.proof, chunk_proofs=changed))


def test_an_output_equal_to_its_ciphertext_is_refused(case: Case) -> None:
    b2 = case.proof.records[RECORD_BYTES + 96 : RECORD_BYTES + 128]
    with pytest.raises(ShuffleProofError, match=r"^position 1: b'' - Z is the identity$"):
        case.verify(outputs=_output(case.outputs, 1, b2))


def test_prover_refuses_bad_inputs(engine: BatchEngine) -> None:
    blinded = _elements(3)
    with pytest.raises(group.InvalidElementError, match="blinded element 1"):
        engine.prove_shuffled_evaluation(group.random_scalar(), _output(blinded, 1, bytes(32)), CTX, 2)
    with pytest.raises(ShuffleProofError, match="chunk must be 1 to 32768"):
        engine.prove_shuffled_evaluation(group.random_scalar(), blinded, CTX, 2**15 + 1)
    with pytest.raises(ShuffleProofError, match="covers 1 to"):
        engine.prove_shuffled_evaluation(group.random_scalar(), b"", CTX, 2)
    short = dataclasses.replace(ShuffleRandomness.fresh(3, 2), rho=bytes(96))
    with pytest.raises(ValueError, match="shuffle randomness: rho scalar 0: zero scalar"):
        engine.prove_shuffled_evaluation(group.random_scalar(), blinded, CTX, 2, short)
    with pytest.raises(ValueError, match="shuffle randomness: permutation"):
        engine.prove_shuffled_evaluation(group.random_scalar(), blinded, CTX, 2,
                                         dataclasses.replace(ShuffleRandomness.fresh(3, 2), permutation=(0, 0, 1)))


def test_every_flipped_bit_of_proof_or_outputs_is_refused() -> None:
    """Each byte of the header, records, chunk proofs and outputs, its low bit flipped: never accepted."""
    eng = BatchEngine(workers=1, backend=FASTEST)
    c = _case(eng, 2, 1)
    proof = c.proof
    for attribute in ("header", "records", "chunk_proofs"):
        data = getattr(proof, attribute)
        for at in range(len(data)):
            flipped = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
            with pytest.raises(ShuffleProofError):
                c.verify(proof=dataclasses.replace(proof, **{attribute: flipped}))
    for at in range(len(c.outputs)):
        with pytest.raises(ShuffleProofError):
            c.verify(outputs=c.outputs[:at] + bytes([c.outputs[at] ^ 1]) + c.outputs[at + 1 :])
