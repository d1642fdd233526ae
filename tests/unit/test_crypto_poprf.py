"""RFC 9497 Appendix A.1.3 vectors (ristretto255-SHA512, POPRF mode), batch vector included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blindmatch.crypto import dleq, poprf

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "rfc9497-ristretto255-sha512-poprf.json").read_text())
SK, PK = bytes.fromhex(VECTORS["skSm"]), bytes.fromhex(VECTORS["pkSm"])


def _split(field: str) -> list[bytes]:
    return [bytes.fromhex(part) for part in field.split(",")]


def test_context_string_and_key_pair() -> None:
    assert poprf.CONTEXT_STRING.hex() == VECTORS["context_string_hex"]
    sk, pk = poprf.derive_key_pair(bytes.fromhex(VECTORS["seed"]), bytes.fromhex(VECTORS["key_info"]))
    assert (sk.hex(), pk.hex()) == (VECTORS["skSm"], VECTORS["pkSm"])


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=["one", "two", "batch-of-two"])
def test_protocol_vector(vector: dict[str, str]) -> None:
    info = bytes.fromhex(vector["Info"])
    inputs, blinds = _split(vector["Input"]), _split(vector["Blind"])
    blinded_parts = [poprf.blind(x, info, PK, r) for x, r in zip(inputs, blinds, strict=True)]
    blinded = b"".join(part[1] for part in blinded_parts)
    tweaked = blinded_parts[0][2]
    assert tweaked == poprf.tweaked_key(PK, info)
    assert blinded == b"".join(_split(vector["BlindedElement"]))
    evaluated, proof = poprf.blind_evaluate_batch(SK, blinded, info, bytes.fromhex(vector["ProofRandomScalar"]))
    assert evaluated == b"".join(_split(vector["EvaluationElement"]))
    assert proof.hex() == vector["Proof"]
    outputs = poprf.finalize_batch(inputs, b"".join(blinds), evaluated, blinded, proof, info, tweaked)
    assert outputs == _split(vector["Output"])
    assert [poprf.evaluate(SK, x, info) for x in inputs] == outputs


def test_single_element_api_and_wrong_info() -> None:
    vector = VECTORS["vectors"][0]
    info, data = bytes.fromhex(vector["Info"]), bytes.fromhex(vector["Input"])
    r, blinded, tweaked = poprf.blind(data, info, PK, bytes.fromhex(vector["Blind"]))
    evaluated, proof = poprf.blind_evaluate(SK, blinded, info, bytes.fromhex(vector["ProofRandomScalar"]))
    assert poprf.finalize(data, r, evaluated, blinded, proof, info, tweaked).hex() == vector["Output"]
    # A server that evaluates under another info value is caught by the proof.
    evaluated_other, proof_other = poprf.blind_evaluate(SK, blinded, b"other info")
    with pytest.raises(dleq.ProofError):
        poprf.finalize(data, r, evaluated_other, blinded, proof_other, info, tweaked)


def test_key_that_cancels_the_info_tweak_is_refused_on_both_sides() -> None:
    """skS = -HashToScalar(framedInfo) makes t = 0: InverseError (server), identity tweakedKey (client)."""
    from blindmatch.crypto import group, oprf
    from blindmatch.crypto.modes import POPRF, length_prefixed
    from blindmatch.crypto.sodium import rbcl

    info = b"cancelled"
    sk = rbcl.crypto_core_ristretto255_scalar_negate(POPRF.hash_to_scalar(b"Info" + length_prefixed(info)))
    pk = group.base_mult(sk)
    with pytest.raises(poprf.InverseError):
        poprf.blind_evaluate(sk, pk, info)
    with pytest.raises(oprf.InvalidInputError, match="identity as tweaked key"):
        poprf.blind(b"record", info, pk)
