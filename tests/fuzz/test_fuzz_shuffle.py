"""The shuffle proof as a requester receives it (SPEC 6.1): batch parts and proofs from a hostile holder.

``ShuffleProof.from_batch_parts`` and ``verify_shuffled_evaluation`` read bytes straight
from the holder; the only failure allowed is ``ShuffleProofError`` with a message, never
an ``IndexError``, a ``struct.error`` or a library's own error, and nothing tampered with
is ever accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fuzz_support import assert_clear
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.crypto import group
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.shuffle import ShuffleProof, ShuffleProofError

pytestmark = pytest.mark.fuzz

N, CHUNK = 3, 2
CTX = b"fuzz ctx"


@pytest.fixture(scope="module")
def honest() -> Iterator[tuple[BatchEngine, bytes, bytes, bytes, ShuffleProof]]:
    engine = BatchEngine(workers=1)
    t = group.random_scalar()
    blinded = b"".join(group.base_mult(group.random_scalar()) for _ in range(N))
    outputs, proof = engine.prove_shuffled_evaluation(t, blinded, CTX, CHUNK)
    yield engine, group.base_mult(t), blinded, outputs, proof
    engine.close()


@given(parts=st.lists(st.binary(max_size=1200), max_size=4), n=st.integers(-2, 6), chunk=st.integers(-1, 4))
def test_batch_parts_of_any_shape_parse_or_fail_clearly(parts: list[bytes], n: int, chunk: int) -> None:
    try:
        proof = ShuffleProof.from_batch_parts(parts, n, chunk)
    except ShuffleProofError as exc:
        assert_clear(exc)
        return
    assert [proof.batch_part(k) for k in range(len(parts))] == parts


@given(data=st.data())
def test_tampered_proofs_are_refused_clearly(
    honest: tuple[BatchEngine, bytes, bytes, bytes, ShuffleProof], data: st.DataObject
) -> None:
    engine, tweaked, blinded, outputs, proof = honest
    target = data.draw(st.sampled_from(["header", "records", "chunk_proofs", "outputs"]))
    original = outputs if target == "outputs" else getattr(proof, target)
    at = data.draw(st.integers(0, len(original) - 1))
    width = data.draw(st.integers(1, 64))
    replacement = data.draw(st.binary(min_size=0, max_size=width + 1))
    changed = original[:at] + replacement + original[at + width :]
    if changed == original:
        return
    new_outputs = changed if target == "outputs" else outputs
    new_proof = proof if target == "outputs" else dataclasses.replace(proof, **{target: changed})
    with pytest.raises(ShuffleProofError) as raised:
        engine.verify_shuffled_evaluation(tweaked, blinded, new_outputs, new_proof, CTX)
    assert_clear(raised.value)
