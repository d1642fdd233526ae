"""protocol/test-vectors/shuffle-proof.json is current, checks out from first principles and its invalid proofs fail."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers.vector_files import VECTOR_DIR, load_generator

from blindmatch.crypto import backend, dleq, group, poprf, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import POPRF
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleProofError

generate_shuffle = load_generator("generate_shuffle")
DATA = json.loads((VECTOR_DIR / "shuffle-proof.json").read_text())
BACKENDS = ["libsodium", *(f"native:{path}" for path in backend.native_paths())]


def _joined(items: list[str]) -> bytes:
    return b"".join(bytes.fromhex(x) for x in items)


def _proof() -> ShuffleProof:
    header = _joined([DATA["header"][name] for name in generate_shuffle.HEADER_FIELDS])
    records = _joined([rec[name] for rec in DATA["records"] for name in generate_shuffle.RECORD_FIELDS])
    return ShuffleProof(header, records, _joined(DATA["chunk_proofs"]), DATA["chunk"])


def test_vector_file_is_current() -> None:
    committed = (VECTOR_DIR / "shuffle-proof.json").read_text()
    assert committed == generate_shuffle.render(generate_shuffle.shuffle_vectors()), "run generate_shuffle.py"


def test_outputs_are_the_permuted_evaluations() -> None:
    t = bytes.fromhex(DATA["t"])
    assert group.base_mult(t).hex() == DATA["tweaked_key"]
    assert poprf.tweaked_key(bytes.fromhex(DATA["pkS"]), bytes.fromhex(DATA["info"])).hex() == DATA["tweaked_key"]
    blind = bytes.fromhex(DATA["blind"])
    blinded = [group.scalar_mult(blind, poprf.input_element(x.encode())) for x in DATA["inputs"]]
    assert [b.hex() for b in blinded] == DATA["blinded"]
    t_inverse = group.invert(t)
    assert DATA["outputs"] == [group.scalar_mult(t_inverse, blinded[p - 1]).hex() for p in DATA["randomness"]["pi"]]


def test_chunk_proofs_are_plain_rfc9497_proofs_over_the_records() -> None:
    tweaked, h = bytes.fromhex(DATA["tweaked_key"]), bytes.fromhex(DATA["header"]["H"])
    for k, proof in enumerate(DATA["chunk_proofs"]):
        rows = DATA["records"][k * DATA["chunk"] : (k + 1) * DATA["chunk"]]
        outputs = DATA["outputs"][k * DATA["chunk"] : (k + 1) * DATA["chunk"]]
        evaluated = _joined([row[f] for row in rows for f in ("a''", "b''")])
        reencrypted = _joined([row[f] for row in rows for f in ("a'", "b'")])
        dleq.verify_proof(POPRF, voprf.GENERATOR, tweaked, evaluated, reencrypted, bytes.fromhex(proof[:128]))
        masks = b"".join(group.sub(bytes.fromhex(row["b''"]), bytes.fromhex(z)) for row, z in zip(rows, outputs, strict=True))
        a2 = _joined([row["a''"] for row in rows])
        dleq.verify_proof(POPRF, voprf.GENERATOR, h, a2, masks, bytes.fromhex(proof[128:]))


def test_batch_parts_carry_the_proof() -> None:
    parts = [bytes.fromhex(p) for p in DATA["batch_parts"]]
    assert ShuffleProof.from_batch_parts(parts, len(DATA["outputs"]), DATA["chunk"]) == _proof()


@pytest.mark.parametrize("name", BACKENDS)
def test_valid_proof_verifies_and_each_invalid_one_fails_its_check(name: str) -> None:
    engine = BatchEngine(workers=1, backend=name)
    tweaked, ctx = bytes.fromhex(DATA["tweaked_key"]), bytes.fromhex(DATA["ctx"])
    blinded, outputs = _joined(DATA["blinded"]), _joined(DATA["outputs"])
    engine.verify_shuffled_evaluation(tweaked, blinded, outputs, _proof(), ctx)
    for case in DATA["invalid"]:
        value = bytes.fromhex(case["value"])
        if case["part"] == "outputs":
            changed, changed_outputs = _proof(), value
        else:
            attribute, at = generate_shuffle.field_offset(case["part"], case["index"], case["field"])
            data = getattr(_proof(), attribute)
            changed = dataclasses.replace(_proof(), **{attribute: data[:at] + value + data[at + 32 :]})
            changed_outputs = outputs
        with pytest.raises(ShuffleProofError) as raised:
            engine.verify_shuffled_evaluation(tweaked, blinded, changed_outputs, changed, ctx)
        assert str(raised.value) == case["error"], case["description"]
