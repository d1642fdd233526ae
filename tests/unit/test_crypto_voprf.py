"""RFC 9497 Appendix A.1.2 vectors (ristretto255-SHA512, VOPRF mode), batch vector included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blindmatch.crypto import dleq, voprf

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "rfc9497-ristretto255-sha512-voprf.json").read_text())


def _split(field: str) -> list[bytes]:
    return [bytes.fromhex(part) for part in field.split(",")]


def test_context_string_and_key_pair() -> None:
    assert voprf.CONTEXT_STRING.hex() == VECTORS["context_string_hex"]
    sk, pk = voprf.derive_key_pair(bytes.fromhex(VECTORS["seed"]), bytes.fromhex(VECTORS["key_info"]))
    assert (sk.hex(), pk.hex()) == (VECTORS["skSm"], VECTORS["pkSm"])


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=["one", "two", "batch-of-two"])
def test_protocol_vector(vector: dict[str, str]) -> None:
    sk, pk = bytes.fromhex(VECTORS["skSm"]), bytes.fromhex(VECTORS["pkSm"])
    inputs, blinds = _split(vector["Input"]), _split(vector["Blind"])
    blinded = b"".join(voprf.blind(x, r)[1] for x, r in zip(inputs, blinds, strict=True))
    assert blinded == b"".join(_split(vector["BlindedElement"]))
    evaluated, proof = voprf.blind_evaluate_batch(sk, pk, blinded, bytes.fromhex(vector["ProofRandomScalar"]))
    assert evaluated == b"".join(_split(vector["EvaluationElement"]))
    assert proof.hex() == vector["Proof"]
    outputs = voprf.finalize_batch(inputs, b"".join(blinds), evaluated, blinded, pk, proof)
    assert outputs == _split(vector["Output"])
    assert [voprf.evaluate(sk, x) for x in inputs] == outputs


def test_single_element_api_matches_first_vector() -> None:
    vector = VECTORS["vectors"][0]
    sk, pk = bytes.fromhex(VECTORS["skSm"]), bytes.fromhex(VECTORS["pkSm"])
    data = bytes.fromhex(vector["Input"])
    r, blinded = voprf.blind(data, bytes.fromhex(vector["Blind"]))
    evaluated, proof = voprf.blind_evaluate(sk, pk, blinded, bytes.fromhex(vector["ProofRandomScalar"]))
    assert proof.hex() == vector["Proof"]
    assert voprf.finalize(data, r, evaluated, blinded, pk, proof).hex() == vector["Output"]


def test_proof_for_another_key_is_refused() -> None:
    vector = VECTORS["vectors"][2]
    sk, pk = bytes.fromhex(VECTORS["skSm"]), bytes.fromhex(VECTORS["pkSm"])
    other_sk, other_pk = voprf.derive_key_pair(bytes(32), b"other")
    inputs, blinds = _split(vector["Input"]), _split(vector["Blind"])
    blinded = b"".join(voprf.blind(x, r)[1] for x, r in zip(inputs, blinds, strict=True))
    evaluated, proof = voprf.blind_evaluate_batch(other_sk, other_pk, blinded)
    with pytest.raises(dleq.ProofError, match="batch"):
        voprf.finalize_batch(inputs, b"".join(blinds), evaluated, blinded, pk, proof)
    # The right key, but one element of the batch evaluated with another key.
    good, good_proof = voprf.blind_evaluate_batch(sk, pk, blinded)
    mixed = good[:32] + evaluated[32:]
    with pytest.raises(dleq.ProofError):
        voprf.finalize_batch(inputs, b"".join(blinds), mixed, blinded, pk, good_proof)
