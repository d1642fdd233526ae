"""BatchEngine's verifiable-mode API: RFC vectors, multi-core equals one-thread, refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from blindmatch.crypto import backend, dleq, group, poprf, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import POPRF, VOPRF

DATA = Path(__file__).resolve().parents[1] / "data"
V = json.loads((DATA / "rfc9497-ristretto255-sha512-voprf.json").read_text())
P = json.loads((DATA / "rfc9497-ristretto255-sha512-poprf.json").read_text())
N = 700  # above 2 * _MIN_CHUNK, so two workers really split the composites


def _joined(field: str) -> bytes:
    return b"".join(bytes.fromhex(part) for part in field.split(","))


BACKENDS = ["libsodium", *(f"native:{path}" for path in backend.native_paths())]


@pytest.fixture(scope="module", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[BatchEngine]:
    """Every test runs on each backend: the composites' MSM and weights differ per backend."""
    eng = BatchEngine(workers=2, backend=request.param)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def batch() -> tuple[list[bytes], bytes]:
    inputs = [f"record {i}".encode() for i in range(N)]
    return inputs, b"".join(group.random_scalar() for _ in range(N))


def test_engine_reproduces_batched_voprf_vector(engine: BatchEngine) -> None:
    vector = V["vectors"][2]
    sk, pk = bytes.fromhex(V["skSm"]), bytes.fromhex(V["pkSm"])
    inputs = [bytes.fromhex(x) for x in vector["Input"].split(",")]
    blinded = engine.blind_in_mode(VOPRF, inputs, _joined(vector["Blind"]))
    assert blinded == _joined(vector["BlindedElement"])
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded, bytes.fromhex(vector["ProofRandomScalar"]))
    assert (evaluated, proof.hex()) == (_joined(vector["EvaluationElement"]), vector["Proof"])
    unblinded = engine.verify_and_unblind(pk, _joined(vector["Blind"]), blinded, evaluated, proof)
    outputs = [voprf.oprf.finalize_unblinded(x, unblinded[i * 32 : i * 32 + 32]) for i, x in enumerate(inputs)]
    assert b"".join(outputs) == _joined(vector["Output"])


def test_engine_reproduces_batched_poprf_vector(engine: BatchEngine) -> None:
    vector = P["vectors"][2]
    sk, pk, info = bytes.fromhex(P["skSm"]), bytes.fromhex(P["pkSm"]), bytes.fromhex(vector["Info"])
    inputs = [bytes.fromhex(x) for x in vector["Input"].split(",")]
    blinds = _joined(vector["Blind"])
    blinded = engine.blind_in_mode(POPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven_poprf(sk, blinded, info, bytes.fromhex(vector["ProofRandomScalar"]))
    assert (evaluated, proof.hex()) == (_joined(vector["EvaluationElement"]), vector["Proof"])
    unblinded = engine.verify_and_unblind_poprf(pk, info, blinds, blinded, evaluated, proof)
    outputs = [poprf.finalize_unblinded(x, info, unblinded[i * 32 : i * 32 + 32]) for i, x in enumerate(inputs)]
    assert b"".join(outputs) == _joined(vector["Output"])


def test_parallel_composites_equal_one_thread(engine: BatchEngine, batch: tuple[list[bytes], bytes]) -> None:
    inputs, blinds = batch
    sk, pk = voprf.derive_key_pair(bytes(32), b"composites")
    blinded = engine.blind_in_mode(VOPRF, inputs, blinds)
    evaluated = engine.blind_evaluate(sk, blinded)
    assert engine.compute_composites(VOPRF, pk, blinded, evaluated) == dleq.composites(VOPRF, pk, blinded, evaluated)
    assert engine.compute_composites(VOPRF, pk, blinded, evaluated, sk) == dleq.composites(VOPRF, pk, blinded, evaluated)


def test_large_batch_round_trip_and_cross_checks(engine: BatchEngine, batch: tuple[list[bytes], bytes]) -> None:
    inputs, blinds = batch
    sk, pk = voprf.derive_key_pair(bytes(32), b"round trip")
    blinded = engine.blind_in_mode(VOPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded)
    dleq.verify_proof(VOPRF, voprf.GENERATOR, pk, blinded, evaluated, proof)  # one-thread verifier agrees
    unblinded = engine.verify_and_unblind(pk, blinds, blinded, evaluated, proof)
    assert unblinded == engine.evaluate_elements_in_mode(VOPRF, sk, inputs)


def test_one_wrong_element_in_a_large_batch_fails_the_proof(engine: BatchEngine, batch: tuple[list[bytes], bytes]) -> None:
    inputs, blinds = batch
    sk, pk = voprf.derive_key_pair(bytes(32), b"tamper")
    blinded = engine.blind_in_mode(VOPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded)
    i = 613
    wrong = group.scalar_mult(group.random_scalar(), blinded[i * 32 : i * 32 + 32])
    tampered = evaluated[: i * 32] + wrong + evaluated[i * 32 + 32 :]
    with pytest.raises(dleq.ProofError, match="batch 7"):
        engine.verify_and_unblind(pk, blinds, blinded, tampered, proof, what="batch 7")
    with pytest.raises(dleq.ProofError, match="batch 7"):
        engine.verify_and_unblind(pk, blinds, blinded, evaluated, proof[:32] + proof[:32], what="batch 7")


def test_invalid_inputs_are_refused(engine: BatchEngine, batch: tuple[list[bytes], bytes]) -> None:
    inputs, blinds = batch
    sk, pk = voprf.derive_key_pair(bytes(32), b"refuse")
    blinded = engine.blind_in_mode(VOPRF, inputs[:4], blinds[: 4 * 32])
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded)
    with pytest.raises(group.InvalidElementError, match="server public key"):
        engine.verify_and_unblind(group.IDENTITY, blinds[:128], blinded, evaluated, proof)
    with pytest.raises(group.InvalidElementError, match="element 2"):
        bad = evaluated[:64] + group.IDENTITY + evaluated[96:]
        engine.verify_and_unblind(pk, blinds[:128], blinded, bad, proof)
    with pytest.raises(group.InvalidElementError, match="element 1"):
        top_bit = evaluated[:63] + bytes([evaluated[63] | 0x80]) + evaluated[64:]
        engine.verify_and_unblind(pk, blinds[:128], blinded, top_bit, proof)
    with pytest.raises(group.InvalidElementError, match="element 650 "):
        large = engine.blind_in_mode(VOPRF, inputs, blinds)
        evaluated_large, proof_large = engine.blind_evaluate_proven(sk, pk, large)
        bad = evaluated_large[: 650 * 32] + bytes([1]) * 32 + evaluated_large[651 * 32 :]  # 1...1 does not decode
        engine.verify_and_unblind(pk, blinds, large, bad, proof_large)
    with pytest.raises(dleq.ProofError, match="proof must be 64 bytes"):
        engine.verify_and_unblind(pk, blinds[:128], blinded, evaluated, proof[:63])
    with pytest.raises(dleq.ProofError, match="scalar"):
        engine.verify_and_unblind(pk, blinds[:128], blinded, evaluated, proof[:32] + b"\xff" * 32)
    with pytest.raises(ValueError, match="public key does not belong"):
        engine.blind_evaluate_proven(sk, voprf.GENERATOR, blinded)
    with pytest.raises(ValueError, match="1 to 65536"):
        dleq.check_batch(b"", b"")


def test_poprf_wrong_info_fails_in_the_engine(engine: BatchEngine, batch: tuple[list[bytes], bytes]) -> None:
    inputs, blinds = batch
    sk, pk = poprf.derive_key_pair(bytes(32), b"info")
    blinded = engine.blind_in_mode(POPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven_poprf(sk, blinded, b"session 2026-12-01")
    unblinded = engine.verify_and_unblind_poprf(pk, b"session 2026-12-01", blinds, blinded, evaluated, proof)
    t_inverse = group.invert(poprf.tweaked_secret(sk, b"session 2026-12-01"))
    assert unblinded == engine.evaluate_elements_in_mode(POPRF, t_inverse, inputs)
    with pytest.raises(dleq.ProofError, match="batch"):
        engine.verify_and_unblind_poprf(pk, b"another session", blinds, blinded, evaluated, proof)
