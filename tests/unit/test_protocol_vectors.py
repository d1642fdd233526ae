"""protocol/test-vectors/{index,session}.json are exactly what the implementation produces,
and their POPRF outputs and proofs check out with the RFC 9497 functions alone."""

from __future__ import annotations

import pytest
from helpers.vector_files import VECTOR_DIR, load_generator

from blindmatch.core.index import EncryptedIndex
from blindmatch.core.purpose import evaluation_info
from blindmatch.crypto import dleq, poprf
from blindmatch.vocabulary import Mode

generate_core = load_generator("generate_core")


@pytest.mark.parametrize(
    ("name", "build"),
    [("index.json", "index_vectors"), ("session.json", "session_vectors"),
     ("session-cardinality.json", "cardinality_session_vectors")],
)
def test_vectors_are_current(name: str, build: str) -> None:
    committed = (VECTOR_DIR / name).read_text()
    assert committed == generate_core.render(getattr(generate_core, build)()), f"regenerate {name} with generate_core.py"


def test_index_vector_is_self_consistent() -> None:
    import json

    data = json.loads((VECTOR_DIR / "index.json").read_text())
    sk = bytes.fromhex(data["skS"])
    key_id = bytes.fromhex(data["key_id"])
    info = evaluation_info(data["organisation"], Mode.MEMBERSHIP, key_id)
    assert info.hex() == data["info"]["membership"]
    index = EncryptedIndex.parse(bytes.fromhex(data["indexes"]["membership"]["encoded"]))
    for entry in data["entries"]:
        output = poprf.evaluate(sk, bytes.fromhex(entry["match_key"]), info)
        assert output.hex() == entry["membership_output"]
        assert index.contains(output).all()


def test_session_vector_proofs_verify_and_finalize_to_the_index() -> None:
    """A whole verifiable session, checked with RFC 9497 POPRF Finalize per batch."""
    import json

    data = json.loads((VECTOR_DIR / "session.json").read_text())
    pk, info = bytes.fromhex(data["pkS"]), bytes.fromhex(data["info"])
    assert info == evaluation_info(data["organisation"], Mode(data["mode"]), bytes.fromhex(data["key_id"]))
    tweaked = poprf.tweaked_key(pk, info)
    assert tweaked.hex() == data["tweaked_key"]
    keys = [bytes.fromhex(k) for k in data["requester_keys"]]
    blinds = [bytes.fromhex(b) for b in data["blinds"]]
    blinded = {m["seq"]: bytes.fromhex(m["elements"]) for m in data["messages"] if m["type"] == "BlindedBatch"}
    evaluated = [m for m in data["messages"] if m["type"] == "EvaluatedBatch"]
    assert len(evaluated) == len(blinded) == 2
    outputs = []
    for message in evaluated:
        seq, elements, proof = message["seq"], bytes.fromhex(message["elements"]), bytes.fromhex(message["proof"])
        span = range(seq * 2, min(seq * 2 + 2, len(keys)))
        outputs += poprf.finalize_batch([keys[i] for i in span], b"".join(blinds[i] for i in span), elements,
                                        blinded[seq], proof, info, tweaked)
        with pytest.raises(dleq.ProofError):  # the proof binds this batch: not another key's answer
            poprf.finalize_batch([keys[i] for i in span], b"".join(blinds[i] for i in span), elements,
                                 blinded[seq], proof, info, poprf.tweaked_key(pk, info + b"!"))
    index_data = json.loads((VECTOR_DIR / "index.json").read_text())
    index = EncryptedIndex.parse(bytes.fromhex(index_data["indexes"]["membership"]["encoded"]))
    assert index.digest.hex() == data["index_digest"]
    assert index.contains(b"".join(outputs)).tolist() == data["matched"]


def test_cardinality_session_vector_counts_what_the_cardinality_index_holds() -> None:
    """The shuffle proof carried in the batches verifies from the vector's own values (pinned key, info,
    session id, blinded batches); only then do the outputs unblind (one blind) to what the index.json index holds."""
    import json

    from blindmatch.core.index import EncryptedIndex
    from blindmatch.core.outputs import cardinality_output
    from blindmatch.crypto import group
    from blindmatch.crypto.batch import BatchEngine
    from blindmatch.crypto.modes import length_prefixed
    from blindmatch.crypto.shuffle import ShuffleProof, ShuffleProofError

    data = json.loads((VECTOR_DIR / "session-cardinality.json").read_text())
    index_data = json.loads((VECTOR_DIR / "index.json").read_text())["indexes"]["cardinality"]
    index = EncryptedIndex.parse(bytes.fromhex(index_data["encoded"]))
    assert index.digest.hex() == data["index_digest"]
    info = bytes.fromhex(data["info"])
    assert info == evaluation_info(data["organisation"], Mode(data["mode"]), bytes.fromhex(data["key_id"]))
    tweaked = poprf.tweaked_key(bytes.fromhex(data["pkS"]), info)
    ctx = length_prefixed(bytes.fromhex(data["session_id"])) + length_prefixed(info)
    assert (tweaked.hex(), ctx.hex()) == (data["tweaked_key"], data["ctx"])
    blinded = b"".join(bytes.fromhex(m["elements"]) for m in data["messages"] if m["type"] == "BlindedBatch")
    evaluated = [m for m in data["messages"] if m["type"] == "EvaluatedBatch"]
    outputs = b"".join(bytes.fromhex(m["elements"]) for m in evaluated)
    n = len(data["requester_keys"])
    proof = ShuffleProof.from_batch_parts([bytes.fromhex(m["proof"]) for m in evaluated], n, data["chunk"])
    engine = BatchEngine(1)
    try:
        engine.verify_shuffled_evaluation(tweaked, blinded, outputs, proof, ctx)
        with pytest.raises(ShuffleProofError):  # ctx binds the session: not another session's answer
            engine.verify_shuffled_evaluation(tweaked, blinded, outputs, proof, ctx + b"!")
    finally:
        engine.close()
    r_inverse = group.invert(bytes.fromhex(data["blind"]))
    counted = b"".join(cardinality_output(info, group.scalar_mult(r_inverse, outputs[i : i + 32]))
                       for i in range(0, len(outputs), 32))
    assert int(index.contains(counted).sum()) == data["match_count"] == 2


def test_audit_vector_is_current() -> None:
    generate_audit = load_generator("generate_audit")
    committed = (VECTOR_DIR / "audit.json").read_text(encoding="utf-8")
    assert committed == generate_audit.render(generate_audit.build()), "regenerate audit.json with generate_audit.py"
